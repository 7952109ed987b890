//! An intrusion-prevention layer: sipshield itself or a fail2ban jail for
//! Asterisk, configured to start at boot. Without one, a scanner gets
//! unlimited guesses at every SIP password.

use crate::hardening::conf::fail2ban::JailConf;
use crate::hardening::conf::{asterisk::CONFIG_DIR, is_true, HostRoot};
use crate::hardening::{Area, Report, Severity};

use super::in_file;

const AREA: Area = Area::Ips;
const WANTS: &str = "etc/systemd/system/multi-user.target.wants";

pub fn run(host: &HostRoot, report: &mut Report) {
    if !host.is_dir(CONFIG_DIR) {
        report.skip(
            AREA,
            "ips.missing",
            "no Asterisk configuration found: no PBX for an IPS to protect",
        );
        return;
    }
    if enabled_at_boot(host, "sipshield") {
        return;
    }
    let jails = JailConf::read(host);
    let asterisk_jail = jails.jails().into_iter().find(|j| {
        let l = j.to_ascii_lowercase();
        (l.contains("asterisk") || l.contains("freepbx"))
            && jails.get(j, "enabled").is_some_and(|v| is_true(&v.value))
    });
    let fail2ban_on = enabled_at_boot(host, "fail2ban");
    let state = match (asterisk_jail, fail2ban_on) {
        (Some(_), true) => return,
        (Some(jail), false) => {
            format!("fail2ban has an enabled [{jail}] jail but fail2ban is not enabled at boot")
        }
        (None, true) => "fail2ban is enabled but has no enabled Asterisk jail".to_string(),
        (None, false) => "neither sipshield nor fail2ban is enabled at boot".to_string(),
    };
    report.findings.push(in_file(
        AREA,
        "ips.missing",
        Severity::High,
        WANTS,
        format!("no intrusion prevention for Asterisk: {state}; SIP and AMI passwords can be guessed without limit"),
        "systemctl enable --now sipshield (creates /etc/systemd/system/multi-user.target.wants/sipshield.service), or [asterisk] enabled = true in /etc/fail2ban/jail.local with fail2ban enabled".into(),
    ));
}

/// A systemd wants-link, or a SysV start link in a multi-user runlevel.
fn enabled_at_boot(host: &HostRoot, name: &str) -> bool {
    if host.has_entry(&format!("{WANTS}/{name}.service")) {
        return true;
    }
    ["etc/rc2.d", "etc/rc3.d", "etc/rc5.d"].iter().any(|dir| {
        host.list_dir(dir).iter().any(|f| {
            f.starts_with('S')
                && f.trim_start_matches(|c: char| c == 'S' || c.is_ascii_digit()) == name
        })
    })
}
