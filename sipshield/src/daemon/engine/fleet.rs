//! The engine's side of the fleet: CrowdSec decisions into the fleet book
//! and the kernel, combined with sipshield's own bans.
//!
//! One kernel entry per target: banned until the later of the local ban
//! and the fleet's decisions, under the local ban's origin when there is
//! one. So a CrowdSec deletion never lifts a local ban, a local unban never
//! lifts a CrowdSec one, and CrowdSec bans never move a source up the
//! ladder (policy never sees them).

use std::{
    collections::{BTreeSet, HashSet},
    net::IpAddr,
    time::{Instant, SystemTime},
};

use serde_json::{json, Value};
use sipshield_common::maps::{BanEntry, BanOrigin as KernelOrigin};

use super::{kernel_expiry, Engine, Waiting};
use crate::daemon::events::{unix_now, BanEvent, EventAction};
use crate::{
    bpf::{addr, clock},
    fleet::{
        book::{Effective, FleetDecision, FleetSource},
        crowdsec::{
            bouncer::Pulled,
            stream::{StreamDecision, StreamDelta},
        },
    },
    state::{self, db::Change, BanTarget},
};

/// What `status` says about the bouncer.
#[derive(Debug, Default)]
pub struct CrowdSecState {
    pub enabled: bool,
    pub url: String,
    pub last_pull: Option<SystemTime>,
    /// Since when pulls fail (`None`: the last one worked).
    pub down_since: Option<SystemTime>,
    pub last_error: Option<String>,
    pub pulls: u64,
    pub failures: u64,
    /// Decisions not enforced because the allowlist covers their target.
    pub allowlisted: u64,
    /// Decisions of a type or scope sipshield does not enforce.
    pub ignored: u64,
    /// Decisions that did not parse.
    pub malformed: u64,
    /// How long the last pull took from its answer to the kernel.
    pub last_apply_ms: f64,
    /// Newest allowlisted decisions, for `status`.
    pub allowlisted_recent: Vec<String>,
    /// Decisions that sipshield sent (origin `sipshield`), from this host
    /// or another, as they came back.
    pub own_origin: u64,
    /// Range decisions not enforced: the fleet's share of the trie is full.
    pub ranges_refused: u64,
}

fn origin_of(source: &FleetSource) -> KernelOrigin {
    match source {
        FleetSource::CrowdSec => KernelOrigin::CrowdSec,
        FleetSource::Feed(_) => KernelOrigin::Feed,
    }
}

/// `a` ends later than `b` (`None`: never ends).
fn ends_later(a: Option<u64>, b: Option<u64>) -> bool {
    match (a, b) {
        (None, Some(_)) => true,
        (Some(x), Some(y)) => x > y,
        _ => false,
    }
}

impl Engine {
    /// What one pull (or a failed one) brought.
    pub fn on_pulled(&mut self, pulled: Pulled) {
        match pulled {
            Pulled::Delta {
                startup,
                delta,
                received,
            } => {
                let c = &mut self.crowdsec;
                c.pulls += 1;
                c.last_pull = Some(SystemTime::now());
                if let Some(since) = c.down_since.take() {
                    let secs = SystemTime::now()
                        .duration_since(since)
                        .map_or(0, |d| d.as_secs());
                    log::warn!("crowdsec: LAPI answers again after {secs}s; full resync");
                }
                c.last_error = None;
                self.apply_crowdsec(startup, delta, received);
            }
            Pulled::Failed { error, at } => {
                let c = &mut self.crowdsec;
                c.failures += 1;
                if c.down_since.is_none() {
                    c.down_since = Some(at);
                    log::error!("crowdsec: {error}; bans in force stay, retrying");
                } else {
                    log::debug!("crowdsec: {error}");
                }
                c.last_error = Some(error);
            }
        }
    }

