//! Bounded, verifier-safe header parsing. Every read goes through `ptr_at`,
//! which checks the access against `data_end` first.

use core::mem::size_of;

use aya_ebpf::programs::XdpContext;

use crate::maps::SCRATCH;

pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
const IPV6_HOPOPTS: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AH: u8 = 51;
const IPV6_DSTOPTS: u8 = 60;

/// Extension headers walked before giving up (`L4::Unparsed`).
pub const MAX_IPV6_EXT_HEADERS: usize = 6;

#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, off: usize) -> Option<*const T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *const T)
}

/// Largest offset into a frame we ever compute (beyond any MTU we parse).
pub const OFFSET_MASK: usize = 0x3fff;

/// Returns `v & mask`, passed through per-CPU map memory so the verifier
/// forgets its exact range. Paths that differ only in an offset (VLAN tags,
/// each IPv6 extension header kind) then merge instead of multiplying: without
/// this the extension walk alone exceeds the verifier's 1M instruction budget.
#[inline(always)]
pub fn forget_range(v: usize, mask: usize) -> usize {
    match SCRATCH.get_ptr_mut(0) {
        Some(s) => unsafe {
            core::ptr::write_volatile(&mut (*s).slot, v as u64);
            core::ptr::read_volatile(&(*s).slot) as usize & mask
        },
        None => v & mask,
    }
}

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

#[repr(C)]
struct EthHdr {
    dst: [u8; 6],
    src: [u8; 6],
    proto: [u8; 2],
}

#[repr(C)]
struct VlanTag {
    tci: [u8; 2],
    proto: [u8; 2],
}

#[repr(C)]
struct Ipv4Hdr {
    version_ihl: u8,
    tos: u8,
    total_len: [u8; 2],
    id: [u8; 2],
    frag: [u8; 2],
    ttl: u8,
    proto: u8,
    check: [u8; 2],
    src: [u8; 4],
    dst: [u8; 4],
}

#[repr(C)]
struct Ipv6Hdr {
    vtc_flow: [u8; 4],
    payload_len: [u8; 2],
    next: u8,
    hop_limit: u8,
    src: [u8; 16],
    dst: [u8; 16],
}

/// Ethertype after up to two VLAN tags (802.1Q, 802.1ad), and where the
/// network header starts. `None` if the frame is too short to tell.
#[inline(always)]
pub fn parse_l2(ctx: &XdpContext) -> Option<(u16, usize)> {
    let eth: *const EthHdr = ptr_at(ctx, 0)?;
    let mut proto = be16(unsafe { (*eth).proto });
    let mut off = size_of::<EthHdr>();
    for _ in 0..2 {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        let tag: *const VlanTag = ptr_at(ctx, off)?;
        proto = be16(unsafe { (*tag).proto });
        off += size_of::<VlanTag>();
    }
    Some((proto, off))
}

/// The source address of an untagged IPv4 or IPv6 frame.
pub enum Untagged {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// The source of an untagged IP frame, when the frame is long enough to
/// hold the fixed header; `None` for anything else (VLAN tags, other
/// ethertypes, short frames).
#[inline(always)]
pub fn untagged_source(ctx: &XdpContext) -> Option<Untagged> {
    let eth: *const EthHdr = ptr_at(ctx, 0)?;
    match be16(unsafe { (*eth).proto }) {
        ETH_P_IPV4 => {
            let ip: *const Ipv4Hdr = ptr_at(ctx, size_of::<EthHdr>())?;
            Some(Untagged::V4(unsafe { (*ip).src }))
        }
        ETH_P_IPV6 => {
            let ip: *const Ipv6Hdr = ptr_at(ctx, size_of::<EthHdr>())?;
            Some(Untagged::V6(unsafe { (*ip).src }))
        }
        _ => None,
    }
}

/// What the network header says beyond the source address.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum L3State {
    Ok,
    /// Non-first fragment: no transport header here.
    Fragment,
    /// Invalid or truncated header (options beyond the frame, bad IHL...).
    Malformed,
}

/// A parsed network header.
pub struct L3<A> {
    pub src: A,
    pub state: L3State,
    /// Transport protocol, or for IPv6 the first next-header value.
    pub next: u8,
    /// Where the next header starts.
    pub next_off: usize,
    /// End of the IP datagram within the frame (excludes Ethernet padding).
    pub ip_end: usize,
    /// Bytes from the IP header to `ip_end`, for accounting.
    pub ip_len: usize,
    /// First fragment of a fragmented datagram (IPv4 MF set, offset 0): the
    /// stack reassembles it, so what it starts counts as one message.
    pub first_fragment: bool,
}

/// IPv4 header at `off`. `None` if too short to read the source address.
#[inline(always)]
pub fn parse_ipv4(ctx: &XdpContext, off: usize) -> Option<L3<[u8; 4]>> {
    let ip: *const Ipv4Hdr = ptr_at(ctx, off)?;
    let (version_ihl, total_len, frag, proto, src) = unsafe {
        (
            (*ip).version_ihl,
            be16((*ip).total_len) as usize,
            be16((*ip).frag),
            (*ip).proto,
            (*ip).src,
        )
    };
    let frame_len = ctx.data_end() - ctx.data();
    let ihl = ((version_ihl & 0x0f) as usize) * 4;
    let mut state = L3State::Ok;
    if version_ihl >> 4 != 4 || ihl < size_of::<Ipv4Hdr>() || total_len < ihl {
        state = L3State::Malformed;
    } else if ctx.data() + off + ihl > ctx.data_end() {
        // Options run past the end of the frame.
        state = L3State::Malformed;
    } else if frag & 0x1fff != 0 {
        state = L3State::Fragment;
    }
    let first_fragment = frag & 0x3fff == 0x2000;
    let mut ip_end = off + total_len;
    if ip_end > frame_len {
        ip_end = frame_len;
    }
    Some(L3 {
        src,
        state,
        next: proto,
        next_off: off + ihl,
        ip_end,
        ip_len: ip_end.saturating_sub(off),
        first_fragment,
    })
}

