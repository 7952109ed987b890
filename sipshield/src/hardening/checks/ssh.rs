//! sshd: root logins, passwords, empty passwords and the port scanners try
//! first. Effective values follow sshd: first global value wins, defaults
//! apply when a keyword is absent, `Match` blocks only for their matches.

use crate::hardening::conf::sshd::{SshdConfig, SSHD_CONFIG};
use crate::hardening::conf::{ConfError, HostRoot};
use crate::hardening::{Area, Report, Severity};

use super::{at, in_file, note_unreadable, skip_reason};

const AREA: Area = Area::Ssh;

pub fn run(host: &HostRoot, report: &mut Report) {
    let conf = match SshdConfig::read(host) {
        Ok(conf) => conf,
        Err(ConfError::NotFound(_)) => {
            report.skip(
                AREA,
                "SSH checks",
                "no sshd configuration found (etc/ssh/sshd_config)",
            );
            return;
        }
        Err(e) => {
            report.skip(AREA, "SSH checks", skip_reason(&e));
            return;
        }
    };
    note_unreadable(report, AREA, "SSH checks", &conf.unreadable);
    root_login(&conf, report);
    password_auth(&conf, report);
    empty_passwords(&conf, report);
    default_port(&conf, report);
}

fn root_login(conf: &SshdConfig, report: &mut Report) {
    let fix = "PermitRootLogin prohibit-password (or no) in /etc/ssh/sshd_config, before any Include that sets it".to_string();
    if let Some(e) = conf
        .global("PermitRootLogin")
        .filter(|e| e.first_arg() == "yes")
    {
        report.findings.push(at(
            AREA,
            "ssh.root-login",
            Severity::High,
            &e.origin,
            "sshd lets root log in with a password (PermitRootLogin yes)".into(),
            fix.clone(),
        ));
    }
    for e in conf
        .in_matches("PermitRootLogin")
        .filter(|e| e.first_arg() == "yes")
    {
        report.findings.push(at(
            AREA,
            "ssh.root-login",
            Severity::High,
            &e.origin,
            format!(
                "sshd lets root log in with a password for `Match {}` (PermitRootLogin yes)",
                e.in_match.as_deref().unwrap_or("")
            ),
            format!(
                "PermitRootLogin prohibit-password in that Match block of /{}",
                e.origin.file
            ),
        ));
    }
}

/// Whether sshd would take a password at all, given AuthenticationMethods.
fn methods_allow_passwords(conf: &SshdConfig) -> bool {
    match conf.global("AuthenticationMethods") {
        None => true,
        Some(e) => e
            .args
            .split_whitespace()
            .flat_map(|list| list.split(','))
            .any(|m| {
                m.starts_with("password") || m.starts_with("keyboard-interactive") || m == "any"
            }),
    }
}

/// Whether sshd accepts passwords anywhere (globally or in a Match block);
/// the PAM lockout check is moot when it does not.
pub fn accepts_passwords(conf: &SshdConfig) -> bool {
    let yes = |e: &crate::hardening::conf::sshd::Entry| e.first_arg() == "yes";
    let password = conf.global("PasswordAuthentication").is_none_or(yes);
    let kbd = conf
        .global("KbdInteractiveAuthentication")
        .or_else(|| conf.global("ChallengeResponseAuthentication"))
        .is_none_or(yes);
    let pam = conf.global("UsePAM").is_some_and(yes);
    let in_match = conf.in_matches("PasswordAuthentication").any(yes);
    (methods_allow_passwords(conf) && (password || (kbd && pam))) || in_match
}

fn password_auth(conf: &SshdConfig, report: &mut Report) {
    let fix = "PasswordAuthentication no (and KbdInteractiveAuthentication no) in /etc/ssh/sshd_config, with keys installed first".to_string();
    if methods_allow_passwords(conf) {
        match conf.global("PasswordAuthentication") {
            Some(e) if e.first_arg() == "yes" => report.findings.push(at(
                AREA,
                "ssh.password-auth",
                Severity::Medium,
                &e.origin,
                "sshd accepts passwords (PasswordAuthentication yes): open to brute force".into(),
                fix.clone(),
            )),
            Some(_) => {}
            None => report.findings.push(in_file(
                AREA,
                "ssh.password-auth",
                Severity::Medium,
                SSHD_CONFIG,
                "sshd accepts passwords (PasswordAuthentication not set, default yes): open to brute force".into(),
                fix.clone(),
            )),
        }
        let kbd = conf
            .global("KbdInteractiveAuthentication")
            .or_else(|| conf.global("ChallengeResponseAuthentication"));
        let pam = conf.global("UsePAM").filter(|e| e.first_arg() == "yes");
        if let Some(pam) = pam {
            match kbd {
                Some(e) if e.first_arg() == "yes" => report.findings.push(at(
                    AREA,
                    "ssh.password-auth",
                    Severity::Medium,
                    &e.origin,
                    format!("sshd accepts passwords through PAM ({} yes with UsePAM yes)", e.keyword_name()),
                    fix.clone(),
                )),
                Some(_) => {}
                None => report.findings.push(at(
                    AREA,
                    "ssh.password-auth",
                    Severity::Medium,
                    &pam.origin,
                    "sshd accepts passwords through PAM (KbdInteractiveAuthentication not set, default yes, with UsePAM yes)".into(),
                    fix.clone(),
                )),
            }
        }
    }
    for e in conf
        .in_matches("PasswordAuthentication")
        .filter(|e| e.first_arg() == "yes")
    {
        report.findings.push(at(
            AREA,
            "ssh.password-auth",
            Severity::Medium,
            &e.origin,
            format!(
                "sshd accepts passwords for `Match {}` (PasswordAuthentication yes)",
                e.in_match.as_deref().unwrap_or("")
            ),
            format!(
                "PasswordAuthentication no in that Match block of /{}",
                e.origin.file
            ),
        ));
    }
}

fn empty_passwords(conf: &SshdConfig, report: &mut Report) {
    if let Some(e) = conf
        .global("PermitEmptyPasswords")
        .filter(|e| e.first_arg() == "yes")
    {
        report.findings.push(at(
            AREA,
            "ssh.empty-passwords",
            Severity::High,
            &e.origin,
            "sshd lets accounts with an empty password log in (PermitEmptyPasswords yes)".into(),
            "PermitEmptyPasswords no in /etc/ssh/sshd_config".into(),
        ));
    }
}

fn default_port(conf: &SshdConfig, report: &mut Report) {
    let ports: Vec<_> = conf.all_global("Port").collect();
    let fix = "Port 2222 (any unused port; open it in the firewall first) in /etc/ssh/sshd_config"
        .to_string();
    let message = "sshd listens on port 22, the first port every scanner tries (noise, not a hole)"
        .to_string();
    if ports.is_empty() {
        report.findings.push(in_file(
            AREA,
            "ssh.default-port",
            Severity::Info,
            SSHD_CONFIG,
            message,
            fix,
        ));
    } else if let Some(e) = ports.iter().find(|e| e.first_arg() == "22") {
        report.findings.push(at(
            AREA,
            "ssh.default-port",
            Severity::Info,
            &e.origin,
            message,
            fix,
        ));
    }
}
