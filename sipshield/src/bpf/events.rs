//! Kernel-side bans and reports from the `EVENTS` ring buffer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, RawFd};

use aya::maps::{MapData, RingBuf};
use sipshield_common::{
    counters::Reason,
    event::{Event, EventKind, FAMILY_V4},
    sip::Method,
};

/// One decoded ring-buffer record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelEvent {
    pub kind: EventKind,
    pub reason: Reason,
    pub ip: IpAddr,
    pub method: Option<Method>,
    /// Monotonic ns.
    pub at_ns: u64,
    /// Monotonic ns; 0 = permanent.
    pub expires_ns: u64,
}

impl KernelEvent {
    pub fn decode(bytes: &[u8]) -> Option<KernelEvent> {
        let e = Event::from_bytes(bytes)?;
        let ip = if e.family == FAMILY_V4 {
            IpAddr::V4(Ipv4Addr::new(e.addr[0], e.addr[1], e.addr[2], e.addr[3]))
        } else {
            IpAddr::V6(Ipv6Addr::from(e.addr))
        };
        Some(KernelEvent {
            kind: EventKind::from_u8(e.kind)?,
            reason: Reason::from_u32(u32::from(e.reason))?,
            ip,
            method: Method::ALL.get(usize::from(e.method)).copied(),
            at_ns: e.at_ns,
            expires_ns: e.expires_ns,
        })
    }
}

pub struct EventStream {
    ring: RingBuf<MapData>,
}

impl EventStream {
    pub(crate) fn new(ring: RingBuf<MapData>) -> Self {
        EventStream { ring }
    }

    /// Everything queued now; never blocks. Undecodable records are skipped.
    pub fn drain(&mut self) -> Vec<KernelEvent> {
        let mut out = Vec::new();
        while let Some(item) = self.ring.next() {
            if let Some(e) = KernelEvent::decode(&item) {
                out.push(e);
            }
        }
        out
    }
}

/// For epoll/`AsyncFd`: readable when records are queued.
impl AsRawFd for EventStream {
    fn as_raw_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }
}
