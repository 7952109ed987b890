//! Builds Ethernet frames by hand, layer by layer, for BPF_PROG_TEST_RUN and
//! for raw injection. Checksums are left zero where the XDP program does not
//! look at them (the kernel stack is never reached in test runs).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// IPv6 extension headers the builder can insert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ext {
    HopByHop,
    Routing,
    /// Fragment header with this offset (in 8-byte units) and more-fragments flag.
    Fragment {
        offset: u16,
        more: bool,
    },
    DestOpts,
}

impl Ext {
    fn number(self) -> u8 {
        match self {
            Ext::HopByHop => 0,
            Ext::Routing => 43,
            Ext::Fragment { .. } => 44,
            Ext::DestOpts => 60,
        }
    }
}

/// A frame description; `build()` renders it.
#[derive(Clone, Debug)]
pub struct Frame {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub transport: Transport,
    pub sport: u16,
    pub dport: u16,
    pub payload: Vec<u8>,
    /// VLAN tags, outermost first: (ethertype of the tag, VLAN id).
    pub vlans: Vec<(u16, u16)>,
    /// IPv4 options bytes (padded to 4 by the builder).
    pub ipv4_options: Vec<u8>,
    /// IPv4 fragment offset (8-byte units) and MF flag.
    pub ipv4_frag: (u16, bool),
    pub ipv6_ext: Vec<Ext>,
    /// TCP flags byte (default PSH|ACK).
    pub tcp_flags: u8,
}

