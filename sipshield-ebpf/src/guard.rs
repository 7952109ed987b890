//! The in-kernel rate guard (GCRA token buckets per source) and kernel-side
//! bans with their ring-buffer events.

use aya_ebpf::bindings::BPF_NOEXIST;
use sipshield_common::{
    config::{Mode, RateLimit},
    counters::{Counter, Reason},
    event::{Event, EventKind},
    maps::{BanEntry, BanOrigin, SourceStats, SRC_BAN_REPORTED, SRC_SCANNER_REPORTED},
    sip::Method,
};

use crate::{family::Family, maps::EVENTS, verdict};

const EEXIST: i32 = 17;

/// Takes one token; false when the bucket is empty (the request exceeds the
/// limit). A limit with `interval_ns == 0` is disabled. Exceeding requests do
/// not consume, so a source that slows down recovers.
#[inline(always)]
pub fn take_token(tat: &mut u64, now: u64, limit: &RateLimit) -> bool {
    if limit.interval_ns == 0 {
        return true;
    }
    let base = if *tat > now { *tat } else { now };
    let next = base + limit.interval_ns;
    if next - now > limit.window_ns {
        return false;
    }
    *tat = next;
    true
}

#[inline(always)]
pub fn emit<F: Family>(
    kind: EventKind,
    reason: Reason,
    method: Method,
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
                method: method as u8,
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

/// Bans `src` in the kernel for `duration_ns` (0 = permanent). In observe
/// mode only reports it (once per source). A full ban table is counted and
/// reported (once per source); nothing is ever evicted.
#[inline(always)]
pub fn kernel_ban<F: Family>(
    src: &F::Addr,
    stats: *mut SourceStats,
    now: u64,
    duration_ns: u64,
    reason: Reason,
    method: Method,
    mode: Mode,
) {
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
    match F::insert_ban(src, &entry, BPF_NOEXIST as u64) {
        Ok(()) => {
            verdict::count(Counter::KernelBan);
            emit::<F>(EventKind::KernelBan, reason, method, src, now, expires);
        }
        // Another CPU banned it first.
        Err(e) if e == -EEXIST => {}
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
pub fn report_scanner<F: Family>(src: &F::Addr, stats: *mut SourceStats, now: u64, method: Method) {
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
    flag: u64,
    kind: EventKind,
    reason: Reason,
    method: Method,
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
