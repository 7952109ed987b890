//! The checks, one module per area. Each reads what it needs through `conf`,
//! adds findings, and lists itself as skipped when its files are absent.

use std::net::IpAddr;

use super::conf::{ConfError, HostRoot, Origin, Unreadable};
use super::{Area, Finding, Report, Severity};

pub mod asterisk;
pub mod ips;
pub mod mysql;
pub mod pam;
pub mod services;
pub mod ssh;
pub mod web;

pub(crate) fn run_all(root: &std::path::Path, report: &mut Report) {
    let host = HostRoot::new(root);
    asterisk::run(&host, report);
    ssh::run(&host, report);
    pam::run(&host, report);
    mysql::run(&host, report);
    web::run(&host, report);
    services::run(&host, report);
    ips::run(&host, report);
}

/// A finding pointing at a line.
pub(crate) fn at(
    area: Area,
    id: &'static str,
    severity: Severity,
    origin: &Origin,
    message: String,
    fix: String,
) -> Finding {
    Finding {
        id,
        severity,
        file: origin.file.clone(),
        line: Some(origin.line),
        message,
        fix,
        area,
    }
}

/// A finding about a whole file (usually a setting that is missing).
pub(crate) fn in_file(
    area: Area,
    id: &'static str,
    severity: Severity,
    file: &str,
    message: String,
    fix: String,
) -> Finding {
    Finding {
        id,
        severity,
        file: file.to_string(),
        line: None,
        message,
        fix,
        area,
    }
}

/// The reason a check is skipped when its file could not be read.
pub(crate) fn skip_reason(err: &ConfError) -> String {
    match err {
        ConfError::NotFound(file) => format!("{file} not found"),
        other => other.to_string(),
    }
}

/// Lists the files a configuration pulls in that could not be read: the
/// checks ran on the rest and may have missed what those files say.
pub(crate) fn note_unreadable(
    report: &mut Report,
    area: Area,
    checks: &str,
    unreadable: &[Unreadable],
) {
    for u in unreadable {
        let from = u.from.as_ref().map_or(String::new(), |o| {
            format!(", included at {}:{}", o.file, o.line)
        });
        report.skip(
            area,
            &format!("{checks} (in part)"),
            format!("{}{from}: {}; checked without it", u.file, u.reason),
        );
    }
}

/// Loopback, by address text as configs write it (`127.0.0.1`, `::1`,
/// `localhost`, `127.0.0.1:5038`, `[::1]:8088`).
pub(crate) fn is_loopback_text(addr: &str) -> bool {
    let a = addr.trim();
    if a.eq_ignore_ascii_case("localhost") {
        return true;
    }
    parse_ip_loose(a).is_some_and(|ip| match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
    })
}

/// An IP out of `addr`, `addr:port`, `[v6]:port`, `addr/mask`.
pub(crate) fn parse_ip_loose(a: &str) -> Option<IpAddr> {
    let a = a.trim();
    let a = a.split('/').next().unwrap_or(a);
    if let Ok(ip) = a.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    a.rsplit_once(':').and_then(|(h, _)| h.parse().ok())
}

/// Private (RFC 1918, ULA, link-local) or loopback: reachable from the LAN
/// at most.
pub(crate) fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}
