//! `[policy]`: when failures become bans, and for how long.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    duration::{human, BanLength},
    error::{KeyPath, Problems},
};
use crate::offence::OffenceClass;

/// "`maxretry` offences within `findtime`" bans the source, as in fail2ban.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassThreshold {
    /// `false`: offences of this class are ignored.
    pub enabled: bool,
    pub maxretry: u32,
    #[serde(with = "human")]
    pub findtime: Duration,
}

impl Default for ClassThreshold {
    fn default() -> Self {
        ClassThreshold {
            enabled: true,
            maxretry: 5,
            findtime: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySection {
    pub sip_auth: ClassThreshold,
    pub sip_probe: ClassThreshold,
    pub ami: ClassThreshold,
    pub iax: ClassThreshold,
    pub ssh: ClassThreshold,
    /// Ban lengths by how many times the source was banned before.
    pub ban_ladder: Vec<BanLength>,
    /// A source's offence history is forgotten after this long without
    /// offences (counted from the end of its last ban).
    #[serde(with = "human")]
    pub forget_after: Duration,
    /// Failure windows (one per source and class) kept in memory; the least
    /// recently touched are evicted.
    pub max_tracked_sources: u32,
    /// Sources whose ban history is kept (oldest evicted).
    pub max_history: u32,
    /// How long a SIP source stays known good after Asterisk's
    /// `SuccessfulAuth` security event named it; 0 turns it off.
    #[serde(with = "human")]
    pub known_good_for: Duration,
    /// A known-good source's thresholds are `maxretry` times this.
    pub known_good_maxretry_factor: u32,
    /// A known-good source's first ban lasts at most this long.
    #[serde(with = "human")]
    pub known_good_first_ban: Duration,
}

impl Default for PolicySection {
    fn default() -> Self {
        let hour = 3600;
        PolicySection {
            sip_auth: ClassThreshold::default(),
            sip_probe: ClassThreshold::default(),
            ami: ClassThreshold::default(),
            iax: ClassThreshold::default(),
            ssh: ClassThreshold::default(),
            ban_ladder: [600, hour, 24 * hour, 7 * 24 * hour]
                .into_iter()
                .map(|s| BanLength::For(Duration::from_secs(s)))
                .collect(),
            forget_after: Duration::from_secs(7 * 24 * hour),
            max_tracked_sources: 65_536,
            max_history: 262_144,
            known_good_for: Duration::from_secs(24 * hour),
            known_good_maxretry_factor: 4,
            known_good_first_ban: Duration::from_secs(300),
        }
    }
}

impl PolicySection {
    /// The threshold of a class counted from logs; `None` for classes that
    /// arrive as bans already made (kernel, operator).
    pub fn threshold(&self, class: OffenceClass) -> Option<&ClassThreshold> {
        match class {
            OffenceClass::SipAuth => Some(&self.sip_auth),
            OffenceClass::SipProbe => Some(&self.sip_probe),
            OffenceClass::Ami => Some(&self.ami),
            OffenceClass::Iax => Some(&self.iax),
            OffenceClass::Ssh => Some(&self.ssh),
            OffenceClass::RateGuard | OffenceClass::Scanner | OffenceClass::Manual => None,
        }
    }

    pub(crate) fn validate(&self, problems: &mut Problems) {
        let section = KeyPath::new("policy");
        for (key, t) in [
            ("sip_auth", &self.sip_auth),
            ("sip_probe", &self.sip_probe),
            ("ami", &self.ami),
            ("iax", &self.iax),
            ("ssh", &self.ssh),
        ] {
            if t.maxretry == 0 {
                problems.push(
                    section.key(key).key("maxretry"),
                    "must be at least 1 (set enabled = false to ignore the class)",
                );
            }
            if t.findtime.is_zero() {
                problems.push(section.key(key).key("findtime"), "must be longer than 0");
            }
        }
        if self.ban_ladder.is_empty() {
            problems.push(section.key("ban_ladder"), "list at least one ban length");
        }
        for (i, step) in self.ban_ladder.iter().enumerate() {
            let key = section.key("ban_ladder").index(i);
            if *step == BanLength::For(Duration::ZERO) {
                problems.push(key, "a ban of 0s bans nothing");
            } else if i > 0 && *step < self.ban_ladder[i - 1] {
                problems.push(
                    key,
                    format!(
                        "{step} is shorter than the step before it ({})",
                        self.ban_ladder[i - 1]
                    ),
                );
            }
        }
        if self.forget_after.is_zero() {
            problems.push(section.key("forget_after"), "must be longer than 0");
        }
        if self.max_tracked_sources == 0 {
            problems.push(section.key("max_tracked_sources"), "must be at least 1");
        }
        if self.max_history == 0 {
            problems.push(section.key("max_history"), "must be at least 1");
        }
        if self.known_good_for > Duration::from_secs(30 * 24 * 3600) {
            problems.push(section.key("known_good_for"), "must be at most 30d");
        }
        if !(1..=100).contains(&self.known_good_maxretry_factor) {
            problems.push(
                section.key("known_good_maxretry_factor"),
                "must be from 1 to 100",
            );
        }
        if self.known_good_first_ban.is_zero() {
            problems.push(
                section.key("known_good_first_ban"),
                "a ban of 0s bans nothing",
            );
        }
    }
}
