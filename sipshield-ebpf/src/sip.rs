//! SIP payload inspection on the per-CPU copy of the first payload bytes:
//! the start line read the way pjsip reads it, the scanner User-Agent
//! signature, and the messages in a TCP segment.
//!
//! Comparisons are branch-free on 8-byte words (`(x | fold) ^ want) & mask`):
//! the verifier walks every branch, and byte-by-byte compares over a long
//! scan multiply its paths beyond its limits.
//!
//! The start line, as pjsip 2.x and chan_sip read it (`int_parse_msg`,
//! `pjsip_method_init_np`, chan_sip `method_match`):
//! - leading CR, LF, SP and HT are skipped (pjsip's transport strips CR/LF,
//!   its scanner skips blanks); a payload of nothing else is a keep-alive;
//! - a response starts with `SIP` (any case) then `/`, SP or HT;
//! - a method is a token followed by SP or HT, compared case-insensitively
//!   (chan_sip does; pjsip does for its six core methods);
//! - pjsip up to 2.5.5 also took a case-sensitive prefix of a core method
//!   (`R`, `REG`, `INV`...) for that method: counted as that method too;
//! - anything else is `Other`: still charged and still scanned.

use core::ffi::c_void;

use aya_ebpf::helpers::bpf_loop;
use sipshield_common::{
    config::{MAX_UA_PREFIXES, SCRATCH_LEN, UA_SCAN_LIMIT},
    sip::Method,
};

use crate::{
    maps::{ScanState, SCRATCH, UA_PREFIXES},
    packet::forget_range,
};

/// Scan offsets are masked with this, so `offset + 64` stays in the buffer.
const MASK: usize = UA_SCAN_LIMIT - 1;
const _: () = assert!(UA_SCAN_LIMIT.is_power_of_two() && SCRATCH_LEN >= UA_SCAN_LIMIT + 48);
// A find step reads FIND_WORDS + 1 aligned words from below UA_SCAN_LIMIT.
const _: () = assert!(SCRATCH_LEN >= UA_SCAN_LIMIT + 8 * (FIND_WORDS + 1));

type Buf = [u8; SCRATCH_LEN];

/// Little-endian u64 at any offset below `UA_SCAN_LIMIT` (byte loads, no
/// alignment needed).
#[inline(always)]
fn word_at(buf: &Buf, off: usize) -> u64 {
    let base = off & MASK;
    // In bounds: base <= MASK, +7 < SCRATCH_LEN.
    u64::from_le(unsafe { core::ptr::read_unaligned(buf.as_ptr().add(base) as *const u64) })
}

#[inline(always)]
fn byte_at(buf: &Buf, off: usize) -> u8 {
    unsafe { *buf.as_ptr().add(off & MASK) }
}

#[inline(always)]
fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// A pattern of up to 16 bytes as two words, for `(x | fold) ^ want) & mask`.
#[derive(Clone, Copy)]
struct Pattern {
    want: [u64; 2],
    fold: [u64; 2],
    mask: [u64; 2],
}