    /// Applies a stream answer: `startup` replaces every CrowdSec decision
    /// held, otherwise it adds and deletes.
    pub fn apply_crowdsec(&mut self, startup: bool, delta: StreamDelta, received: Instant) {
        let now = SystemTime::now();
        let now_unix = state::unix_secs(now);
        self.crowdsec.ignored += delta.ignored;
        self.crowdsec.malformed += delta.malformed;
        let mut touched: BTreeSet<BanTarget> = BTreeSet::new();
        let (added, deleted) = (delta.new.len(), delta.deleted.len());
        if startup {
            let wanted: HashSet<&str> = delta.new.iter().map(|d| d.id.as_str()).collect();
            let gone: Vec<FleetDecision> = self
                .fleet
                .decisions()
                .filter(|d| d.source == FleetSource::CrowdSec && !wanted.contains(d.id.as_str()))
                .cloned()
                .collect();
            for d in gone {
                self.drop_fleet_decision(&d.source, &d.id, &mut touched);
            }
        }
        for d in &delta.deleted {
            self.drop_fleet_decision(&FleetSource::CrowdSec, &d.id, &mut touched);
        }
        for d in delta.new {
            self.take_crowdsec_decision(d, now_unix, &mut touched);
        }
        self.enforce_fleet(&touched);
        let ms = received.elapsed().as_secs_f64() * 1e3;
        self.crowdsec.last_apply_ms = ms;
        if added + deleted > 0 || startup {
            log::info!(
                "crowdsec: {}{added} new, {deleted} deleted; {} decisions held, in the kernel {ms:.0} ms after the answer",
                if startup { "full pull: " } else { "" },
                self.fleet.count(&FleetSource::CrowdSec)
            );
        }
    }

    pub(super) fn drop_fleet_decision(
        &mut self,
        source: &FleetSource,
        id: &str,
        touched: &mut BTreeSet<BanTarget>,
    ) {
        if let Some(t) = self.fleet.remove(source, id) {
            touched.insert(t);
            self.fleet_changes.push(Change::FleetGone {
                source: source.name(),
                id: id.to_string(),
            });
            if self.fleet.effective(&t).is_none() {
                self.fleet_event(EventAction::Unban, &t, source, None, "decision gone");
            }
        }
    }

    fn take_crowdsec_decision(
        &mut self,
        d: StreamDecision,
        now_unix: u64,
        touched: &mut BTreeSet<BanTarget>,
    ) {
        let Some(left) = d.left else { return };
        // The allowlist wins: the decision is reported, not enforced.
        if let Some(entry) = self.policy.allowlist().covers(d.target.as_net()) {
            self.crowdsec.allowlisted += 1;
            let note = format!(
                "crowdsec decision {} on {} ({}) not enforced: allowlisted ({} {})",
                d.id, d.target, d.scenario, entry.source, entry.net
            );
            log::warn!("{note}");
            let recent = &mut self.crowdsec.allowlisted_recent;
            recent.insert(0, note);
            recent.truncate(10);
            // A decision held before the entry came goes now.
            self.drop_fleet_decision(&FleetSource::CrowdSec, &d.id, touched);
            return;
        }
        if &*d.origin == crate::fleet::crowdsec::ORIGIN {
            self.crowdsec.own_origin += 1;
        }
        // Whole seconds, rounded up: a ban never ends before CrowdSec's.
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        let decision = FleetDecision {
            source: FleetSource::CrowdSec,
            id: d.id,
            target: d.target,
            until: Some(now_unix.saturating_add(secs)),
            scenario: d.scenario,
            origin: d.origin,
        };
        // An unchanged decision (a resync) writes nothing.
        let same = self.fleet.decisions_of(&decision.target).any(|x| {
            x.source == decision.source
                && x.id == decision.id
                && x.until
                    .zip(decision.until)
                    .is_some_and(|(a, b)| a.abs_diff(b) <= 2)
        });
        if same {
            return;
        }
        self.fleet_changes.push(Change::Fleet(decision.clone()));
        touched.insert(decision.target);
        if self.fleet.effective(&decision.target).is_none() {
            let reason = format!("{} ({})", decision.scenario, decision.origin);
            self.fleet_event(
                EventAction::Ban,
                &decision.target,
                &decision.source,
                Some(secs),
                &reason,
            );
        }
        self.fleet.insert(decision);
    }

    /// The event of a fleet ban or lift; its hook runs only when `[crowdsec]
    /// hooks` asks (a 100k-decision pull is no fork storm).
    pub(super) fn fleet_event(
        &mut self,
        action: EventAction,
        target: &BanTarget,
        source: &FleetSource,
        duration_s: Option<u64>,
        reason: &str,
    ) {
        let hooks = self.config.crowdsec.hooks;
        self.events.emit_with(
            BanEvent {
                at: unix_now(),
                action,
                target: target.to_string(),
                class: "fleet".into(),
                origin: source.name(),
                duration_s,
                reason: reason.to_string(),
            },
            hooks,
        );
    }

