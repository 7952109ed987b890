//! The kernel's ban expiry clock (`bpf_ktime_get_ns` = CLOCK_MONOTONIC) and
//! conversions to wall-clock time, which is what the state file stores.

use std::time::{Duration, SystemTime};

/// CLOCK_MONOTONIC now, in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// The monotonic instant (ns) that corresponds to wall-clock `at`, clamped
/// to now for instants in the past.
pub fn wall_to_monotonic(at: SystemTime) -> u64 {
    let now_wall = SystemTime::now();
    let now_mono = monotonic_ns();
    match at.duration_since(now_wall) {
        Ok(ahead) => now_mono.saturating_add(ahead.as_nanos().min(u64::MAX as u128) as u64),
        Err(_) => now_mono,
    }
}

/// The wall-clock instant of monotonic `ns`.
pub fn monotonic_to_wall(ns: u64) -> SystemTime {
    let now_wall = SystemTime::now();
    let now_mono = monotonic_ns();
    if ns >= now_mono {
        now_wall + Duration::from_nanos(ns - now_mono)
    } else {
        now_wall
            .checked_sub(Duration::from_nanos(now_mono - ns))
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

/// The monotonic instant (ns) of a wall-clock `at` that has passed (a
/// ban's start; for a kernel ban, its own time, converted there and back);
/// instants ahead of now map to now.
pub fn monotonic_since(at: SystemTime) -> u64 {
    let now_wall = SystemTime::now();
    let now_mono = monotonic_ns();
    match now_wall.duration_since(at) {
        Ok(ago) => now_mono.saturating_sub(ago.as_nanos().min(u64::MAX as u128) as u64),
        Err(_) => now_mono,
    }
}

/// Monotonic expiry for a ban of `duration` from now; `None` = permanent (0).
pub fn expiry_after(duration: Option<Duration>) -> u64 {
    match duration {
        None => 0,
        Some(d) => monotonic_ns()
            .saturating_add(d.as_nanos().min(u64::MAX as u128) as u64)
            .max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_and_monotonic_round_trip_within_a_millisecond() {
        let at = SystemTime::now() + Duration::from_secs(3600);
        let mono = wall_to_monotonic(at);
        let back = monotonic_to_wall(mono);
        let diff = back.duration_since(at).unwrap_or_else(|e| e.duration());
        assert!(diff < Duration::from_millis(1), "{diff:?}");
    }

    #[test]
    fn past_wall_time_maps_to_now() {
        let mono = wall_to_monotonic(SystemTime::UNIX_EPOCH);
        assert!(mono <= monotonic_ns());
        assert!(monotonic_ns() - mono < 1_000_000_000);
    }

    #[test]
    fn a_past_instant_round_trips_within_a_millisecond() {
        let mono = monotonic_ns().saturating_sub(5_000_000_000);
        let back = monotonic_since(monotonic_to_wall(mono));
        assert!(back.abs_diff(mono) < 1_000_000, "{mono} vs {back}");
        let ahead = monotonic_since(SystemTime::now() + Duration::from_secs(60));
        assert!(ahead <= monotonic_ns());
    }

    #[test]
    fn permanent_is_zero() {
        assert_eq!(expiry_after(None), 0);
        assert!(expiry_after(Some(Duration::from_secs(1))) > monotonic_ns());
    }
}
