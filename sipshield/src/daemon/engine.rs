//! The daemon's state machine: offences in (log failures, kernel events,
//! operator commands), kernel writes and state out. Synchronous and owned
//! by one task; `run` feeds it.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    net::IpAddr,
    time::{Instant, SystemTime},
};

use ipnet::IpNet;
use serde_json::{json, Value};
use sipshield_common::{counters::Reason, event::EventKind, maps::BanOrigin as KernelOrigin};

use super::{
    shield::Shield,
    status::{self, DaemonInfo},
    store::Store,
    watch::LogWatch,
};
use crate::{
    bpf::{addr, clock, BpfError, KernelEvent},
    config::{parse_duration, Config},
    control::{Request, Response},
    logs::{Failure, KnownGood, LogSource},
    offence::OffenceClass,
    policy::{discover::Discovery, BanOrder, Decision, Policy},
    state::{self, BanRecord, BanTarget},
};

mod alerts;
mod feeds;
mod fleet;

pub use alerts::AlertState;
pub use feeds::{cursor_key as feed_cursor_key, FeedState};
pub use fleet::CrowdSecState;

/// One line of "what happened" kept for `status`.
const RECENT: usize = 20;

/// Recent bans shown by `status`.
const RECENT_SHOWN: usize = 10;

pub struct Engine {
    pub config: Config,
    pub config_path: String,
    pub policy: Policy,
    pub shield: Shield,
    pub store: Store,
    pub watches: Vec<LogWatch>,
    pub started: Instant,
    last_store_prune: Instant,
    /// Would-bans (observe mode, allowlisted sources), newest first.
    would: VecDeque<Value>,
    last_kernel_prune: Instant,
    /// What the last discovery pass warned about.
    discovery_warnings: HashSet<String>,
    /// Bans the kernel refused (share full, map full): kept in policy and
    /// state, shown as not enforced, retried as room frees.
    unenforced: BTreeMap<IpNet, Waiting>,
    /// Where the next retry starts in `unenforced`.
    retry_after: IpNet,
    /// Journal positions of followers replaced by a reload, not yet stored.
    pending_cursors: Vec<(String, String)>,
    pub metrics: super::metrics::Metrics,
    pub events: super::events::EventBus,
    /// Decisions from CrowdSec (and, later, feeds).
    pub fleet: crate::fleet::book::FleetBook,
    pub crowdsec: CrowdSecState,
    /// The watcher: bans sent to CrowdSec as alerts.
    pub alerts: AlertState,
    /// Each feed's downloads.
    pub feeds: HashMap<String, FeedState>,
    last_fleet_metrics: Instant,
    /// Ranges the kernel holds for the fleet alone (its share of the trie).
    fleet_ranges: HashSet<IpNet>,
    /// Of which IPv4, IPv6.
    fleet_range_count: [usize; 2],
    /// Fleet decisions and alerts added or gone, for the next flush.
    fleet_changes: Vec<state::db::Change>,
}

/// A ban waiting for room in the kernel.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    created_ns: u64,
    expires_ns: u64,
    origin: KernelOrigin,
}

/// Waiting bans retried per housekeeping tick: a million refused bans must
/// not stall the event loop.
const RETRY_PER_TICK: usize = 256;

/// How often old `ban_log` rows and forgotten history leave the database.
const STORE_PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// How often changes are written: a ban enforced is on disk within this
/// (plus one transaction), and 100 bans a second cost a few pages each.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// How often the whole kernel ban table is walked for expired entries.
const KERNEL_PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

fn kernel_expiry(expires_unix: Option<u64>) -> u64 {
    match expires_unix {
        None => 0,
        Some(secs) => clock::wall_to_monotonic(state::from_unix_secs(secs)).max(1),
    }
}

/// The kernel's entry says what the policy's ban says: same origin, same
/// expiry within two seconds (or both permanent).
fn same_ban(held: &sipshield_common::maps::BanEntry, want: &Waiting) -> bool {
    let expiry_close = match (held.expires_ns, want.expires_ns) {
        (0, 0) => true,
        (0, _) | (_, 0) => false,
        (a, b) => a.abs_diff(b) <= 2_000_000_000,
    };
    held.origin == want.origin as u32 && expiry_close
}

/// The fleet's end `fleet` is later than the local one (`None`: never).
fn fleet_outlasts(fleet: Option<u64>, local: Option<u64>) -> bool {
    match (fleet, local) {
        (None, Some(_)) => true,
        (Some(f), Some(l)) => f > l,
        _ => false,
    }
}

fn order_expiry(order: &BanOrder) -> u64 {
    match order.expires_at() {
        None => 0,
        Some(t) => clock::wall_to_monotonic(t).max(1),
    }
}

