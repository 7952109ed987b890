//! The program's maps. Sizes here are compile-time defaults; userspace sets
//! the real ones at load time from its configuration.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, RingBuf},
};
use sipshield_common::{
    config::{UaPrefix, XdpConfig, MAX_UA_PREFIXES, SCRATCH_LEN},
    counters::COUNTERS_LEN,
    maps::{
        BanEntry, RangeEntry, SourceStats, DEFAULT_MAX_ALLOW, DEFAULT_MAX_BANS, DEFAULT_MAX_RANGES,
        DEFAULT_MAX_SOURCES, EVENTS_BYTES,
    },
};

#[map]
pub static ALLOW_V4: LpmTrie<[u8; 4], u32> = LpmTrie::with_max_entries(DEFAULT_MAX_ALLOW, 0);
#[map]
pub static ALLOW_V6: LpmTrie<[u8; 16], u32> = LpmTrie::with_max_entries(DEFAULT_MAX_ALLOW, 0);

// Plain hashes, not LRU: a ban must never be evicted to make room.
#[map]
pub static BANS_V4: HashMap<[u8; 4], BanEntry> = HashMap::with_max_entries(DEFAULT_MAX_BANS, 0);
#[map]
pub static BANS_V6: HashMap<[u8; 16], BanEntry> = HashMap::with_max_entries(DEFAULT_MAX_BANS, 0);

#[map]
pub static RANGES_V4: LpmTrie<[u8; 4], RangeEntry> =
    LpmTrie::with_max_entries(DEFAULT_MAX_RANGES, 0);
#[map]
pub static RANGES_V6: LpmTrie<[u8; 16], RangeEntry> =
    LpmTrie::with_max_entries(DEFAULT_MAX_RANGES, 0);

// LRU: under a spoofed-source flood the oldest sources are forgotten, which
// is fine for accounting (bans live in BANS_*).
#[map]
pub static SOURCES_V4: LruHashMap<[u8; 4], SourceStats> =
    LruHashMap::with_max_entries(DEFAULT_MAX_SOURCES, 0);
#[map]
pub static SOURCES_V6: LruHashMap<[u8; 16], SourceStats> =
    LruHashMap::with_max_entries(DEFAULT_MAX_SOURCES, 0);

#[map]
pub static CONFIG: Array<XdpConfig> = Array::with_max_entries(1, 0);
#[map]
pub static UA_PREFIXES: Array<UaPrefix> = Array::with_max_entries(MAX_UA_PREFIXES, 0);

#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTERS_LEN, 0);

#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// Per-CPU scratch space: the copied start of a SIP payload (the bytes past
/// the copied length are stale and never trusted).
#[repr(C, align(8))]
pub struct Scratch {
    pub payload: [u8; SCRATCH_LEN],
    /// See `packet::forget_range`.
    pub slot: u64,
}

#[map]
pub static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);
