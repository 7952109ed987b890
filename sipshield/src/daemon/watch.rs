//! Watched logs: a follower per file (or the journal), its parsers, its
//! counters.

use std::{net::IpAddr, path::PathBuf, time::SystemTime};

use crate::logs::{
    asterisk::Reading,
    drift::Drift,
    failure::Ambiguity,
    journal::{JournalEvent, JournalFollower, JournalSpec},
    prefix::{self, Origin},
    AsteriskParser, FollowOptions, LogFollower, LogSource, Parsed, SshdParser, StartAt,
};

use super::status::{unix, LogStatus};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKind {
    Asterisk,
    Auth,
    /// The journal: each entry says which program wrote it.
    Journal,
}

impl LogKind {
    pub fn name(self) -> &'static str {
        match self {
            LogKind::Asterisk => "asterisk",
            LogKind::Auth => "sshd",
            LogKind::Journal => "journal",
        }
    }
}

/// A log file the config asks for: path, kind, and whether its failures
/// count (see `LogsSection::asterisk_logs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedFile {
    pub path: PathBuf,
    pub kind: LogKind,
    pub failures: bool,
}

/// The log files `config` asks for, `auto` resolved against this host.
pub fn wanted_files(config: &crate::config::Config) -> Vec<WantedFile> {
    config
        .logs
        .asterisk_logs(|p| p.exists())
        .into_iter()
        .map(|l| WantedFile {
            path: l.path,
            kind: LogKind::Asterisk,
            failures: l.failures,
        })
        .chain(config.logs.auth.iter().map(|p| WantedFile {
            path: p.clone(),
            kind: LogKind::Auth,
            failures: true,
        }))
        .collect()
}

/// Where the lines come from.
enum Feed {
    File {
        options: FollowOptions,
        /// `None` while the file cannot be opened (e.g. permissions):
        /// retried on every poll.
        follower: Option<LogFollower>,
    },
    Journal {
        spec: JournalSpec,
        follower: Option<JournalFollower>,
        /// The last entry handled, and whether the database has it yet.
        cursor: Option<String>,
        cursor_unsaved: bool,
        entries: u64,
    },
}

/// Journal entries handled per poll at most: a backlog of a million
/// entries must not stall the event loop (the rest wait in the queue).
const JOURNAL_PER_POLL: usize = 20_000;

pub struct LogWatch {
    /// The file, or the journal as `status` names it.
    pub path: PathBuf,
    pub kind: LogKind,
    feed: Feed,
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
    /// Lines with two readings charged to the one the kernel saw send.
    tie_broken: u64,
    /// `false`: only known-good events are taken (the failures are counted
    /// from another log).
    counts_failures: bool,
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
        LogWatch::with_feed(path, kind, Feed::File { options, follower })
    }

    /// An Asterisk log; `failures: false` takes only its known-good events.
    pub fn asterisk(path: PathBuf, failures: bool, from_start: bool) -> LogWatch {
        LogWatch::file(
            &WantedFile {
                path,
                kind: LogKind::Asterisk,
                failures,
            },
            from_start,
        )
    }

    /// Follows a wanted file.
    pub fn file(wanted: &WantedFile, from_start: bool) -> LogWatch {
        let mut w = LogWatch::new(wanted.path.clone(), wanted.kind, from_start);
        w.counts_failures = wanted.failures;
        w
    }

    /// This watch follows `wanted` as it asks.
    pub fn follows(&self, wanted: &WantedFile) -> bool {
        self.path == wanted.path
            && self.kind == wanted.kind
            && self.counts_failures == wanted.failures
    }

    /// Follows the journal per `spec`, after `cursor` when one was stored.
    pub fn journal(spec: JournalSpec, cursor: Option<String>) -> LogWatch {
        let follower = match JournalFollower::start(spec.clone(), cursor.clone()) {
            Ok(f) => Some(f),
            Err(e) => {
                log::error!("cannot follow the journal: {e}");
                None
            }
        };
        log::info!("following {}", spec.describe());
        LogWatch::with_feed(
            PathBuf::from(spec.describe()),
            LogKind::Journal,
            Feed::Journal {
                spec,
                follower,
                cursor,
                cursor_unsaved: false,
                entries: 0,
            },
        )
    }

    /// The journal followed, if this watch is one.
    pub fn journal_spec(&self) -> Option<&JournalSpec> {
        match &self.feed {
            Feed::Journal { spec, .. } => Some(spec),
            Feed::File { .. } => None,
        }
    }

    /// The last journal entry handled, stored or not.
    pub fn journal_cursor(&self) -> Option<String> {
        match &self.feed {
            Feed::Journal { cursor, .. } => cursor.clone(),
            Feed::File { .. } => None,
        }
    }

    /// The journal cursor (database key and value) of the last entry
    /// handled, once per new position: stored with what those entries
    /// counted.
    pub fn take_cursor(&mut self) -> Option<(String, String)> {
        match &mut self.feed {
            Feed::Journal {
                spec,
                cursor: Some(c),
                cursor_unsaved,
                ..
            } if *cursor_unsaved => {
                *cursor_unsaved = false;
                Some((spec.cursor_key(), c.clone()))
            }
            _ => None,
        }
    }

    fn with_feed(path: PathBuf, kind: LogKind, feed: Feed) -> LogWatch {
        LogWatch {
            path,
            kind,
            feed,
            failures: 0,
            last_match: None,
            warned: false,
            drift: Drift::default(),
            drift_warned: None,
            version_reported: None,
            nobody: (0, None),
            tie_broken: 0,
            counts_failures: true,
        }
    }

    /// New failure and login lines since the last poll, in log order.
    /// `seen`: the kernel saw this address send lately (the tie-break for a
    /// line with two readings).
    pub fn poll(&mut self, seen: &dyn Fn(IpAddr) -> bool) -> Vec<Parsed> {
        let mut found = Vec::new();
        let kind = self.kind;
        let mut reader = LineReader {
            found: &mut found,
            drift: &mut self.drift,
            nobody: &mut self.nobody,
            tie_broken: &mut self.tie_broken,
            seen,
        };
        let result: Result<(), String> = match &mut self.feed {
            Feed::File { options, follower } => {
                if follower.is_none() {
                    *follower = LogFollower::new(&self.path, options.clone()).ok();
                }
                match follower.as_mut() {
                    None => Ok(()),
                    Some(f) => f
                        .poll_lines(|line| match kind {
                            LogKind::Auth => reader.sshd(line),
                            _ => reader.asterisk(line),
                        })
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                }
            }
            Feed::Journal {
                follower,
                cursor,
                cursor_unsaved,
                entries,
                ..
            } => {
                let mut ended = Ok(());
                for event in follower
                    .as_ref()
                    .map(|f| f.drain(JOURNAL_PER_POLL))
                    .unwrap_or_default()
                {
                    match event {
                        JournalEvent::Entry(e) => {
                            *entries += 1;
                            reader.journal_entry(&e);
                            *cursor = Some(e.cursor);
                            *cursor_unsaved = true;
                        }
                        JournalEvent::Ended(why) => ended = Err(why),
                    }
                }
                ended
            }
        };
        if !self.counts_failures {
            found.retain(|p| p.as_failure().is_none());
        }
        self.report_drift();
        match result {
            Ok(()) => {
                if self.kind != LogKind::Journal {
                    self.warned = false;
                }
            }
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
            present: match &self.feed {
                Feed::File { .. } => self.path.exists(),
                Feed::Journal { follower, .. } => follower.as_ref().is_some_and(|f| f.is_running()),
            },
            lines: match &self.feed {
                Feed::File { follower, .. } => follower.as_ref().map_or(0, |f| f.stats().lines),
                Feed::Journal { entries, .. } => *entries,
            },
            failures: self.failures,
            last_match: self.last_match.map(unix),
            charged_nobody: self.nobody.0,
            charged_by_sighting: self.tie_broken,
            charged_nobody_sample: self.nobody.1.clone(),
            unmatched_failures: self.drift.unmatched,
            unmatched_samples: self.drift.samples.iter().cloned().collect(),
            asterisk_version: self.drift.version.clone(),
            previous_asterisk_version: self.drift.previous_version.clone(),
        }
    }
}