impl Engine {
    pub fn new(
        config: Config,
        config_path: String,
        policy: Policy,
        shield: Shield,
        store: Store,
        watches: Vec<LogWatch>,
    ) -> Engine {
        let events = super::events::EventBus::new(config.hooks.to_hook_config());
        Engine {
            config,
            config_path,
            policy,
            shield,
            store,
            watches,
            started: Instant::now(),
            last_store_prune: Instant::now(),
            would: VecDeque::new(),
            last_kernel_prune: Instant::now(),
            discovery_warnings: HashSet::new(),
            unenforced: BTreeMap::new(),
            retry_after: IpNet::V4(ipnet::Ipv4Net::default()),
            pending_cursors: Vec::new(),
            metrics: super::metrics::Metrics::new(),
            events,
            fleet: crate::fleet::book::FleetBook::default(),
            crowdsec: CrowdSecState::default(),
            alerts: AlertState::default(),
            feeds: HashMap::new(),
            fleet_ranges: HashSet::new(),
            fleet_range_count: [0; 2],
            // Due at the first tick.
            last_fleet_metrics: Instant::now()
                .checked_sub(std::time::Duration::from_secs(60))
                .unwrap_or_else(Instant::now),
            fleet_changes: Vec::new(),
        }
    }

    fn kernel_origin(record: &BanRecord) -> KernelOrigin {
        record.origin.kernel()
    }

    /// Writes one policy ban into the kernel. `kernel_created`: when the
    /// kernel already holds it, the start it recorded (exact; the state file
    /// keeps whole seconds). A refused ban is kept waiting (see `retry`).
    fn enforce(&mut self, record: &BanRecord, kernel_created: Option<u64>) -> Result<(), BpfError> {
        let created = kernel_created
            .unwrap_or_else(|| clock::monotonic_since(state::from_unix_secs(record.created)));
        // A fleet decision that lasts longer keeps the target banned that long.
        let until = match self.fleet.effective(&record.target) {
            Some(f) if fleet_outlasts(f.until, record.expires) => f.until,
            _ => record.expires,
        };
        self.put(
            record.target.as_net(),
            Waiting {
                created_ns: created,
                expires_ns: kernel_expiry(until),
                origin: Self::kernel_origin(record),
            },
        )
    }

    /// One kernel insert; on failure the ban waits for room.
    fn put(&mut self, net: IpNet, w: Waiting) -> Result<(), BpfError> {
        let net = addr::canonical_net(net);
        match self.shield.ban(net, w.created_ns, w.expires_ns, w.origin) {
            Ok(()) => {
                self.unenforced.remove(&net);
                Ok(())
            }
            Err(e) => {
                self.unenforced.insert(net, w);
                Err(e)
            }
        }
    }

    /// Tries waiting bans again (a share or map may have room now).
    fn retry(&mut self) {
        if self.unenforced.is_empty() {
            return;
        }
        // Round-robin from where the last tick stopped, so waiting ranges
        // (their own map) never starve waiting addresses or the other way.
        let start = self.retry_after;
        let after = self
            .unenforced
            .range((std::ops::Bound::Excluded(start), std::ops::Bound::Unbounded));
        let batch: Vec<(IpNet, Waiting)> = after
            .chain(self.unenforced.range(..=start))
            .take(RETRY_PER_TICK)
            .map(|(n, w)| (*n, *w))
            .collect();
        if let Some((last, _)) = batch.last() {
            self.retry_after = *last;
        }
        let mut entered = 0;
        for (net, w) in batch {
            if self.put(net, w).is_ok() {
                entered += 1;
            }
        }
        if entered > 0 {
            log::warn!(
                "{entered} waiting ban(s) now enforced, {} still waiting for room",
                self.unenforced.len()
            );
        }
    }

    fn ban_json(&self, b: &BanRecord) -> Value {
        let mut v = ban_json(b);
        v["enforced"] = json!(!self.unenforced.contains_key(&b.target.as_net()));
        v
    }

    fn lift(&mut self, records: &[BanRecord]) {
        for r in records {
            self.unenforced.remove(&r.target.as_net());
            if let Err(e) = self.shield.unban(r.target.as_net()) {
                log::error!("lifting {} in the kernel: {e}", r.target);
            }
            // A fleet decision on the same target still holds it.
            if self.fleet.effective(&r.target).is_some() {
                self.enforce_fleet(&std::iter::once(r.target).collect());
            }
            log::info!("lifted ban of {} ({})", r.target, r.reason);
            self.record_event(super::events::EventAction::Unban, r);
        }
    }

