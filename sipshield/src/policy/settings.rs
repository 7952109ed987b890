//! The numbers policy works with, taken from the config.

use std::time::Duration;

use crate::{config::Config, offence::OffenceClass};

/// `maxretry` offences within `findtime` ban a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub maxretry: u32,
    pub findtime: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySettings {
    /// Indexed like `OffenceClass::ALL`; `None`: not counted.
    pub thresholds: [Option<Threshold>; OffenceClass::ALL.len()],
    /// Ban lengths by the number of earlier bans; `None` = permanent.
    pub ladder: Vec<Option<Duration>>,
    pub forget_after: Duration,
    /// Decide everything, ban nothing.
    pub observe: bool,
    /// First-ban lengths of kernel bans; escalation never goes below them.
    pub rate_guard_ban: Option<Duration>,
    pub scanner_ban: Option<Duration>,
    pub max_tracked_sources: usize,
    pub max_history: usize,
    /// How long an SSH session stays allowlisted after its connection ended.
    pub ssh_grace: Duration,
    /// Known-good SIP sources (remote agents): how long, how much more
    /// patience, how short a first ban.
    pub known_good_for: Duration,
    pub known_good_factor: u32,
    pub known_good_first_ban: Duration,
}

impl PolicySettings {
    pub fn from_config(config: &Config) -> PolicySettings {
        let policy = &config.policy;
        let mut thresholds = [None; OffenceClass::ALL.len()];
        for (slot, class) in thresholds.iter_mut().zip(OffenceClass::ALL) {
            *slot = policy
                .threshold(class)
                .filter(|t| t.enabled)
                .map(|t| Threshold {
                    maxretry: t.maxretry.max(1),
                    findtime: t.findtime,
                });
        }
        PolicySettings {
            thresholds,
            ladder: policy
                .ban_ladder
                .iter()
                .map(|step| step.as_option())
                .collect(),
            forget_after: policy.forget_after,
            observe: config.xdp.mode == crate::config::ShieldMode::Observe,
            rate_guard_ban: config.xdp.rate_ban.as_option(),
            scanner_ban: config.xdp.scanner_ban.as_option(),
            max_tracked_sources: policy.max_tracked_sources as usize,
            max_history: policy.max_history as usize,
            ssh_grace: config.allow.ssh_grace,
            known_good_for: policy.known_good_for,
            known_good_factor: policy.known_good_maxretry_factor.max(1),
            known_good_first_ban: policy.known_good_first_ban,
        }
    }

    /// The longest `findtime` of any class: older offences count nowhere.
    pub fn longest_findtime(&self) -> std::time::Duration {
        self.thresholds
            .iter()
            .flatten()
            .map(|t| t.findtime)
            .max()
            .unwrap_or_default()
    }

    pub fn threshold(&self, class: OffenceClass) -> Option<Threshold> {
        let index = OffenceClass::ALL.iter().position(|c| *c == class)?;
        self.thresholds[index]
    }

    /// The length of a source's ban after `previous_bans` earlier ones; the
    /// last step repeats. An empty ladder (refused by config validation)
    /// bans for 10 minutes.
    pub fn ladder_step(&self, previous_bans: u32) -> Option<Duration> {
        let index = (previous_bans as usize).min(self.ladder.len().saturating_sub(1));
        self.ladder
            .get(index)
            .copied()
            .unwrap_or(Some(Duration::from_secs(600)))
    }
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings::from_config(&Config::default())
    }
}

/// The longer of two ban lengths (`None` = permanent is the longest).
pub(crate) fn longer(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    }
}
