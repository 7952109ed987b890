//! The in-kernel rate guard (GCRA token buckets per source) and kernel-side
//! bans with their ring-buffer events.

use sipshield_common::{
    config::{Mode, RateLimit},
    counters::{Counter, Reason},
    event::{Event, EventKind},
    maps::{BanEntry, BanOrigin, SourceStats, SRC_BAN_REPORTED, SRC_SCANNER_REPORTED},
};

use crate::{family::Family, maps::EVENTS, verdict};

/// Takes `n` tokens; false when the bucket has fewer (the message exceeds
/// the limit). A limit with `interval_ns == 0` is disabled. Exceeding
/// messages do not consume, so a source that slows down recovers.
#[inline(always)]
pub fn take_tokens(tat: &mut u64, now: u64, limit: &RateLimit, n: u64) -> bool {
    match fits(*tat, now, limit, n) {
        Some(next) => {
            *tat = next;
            true
        }
        None => false,
    }
}

/// The bucket's next state if `n` more tokens fit, else `None` (nothing
/// taken): lets two buckets be checked before either is charged. A
/// disabled limit always fits and keeps its state.
#[inline(always)]
pub fn fits(tat: u64, now: u64, limit: &RateLimit, n: u64) -> Option<u64> {
    if limit.interval_ns == 0 {
        return Some(tat);
    }
    let base = if tat > now { tat } else { now };
    let next = base + limit.interval_ns * n;
    if next - now > limit.window_ns {
        return None;
    }
    Some(next)
}

/// As `fits`, for a known-good source's extra bucket: a disabled one
/// holds nothing.
#[inline(always)]
pub fn fits_extra(tat: u64, now: u64, limit: &RateLimit, n: u64) -> Option<u64> {
    if limit.interval_ns == 0 {
        return None;
    }
    fits(tat, now, limit, n)
}

/// A known-good source's extra bucket after a message: unchanged when the
/// police bucket took it (`police_fit`), else what `fits_extra` makes of it.
#[inline(always)]
pub fn spill(
    police_fit: Option<u64>,
    extra_tat: u64,
    now: u64,
    extra: &RateLimit,
    n: u64,
) -> Option<u64> {
    match police_fit {
        Some(_) => Some(extra_tat),
        None => fits_extra(extra_tat, now, extra, n),
    }
}

/// Takes one token whatever the bucket holds (for a message that passed
/// before its source had a bucket).
#[inline(always)]
pub fn spend_token(tat: &mut u64, now: u64, limit: &RateLimit) {
    if limit.interval_ns == 0 {
        return;
    }
    let base = if *tat > now { *tat } else { now };
    *tat = base + limit.interval_ns;
}

#[inline(always)]
pub fn emit<F: Family>(
    kind: EventKind,
    reason: Reason,
    method: u8,
    src: &F::Addr,
    now: u64,
    expires: u64,
) {
    match EVENTS.reserve::<Event>(0) {
        Some(mut slot) => {
            slot.write(Event {
                kind: kind as u8,
                reason: reason as u8,
                family: F::FAMILY,
                method,
                _pad: [0; 4],
                addr: F::to_event_addr(src),
                at_ns: now,
                expires_ns: expires,
            });
            slot.submit(0);
        }
        None => verdict::count(Counter::EventLost),
    }
}

/// Bans `src` in the kernel's own share for `duration_ns` (0 = permanent).
/// In observe mode only reports it (once per source). The share is an LRU:
/// it forgets its oldest entry rather than refuse, and never touches the
/// log and operator bans. A failed insert is counted and reported.
#[inline(always)]
pub fn kernel_ban<F: Family>(
    src: &F::Addr,
    stats: *mut SourceStats,
    duration_ns: u64,
    reason: Reason,
    method: u8,
    mode: Mode,
) {
    // Stamped exactly: rare, and its latency is measured from the source's
    // first sight.
    let now = crate::clock::exact();
    let expires = if duration_ns == 0 {
        0
    } else {
        now + duration_ns
    };
    if matches!(mode, Mode::Observe) {
        report_once::<F>(
            stats,
            SRC_BAN_REPORTED,
            EventKind::WouldBan,
            reason,
            method,
            src,
            now,
            expires,
        );
        return;
    }
    let origin = if matches!(reason, Reason::Scanner) {
        BanOrigin::Scanner
    } else {
        BanOrigin::RateGuard
    };
    let entry = BanEntry {
        expires_ns: expires,
        created_ns: now,
        origin: origin as u32,
        _pad: 0,
    };
    match F::insert_kernel_ban(src, &entry) {
        Ok(()) => {
            verdict::count(Counter::KernelBan);
            emit::<F>(EventKind::KernelBan, reason, method, src, now, expires);
        }
        Err(_) => {
            verdict::count(Counter::BanTableFull);
            report_once::<F>(
                stats,
                SRC_BAN_REPORTED,
                EventKind::BanFailed,
                reason,
                method,
                src,
                now,
                expires,
            );
        }
    }
}

/// Scanner seen with the count-only action: report the source once.
#[inline(always)]
pub fn report_scanner<F: Family>(src: &F::Addr, stats: *mut SourceStats, now: u64, method: u8) {
    report_once::<F>(
        stats,
        SRC_SCANNER_REPORTED,
        EventKind::ScannerSeen,
        Reason::Scanner,
        method,
        src,
        now,
        0,
    );
}

#[inline(always)]
#[expect(clippy::too_many_arguments, reason = "flat helper on the packet path")]
fn report_once<F: Family>(
    stats: *mut SourceStats,
    flag: u32,
    kind: EventKind,
    reason: Reason,
    method: u8,
    src: &F::Addr,
    now: u64,
    expires: u64,
) {
    let flags = unsafe { (*stats).flags };
    if flags & flag != 0 {
        return;
    }
    unsafe { (*stats).flags = flags | flag };
    emit::<F>(kind, reason, method, src, now, expires);
}