    /// A ban made or lifted, for the event stream and the hooks.
    fn record_event(&mut self, action: super::events::EventAction, r: &BanRecord) {
        self.events.emit(super::events::BanEvent {
            at: super::events::unix_now(),
            action,
            target: r.target.to_string(),
            class: r.class.as_str().to_string(),
            origin: r.origin.to_string(),
            duration_s: r.expires.map(|e| e.saturating_sub(r.created)),
            reason: r.reason.to_string(),
        });
    }

    /// Start-up: make kernel and policy agree. Policy bans go into the
    /// kernel; kernel bans the policy does not know (made by the rate guard
    /// while the daemon was down, or by `sipshield bans add` then) are
    /// adopted into the policy.
    pub fn reconcile(&mut self) -> Result<(), BpfError> {
        self.shield
            .write_config(&self.config.to_xdp_config(), &self.config.ua_prefixes())?;
        let allow = self.config.allow.clone();
        // A full allowlist map must not stop the start (under
        // Restart=on-failure that is a crash loop): what fits is in force.
        if let Err(e) = self
            .shield
            .sync_allowlist_capped(&self.policy.allowlist().nets(), |n| allow.cap_for(n))
        {
            log::error!("the kernel allowlist is incomplete: {e}");
        }
        let now = SystemTime::now();
        // Known-good sources restored from the database, into the kernel.
        for (ip, until) in self.policy.known_good_sources(now) {
            self.kernel_known_good(ip, until);
        }
        let known: HashSet<IpNet> = self.policy.bans().map(|b| b.target.as_net()).collect();
        let mono_now = clock::monotonic_ns();
        let kernel_exact = self.shield.maps.all_bans()?;
        let kernel_ranges = self.shield.maps.ranges.entries()?;
        let kernel_held: HashMap<IpNet, sipshield_common::maps::BanEntry> = kernel_exact
            .iter()
            .filter(|(_, e)| e.is_active(mono_now))
            .map(|(ip, e)| (IpNet::from(addr::canonical(*ip)), *e))
            .collect();
        for (ip, entry) in kernel_exact {
            if !entry.is_active(mono_now) || known.contains(&IpNet::from(addr::canonical(ip))) {
                continue;
            }
            let at = clock::monotonic_to_wall(entry.created_ns);
            match KernelOrigin::from_u32(entry.origin) {
                KernelOrigin::RateGuard | KernelOrigin::Scanner => {
                    let class = if KernelOrigin::from_u32(entry.origin) == KernelOrigin::Scanner {
                        OffenceClass::Scanner
                    } else {
                        OffenceClass::RateGuard
                    };
                    self.on_kernel_ban(ip, class, at);
                }
                // The fleet's own (restored from the database) are put back
                // by `reconcile_fleet`; any other is stale.
                KernelOrigin::CrowdSec | KernelOrigin::Feed => {}
                KernelOrigin::Userspace | KernelOrigin::Operator => {
                    let left = (entry.expires_ns != 0).then(|| {
                        std::time::Duration::from_nanos(entry.expires_ns.saturating_sub(mono_now))
                    });
                    self.adopt_manual(IpNet::from(ip), left, now);
                }
            }
        }
        for (net, entry) in kernel_ranges {
            // A range carries its own expiry: an expired one is not adopted,
            // a timed one keeps what it has left.
            let own = entry.own_expires_ns;
            if known.contains(&net) || (own != 0 && own <= mono_now) {
                continue;
            }
            // The fleet's (CrowdSec) are its book's: `reconcile_fleet`.
            if KernelOrigin::from_u32(entry.origin).is_fleet() {
                continue;
            }
            let left = (own != 0).then(|| std::time::Duration::from_nanos(own - mono_now));
            self.adopt_manual(net, left, now);
        }
        // Policy bans into the kernel. Exact bans it lacks go in batches;
        // those it holds already (pins kept) are rewritten only when their
        // expiry or origin moved; ranges one by one (few). A ban that does
        // not fit must not stop the others, or the start: it waits, shown.
        let mut fresh: Vec<(IpAddr, sipshield_common::maps::BanEntry)> = Vec::new();
        let mut one_by_one: Vec<(IpNet, Waiting)> = Vec::new();
        for record in self.policy.bans() {
            let net = record.target.as_net();
            let held = kernel_held.get(&net).copied();
            let w = Waiting {
                created_ns: held.map(|e| e.created_ns).unwrap_or_else(|| {
                    clock::monotonic_since(state::from_unix_secs(record.created))
                }),
                expires_ns: kernel_expiry(record.expires),
                origin: Self::kernel_origin(record),
            };
            match (record.target, held) {
                (BanTarget::Addr(ip), None) => fresh.push((
                    ip,
                    sipshield_common::maps::BanEntry {
                        expires_ns: w.expires_ns,
                        created_ns: w.created_ns,
                        origin: w.origin as u32,
                        _pad: 0,
                    },
                )),
                // Held as it should be: the state file's whole seconds
                // against the kernel's nanoseconds.
                (BanTarget::Addr(_), Some(e)) if same_ban(&e, &w) => {}
                _ => one_by_one.push((net, w)),
            }
        }
        for (ip, e) in self.shield.ban_new_exact(&fresh) {
            self.unenforced.insert(
                IpNet::from(ip),
                Waiting {
                    created_ns: e.created_ns,
                    expires_ns: e.expires_ns,
                    origin: KernelOrigin::from_u32(e.origin),
                },
            );
        }
        drop(fresh);
        for (net, w) in one_by_one {
            let _ = self.put(net, w);
        }
        if !self.unenforced.is_empty() {
            log::error!(
                "{} ban(s) NOT enforced: their share of the ban tables is full (xdp.max_bans, xdp.max_ranges); kept and retried as room frees",
                self.unenforced.len()
            );
        }
        let lifted = self.policy.lift_allowlisted();
        self.lift(&lifted);
        self.drop_unconfigured_feeds();
        self.reconcile_fleet();
        // Expired kernel entries (the program ignores them) are pruned by
        // housekeeping, a slice at a time, not here: a walk of a million
        // entries would double the start.
        log::info!(
            "enforcing {} ban(s), {} allowlist entr(ies)",
            self.policy.ban_count(),
            self.policy.allowlist().len()
        );
        Ok(())
    }

