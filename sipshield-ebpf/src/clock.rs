//! The two clocks of the packet path, both CLOCK_MONOTONIC.
//!
//! `bpf_ktime_get_ns` reads the TSC and scales it: 22 ns per call measured
//! on this machine kind (a VM), more than a ban lookup. The coarse clock is
//! the time at the last tick (at most one tick behind: 4 ms at HZ=250, and
//! brought up to date when an idle CPU takes an interrupt) for a couple of
//! nanoseconds. Token buckets with bursts of seconds and expiries of
//! minutes do not notice 4 ms; the stamps a reader subtracts from each
//! other (a ban's creation, a source's first sight, so "banned 1 ms after
//! its first packet") are rare and take the exact clock.

use aya_ebpf::helpers::{bpf_ktime_get_coarse_ns, bpf_ktime_get_ns};

/// Now, to within a tick: for buckets, expiry checks and last-seen times.
#[inline(always)]
pub fn coarse() -> u64 {
    unsafe { bpf_ktime_get_coarse_ns() }
}

/// Now, exactly: for the stamps of rare events.
#[inline(always)]
pub fn exact() -> u64 {
    unsafe { bpf_ktime_get_ns() }
}