impl Frame {
    pub fn udp(src: &str, dport: u16, payload: &[u8]) -> Frame {
        let src: IpAddr = src.parse().expect("source address");
        let dst: IpAddr = match src {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1)),
            IpAddr::V6(_) => IpAddr::V6("fd00:99::1".parse::<Ipv6Addr>().expect("v6")),
        };
        Frame {
            src,
            dst,
            transport: Transport::Udp,
            sport: 5060,
            dport,
            payload: payload.to_vec(),
            vlans: Vec::new(),
            ipv4_options: Vec::new(),
            ipv4_frag: (0, false),
            ipv6_ext: Vec::new(),
            tcp_flags: 0x18,
        }
    }

    pub fn tcp(src: &str, dport: u16, payload: &[u8]) -> Frame {
        Frame {
            transport: Transport::Tcp,
            sport: 40000,
            ..Frame::udp(src, dport, payload)
        }
    }

    pub fn vlan(mut self, ethertype: u16, id: u16) -> Frame {
        self.vlans.push((ethertype, id));
        self
    }

    pub fn ipv4_options(mut self, options: &[u8]) -> Frame {
        self.ipv4_options = options.to_vec();
        self
    }

    pub fn ipv4_fragment(mut self, offset: u16, more: bool) -> Frame {
        self.ipv4_frag = (offset, more);
        self
    }

    pub fn ext(mut self, ext: Ext) -> Frame {
        self.ipv6_ext.push(ext);
        self
    }

    pub fn with_dst(mut self, dst: &str) -> Frame {
        self.dst = dst.parse().expect("destination address");
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let l4 = self.transport_bytes();
        let (ethertype, l3) = match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => (ETH_P_IPV4, self.ipv4(s, d, &l4)),
            (IpAddr::V6(s), IpAddr::V6(d)) => (ETH_P_IPV6, self.ipv6(s, d, &l4)),
            _ => panic!("mixed address families"),
        };
        ethernet(&self.vlans, ethertype, &l3)
    }

    fn transport_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self.transport {
            Transport::Udp => {
                out.extend_from_slice(&self.sport.to_be_bytes());
                out.extend_from_slice(&self.dport.to_be_bytes());
                out.extend_from_slice(&((8 + self.payload.len()) as u16).to_be_bytes());
                out.extend_from_slice(&[0, 0]);
            }
            Transport::Tcp => {
                out.extend_from_slice(&self.sport.to_be_bytes());
                out.extend_from_slice(&self.dport.to_be_bytes());
                out.extend_from_slice(&1u32.to_be_bytes());
                out.extend_from_slice(&1u32.to_be_bytes());
                out.push(5 << 4);
                out.push(self.tcp_flags);
                out.extend_from_slice(&64240u16.to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0]);
            }
        }
        out.extend_from_slice(&self.payload);
        out
    }

    fn protocol(&self) -> u8 {
        match self.transport {
            Transport::Udp => 17,
            Transport::Tcp => 6,
        }
    }

    fn ipv4(&self, src: Ipv4Addr, dst: Ipv4Addr, l4: &[u8]) -> Vec<u8> {
        let mut opts = self.ipv4_options.clone();
        while !opts.len().is_multiple_of(4) {
            opts.push(0);
        }
        let ihl = 5 + opts.len() / 4;
        let total = ihl * 4 + l4.len();
        let (off, more) = self.ipv4_frag;
        let frag = (off & 0x1fff) | if more { 0x2000 } else { 0 };
        let mut h = vec![(4 << 4) | ihl as u8, 0];
        h.extend_from_slice(&(total as u16).to_be_bytes());
        h.extend_from_slice(&[0x12, 0x34]);
        h.extend_from_slice(&frag.to_be_bytes());
        h.extend_from_slice(&[64, self.protocol(), 0, 0]);
        h.extend_from_slice(&src.octets());
        h.extend_from_slice(&dst.octets());
        h.extend_from_slice(&opts);
        let sum = checksum(&h);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        h.extend_from_slice(l4);
        h
    }

    fn ipv6(&self, src: Ipv6Addr, dst: Ipv6Addr, l4: &[u8]) -> Vec<u8> {
        let mut exts = Vec::new();
        for (i, ext) in self.ipv6_ext.iter().enumerate() {
            let next = self
                .ipv6_ext
                .get(i + 1)
                .map(|e| e.number())
                .unwrap_or(self.protocol());
            match ext {
                Ext::Fragment { offset, more } => {
                    let v = (offset << 3) | u16::from(*more);
                    exts.extend_from_slice(&[next, 0]);
                    exts.extend_from_slice(&v.to_be_bytes());
                    exts.extend_from_slice(&[0, 0, 0, 1]);
                }
                Ext::Routing => {
                    // Type 0 routing header with no addresses left: 8 bytes.
                    exts.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0, 0]);
                }
                Ext::HopByHop | Ext::DestOpts => {
                    // 16 bytes: hdr ext len 1, PadN option filling the rest.
                    exts.extend_from_slice(&[next, 1, 1, 12]);
                    exts.extend_from_slice(&[0; 12]);
                }
            }
        }
        let first = self
            .ipv6_ext
            .first()
            .map(|e| e.number())
            .unwrap_or(self.protocol());
        let payload_len = exts.len() + l4.len();
        let mut h = vec![0x60, 0, 0, 0];
        h.extend_from_slice(&(payload_len as u16).to_be_bytes());
        h.extend_from_slice(&[first, 64]);
        h.extend_from_slice(&src.octets());
        h.extend_from_slice(&dst.octets());
        h.extend_from_slice(&exts);
        h.extend_from_slice(l4);
        h
    }
}

/// Ethernet header (+ VLAN tags) around `payload`.
pub fn ethernet(vlans: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02];
    for (tpid, id) in vlans {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(id & 0x0fff).to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// RFC 1071 Internet checksum.
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in bytes.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A SIP request as scanners and phones send it.
pub fn sip_request(method: &str, user_agent: Option<&str>) -> Vec<u8> {
    let mut s = format!(
        "{method} sip:100@10.99.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:100@10.99.0.1>;tag=1\r\n\
         To: <sip:100@10.99.0.1>\r\n\
         Call-ID: 1@192.0.2.10\r\n\
         CSeq: 1 {method}\r\n"
    );
    if let Some(ua) = user_agent {
        s.push_str(&format!("User-Agent: {ua}\r\n"));
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    s.into_bytes()
}
