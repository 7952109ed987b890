//! A sliding window of one source's offences of one class.

use std::{
    collections::VecDeque,
    time::{Duration, SystemTime},
};

/// The times of the latest offences, oldest first. Only the newest
/// `maxretry` matter (the threshold is reached when that many fall within
/// `findtime`), so no more are kept.
#[derive(Debug, Clone, Default)]
pub(crate) struct Window {
    times: VecDeque<SystemTime>,
}

impl Window {
    /// Adds an offence at `at` and returns how many offences fall within
    /// `findtime` of the newest one: those strictly less than `findtime`
    /// older than it. Offences may arrive out of order (several logs).
    pub(crate) fn record(&mut self, at: SystemTime, findtime: Duration, maxretry: u32) -> u32 {
        let position = self.times.partition_point(|t| *t <= at);
        self.times.insert(position, at);
        if let Some(cutoff) = self.newest().and_then(|n| n.checked_sub(findtime)) {
            while self.times.front().is_some_and(|t| *t <= cutoff) {
                self.times.pop_front();
            }
        }
        while self.times.len() > maxretry.max(1) as usize {
            self.times.pop_front();
        }
        self.times.len() as u32
    }

    pub(crate) fn newest(&self) -> Option<SystemTime> {
        self.times.back().copied()
    }

    /// The offences held, oldest first (for the state database).
    pub(crate) fn times(&self) -> impl Iterator<Item = SystemTime> + '_ {
        self.times.iter().copied()
    }

    /// A window as stored: the newest `maxretry` of `times` that fall
    /// within `findtime` of `now`.
    pub(crate) fn restored(
        mut times: Vec<SystemTime>,
        now: SystemTime,
        findtime: Duration,
        maxretry: u32,
    ) -> Window {
        times.sort();
        let cutoff = now.checked_sub(findtime);
        let mut w = Window::default();
        for t in times {
            if cutoff.is_none_or(|c| t > c) && t <= now {
                w.times.push_back(t);
            }
        }
        while w.times.len() > maxretry.max(1) as usize {
            w.times.pop_front();
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    const FIND: Duration = Duration::from_secs(600);

    #[test]
    fn a_stored_window_keeps_what_still_counts() {
        let now = t(1000);
        let w = Window::restored(vec![t(100), t(500), t(999), t(2000), t(450)], now, FIND, 2);
        // t(100) fell out of the window, t(2000) is in the future (a clock step).
        assert_eq!(w.times().collect::<Vec<_>>(), vec![t(500), t(999)]);
    }

    #[test]
    fn counts_within_the_window() {
        let mut w = Window::default();
        assert_eq!(w.record(t(0), FIND, 5), 1);
        assert_eq!(w.record(t(100), FIND, 5), 2);
        assert_eq!(w.record(t(599), FIND, 5), 3);
        // t(0) is exactly findtime older than t(600): it no longer counts.
        assert_eq!(w.record(t(600), FIND, 5), 3);
    }

    #[test]
    fn out_of_order_offences_count_against_the_newest() {
        let mut w = Window::default();
        w.record(t(1000), FIND, 5);
        assert_eq!(w.record(t(900), FIND, 5), 2);
        assert_eq!(w.record(t(100), FIND, 5), 2, "too old to count");
    }

    #[test]
    fn keeps_at_most_maxretry_times() {
        let mut w = Window::default();
        for s in 0..50 {
            w.record(t(s), FIND, 3);
        }
        assert_eq!(w.times.len(), 3);
    }
}
