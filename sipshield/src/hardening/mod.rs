//! Hardening audit: reads a host's configuration under a root directory and
//! names what an attacker on the Internet would use first (weak SIP and AMI
//! secrets, guest calls that reach trunks, management ports open to the
//! world, no lockout, no IPS), each with the exact line that fixes it.
//!
//! `conf` reads the real file formats (Asterisk, sshd, PAM, MySQL, Apache,
//! fail2ban, /proc/net); `checks` turns what they read into findings, one
//! module per area. Nothing here needs root: files are only read.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub mod checks;
pub mod conf;
pub mod secret;

/// How bad a finding is; ordered so `>=` means "at least as bad".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The part of the host a check looks at; the human report groups by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Area {
    Asterisk,
    Ssh,
    Pam,
    Mysql,
    Web,
    Services,
    Ips,
}

impl Area {
    pub const ALL: [Area; 7] = [
        Area::Asterisk,
        Area::Ssh,
        Area::Pam,
        Area::Mysql,
        Area::Web,
        Area::Services,
        Area::Ips,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Area::Asterisk => "Asterisk",
            Area::Ssh => "SSH",
            Area::Pam => "PAM",
            Area::Mysql => "MySQL",
            Area::Web => "Web",
            Area::Services => "Services",
            Area::Ips => "IPS",
        }
    }
}

/// One problem on the host and the line that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable check id, e.g. `sip.weak-secret`.
    pub id: &'static str,
    pub severity: Severity,
    /// Path relative to the audited root, e.g. `etc/asterisk/sip.conf`.
    pub file: String,
    /// 1-based line of the offending setting; `None` when the problem is a
    /// missing setting or a missing file.
    pub line: Option<u32>,
    /// What was found. Never contains a secret beyond its first character.
    pub message: String,
    /// What to write, and where.
    pub fix: String,
    #[serde(skip)]
    pub area: Area,
}

/// A check that did not run because its input is absent or unreadable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub area: Area,
    /// Which checks, e.g. `chan_sip` or `mysql.bind-address`.
    pub checks: String,
    pub reason: String,
}

/// Everything the audit found, in check order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub skipped: Vec<Skipped>,
}

impl Report {
    /// Findings at or above `min`.
    pub fn at_least(&self, min: Severity) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.severity >= min)
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    pub(crate) fn skip(&mut self, area: Area, checks: &str, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            area,
            checks: checks.to_string(),
            reason: reason.into(),
        });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HardeningError {
    #[error("audit root {0} does not exist")]
    RootMissing(PathBuf),
    #[error("audit root {0} is not a directory")]
    RootNotDir(PathBuf),
    #[error("cannot read audit root {path}: {source}")]
    RootUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Audits the host whose filesystem is at `root` (`/` for the live host).
///
/// Fails only when the root itself cannot be read; a missing or unreadable
/// file below it makes its checks skipped, with the reason, in the report.
pub fn audit(root: &Path) -> Result<Report, HardeningError> {
    let meta = std::fs::metadata(root).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            HardeningError::RootMissing(root.to_path_buf())
        } else {
            HardeningError::RootUnreadable {
                path: root.to_path_buf(),
                source,
            }
        }
    })?;
    if !meta.is_dir() {
        return Err(HardeningError::RootNotDir(root.to_path_buf()));
    }
    std::fs::read_dir(root).map_err(|source| HardeningError::RootUnreadable {
        path: root.to_path_buf(),
        source,
    })?;
    let mut report = Report::default();
    checks::run_all(root, &mut report);
    Ok(report)
}
