//! One verdict pipeline for both address families: `Family` binds an
//! address type to its maps.

use aya_ebpf::maps::lpm_trie::Key;
use sipshield_common::{
    event::{FAMILY_V4, FAMILY_V6},
    maps::{
        ban_filter_slot_v4, ban_filter_slot_v6, AllowEntry, BanEntry, KnownEntry, RangeEntry,
        SourceStats,
    },
};

use crate::maps::{
    ALLOW_V4, ALLOW_V6, BANS_V4, BANS_V6, BAN_FILTER, KBANS_V4, KBANS_V6, KNOWN_V4, KNOWN_V6,
    RANGES_V4, RANGES_V6, SEEN_SLOTS, SEEN_V4, SEEN_V6, SOURCES_V4, SOURCES_V6,
};

/// Slot of `words` in the first-sight filter: a keyed multiply-xor hash.
#[inline(always)]
fn seen_index(words: &[u32], seed: u64) -> u32 {
    let mut h = seed;
    for w in words {
        h = (h ^ u64::from(*w)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    ((h >> 32) as u32) & (SEEN_SLOTS - 1)
}

pub trait Family {
    type Addr: Copy;
    const FAMILY: u8;
    /// Log and operator bans: looked up only when the ban filter's bit of
    /// `a` is set (a clear bit: not in the table).
    fn ban(a: &Self::Addr) -> Option<*const BanEntry>;
    /// The allowlist entry covering `a` (mutable: a capped entry keeps its
    /// bucket state in the value).
    fn allow(a: &Self::Addr) -> Option<*mut AllowEntry>;
    fn range(a: &Self::Addr) -> Option<*const RangeEntry>;
    /// The kernel's own bans.
    fn kernel_ban(a: &Self::Addr) -> Option<*const BanEntry>;
    fn insert_kernel_ban(a: &Self::Addr, e: &BanEntry) -> Result<(), i32>;
    fn known(a: &Self::Addr) -> Option<*const KnownEntry>;
    fn source(a: &Self::Addr) -> Option<*mut SourceStats>;
    fn insert_source(a: &Self::Addr, s: &SourceStats) -> Result<(), i32>;
    /// The method `a` sent when it was last seen in its first-sight slot
    /// (keyed hash `seed`), clearing the slot; otherwise remembers `a` and
    /// `method` there and returns `None`.
    fn seen_before(a: &Self::Addr, seed: u64, method: u8) -> Option<u8>;
    fn to_event_addr(a: &Self::Addr) -> [u8; 16];
}

pub struct V4;
pub struct V6;

/// True unless the ban filter rules `slot`'s address out of the exact ban
/// table (a missing word, which cannot happen, also says "look").
#[inline(always)]
fn maybe_banned((word, mask): (u32, u64)) -> bool {
    match BAN_FILTER.get(word) {
        Some(bits) => *bits & mask != 0,
        None => true,
    }
}

macro_rules! family {
    ($ty:ident, $n:literal, $fam:expr, $slot:ident, $allow:ident, $bans:ident, $ranges:ident, $kbans:ident, $known:ident, $sources:ident, $seen:ident) => {
        impl Family for $ty {
            type Addr = [u8; $n];
            const FAMILY: u8 = $fam;

            #[inline(always)]
            fn ban(a: &[u8; $n]) -> Option<*const BanEntry> {
                if !maybe_banned($slot(a)) {
                    return None;
                }
                $bans.get_ptr(a)
            }
            #[inline(always)]
            fn allow(a: &[u8; $n]) -> Option<*mut AllowEntry> {
                $allow
                    .get(Key::new(8 * $n, *a))
                    .map(|e| e as *const AllowEntry as *mut AllowEntry)
            }
            #[inline(always)]
            fn range(a: &[u8; $n]) -> Option<*const RangeEntry> {
                $ranges
                    .get(Key::new(8 * $n, *a))
                    .map(|e| e as *const RangeEntry)
            }
            #[inline(always)]
            fn kernel_ban(a: &[u8; $n]) -> Option<*const BanEntry> {
                $kbans.get_ptr(a)
            }
            #[inline(always)]
            fn insert_kernel_ban(a: &[u8; $n], e: &BanEntry) -> Result<(), i32> {
                // BPF_ANY: an expired entry is replaced (it must not block a
                // new ban of a repeat offender).
                $kbans.insert(a, e, 0).map_err(|e| e as i32)
            }
            #[inline(always)]
            fn known(a: &[u8; $n]) -> Option<*const KnownEntry> {
                $known.get_ptr(a)
            }
            #[inline(always)]
            fn source(a: &[u8; $n]) -> Option<*mut SourceStats> {
                $sources.get_ptr_mut(a)
            }
            #[inline(always)]
            fn insert_source(a: &[u8; $n], s: &SourceStats) -> Result<(), i32> {
                $sources.insert(a, s, 0).map_err(|e| e as i32)
            }
            #[inline(always)]
            fn seen_before(a: &[u8; $n], seed: u64, method: u8) -> Option<u8> {
                let mut words = [0u32; $n / 4];
                let mut i = 0;
                while i < $n / 4 {
                    words[i] =
                        u32::from_ne_bytes([a[4 * i], a[4 * i + 1], a[4 * i + 2], a[4 * i + 3]]);
                    i += 1;
                }
                let slot = $seen.get_ptr_mut(seen_index(&words, seed))?;
                unsafe {
                    if (*slot).method != 0 && (*slot).addr == *a {
                        let earlier = ((*slot).method - 1) as u8;
                        (*slot).method = 0;
                        return Some(earlier);
                    }
                    (*slot).addr = *a;
                    (*slot).method = u32::from(method) + 1;
                }
                None
            }
            #[inline(always)]
            fn to_event_addr(a: &[u8; $n]) -> [u8; 16] {
                let mut out = [0u8; 16];
                let mut i = 0;
                while i < $n {
                    out[i] = a[i];
                    i += 1;
                }
                out
            }
        }
    };
}

family!(
    V4,
    4,
    FAMILY_V4,
    ban_filter_slot_v4,
    ALLOW_V4,
    BANS_V4,
    RANGES_V4,
    KBANS_V4,
    KNOWN_V4,
    SOURCES_V4,
    SEEN_V4
);
family!(
    V6,
    16,
    FAMILY_V6,
    ban_filter_slot_v6,
    ALLOW_V6,
    BANS_V6,
    RANGES_V6,
    KBANS_V6,
    KNOWN_V6,
    SOURCES_V6,
    SEEN_V6
);
