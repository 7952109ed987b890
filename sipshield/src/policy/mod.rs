//! Ban policy: offences in, ban decisions out.
//!
//! Offences are counted per source and class in sliding windows; reaching a
//! class's threshold bans the source for the next step of the ban ladder,
//! which grows with the source's earlier bans until its history is forgotten
//! (`forget_after` without offences since the end of its last ban). Kernel
//! bans and manual bans are recorded in the same book. The allowlist is
//! checked before every ban, and observe mode decides without banning.
//!
//! Policy is pure: it never touches the kernel, the clock or files. The
//! daemon feeds it offences with their times, applies the decisions, and
//! hands `take_changes()` to the state database.

mod allowlist;
mod ban_book;
mod decision;
pub mod discover;
mod lru;
mod prefix;
mod settings;
pub mod ssh_sessions;
mod window;

use std::{
    collections::HashSet,
    net::IpAddr,
    time::{Duration, SystemTime},
};

pub use allowlist::{AllowEntry, AllowSource, Allowlist};
pub use decision::{BanOrder, Decision};
pub use settings::{PolicySettings, Threshold};

use ban_book::BanBook;
pub use ban_book::BanCounts;
use lru::LruMap;
use settings::longer;
use ssh_sessions::SshSessions;
use window::Window;

use crate::{
    config::{format_duration, Config},
    offence::OffenceClass,
    state::{
        self, db::Change, AllowRecord, BanOrigin, BanRecord, BanTarget, HistoryRecord,
        KnownGoodRecord, State, WindowRecord,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "{target} is allowlisted ({} entry {}{}): it is never banned",
        entry.source,
        entry.net,
        note(&entry.note)
    )]
    Allowlisted {
        target: BanTarget,
        entry: AllowEntry,
    },
    #[error("a ban of 0s bans nothing")]
    ZeroDuration,
}

fn note(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(", {text}")
    }
}

/// What policy remembers about a source between bans.
#[derive(Debug, Clone, PartialEq, Eq)]
struct History {
    bans: u32,
    last_offence: SystemTime,
    /// End of the latest timed ban.
    banned_until: Option<SystemTime>,
}

impl History {
    fn is_forgotten(&self, now: SystemTime, forget_after: Duration) -> bool {
        let quiet_since = self
            .banned_until
            .map_or(self.last_offence, |until| until.max(self.last_offence));
        now.duration_since(quiet_since)
            .is_ok_and(|quiet| quiet >= forget_after)
    }
}

#[derive(Debug)]
pub struct Policy {
    settings: PolicySettings,
    allowlist: Allowlist,
    windows: LruMap<(IpAddr, OffenceClass), Window>,
    history: LruMap<IpAddr, History>,
    bans: BanBook,
    /// Observe mode: sources that would be banned, and until when.
    would_bans: LruMap<IpAddr, Option<SystemTime>>,
    /// Authenticated SSH sessions: the `ssh-session` allowlist entries.
    ssh: SshSessions,
    /// Known-good SIP sources (remote agents) and until when.
    known_good: LruMap<IpAddr, SystemTime>,
    /// What changed since the last `take_changes`, for the state database.
    journal: Journal,
    reasons: Reasons,
}

/// Known-good sources kept, as many as the kernel's map holds.
pub const MAX_KNOWN_GOOD: usize = sipshield_common::maps::DEFAULT_MAX_KNOWN as usize;

/// A known-good source's end is written again (database, kernel) only when
/// it moves by more than this: phones re-register every few minutes.
const KNOWN_GOOD_REFRESH: Duration = Duration::from_secs(600);

/// One copy of each ban reason text: a million bans share a few dozen.
#[derive(Debug, Default)]
struct Reasons(HashSet<std::sync::Arc<str>>);

