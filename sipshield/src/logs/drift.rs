//! The drift alarm: Asterisk rewords its messages between releases (20.12
//! stopped printing "Failed to authenticate" for a while) and nobody notices
//! until the bans stop. Lines from the modules that log authentication and
//! access failures, holding a failure word, that no parser matched, are
//! counted with a few samples; the Asterisk version named in the log is
//! noted, and a change of it reported.

use std::collections::VecDeque;

use super::prefix::{self, Origin};

/// Modules whose failure lines the parsers are meant to know (basenames;
/// `res_pjsip` covers every `res_pjsip*.c` and `res_pjsip/*.c`).
const WATCHED_MODULES: [&str; 7] = [
    "chan_sip.c",
    "chan_pjsip.c",
    "res_pjsip",
    "manager.c",
    "chan_iax2.c",
    "http.c",
    "res_security_log.c",
];

/// Words of failure lines, lower case.
const FAILURE_WORDS: [&str; 7] = [
    "failed",
    "wrong password",
    "rejected",
    "not allowed",
    "unauthorized",
    "authentication",
    "no matching",
];

/// Samples kept, newest last.
pub const SAMPLES: usize = 3;

/// Samples are cut to this many bytes (attacker text can be long).
const SAMPLE_MAX: usize = 300;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    /// Failure-looking lines no parser matched.
    pub unmatched: u64,
    pub samples: VecDeque<String>,
    /// The Asterisk version the log last named (`Asterisk 20.5.0, ...`).
    pub version: Option<String>,
    /// The version before the last change, when one was seen.
    pub previous_version: Option<String>,
}

impl Drift {
    /// Looks at a line that no parser matched.
    pub fn unmatched_line(&mut self, line: &str) {
        let clean = prefix::without_colour(line);
        self.unmatched(&prefix::split(&clean), &clean);
    }

    /// `unmatched_line` of a line already cleaned (`clean`) and split.
    pub fn unmatched(&mut self, split: &prefix::Prefixed<'_>, clean: &str) {
        if split.origin != Origin::Asterisk {
            return;
        }
        if let Some(version) = version_banner(split.message) {
            if self.version.as_deref() != Some(version) {
                if self.version.is_some() {
                    self.previous_version = self.version.take();
                }
                self.version = Some(version.to_string());
            }
            return;
        }
        let Some(module) = split.module else {
            return;
        };
        let base = module.rsplit('/').next().unwrap_or(module);
        let watched = WATCHED_MODULES
            .iter()
            .any(|m| base == *m || (*m == "res_pjsip" && module.starts_with("res_pjsip")));
        if !watched {
            return;
        }
        let lower = split.message.to_ascii_lowercase();
        if !FAILURE_WORDS.iter().any(|w| lower.contains(w)) {
            return;
        }
        self.unmatched += 1;
        let mut sample: String = clean.trim_end().to_string();
        if sample.len() > SAMPLE_MAX {
            let mut end = SAMPLE_MAX;
            while !sample.is_char_boundary(end) {
                end -= 1;
            }
            sample.truncate(end);
            sample.push('…');
        }
        self.samples.push_back(sample);
        while self.samples.len() > SAMPLES {
            self.samples.pop_front();
        }
    }
}

/// `Asterisk 20.5.0, Copyright ...` or `Asterisk 18.9-cert7 built by ...`:
/// the version, when the message is such a banner.
fn version_banner(message: &str) -> Option<&str> {
    let rest = message.trim_start().strip_prefix("Asterisk ")?;
    let end = rest
        .find(|c: char| c == ',' || c.is_whitespace())
        .unwrap_or(rest.len());
    let version = &rest[..end];
    let starts_with_digit = version.bytes().next().is_some_and(|b| b.is_ascii_digit());
    (starts_with_digit && version.contains('.') && version.len() <= 40).then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_failure_wordings_of_watched_modules_are_counted() {
        let mut d = Drift::default();
        // A rewording (asterisk#1095 era): no "Failed to authenticate".
        d.unmatched_line("[2025-01-10 10:00:00] NOTICE[12] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '<sip:1@h>' failed for '203.0.113.5:5060' (callid: x) - Authentication refused");
        // Not a watched module, no failure word: not counted.
        d.unmatched_line("[2025-01-10 10:00:00] NOTICE[12] pbx.c: Call failed");
        d.unmatched_line(
            "[2025-01-10 10:00:00] NOTICE[12] chan_sip.c: Peer '100' is now Reachable",
        );
        assert_eq!(d.unmatched, 1);
        assert!(d.samples[0].contains("Authentication refused"));
        for _ in 0..5 {
            d.unmatched_line("[x] WARNING[1] manager.c: \u{1b}[1;31mUnauthorized\u{1b}[0m thing");
        }
        assert_eq!(d.unmatched, 6);
        assert_eq!(d.samples.len(), SAMPLES);
        assert!(!d.samples[2].contains('\u{1b}'));
    }

    #[test]
    fn the_version_banner_is_noted_and_a_change_reported() {
        let mut d = Drift::default();
        d.unmatched_line("[2025-01-10 10:00:00] VERBOSE[1] asterisk.c: Asterisk 20.5.0, Copyright (C) 1999 - 2023, Sangoma Technologies Corporation and others.");
        assert_eq!(d.version.as_deref(), Some("20.5.0"));
        assert_eq!(d.previous_version, None);
        d.unmatched_line("[2025-02-10 10:00:00] VERBOSE[1] asterisk.c: Asterisk 20.12.0 built by root @ pbx on a x86_64 running Linux");
        assert_eq!(d.version.as_deref(), Some("20.12.0"));
        assert_eq!(d.previous_version.as_deref(), Some("20.5.0"));
        assert_eq!(d.unmatched, 0);
        // Not a banner.
        d.unmatched_line("[x] NOTICE[1] asterisk.c: Asterisk Ready.");
        assert_eq!(d.version.as_deref(), Some("20.12.0"));
    }
}
