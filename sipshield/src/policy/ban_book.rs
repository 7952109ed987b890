//! The bans policy has made or recorded, addresses and networks.

use std::{collections::BTreeMap, net::IpAddr};

use ipnet::IpNet;

use super::prefix::PrefixLengths;
use crate::state::{BanOrigin, BanRecord, BanTarget};

#[derive(Debug, Clone, Default)]
pub(crate) struct BanBook {
    by_target: BTreeMap<BanTarget, BanRecord>,
    ranges: PrefixLengths,
    counts: BanCounts,
}

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
}

impl BanCounts {
    fn add(&mut self, r: &BanRecord, sign: i64) {
        let bump = |c: &mut u64| *c = c.saturating_add_signed(sign);
        match r.target {
            BanTarget::Addr(IpAddr::V4(_)) => bump(&mut self.exact_v4),
            BanTarget::Addr(IpAddr::V6(_)) => bump(&mut self.exact_v6),
            BanTarget::Net(_) => bump(&mut self.ranges),
        }
        match r.origin {
            BanOrigin::Log => bump(&mut self.log),
            BanOrigin::Manual => bump(&mut self.operator),
            BanOrigin::KernelRateGuard | BanOrigin::KernelScanner => bump(&mut self.kernel),
        }
    }
}

impl BanBook {
    /// Adds or replaces the ban of `record.target`.
    pub(crate) fn insert(&mut self, record: BanRecord) -> Option<BanRecord> {
        let target = record.target;
        self.counts.add(&record, 1);
        let old = self.by_target.insert(target, record);
        if let Some(old) = &old {
            self.counts.add(old, -1);
        }
        if let (None, BanTarget::Net(net)) = (&old, target) {
            self.ranges.add(net);
        }
        old
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

    pub(crate) fn iter(&self) -> impl Iterator<Item = &BanRecord> {
        self.by_target.values()
    }

    pub(crate) fn counts(&self) -> BanCounts {
        self.counts
    }

    pub(crate) fn len(&self) -> usize {
        self.by_target.len()
    }
}