impl Reasons {
    fn intern(&mut self, text: &str) -> std::sync::Arc<str> {
        if let Some(r) = self.0.get(text) {
            return r.clone();
        }
        // Texts nobody uses any more go before the set grows.
        if self.0.len() >= 4096 {
            self.0.retain(|r| std::sync::Arc::strong_count(r) > 1);
        }
        let r: std::sync::Arc<str> = text.into();
        self.0.insert(r.clone());
        r
    }
}

/// Changes not yet handed to the state database.
#[derive(Debug, Default)]
struct Journal {
    /// Bans made and lifted, in order.
    bans: Vec<Change>,
    /// Sources whose history changed or went.
    history: HashSet<IpAddr>,
    allow: bool,
    ssh: bool,
    /// Failure windows that changed or went.
    windows: HashSet<(IpAddr, OffenceClass)>,
    /// Known-good sources that came, were extended or went.
    known_good: HashSet<IpAddr>,
}

impl Policy {
    pub fn new(settings: PolicySettings, allowlist: Allowlist) -> Policy {
        Policy {
            windows: LruMap::new(settings.max_tracked_sources),
            history: LruMap::new(settings.max_history),
            would_bans: LruMap::new(settings.max_tracked_sources),
            bans: BanBook::default(),
            allowlist,
            settings,
            ssh: SshSessions::default(),
            known_good: LruMap::new(MAX_KNOWN_GOOD),
            journal: Journal::default(),
            reasons: Reasons::default(),
        }
    }

    pub fn settings(&self) -> &PolicySettings {
        &self.settings
    }

    /// New settings (config reload); windows, history and bans are kept.
    pub fn set_settings(&mut self, settings: PolicySettings) {
        if !settings.observe {
            self.would_bans.clear();
        }
        self.windows
            .retain(|(_, class), _| settings.threshold(*class).is_some());
        self.windows.set_capacity(settings.max_tracked_sources);
        self.would_bans.set_capacity(settings.max_tracked_sources);
        self.history.set_capacity(settings.max_history);
        self.settings = settings;
    }

    /// Takes a (re)loaded config: new settings, and the configured allowlist
    /// entries replaced. Returns the bans the new allowlist lifts.
    pub fn apply_config(&mut self, config: &Config) -> Vec<BanRecord> {
        self.set_settings(PolicySettings::from_config(config));
        let configured: Vec<AllowEntry> = Allowlist::from_config(&config.allow)
            .entries()
            .cloned()
            .collect();
        self.allowlist
            .replace_source(AllowSource::Config, configured);
        self.lift_allowlisted()
    }

    pub fn allowlist(&self) -> &Allowlist {
        &self.allowlist
    }

    /// For adding entries and refreshing discovered ones; call
    /// `lift_allowlisted` afterwards.
    pub fn allowlist_mut(&mut self) -> &mut Allowlist {
        &mut self.allowlist
    }

    /// An offence seen in a log.
    pub fn offence(&mut self, ip: IpAddr, class: OffenceClass, at: SystemTime) -> Decision {
        let ip = ip.to_canonical();
        let Some(threshold) = self.settings.threshold(class) else {
            return Decision::Ignored;
        };
        self.note_offence(ip, at);
        if self.is_under_ban(ip, at) {
            return Decision::AlreadyBanned;
        }
        // A remote agent (it authenticated lately) gets more patience.
        let known = self.is_known_good(ip, at);
        let maxretry = if known {
            threshold
                .maxretry
                .saturating_mul(self.settings.known_good_factor)
        } else {
            threshold.maxretry
        };
        let count = self
            .windows
            .get_or_insert_with((ip, class), Window::default)
            .record(at, threshold.findtime, maxretry);
        self.journal.windows.insert((ip, class));
        if count < maxretry {
            return Decision::Pending {
                count,
                threshold: maxretry,
            };
        }
        self.windows.remove(&(ip, class));
        let reason = format!(
            "{count} {class} offences within {}{}",
            format_duration(threshold.findtime),
            if known { " by a known-good source" } else { "" }
        );
        self.decide(ip, class, at, None, BanOrigin::Log, reason)
    }