/// Case-insensitive pattern: letters lower-cased in `want`, `fold` 0x20.
const fn pattern(s: &[u8]) -> Pattern {
    let mut p = Pattern {
        want: [0; 2],
        fold: [0; 2],
        mask: [0; 2],
    };
    let mut j = 0;
    while j < s.len() {
        let b = s[j];
        let shift = 8 * (j % 8);
        p.want[j / 8] |= (b.to_ascii_lowercase() as u64) << shift;
        if b.is_ascii_alphabetic() {
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

/// Request methods, most frequent in attacks first, with their length.
/// The first six are pjsip's core methods (old prefix rule).
const WORDS: [(Method, Pattern, usize); 14] = [
    (Method::Register, pattern(b"REGISTER"), 8),
    (Method::Invite, pattern(b"INVITE"), 6),
    (Method::Options, pattern(b"OPTIONS"), 7),
    (Method::Ack, pattern(b"ACK"), 3),
    (Method::Bye, pattern(b"BYE"), 3),
    (Method::Cancel, pattern(b"CANCEL"), 6),
    (Method::Subscribe, pattern(b"SUBSCRIBE"), 9),
    (Method::Notify, pattern(b"NOTIFY"), 6),
    (Method::Message, pattern(b"MESSAGE"), 7),
    (Method::Info, pattern(b"INFO"), 4),
    (Method::Prack, pattern(b"PRACK"), 5),
    (Method::Refer, pattern(b"REFER"), 5),
    (Method::Publish, pattern(b"PUBLISH"), 7),
    (Method::Update, pattern(b"UPDATE"), 6),
];
const CORE_METHODS: usize = 6;
const SIP_VERSION: Pattern = pattern(b"SIP");

/// Leading blank bytes skipped before the start line, at most.
pub const LEADING_MAX: usize = 256;

/// The start of a message: its method, and where its start line begins.
#[derive(Clone, Copy)]
pub struct Start {
    pub method: Method,
    pub at: usize,
    /// More than `LEADING_MAX` blank bytes before anything else: the
    /// method is unknown, so the message is charged as a REGISTER too.
    pub hidden: bool,
}

/// Exact per-byte "is one of CR, LF, SP, HT": 0x80 in each such byte.
#[inline(always)]
fn blank_bytes(x: u64) -> u64 {
    eq_bytes(x, b'\r') | eq_bytes(x, b'\n') | eq_bytes(x, b' ') | eq_bytes(x, b'\t')
}

/// Classifies the message; `len` bytes of `buf` are valid.
#[inline(always)]
pub fn classify(buf: &Buf, len: usize) -> Start {
    // Skip leading CR/LF/blanks, a word at a time, then byte by byte.
    let mut at = 0usize;
    for _ in 0..LEADING_MAX / 8 {
        if at + 8 > len || blank_bytes(word_at(buf, at)) != 0x8080_8080_8080_8080 {
            break;
        }
        at += 8;
    }
    for _ in 0..8 {
        if at >= len {
            break;
        }
        let c = byte_at(buf, at);
        if c != b'\r' && c != b'\n' && !is_blank(c) {
            break;
        }
        at += 1;
    }
    // One unknown offset from here on: the verifier checks the rest once,
    // not once per number of leading blanks.
    let at = forget_range(at, MASK);
    let mut start = Start {
        method: Method::Other,
        at,
        hidden: false,
    };
    if at >= len {
        start.method = Method::KeepAlive;
        return start;
    }
    let c = byte_at(buf, at);
    if c == b'\r' || c == b'\n' || is_blank(c) {
        start.hidden = true;
        return start;
    }
    // Token length: the first SP/HT within the longest method + 1 (ten
    // bytes), found a word at a time; a blank past `len` is not there.
    let w0 = word_at(buf, at);
    let w1 = word_at(buf, at + 8);
    let blanks0 = blank_mask(w0);
    let blanks1 = blank_mask(w1) & 0x8080;
    let (mut found, token) = if blanks0 != 0 {
        (true, byte_index(blanks0 & blanks0.wrapping_neg()))
    } else if blanks1 != 0 {
        (true, 8 + byte_index(blanks1 & blanks1.wrapping_neg()))
    } else {
        (false, 0)
    };
    if at + token >= len {
        found = false;
    }
    if len >= at + 4 && matches_at(buf, at, &SIP_VERSION) {
        let sep = byte_at(buf, at + 3);
        if sep == b'/' || is_blank(sep) {
            start.method = Method::Response;
            return start;
        }
    }
    if !found || token == 0 {
        return start;
    }
    let token = forget_range(token, 15);
    let m0 = if token >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * token)) - 1
    };
    let m1 = if token > 8 { 0xff } else { 0 };
    let mut i = 0;
    while i < WORDS.len() {
        let (method, p, n) = &WORDS[i];
        if token == *n && matches_at(buf, at, p) {
            start.method = *method;
            return start;
        }
        i += 1;
    }
    let mut i = 0;
    while i < CORE_METHODS {
        let (method, p, n) = &WORDS[i];
        // Case-sensitive prefix: upper-case letters are `want` without fold.
        let a = (w0 ^ (p.want[0] & !p.fold[0])) & m0;
        let b = (w1 ^ (p.want[1] & !p.fold[1])) & m1;
        if token < *n && (a | b) == 0 {
            start.method = *method;
            return start;
        }
        i += 1;
    }
    start
}

const HEADER: Pattern = pattern(b"user-agent");
const HEADER_LEN: usize = 10;

