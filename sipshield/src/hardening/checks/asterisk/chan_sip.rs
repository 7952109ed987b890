//! chan_sip (sip.conf): guest calls, extension enumeration, transfers,
//! peer secrets, unauthenticated INVITEs, registrations and qualify.

use crate::hardening::conf::asterisk::{AsteriskConf, Section};
use crate::hardening::conf::{is_false, is_true, Origin};
use crate::hardening::secret;
use crate::hardening::{Report, Severity};

use super::{acl_restricts, at, host_path, in_file, weak_secret, GuestEntry, AREA};

pub(super) fn check(
    conf: &AsteriskConf,
    dialplan: Option<&AsteriskConf>,
    guests: &mut Vec<GuestEntry>,
    report: &mut Report,
) {
    let general = conf.section("general");
    let path = host_path(general.map_or(&conf.file, |g| &g.origin.file));
    let setting = |key: &str| general.and_then(|g| g.get(key));
    let general_origin = general.map(|g| g.origin.clone());
    let finding =
        |id,
         severity,
         value: Option<&crate::hardening::conf::asterisk::Value>,
         message: String,
         fix: String| match value.map(|v| &v.origin).or(general_origin.as_ref()) {
            Some(origin) => at(AREA, id, severity, origin, message, fix),
            None => in_file(AREA, id, severity, &conf.file, message, fix),
        };

    // allowguest defaults to yes: any INVITE that matches no peer is taken.
    let allowguest = setting("allowguest");
    if !allowguest.is_some_and(|v| is_false(&v.value)) {
        let context = setting("context")
            .map(|v| v.value.clone())
            .unwrap_or_else(|| "default".to_string());
        let shown = allowguest.map_or("allowguest not set, default yes".to_string(), |v| {
            format!("allowguest = {}", v.value)
        });
        let exists = dialplan.map(|d| d.has_section(&context));
        let landing = match exists {
            Some(true) => format!("they run the dialplan in [{context}]"),
            Some(false) => format!("context [{context}] does not exist today"),
            None => format!("they land in context [{context}]"),
        };
        let fix = format!("allowguest = no in [general] of {path}");
        report.findings.push(finding(
            "sip.allowguest",
            Severity::High,
            allowguest,
            format!("chan_sip accepts calls from unauthenticated callers ({shown}); {landing}"),
            fix.clone(),
        ));
        let origin = allowguest
            .map(|v| v.origin.clone())
            .or_else(|| setting("context").map(|v| v.origin.clone()))
            .or(general_origin.clone())
            .unwrap_or(Origin {
                file: conf.file.clone(),
                line: 1,
            });
        guests.push(GuestEntry {
            context,
            via: "chan_sip allowguest".into(),
            origin,
            fix,
        });
    }

    let reject = setting("alwaysauthreject");
    if !reject.is_some_and(|v| is_true(&v.value)) {
        let shown = reject.map_or("alwaysauthreject not set".to_string(), |v| {
            format!("alwaysauthreject = {}", v.value)
        });
        report.findings.push(finding(
            "sip.alwaysauthreject",
            Severity::Medium,
            reject,
            format!("chan_sip may answer differently for unknown and known users ({shown}): scanners can enumerate extensions"),
            format!("alwaysauthreject = yes in [general] of {path}"),
        ));
    }

    let transfer = setting("allowtransfer");
    let general_transfer_off = transfer.is_some_and(|v| is_false(&v.value));
    if !general_transfer_off {
        let shown = transfer.map_or("allowtransfer not set, default yes".to_string(), |v| {
            format!("allowtransfer = {}", v.value)
        });
        report.findings.push(finding(
            "sip.allowtransfer",
            Severity::Medium,
            transfer,
            format!("chan_sip lets callers transfer calls ({shown}): a compromised or guest call can be transferred to a paid destination"),
            format!("allowtransfer = no in [general] of {path} (and allowtransfer = yes only on trusted phones)"),
        ));
    }

    if let Some(general) = general {
        for reg in general
            .all("register")
            .filter(|v| v.arrow || v.key == "register")
        {
            check_register(reg, report);
        }
    }

    let general_qualify = setting("qualify").is_some_and(|v| qualifies(&v.value));
    for peer in conf.objects().filter(|s| is_peer(s)) {
        check_peer(peer, general_transfer_off, general_qualify, report);
    }
}

fn is_peer(s: &Section) -> bool {
    s.name != "general"
        && s.name != "authentication"
        && s.get_str("type")
            .is_some_and(|t| matches!(t.trim(), "peer" | "friend" | "user"))
}

fn qualifies(v: &str) -> bool {
    is_true(v) || v.trim().parse::<u32>().is_ok_and(|ms| ms > 0)
}