    /// A ban the kernel made on its own (rate guard, scanner signature), as
    /// reported on the ring buffer. It joins the source's history like any
    /// other ban. A `Ban` answer carries the escalated length the daemon
    /// should give the kernel's entry (never shorter than the configured
    /// first ban of that kind); a `WouldBan` answer means the kernel's ban
    /// must be lifted (allowlisted source) or was never made (observe mode).
    pub fn record_kernel_ban(
        &mut self,
        ip: IpAddr,
        class: OffenceClass,
        at: SystemTime,
    ) -> Decision {
        let ip = ip.to_canonical();
        // Already banned in the book: this is the same ban told twice (a
        // restarted daemon adopts a kernel ban from the map, then reads its
        // event off the ring buffer) or one the kernel made again after its
        // LRU share forgot ours. Neither is a new offence.
        if self.is_under_ban(ip, at) {
            return Decision::AlreadyBanned;
        }
        let (origin, first_ban) = match class {
            OffenceClass::Scanner => (BanOrigin::KernelScanner, self.settings.scanner_ban),
            _ => (BanOrigin::KernelRateGuard, self.settings.rate_guard_ban),
        };
        self.note_offence(ip, at);
        let reason = format!("kernel {class} ban");
        self.decide(ip, class, at, Some(first_ban), origin, reason)
    }

    fn decide(
        &mut self,
        ip: IpAddr,
        class: OffenceClass,
        at: SystemTime,
        floor: Option<Option<Duration>>,
        origin: BanOrigin,
        reason: String,
    ) -> Decision {
        let previous = self.history.get(&ip).map_or(0, |h| h.bans);
        let mut duration = self.settings.ladder_step(previous);
        if let Some(floor) = floor {
            duration = longer(duration, floor);
        }
        // A stale password on a phone that worked is no attacker's week.
        if previous == 0 && self.is_known_good(ip, at) {
            let cap = self.settings.known_good_first_ban;
            duration = Some(duration.map_or(cap, |d| d.min(cap)));
        }
        let offence_number = previous.saturating_add(1);
        let mut order = BanOrder {
            ip,
            class,
            duration,
            offence_number,
            at,
            reason,
        };
        order.reason = format!(
            "{} (ban #{offence_number} of this source: {})",
            order.reason,
            order.length_text()
        );
        if let Some(entry) = self.allowlist.contains(ip) {
            return Decision::WouldBan {
                ban: order,
                allowlisted: Some(entry.clone()),
            };
        }
        self.count_ban(ip, at, order.expires_at());
        if self.settings.observe {
            self.would_bans.insert(ip, order.expires_at());
            return Decision::WouldBan {
                ban: order,
                allowlisted: None,
            };
        }
        let record = BanRecord {
            target: BanTarget::Addr(ip),
            created: state::unix_secs(at),
            expires: order.expires_at().map(state::unix_secs),
            class,
            origin,
            offence_number,
            reason: self.reasons.intern(&order.reason),
        };
        self.journal.bans.push(Change::Ban(record.clone()));
        self.bans.insert(record);
        Decision::Ban(order)
    }

    /// Refreshes the source's history, forgetting it first if it had been
    /// quiet long enough.
    fn note_offence(&mut self, ip: IpAddr, at: SystemTime) {
        let forget_after = self.settings.forget_after;
        let Some(history) = self.history.get_mut(&ip) else {
            return;
        };
        self.journal.history.insert(ip);
        if history.is_forgotten(at, forget_after) {
            self.history.remove(&ip);
        } else {
            history.last_offence = history.last_offence.max(at);
        }
    }

    fn count_ban(&mut self, ip: IpAddr, at: SystemTime, until: Option<SystemTime>) {
        self.journal.history.insert(ip);
        let history = self.history.get_or_insert_with(ip, || History {
            bans: 0,
            last_offence: at,
            banned_until: None,
        });
        history.bans = history.bans.saturating_add(1);
        history.last_offence = history.last_offence.max(at);
        history.banned_until = until;
    }