/// IPv6 fixed header at `off`. `None` if too short to read the source.
#[inline(always)]
pub fn parse_ipv6(ctx: &XdpContext, off: usize) -> Option<L3<[u8; 16]>> {
    let ip: *const Ipv6Hdr = ptr_at(ctx, off)?;
    let (vtc, payload_len, next, src) = unsafe {
        (
            (*ip).vtc_flow[0],
            be16((*ip).payload_len) as usize,
            (*ip).next,
            (*ip).src,
        )
    };
    let frame_len = ctx.data_end() - ctx.data();
    let next_off = off + size_of::<Ipv6Hdr>();
    // payload_len 0 is a jumbogram (hop-by-hop option): take the frame's end.
    let mut ip_end = if payload_len == 0 {
        frame_len
    } else {
        next_off + payload_len
    };
    if ip_end > frame_len {
        ip_end = frame_len;
    }
    Some(L3 {
        src,
        state: if vtc >> 4 == 6 {
            L3State::Ok
        } else {
            L3State::Malformed
        },
        next,
        next_off,
        ip_end,
        ip_len: ip_end.saturating_sub(off),
        first_fragment: false,
    })
}

/// The transport layer, as far as the verdict needs it.
pub enum L4 {
    Transport {
        proto: u8,
        dport: u16,
        payload_off: usize,
        payload_len: usize,
        /// A TCP SYN without ACK: a connection attempt.
        syn: bool,
    },
    /// ICMP, GRE, ESP...: not SIP.
    Other,
    Fragment,
    /// Extension chain too long to walk.
    Unparsed,
    Malformed,
}

/// Walks IPv6 extension headers (bounded). Returns the transport protocol,
/// its offset and whether a fragment header made this a first fragment, or
/// the verdict-relevant reason it could not get there.
#[inline(always)]
pub fn walk_ipv6_extensions(
    ctx: &XdpContext,
    next: u8,
    off: usize,
) -> Result<(u8, usize, bool), L4> {
    let mut next = next;
    let mut off = off;
    let mut first_fragment = false;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        match next {
            IPV6_HOPOPTS | IPV6_ROUTING | IPV6_DSTOPTS => {
                let h: *const [u8; 2] = ptr_at(ctx, off).ok_or(L4::Malformed)?;
                let (nh, len) = unsafe { ((*h)[0], (*h)[1]) };
                next = nh;
                off = forget_range(off + (len as usize + 1) * 8, OFFSET_MASK);
            }
            IPV6_AH => {
                let h: *const [u8; 2] = ptr_at(ctx, off).ok_or(L4::Malformed)?;
                let (nh, len) = unsafe { ((*h)[0], (*h)[1]) };
                next = nh;
                off = forget_range(off + (len as usize + 2) * 4, OFFSET_MASK);
            }
            IPV6_FRAGMENT => {
                let h: *const [u8; 8] = ptr_at(ctx, off).ok_or(L4::Malformed)?;
                let (nh, frag) = unsafe { ((*h)[0], be16([(*h)[2], (*h)[3]])) };
                if frag & 0xfff8 != 0 {
                    return Err(L4::Fragment);
                }
                first_fragment = frag & 1 != 0;
                next = nh;
                off = forget_range(off + 8, OFFSET_MASK);
            }
            _ => return Ok((next, off, first_fragment)),
        }
    }
    match next {
        IPV6_HOPOPTS | IPV6_ROUTING | IPV6_DSTOPTS | IPV6_AH | IPV6_FRAGMENT => Err(L4::Unparsed),
        _ => Ok((next, off, first_fragment)),
    }
}

/// UDP or TCP header at `off`; payload bounded by `ip_end`.
#[inline(always)]
pub fn parse_transport(ctx: &XdpContext, proto: u8, off: usize, ip_end: usize) -> L4 {
    match proto {
        IPPROTO_UDP => {
            let Some(udp) = ptr_at::<[u8; 8]>(ctx, off) else {
                return L4::Malformed;
            };
            let (dport, len) = unsafe {
                (
                    be16([(*udp)[2], (*udp)[3]]),
                    be16([(*udp)[4], (*udp)[5]]) as usize,
                )
            };
            if len < 8 {
                return L4::Malformed;
            }
            let payload_off = off + 8;
            let mut end = off + len;
            if end > ip_end {
                end = ip_end;
            }
            L4::Transport {
                proto,
                dport,
                payload_off,
                payload_len: end.saturating_sub(payload_off),
                syn: false,
            }
        }
        IPPROTO_TCP => {
            let Some(tcp) = ptr_at::<[u8; 20]>(ctx, off) else {
                return L4::Malformed;
            };
            let (dport, doff, flags) = unsafe {
                (
                    be16([(*tcp)[2], (*tcp)[3]]),
                    (((*tcp)[12] >> 4) as usize) * 4,
                    (*tcp)[13],
                )
            };
            if doff < 20 || off + doff > ip_end {
                return L4::Malformed;
            }
            let payload_off = off + doff;
            L4::Transport {
                proto,
                dport,
                payload_off,
                payload_len: ip_end - payload_off,
                // SYN set, ACK clear.
                syn: flags & 0x12 == 0x02,
            }
        }
        _ => L4::Other,
    }
}