fn check_peer(
    peer: &Section,
    general_transfer_off: bool,
    general_qualify: bool,
    report: &mut Report,
) {
    let path = host_path(&peer.origin.file);
    let name = peer.name.as_str();
    let names = [
        name,
        peer.get_str("username").unwrap_or(""),
        peer.get_str("defaultuser").unwrap_or(""),
        peer.get_str("fromuser").unwrap_or(""),
    ];
    let secret = peer.get("secret");
    if let Some(secret) = secret {
        weak_secret(
            "sip.weak-secret",
            &format!("SIP peer [{name}]"),
            peer,
            secret,
            &names,
            format!("secret = <random, 16+ characters> in [{name}] of {path}"),
            report,
        );
    }
    let dynamic = peer.is("host", "dynamic");
    let has_credential = secret.is_some_and(|s| !s.value.is_empty())
        || peer.get("md5secret").is_some()
        || peer.get("remotesecret").is_some();
    if dynamic && !has_credential && !acl_restricts(peer) {
        report.findings.push(at(
            AREA,
            "sip.no-secret",
            Severity::High,
            &peer.origin,
            format!("SIP peer [{name}] is host=dynamic with no secret and no deny/permit: anyone can register as it and call through it"),
            format!("secret = <random, 16+ characters> in [{name}] of {path}"),
        ));
    }

    if let Some(insecure) = peer.get("insecure") {
        let skips_auth = insecure
            .value
            .split(',')
            .any(|w| matches!(w.trim(), "invite" | "very"));
        if skips_auth && !acl_restricts(peer) {
            // A fixed host= is how an IP-authenticated trunk is meant to be
            // set up: chan_sip matches its calls by that address. Without
            // one (dynamic, or none), nothing ties the peer to an address.
            let fixed_host = peer.get("host").is_some_and(|h| {
                !h.value.trim().is_empty() && !h.value.trim().eq_ignore_ascii_case("dynamic")
            });
            let finding = if fixed_host {
                at(
                    AREA,
                    "sip.insecure-invite",
                    Severity::Low,
                    &insecure.origin,
                    format!("SIP peer [{name}] takes INVITEs without authentication (insecure = {}), matched by its fixed host; no deny/permit as a second line", insecure.value),
                    format!("deny = 0.0.0.0/0.0.0.0 and permit = <provider IP>/255.255.255.255 in [{name}] of {path} (defence in depth)"),
                )
            } else {
                at(
                    AREA,
                    "sip.insecure-invite",
                    Severity::Medium,
                    &insecure.origin,
                    format!("SIP peer [{name}] takes INVITEs without authentication (insecure = {}), has no fixed host and no deny/permit", insecure.value),
                    format!("host = <provider address>, and deny = 0.0.0.0/0.0.0.0 and permit = <provider IP>/255.255.255.255 in [{name}] of {path}"),
                )
            };
            report.findings.push(finding);
        }
    }

    if general_transfer_off {
        if let Some(t) = peer.get("allowtransfer").filter(|t| is_true(&t.value)) {
            if !acl_restricts(peer) {
                report.findings.push(at(
                    AREA,
                    "sip.allowtransfer",
                    Severity::Medium,
                    &t.origin,
                    format!("SIP peer [{name}] re-enables transfers (allowtransfer = yes) with no deny/permit"),
                    format!("allowtransfer = no in [{name}] of {path}, or restrict it with deny/permit"),
                ));
            }
        }
    }

    let is_user_only = peer.is("type", "user");
    let qualified = match peer.get("qualify") {
        Some(q) => qualifies(&q.value),
        None => general_qualify,
    };
    if !is_user_only && !qualified {
        let origin = peer.get("qualify").map_or(&peer.origin, |q| &q.origin);
        report.findings.push(at(
            AREA,
            "sip.qualify",
            Severity::Low,
            origin,
            format!("SIP peer [{name}] is not qualified: a hijacked or dead registration goes unnoticed"),
            format!("qualify = yes in [{name}] of {path}"),
        ));
    }
}

/// `register => [peer?][transport://]user[@domain][:secret[:authuser]]@host[:port][/ext][~expiry]`
fn check_register(reg: &crate::hardening::conf::asterisk::Value, report: &mut Report) {
    let path = host_path(&reg.origin.file);
    let spec = reg.value.trim();
    let spec = spec.split_once('?').map_or(spec, |(_, s)| s);
    let spec = spec.split_once("://").map_or(spec, |(_, s)| s);
    let spec = spec.split('~').next().unwrap_or(spec);
    let (creds, server) = match spec.rsplit_once('@') {
        Some((c, s)) => (c, s.split('/').next().unwrap_or(s)),
        None => (spec, ""),
    };
    let mut parts = creds.splitn(3, ':');
    let user = parts.next().unwrap_or("");
    let user = user.split('@').next().unwrap_or(user);
    let password = parts.next().unwrap_or("");
    let authuser = parts.next().unwrap_or("");
    if password.is_empty() {
        return;
    }
    report.findings.push(at(
        AREA,
        "sip.trunk-registration",
        Severity::Low,
        &reg.origin,
        format!(
            "chan_sip trunk registers to {server} as {user} with password {}: a leaked password lets anyone use the trunk",
            secret::mask(password)
        ),
        format!("ask the provider for IP authentication: a peer with host = <provider IP>, deny/permit for that IP only, then remove this register => line from {path}"),
    ));
    let reasons = secret::weaknesses(password, &[user, authuser]);
    if !reasons.is_empty() {
        report.findings.push(at(
            AREA,
            "sip.weak-secret",
            Severity::High,
            &reg.origin,
            format!(
                "chan_sip registration to {server}: password {} is {}",
                secret::mask(password),
                reasons.join(", ")
            ),
            format!("set a random 16+ character password with the provider and in this register => line of {path}"),
        ));
    }
}