    fn is_under_ban(&self, ip: IpAddr, at: SystemTime) -> bool {
        if self.bans.ban_of(ip, state::unix_secs(at)).is_some() {
            return true;
        }
        self.settings.observe
            && self
                .would_bans
                .get(&ip)
                .is_some_and(|until| until.is_none_or(|u| at < u))
    }

    /// An operator's ban of an address or network, permanent (`None`) or
    /// timed. Refused for allowlisted targets. Replaces an existing ban of
    /// the same target; takes no part in escalation.
    pub fn ban(
        &mut self,
        target: BanTarget,
        duration: Option<Duration>,
        reason: impl Into<String>,
        at: SystemTime,
    ) -> Result<BanRecord, PolicyError> {
        if duration.is_some_and(|d| d.is_zero()) {
            return Err(PolicyError::ZeroDuration);
        }
        let target = BanTarget::from_net(target.as_net());
        if let Some(entry) = self.allowlist.covers(target.as_net()) {
            return Err(PolicyError::Allowlisted {
                target,
                entry: entry.clone(),
            });
        }
        let record = BanRecord {
            target,
            created: state::unix_secs(at),
            expires: duration
                .and_then(|d| at.checked_add(d))
                .map(state::unix_secs),
            class: OffenceClass::Manual,
            origin: BanOrigin::Manual,
            offence_number: 0,
            reason: self.reasons.intern(&reason.into()),
        };
        self.journal.bans.push(Change::Ban(record.clone()));
        self.bans.insert(record.clone());
        Ok(record)
    }

    /// Lifts the ban of exactly `target`. Unbanning an address also forgives
    /// it: its open windows and its history are forgotten.
    pub fn unban(&mut self, target: BanTarget) -> Option<BanRecord> {
        let target = BanTarget::from_net(target.as_net());
        let removed = self.bans.remove(&target);
        if let Some(r) = &removed {
            self.journal.bans.push(Change::Lift(r.clone()));
        }
        if let BanTarget::Addr(ip) = target {
            self.history.remove(&ip);
            self.journal.history.insert(ip);
            self.would_bans.remove(&ip);
            for class in OffenceClass::ALL {
                self.windows.remove(&(ip, class));
                self.journal.windows.insert((ip, class));
            }
        }
        removed
    }

    /// Adds an operator's allowlist entry (kept in the state database), lifting
    /// the bans it now covers; returns those bans.
    pub fn allow(&mut self, net: ipnet::IpNet, note: impl Into<String>) -> Vec<BanRecord> {
        self.allowlist
            .insert(AllowEntry::new(net, AllowSource::Manual, note));
        self.journal.allow = true;
        self.lift_allowlisted()
    }

    /// Removes an operator's allowlist entry; `false` if there was none.
    pub fn disallow(&mut self, net: ipnet::IpNet) -> bool {
        self.journal.allow = true;
        self.allowlist.remove(net, AllowSource::Manual)
    }

    /// sshd accepted a login from `ip` port `port`: the peer is allowlisted
    /// while the session lasts. Returns the bans this lifts, and whether the
    /// allowlist changed.
    pub fn ssh_accepted(
        &mut self,
        ip: IpAddr,
        port: u16,
        method: &str,
        now: SystemTime,
    ) -> (Vec<BanRecord>, bool) {
        if !self.ssh.accepted(ip, port, method, now) {
            return (Vec::new(), false);
        }
        self.sync_ssh_entries();
        (self.lift_allowlisted(), true)
    }

    /// The connections to an SSH port open now: sessions among them go on,
    /// the others end after the grace. True when the allowlist changed.
    pub fn ssh_refresh(&mut self, open: &[(IpAddr, u16)], now: SystemTime) -> bool {
        if !self.ssh.refresh(open, self.settings.ssh_grace, now) {
            return false;
        }
        self.sync_ssh_entries();
        true
    }

