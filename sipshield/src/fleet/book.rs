//! Decisions from the fleet (CrowdSec, feeds), by target.
//!
//! A target may hold several decisions (two CrowdSec scenarios, a feed and
//! CrowdSec): it stays banned until the last one ends. The book knows
//! nothing of sipshield's own bans; the engine combines the two, so a
//! fleet decision lifted never lifts a local ban and the other way round.

use std::{
    collections::{hash_map::Entry, HashMap},
    sync::Arc,
};

use crate::state::BanTarget;

/// Where a decision came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FleetSource {
    CrowdSec,
    Feed(Arc<str>),
}

impl FleetSource {
    /// As `status`, the database and events name it.
    pub fn name(&self) -> String {
        match self {
            FleetSource::CrowdSec => "crowdsec".into(),
            FleetSource::Feed(n) => format!("feed:{n}"),
        }
    }

    pub fn parse(text: &str) -> Option<FleetSource> {
        match text {
            "crowdsec" => Some(FleetSource::CrowdSec),
            _ => text
                .strip_prefix("feed:")
                .filter(|n| !n.is_empty())
                .map(|n| FleetSource::Feed(n.into())),
        }
    }
}

/// One decision: its id at the source (CrowdSec's decision id; a feed's
/// entry text) and until when (unix seconds; `None`: no end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetDecision {
    pub source: FleetSource,
    pub id: String,
    pub target: BanTarget,
    pub until: Option<u64>,
    /// CrowdSec's scenario, or the feed's name.
    pub scenario: Arc<str>,
    /// CrowdSec's origin (`crowdsec`, `cscli`, `CAPI`, `lists`...).
    pub origin: Arc<str>,
}

/// What a target's decisions add up to: banned until the latest end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub until: Option<u64>,
    /// The source of the decision that lasts longest.
    pub source: FleetSource,
}

#[derive(Debug, Default)]
pub struct FleetBook {
    by_target: HashMap<BanTarget, Vec<FleetDecision>>,
    by_id: HashMap<(FleetSource, String), BanTarget>,
}

fn later(a: Option<u64>, b: Option<u64>) -> bool {
    match (a, b) {
        (None, Some(_)) => true,
        (Some(x), Some(y)) => x > y,
        _ => false,
    }
}

impl FleetBook {
    /// The latest-ending decision of `target`, if it has any.
    pub fn effective(&self, target: &BanTarget) -> Option<Effective> {
        let list = self.by_target.get(target)?;
        let mut best: Option<&FleetDecision> = None;
        for d in list {
            if best.is_none_or(|b| later(d.until, b.until)) {
                best = Some(d);
            }
        }
        best.map(|d| Effective {
            until: d.until,
            source: d.source.clone(),
        })
    }

    /// Adds (or replaces, same source and id) a decision; returns the
    /// target's effective ban before.
    pub fn insert(&mut self, d: FleetDecision) -> Option<Effective> {
        let key = (d.source.clone(), d.id.clone());
        if let Some(old_target) = self.by_id.get(&key).copied() {
            if old_target != d.target {
                self.remove(&d.source, &d.id);
            }
        }
        let before = self.effective(&d.target);
        self.by_id.insert(key, d.target);
        let list = self.by_target.entry(d.target).or_default();
        match list
            .iter_mut()
            .find(|x| x.source == d.source && x.id == d.id)
        {
            Some(x) => *x = d,
            None => list.push(d),
        }
        before
    }

    /// Removes one decision; its target, if it had it.
    pub fn remove(&mut self, source: &FleetSource, id: &str) -> Option<BanTarget> {
        let target = self.by_id.remove(&(source.clone(), id.to_string()))?;
        if let Entry::Occupied(mut e) = self.by_target.entry(target) {
            e.get_mut().retain(|d| !(d.source == *source && d.id == id));
            if e.get().is_empty() {
                e.remove();
            }
        }
        Some(target)
    }