/// 0x80 in each byte of `x` that is SP or HT.
#[inline(always)]
fn blank_mask(x: u64) -> u64 {
    eq_bytes(x, b' ') | eq_bytes(x, b'\t')
}

/// Exact per-byte equality with `b`: 0x80 in each byte of `x` equal to it.
#[inline(always)]
fn eq_bytes(x: u64, b: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let y = x ^ (0x0101_0101_0101_0101u64 * b as u64);
    !(((y & LOW7) + LOW7) | y | LOW7)
}

/// True when the bytes after a header name at `q` are optional blanks then
/// a colon (`User-Agent : x` is legal SIP), within 8 bytes; `User-AgentX:`
/// is another header. Branch-free: the scan callback stays small for the
/// verifier.
#[inline(always)]
fn colon_follows(buf: &Buf, q: usize) -> bool {
    let x = word_at(buf, q);
    let other = !blank_mask(x) & HIGHS;
    let first = other & other.wrapping_neg();
    first & eq_bytes(x, b':') != 0
}

#[inline(always)]
fn scan_state() -> Option<*mut ScanState> {
    let scratch = SCRATCH.get_ptr_mut(0)?;
    Some(unsafe { core::ptr::addr_of_mut!((*scratch).scan) })
}

#[inline(always)]
fn scratch_payload() -> Option<&'static Buf> {
    let scratch = SCRATCH.get_ptr_mut(0)?;
    Some(unsafe { &(*scratch).payload })
}

/// 0x80 in the bytes `i` of the word at `base` with `lo <= base + i < hi`.
/// Branch-free: two shifts of up to 32 make a shift by 64 well defined.
#[inline(always)]
fn window(base: usize, lo: usize, hi: usize) -> u64 {
    let from = (lo.saturating_sub(base)).min(8) as u32;
    let to = (hi.saturating_sub(base)).min(8) as u32;
    let low = (u64::MAX << (4 * from)) << (4 * from);
    let high = !((u64::MAX << (4 * to)) << (4 * to));
    low & high & 0x8080_8080_8080_8080
}

/// Newlines of the aligned word at `base` that start a line inside
/// `(from, len)`, and those of them followed by an empty line end.
#[inline(always)]
fn line_starts(buf: &Buf, base: usize, from: usize, len: usize) -> (u64, u64) {
    // Aligned loads: `base` is a multiple of 8 and the payload starts the
    // 8-aligned map value; `base + 8` stays inside SCRATCH_LEN.
    let word = unsafe { *(buf.as_ptr().add(base) as *const u64) };
    let next = unsafe { *(buf.as_ptr().add(base + 8) as *const u64) };
    let nl = eq_bytes(word, b'\n') & window(base, from, len.saturating_sub(1));
    let after = (word >> 8) | (next << 56);
    let empty = nl & (eq_bytes(after, b'\r') | eq_bytes(after, b'\n'));
    (nl, empty)
}

/// Offset (0..8) of the byte holding the one 0x80 bit of `bit`: a
/// branch-free count of trailing zero bytes.
#[inline(always)]
fn byte_index(bit: u64) -> usize {
    ((bit >> 7).wrapping_mul(0x0001_0203_0405_0607) >> 56) as usize
}

pub const PHASE_FIND: u64 = 0;
pub const PHASE_BLANK: u64 = 1;
pub const PHASE_MATCH: u64 = 2;

/// User-Agent headers looked at per message; more are unscanned.
const UA_HEADERS_MAX: u64 = 6;

