//! Records the XDP program sends to userspace through the `EVENTS` ring buffer.

#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The kernel banned `addr` (rate guard or scanner signature).
    KernelBan = 0,
    /// The kernel tried to ban `addr`, but the ban table was full.
    BanFailed = 1,
    /// Observe mode: the kernel would have banned `addr`.
    WouldBan = 2,
    /// Scanner signature seen from `addr` with the count-only action
    /// (reported once per source while it stays in the source table).
    ScannerSeen = 3,
}

impl EventKind {
    pub const fn from_u8(v: u8) -> Option<EventKind> {
        match v {
            0 => Some(EventKind::KernelBan),
            1 => Some(EventKind::BanFailed),
            2 => Some(EventKind::WouldBan),
            3 => Some(EventKind::ScannerSeen),
            _ => None,
        }
    }
}

pub const FAMILY_V4: u8 = 4;
pub const FAMILY_V6: u8 = 6;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// `EventKind` as u8.
    pub kind: u8,
    /// `Reason::RateGuard` or `Reason::Scanner`, as u8.
    pub reason: u8,
    /// `FAMILY_V4` (address in `addr[..4]`) or `FAMILY_V6`.
    pub family: u8,
    /// `Method` of the packet that tripped it.
    pub method: u8,
    pub _pad: [u8; 4],
    /// Network byte order.
    pub addr: [u8; 16],
    /// When (monotonic ns).
    pub at_ns: u64,
    /// Ban expiry (monotonic ns), 0 = permanent.
    pub expires_ns: u64,
}

impl Event {
    pub const SIZE: usize = core::mem::size_of::<Event>();

    /// Decodes a ring-buffer record; `None` if it is not an `Event`.
    pub fn from_bytes(bytes: &[u8]) -> Option<Event> {
        if bytes.len() < Self::SIZE {
            return None;
        }
        // SAFETY: length checked; Event is plain old data of integers, read
        // unaligned because ring-buffer records carry no alignment promise
        // for userspace slices.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr() as *const Event) })
    }
}