    /// What the kernel should hold for `target`: the later of the local
    /// ban and the fleet's, under the local origin when there is one.
    pub(super) fn wanted_kernel(&self, target: &BanTarget) -> Option<Waiting> {
        let local = self
            .policy
            .ban_for(target)
            .filter(|r| r.is_active(state::unix_secs(SystemTime::now())));
        let fleet: Option<Effective> = self.fleet.effective(target);
        match (local, fleet) {
            (None, None) => None,
            (Some(r), fleet) => {
                let until = match &fleet {
                    Some(f) if ends_later(f.until, r.expires) => f.until,
                    _ => r.expires,
                };
                Some(Waiting {
                    created_ns: clock::monotonic_since(state::from_unix_secs(r.created)),
                    expires_ns: kernel_expiry(until),
                    origin: r.origin.kernel(),
                })
            }
            (None, Some(f)) => Some(Waiting {
                created_ns: clock::monotonic_ns(),
                expires_ns: kernel_expiry(f.until),
                origin: origin_of(&f.source),
            }),
        }
    }

    /// Brings the kernel in line for `targets`: new addresses in batches,
    /// the rest one by one.
    pub(super) fn enforce_fleet(&mut self, targets: &BTreeSet<BanTarget>) {
        let mut fresh: Vec<(IpAddr, BanEntry)> = Vec::new();
        for target in targets {
            let net = target.as_net();
            match self.wanted_kernel(target) {
                None => {
                    self.unenforced.remove(&addr::canonical_net(net));
                    if let Err(e) = self.shield.unban(net) {
                        log::error!("lifting {target} in the kernel: {e}");
                    }
                    self.forget_fleet_range(&net);
                }
                Some(w) => match target {
                    BanTarget::Addr(ip)
                        if self.policy.ban_for(target).is_none()
                            && matches!(self.shield.maps.bans.get(*ip), Ok(None)) =>
                    {
                        fresh.push((
                            *ip,
                            BanEntry {
                                expires_ns: w.expires_ns,
                                created_ns: w.created_ns,
                                origin: w.origin as u32,
                                _pad: 0,
                            },
                        ))
                    }
                    BanTarget::Net(n) if w.origin.is_fleet() => {
                        // The range trie's share of the fleet: a quarter per
                        // family, so operator ranges always find room.
                        let cap = (self.config.xdp.max_ranges / 4).max(1) as usize;
                        let held = self.fleet_range_count[usize::from(n.addr().is_ipv6())];
                        if !self.fleet_ranges.contains(n) && held >= cap {
                            self.crowdsec.ranges_refused += 1;
                            log::error!(
                                "{target} NOT enforced: the fleet's share of the range table ({cap}) is full"
                            );
                        } else if self.put(net, w).is_ok() && self.fleet_ranges.insert(*n) {
                            self.fleet_range_count[usize::from(n.addr().is_ipv6())] += 1;
                        }
                    }
                    _ => {
                        let _ = self.put(net, w);
                        if let BanTarget::Net(n) = target {
                            // A local ban holds it now.
                            self.forget_fleet_range(n);
                        }
                    }
                },
            }
        }
        let refused = self.shield.ban_new_exact(&fresh);
        if !refused.is_empty() {
            log::error!(
                "crowdsec: {} decision(s) NOT enforced: the fleet's share of the ban table is full",
                refused.len()
            );
        }
        for (ip, e) in refused {
            self.unenforced.insert(
                ipnet::IpNet::from(ip),
                Waiting {
                    created_ns: e.created_ns,
                    expires_ns: e.expires_ns,
                    origin: KernelOrigin::from_u32(e.origin),
                },
            );
        }
    }

    fn forget_fleet_range(&mut self, net: &ipnet::IpNet) {
        if self.fleet_ranges.remove(net) {
            let c = &mut self.fleet_range_count[usize::from(net.addr().is_ipv6())];
            *c = c.saturating_sub(1);
        }
    }

