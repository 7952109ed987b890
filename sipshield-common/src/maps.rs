//! Map names, value types and key layouts.
//!
//! Keys: IPv4 addresses are `[u8; 4]`, IPv6 `[u8; 16]`, network byte order.
//! LPM tries use the kernel's `{ prefixlen: u32 (host order), data }` key.

pub const ALLOW_V4: &str = "ALLOW_V4";
pub const ALLOW_V6: &str = "ALLOW_V6";
pub const BANS_V4: &str = "BANS_V4";
pub const BANS_V6: &str = "BANS_V6";
pub const RANGES_V4: &str = "RANGES_V4";
pub const RANGES_V6: &str = "RANGES_V6";
pub const SOURCES_V4: &str = "SOURCES_V4";
pub const SOURCES_V6: &str = "SOURCES_V6";
pub const CONFIG: &str = "CONFIG";
pub const UA_PREFIXES: &str = "UA_PREFIXES";
pub const COUNTERS: &str = "COUNTERS";
pub const EVENTS: &str = "EVENTS";

/// Compiled-in sizes; userspace overrides them at load time from configuration.
pub const DEFAULT_MAX_BANS: u32 = 1 << 20;
pub const DEFAULT_MAX_RANGES: u32 = 1 << 16;
pub const DEFAULT_MAX_ALLOW: u32 = 1 << 12;
pub const DEFAULT_MAX_SOURCES: u32 = 1 << 16;
pub const EVENTS_BYTES: u32 = 1 << 18;

/// Who created a ban (`BanEntry::origin`, `RangeEntry::origin`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BanOrigin {
    /// The daemon or CLI (log failures, manual bans, restored state).
    Userspace = 0,
    /// The kernel rate guard.
    RateGuard = 1,
    /// The kernel scanner signature.
    Scanner = 2,
}

impl BanOrigin {
    pub const fn from_u32(v: u32) -> BanOrigin {
        match v {
            1 => BanOrigin::RateGuard,
            2 => BanOrigin::Scanner,
            _ => BanOrigin::Userspace,
        }
    }
}

/// Value of the exact ban tables.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BanEntry {
    /// Monotonic ns after which the ban no longer applies; 0 = permanent.
    pub expires_ns: u64,
    /// Monotonic ns when it was made.
    pub created_ns: u64,
    /// `BanOrigin` as u32.
    pub origin: u32,
    pub _pad: u32,
}

impl BanEntry {
    pub const fn is_active(&self, now_ns: u64) -> bool {
        self.expires_ns == 0 || now_ns < self.expires_ns
    }
}

/// Value of the range (CIDR) ban tries.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeEntry {
    pub created_ns: u64,
    pub origin: u32,
    pub _pad: u32,
}

/// `SourceStats::flags`: scanner signature already reported for this source.
pub const SRC_SCANNER_REPORTED: u64 = 1;
/// `SourceStats::flags`: a failed/observe-mode ban already reported.
pub const SRC_BAN_REPORTED: u64 = 2;

/// Per-source SIP accounting (LRU hash, v4 and v6), also the rate-guard state.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Indexed by `Method`.
    pub methods: [u64; crate::sip::Method::COUNT],
    /// Bytes of the counted packets (from the IP header on).
    pub bytes: u64,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    /// GCRA theoretical arrival time of the REGISTER bucket.
    pub register_tat_ns: u64,
    /// GCRA theoretical arrival time of the all-messages bucket.
    pub message_tat_ns: u64,
    /// `SRC_*` bits.
    pub flags: u64,
}

impl SourceStats {
    pub fn total_messages(&self) -> u64 {
        self.methods.iter().sum()
    }
}
