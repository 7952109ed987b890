//! `[logs]`: which log files the daemon follows.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::{
    duration::human,
    error::{KeyPath, Problems},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogsSection {
    /// Asterisk logs (messages, security): SIP, AMI and IAX2 failures.
    pub asterisk: Vec<PathBuf>,
    /// sshd's log (auth.log, secure): SSH failures.
    pub auth: Vec<PathBuf>,
    /// journalctl match groups to follow (alternatives of `FIELD=value`
    /// words); empty: sshd's units when no `auth` file exists.
    pub journal: Vec<String>,
    /// A journal directory instead of the system journal; empty: the system's.
    pub journal_directory: PathBuf,
    /// Charge a line with two readings to the one candidate the kernel saw
    /// send lately (off: such lines charge nobody).
    pub tie_break: bool,
    /// Read files from their beginning instead of their end.
    pub from_start: bool,
    /// How often files are checked for new lines and rotation.
    #[serde(with = "human")]
    pub poll_interval: Duration,
}

impl Default for LogsSection {
    fn default() -> Self {
        LogsSection {
            asterisk: vec![PathBuf::from(AUTO_ASTERISK_LOGS)],
            auth: vec![PathBuf::from("/var/log/auth.log")],
            journal: Vec::new(),
            journal_directory: PathBuf::new(),
            tie_break: false,
            from_start: false,
            poll_interval: Duration::from_millis(50),
        }
    }
}

/// `asterisk = ["auto"]`: the Asterisk logs this host has (see
/// `LogsSection::asterisk_logs`).
pub const AUTO_ASTERISK_LOGS: &str = "auto";

/// One Asterisk log to follow, and whether its failures count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsteriskLog {
    pub path: PathBuf,
    /// `false`: only its `SuccessfulAuth` events are read (the failures
    /// are already in the other log: counted once).
    pub failures: bool,
}

impl LogsSection {
    /// The Asterisk logs to follow. `auto` is FreePBX's `full` when it
    /// exists, else Asterisk's `messages` (followed once it appears), plus
    /// `security` when it exists, for its known-good sources only: a pjsip
    /// failure is both a NOTICE line and a security event, and counting
    /// both would halve every threshold.
    pub fn asterisk_logs(&self, exists: impl Fn(&std::path::Path) -> bool) -> Vec<AsteriskLog> {
        let mut out: Vec<AsteriskLog> = Vec::new();
        for path in &self.asterisk {
            if path.as_os_str() != AUTO_ASTERISK_LOGS {
                out.push(AsteriskLog {
                    path: path.clone(),
                    failures: true,
                });
                continue;
            }
            let dir = std::path::Path::new("/var/log/asterisk");
            let full = dir.join("full");
            let main = if exists(&full) {
                full
            } else {
                dir.join("messages")
            };
            out.push(AsteriskLog {
                path: main,
                failures: true,
            });
            let security = dir.join("security");
            if exists(&security) {
                out.push(AsteriskLog {
                    path: security,
                    failures: false,
                });
            }
        }
        let mut seen = Vec::new();
        out.retain(|l| {
            let fresh = !seen.contains(&l.path);
            seen.push(l.path.clone());
            fresh
        });
        out
    }

    /// What to follow in the journal: the configured matches, or sshd's
    /// units when no auth log exists (`auth_exists` tells, for tests);
    /// `None` when nothing is to be followed there.
    pub fn journal_spec(
        &self,
        auth_exists: impl Fn(&std::path::Path) -> bool,
    ) -> Option<crate::logs::journal::JournalSpec> {
        let matches: Vec<String> = if !self.journal.is_empty() {
            self.journal.clone()
        } else if !self.auth.iter().any(|p| auth_exists(p)) {
            crate::logs::journal::DEFAULT_SSHD_MATCHES
                .iter()
                .map(|m| m.to_string())
                .collect()
        } else {
            return None;
        };
        Some(crate::logs::journal::JournalSpec {
            matches,
            directory: (!self.journal_directory.as_os_str().is_empty())
                .then(|| self.journal_directory.clone()),
            from_start: self.from_start,
        })
    }

    pub(crate) fn validate(&self, problems: &mut Problems) {
        let section = KeyPath::new("logs");
        let mut seen = Vec::new();
        for (list, paths) in [("asterisk", &self.asterisk), ("auth", &self.auth)] {
            for (i, path) in paths.iter().enumerate() {
                let key = section.key(list).index(i);
                if path.as_os_str().is_empty() {
                    problems.push(key, "must not be empty");
                } else if seen.contains(&path) {
                    // Following one file twice would count every failure twice.
                    problems.push(key, format!("{} is listed twice", path.display()));
                }
                seen.push(path);
            }
        }
        for (i, group) in self.journal.iter().enumerate() {
            if let Err(e) = crate::logs::journal::validate_match(group) {
                problems.push(section.key("journal").index(i), e.to_string());
            } else if self.journal[..i].contains(group) {
                problems.push(section.key("journal").index(i), "is listed twice");
            }
        }
        if self.poll_interval.is_zero() {
            problems.push(section.key("poll_interval"), "must be longer than 0");
        } else if self.poll_interval > Duration::from_secs(60) {
            problems.push(section.key("poll_interval"), "must be at most 1m");
        }
    }
}
