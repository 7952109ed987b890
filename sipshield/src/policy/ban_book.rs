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
}

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
