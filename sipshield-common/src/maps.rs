//! Map names, value types and key layouts.
//!
//! Keys: IPv4 addresses are `[u8; 4]`, IPv6 `[u8; 16]`, network byte order.
//! LPM tries use the kernel's `{ prefixlen: u32 (host order), data }` key.

pub const ALLOW_V4: &str = "ALLOW_V4";
pub const ALLOW_V6: &str = "ALLOW_V6";
pub const BANS_V4: &str = "BANS_V4";
pub const BANS_V6: &str = "BANS_V6";
pub const KBANS_V4: &str = "KBANS_V4";
pub const KBANS_V6: &str = "KBANS_V6";
pub const RANGES_V4: &str = "RANGES_V4";
pub const RANGES_V6: &str = "RANGES_V6";
pub const KNOWN_V4: &str = "KNOWN_V4";
pub const KNOWN_V6: &str = "KNOWN_V6";
pub const SOURCES_V4: &str = "SOURCES_V4";
pub const SOURCES_V6: &str = "SOURCES_V6";
pub const CONFIG: &str = "CONFIG";
pub const UA_PREFIXES: &str = "UA_PREFIXES";
pub const COUNTERS: &str = "COUNTERS";
pub const IFACE_SLOTS: &str = "IFACE_SLOTS";
pub const VERDICTS: &str = "VERDICTS";
pub const EVENTS: &str = "EVENTS";
pub const META: &str = "META";
pub const BAN_FILTER: &str = "BAN_FILTER";

/// Layout of the pinned maps (names, key and value types). A sipshield
/// whose layout differs from the pinned one migrates every entry into new
/// maps; one with the same layout reuses them.
pub const LAYOUT_VERSION: u32 = 6;

/// The ban filter in front of `BANS_V4`/`BANS_V6`: one bit per hash slot,
/// set by userspace before it writes a ban (and never cleared), so a clear
/// bit means "not in the exact ban table" and the program skips a lookup
/// into its bucket array (16 MB at 1M bans): a source not banned, the
/// usual case and every packet of a random-source flood, costs a bit test
/// in 1 MB instead of a TLB and cache miss. A set bit is only a "maybe":
/// the table decides. At 1M bans about one bit in nine is set.
pub const BAN_FILTER_BITS_LOG2: u32 = 23;
/// 64-bit words of the filter (an array map).
pub const BAN_FILTER_WORDS: u32 = 1 << (BAN_FILTER_BITS_LOG2 - 6);

