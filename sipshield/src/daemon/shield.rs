//! The kernel side as the daemon sees it: one program with its own maps per
//! guarded interface. Every write fans out to all of them, so a ban made by
//! one interface's rate guard is enforced on the others too.

use std::{collections::BTreeMap, net::IpAddr};

use ipnet::IpNet;
use sipshield_common::{
    config::{UaPrefix, XdpConfig},
    maps::{BanEntry, BanOrigin, RangeEntry, SourceStats},
};

use crate::bpf::{addr, clock, pins::Attachment, BpfError, KernelEvent, StatsSnapshot};

pub struct Shield {
    pub attachments: Vec<Attachment>,
}

impl Shield {
    pub fn new(attachments: Vec<Attachment>) -> Shield {
        Shield { attachments }
    }

    pub fn write_config(
        &mut self,
        config: &XdpConfig,
        prefixes: &[UaPrefix],
    ) -> Result<(), BpfError> {
        for a in &mut self.attachments {
            a.maps.config.write(config, prefixes)?;
        }
        Ok(())
    }

    /// Bans `target` from monotonic `created_ns` (when the ban began: the
    /// kernel's own time for a ban it made) until `expires_ns` (0 =
    /// permanent). A host prefix goes to the exact table, anything wider to
    /// the range trie.
    pub fn ban(
        &mut self,
        target: IpNet,
        created_ns: u64,
        expires_ns: u64,
        origin: BanOrigin,
    ) -> Result<(), BpfError> {
        let target = addr::canonical_net(target);
        for a in &mut self.attachments {
            if target.prefix_len() == target.max_prefix_len() {
                let entry = BanEntry {
                    expires_ns,
                    created_ns,
                    origin: origin as u32,
                    _pad: 0,
                };
                a.maps.bans.insert(target.addr(), entry)?;
            } else {
                let entry = RangeEntry {
                    created_ns,
                    origin: origin as u32,
                    _pad: 0,
                };
                a.maps.ranges.insert(target, entry)?;
            }
        }
        Ok(())
    }

    /// Removes the ban of `target`; true if any interface had it.
    pub fn unban(&mut self, target: IpNet) -> Result<bool, BpfError> {
        let target = addr::canonical_net(target);
        let mut any = false;
        for a in &mut self.attachments {
            any |= if target.prefix_len() == target.max_prefix_len() {
                a.maps.bans.remove(target.addr())?
            } else {
                a.maps.ranges.remove(target)?
            };
        }
        Ok(any)
    }

    pub fn exact_ban(&self, ip: IpAddr) -> Result<Option<BanEntry>, BpfError> {
        match self.attachments.first() {
            Some(a) => a.maps.bans.get(ip),
            None => Ok(None),
        }
    }

    /// Makes every interface's kernel allowlist exactly `nets`.
    pub fn sync_allowlist(&mut self, nets: &[IpNet]) -> Result<(), BpfError> {
        for a in &mut self.attachments {
            a.maps.allow.replace_all(nets)?;
        }
        Ok(())
    }

    /// Drops expired exact bans from every interface's table.
    pub fn prune_expired(&mut self) -> Result<usize, BpfError> {
        let now = clock::monotonic_ns();
        let mut n = 0;
        for a in &mut self.attachments {
            n += a.maps.bans.prune_expired(now)?;
        }
        Ok(n)
    }

    pub fn drain_events(&mut self) -> Vec<KernelEvent> {
        self.attachments
            .iter_mut()
            .flat_map(|a| a.maps.events.drain())
            .collect()
    }

    /// Packet counters summed over interfaces.
    pub fn stats(&self) -> Result<StatsSnapshot, BpfError> {
        let mut total: Option<StatsSnapshot> = None;
        for a in &self.attachments {
            let s = a.maps.stats.snapshot()?;
            total = Some(match total {
                None => s,
                Some(t) => t.plus(&s),
            });
        }
        Ok(total.unwrap_or_default())
    }

    /// The `n` busiest SIP sources over all interfaces.
    pub fn top(&self, n: usize) -> Result<Vec<(IpAddr, SourceStats)>, BpfError> {
        let mut merged: BTreeMap<IpAddr, SourceStats> = BTreeMap::new();
        for a in &self.attachments {
            for (ip, s) in a.maps.sources.entries()? {
                merged
                    .entry(ip)
                    .and_modify(|m| merge_sources(m, &s))
                    .or_insert(s);
            }
        }
        let mut all: Vec<_> = merged.into_iter().collect();
        all.sort_by_key(|(ip, s)| (std::cmp::Reverse(s.total_messages()), *ip));
        all.truncate(n);
        Ok(all)
    }
}

fn merge_sources(into: &mut SourceStats, other: &SourceStats) {
    for (a, b) in into.methods.iter_mut().zip(other.methods.iter()) {
        *a += b;
    }
    into.bytes += other.bytes;
    into.first_seen_ns = into.first_seen_ns.min(other.first_seen_ns);
    into.last_seen_ns = into.last_seen_ns.max(other.last_seen_ns);
}
