//! PJSIP (pjsip.conf): auth passwords, endpoints reachable without
//! authentication, outbound registrations and AOR qualify.

use crate::hardening::conf::asterisk::{AsteriskConf, Section};
use crate::hardening::{Report, Severity};

use super::{at, host_path, weak_secret, GuestEntry, AREA};

/// `match` values that identify every source address.
const ANY_SOURCE: [&str; 5] = ["0.0.0.0/0", "0.0.0.0/0.0.0.0", "::/0", "0.0.0.0", "::"];

pub(super) fn check(
    conf: &AsteriskConf,
    dialplan: Option<&AsteriskConf>,
    guests: &mut Vec<GuestEntry>,
    report: &mut Report,
) {
    for auth in objects_of(conf, "auth") {
        let is_userpass = auth
            .get_str("auth_type")
            .is_none_or(|t| t.trim().eq_ignore_ascii_case("userpass"));
        let Some(password) = auth.get("password").filter(|_| is_userpass) else {
            continue;
        };
        weak_secret(
            "sip.weak-secret",
            &format!("PJSIP auth [{}]", auth.name),
            auth,
            password,
            &[&auth.name, auth.get_str("username").unwrap_or("")],
            format!(
                "password = <random, 16+ characters> in [{}] of {}",
                auth.name,
                host_path(&auth.origin.file)
            ),
            report,
        );
    }

    // Endpoints anyone can reach: the `anonymous` endpoint takes every
    // request no other endpoint matched; an identify for 0.0.0.0/0 maps
    // every source to its endpoint.
    let mut open: Vec<(&Section, String, String)> = Vec::new();
    if let Some(anon) = objects_of(conf, "endpoint").find(|e| e.name == "anonymous") {
        open.push((
            anon,
            "the [anonymous] endpoint takes every unidentified request".into(),
            format!("remove the [anonymous] endpoint from {}, or give it context = a context that only answers your own DIDs", host_path(&anon.origin.file)),
        ));
    }
    for identify in objects_of(conf, "identify") {
        let any = identify.all("match").find(|m| {
            m.value
                .split(',')
                .any(|part| ANY_SOURCE.contains(&part.trim()))
        });
        let (Some(any), Some(endpoint)) = (any, identify.get_str("endpoint")) else {
            continue;
        };
        if let Some(ep) = objects_of(conf, "endpoint").find(|e| e.name == endpoint.trim()) {
            open.push((
                ep,
                format!(
                    "[{}] identifies every source address (match = {}, line {}) as endpoint [{}]",
                    identify.name, any.value, any.origin.line, ep.name
                ),
                format!(
                    "match = <provider IP>/32 in [{}] of {}",
                    identify.name,
                    host_path(&identify.origin.file)
                ),
            ));
        }
    }
    for (endpoint, why, fix) in open {
        if endpoint
            .get_str("auth")
            .is_some_and(|a| !a.trim().is_empty())
        {
            continue;
        }
        let context_value = endpoint.get("context");
        let context = context_value.map_or("default", |v| v.value.trim());
        let exists = dialplan.map(|d| d.has_section(context));
        if exists == Some(false) {
            continue;
        }
        let origin = context_value.map_or(&endpoint.origin, |v| &v.origin);
        let known = if exists.is_some() {
            "which exists"
        } else {
            "(dialplan not readable, assumed to exist)"
        };
        report.findings.push(at(
            AREA,
            "pjsip.anonymous",
            Severity::High,
            origin,
            format!("{why}; it has no auth, so unauthenticated callers reach context [{context}] {known}"),
            fix.clone(),
        ));
        guests.push(GuestEntry {
            context: context.to_string(),
            via: format!("PJSIP endpoint [{}] without auth", endpoint.name),
            origin: origin.clone(),
            fix,
        });
    }

    for reg in objects_of(conf, "registration") {
        let Some(auth_name) = reg.get_str("outbound_auth") else {
            continue;
        };
        let has_password = objects_of(conf, "auth")
            .filter(|a| a.name == auth_name.trim())
            .any(|a| a.get("password").is_some());
        if !has_password {
            continue;
        }
        let server = reg.get_str("server_uri").unwrap_or("(no server_uri)");
        report.findings.push(at(
            AREA,
            "sip.trunk-registration",
            Severity::Low,
            &reg.origin,
            format!("PJSIP trunk [{}] registers to {server} with a password ([{}]): a leaked password lets anyone use the trunk", reg.name, auth_name.trim()),
            format!("ask the provider for IP authentication: an identify with match = <provider IP>/32 for the trunk endpoint, then remove [{}] from {}", reg.name, host_path(&reg.origin.file)),
        ));
    }

    for aor in objects_of(conf, "aor") {
        let freq = aor.get("qualify_frequency");
        if freq.is_some_and(|f| f.value.trim().parse::<u32>().is_ok_and(|s| s > 0)) {
            continue;
        }
        let origin = freq.map_or(&aor.origin, |f| &f.origin);
        report.findings.push(at(
            AREA,
            "sip.qualify",
            Severity::Low,
            origin,
            format!("PJSIP AOR [{}] is not qualified (qualify_frequency unset or 0): a hijacked or dead contact goes unnoticed", aor.name),
            format!("qualify_frequency = 60 in [{}] of {}", aor.name, host_path(&aor.origin.file)),
        ));
    }
}

fn objects_of<'a>(conf: &'a AsteriskConf, kind: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
    conf.objects().filter(move |s| s.is("type", kind))
}