    fn adopt_manual(&mut self, net: IpNet, left: Option<std::time::Duration>, now: SystemTime) {
        match self.policy.ban(
            BanTarget::from_net(net),
            left,
            "found in the kernel at start",
            now,
        ) {
            Ok(_) => log::info!("adopted kernel ban of {net}"),
            Err(e) => {
                log::warn!("kernel ban of {net} not adopted: {e}");
                let _ = self.shield.unban(net);
            }
        }
    }

    /// A failure line from a log.
    pub fn on_failure(&mut self, f: &Failure, at: SystemTime) {
        if f.kind.is_proof() {
            self.note_proof(f.ip, at);
        }
        let decision = self.policy.offence(f.ip, f.class(), at);
        self.apply(decision, &format!("{} {}", f.source, f.kind));
    }

    /// A login proven by a log (sshd `Accepted`): its SSH session is
    /// allowlisted while it lasts. Asterisk's `SuccessfulAuth` is for the
    /// known-good map (not filled yet).
    pub fn on_known_good(&mut self, good: &KnownGood, at: SystemTime) {
        let Some(login) = good.session else {
            if good.source == LogSource::Asterisk {
                self.sip_known_good(good.ip, at);
            }
            return;
        };
        if good.source != LogSource::Sshd || !self.config.allow.ssh_sessions {
            return;
        }
        let (lifted, changed) = self
            .policy
            .ssh_accepted(good.ip, login.port, login.method, at);
        if !changed {
            return;
        }
        log::warn!(
            "SSH login from {} port {} ({}): allowlisted while the session lasts",
            good.ip,
            login.port,
            login.method
        );
        self.lift(&lifted);
        self.allowlist_changed();
    }

    /// Asterisk's `SuccessfulAuth` named `ip`: a remote agent, known good
    /// for the trust window; the kernel polices it but never bans it.
    fn sip_known_good(&mut self, ip: IpAddr, at: SystemTime) {
        let was = self.policy.is_known_good(ip, at);
        let Some(until) = self.policy.known_good(ip, at) else {
            return;
        };
        if !was {
            log::info!(
                "{ip} authenticated (SuccessfulAuth): known good until {}",
                state::unix_secs(until)
            );
        }
        self.kernel_known_good(ip, until);
    }

    fn kernel_known_good(&mut self, ip: IpAddr, until: SystemTime) {
        let expires = clock::wall_to_monotonic(until).max(1);
        if let Err(e) = self.shield.maps.known.insert(ip, expires) {
            // The map is full or gone: the log policy still knows it.
            log::warn!("known-good {ip} not in the kernel: {e}");
        }
    }

    /// A discovery pass finished (off the event loop).
    pub fn on_discovery(&mut self, found: &Discovery) {
        // Said once, not every refresh: the same refused trunk or missing
        // file would fill the log.
        for w in &found.warnings {
            if !self.discovery_warnings.contains(w) {
                log::warn!("allowlist discovery: {w}");
            }
        }
        self.discovery_warnings = found.warnings.iter().cloned().collect();
        let before = self.policy.ssh_sessions().len();
        let lifted = self.policy.apply_discovery(found, SystemTime::now());
        if self.policy.ssh_sessions().len() != before {
            log::info!(
                "SSH sessions: {} open or in their grace",
                self.policy.ssh_sessions().len()
            );
        }
        self.lift(&lifted);
        self.allowlist_changed();
    }

