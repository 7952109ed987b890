//! Counting and the mode: every packet leaves through `finish`.

use aya_ebpf::{
    bindings::xdp_action::{XDP_DROP, XDP_PASS},
    programs::XdpContext,
};
use sipshield_common::{
    config::Mode,
    counters::{
        counter_index, method_index, slot_verdict_index, verdict_index, Action, Counter, Reason,
    },
};

use crate::maps::{COUNTERS, IFACE_SLOTS, VERDICTS};

/// The XDP action with the verdict counter it is counted under; built only
/// by `pass` and `drop`, so no path leaves uncounted.
#[derive(Clone, Copy)]
pub struct Verdict {
    action: u32,
    index: u32,
}

#[inline(always)]
fn bump(index: u32) {
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        // Per-CPU slot: no other writer.
        unsafe { *slot += 1 };
    }
}

/// Counts `verdict` under the interface it came in on; returns the XDP
/// action.
#[inline(always)]
pub fn finish(ctx: &XdpContext, verdict: Verdict) -> u32 {
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    // Out of range (an ifindex past `IFINDEX_LIMIT`): slot 0. The map's
    // own bound checks are the only ones: userspace writes slots in range.
    let slot = IFACE_SLOTS.get(ifindex).map_or(0, |s| *s);
    if let Some(c) = VERDICTS.get_ptr_mut(slot_verdict_index(slot, verdict.index)) {
        unsafe { *c += 1 };
    }
    verdict.action
}

/// `n` SIP messages of `method` seen (for the metrics by method).
#[inline(always)]
pub fn count_messages(method: u8, n: u64) {
    if let Some(slot) = COUNTERS.get_ptr_mut(method_index(method)) {
        unsafe { *slot += n };
    }
}

#[inline(always)]
pub fn count(counter: Counter) {
    bump(counter_index(counter));
}

/// PASS, counted under `reason`.
#[inline(always)]
pub fn pass(reason: Reason) -> Verdict {
    Verdict {
        action: XDP_PASS,
        index: verdict_index(Action::Pass, reason),
    }
}

/// DROP, or in observe mode PASS counted as "would drop".
#[inline(always)]
pub fn drop(mode: Mode, reason: Reason) -> Verdict {
    if matches!(mode, Mode::Observe) {
        Verdict {
            action: XDP_PASS,
            index: verdict_index(Action::WouldDrop, reason),
        }
    } else {
        Verdict {
            action: XDP_DROP,
            index: verdict_index(Action::Drop, reason),
        }
    }
}
