//! The kernel side as the daemon and the CLI see it: one program and one
//! set of maps shared by every guarded interface. A ban written here drops
//! on every interface at once.
//!
//! Shares of the ban tables: kernel-made bans live in their own LRU map
//! (`KBANS_*`), so a flood of forged offenders can never fill anything
//! else. Log and operator bans share `BANS_*`, where log bans may use all
//! but `operator_reserve` entries: a password-guessing storm (whose sources
//! can also be forged over UDP) never takes the room an operator needs.

use std::{net::IpAddr, path::PathBuf};

use ipnet::IpNet;
use sipshield_common::{
    config::{UaPrefix, XdpConfig},
    maps::{BanEntry, BanOrigin, RangeEntry, SourceStats},
};

use crate::bpf::{
    addr,
    allowlist::KernelAllow,
    clock,
    iface_stats::{IfaceSlot, OTHER_INTERFACES},
    pins::{LinkState, Pinned},
    BpfError, KernelEvent, ShieldMaps, StatsSnapshot,
};
use crate::policy::BanCounts;

/// Entries of `BANS_*` per origin (per address family table).
///
/// Each origin has room no other can take: operators a reserve of their
/// own (and whatever is free), CrowdSec a quarter of the table and the
/// feeds an eighth when they are configured, log bans the rest. A forged
/// flood of log failures can fill only the log share; a 100k-decision
/// CrowdSec pull only CrowdSec's.
#[derive(Clone, Debug, Default)]
pub struct Shares {
    /// Capacity of each family's table.
    pub capacity: u32,
    /// Entries only operator bans may use.
    pub operator_reserve: u32,
    /// Entries only CrowdSec may use, and its limit.
    pub crowdsec_share: u32,
    /// Entries only the feeds may use, and their limit.
    pub feed_share: u32,
    pub log: [u32; 2],
    pub operator: [u32; 2],
    pub crowdsec: [u32; 2],
    pub feed: [u32; 2],
    /// Bans refused because their origin's share was full (since start).
    pub refused: u64,
}

impl Shares {
    fn new(capacity: u32) -> Shares {
        Shares {
            capacity,
            operator_reserve: (capacity / 16).clamp(1, 65_536),
            ..Shares::default()
        }
    }

    /// Keeps room for CrowdSec and the feeds when they are in use (none
    /// otherwise: a host without them keeps it for log bans).
    pub fn set_fleet(&mut self, crowdsec: bool, feeds: bool) {
        self.crowdsec_share = if crowdsec { self.capacity / 4 } else { 0 };
        self.feed_share = if feeds { self.capacity / 8 } else { 0 };
    }

    fn slot(&mut self, origin: BanOrigin, v6: bool) -> &mut u32 {
        let i = usize::from(v6);
        match origin {
            BanOrigin::Operator => &mut self.operator[i],
            BanOrigin::CrowdSec => &mut self.crowdsec[i],
            BanOrigin::Feed => &mut self.feed[i],
            _ => &mut self.log[i],
        }
    }

    /// Room for one more ban of `origin` in the family's table.
    fn has_room(&self, origin: BanOrigin, v6: bool) -> bool {
        let i = usize::from(v6);
        let used = self.log[i] + self.operator[i] + self.crowdsec[i] + self.feed[i];
        if used >= self.capacity {
            return false;
        }
        match origin {
            BanOrigin::Operator => true,
            BanOrigin::CrowdSec => self.crowdsec[i] < self.crowdsec_share,
            BanOrigin::Feed => self.feed[i] < self.feed_share,
            _ => {
                let others = self
                    .operator_reserve
                    .saturating_add(self.crowdsec_share)
                    .saturating_add(self.feed_share);
                self.log[i] < self.capacity.saturating_sub(others)
            }
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "capacity_per_family": self.capacity,
            "operator_reserve": self.operator_reserve,
            "crowdsec_share": self.crowdsec_share,
            "feed_share": self.feed_share,
            "log": self.log[0] + self.log[1],
            "operator": self.operator[0] + self.operator[1],
            "crowdsec": self.crowdsec[0] + self.crowdsec[1],
            "feed": self.feed[0] + self.feed[1],
            "refused_full": self.refused,
        })
    }
}

/// How recent a sighting breaks a tie between two readings of a log line:
/// Asterisk logs a failure within milliseconds of the request.
pub const SENT_LATELY: std::time::Duration = std::time::Duration::from_secs(120);

