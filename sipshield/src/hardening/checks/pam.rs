//! PAM: an account lockout in sshd's auth stack, so password guessing over
//! SSH stops after a few tries per account.

use crate::hardening::conf::pam::{PamStack, PAM_DIR};
use crate::hardening::conf::sshd::SshdConfig;
use crate::hardening::conf::{ConfError, HostRoot};
use crate::hardening::{Area, Report, Severity};

use super::{at, in_file, note_unreadable, skip_reason};

const AREA: Area = Area::Pam;
const FAILLOCK_CONF: &str = "etc/security/faillock.conf";
/// pam_faillock's built-in `deny` (pam_tally2 has none: no lockout).
const FAILLOCK_DEFAULT_DENY: u32 = 3;

pub fn run(host: &HostRoot, report: &mut Report) {
    let stack = match PamStack::read(host, "sshd") {
        Ok(stack) => stack,
        Err(ConfError::NotFound(_)) => {
            report.skip(
                AREA,
                "pam.ssh-lockout",
                format!("no sshd PAM stack found ({PAM_DIR}/sshd)"),
            );
            return;
        }
        Err(e) => {
            report.skip(AREA, "pam.ssh-lockout", skip_reason(&e));
            return;
        }
    };
    note_unreadable(report, AREA, "pam.ssh-lockout", &stack.unreadable);
    if let Ok(sshd) = SshdConfig::read(host) {
        if !super::ssh::accepts_passwords(&sshd) {
            report.skip(
                AREA,
                "pam.ssh-lockout",
                "sshd accepts no passwords, so there is nothing for a lockout to count",
            );
            return;
        }
    }
    let conf_deny = faillock_conf_deny(host);
    let mut disabled_at = None;
    for rule in stack.rules.iter().filter(|r| r.kind == "auth") {
        let deny = match rule.module.as_str() {
            "pam_faillock.so" => rule
                .arg("deny")
                .and_then(|d| d.parse::<u32>().ok())
                .or(conf_deny)
                .unwrap_or(FAILLOCK_DEFAULT_DENY),
            "pam_tally2.so" | "pam_tally.so" => {
                rule.arg("deny").and_then(|d| d.parse().ok()).unwrap_or(0)
            }
            _ => continue,
        };
        if deny > 0 {
            return;
        }
        disabled_at.get_or_insert(rule.origin.clone());
    }
    let fix = "auth required pam_faillock.so preauth silent deny=5 unlock_time=900 before the first auth line (or @include common-auth) of /etc/pam.d/sshd, and auth [default=die] pam_faillock.so authfail after it".to_string();
    report.findings.push(match disabled_at {
        Some(origin) => at(
            AREA,
            "pam.ssh-lockout",
            Severity::Medium,
            &origin,
            "the sshd PAM stack has a lockout module with deny=0 (never locks)".into(),
            fix,
        ),
        None => in_file(
            AREA,
            "pam.ssh-lockout",
            Severity::Medium,
            &stack.service_file,
            "no pam_faillock/pam_tally2 lockout in the sshd PAM auth stack (includes followed): passwords can be guessed without limit".into(),
            fix,
        ),
    });
}

/// `deny = N` from /etc/security/faillock.conf, when set.
fn faillock_conf_deny(host: &HostRoot) -> Option<u32> {
    let text = host.read(FAILLOCK_CONF).ok()?;
    text.lines()
        .rev()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == "deny")
        .find_map(|(_, v)| v.trim().parse().ok())
}