    /// The kernel banned (or would have banned) `ip` itself.
    pub fn on_kernel_ban(&mut self, ip: IpAddr, class: OffenceClass, at: SystemTime) {
        let decision = self.policy.record_kernel_ban(ip, class, at);
        if let Decision::WouldBan {
            allowlisted: Some(_),
            ..
        } = &decision
        {
            // The kernel allowlist lags the daemon's: undo the kernel's ban.
            let _ = self.shield.unban(IpNet::from(ip));
        }
        self.apply(decision, &format!("kernel {class}"));
    }

    /// A policy decision, for the event stream and the hooks.
    fn order_event(&mut self, action: super::events::EventAction, order: &BanOrder) {
        let origin = match order.class {
            OffenceClass::RateGuard => state::BanOrigin::KernelRateGuard,
            OffenceClass::Scanner => state::BanOrigin::KernelScanner,
            _ => state::BanOrigin::Log,
        };
        self.events.emit(super::events::BanEvent {
            at: super::events::unix_now(),
            action,
            target: order.ip.to_string(),
            class: order.class.as_str().to_string(),
            origin: origin.to_string(),
            duration_s: order.duration.map(|d| d.as_secs()),
            reason: order.reason.clone(),
        });
    }

    fn apply(&mut self, decision: Decision, what: &str) {
        match decision {
            Decision::Ban(order) => {
                let expires = order_expiry(&order);
                // Kernel-class bans stay in the kernel's own share.
                let origin = match order.class {
                    OffenceClass::RateGuard => KernelOrigin::RateGuard,
                    OffenceClass::Scanner => KernelOrigin::Scanner,
                    _ => KernelOrigin::Userspace,
                };
                let created = clock::monotonic_since(order.at);
                let waiting = Waiting {
                    created_ns: created,
                    expires_ns: expires,
                    origin,
                };
                match self.put(IpNet::from(order.ip), waiting) {
                    Ok(()) => {
                        if let Ok(latency) = SystemTime::now().duration_since(order.at) {
                            self.metrics.ban_latency(latency);
                        }
                        self.order_event(super::events::EventAction::Ban, &order);
                        self.push_order(&order);
                        log::warn!(
                            "banned {} for {}: {}",
                            order.ip,
                            order.length_text(),
                            order.reason
                        )
                    }
                    Err(e) => log::error!(
                        "banned {} for {} ({}), NOT enforced yet: {e}; retried as room frees",
                        order.ip,
                        order.length_text(),
                        order.reason
                    ),
                }
            }
            Decision::WouldBan { ban, allowlisted } => {
                self.metrics.would_ban(ban.class);
                let why = match &allowlisted {
                    Some(entry) => format!("allowlisted ({} {})", entry.source, entry.net),
                    None => "observe mode".to_string(),
                };
                // A source that keeps offending while its would-be ban
                // would still run is one report, with a repeat count: a
                // forged flood from a trunk's address must not bury the rest.
                let target = ban.ip.to_string();
                let now = status::unix(ban.at);
                if let Some(open) = self.would.iter_mut().find(|w| {
                    w["target"] == target.as_str()
                        && w["class"] == ban.class.as_str()
                        && w["expires"].as_u64().is_none_or(|e| e > now)
                }) {
                    let repeats = open["repeats"].as_u64().unwrap_or(1) + 1;
                    open["repeats"] = json!(repeats);
                    log::debug!("would ban {target} again ({what}), {repeats} times so far");
                    return;
                }
                self.order_event(super::events::EventAction::WouldBan, &ban);
                log::warn!(
                    "would ban {} for {} ({what}: {}), not banned: {why}",
                    ban.ip,
                    ban.length_text(),
                    ban.reason
                );
                self.would.push_front(json!({
                    "target": ban.ip.to_string(),
                    "class": ban.class.as_str(),
                    "created": status::unix(ban.at),
                    "expires": ban.expires_at().map(status::unix),
                    "reason": format!("WOULD BAN ({why}): {}", ban.reason),
                }));
                self.would.truncate(RECENT);
            }
            Decision::Pending { .. } | Decision::AlreadyBanned | Decision::Ignored => {}
        }
    }

