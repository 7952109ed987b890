//! Watched log files: a follower per path, its parser, its counters.

use std::{path::PathBuf, time::SystemTime};

use crate::logs::{
    asterisk::Reading, drift::Drift, prefix, AsteriskParser, FollowOptions, LogFollower, Parsed,
    SshdParser, StartAt,
};

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
    /// Failure-looking lines no parser knows, and the Asterisk version.
    drift: Drift,
    /// When the drift was last warned about, and at which count.
    drift_warned: Option<(std::time::Instant, u64)>,
    version_reported: Option<String>,
    /// Failure lines that charged nobody, and the latest of them.
    nobody: (u64, Option<String>),
}

/// A log line as a status sample: at most 300 bytes.
fn sample_of(line: &str) -> String {
    let line = line.trim_end();
    let mut end = line.len().min(300);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_string()
}

/// The drift warning is repeated at most this often while it grows.
const DRIFT_WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

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
            drift: Drift::default(),
            drift_warned: None,
            version_reported: None,
            nobody: (0, None),
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
        let drift = &mut self.drift;
        let nobody = &mut self.nobody;
        let result = f.poll_lines(|line| match kind {
            LogKind::Asterisk => {
                // One clean and split per line, for the parser and the drift alarm.
                let clean = prefix::without_colour(line);
                let split = prefix::split(&clean);
                match AsteriskParser::new().read_split(&split, line.len()) {
                    Reading::Charged(parsed) => found.push(parsed),
                    Reading::Nobody => {
                        nobody.0 += 1;
                        nobody.1 = Some(sample_of(line));
                    }
                    Reading::Silent => drift.unmatched(&split, &clean),
                }
            }
            LogKind::Auth => {
                if let Some(parsed) = SshdParser::new().parse(line) {
                    found.push(parsed);
                }
            }
        });
        self.report_drift();
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

    /// Warns when failure-looking lines go unmatched (once an hour while
    /// their count grows) and when the Asterisk version changes.
    fn report_drift(&mut self) {
        let d = &self.drift;
        if d.unmatched > 0 {
            let due = match self.drift_warned {
                None => true,
                Some((at, count)) => d.unmatched > count && at.elapsed() >= DRIFT_WARN_EVERY,
            };
            if due {
                log::warn!(
                    "{}: {} failure-looking line(s) match no parser (Asterisk {}); a new wording? latest: {}",
                    self.path.display(),
                    d.unmatched,
                    d.version.as_deref().unwrap_or("version unknown"),
                    d.samples.back().map(String::as_str).unwrap_or("")
                );
                self.drift_warned = Some((std::time::Instant::now(), d.unmatched));
            }
        }
        if d.version.is_some() && d.version != self.version_reported {
            match (&self.version_reported, &d.version) {
                (Some(old), Some(new)) => log::warn!(
                    "{}: Asterisk {old} -> {new}: check that failures are still matched (sipshield status)",
                    self.path.display()
                ),
                (None, Some(new)) => log::info!("{}: Asterisk {new}", self.path.display()),
                _ => {}
            }
            self.version_reported = d.version.clone();
        }
    }

    pub fn status(&self) -> LogStatus {
        LogStatus {
            path: self.path.display().to_string(),
            kind: self.kind.name(),
            present: self.path.exists(),
            lines: self.follower.as_ref().map_or(0, |f| f.stats().lines),
            failures: self.failures,
            last_match: self.last_match.map(unix),
            charged_nobody: self.nobody.0,
            charged_nobody_sample: self.nobody.1.clone(),
            unmatched_failures: self.drift.unmatched,
            unmatched_samples: self.drift.samples.iter().cloned().collect(),
            asterisk_version: self.drift.version.clone(),
            previous_asterisk_version: self.drift.previous_version.clone(),
        }
    }
}