/// Words looked at per find step.
const FIND_WORDS: usize = 16;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Nonzero when some byte of `x` is zero (the classic test: exact about
/// whether there is one; the callers find which byte exactly).
#[inline(always)]
fn any_zero(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Finds the next line start at or after `cursor`, within the
/// `FIND_WORDS` words from the one holding it, that is either the empty
/// line ending the headers or a line starting with `U`/`u`, and looks at
/// it. Other lines cost nothing but their share of a word: a cheap test of
/// each word for a newline skips most words unread, and the search stops
/// at the first candidate and at the end of the bytes held.
#[inline(always)]
fn find_step(st: *mut ScanState, buf: &Buf) -> i64 {
    let (len, cursor) = unsafe { ((*st).len as usize, (*st).cursor as usize & MASK) };
    let start = cursor & !7;
    if start >= len {
        unsafe { (*st).done = 1 };
        return 1;
    }
    // Bytes looked at in this step: up to FIND_WORDS words, not past `len`.
    let end = (start + 8 * FIND_WORDS).min(len);
    let mut base = start;
    let mut hit = 0u64;
    let mut hit_empty = 0u64;
    for _ in 0..FIND_WORDS {
        if base >= end {
            break;
        }
        // Aligned loads: `base + 8` stays inside SCRATCH_LEN.
        let word = unsafe { *(buf.as_ptr().add(base) as *const u64) };
        // Most words hold no newline at all: one test, then the next (and
        // nothing else live: the loop keeps to registers).
        let nl = word ^ (ONES * b'\n' as u64);
        if any_zero(nl) != 0 {
            let next = unsafe { *(buf.as_ptr().add(base + 8) as *const u64) };
            let after = (word >> 8) | (next << 56);
            let quick = any_zero(nl | ((after | (ONES * 0x20)) ^ (ONES * b'u' as u64)))
                | any_zero(nl | (after ^ (ONES * b'\r' as u64)))
                | any_zero(nl | (after ^ (ONES * b'\n' as u64)));
            if quick != 0 {
                // Exact now: which newline, inside (cursor, len).
                let nl = eq_bytes(word, b'\n') & window(base, cursor, len.saturating_sub(1));
                let empty = nl & (eq_bytes(after, b'\r') | eq_bytes(after, b'\n'));
                let cand = nl & eq_bytes(after | (ONES * 0x20), b'u');
                let any = empty | cand;
                if any != 0 {
                    hit = any & any.wrapping_neg();
                    hit_empty = empty;
                    break;
                }
            }
        }
        base += 8;
    }
    if hit == 0 {
        if base >= len {
            // The bytes held end inside the headers.
            unsafe { (*st).done = 1 };
            return 1;
        }
        unsafe { (*st).cursor = base as u64 };
        return 0;
    }
    let hit_base = base;
    // An empty line ends the headers: the body is not scanned.
    if hit_empty & hit != 0 {
        unsafe {
            (*st).ended = 1;
            (*st).done = 1;
        }
        return 1;
    }
    let p = (hit_base & MASK) + byte_index(hit) + 1;
    // Bytes past `len` may match the name, never the value (the next steps
    // stop at `len`).
    let name_end = p + HEADER_LEN;
    if matches_at(buf, p, &HEADER) && colon_follows(buf, name_end) {
        unsafe { (*st).name_end = name_end as u64 };
        // The common `User-Agent: value`: the value found a word at a
        // time and compared at once. Anything else (a value folded onto
        // the next line, an empty one, a run of blanks) is walked a byte
        // a step.
        if let Some(value) = value_on_line(buf, name_end, len) {
            return match_value(st, buf, len, value);
        }
        unsafe {
            (*st).cursor = name_end as u64;
            (*st).colon = 0;
            (*st).phase = PHASE_BLANK;
        }
        return 0;
    }
    unsafe { (*st).cursor = p as u64 };
    0
}

/// Offset of the first byte that is not SP or HT in the word at `q`, or 8.
#[inline(always)]
fn first_non_blank(buf: &Buf, q: usize) -> usize {
    let other = !blank_mask(word_at(buf, q)) & HIGHS;
    if other == 0 {
        return 8;
    }
    byte_index(other & other.wrapping_neg())
}

/// Where the value starts when it follows the colon on the same line within
/// a word's worth of blanks (the name at `name_end` is known to be followed
/// by blanks and a colon); `None` for the cases the byte walk handles.
#[inline(always)]
fn value_on_line(buf: &Buf, name_end: usize, len: usize) -> Option<usize> {
    let colon = name_end + first_non_blank(buf, name_end);
    let value = colon + 1 + first_non_blank(buf, colon + 1);
    if value >= len || value >= colon + 9 {
        return None;
    }
    let c = byte_at(buf, value);
    if c == b'\r' || c == b'\n' {
        return None;
    }
    Some(value & MASK)
}

/// Back to finding headers after this one; false when out of rounds.
#[inline(always)]
fn next_header(st: *mut ScanState) -> bool {
    unsafe {
        (*st).rounds += 1;
        (*st).cursor = (*st).name_end;
        (*st).phase = PHASE_FIND;
        if (*st).rounds >= UA_HEADERS_MAX {
            (*st).exhausted = 1;
            (*st).done = 1;
            return false;
        }
    }
    true
}

/// One byte after the header name: skips blanks, the colon, and after it
/// folded line ends (CRLF or LF followed by a blank), to the first value
/// byte.
#[inline(always)]
fn blank_step(st: *mut ScanState, buf: &Buf) -> i64 {
    let (len, pos) = unsafe { ((*st).len as usize, (*st).cursor as usize & MASK) };
    if pos >= len {
        unsafe { (*st).done = 1 };
        return 1;
    }
    unsafe { (*st).cursor = (pos + 1) as u64 };
    let c = byte_at(buf, pos);
    if unsafe { (*st).colon } == 0 {
        if c == b':' {
            unsafe { (*st).colon = 1 };
        }
        return 0;
    }
    if is_blank(c) || c == b'\r' {
        return 0;
    }
    if c == b'\n' {
        if pos + 1 < len && is_blank(byte_at(buf, pos + 1)) {
            return 0;
        }
        // The line ended: an empty value.
        return if next_header(st) { 0 } else { 1 };
    }
    unsafe {
        (*st).value = pos as u64;
        (*st).phase = PHASE_MATCH;
    }
    0
}

/// Compares the User-Agent value the blank walk found with every
/// configured prefix.
#[inline(always)]
fn match_step(st: *mut ScanState, buf: &Buf) -> i64 {
    let (len, value) = unsafe { ((*st).len as usize, (*st).value as usize) };
    match_value(st, buf, len, value)
}

/// Compares the User-Agent value at `value` with every configured prefix
/// (done when one matches), else goes on to the next header. A prefix's
/// first word is compared first, the rest only when it starts alike: most
/// values start like no prefix at all.
#[inline(always)]
fn match_value(st: *mut ScanState, buf: &Buf, len: usize, value: usize) -> i64 {
    let value = value & MASK;
    let count = unsafe { (*st).prefixes as u32 };
    let first = word_at(buf, value);
    for i in 0..MAX_UA_PREFIXES {
        if i >= count {
            break;
        }
        let Some(prefix) = UA_PREFIXES.get(i) else {
            break;
        };
        if ((first | prefix.fold[0]) ^ prefix.want[0]) & prefix.mask[0] != 0 {
            continue;
        }
        let plen = prefix.len as usize;
        if plen == 0 || value + plen > len {
            continue;
        }
        let mut diff = 0u64;
        for w in 1..4 {
            diff |=
                ((word_at(buf, value + 8 * w) | prefix.fold[w]) ^ prefix.want[w]) & prefix.mask[w];
        }
        if diff == 0 {
            unsafe {
                (*st).matched = 1;
                (*st).done = 1;
            }
            return 1;
        }
    }
    if next_header(st) {
        0
    } else {
        1
    }
}

/// `bpf_loop` step of the User-Agent scan: one step of whichever phase
/// runs (find a header, skip to its value, compare one prefix). One call
/// site and one small body: the verifier checks it once.
#[inline(never)]
extern "C" fn ua_step(_index: u64, _ctx: *mut c_void) -> i64 {
    let Some(st) = scan_state() else {
        return 1;
    };
    let Some(buf) = scratch_payload() else {
        return 1;
    };
    match unsafe { (*st).phase } {
        PHASE_FIND => find_step(st, buf),
        PHASE_BLANK => blank_step(st, buf),
        _ => match_step(st, buf),
    }
}

/// What the User-Agent scan found.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum UaVerdict {
    Clean = 0,
    Scanner = 1,
    /// The headers run past what was scanned: passed unscanned.
    Unscanned,
}

/// Scans the headers of the message whose start line begins at `from`
/// (the first `len` payload bytes are in the per-CPU scratch buffer) for a
/// User-Agent value starting with one of the first `count` configured
/// prefixes (case-insensitive). Every User-Agent header is checked (up to
/// six), so a harmless one first hides nothing. `truncated`: the message
/// goes on past the copied bytes.
#[inline(always)]
pub fn scan_user_agents(len: usize, from: usize, count: u32, truncated: bool) -> UaVerdict {
    match ua_scan(
        len as u64,
        from as u64,
        u64::from(count),
        u64::from(truncated),
    ) {
        0 => UaVerdict::Clean,
        1 => UaVerdict::Scanner,
        _ => UaVerdict::Unscanned,
    }
}

/// The scan as a global function: the verifier checks a global function
/// once, on its own, instead of in the context of every call site (one per
/// address family). That took the program from 940k verified instructions
/// of the 1M limit to 300k, room the faster scan needs. Its arguments are
/// plain numbers the verifier knows nothing of: bounded here.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn ua_scan(len: u64, from: u64, count: u64, truncated: u64) -> u64 {
    let len = (len as usize).min(UA_SCAN_LIMIT);
    let from = (from as usize) & MASK;
    scan(len, from, count as u32, truncated != 0) as u64
}

