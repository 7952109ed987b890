//! Watched log files: a follower per path, its parser, its counters.

use std::{path::PathBuf, time::SystemTime};

use crate::logs::{AsteriskParser, FollowOptions, LogFollower, Parsed, SshdParser, StartAt};

use super::status::{unix, LogStatus};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKind {
    Asterisk,
    Auth,
}

impl LogKind {
    pub fn name(self) -> &'static str {
        match self {
            LogKind::Asterisk => "asterisk",
            LogKind::Auth => "sshd",
        }
    }
}

pub struct LogWatch {
    pub path: PathBuf,
    pub kind: LogKind,
    options: FollowOptions,
    /// `None` while the file cannot be opened (e.g. permissions): retried
    /// on every poll.
    follower: Option<LogFollower>,
    failures: u64,
    last_match: Option<SystemTime>,
    warned: bool,
}

impl LogWatch {
    pub fn new(path: PathBuf, kind: LogKind, from_start: bool) -> LogWatch {
        let options = FollowOptions {
            start: if from_start {
                StartAt::Beginning
            } else {
                StartAt::End
            },
            ..FollowOptions::default()
        };
        let follower = match LogFollower::new(&path, options.clone()) {
            Ok(f) => Some(f),
            Err(e) => {
                log::error!("cannot watch {} yet (retrying): {e}", path.display());
                None
            }
        };
        LogWatch {
            path,
            kind,
            options,
            follower,
            failures: 0,
            last_match: None,
            warned: false,
        }
    }

    /// New failure and login lines since the last poll, in log order.
    pub fn poll(&mut self) -> Vec<Parsed> {
        let mut found = Vec::new();
        if self.follower.is_none() {
            self.follower = LogFollower::new(&self.path, self.options.clone()).ok();
        }
        let Some(f) = self.follower.as_mut() else {
            return found;
        };
        let kind = self.kind;
        let result = f.poll_lines(|line| {
            let parsed = match kind {
                LogKind::Asterisk => AsteriskParser::new().parse(line),
                LogKind::Auth => SshdParser::new().parse(line),
            };
            if let Some(parsed) = parsed {
                found.push(parsed);
            }
        });
        match result {
            Ok(_) => self.warned = false,
            Err(e) if !self.warned => {
                log::warn!("{}: {e}", self.path.display());
                self.warned = true;
            }
            Err(_) => {}
        }
        let failures = found.iter().filter(|p| p.as_failure().is_some()).count();
        if failures > 0 {
            self.failures += failures as u64;
            self.last_match = Some(SystemTime::now());
        }
        found
    }

    pub fn status(&self) -> LogStatus {
        LogStatus {
            path: self.path.display().to_string(),
            kind: self.kind.name(),
            present: self.path.exists(),
            lines: self.follower.as_ref().map_or(0, |f| f.stats().lines),
            failures: self.failures,
            last_match: self.last_match.map(unix),
        }
    }
}
