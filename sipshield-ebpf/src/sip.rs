//! SIP payload inspection on the per-CPU copy of the first payload bytes:
//! the request method, and the scanner User-Agent signature.
//!
//! Comparisons are branch-free on 8-byte words (`(x | fold) ^ want) & mask`):
//! the verifier walks every branch, and byte-by-byte compares over a 512-byte
//! scan multiply its paths beyond its limits.

use core::ffi::c_void;

use aya_ebpf::helpers::bpf_loop;
use sipshield_common::{
    config::{MAX_UA_PREFIXES, SCRATCH_LEN, UA_SCAN_LIMIT},
    sip::Method,
};

use crate::maps::{SCRATCH, UA_PREFIXES};

/// Scan offsets are masked with this, so `offset + 64` stays in the buffer.
const MASK: usize = UA_SCAN_LIMIT - 1;
const _: () = assert!(UA_SCAN_LIMIT.is_power_of_two() && SCRATCH_LEN >= UA_SCAN_LIMIT + 48);

type Buf = [u8; SCRATCH_LEN];

/// Little-endian u64 at any offset below `UA_SCAN_LIMIT` (byte loads, no
/// alignment needed).
#[inline(always)]
fn word_at(buf: &Buf, off: usize) -> u64 {
    let base = off & MASK;
    let mut x = 0u64;
    for i in 0..8 {
        // In bounds: base <= 511, +7 < SCRATCH_LEN.
        x |= (unsafe { *buf.as_ptr().add(base + i) } as u64) << (8 * i);
    }
    x
}

#[inline(always)]
fn byte_at(buf: &Buf, off: usize) -> u8 {
    unsafe { *buf.as_ptr().add(off & MASK) }
}

/// A pattern of up to 16 bytes as two words, for `(x | fold) ^ want) & mask`.
#[derive(Clone, Copy)]
struct Pattern {
    want: [u64; 2],
    fold: [u64; 2],
    mask: [u64; 2],
}

const fn pattern(s: &[u8], fold_letters: bool) -> Pattern {
    let mut p = Pattern {
        want: [0; 2],
        fold: [0; 2],
        mask: [0; 2],
    };
    let mut j = 0;
    while j < s.len() {
        let b = s[j];
        let letter = b.is_ascii_alphabetic();
        let shift = 8 * (j % 8);
        p.want[j / 8] |= (if fold_letters {
            b.to_ascii_lowercase()
        } else {
            b
        } as u64)
            << shift;
        if fold_letters && letter {
            p.fold[j / 8] |= 0x20 << shift;
        }
        p.mask[j / 8] |= 0xff << shift;
        j += 1;
    }
    p
}

/// True when the pattern matches at `off` (bytes past `len` must not count:
/// callers check `off + pattern length <= len`).
#[inline(always)]
fn matches_at(buf: &Buf, off: usize, p: &Pattern) -> bool {
    let a = ((word_at(buf, off) | p.fold[0]) ^ p.want[0]) & p.mask[0];
    let b = ((word_at(buf, off + 8) | p.fold[1]) ^ p.want[1]) & p.mask[1];
    (a | b) == 0
}

/// Start-of-message words, most frequent in attacks first; each includes
/// the space after it. SIP methods are case-sensitive.
const WORDS: [(Method, Pattern, usize); 15] = [
    (Method::Register, pattern(b"REGISTER ", false), 9),
    (Method::Invite, pattern(b"INVITE ", false), 7),
    (Method::Options, pattern(b"OPTIONS ", false), 8),
    (Method::Response, pattern(b"SIP/2.0 ", false), 8),
    (Method::Ack, pattern(b"ACK ", false), 4),
    (Method::Bye, pattern(b"BYE ", false), 4),
    (Method::Cancel, pattern(b"CANCEL ", false), 7),
    (Method::Subscribe, pattern(b"SUBSCRIBE ", false), 10),
    (Method::Notify, pattern(b"NOTIFY ", false), 7),
    (Method::Message, pattern(b"MESSAGE ", false), 8),
    (Method::Info, pattern(b"INFO ", false), 5),
    (Method::Prack, pattern(b"PRACK ", false), 6),
    (Method::Refer, pattern(b"REFER ", false), 6),
    (Method::Publish, pattern(b"PUBLISH ", false), 8),
    (Method::Update, pattern(b"UPDATE ", false), 7),
];

/// Classifies the message by its first bytes; `len` bytes of `buf` are valid.
#[inline(always)]
pub fn classify(buf: &Buf, len: usize) -> Method {
    let mut i = 0;
    while i < WORDS.len() {
        let (method, p, n) = &WORDS[i];
        if len >= *n && matches_at(buf, 0, p) {
            return *method;
        }
        i += 1;
    }
    Method::Other
}

/// True when `x` has a byte equal to `b` (classic SWAR test).
#[inline(always)]
fn has_byte(x: u64, b: u8) -> bool {
    let y = x ^ (0x0101_0101_0101_0101u64 * b as u64);
    (y.wrapping_sub(0x0101_0101_0101_0101) & !y & 0x8080_8080_8080_8080) != 0
}

