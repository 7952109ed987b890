//! Log lines → failure events.
//!
//! `follow` reads new lines from log files across rotations; `prefix` takes
//! off the timestamp/program prefix; `asterisk`, `security_event` and `sshd`
//! recognise failure messages and name the remote address they concern.
//!
//! Parsing is allocation-free for lines that are not failures (nearly all of
//! them): the prefix is split by hand and messages are matched from their
//! first byte. Only res_security_log lines are tokenized.

mod addr;
pub mod asterisk;
pub mod drift;
pub mod failure;
pub mod follow;
pub mod journal;
pub mod prefix;
pub mod security_event;
pub mod sshd;

pub use asterisk::AsteriskParser;
pub use failure::{Failure, FailureKind, KnownGood, LogSource, Parsed, SshLogin};
pub use follow::{FollowError, FollowOptions, FollowStats, LogFollower, StartAt};
pub use sshd::SshdParser;

use prefix::Origin;

/// Parses a line from any log we know, deciding per line whether Asterisk or
/// sshd wrote it. Use [`AsteriskParser::parse`] or [`SshdParser::parse`]
/// when the file is known to hold one program's lines.
pub fn parse_line(line: &str) -> Option<Parsed> {
    let clean = prefix::without_colour(line);
    let split = prefix::split(&clean);
    match split.origin {
        Origin::Asterisk => AsteriskParser::new().parse_split(&split, line.len()),
        Origin::Sshd => SshdParser::new().parse_message(split.message),
        Origin::Unknown => AsteriskParser::new()
            .parse_split(&split, line.len())
            .or_else(|| SshdParser::new().parse_message(split.message)),
        Origin::OtherProgram => None,
    }
}
