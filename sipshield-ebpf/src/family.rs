//! One verdict pipeline for both address families: `Family` binds an
//! address type to its maps.

use aya_ebpf::maps::lpm_trie::Key;
use sipshield_common::{
    event::{FAMILY_V4, FAMILY_V6},
    maps::{BanEntry, SourceStats},
};

use crate::maps::{
    ALLOW_V4, ALLOW_V6, BANS_V4, BANS_V6, RANGES_V4, RANGES_V6, SOURCES_V4, SOURCES_V6,
};

pub trait Family {
    type Addr: Copy;
    const FAMILY: u8;
    fn allowlisted(a: &Self::Addr) -> bool;
    fn ban(a: &Self::Addr) -> Option<*const BanEntry>;
    fn insert_ban(a: &Self::Addr, e: &BanEntry, flags: u64) -> Result<(), i32>;
    fn range_banned(a: &Self::Addr) -> bool;
    fn source(a: &Self::Addr) -> Option<*mut SourceStats>;
    fn insert_source(a: &Self::Addr, s: &SourceStats) -> Result<(), i32>;
    fn to_event_addr(a: &Self::Addr) -> [u8; 16];
}

pub struct V4;
pub struct V6;

impl Family for V4 {
    type Addr = [u8; 4];
    const FAMILY: u8 = FAMILY_V4;

    #[inline(always)]
    fn allowlisted(a: &[u8; 4]) -> bool {
        ALLOW_V4.get(Key::new(32, *a)).is_some()
    }
    #[inline(always)]
    fn ban(a: &[u8; 4]) -> Option<*const BanEntry> {
        BANS_V4.get_ptr(a)
    }
    #[inline(always)]
    fn insert_ban(a: &[u8; 4], e: &BanEntry, flags: u64) -> Result<(), i32> {
        BANS_V4.insert(a, e, flags)
    }
    #[inline(always)]
    fn range_banned(a: &[u8; 4]) -> bool {
        RANGES_V4.get(Key::new(32, *a)).is_some()
    }
    #[inline(always)]
    fn source(a: &[u8; 4]) -> Option<*mut SourceStats> {
        SOURCES_V4.get_ptr_mut(a)
    }
    #[inline(always)]
    fn insert_source(a: &[u8; 4], s: &SourceStats) -> Result<(), i32> {
        SOURCES_V4.insert(a, s, 0)
    }
    #[inline(always)]
    fn to_event_addr(a: &[u8; 4]) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[0] = a[0];
        out[1] = a[1];
        out[2] = a[2];
        out[3] = a[3];
        out
    }
}

impl Family for V6 {
    type Addr = [u8; 16];
    const FAMILY: u8 = FAMILY_V6;

    #[inline(always)]
    fn allowlisted(a: &[u8; 16]) -> bool {
        ALLOW_V6.get(Key::new(128, *a)).is_some()
    }
    #[inline(always)]
    fn ban(a: &[u8; 16]) -> Option<*const BanEntry> {
        BANS_V6.get_ptr(a)
    }
    #[inline(always)]
    fn insert_ban(a: &[u8; 16], e: &BanEntry, flags: u64) -> Result<(), i32> {
        BANS_V6.insert(a, e, flags)
    }
    #[inline(always)]
    fn range_banned(a: &[u8; 16]) -> bool {
        RANGES_V6.get(Key::new(128, *a)).is_some()
    }
    #[inline(always)]
    fn source(a: &[u8; 16]) -> Option<*mut SourceStats> {
        SOURCES_V6.get_ptr_mut(a)
    }
    #[inline(always)]
    fn insert_source(a: &[u8; 16], s: &SourceStats) -> Result<(), i32> {
        SOURCES_V6.insert(a, s, 0)
    }
    #[inline(always)]
    fn to_event_addr(a: &[u8; 16]) -> [u8; 16] {
        *a
    }
}