    /// Removes every decision for which `drop` holds; the targets touched.
    pub fn remove_where(&mut self, mut drop: impl FnMut(&FleetDecision) -> bool) -> Vec<BanTarget> {
        let doomed: Vec<(FleetSource, String)> = self
            .by_target
            .values()
            .flatten()
            .filter(|d| drop(d))
            .map(|d| (d.source.clone(), d.id.clone()))
            .collect();
        let mut touched: Vec<BanTarget> = doomed
            .iter()
            .filter_map(|(s, id)| self.remove(s, id))
            .collect();
        touched.sort();
        touched.dedup();
        touched
    }

    /// Removes what ended by `now_unix`; the targets touched.
    pub fn expire(&mut self, now_unix: u64) -> Vec<BanTarget> {
        self.remove_where(|d| d.until.is_some_and(|u| u <= now_unix))
    }

    pub fn decisions(&self) -> impl Iterator<Item = &FleetDecision> {
        self.by_target.values().flatten()
    }

    /// The decisions of `target`.
    pub fn decisions_of(&self, target: &BanTarget) -> impl Iterator<Item = &FleetDecision> {
        self.by_target.get(target).into_iter().flatten()
    }

    pub fn targets(&self) -> impl Iterator<Item = &BanTarget> {
        self.by_target.keys()
    }

    /// Decisions held of `source`.
    pub fn count(&self, source: &FleetSource) -> usize {
        self.by_id.keys().filter(|(s, _)| s == source).count()
    }

    /// Decisions held, all sources.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Targets held.
    pub fn target_count(&self) -> usize {
        self.by_target.len()
    }

    pub fn has(&self, source: &FleetSource, id: &str) -> bool {
        self.by_id.contains_key(&(source.clone(), id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(id: &str, target: &str, until: Option<u64>) -> FleetDecision {
        FleetDecision {
            source: FleetSource::CrowdSec,
            id: id.into(),
            target: target.parse().unwrap(),
            until,
            scenario: "s".into(),
            origin: "cscli".into(),
        }
    }

    #[test]
    fn a_target_stays_banned_until_its_last_decision_ends() {
        let mut b = FleetBook::default();
        let t: BanTarget = "192.0.2.1".parse().unwrap();
        assert_eq!(b.insert(d("1", "192.0.2.1", Some(100))), None);
        assert!(b.insert(d("2", "192.0.2.1", Some(200))).is_some());
        assert_eq!(b.effective(&t).unwrap().until, Some(200));
        b.remove(&FleetSource::CrowdSec, "2");
        assert_eq!(b.effective(&t).unwrap().until, Some(100));
        assert_eq!(b.expire(150), vec![t]);
        assert_eq!(b.effective(&t), None);
        assert!(b.is_empty());
    }

    #[test]
    fn no_end_outlasts_any_end_and_sources_are_apart() {
        let mut b = FleetBook::default();
        let t: BanTarget = "198.51.100.0/24".parse().unwrap();
        b.insert(d("7", "198.51.100.0/24", Some(10)));
        let mut feed = d("198.51.100.0/24", "198.51.100.0/24", None);
        feed.source = FleetSource::Feed("voipbl".into());
        b.insert(feed);
        let e = b.effective(&t).unwrap();
        assert_eq!(e.until, None);
        assert_eq!(e.source.name(), "feed:voipbl");
        assert_eq!(b.count(&FleetSource::CrowdSec), 1);
        b.remove(&FleetSource::Feed("voipbl".into()), "198.51.100.0/24");
        assert_eq!(b.effective(&t).unwrap().source, FleetSource::CrowdSec);
        // An unknown id removes nothing.
        assert_eq!(b.remove(&FleetSource::CrowdSec, "999"), None);
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn the_same_id_again_replaces_it() {
        let mut b = FleetBook::default();
        b.insert(d("1", "192.0.2.1", Some(100)));
        b.insert(d("1", "192.0.2.2", Some(100)));
        assert_eq!(b.len(), 1);
        assert_eq!(b.target_count(), 1);
        assert!(b.effective(&"192.0.2.1".parse().unwrap()).is_none());
    }

    #[test]
    fn source_names_round_trip() {
        for s in [FleetSource::CrowdSec, FleetSource::Feed("apiban".into())] {
            assert_eq!(FleetSource::parse(&s.name()), Some(s));
        }
        assert_eq!(FleetSource::parse("feed:"), None);
        assert_eq!(FleetSource::parse("log"), None);
    }
}