    /// Ring-buffer events from every interface.
    pub fn on_kernel_events(&mut self, events: Vec<KernelEvent>) {
        for e in events {
            let class = if e.reason == Reason::Scanner {
                OffenceClass::Scanner
            } else {
                OffenceClass::RateGuard
            };
            let at = clock::monotonic_to_wall(e.at_ns);
            match e.kind {
                EventKind::KernelBan | EventKind::WouldBan => self.on_kernel_ban(e.ip, class, at),
                EventKind::BanFailed => log::error!(
                    "a kernel ban failed: {} ({class}) is dropped when over the limit but not banned",
                    e.ip
                ),
                EventKind::ScannerSeen => log::warn!(
                    "scanner User-Agent from {}: dropped, not banned (below scanner_ban_hits, count-only, or known good)",
                    e.ip
                ),
            }
        }
    }

    /// Periodic: expire bans, prune the kernel tables.
    /// Every second: expired policy bans are lifted from the kernel one by
    /// one. The walk over the whole kernel table (entries nobody lifts: a ban
    /// whose event was lost) costs about a microsecond per entry, over a
    /// second at 1M bans, so it runs only every `KERNEL_PRUNE_EVERY`; the
    /// program ignores expired entries meanwhile.
    pub fn housekeeping(&mut self) {
        let expired = self.policy.expire(SystemTime::now());
        self.lift(&expired);
        self.expire_fleet();
        self.retry();
        self.update_metrics();
        if self.last_store_prune.elapsed() >= STORE_PRUNE_EVERY {
            self.last_store_prune = Instant::now();
            self.store.prune(
                self.config.policy.forget_after,
                self.policy.settings().longest_findtime(),
            );
        }
        if self.last_kernel_prune.elapsed() >= KERNEL_PRUNE_EVERY {
            self.last_kernel_prune = Instant::now();
            if let Err(e) = self.shield.prune_expired() {
                log::warn!("pruning expired kernel bans: {e}");
            }
        }
    }

    /// The metrics that are read rather than counted as they happen.
    fn update_metrics(&mut self) {
        match (self.shield.stats(), self.shield.interface_stats()) {
            (Ok(stats), Ok(interfaces)) => self.metrics.kernel(&stats, &interfaces),
            (Err(e), _) | (_, Err(e)) => {
                log::debug!("metrics: reading the kernel's counters: {e}")
            }
        }
        self.metrics.bans_held(&self.policy.ban_counts());
        self.metrics.tracked_sources(self.policy.tracked_sources());
        let known_good = self.policy.known_good_count(SystemTime::now());
        self.metrics
            .tables(&self.shield.shares, known_good, self.unenforced.len());
        for w in &self.watches {
            self.metrics.log(&w.status());
        }
        // A walk over the fleet's targets: every 10 s, not every second.
        if self.last_fleet_metrics.elapsed() >= std::time::Duration::from_secs(10) {
            self.last_fleet_metrics = Instant::now();
            let by_source = self.fleet_by_source();
            let up = self.crowdsec.enabled
                && self.crowdsec.last_pull.is_some()
                && self.crowdsec.down_since.is_none();
            self.metrics
                .fleet(&by_source, up, self.alerts.waiting.len(), self.alerts.sent);
        }
    }

    /// Hands what changed to the state writer (one transaction per call;
    /// the run loop calls it every `FLUSH_EVERY`).
    pub fn flush(&mut self) {
        let mut changes = self.policy.take_changes();
        changes.append(&mut self.fleet_changes);
        for c in &changes {
            match c {
                state::db::Change::Ban(b) => self.metrics.ban_made(b.class),
                state::db::Change::Lift(b) => self.metrics.ban_lifted(b.class),
                _ => {}
            }
        }
        // After the offences: what a journal's entries counted and where
        // they end commit together.
        for (key, value) in std::mem::take(&mut self.pending_cursors) {
            changes.push(state::db::Change::Meta { key, value });
        }
        for w in &mut self.watches {
            if let Some((key, value)) = w.take_cursor() {
                changes.push(state::db::Change::Meta { key, value });
            }
        }
        self.store.send(changes);
    }

    /// The operator's allowlist file, written at once (a handful of lines,
    /// rarely): an entry the operator was told is in must survive a crash
    /// a moment later, and a lost database.
    fn save_operator_allowlist(&self) {
        let path = self
            .config
            .daemon
            .state_dir
            .join(super::store::ALLOWLIST_FILE_NAME);
        if let Err(e) = super::store::write_allowlist(&path, &self.policy.manual_allow()) {
            log::error!("writing {}: {e}", path.display());
        }
    }

    /// Shutdown: writes what is left and waits for it.
    pub fn save_now(&mut self) {
        self.flush();
        self.store.finish();
    }