    /// A discovery pass: the automatic entries it found, and which SSH
    /// sessions are still open. Returns the bans the allowlist now lifts.
    pub fn apply_discovery(
        &mut self,
        found: &discover::Discovery,
        now: SystemTime,
    ) -> Vec<BanRecord> {
        found.apply(&mut self.allowlist);
        if let Some(open) = &found.ssh_connections {
            self.ssh_refresh(open, now);
        }
        self.lift_allowlisted()
    }

    /// Forgets every session (`ssh_sessions = false`).
    pub fn ssh_clear(&mut self) {
        self.ssh = SshSessions::default();
        self.sync_ssh_entries();
    }

    pub fn ssh_sessions(&self) -> &SshSessions {
        &self.ssh
    }

    fn sync_ssh_entries(&mut self) {
        self.journal.ssh = true;
        self.allowlist
            .replace_source(AllowSource::SshSession, self.ssh.entries());
    }

    /// Removes the bans of addresses (and networks) the allowlist now covers
    /// and returns them, for the daemon to delete from the kernel.
    pub fn lift_allowlisted(&mut self) -> Vec<BanRecord> {
        let allowlist = &self.allowlist;
        let lifted = self
            .bans
            .remove_where(|r| allowlist.covers(r.target.as_net()).is_some());
        self.journal
            .bans
            .extend(lifted.iter().cloned().map(Change::Lift));
        lifted
    }

    /// Drops what has run out by `now`: expired bans (returned, for the
    /// daemon to delete from the kernel; past `ban_book::SWEEP_CHUNK` bans a
    /// call looks at that many, going on at the next), closed windows,
    /// forgotten history. Call it periodically.
    pub fn expire(&mut self, now: SystemTime) -> Vec<BanRecord> {
        let now_unix = state::unix_secs(now);
        let expired = self.bans.remove_expired(now_unix);
        self.journal
            .bans
            .extend(expired.iter().cloned().map(Change::Lift));
        self.would_bans
            .retain(|_, until| until.is_none_or(|u| now < u));
        let forget_after = self.settings.forget_after;
        self.history
            .retain(|_, h| !h.is_forgotten(now, forget_after));
        let ended: Vec<IpAddr> = self
            .known_good
            .iter()
            .filter(|(_, until)| now >= **until)
            .map(|(ip, _)| *ip)
            .collect();
        for ip in ended {
            self.known_good.remove(&ip);
            self.journal.known_good.insert(ip);
        }
        let settings = &self.settings;
        self.windows.retain(|(_, class), window| {
            let (Some(threshold), Some(newest)) = (settings.threshold(*class), window.newest())
            else {
                return false;
            };
            now.duration_since(newest)
                .map_or(true, |age| age < threshold.findtime)
        });
        expired
    }

    /// The active ban covering `ip` (exact, else the most specific range).
    pub fn ban_of(&self, ip: IpAddr, now: SystemTime) -> Option<&BanRecord> {
        self.bans.ban_of(ip, state::unix_secs(now))
    }

    /// The ban of exactly `target` (an address or a network), if any.
    pub fn ban_for(&self, target: &BanTarget) -> Option<&BanRecord> {
        self.bans.get(target)
    }

    /// All recorded bans, expired ones included until `expire` runs.
    pub fn bans(&self) -> impl Iterator<Item = &BanRecord> {
        self.bans.iter()
    }

    /// The `n` newest active bans, newest first.
    pub fn newest_bans(&mut self, n: usize, now: SystemTime) -> Vec<&BanRecord> {
        self.bans.newest(n, state::unix_secs(now))
    }

    /// Bans held, by kind and origin (kept as they change).
    pub fn ban_counts(&self) -> BanCounts {
        self.bans.counts()
    }