const HEADER: Pattern = pattern(b"user-agent", true);
const HEADER_LEN: usize = 10;

/// Offset of the header value after a header name ending at `q`: optional
/// blanks, a colon (`User-Agent : x` is legal SIP), optional blanks.
#[inline(always)]
fn value_after_name(buf: &Buf, q: usize) -> Option<usize> {
    let mut q = q;
    let mut colon = false;
    for _ in 0..6 {
        let c = byte_at(buf, q);
        if c == b':' && !colon {
            colon = true;
        } else if c != b' ' && c != b'\t' {
            break;
        }
        q += 1;
    }
    if colon {
        Some(q)
    } else {
        None
    }
}

/// State shared with the `bpf_loop` callbacks. Lives on the caller's stack.
#[repr(C)]
struct UaScan {
    /// Valid payload bytes in the scratch buffer.
    len: u64,
    /// Offset just past the `User-Agent` header name, `NONE` until found.
    name_end: u64,
    /// Set when a prefix matched.
    matched: u64,
}

const NONE: u64 = u64::MAX;

#[inline(always)]
fn scratch_payload() -> Option<&'static Buf> {
    let scratch = SCRATCH.get_ptr_mut(0)?;
    Some(unsafe { &(*scratch).payload })
}

/// `bpf_loop` step: examines the 8 payload bytes of word `index` for a line
/// start followed by `User-Agent:`, or for the empty line that ends the
/// headers. Returns 1 to stop the loop.
///
/// The scan runs through `bpf_loop` so the verifier checks this body once,
/// not once per unrolled word. (Four words per callback would halve the
/// calls, but the unrolled body exceeds the verifier's complexity limit.)
#[inline(never)]
extern "C" fn scan_word(index: u64, ctx: *mut c_void) -> i64 {
    let state = ctx as *mut UaScan;
    let len = unsafe { (*state).len } as usize;
    let base = (index as usize & (UA_SCAN_LIMIT / 8 - 1)) * 8;
    if base >= len {
        return 1;
    }
    let Some(buf) = scratch_payload() else {
        return 1;
    };
    // One aligned 8-byte load: `base` is a multiple of 8 and the payload
    // starts the 8-aligned map value (byte-wise `word_at` costs more).
    let word = unsafe { *(buf.as_ptr().add(base) as *const u64) };
    if !has_byte(word, b'\n') {
        return 0;
    }
    for k in 0..8 {
        let p = base + k + 1;
        if byte_at(buf, base + k) != b'\n' {
            continue;
        }
        // An empty line ends the headers: the body is not scanned.
        let next = byte_at(buf, p);
        if next == b'\r' || next == b'\n' {
            return 1;
        }
        if p + HEADER_LEN < len && matches_at(buf, p, &HEADER) {
            unsafe { (*state).name_end = (p + HEADER_LEN) as u64 };
            return 1;
        }
    }
    0
}

/// `bpf_loop` step: compares the User-Agent value with prefix `index`.
#[inline(never)]
extern "C" fn match_prefix(index: u64, ctx: *mut c_void) -> i64 {
    let state = ctx as *mut UaScan;
    let (len, name_end) = unsafe { ((*state).len as usize, (*state).name_end as usize & MASK) };
    let Some(buf) = scratch_payload() else {
        return 1;
    };
    let Some(value) = value_after_name(buf, name_end) else {
        return 1;
    };
    let value = value & MASK;
    let Some(prefix) = UA_PREFIXES.get(index as u32) else {
        return 1;
    };
    let plen = prefix.len as usize;
    if plen == 0 || value + plen > len {
        return 0;
    }
    let mut diff = 0u64;
    for w in 0..4 {
        let x = word_at(buf, value + 8 * w);
        diff |= ((x | prefix.fold[w]) ^ prefix.want[w]) & prefix.mask[w];
    }
    if diff != 0 {
        return 0;
    }
    unsafe { (*state).matched = 1 };
    1
}

/// True when the first `len` payload bytes (in the per-CPU scratch buffer)
/// carry a User-Agent whose value starts with one of the first `count`
/// configured prefixes (case-insensitive).
#[inline(always)]
pub fn has_scanner_user_agent(len: usize, count: u32) -> bool {
    let mut state = UaScan {
        len: len as u64,
        name_end: NONE,
        matched: 0,
    };
    let ctx = &mut state as *mut UaScan as *mut c_void;
    let words = (len as u32).div_ceil(8).min((UA_SCAN_LIMIT / 8) as u32);
    unsafe { bpf_loop(words, scan_word as *mut c_void, ctx, 0) };
    if state.name_end == NONE {
        return false;
    }
    let count = count.min(MAX_UA_PREFIXES);
    unsafe { bpf_loop(count, match_prefix as *mut c_void, ctx, 0) };
    state.matched != 0
}