    /// New allowlist content (discovery refresh, config): kernel follows.
    pub fn allowlist_changed(&mut self) {
        let lifted = self.policy.lift_allowlisted();
        self.lift(&lifted);
        self.fleet_allowlist_sweep();
        let allow = self.config.allow.clone();
        if let Err(e) = self
            .shield
            .sync_allowlist_capped(&self.policy.allowlist().nets(), |n| allow.cap_for(n))
        {
            log::error!("updating the kernel allowlist: {e}");
        }
    }

    /// Applies a new, already validated config (SIGHUP / `reload`), all or
    /// nothing: the one step that can fail (the kernel's config map) runs
    /// first, and everything after it cannot fail. Keys that need a restart
    /// keep their running values and are named in the answer.
    pub fn reload(&mut self, config: Config) -> Result<String, BpfError> {
        let restart = crate::config::restart_only_changes(&self.config, &config);
        let config = crate::config::keep_running_values(&self.config, config);
        self.shield
            .write_config(&config.to_xdp_config(), &config.ua_prefixes())?;
        let lifted = self.policy.apply_config(&config);
        self.lift(&lifted);
        if !config.allow.ssh_sessions {
            self.policy.ssh_clear();
        }
        let mut keep: Vec<LogWatch> = Vec::new();
        let mut old = std::mem::take(&mut self.watches);
        for wanted in super::watch::wanted_files(&config) {
            match old.iter().position(|w| w.follows(&wanted)) {
                Some(i) => keep.push(old.swap_remove(i)),
                None => keep.push(LogWatch::file(&wanted, false)),
            }
        }
        // The journal: kept when unchanged, else restarted where it was.
        let spec = config.logs.journal_spec(|p| p.exists());
        if let Some(i) = old
            .iter()
            .position(|w| w.kind == super::watch::LogKind::Journal)
        {
            let w = old.swap_remove(i);
            match &spec {
                Some(s) if w.journal_spec() == Some(s) => keep.push(w),
                Some(s) => {
                    let same_journal = w.journal_spec().map(|o| &o.directory) == Some(&s.directory);
                    let cursor = same_journal.then(|| w.journal_cursor()).flatten();
                    // The old position is written before the new follower starts.
                    self.pending_cursors.extend(w.journal_cursor().map(|c| {
                        (
                            w.journal_spec().map(|o| o.cursor_key()).unwrap_or_default(),
                            c,
                        )
                    }));
                    drop(w);
                    keep.push(LogWatch::journal(s.clone(), cursor));
                }
                None => {}
            }
        } else if let Some(s) = spec {
            keep.push(LogWatch::journal(s, None));
        }
        self.watches = keep;
        self.config = config;
        self.allowlist_changed();
        let mut msg = "configuration reloaded".to_string();
        if !restart.is_empty() {
            msg.push_str(&format!(
                "; changed but kept as running until a restart: {}",
                restart.join(", ")
            ));
        }
        Ok(msg)
    }

    fn info(&mut self) -> DaemonInfo {
        // The newest few of a million bans, without sorting them all.
        let newest: Vec<BanRecord> = self
            .policy
            .newest_bans(RECENT_SHOWN, SystemTime::now())
            .into_iter()
            .cloned()
            .collect();
        let mut recent: Vec<Value> = newest.iter().map(|b| self.ban_json(b)).collect();
        recent.extend(self.would.iter().cloned());
        recent.sort_by_key(|v| std::cmp::Reverse(v["created"].as_u64().unwrap_or(0)));
        recent.truncate(RECENT_SHOWN);
        DaemonInfo {
            pid: std::process::id(),
            uptime_s: self.started.elapsed().as_secs(),
            config: self.config_path.clone(),
            observe: self.config.xdp.mode.kernel() == sipshield_common::config::Mode::Observe,
            logs: self.watches.iter().map(LogWatch::status).collect(),
            recent_bans: recent,
            bans_total: self.policy.ban_count(),
            allowlist: self.allowlist_json(),
            hooks: {
                use std::sync::atomic::Ordering::Relaxed;
                let h = &self.events.hook_stats;
                json!({
                    "ran": h.ran.load(Relaxed),
                    "failed": h.failed.load(Relaxed),
                    "timed_out": h.timed_out.load(Relaxed),
                    "dropped": h.dropped.load(Relaxed),
                })
            },
            known_good: self
                .policy
                .known_good_sources(SystemTime::now())
                .into_iter()
                .map(|(ip, until)| (ip.to_string(), state::unix_secs(until)))
                .collect(),
            not_enforced: self.unenforced.len(),
            crowdsec: self.crowdsec_json(),
            fleet_decisions: self.fleet.len(),
            fleet_targets: self.fleet.target_count(),
            fleet_by_source: self.fleet_by_source(),
            counts: self.policy.ban_counts(),
        }
    }

