//! The bans policy has made or recorded, addresses and networks.

use std::{collections::BTreeMap, net::IpAddr};

use ipnet::IpNet;

use super::prefix::PrefixLengths;
use crate::state::{BanRecord, BanTarget};

#[derive(Debug, Clone, Default)]
pub(crate) struct BanBook {
    by_target: BTreeMap<BanTarget, BanRecord>,
    ranges: PrefixLengths,
}

impl BanBook {
    /// Adds or replaces the ban of `record.target`.
    pub(crate) fn insert(&mut self, record: BanRecord) -> Option<BanRecord> {
        let target = record.target;
        let old = self.by_target.insert(target, record);
        if let (None, BanTarget::Net(net)) = (&old, target) {
            self.ranges.add(net);
        }
        old
    }

    pub(crate) fn remove(&mut self, target: &BanTarget) -> Option<BanRecord> {
        let old = self.by_target.remove(target)?;
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

    pub(crate) fn len(&self) -> usize {
        self.by_target.len()
    }
}