#[inline(always)]
fn scan(len: usize, from: usize, count: u32, truncated: bool) -> UaVerdict {
    let Some(st) = scan_state() else {
        return UaVerdict::Unscanned;
    };
    // Volatile stores: plain ones LLVM merges into a call of a byte-wise
    // memset loop (40 iterations on every scanned message).
    unsafe {
        let set = |field: *mut u64, v: u64| core::ptr::write_volatile(field, v);
        set(&raw mut (*st).len, len as u64);
        set(&raw mut (*st).cursor, from as u64);
        set(&raw mut (*st).name_end, from as u64);
        set(&raw mut (*st).ended, 0);
        set(&raw mut (*st).matched, 0);
        set(&raw mut (*st).phase, PHASE_FIND);
        set(&raw mut (*st).rounds, 0);
        set(
            &raw mut (*st).prefixes,
            u64::from(count.min(MAX_UA_PREFIXES)),
        );
        set(&raw mut (*st).done, 0);
        set(&raw mut (*st).exhausted, 0);
    }
    // Finding: one step per candidate line or four words (a word holds at
    // most four line starts); skipping: one per byte; matching: one per
    // header.
    let words = (len as u32).div_ceil(8).min((UA_SCAN_LIMIT / 8) as u32);
    let steps = words * 5 + 2 * len as u32 + UA_HEADERS_MAX as u32 + 1;
    unsafe { bpf_loop(steps, ua_step as *mut c_void, core::ptr::null_mut(), 0) };
    let (matched, done, exhausted, ended) =
        unsafe { ((*st).matched, (*st).done, (*st).exhausted, (*st).ended) };
    if matched != 0 {
        return UaVerdict::Scanner;
    }
    if done == 0 || exhausted != 0 || (ended == 0 && truncated) {
        return UaVerdict::Unscanned;
    }
    UaVerdict::Clean
}