    fn allowlist_json(&self) -> Vec<Value> {
        self.policy
            .allowlist()
            .entries()
            .map(|e| json!({"net": e.net.to_string(), "source": e.source.to_string(), "note": e.note}))
            .collect()
    }

    /// Answers a control-socket request. `reload` is handled by the caller
    /// (it reads files) and passed in as `reload_result`.
    pub fn handle(&mut self, req: Request) -> Response {
        match self.try_handle(req) {
            Ok(v) => Response::ok(v),
            Err(e) => Response::error(e),
        }
    }

    fn try_handle(&mut self, req: Request) -> Result<Value, String> {
        let now = SystemTime::now();
        let err = |e: BpfError| e.to_string();
        match req {
            Request::Status => {
                let info = self.info();
                status::report(&self.shield, Some(&info), 10).map_err(err)
            }
            Request::Top { n } => Ok(Value::Array(
                status::top_sources(&self.shield, n.clamp(1, 1000)).map_err(err)?,
            )),
            Request::BansList => {
                let now_unix = status::unix(now);
                let mut all: Vec<Value> = self
                    .policy
                    .bans()
                    .filter(|b| b.is_active(now_unix))
                    .map(|b| self.ban_json(b))
                    .collect();
                all.extend(self.fleet_bans_json());
                Ok(Value::Array(all))
            }
            Request::BanAdd {
                target,
                duration,
                reason,
            } => {
                let net = addr::parse_net(&target)?;
                let length = match duration.as_deref() {
                    None | Some("permanent") => None,
                    Some(d) => Some(parse_duration(d).map_err(|e| e.to_string())?),
                };
                let record = self
                    .policy
                    .ban(
                        BanTarget::from_net(net),
                        length,
                        reason.unwrap_or_else(|| "manual ban".into()),
                        now,
                    )
                    .map_err(|e| e.to_string())?;
                if let Err(e) = self.enforce(&record, None) {
                    log::error!(
                        "manual ban of {} ({}) NOT enforced yet: {e}; retried as room frees",
                        record.target,
                        record.reason
                    );
                } else {
                    log::warn!("manual ban of {} ({})", record.target, record.reason);
                }
                self.record_event(super::events::EventAction::Ban, &record);
                self.push_manual(&record);
                Ok(self.ban_json(&record))
            }
            Request::BanDel { target } => {
                let net = addr::parse_net(&target)?;
                let t = BanTarget::from_net(net);
                let fleet: Vec<String> = self
                    .fleet
                    .decisions_of(&t)
                    .map(|d| format!("{} decision {}", d.source.name(), d.id))
                    .collect();
                if !fleet.is_empty() && self.policy.ban_for(&t).is_none() {
                    // CrowdSec would not know, and its next full pull would
                    // ban it again: lifted where it was made.
                    return Err(format!(
                        "{t} is banned by {}: lift it there (cscli decisions delete --ip/--range {t})",
                        fleet.join(", ")
                    ));
                }
                let removed = self.policy.unban(t);
                if let Some(r) = &removed {
                    self.record_event(super::events::EventAction::Unban, r);
                }
                let removed_policy = removed.is_some();
                self.unenforced.remove(&addr::canonical_net(net));
                let removed_kernel = self.shield.unban(net).map_err(err)?;
                if !fleet.is_empty() {
                    // The local ban goes; the fleet's decisions still hold it.
                    self.enforce_fleet(&std::iter::once(t).collect());
                }
                Ok(json!({"removed": removed_policy || removed_kernel}))
            }
            Request::Events { .. } => Ok(json!(self.events.recent())),
            Request::AllowList => Ok(Value::Array(self.allowlist_json())),
            Request::AllowAdd { target, note } => {
                let net = addr::parse_net(&target)?;
                let lifted = self.policy.allow(net, note.unwrap_or_default());
                let names: Vec<String> = lifted.iter().map(|b| b.target.to_string()).collect();
                self.lift(&lifted);
                self.allowlist_changed();
                self.save_operator_allowlist();
                Ok(json!({"lifted": names}))
            }
            Request::AllowDel { target } => {
                let net = addr::parse_net(&target)?;
                let removed = self.policy.disallow(net);
                self.allowlist_changed();
                self.save_operator_allowlist();
                Ok(json!({"removed": removed}))
            }
            Request::Reload => Err("reload is handled by the daemon loop".into()),
        }
    }
}

pub fn ban_json(b: &BanRecord) -> Value {
    json!({
        "target": b.target.to_string(),
        "class": b.class.as_str(),
        "origin": b.origin.to_string(),
        "created": b.created,
        "expires": b.expires,
        "offence_number": b.offence_number,
        "reason": b.reason,
    })
}