pub struct Shield {
    pub root: PathBuf,
    pub maps: ShieldMaps,
    pub program_id: u32,
    pub links: Vec<LinkState>,
    /// What start-up did (adopted, replaced, migrated...).
    pub how: String,
    pub shares: Shares,
    /// The counter slot of each guarded interface.
    pub slots: Vec<IfaceSlot>,
}

impl Shield {
    /// Wraps pinned (or just attached) maps; counts the table's shares.
    pub fn new(pinned: Pinned, capacity: u32) -> Result<Shield, BpfError> {
        let mut shares = Shares::new(capacity);
        for (ip, e) in pinned.maps.bans.entries()? {
            *shares.slot(BanOrigin::from_u32(e.origin), ip.is_ipv6()) += 1;
        }
        Ok(Shield {
            root: pinned.root,
            maps: pinned.maps,
            program_id: pinned.program_id,
            links: pinned.links,
            how: pinned.how,
            shares,
            slots: pinned.slots,
        })
    }

    pub fn write_config(
        &mut self,
        config: &XdpConfig,
        prefixes: &[UaPrefix],
    ) -> Result<(), BpfError> {
        self.maps.config.write(config, prefixes)
    }

    /// Bans `target` from monotonic `created_ns` (when the ban began: the
    /// kernel's own time for a ban it made) until `expires_ns` (0 =
    /// permanent). A host prefix goes to its origin's exact table, anything
    /// wider to the range trie.
    pub fn ban(
        &mut self,
        target: IpNet,
        created_ns: u64,
        expires_ns: u64,
        origin: BanOrigin,
    ) -> Result<(), BpfError> {
        let target = addr::canonical_net(target);
        if target.prefix_len() != target.max_prefix_len() {
            let overlaps = self.maps.allow.overlaps(target)?;
            let entry = RangeEntry {
                created_ns,
                expires_ns,
                own_expires_ns: expires_ns,
                origin: origin as u32,
                no_allow_inside: u32::from(!overlaps),
            };
            return self.maps.ranges.insert(target, entry);
        }
        let ip = target.addr();
        let entry = BanEntry {
            expires_ns,
            created_ns,
            origin: origin as u32,
            _pad: 0,
        };
        if origin.is_kernel() {
            return self.maps.kernel_bans.insert(ip, entry);
        }
        let v6 = ip.is_ipv6();
        let old = self.maps.bans.get(ip)?;
        if old.is_none() && !self.shares.has_room(origin, v6) {
            self.shares.refused += 1;
            return Err(BpfError::ShareFull {
                target: ip,
                origin: origin_name(origin as u32),
            });
        }
        self.maps.bans.insert(ip, entry)?;
        if let Some(old) = old {
            *self.shares.slot(BanOrigin::from_u32(old.origin), v6) -= 1;
        }
        *self.shares.slot(origin, v6) += 1;
        Ok(())
    }

    /// Removes the ban of `target` from every table; true if any had it.
    pub fn unban(&mut self, target: IpNet) -> Result<bool, BpfError> {
        let target = addr::canonical_net(target);
        if target.prefix_len() != target.max_prefix_len() {
            return self.maps.ranges.remove(target);
        }
        let ip = target.addr();
        let mut any = false;
        if let Some(old) = self.maps.bans.get(ip)? {
            if self.maps.bans.remove(ip)? {
                let slot = self
                    .shares
                    .slot(BanOrigin::from_u32(old.origin), ip.is_ipv6());
                *slot = slot.saturating_sub(1);
                any = true;
            }
        }
        any |= self.maps.kernel_bans.remove(ip)?;
        Ok(any)
    }

    /// Makes the kernel allowlist exactly `nets`. Callers lift bans of
    /// newly allowlisted sources first: the program looks the ban table up
    /// before the allowlist.
    pub fn sync_allowlist(&mut self, nets: &[IpNet]) -> Result<(), BpfError> {
        self.sync_allowlist_capped(nets, |_| None)
    }