    /// Fleet decisions the allowlist now covers are dropped (and reported).
    pub(super) fn fleet_allowlist_sweep(&mut self) {
        let allow = self.policy.allowlist();
        let covered: Vec<FleetDecision> = self
            .fleet
            .decisions()
            .filter(|d| allow.covers(d.target.as_net()).is_some())
            .cloned()
            .collect();
        if covered.is_empty() {
            return;
        }
        let mut touched = BTreeSet::new();
        for d in covered {
            log::warn!(
                "{} decision {} on {} lifted: allowlisted now",
                d.source.name(),
                d.id,
                d.target
            );
            self.crowdsec.allowlisted += 1;
            self.drop_fleet_decision(&d.source, &d.id, &mut touched);
        }
        self.enforce_fleet(&touched);
    }

    /// Ended fleet decisions leave the book (and the kernel, unless a local
    /// ban or another decision holds the target).
    pub(super) fn expire_fleet(&mut self) {
        let now_unix = state::unix_secs(SystemTime::now());
        let ended: Vec<FleetDecision> = self
            .fleet
            .decisions()
            .filter(|d| d.until.is_some_and(|u| u <= now_unix))
            .cloned()
            .collect();
        let mut touched = BTreeSet::new();
        for d in ended {
            self.drop_fleet_decision(&d.source, &d.id, &mut touched);
        }
        if !touched.is_empty() {
            self.enforce_fleet(&touched);
        }
    }

    /// Start-up: the decisions restored from the database into the kernel;
    /// kernel entries of the fleet's origins the book does not hold go.
    pub(super) fn reconcile_fleet(&mut self) {
        let mono_now = clock::monotonic_ns();
        let mut touched: BTreeSet<BanTarget> = self.fleet.targets().copied().collect();
        if let Ok(exact) = self.shield.maps.bans.entries() {
            for (ip, e) in exact {
                let t = BanTarget::addr(ip);
                if KernelOrigin::from_u32(e.origin).is_fleet()
                    && e.is_active(mono_now)
                    && self.fleet.effective(&t).is_none()
                {
                    touched.insert(t);
                }
            }
        }
        if let Ok(ranges) = self.shield.maps.ranges.entries() {
            for (net, e) in ranges {
                let t = BanTarget::from_net(net);
                if KernelOrigin::from_u32(e.origin).is_fleet() && self.fleet.effective(&t).is_none()
                {
                    touched.insert(t);
                }
            }
        }
        self.fleet_allowlist_sweep();
        self.enforce_fleet(&touched);
        if !self.fleet.is_empty() {
            log::info!(
                "enforcing {} fleet decision(s) restored from the state database",
                self.fleet.len()
            );
        }
    }

    /// The `crowdsec` object of `status`.
    pub(super) fn crowdsec_json(&self) -> Value {
        let c = &self.crowdsec;
        let unix = |t: &Option<SystemTime>| t.map(state::unix_secs);
        json!({
            "enabled": c.enabled,
            "api_url": c.url,
            "decisions": self.fleet.count(&FleetSource::CrowdSec),
            "last_pull": unix(&c.last_pull),
            "down_since": unix(&c.down_since),
            "last_error": c.last_error,
            "pulls": c.pulls,
            "failures": c.failures,
            "allowlisted": c.allowlisted,
            "allowlisted_recent": c.allowlisted_recent,
            "ignored": c.ignored,
            "malformed": c.malformed,
            "last_apply_ms": c.last_apply_ms,
            "sipshield_decisions": c.own_origin,
            "ranges_refused": c.ranges_refused,
            "feeds": self.feeds_json(),
            "alerts": self.alerts_json(),
        })
    }

    /// Targets the fleet alone bans, by the source of their longest decision.
    pub(super) fn fleet_by_source(&self) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        for t in self.fleet.targets() {
            if self.policy.ban_for(t).is_some() {
                continue;
            }
            if let Some(e) = self.fleet.effective(t) {
                *out.entry(e.source.name()).or_insert(0) += 1;
            }
        }
        out
    }

    /// The fleet's bans as `bans list` shows them.
    pub(super) fn fleet_bans_json(&self) -> Vec<Value> {
        self.fleet
            .targets()
            .filter(|t| self.policy.ban_for(t).is_none())
            .filter_map(|t| {
                let e = self.fleet.effective(t)?;
                let d = self.fleet.decisions_of(t).find(|d| d.until == e.until)?;
                Some(json!({
                    "target": t.to_string(),
                    "class": "fleet",
                    "origin": e.source.name(),
                    "expires": e.until,
                    "reason": format!("{} ({}, decision {})", d.scenario, d.origin, d.id),
                    "decisions": self.fleet.decisions_of(t).count(),
                }))
            })
            .collect()
    }
}