/// Reads lines into failures, the charged-nobody count and the drift alarm.
struct LineReader<'a> {
    found: &'a mut Vec<Parsed>,
    drift: &'a mut Drift,
    nobody: &'a mut (u64, Option<String>),
    tie_broken: &'a mut u64,
    seen: &'a dyn Fn(IpAddr) -> bool,
}

impl LineReader<'_> {
    fn asterisk(&mut self, line: &str) {
        // One clean and split per line, for the parser and the drift alarm.
        let clean = prefix::without_colour(line);
        let split = prefix::split(&clean);
        self.asterisk_split(&split, &clean, line, line.len());
    }

    fn asterisk_split(
        &mut self,
        split: &prefix::Prefixed<'_>,
        clean: &str,
        line: &str,
        len: usize,
    ) {
        match AsteriskParser::new().read_split(split, len) {
            Reading::Charged(parsed) => self.found.push(parsed),
            Reading::Ambiguous(a) => self.tie_break(&a, LogSource::Asterisk, line),
            Reading::Nobody => {
                self.nobody.0 += 1;
                self.nobody.1 = Some(sample_of(line));
            }
            Reading::Silent => self.drift.unmatched(split, clean),
        }
    }

    /// Two readings: the one candidate the kernel saw send, else nobody.
    /// The kernel's source table is an LRU a flood can empty, so a miss
    /// decides nothing; exactly one sighting decides.
    fn tie_break(&mut self, a: &Ambiguity, source: LogSource, line: &str) {
        let mut seen = a.candidates().filter(|ip| (self.seen)(*ip));
        match (seen.next(), seen.next()) {
            (Some(ip), None) => {
                log::info!(
                    "two readings of a line, {ip} charged (the only one the kernel saw send): {}",
                    sample_of(line)
                );
                *self.tie_broken += 1;
                self.found.push(Parsed::failure(a.kind, source, ip));
            }
            _ => {
                self.nobody.0 += 1;
                self.nobody.1 = Some(sample_of(line));
            }
        }
    }

    fn sshd(&mut self, line: &str) {
        let split = prefix::split(line);
        if matches!(split.origin, Origin::Sshd | Origin::Unknown) {
            self.sshd_message(split.message, line);
        }
    }

    fn sshd_message(&mut self, message: &str, line: &str) {
        let parser = SshdParser::new();
        if let Some(parsed) = parser.parse_message(message) {
            self.found.push(parsed);
        } else if let Some(a) = parser.ambiguity(message) {
            self.tie_break(&a, LogSource::Sshd, line);
        }
    }

    /// An entry whose writer journald named; others are not ours.
    fn journal_entry(&mut self, e: &crate::logs::journal::Entry) {
        match e.program {
            Origin::Sshd => self.sshd_message(&e.message, &e.message),
            Origin::Asterisk => {
                let clean = prefix::without_colour(&e.message);
                let split = prefix::split_known(&clean, Origin::Asterisk, e.via_syslog);
                // A line the stream may have cut: its tail is not trusted.
                let len = if e.maybe_cut {
                    usize::MAX
                } else {
                    e.message.len()
                };
                self.asterisk_split(&split, &clean, &e.message, len);
            }
            Origin::OtherProgram | Origin::Unknown => {}
        }
    }
}