    pub fn ban_count(&self) -> usize {
        self.bans.len()
    }

    /// A SIP source authenticated (`SuccessfulAuth`): known good for
    /// `known_good_for` from `at`. Returns the new end when the kernel's
    /// entry should be written (new, or moved by more than ten minutes).
    pub fn known_good(&mut self, ip: IpAddr, at: SystemTime) -> Option<SystemTime> {
        let window = self.settings.known_good_for;
        if window.is_zero() {
            return None;
        }
        let ip = ip.to_canonical();
        let until = at + window;
        let moved = match self.known_good.get(&ip) {
            Some(old) => until
                .duration_since(*old)
                .is_ok_and(|d| d >= KNOWN_GOOD_REFRESH),
            None => true,
        };
        if !moved {
            return None;
        }
        self.known_good.insert(ip, until);
        self.journal.known_good.insert(ip);
        Some(until)
    }

    /// Known good at `at`.
    pub fn is_known_good(&self, ip: IpAddr, at: SystemTime) -> bool {
        self.known_good
            .get(&ip.to_canonical())
            .is_some_and(|until| at < *until)
    }

    /// How many sources are known good at `now`.
    pub fn known_good_count(&self, now: SystemTime) -> usize {
        self.known_good
            .iter()
            .filter(|(_, until)| now < **until)
            .count()
    }

    /// Known-good sources and until when, soonest end first.
    pub fn known_good_sources(&self, now: SystemTime) -> Vec<(IpAddr, SystemTime)> {
        let mut out: Vec<(IpAddr, SystemTime)> = self
            .known_good
            .iter()
            .filter(|(_, until)| now < **until)
            .map(|(ip, until)| (*ip, *until))
            .collect();
        out.sort_by_key(|(ip, until)| (*until, *ip));
        out
    }

    pub fn history_of(&self, ip: IpAddr) -> Option<HistoryRecord> {
        let ip = ip.to_canonical();
        self.history.get(&ip).map(|h| history_record(ip, h))
    }

    /// Open failure windows, one per source and class (bounded by
    /// `max_tracked_sources`).
    pub fn tracked_sources(&self) -> usize {
        self.windows.len()
    }

    /// Windows forgotten because the cap was reached (a spoofed-source flood).
    pub fn evicted_sources(&self) -> u64 {
        self.windows.evicted()
    }

    /// The changes since the last call, for the state database: bans made
    /// and lifted in order, then the current history of each source whose
    /// history changed, the operator's allowlist and the SSH sessions if
    /// they changed.
    pub fn take_changes(&mut self) -> Vec<Change> {
        let journal = std::mem::take(&mut self.journal);
        let mut changes = journal.bans;
        for ip in journal.history {
            changes.push(match self.history.get(&ip) {
                Some(h) => Change::History(history_record(ip, h)),
                None => Change::ForgetHistory(ip),
            });
        }
        if journal.allow {
            changes.push(Change::Allow(self.manual_allow()));
        }
        if journal.ssh {
            changes.push(Change::Ssh(self.ssh.records()));
        }
        for ip in journal.known_good {
            changes.push(Change::KnownGood {
                addr: ip,
                until: self.known_good.get(&ip).map(|t| state::unix_secs(*t)),
            });
        }
        for (ip, class) in journal.windows {
            let times_ms = self
                .windows
                .get(&(ip, class))
                .map(|w| w.times().map(unix_ms).collect())
                .unwrap_or_default();
            changes.push(Change::Window(WindowRecord {
                addr: ip,
                class,
                times_ms,
            }));
        }
        changes
    }

    /// The operator's allowlist entries (`sipshield allow add`).
    pub fn manual_allow(&self) -> Vec<AllowRecord> {
        self.allowlist
            .entries()
            .filter(|e| e.source == AllowSource::Manual)
            .map(|e| AllowRecord {
                net: e.net,
                note: e.note.clone(),
            })
            .collect()
    }

