//! The bans policy has made or recorded, addresses and networks.

use std::{
    collections::{BTreeMap, VecDeque},
    net::IpAddr,
};

use ipnet::IpNet;

use super::prefix::PrefixLengths;
use crate::state::{BanOrigin, BanRecord, BanTarget};

#[derive(Debug, Clone, Default)]
pub(crate) struct BanBook {
    by_target: BTreeMap<BanTarget, BanRecord>,
    ranges: PrefixLengths,
    counts: BanCounts,
    /// The latest bans written, newest first: `status` shows the newest
    /// without sorting a million.
    newest: VecDeque<BanTarget>,
    /// Where the next expiry sweep goes on (`None`: from the start).
    sweep_from: Option<BanTarget>,
}

/// Bans an expiry sweep looks at, at most: a sweep a second goes over a
/// million bans in 16 s instead of walking all of them every second on the
/// event loop. A ban may leave the book up to that late; the kernel's entry
/// carries its own expiry and stops dropping on time regardless.
pub(crate) const SWEEP_CHUNK: usize = 65_536;

/// How many of the latest bans `newest` remembers.
const NEWEST_KEPT: usize = 64;

/// What the book holds, kept as it changes: `status` reads it instead of
/// walking a million bans.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BanCounts {
    pub exact_v4: u64,
    pub exact_v6: u64,
    pub ranges: u64,
    pub log: u64,
    pub operator: u64,
    pub kernel: u64,
    /// Held by origin (log, operator, kernel) and class (`OffenceClass::ALL`
    /// order), for the metrics.
    #[serde(skip)]
    pub held: [[u64; crate::offence::OffenceClass::ALL.len()]; 3],
}

impl BanCounts {
    /// The origins `held` is indexed by, as metrics name them.
    pub const ORIGINS: [&'static str; 3] = ["log", "operator", "kernel"];
}

impl BanCounts {
    fn add(&mut self, r: &BanRecord, sign: i64) {
        let bump = |c: &mut u64| *c = c.saturating_add_signed(sign);
        match r.target {
            BanTarget::Addr(IpAddr::V4(_)) => bump(&mut self.exact_v4),
            BanTarget::Addr(IpAddr::V6(_)) => bump(&mut self.exact_v6),
            BanTarget::Net(_) => bump(&mut self.ranges),
        }
        let origin = match r.origin {
            BanOrigin::Log => {
                bump(&mut self.log);
                0
            }
            BanOrigin::Manual => {
                bump(&mut self.operator);
                1
            }
            BanOrigin::KernelRateGuard | BanOrigin::KernelScanner => {
                bump(&mut self.kernel);
                2
            }
        };
        if let Some(class) = crate::offence::OffenceClass::ALL
            .iter()
            .position(|c| *c == r.class)
        {
            bump(&mut self.held[origin][class]);
        }
    }
}

impl BanBook {
    /// Adds or replaces the ban of `record.target`.
    pub(crate) fn insert(&mut self, record: BanRecord) -> Option<BanRecord> {
        let target = record.target;
        self.counts.add(&record, 1);
        self.newest.retain(|t| *t != target);
        self.newest.push_front(target);
        self.newest.truncate(NEWEST_KEPT);
        let old = self.by_target.insert(target, record);
        if let Some(old) = &old {
            self.counts.add(old, -1);
        }
        if let (None, BanTarget::Net(net)) = (&old, target) {
            self.ranges.add(net);
        }
        old
    }

    /// Adds many bans at once (a restore). Into an empty book the map is
    /// built in one go from sorted input, its nodes full: a million bans
    /// take about a third less memory than inserted one by one.
    pub(crate) fn extend(&mut self, records: Vec<BanRecord>) {
        if !self.by_target.is_empty() {
            for r in records {
                self.insert(r);
            }
            return;
        }
        for r in &records {
            self.counts.add(r, 1);
        }
        self.by_target = records.into_iter().map(|r| (r.target, r)).collect();
        // Duplicate targets collapsed to the last: count what is there.
        if self.by_target.len() as u64
            != self.counts.exact_v4 + self.counts.exact_v6 + self.counts.ranges
        {
            self.counts = BanCounts::default();
            for r in self.by_target.values() {
                self.counts.add(r, 1);
            }
        }
        for t in self.by_target.keys() {
            if let BanTarget::Net(net) = t {
                self.ranges.add(*net);
            }
        }
    }

    pub(crate) fn remove(&mut self, target: &BanTarget) -> Option<BanRecord> {
        let old = self.by_target.remove(target)?;
        self.counts.add(&old, -1);
        if let BanTarget::Net(net) = target {
            self.ranges.remove(*net);
        }
        Some(old)
    }

    /// The active ban covering `ip`: its exact ban, else the most specific range.
    pub(crate) fn ban_of(&self, ip: IpAddr, now_unix: u64) -> Option<&BanRecord> {
        let ip = ip.to_canonical();
        let active = |r: &&BanRecord| r.is_active(now_unix);
        if let Some(record) = self.by_target.get(&BanTarget::Addr(ip)).filter(active) {
            return Some(record);
        }
        self.ranges
            .containing(IpNet::from(ip))
            .find_map(|net| self.by_target.get(&BanTarget::Net(net)).filter(active))
    }