    /// As `sync_allowlist`, each entry with the cap `cap_for` gives it.
    pub fn sync_allowlist_capped(
        &mut self,
        nets: &[IpNet],
        cap_for: impl Fn(IpNet) -> Option<sipshield_common::config::RateLimit>,
    ) -> Result<(), BpfError> {
        // Ranges the new entries overlap defer to the allowlist first, so
        // no packet of a newly allowlisted source meets a fast range drop.
        let overlap = |r: &IpNet, list: &[IpNet]| list.iter().any(|a| addr::overlap(*r, *a));
        let ranges = self.maps.ranges.entries()?;
        for (net, mut e) in ranges.iter().copied() {
            if e.no_allow_inside != 0 && overlap(&net, nets) {
                e.no_allow_inside = 0;
                self.maps.ranges.set(net, e)?;
            }
        }
        let wanted: Vec<KernelAllow> = nets
            .iter()
            .map(|n| KernelAllow {
                net: *n,
                cap: cap_for(*n),
            })
            .collect();
        self.maps.allow.replace_all_capped(&wanted)?;
        let now: Vec<IpNet> = self.maps.allow.entries()?;
        for (net, mut e) in ranges {
            if e.no_allow_inside == 0 && !overlap(&net, &now) {
                e.no_allow_inside = 1;
                self.maps.ranges.set(net, e)?;
            }
        }
        Ok(())
    }

    /// Exact bans the kernel does not hold yet, written in batches (a
    /// start restoring a million bans). Shares are checked as one at a
    /// time would; returns the entries refused (share or table full).
    pub fn ban_new_exact(&mut self, items: &[(IpAddr, BanEntry)]) -> Vec<(IpAddr, BanEntry)> {
        let mut user: Vec<(IpAddr, BanEntry)> = Vec::new();
        let mut kernel: Vec<(IpAddr, BanEntry)> = Vec::new();
        let mut refused = Vec::new();
        for (ip, entry) in items {
            let ip = addr::canonical(*ip);
            let origin = BanOrigin::from_u32(entry.origin);
            if origin.is_kernel() {
                kernel.push((ip, *entry));
                continue;
            }
            let v6 = ip.is_ipv6();
            if !self.shares.has_room(origin, v6) {
                self.shares.refused += 1;
                refused.push((ip, *entry));
                continue;
            }
            *self.shares.slot(origin, v6) += 1;
            user.push((ip, *entry));
        }
        for (ip, e) in self.maps.bans.insert_many(&user) {
            *self
                .shares
                .slot(BanOrigin::from_u32(e.origin), ip.is_ipv6()) -= 1;
            refused.push((ip, e));
        }
        refused.extend(self.maps.kernel_bans.insert_many(&kernel));
        refused
    }

    /// Drops expired entries the daemon does not lift itself: the kernel's
    /// own bans (an LRU of at most `max_kernel_bans`), ranges and known-good
    /// sources. The log/operator table is not walked: every entry in it is
    /// in the policy (written by the daemon, or adopted at start), which
    /// lifts it when it expires; a walk of a million entries would stall
    /// the event loop for a second.
    /// The kernel's source table saw `ip` send to a guarded port within
    /// `SENT_LATELY` (a lookup; a source the LRU dropped is not seen).
    pub fn sent_lately(&self, ip: IpAddr) -> bool {
        let now = clock::monotonic_ns();
        self.maps.sources.get(ip).ok().flatten().is_some_and(|s| {
            s.last_seen_ns != 0
                && now.saturating_sub(s.last_seen_ns) <= SENT_LATELY.as_nanos() as u64
        })
    }

    pub fn prune_expired(&mut self) -> Result<usize, BpfError> {
        let now = clock::monotonic_ns();
        let mut n = 0;
        n += self.maps.kernel_bans.prune_expired(now)?;
        n += self.maps.ranges.prune_expired(now)?;
        n += self.maps.known.prune_expired(now)?;
        Ok(n)
    }

    pub fn drain_events(&mut self) -> Vec<KernelEvent> {
        self.maps.events.drain()
    }

    pub fn stats(&self) -> Result<StatsSnapshot, BpfError> {
        self.maps.stats.snapshot()
    }

    /// Verdict counters of each guarded interface, then "other" (packets
    /// of interfaces without a slot of their own).
    pub fn interface_stats(&self) -> Result<Vec<(String, StatsSnapshot)>, BpfError> {
        if self.maps.interfaces.is_none() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for s in self.slots.iter().filter(|s| s.slot != 0) {
            out.push((s.name.clone(), self.maps.stats.slot(s.slot)?));
        }
        out.push((OTHER_INTERFACES.to_string(), self.maps.stats.slot(0)?));
        Ok(out)
    }

    /// The `n` busiest SIP sources.
    pub fn top(&self, n: usize) -> Result<Vec<(IpAddr, SourceStats)>, BpfError> {
        let mut all: Vec<(IpAddr, SourceStats)> = self.maps.sources.entries()?;
        all.sort_by_key(|(ip, s)| (std::cmp::Reverse(s.total_messages()), *ip));
        all.truncate(n);
        Ok(all)
    }

