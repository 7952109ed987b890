//! PJSIP (pjsip.conf): auth passwords, endpoints reachable without
//! authentication, outbound registrations and AOR qualify.

use crate::hardening::conf::asterisk::{AsteriskConf, Section};
use crate::hardening::{secret, Report, Severity};

use super::{acl_restricts, at, host_path, weak_secret, GuestEntry, AREA};

/// `match` values that identify every source address.
const ANY_SOURCE: [&str; 5] = ["0.0.0.0/0", "0.0.0.0/0.0.0.0", "::/0", "0.0.0.0", "::"];

/// `username_identifier`: res_pjsip_endpoint_identifier_user may load, so
/// requests are matched to endpoints by the user part of their From header.
pub(super) fn check(
    conf: &AsteriskConf,
    dialplan: Option<&AsteriskConf>,
    username_identifier: bool,
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
    let open_names: Vec<String> = open.iter().map(|(e, _, _)| e.name.clone()).collect();
    for (endpoint, why, fix) in open {
        if has_auth(endpoint) {
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

    if username_identifier && !global_acl(conf) {
        for endpoint in objects_of(conf, "endpoint") {
            let skip = endpoint.name == "anonymous"
                || open_names.contains(&endpoint.name)
                || has_auth(endpoint)
                || acl_restricts(endpoint)
                || !by_username(endpoint);
            if !skip {
                no_auth(conf, endpoint, dialplan, guests, report);
            }
        }
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
        let server = secret::mask_inline(reg.get_str("server_uri").unwrap_or("(no server_uri)"));
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

/// An endpoint without inbound auth that the username identifier can match:
/// anyone who writes its name in the From header gets its context.
fn no_auth(
    conf: &AsteriskConf,
    endpoint: &Section,
    dialplan: Option<&AsteriskConf>,
    guests: &mut Vec<GuestEntry>,
    report: &mut Report,
) {
    let name = endpoint.name.as_str();
    let context_value = endpoint.get("context");
    let context = context_value.map_or("default", |v| v.value.trim());
    if dialplan.is_some_and(|d| !d.has_section(context)) {
        return;
    }
    let path = host_path(&endpoint.origin.file);
    let by_ip = objects_of(conf, "identify")
        .find(|i| i.get_str("endpoint").is_some_and(|e| e.trim() == name));
    let identify_by = endpoint.get("identify_by");
    let shown = identify_by.map_or(
        "identify_by not set, default username,ip".to_string(),
        |v| format!("identify_by = {}", v.value),
    );
    let fix = match by_ip {
        Some(identify) => format!(
            "identify_by = ip in [{name}] of {path} (its [{}] matches the address it calls from)",
            identify.name
        ),
        None => format!(
            "auth = {name}-auth in [{name}] of {path}, with a [{name}-auth] type = auth section holding a random 16+ character password"
        ),
    };
    let origin = identify_by.map_or(&endpoint.origin, |v| &v.origin);
    report.findings.push(at(
        AREA,
        "pjsip.no-auth",
        Severity::High,
        origin,
        format!(
            "PJSIP endpoint [{name}] has no inbound auth and is matched by username ({shown}): a request from any address with From: <sip:{name}@…> is taken as it and reaches context [{context}]"
        ),
        fix.clone(),
    ));
    guests.push(GuestEntry {
        context: context.to_string(),
        via: format!("PJSIP endpoint [{name}] matched by username without auth"),
        origin: origin.clone(),
        fix,
    });
}

fn has_auth(endpoint: &Section) -> bool {
    endpoint
        .get_str("auth")
        .is_some_and(|a| !a.trim().is_empty())
}

/// Whether `identify_by` (default `username,ip`) lets the username
/// identifier match this endpoint.
fn by_username(endpoint: &Section) -> bool {
    endpoint.get_str("identify_by").is_none_or(|v| {
        v.split(',').any(|m| {
            matches!(
                m.trim().to_ascii_lowercase().as_str(),
                "username" | "auth_username"
            )
        })
    })
}

/// A `type = acl` section with deny and permit (or a named `acl`) restricts
/// every request PJSIP takes, whatever the endpoint.
fn global_acl(conf: &AsteriskConf) -> bool {
    objects_of(conf, "acl").any(acl_restricts)
}

fn objects_of<'a>(conf: &'a AsteriskConf, kind: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
    conf.objects().filter(move |s| s.is("type", kind))
}