    /// What goes into the state file.
    pub fn snapshot(&self, now: SystemTime) -> State {
        let now_unix = state::unix_secs(now);
        let forget_after = self.settings.forget_after;
        let mut history: Vec<HistoryRecord> = self
            .history
            .iter()
            .filter(|(_, h)| !h.is_forgotten(now, forget_after))
            .map(|(ip, h)| history_record(*ip, h))
            .collect();
        history.sort_by_key(|h| h.addr);
        State {
            version: state::STATE_VERSION,
            saved_at: now_unix,
            bans: self
                .bans
                .iter()
                .filter(|b| b.is_active(now_unix))
                .cloned()
                .collect(),
            history,
            allow: self
                .allowlist
                .entries()
                .filter(|e| e.source == AllowSource::Manual)
                .map(|e| AllowRecord {
                    net: e.net,
                    note: e.note.clone(),
                })
                .collect(),
            ssh_sessions: self.ssh.records(),
            windows: self
                .windows
                .iter()
                .map(|((ip, class), w)| WindowRecord {
                    addr: *ip,
                    class: *class,
                    times_ms: w.times().map(unix_ms).collect(),
                })
                .collect(),
            known_good: self
                .known_good
                .iter()
                .map(|(ip, until)| KnownGoodRecord {
                    addr: *ip,
                    until: state::unix_secs(*until),
                })
                .collect(),
        }
    }

    /// Takes back what a snapshot saved (after a restart). Expired bans and
    /// forgotten history are skipped; current ones replace what policy holds.
    /// Call `lift_allowlisted` afterwards: the allowlist may have grown since.
    pub fn restore(&mut self, saved: &State, now: SystemTime) {
        let now_unix = state::unix_secs(now);
        let active: Vec<BanRecord> = saved
            .bans
            .iter()
            .filter(|b| b.is_active(now_unix))
            .map(|ban| BanRecord {
                reason: self.reasons.intern(&ban.reason),
                ..ban.clone()
            })
            .collect();
        self.bans.extend(active);
        for record in &saved.history {
            let history = History {
                bans: record.bans,
                last_offence: state::from_unix_secs(record.last_offence),
                banned_until: record.banned_until.map(state::from_unix_secs),
            };
            if !history.is_forgotten(now, self.settings.forget_after) {
                self.history.insert(record.addr.to_canonical(), history);
            }
        }
        for allow in &saved.allow {
            self.allowlist.insert(AllowEntry::new(
                allow.net,
                AllowSource::Manual,
                allow.note.clone(),
            ));
        }
        for w in &saved.windows {
            let Some(threshold) = self.settings.threshold(w.class) else {
                continue;
            };
            let times = w.times_ms.iter().map(|ms| from_unix_ms(*ms)).collect();
            let window = Window::restored(times, now, threshold.findtime, threshold.maxretry);
            if window.newest().is_some() {
                self.windows
                    .insert((w.addr.to_canonical(), w.class), window);
            }
        }
        for k in &saved.known_good {
            let until = state::from_unix_secs(k.until);
            if now < until {
                self.known_good.insert(k.addr.to_canonical(), until);
            }
        }
        // Sessions open at the save: the first refresh (start-up discovery)
        // keeps those still open and ends the rest (their saved last-open
        // time is as old as the save).
        self.ssh.restore(&saved.ssh_sessions);
        self.sync_ssh_entries();
        // What was restored is stored already.
        self.journal = Journal::default();
        self.bans.reseed_newest(now_unix);
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_unix_ms(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH
        + std::time::Duration::from_millis(ms.min(state::LATEST_UNIX_SECS * 1000))
}

fn history_record(ip: IpAddr, h: &History) -> HistoryRecord {
    HistoryRecord {
        addr: ip,
        bans: h.bans,
        last_offence: state::unix_secs(h.last_offence),
        banned_until: h.banned_until.map(state::unix_secs),
    }
}
