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
    /// Read files from their beginning instead of their end.
    pub from_start: bool,
    /// How often files are checked for new lines and rotation.
    #[serde(with = "human")]
    pub poll_interval: Duration,
}

impl Default for LogsSection {
    fn default() -> Self {
        LogsSection {
            asterisk: vec![PathBuf::from("/var/log/asterisk/messages")],
            auth: vec![PathBuf::from("/var/log/auth.log")],
            from_start: false,
            poll_interval: Duration::from_millis(50),
        }
    }
}

impl LogsSection {
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
        if self.poll_interval.is_zero() {
            problems.push(section.key("poll_interval"), "must be longer than 0");
        } else if self.poll_interval > Duration::from_secs(60) {
            problems.push(section.key("poll_interval"), "must be at most 1m");
        }
    }
}
