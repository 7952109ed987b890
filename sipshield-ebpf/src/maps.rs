//! The program's maps. Sizes here are compile-time defaults; userspace sets
//! the real ones at load time from its configuration.

use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_F_NO_PREALLOC},
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, RingBuf},
};
use sipshield_common::{
    config::{UaPrefix, XdpConfig, MAX_UA_PREFIXES, SCRATCH_LEN},
    counters::{COUNTERS_LEN, IFINDEX_LIMIT, VERDICTS_ENTRIES},
    maps::{
        AllowEntry, BanEntry, KnownEntry, Meta, RangeEntry, SourceStats, BAN_FILTER_WORDS,
        DEFAULT_MAX_ALLOW, DEFAULT_MAX_BANS, DEFAULT_MAX_KERNEL_BANS, DEFAULT_MAX_KNOWN,
        DEFAULT_MAX_RANGES, DEFAULT_MAX_SOURCES, EVENTS_BYTES,
    },
};

// The program only reads the allowlist, except the cap state of a capped
// entry.
#[map]
pub static ALLOW_V4: LpmTrie<[u8; 4], AllowEntry> = LpmTrie::with_max_entries(DEFAULT_MAX_ALLOW, 0);
#[map]
pub static ALLOW_V6: LpmTrie<[u8; 16], AllowEntry> =
    LpmTrie::with_max_entries(DEFAULT_MAX_ALLOW, 0);

/// Hash maps only userspace writes take their entries' memory as entries
/// arrive (the buckets, 16 bytes an entry, still up front): preallocated,
/// a million bans a family cost ~200 MB of kernel memory and most of a
/// second at every start, on hosts that mostly hold a few thousand. The
/// kernel's lookups are the same either way.
const USERSPACE_WRITTEN: u32 = BPF_F_NO_PREALLOC;

// Log, operator (and later fleet) bans: plain hashes written only by
// userspace, which keeps each origin within its share and never puts an
// allowlisted address here (so this table can be looked up first).
#[map]
pub static BANS_V4: HashMap<[u8; 4], BanEntry> =
    HashMap::with_max_entries(DEFAULT_MAX_BANS, USERSPACE_WRITTEN);
#[map]
pub static BANS_V6: HashMap<[u8; 16], BanEntry> =
    HashMap::with_max_entries(DEFAULT_MAX_BANS, USERSPACE_WRITTEN);

// In front of BANS_V4/V6: a clear bit means not banned there (see
// `sipshield_common::maps::BAN_FILTER_BITS_LOG2`). Mappable: userspace sets
// bits with atomic ORs, no read-modify-write through syscalls to race.
#[map]
pub static BAN_FILTER: Array<u64> = Array::with_max_entries(BAN_FILTER_WORDS, BPF_F_MMAPABLE);

// The kernel's own share (rate guard, scanner): LRU, so a flood of forged
// offenders forgets its oldest kernel bans instead of filling anything.
#[map]
pub static KBANS_V4: LruHashMap<[u8; 4], BanEntry> =
    LruHashMap::with_max_entries(DEFAULT_MAX_KERNEL_BANS, 0);
#[map]
pub static KBANS_V6: LruHashMap<[u8; 16], BanEntry> =
    LruHashMap::with_max_entries(DEFAULT_MAX_KERNEL_BANS, 0);

// Known-good sources (authenticated): never banned by the kernel.
#[map]
pub static KNOWN_V4: HashMap<[u8; 4], KnownEntry> =
    HashMap::with_max_entries(DEFAULT_MAX_KNOWN, USERSPACE_WRITTEN);
#[map]
pub static KNOWN_V6: HashMap<[u8; 16], KnownEntry> =
    HashMap::with_max_entries(DEFAULT_MAX_KNOWN, USERSPACE_WRITTEN);

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

// The first-sight filter: a source gets an entry in SOURCES_* only at its
// second message (or its first scanner hit), so a flood of forged one-off
// sources neither pays for LRU inserts nor evicts the sources that matter.
// Per CPU, direct-mapped by a keyed hash; not pinned (a new program starts
// it empty: at worst one message per source goes unpoliced).
pub const SEEN_SLOTS: u32 = 1 << 16;

/// A remembered first sight: the source and the method it sent.
#[repr(C)]
pub struct Seen<const N: usize> {
    pub addr: [u8; N],
    /// `Method` as u32, plus one (0: the slot is empty).
    pub method: u32,
}

#[map]
pub static SEEN_V4: PerCpuArray<Seen<4>> = PerCpuArray::with_max_entries(SEEN_SLOTS, 0);
#[map]
pub static SEEN_V6: PerCpuArray<Seen<16>> = PerCpuArray::with_max_entries(SEEN_SLOTS, 0);

#[map]
pub static CONFIG: Array<XdpConfig> = Array::with_max_entries(1, 0);
#[map]
pub static UA_PREFIXES: Array<UaPrefix> = Array::with_max_entries(MAX_UA_PREFIXES, 0);

#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTERS_LEN, 0);

/// Interface slot by ifindex (0: not counted apart).
#[map]
pub static IFACE_SLOTS: Array<u32> = Array::with_max_entries(IFINDEX_LIMIT, 0);
/// Verdict counters, a block per interface slot.
#[map]
pub static VERDICTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(VERDICTS_ENTRIES, 0);

#[map]
pub static META: Array<Meta> = Array::with_max_entries(1, 0);

#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// Per-CPU scratch space: the copied start of a SIP payload (the bytes past
/// the copied length are stale and never trusted), and the state of the
/// `bpf_loop` scans over it.
#[repr(C, align(8))]
pub struct Scratch {
    pub payload: [u8; SCRATCH_LEN],
    /// See `packet::forget_range`.
    pub slot: u64,
    pub scan: ScanState,
}

/// What the scan callbacks share. In map memory rather than on the stack:
/// the verifier does not track values there, so a callback whose state
/// changes every step (a cursor) still converges after one pass.
#[repr(C)]
pub struct ScanState {
    /// Valid payload bytes in `payload`.
    pub len: u64,
    /// Where the line-start search goes on.
    pub cursor: u64,
    /// Offset just past the `User-Agent` name (where the next search resumes).
    pub name_end: u64,
    /// Set once the value skip passed the colon.
    pub colon: u64,
    /// Set when the empty line that ends the headers was seen.
    pub ended: u64,
    /// First byte of the header value.
    pub value: u64,
    /// Set when a prefix matched.
    pub matched: u64,
    /// Messages counted in a TCP segment.
    pub messages: u64,
    /// User-Agent scan: which step runs next (`sip::PHASE_*`).
    pub phase: u64,
    /// User-Agent headers looked at so far.
    pub rounds: u64,
    /// Prefixes configured.
    pub prefixes: u64,
    /// Set when the scan finished (matched, headers ended, window or
    /// rounds exhausted) rather than running out of steps.
    pub done: u64,
    /// Set when more User-Agent headers were left than are looked at.
    pub exhausted: u64,
}

#[map]
pub static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);
