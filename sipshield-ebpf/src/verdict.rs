//! Counting and the mode: every packet leaves through `finish`.

use aya_ebpf::bindings::xdp_action::{XDP_DROP, XDP_PASS};
use sipshield_common::{
    config::Mode,
    counters::{counter_index, method_index, verdict_index, Action, Counter, Reason},
};

use crate::maps::COUNTERS;

#[inline(always)]
fn bump(index: u32) {
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        // Per-CPU slot: no other writer.
        unsafe { *slot += 1 };
    }
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
pub fn pass(reason: Reason) -> u32 {
    bump(verdict_index(Action::Pass, reason));
    XDP_PASS
}

/// DROP, or in observe mode PASS counted as "would drop".
#[inline(always)]
pub fn drop(mode: Mode, reason: Reason) -> u32 {
    if matches!(mode, Mode::Observe) {
        bump(verdict_index(Action::WouldDrop, reason));
        XDP_PASS
    } else {
        bump(verdict_index(Action::Drop, reason));
        XDP_DROP
    }
}
