//! Clear-text services a PBX should not expose: FTP and TFTP (phones'
//! provisioning files carry their SIP secrets) and telnet.

use crate::hardening::conf::proc_net::{self, Listener, Proto};
use crate::hardening::conf::HostRoot;
use crate::hardening::{Area, Report, Severity};

use super::{at, in_file};

const AREA: Area = Area::Services;
const WANTS: [&str; 2] = [
    "etc/systemd/system/multi-user.target.wants",
    "etc/systemd/system/sockets.target.wants",
];

struct Service {
    id: &'static str,
    name: &'static str,
    proto: Proto,
    port: u16,
    units: &'static [&'static str],
    why: &'static str,
    fix: &'static str,
}

const SERVICES: [Service; 3] = [
    Service {
        id: "services.ftp",
        name: "FTP",
        proto: Proto::Tcp,
        port: 21,
        units: &["vsftpd.service", "proftpd.service", "pure-ftpd.service"],
        why: "passwords travel in clear text and phone provisioning files hold SIP secrets",
        fix: "systemctl disable --now <the FTP unit>; serve provisioning over HTTPS with per-phone credentials, or bind the FTP server to the phones' VLAN only",
    },
    Service {
        id: "services.tftp",
        name: "TFTP",
        proto: Proto::Udp,
        port: 69,
        units: &["tftpd-hpa.service", "tftp.socket", "tftp.service", "atftpd.service", "tftp-server.socket"],
        why: "anyone who guesses a MAC address can download that phone's config with its SIP secret",
        fix: "TFTP_ADDRESS=\"<phones' VLAN address>:69\" in /etc/default/tftpd-hpa (or disable TFTP and provision over HTTPS)",
    },
    Service {
        id: "services.telnet",
        name: "telnet",
        proto: Proto::Tcp,
        port: 23,
        units: &["telnet.socket", "telnetd.service", "inetutils-telnetd.service"],
        why: "logins travel in clear text",
        fix: "systemctl disable --now telnet.socket (use SSH)",
    },
];

pub fn run(host: &HostRoot, report: &mut Report) {
    match proc_net::listeners(host) {
        Some(listeners) => from_listeners(&listeners, report),
        None if WANTS.iter().any(|w| host.is_dir(w)) => from_units(host, report),
        None => report.skip(
            AREA,
            "services.ftp, services.tftp, services.telnet",
            "no proc/net listeners and no enabled systemd units under the root",
        ),
    }
}

fn from_listeners(listeners: &[Listener], report: &mut Report) {
    for svc in &SERVICES {
        let hit = listeners
            .iter()
            .find(|l| l.proto == svc.proto && l.port == svc.port && l.is_exposed());
        if let Some(l) = hit {
            report.findings.push(at(
                AREA,
                svc.id,
                Severity::Medium,
                &crate::hardening::conf::Origin {
                    file: l.file.clone(),
                    line: l.line,
                },
                format!(
                    "{} listener on {} ({}): {}",
                    svc.proto.as_str().to_ascii_uppercase(),
                    std::net::SocketAddr::new(l.addr, l.port),
                    svc.name,
                    svc.why
                ),
                svc.fix.to_string(),
            ));
        }
    }
}

/// Without /proc (an image, not a live host), an enabled unit says the same.
fn from_units(host: &HostRoot, report: &mut Report) {
    for svc in &SERVICES {
        let unit = WANTS.iter().find_map(|w| {
            svc.units
                .iter()
                .map(|u| format!("{w}/{u}"))
                .find(|p| host.has_entry(p))
        });
        if let Some(unit) = unit {
            report.findings.push(in_file(
                AREA,
                svc.id,
                Severity::Medium,
                &unit,
                format!("{} server enabled at boot: {}", svc.name, svc.why),
                svc.fix.to_string(),
            ));
        }
    }
}
