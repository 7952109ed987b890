//! Asterisk: SIP/IAX2/PJSIP accounts, the AMI, the HTTP server, logging and
//! the dialplan that unauthenticated callers can reach.

use crate::hardening::conf::asterisk::{AsteriskConf, Section, CONFIG_DIR};
use crate::hardening::conf::{is_false, is_true, HostRoot, Origin};
use crate::hardening::secret;
use crate::hardening::{Area, Report, Severity};

use super::{at, in_file, is_loopback_text, note_unreadable, skip_reason};

mod chan_sip;
mod dialplan;
mod injection;
mod manager;
mod options;
mod pjsip;

const AREA: Area = Area::Asterisk;

/// Where calls that no account authenticated end up.
#[derive(Debug, Clone)]
pub(crate) struct GuestEntry {
    pub context: String,
    /// What lets them in, for the message (`chan_sip allowguest`).
    pub via: String,
    pub origin: Origin,
    pub fix: String,
}

pub fn run(host: &HostRoot, report: &mut Report) {
    if !host.is_dir(CONFIG_DIR) {
        report.skip(
            AREA,
            "all Asterisk checks",
            "no Asterisk configuration found (etc/asterisk)",
        );
        return;
    }
    let modules = Modules::read(host);
    let dialplan = read(host, report, "extensions.conf", "dialplan checks");
    let mut guests = Vec::new();
    if let Some(conf) = read_for(
        host,
        report,
        "sip.conf",
        "chan_sip checks",
        &modules,
        "chan_sip.so",
    ) {
        chan_sip::check(&conf, dialplan.as_ref(), &mut guests, report);
    }
    if let Some(conf) = read_for(
        host,
        report,
        "pjsip.conf",
        "PJSIP checks",
        &modules,
        "chan_pjsip.so",
    ) {
        let username_identifier = modules
            .not_loaded("res_pjsip_endpoint_identifier_user.so")
            .is_none();
        pjsip::check(
            &conf,
            dialplan.as_ref(),
            username_identifier,
            &mut guests,
            report,
        );
    }
    if let Some(conf) = read_for(
        host,
        report,
        "iax.conf",
        "IAX2 checks",
        &modules,
        "chan_iax2.so",
    ) {
        check_iax(&conf, report);
    }
    if let Some(conf) = read(host, report, "manager.conf", "AMI checks") {
        manager::check(&conf, report);
    }
    if let Some(conf) = read(host, report, "http.conf", "http.public-bind") {
        check_http(&conf, report);
    }
    if let Some(conf) = read(host, report, "ari.conf", "ari.weak-secret") {
        check_ari(&conf, report);
    }
    check_logger(host, report);
    if let Some(conf) = read(host, report, "asterisk.conf", "asterisk.live-dangerously") {
        options::check(&conf, report);
    }
    if let Some(dialplan) = &dialplan {
        dialplan::guest_outbound(dialplan, &guests, report);
        injection::check(dialplan, report);
    }
}

fn read(host: &HostRoot, report: &mut Report, name: &str, checks: &str) -> Option<AsteriskConf> {
    match AsteriskConf::read(host, name) {
        Ok(conf) => {
            note_unreadable(report, AREA, checks, &conf.unreadable);
            Some(conf)
        }
        Err(e) => {
            report.skip(AREA, checks, skip_reason(&e));
            None
        }
    }
}

fn read_for(
    host: &HostRoot,
    report: &mut Report,
    name: &str,
    checks: &str,
    modules: &Modules,
    module: &str,
) -> Option<AsteriskConf> {
    if let Some(origin) = modules.not_loaded(module) {
        report.skip(
            AREA,
            checks,
            format!("{module} is not loaded ({}:{})", origin.file, origin.line),
        );
        return None;
    }
    read(host, report, name, checks)
}

/// modules.conf: which channel drivers Asterisk loads. A driver that is not
/// loaded cannot be attacked, whatever its config file says.
struct Modules {
    conf: Option<AsteriskConf>,
}

impl Modules {
    fn read(host: &HostRoot) -> Modules {
        Modules {
            conf: AsteriskConf::read(host, "modules.conf").ok(),
        }
    }

    /// Where the module is kept from loading, `None` when it may load.
    fn not_loaded(&self, module: &str) -> Option<Origin> {
        let section = self.conf.as_ref()?.section("modules")?;
        let same = |v: &str| {
            let v = v.trim();
            v == module || v == module.trim_end_matches(".so")
        };
        if let Some(v) = section.all("noload").filter(|v| same(&v.value)).last() {
            return Some(v.origin.clone());
        }
        let autoload = section.get("autoload");
        match autoload {
            Some(a) if is_false(&a.value) => {
                let loaded = section.all("load").any(|v| same(&v.value))
                    || section.all("require").any(|v| same(&v.value));
                (!loaded).then(|| a.origin.clone())
            }
            _ => None,
        }
    }
}

/// chan_sip and PJSIP ACLs: Asterisk permits by default and applies rules in
/// order, so only a `deny` followed by `permit`s (or a named `acl`) restricts.
pub(crate) fn acl_restricts(section: &Section) -> bool {
    let has_deny = section.all("deny").next().is_some();
    let has_permit = section.all("permit").next().is_some();
    (has_deny && has_permit) || section.get("acl").is_some()
}

