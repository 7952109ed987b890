//! Listening sockets from `proc/net/{tcp,tcp6,udp,udp6}` under the root:
//! TCP sockets in state 0A (LISTEN), and UDP sockets bound with no remote
//! peer. Addresses are the kernel's hex dump of the socket address, 32-bit
//! words in host byte order (little-endian on every platform we run on).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::HostRoot;

pub const PROC_NET: &str = "proc/net";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub proto: Proto,
    pub addr: IpAddr,
    pub port: u16,
    /// `proc/net/tcp6` etc., relative to the root.
    pub file: String,
    pub line: u32,
}

impl Listener {
    /// Reachable from another host: not bound to a loopback address.
    pub fn is_exposed(&self) -> bool {
        match self.addr {
            IpAddr::V4(a) => !a.is_loopback(),
            IpAddr::V6(a) => {
                !(a.is_loopback() || a.to_ipv4_mapped().is_some_and(|m| m.is_loopback()))
            }
        }
    }
}

/// Every listener in the four tables; `None` when none of them exists (not
/// a live host, or /proc not captured with the image).
pub fn listeners(host: &HostRoot) -> Option<Vec<Listener>> {
    let tables = [
        ("tcp", Proto::Tcp),
        ("tcp6", Proto::Tcp),
        ("udp", Proto::Udp),
        ("udp6", Proto::Udp),
    ];
    let mut found_any = false;
    let mut out = Vec::new();
    for (name, proto) in tables {
        let rel = format!("{PROC_NET}/{name}");
        let Ok(text) = host.read(&rel) else {
            continue;
        };
        found_any = true;
        out.extend(parse_table(&rel, &text, proto));
    }
    found_any.then_some(out)
}

pub fn parse_table(file: &str, text: &str, proto: Proto) -> Vec<Listener> {
    let mut out = Vec::new();
    for (idx, line) in text.lines().enumerate().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(remote), Some(state)) = (cols.get(1), cols.get(2), cols.get(3))
        else {
            continue;
        };
        let listening = match proto {
            Proto::Tcp => state.eq_ignore_ascii_case("0A"),
            Proto::Udp => parse_addr(remote).is_some_and(|(a, p)| a.is_unspecified() && p == 0),
        };
        if !listening {
            continue;
        }
        if let Some((addr, port)) = parse_addr(local) {
            out.push(Listener {
                proto,
                addr,
                port,
                file: file.to_string(),
                line: u32::try_from(idx + 1).unwrap_or(u32::MAX),
            });
        }
    }
    out
}

/// `0100007F:1F90` → 127.0.0.1:8080; 32 hex digits for IPv6.
fn parse_addr(s: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let addr = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(addr, 16).ok()?.swap_bytes(),
        )),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.swap_bytes().to_be_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((addr, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   112        0 1 1\n   1: 00000000:0015 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1\n   2: 0A01A8C0:0016 0201A8C0:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1\n";

    #[test]
    fn tcp_listeners_and_addresses() {
        let l = parse_table("proc/net/tcp", TCP, Proto::Tcp);
        assert_eq!(l.len(), 2, "the established connection is not a listener");
        assert_eq!(l[0].addr, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(l[0].port, 3306);
        assert!(!l[0].is_exposed());
        assert_eq!(l[1].port, 21);
        assert!(l[1].is_exposed());
    }

    #[test]
    fn ipv6_loopback() {
        let text = "sl local rem st\n 0: 00000000000000000000000001000000:0045 00000000000000000000000000000000:0000 07 x\n";
        let l = parse_table("proc/net/udp6", text, Proto::Udp);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].addr, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(l[0].port, 69);
    }
}