    /// Removes and returns the bans for which `drop` is true.
    pub(crate) fn remove_where(
        &mut self,
        mut drop: impl FnMut(&BanRecord) -> bool,
    ) -> Vec<BanRecord> {
        let targets: Vec<BanTarget> = self
            .by_target
            .values()
            .filter(|r| drop(r))
            .map(|r| r.target)
            .collect();
        targets.iter().filter_map(|t| self.remove(t)).collect()
    }

    /// Removes and returns the expired bans among the next `SWEEP_CHUNK`
    /// (all of them in a book that small), going on from where the last
    /// sweep stopped.
    pub(crate) fn remove_expired(&mut self, now_unix: u64) -> Vec<BanRecord> {
        let range = match self.sweep_from.take() {
            Some(from) => self.by_target.range(from..),
            None => self.by_target.range(..),
        };
        let mut expired = Vec::new();
        for (i, (target, record)) in range.enumerate() {
            if i == SWEEP_CHUNK {
                self.sweep_from = Some(*target);
                break;
            }
            if !record.is_active(now_unix) {
                expired.push(*target);
            }
        }
        expired.iter().filter_map(|t| self.remove(t)).collect()
    }

    /// The ban of exactly `target`, active or not.
    pub(crate) fn get(&self, target: &BanTarget) -> Option<&BanRecord> {
        self.by_target.get(target)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &BanRecord> {
        self.by_target.values()
    }

    /// The `n` newest active bans, newest first. From the remembered
    /// latest ones; a full pass only when those do not make `n` (after a
    /// restore, or when they were lifted).
    pub(crate) fn newest(&mut self, n: usize, now_unix: u64) -> Vec<&BanRecord> {
        let found = self
            .newest
            .iter()
            .filter(|t| self.by_target.get(t).is_some_and(|r| r.is_active(now_unix)))
            .count();
        if found < n && found < self.by_target.len() {
            self.reseed_newest(now_unix);
        }
        self.newest
            .iter()
            .filter_map(|t| self.by_target.get(t))
            .filter(|r| r.is_active(now_unix))
            .take(n)
            .collect()
    }

    /// Finds the newest bans by a pass over all (after a bulk restore,
    /// whose order says nothing).
    pub(crate) fn reseed_newest(&mut self, now_unix: u64) {
        let mut active: Vec<&BanRecord> = self
            .by_target
            .values()
            .filter(|r| r.is_active(now_unix))
            .collect();
        if active.len() > NEWEST_KEPT {
            active.select_nth_unstable_by_key(NEWEST_KEPT, |r| std::cmp::Reverse(r.created));
            active.truncate(NEWEST_KEPT);
        }
        active.sort_by_key(|r| std::cmp::Reverse(r.created));
        self.newest = active.iter().map(|r| r.target).collect();
    }

    pub(crate) fn counts(&self) -> BanCounts {
        self.counts
    }

    pub(crate) fn len(&self) -> usize {
        self.by_target.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offence::OffenceClass;

    fn ban(n: u32, expires: Option<u64>) -> BanRecord {
        BanRecord {
            target: BanTarget::Addr(IpAddr::from(n.to_be_bytes())),
            created: 1,
            expires,
            class: OffenceClass::SipAuth,
            origin: BanOrigin::Log,
            offence_number: 1,
            reason: "test".into(),
        }
    }

    #[test]
    fn a_sweep_looks_at_one_chunk_and_goes_on_where_it_stopped() {
        let mut book = BanBook::default();
        let n = 2 * SWEEP_CHUNK as u32 + 5;
        // Every third ban has ended by 100; the others are permanent.
        book.extend((0..n).map(|i| ban(i, (i % 3 == 0).then_some(50))).collect());
        let ended = n.div_ceil(3) as usize;
        let mut lifted = book.remove_expired(100).len();
        let mut sweeps = 1;
        // The ban the next sweep starts at goes meanwhile: it starts at
        // the one after.
        let cursor = book.sweep_from.expect("a book over one chunk");
        if book.remove(&cursor).is_some_and(|r| !r.is_active(100)) {
            lifted += 1;
        }
        while lifted < ended {
            let got = book.remove_expired(100);
            assert!(
                got.len() <= SWEEP_CHUNK.div_ceil(3) + 1,
                "one chunk at most"
            );
            assert!(got.iter().all(|r| !r.is_active(100)));
            lifted += got.len();
            sweeps += 1;
            assert!(sweeps <= 3, "three sweeps cover {n} bans");
        }
        let removed_by_hand = usize::from(book.len() < n as usize - ended);
        assert_eq!(book.len() + removed_by_hand, n as usize - ended);
        assert!(book.iter().all(|r| r.is_active(100)));
        assert_eq!(book.counts().exact_v4, book.len() as u64);
        // A small book is swept whole at once.
        let mut small = BanBook::default();
        small.extend((0..10).map(|i| ban(i, Some(50))).collect());
        assert_eq!(small.remove_expired(100).len(), 10);
        assert!(small.remove_expired(100).is_empty());
    }
}
