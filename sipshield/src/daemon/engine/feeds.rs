//! The engine's side of the blocklist feeds: their entries into the fleet
//! book (origin `feed:<name>`), the feeds' share of the kernel tables.

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    sync::Arc,
    time::SystemTime,
};

use serde_json::{json, Value};

use super::Engine;
use crate::{
    daemon::events::EventAction,
    fleet::{
        book::{FleetDecision, FleetSource},
        feeds::FeedUpdate,
    },
    state::{self, db::Change, BanTarget},
};

/// What `status` says about one feed.
#[derive(Debug, Default, Clone)]
pub struct FeedState {
    pub last_ok: Option<SystemTime>,
    pub failing_since: Option<SystemTime>,
    pub last_error: Option<String>,
    /// Lines (or APIBAN entries) of the last download that were no address.
    pub bad_lines: usize,
    /// Entries not banned: the allowlist covers them.
    pub allowlisted: u64,
    /// APIBAN: where the next download asks from.
    pub cursor: Option<String>,
}

/// The `meta` key of an APIBAN feed's cursor.
pub fn cursor_key(feed: &str) -> String {
    format!("feed_cursor {feed}")
}

impl Engine {
    pub fn on_feed(&mut self, update: FeedUpdate) {
        let now = SystemTime::now();
        match update {
            FeedUpdate::Full {
                feed,
                targets,
                bad_lines,
            } => {
                let n = targets.len();
                self.take_feed(&feed, targets, true, bad_lines, now);
                log::info!(
                    "feed {feed}: {n} entries ({bad_lines} lines no address); {} banned",
                    self.fleet.count(&FleetSource::Feed(feed.as_str().into()))
                );
            }
            FeedUpdate::Added {
                feed,
                targets,
                bad_lines,
                cursor,
            } => {
                let n = targets.len();
                self.take_feed(&feed, targets, false, bad_lines, now);
                self.fleet_changes.push(Change::Meta {
                    key: cursor_key(&feed),
                    value: cursor.clone(),
                });
                self.feeds.entry(feed.clone()).or_default().cursor = Some(cursor);
                if n > 0 {
                    log::info!("feed {feed}: {n} new entries");
                }
            }
            FeedUpdate::Failed { feed, error, at } => {
                let st = self.feeds.entry(feed.clone()).or_default();
                if st.failing_since.is_none() {
                    st.failing_since = Some(at);
                    log::error!("feed {feed}: {error}; its entries stay");
                }
                st.last_error = Some(error);
            }
        }
    }

    /// `full`: `targets` is the whole list (what it lacks is lifted);
    /// otherwise they are added.
    fn take_feed(
        &mut self,
        feed: &str,
        targets: Vec<BanTarget>,
        full: bool,
        bad_lines: usize,
        now: SystemTime,
    ) {
        let source = FleetSource::Feed(feed.into());
        let max_age = self
            .config
            .feeds
            .iter()
            .find(|f| f.name == feed)
            .map(|f| f.resolved().max_age)
            .unwrap_or_default();
        let until = (!max_age.is_zero()).then(|| state::unix_secs(now) + max_age.as_secs());
        let mut allowlisted = 0;
        let wanted: Vec<BanTarget> = targets
            .into_iter()
            .filter(|t| {
                let covered = self.policy.allowlist().covers(t.as_net()).is_some();
                allowlisted += u64::from(covered);
                !covered
            })
            .collect();
        let mut touched = BTreeSet::new();
        if full {
            let keep: HashSet<String> = wanted.iter().map(|t| t.to_string()).collect();
            let gone: Vec<String> = self
                .fleet
                .decisions()
                .filter(|d| d.source == source && !keep.contains(&d.id))
                .map(|d| d.id.clone())
                .collect();
            for id in gone {
                self.drop_fleet_decision(&source, &id, &mut touched);
            }
        }
        let name: Arc<str> = feed.into();
        let origin: Arc<str> = "feed".into();
        for target in wanted {
            let id = target.to_string();
            let held = self
                .fleet
                .decisions_of(&target)
                .find(|d| d.source == source && d.id == id)
                .map(|d| d.until);
            if let Some(held_until) = held {
                // Still listed: its age starts again (max_age counts from the
                // last listing), written once per half max_age, not every
                // refresh.
                let renew = match (held_until, until) {
                    (Some(h), Some(u)) => h.saturating_add(max_age.as_secs() / 2) < u,
                    _ => false,
                };
                if !renew {
                    continue;
                }
            } else if self.fleet.effective(&target).is_none() {
                let duration = until.map(|_| max_age.as_secs());
                let reason = format!("listed by feed {feed}");
                self.fleet_event(EventAction::Ban, &target, &source, duration, &reason);
            }
            let d = FleetDecision {
                source: source.clone(),
                id,
                target,
                until,
                scenario: name.clone(),
                origin: origin.clone(),
            };
            self.fleet_changes.push(Change::Fleet(d.clone()));
            touched.insert(target);
            self.fleet.insert(d);
        }
        self.enforce_fleet(&touched);
        let st = self.feeds.entry(feed.to_string()).or_default();
        if let Some(since) = st.failing_since.take() {
            let secs = now.duration_since(since).map_or(0, |d| d.as_secs());
            log::warn!("feed {feed}: downloads again after {secs}s");
        }
        st.last_ok = Some(now);
        st.last_error = None;
        st.bad_lines = bad_lines;
        st.allowlisted += allowlisted;
    }

    /// Entries of feeds no longer configured go (a start, a reload).
    pub fn drop_unconfigured_feeds(&mut self) {
        let configured: HashSet<&str> = self.config.feeds.iter().map(|f| f.name.as_str()).collect();
        let stale: Vec<(FleetSource, String)> = self
            .fleet
            .decisions()
            .filter(|d| matches!(&d.source, FleetSource::Feed(n) if !configured.contains(&**n)))
            .map(|d| (d.source.clone(), d.id.clone()))
            .collect();
        if stale.is_empty() {
            return;
        }
        log::warn!(
            "{} entries of feeds no longer configured lifted",
            stale.len()
        );
        let mut touched = BTreeSet::new();
        for (s, id) in stale {
            self.drop_fleet_decision(&s, &id, &mut touched);
        }
        self.enforce_fleet(&touched);
    }

    /// The `feeds` part of `status`.
    pub(super) fn feeds_json(&self) -> Value {
        let mut out = BTreeMap::new();
        for f in &self.config.feeds {
            let st = self.feeds.get(&f.name).cloned().unwrap_or_default();
            let unix = |t: Option<SystemTime>| t.map(state::unix_secs);
            out.insert(
                f.name.clone(),
                json!({
                    "kind": f.kind,
                    "url": f.resolved().url,
                    "entries": self.fleet.count(&FleetSource::Feed(f.name.as_str().into())),
                    "last_ok": unix(st.last_ok),
                    "failing_since": unix(st.failing_since),
                    "last_error": st.last_error,
                    "bad_lines": st.bad_lines,
                    "allowlisted": st.allowlisted,
                }),
            );
        }
        json!(out)
    }
}