/// Where an address's bit is: (word, mask). The same on both sides (the
/// program and userspace share this code). Addresses are read big-endian:
/// the bytes that differ between neighbours (the last octet, the next /64)
/// are the low bits, which the multiplication carries into the slot bits.
#[inline(always)]
pub fn ban_filter_slot_v4(a: &[u8; 4]) -> (u32, u64) {
    let x = u32::from_be_bytes(*a) as u64;
    filter_slot(x.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

#[inline(always)]
pub fn ban_filter_slot_v6(a: &[u8; 16]) -> (u32, u64) {
    let net = u64::from_be_bytes([a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]]);
    let host = u64::from_be_bytes([a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]]);
    let x = net.wrapping_mul(0xc2b2_ae3d_27d4_eb4f) ^ host;
    // A v4 and a v6 address may share a bit: that only costs a lookup.
    filter_slot((x ^ (x >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Multiplicative hashing: the top bits of the product are the slot.
#[inline(always)]
fn filter_slot(h: u64) -> (u32, u64) {
    let bit = h >> (64 - BAN_FILTER_BITS_LOG2);
    ((bit >> 6) as u32, 1u64 << (bit & 63))
}

/// Compiled-in sizes; userspace overrides them at load time from configuration.
pub const DEFAULT_MAX_BANS: u32 = 1 << 20;
pub const DEFAULT_MAX_RANGES: u32 = 1 << 16;
pub const DEFAULT_MAX_ALLOW: u32 = 1 << 12;
pub const DEFAULT_MAX_SOURCES: u32 = 1 << 16;
/// The kernel's own share of bans (rate guard, scanner): an LRU of its own,
/// so a flood of forged offenders can never take the room of log and
/// operator bans.
pub const DEFAULT_MAX_KERNEL_BANS: u32 = 1 << 16;
pub const DEFAULT_MAX_KNOWN: u32 = 1 << 14;
pub const EVENTS_BYTES: u32 = 1 << 18;

/// Who created a ban (`BanEntry::origin`, `RangeEntry::origin`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BanOrigin {
    /// The daemon from log failures (and bans restored from its state).
    Userspace = 0,
    /// The kernel rate guard.
    RateGuard = 1,
    /// The kernel scanner signature.
    Scanner = 2,
    /// An operator (`sipshield bans add`).
    Operator = 3,
    /// A CrowdSec decision (the bouncer's pull from LAPI).
    CrowdSec = 4,
    /// A blocklist feed.
    Feed = 5,
}

impl BanOrigin {
    pub const fn from_u32(v: u32) -> BanOrigin {
        match v {
            1 => BanOrigin::RateGuard,
            2 => BanOrigin::Scanner,
            3 => BanOrigin::Operator,
            4 => BanOrigin::CrowdSec,
            5 => BanOrigin::Feed,
            _ => BanOrigin::Userspace,
        }
    }

    /// Made by the program itself: lives in the kernel's share (`KBANS_*`).
    pub const fn is_kernel(self) -> bool {
        matches!(self, BanOrigin::RateGuard | BanOrigin::Scanner)
    }

    /// From the fleet (CrowdSec, feeds): the daemon's fleet book holds
    /// these, never its policy.
    pub const fn is_fleet(self) -> bool {
        matches!(self, BanOrigin::CrowdSec | BanOrigin::Feed)
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
///
/// An LPM trie returns only the longest matching prefix, so an expired
/// narrow range would hide an active wider one. Userspace therefore keeps
/// `expires_ns` as the *effective* expiry: the latest of this range's own
/// (`own_expires_ns`) and those of every range containing it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeEntry {
    pub created_ns: u64,
    /// Effective expiry, what the program reads; 0 = permanent.
    pub expires_ns: u64,
    /// This range's own expiry; 0 = permanent.
    pub own_expires_ns: u64,
    pub origin: u32,
    /// 1 when userspace made sure no allowlisted prefix overlaps this
    /// range: the program then drops without looking at the allowlist
    /// (ranges are looked up before it). 0, the default, is always safe.
    pub no_allow_inside: u32,
}

impl RangeEntry {
    pub const fn is_active(&self, now_ns: u64) -> bool {
        self.expires_ns == 0 || now_ns < self.expires_ns
    }
}

/// Value of the allowlist tries: an optional rate cap for the whole entry
/// (excess dropped and counted, never banned). `cap.interval_ns == 0`:
/// uncapped, every packet passes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllowEntry {
    pub cap: crate::config::RateLimit,
    /// GCRA state of the cap, written by the program.
    pub tat_ns: u64,
}

/// Value of the known-good source tables (`KNOWN_*`): sources that proved
/// themselves (an authenticated registration). Never banned by the kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KnownEntry {
    /// Monotonic ns after which the source is unknown again; 0 = no expiry.
    pub expires_ns: u64,
}

impl KnownEntry {
    pub const fn is_active(&self, now_ns: u64) -> bool {
        self.expires_ns == 0 || now_ns < self.expires_ns
    }
}

/// The one-entry `META` array: which layout and which program build the
/// pinned maps belong to (written by userspace at attach).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// `LAYOUT_VERSION` of the maps.
    pub layout: u32,
    pub _pad: u32,
    /// Hash of the program object that is attached.
    pub build_id: u64,
}

/// `SourceStats::flags`: scanner signature already reported for this source.
pub const SRC_SCANNER_REPORTED: u32 = 1;
/// `SourceStats::flags`: a failed/observe-mode ban already reported.
pub const SRC_BAN_REPORTED: u32 = 2;

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
    /// The flood buckets' (charged by every message; over them: banned).
    pub register_flood_tat_ns: u64,
    pub message_flood_tat_ns: u64,
    /// The extra buckets of a known-good source (what its police buckets
    /// cannot take).
    pub known_register_tat_ns: u64,
    pub known_message_tat_ns: u64,
    /// Start of the current run of policed messages (none more than
    /// `POLICE_GAP_NS` apart), and the last policed message; 0: none yet.
    pub policed_since_ns: u64,
    pub last_policed_ns: u64,
    /// `SRC_*` bits.
    pub flags: u32,
    /// Requests with a scanner signature seen from this source.
    pub scanner_hits: u32,
}

impl SourceStats {
    pub fn total_messages(&self) -> u64 {
        self.methods.iter().sum()
    }
}

#[cfg(test)]
mod ban_filter_tests {
    extern crate std;
    use super::*;

    /// Bits taken by `n` neighbouring addresses, of `n`: the filter only
    /// saves lookups if neighbours (a /24 banned address by address, a
    /// run of /64s) spread over it.
    fn spread(n: u32, slot: impl Fn(u32) -> (u32, u64)) -> f64 {
        let mut bits = std::collections::HashSet::new();
        for i in 0..n {
            let (w, m) = slot(i);
            assert!(w < BAN_FILTER_WORDS && m.count_ones() == 1);
            bits.insert((w, m));
        }
        bits.len() as f64 / f64::from(n)
    }

    #[test]
    fn neighbouring_addresses_take_their_own_bits() {
        let n = 100_000;
        let v4 = spread(n, |i| {
            ban_filter_slot_v4(&(0x0a00_0000u32 + i).to_be_bytes())
        });
        let hosts = spread(n, |i| {
            ban_filter_slot_v6(&((0x2001_0db8u128 << 96) + u128::from(i)).to_be_bytes())
        });
        let nets = spread(n, |i| {
            ban_filter_slot_v6(&((0x2001_0db8u128 << 96) + (u128::from(i) << 64)).to_be_bytes())
        });
        for (what, f) in [("v4", v4), ("v6 hosts", hosts), ("v6 /64s", nets)] {
            assert!(f > 0.98, "{what}: {f}");
        }
    }
}
