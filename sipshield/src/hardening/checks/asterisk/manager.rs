//! The Asterisk Manager Interface (manager.conf): whoever logs in can
//! originate calls and, with `system`/`command`, run programs as Asterisk.

use crate::hardening::conf::asterisk::{AsteriskConf, Section};
use crate::hardening::conf::is_true;
use crate::hardening::{Report, Severity};

use super::{acl_restricts, at, describe_bind, host_path, is_loopback_text, weak_secret, AREA};

/// Write classes that amount to running code or placing arbitrary calls.
const DANGEROUS_WRITE: [&str; 3] = ["all", "system", "command"];

pub(super) fn check(conf: &AsteriskConf, report: &mut Report) {
    let general = conf.section("general");
    let path = host_path(general.map_or(&conf.file, |g| &g.origin.file));
    let enabled = general.and_then(|g| g.get("enabled"));
    if !enabled.is_some_and(|v| is_true(&v.value)) {
        report.skip(
            AREA,
            "AMI checks",
            "the AMI is disabled (manager.conf [general] enabled is not yes)",
        );
        return;
    }
    let bind = general.and_then(|g| g.get("bindaddr"));
    let exposed = !bind.is_some_and(|b| is_loopback_text(&b.value));
    if exposed {
        let shown = bind.map_or("all addresses (bindaddr not set)".to_string(), |b| {
            describe_bind(&b.value)
        });
        let origin = bind.map_or_else(
            || enabled.map(|e| e.origin.clone()),
            |b| Some(b.origin.clone()),
        );
        if let Some(origin) = origin {
            report.findings.push(at(
                AREA,
                "ami.public-bind",
                Severity::High,
                &origin,
                format!(
                    "the AMI (port {}) listens on {shown}",
                    general.and_then(|g| g.get_str("port")).unwrap_or("5038")
                ),
                format!("bindaddr = 127.0.0.1 in [general] of {path}"),
            ));
        }
    }
    for user in conf.objects().filter(|s| s.name != "general") {
        check_user(user, exposed, report);
    }
}

fn check_user(user: &Section, exposed: bool, report: &mut Report) {
    let name = user.name.as_str();
    let path = host_path(&user.origin.file);
    if let Some(secret) = user.get("secret") {
        weak_secret(
            "ami.weak-secret",
            &format!("AMI user [{name}]"),
            user,
            secret,
            &[name],
            format!("secret = <random, 16+ characters> in [{name}] of {path}"),
            report,
        );
    }
    if !exposed {
        return;
    }
    let restricted = acl_restricts(user);
    if !restricted {
        let permit_only = user.all("permit").next().is_some();
        let message = if permit_only {
            format!("AMI user [{name}] has permit but no deny: Asterisk allows by default, so permit alone restricts nothing")
        } else {
            format!("AMI user [{name}] has no deny/permit: it can log in from any address")
        };
        report.findings.push(at(
            AREA,
            "ami.no-acl",
            Severity::Medium,
            &user.origin,
            message,
            format!("deny = 0.0.0.0/0.0.0.0 then permit = 127.0.0.1/255.255.255.255 in [{name}] of {path}"),
        ));
    }
    let Some(write) = user.get("write") else {
        return;
    };
    let dangerous: Vec<&str> = write
        .value
        .split(',')
        .map(str::trim)
        .filter(|c| DANGEROUS_WRITE.iter().any(|d| d.eq_ignore_ascii_case(c)))
        .collect();
    if dangerous.is_empty() {
        return;
    }
    let remote_permit = user.all("permit").any(|p| !is_loopback_text(&p.value));
    if restricted && !remote_permit {
        return;
    }
    report.findings.push(at(
        AREA,
        "ami.write-all",
        Severity::Medium,
        &write.origin,
        format!(
            "AMI user [{name}] may write `{}` from non-loopback addresses: a stolen login runs shell commands as Asterisk",
            dangerous.join(",")
        ),
        format!("write = <only the classes needed, e.g. originate,call> in [{name}] of {path}, or permit only 127.0.0.1"),
    ));
}