/// `bpf_loop` step: counts the empty lines (end of a message's headers) in
/// word `index`.
#[inline(never)]
extern "C" fn count_word(index: u64, _ctx: *mut c_void) -> i64 {
    let Some(state) = scan_state() else {
        return 1;
    };
    let len = unsafe { (*state).len } as usize;
    let base = (index as usize & (UA_SCAN_LIMIT / 8 - 1)) * 8;
    if base >= len {
        return 1;
    }
    let Some(buf) = scratch_payload() else {
        return 1;
    };
    let (_, empty) = line_starts(buf, base, 0, len);
    // Population count of the 0x80 bits.
    let n = ((empty >> 7).wrapping_mul(0x0101_0101_0101_0101)) >> 56;
    unsafe { (*state).messages += n };
    0
}

/// Messages in a TCP segment: one per empty line ending a header block in
/// the scanned bytes (bodies with empty lines over-count, which only costs
/// the sender), at least one, plus one per 256 bytes past the scan window.
#[inline(always)]
pub fn tcp_messages(len: usize, payload_len: usize) -> u64 {
    let Some(st) = scan_state() else {
        return 1;
    };
    unsafe {
        (*st).len = len as u64;
        (*st).messages = 0;
    }
    let words = (len as u32).div_ceil(8).min((UA_SCAN_LIMIT / 8) as u32);
    unsafe { bpf_loop(words, count_word as *mut c_void, core::ptr::null_mut(), 0) };
    let beyond = (payload_len.saturating_sub(len) / 256) as u64;
    unsafe { (*st).messages }.max(1) + beyond
}
