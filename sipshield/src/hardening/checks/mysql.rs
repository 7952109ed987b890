//! MySQL/MariaDB: FreePBX keeps CDRs, its admin users and every SIP secret
//! in it; it has no business listening beyond loopback.

use crate::hardening::conf::mycnf::OptionFiles;
use crate::hardening::conf::{is_false, ConfError, HostRoot};
use crate::hardening::{Area, Report, Severity};

use super::{at, in_file, is_loopback_text, note_unreadable, skip_reason};

const AREA: Area = Area::Mysql;
const SERVER_UNITS: [&str; 3] = ["mariadb.service", "mysql.service", "mysqld.service"];

pub fn run(host: &HostRoot, report: &mut Report) {
    let files = match OptionFiles::read(host) {
        Ok(files) => files,
        Err(ConfError::NotFound(_)) => {
            report.skip(AREA, "MySQL checks", "no MySQL configuration found");
            return;
        }
        Err(e) => {
            report.skip(AREA, "MySQL checks", skip_reason(&e));
            return;
        }
    };
    note_unreadable(report, AREA, "MySQL checks", &files.unreadable);
    let server_installed = files.has_server_group()
        || host.is_dir("var/lib/mysql")
        || SERVER_UNITS
            .iter()
            .any(|u| host.has_entry(&format!("etc/systemd/system/multi-user.target.wants/{u}")));
    if !server_installed {
        report.skip(
            AREA,
            "MySQL checks",
            "only MySQL client configuration found (no server section, data directory or enabled unit)",
        );
        return;
    }
    skip_grant_tables(&files, report);
    if let Some(skip) = files.server_value("skip-networking") {
        let on = skip.value.as_deref().is_none_or(|v| !is_false(v));
        if on {
            return;
        }
    }
    let fix_file = files
        .server_entries()
        .next()
        .map_or("/etc/mysql/my.cnf".to_string(), |e| {
            format!("/{}", e.origin.file)
        });
    match files.server_value("bind-address") {
        None => report.findings.push(in_file(
            AREA,
            "mysql.bind-address",
            Severity::High,
            files.files.first().map_or("etc/mysql/my.cnf", String::as_str),
            "the MySQL/MariaDB server has no bind-address and networking is not skipped: it listens on all addresses (port 3306)".into(),
            format!("bind-address = 127.0.0.1 in [mysqld] of {fix_file}"),
        )),
        Some(entry) => {
            let value = entry.value.clone().unwrap_or_default();
            let public: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|a| !is_loopback_text(a))
                .collect();
            if !public.is_empty() {
                let shown = if public.iter().any(|a| matches!(*a, "*" | "0.0.0.0" | "::" | "")) {
                    "all addresses".to_string()
                } else {
                    public.join(", ")
                };
                report.findings.push(at(
                    AREA,
                    "mysql.bind-address",
                    Severity::High,
                    &entry.origin,
                    format!("the MySQL/MariaDB server listens on {shown} (bind-address = {value})"),
                    format!("bind-address = 127.0.0.1 in [{}] of /{}", entry.group, entry.origin.file),
                ));
            }
        }
    }
}

/// `skip-grant-tables` starts the server without its privilege tables:
/// every account, and anyone naming any account, logs in without a
/// password with every privilege (FreePBX keeps every SIP secret there).
fn skip_grant_tables(files: &OptionFiles, report: &mut Report) {
    let Some(entry) = files.server_value("skip-grant-tables") else {
        return;
    };
    if entry.value.as_deref().is_some_and(is_false) {
        return;
    }
    report.findings.push(at(
        AREA,
        "mysql.skip-grant-tables",
        Severity::High,
        &entry.origin,
        "the MySQL/MariaDB server runs with skip-grant-tables: anyone who can connect logs in as any user, without a password, with all privileges".into(),
        format!(
            "delete the skip-grant-tables line from [{}] of /{} and restart the server",
            entry.group, entry.origin.file
        ),
    ));
}