    /// What the tables hold, from the daemon's own counts: no walk over
    /// the ban tables (a million entries take over a second), only over
    /// the small known-good map. Expired entries awaiting the prune are
    /// not counted (`None`).
    pub fn census_counted(&self, counts: BanCounts) -> Result<Census, BpfError> {
        let now = clock::monotonic_ns();
        Ok(Census {
            exact_v4: counts.exact_v4,
            exact_v6: counts.exact_v6,
            log: counts.log,
            operator: counts.operator,
            kernel: counts.kernel,
            // The fleet book's count, filled in by the engine.
            fleet: 0,
            ranges: counts.ranges,
            known: self
                .maps
                .known
                .entries()?
                .iter()
                .filter(|(_, e)| e.is_active(now))
                .count() as u64,
            expired: None,
            active_exact: Vec::new(),
        })
    }

    /// What the tables hold, in one pass over each.
    pub fn census(&self) -> Result<Census, BpfError> {
        let now = clock::monotonic_ns();
        let mut c = Census {
            expired: Some(0),
            ..Census::default()
        };
        for (ip, e) in self.maps.all_bans()? {
            if !e.is_active(now) {
                *c.expired.get_or_insert(0) += 1;
                continue;
            }
            if ip.is_ipv4() {
                c.exact_v4 += 1;
            } else {
                c.exact_v6 += 1;
            }
            match BanOrigin::from_u32(e.origin) {
                BanOrigin::Operator => c.operator += 1,
                o if o.is_kernel() => c.kernel += 1,
                o if o.is_fleet() => c.fleet += 1,
                _ => c.log += 1,
            }
            c.active_exact.push((ip, e));
        }
        for (_, e) in self.maps.ranges.entries()? {
            if e.is_active(now) {
                c.ranges += 1;
            } else {
                *c.expired.get_or_insert(0) += 1;
            }
        }
        c.known = self
            .maps
            .known
            .entries()?
            .iter()
            .filter(|(_, e)| e.is_active(now))
            .count() as u64;
        Ok(c)
    }
}

/// Counts of the kernel tables, for `status`.
#[derive(Debug, Default)]
pub struct Census {
    pub exact_v4: u64,
    pub exact_v6: u64,
    pub log: u64,
    pub operator: u64,
    pub kernel: u64,
    /// CrowdSec and feeds.
    pub fleet: u64,
    pub ranges: u64,
    pub known: u64,
    /// Expired entries not pruned yet (exact and ranges); `None` when not
    /// walked.
    pub expired: Option<u64>,
    /// Every active exact ban, both tables.
    pub active_exact: Vec<(IpAddr, BanEntry)>,
}

/// How `status` and `bans list` name a kernel origin.
pub fn origin_name(origin: u32) -> &'static str {
    match BanOrigin::from_u32(origin) {
        BanOrigin::Userspace => "log",
        BanOrigin::RateGuard => "rate-guard",
        BanOrigin::Scanner => "scanner",
        BanOrigin::Operator => "operator",
        BanOrigin::CrowdSec => "crowdsec",
        BanOrigin::Feed => "feed",
    }
}

#[cfg(test)]
mod share_tests {
    use super::*;

    fn fill(s: &mut Shares, origin: BanOrigin) -> u32 {
        let mut n = 0;
        while s.has_room(origin, false) {
            *s.slot(origin, false) += 1;
            n += 1;
        }
        n
    }

    #[test]
    fn each_origin_keeps_its_room_and_the_fleet_only_when_configured() {
        let mut s = Shares::new(1000);
        assert_eq!(fill(&mut s.clone(), BanOrigin::Userspace), 1000 - 62);
        s.set_fleet(true, true);
        // A log flood takes its share and no more...
        assert_eq!(fill(&mut s, BanOrigin::Userspace), 1000 - 62 - 250 - 125);
        // ... CrowdSec and the feeds still have theirs, operators the rest.
        assert_eq!(fill(&mut s, BanOrigin::CrowdSec), 250);
        assert_eq!(fill(&mut s, BanOrigin::Feed), 125);
        assert_eq!(fill(&mut s, BanOrigin::Operator), 62);
        assert!(!s.has_room(BanOrigin::Operator, false));
        // The other family is apart.
        assert!(s.has_room(BanOrigin::CrowdSec, true));
    }
}