/// A secret finding with the secret masked.
pub(crate) fn weak_secret(
    id: &'static str,
    what: &str,
    section: &Section,
    value: &crate::hardening::conf::asterisk::Value,
    names: &[&str],
    fix: String,
    report: &mut Report,
) {
    let reasons = secret::weaknesses(&value.value, names);
    if reasons.is_empty() {
        return;
    }
    report.findings.push(at(
        AREA,
        id,
        Severity::High,
        &value.origin,
        format!(
            "{what}: {} {} is {}{}",
            value.key,
            secret::mask(&value.value),
            reasons.join(", "),
            inherited_note(value, section)
        ),
        fix,
    ));
}

/// ` (inherited from [tpl])` when the value was written in a template.
fn inherited_note(value: &crate::hardening::conf::asterisk::Value, section: &Section) -> String {
    let own = value.origin.file == section.origin.file && value.origin.line > section.origin.line;
    if own || section.templates.is_empty() {
        String::new()
    } else {
        format!(" (inherited from [{}])", section.templates.join("], ["))
    }
}

pub(crate) fn host_path(rel: &str) -> String {
    format!("/{rel}")
}

fn check_iax(conf: &AsteriskConf, report: &mut Report) {
    for peer in conf.objects().filter(|s| s.name != "general") {
        let Some(secret) = peer.get("secret") else {
            continue;
        };
        let username = peer.get_str("username").unwrap_or("");
        weak_secret(
            "sip.weak-secret",
            &format!("IAX2 [{}]", peer.name),
            peer,
            secret,
            &[&peer.name, username],
            format!(
                "secret = <random, 16+ characters> in [{}] of {}",
                peer.name,
                host_path(&secret.origin.file)
            ),
            report,
        );
    }
}

/// http.conf: ARI and WebSockets, and the AMI over HTTP. Asterisk's HTTP
/// server only starts with a `bindaddr`, so an absent one is not a finding.
fn check_http(conf: &AsteriskConf, report: &mut Report) {
    let Some(general) = conf.section("general") else {
        return;
    };
    if !general.get_str("enabled").is_some_and(is_true) {
        return;
    }
    for (key, enable) in [("bindaddr", None), ("tlsbindaddr", Some("tlsenable"))] {
        if let Some(flag) = enable {
            if !general.get_str(flag).is_some_and(is_true) {
                continue;
            }
        }
        let Some(bind) = general.get(key) else {
            continue;
        };
        let addr = bind.value.split(':').next().unwrap_or("");
        if is_loopback_text(&bind.value) || is_loopback_text(addr) {
            continue;
        }
        report.findings.push(at(
            AREA,
            "http.public-bind",
            Severity::Medium,
            &bind.origin,
            format!(
                "Asterisk HTTP server (ARI, WebSocket, AMI over HTTP) listens on {}",
                describe_bind(&bind.value)
            ),
            format!(
                "{key} = 127.0.0.1 in [general] of {} (put a reverse proxy with an allowlist in front if remote access is needed)",
                host_path(&conf.file)
            ),
        ));
    }
}

pub(crate) fn describe_bind(v: &str) -> String {
    match v.trim() {
        "" | "0.0.0.0" | "::" | "[::]" => "all addresses".to_string(),
        other => other.to_string(),
    }
}

fn check_ari(conf: &AsteriskConf, report: &mut Report) {
    for user in conf.objects().filter(|s| s.is("type", "user")) {
        if user.is("password_format", "crypt") {
            continue;
        }
        if let Some(password) = user.get("password") {
            weak_secret(
                "ari.weak-secret",
                &format!("ARI user [{}]", user.name),
                user,
                password,
                &[&user.name],
                format!(
                    "password = <random, 16+ characters> (or a crypt hash with password_format = crypt) in [{}] of {}",
                    user.name,
                    host_path(&password.origin.file)
                ),
                report,
            );
        }
    }
}

/// logger.conf: the security log is where failed registrations and ACL
/// rejections are written, and sipshield's best detection input.
fn check_logger(host: &HostRoot, report: &mut Report) {
    let file = format!("{CONFIG_DIR}/logger.conf");
    let fix = format!("security => security in [logfiles] of /{file}");
    let conf = match AsteriskConf::read(host, "logger.conf") {
        Ok(conf) => {
            note_unreadable(report, AREA, "asterisk.security-log", &conf.unreadable);
            conf
        }
        Err(crate::hardening::conf::ConfError::NotFound(_)) => {
            report.findings.push(in_file(
                AREA,
                "asterisk.security-log",
                Severity::Medium,
                &file,
                "no logger.conf: Asterisk logs no security events (failed registrations, ACL rejections)".into(),
                fix,
            ));
            return;
        }
        Err(e) => {
            report.skip(AREA, "asterisk.security-log", skip_reason(&e));
            return;
        }
    };
    let logs_security = conf.section("logfiles").is_some_and(|s| {
        s.values.iter().any(|v| {
            let levels = match v.value.trim_start().strip_prefix('[') {
                Some(rest) => rest.split_once(']').map(|(_, l)| l).unwrap_or(""),
                None => &v.value,
            };
            levels.split(',').any(|l| {
                let l = l.trim();
                l.eq_ignore_ascii_case("security") || l == "*"
            })
        })
    });
    if !logs_security {
        let line = conf.section("logfiles").map(|s| &s.origin);
        let message = "no channel in [logfiles] logs the `security` level: failed registrations and ACL rejections are not logged".to_string();
        report.findings.push(match line {
            Some(origin) => at(
                AREA,
                "asterisk.security-log",
                Severity::Medium,
                origin,
                message,
                fix,
            ),
            None => in_file(
                AREA,
                "asterisk.security-log",
                Severity::Medium,
                &file,
                message,
                fix,
            ),
        });
    }
}
