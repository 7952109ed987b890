//! Apache: PBX admin GUIs (FreePBX's /admin, phpMyAdmin, Adminer) reachable
//! from anywhere Apache listens, with no `Require ip`/`Require local`.

use crate::hardening::conf::apache::{ApacheConf, Directive};
use crate::hardening::conf::{ConfError, HostRoot, Origin};
use crate::hardening::{Area, Report, Severity};

use super::{at, is_internal, note_unreadable, parse_ip_loose, skip_reason};

const AREA: Area = Area::Web;
const ADMIN_MARKERS: [&str; 4] = ["phpmyadmin", "freepbx", "adminer", "/admin"];
/// FreePBX's GUI, served from the default document root.
const FREEPBX_DIR: &str = "var/www/html/admin";

/// An admin GUI: where it is served (URL path and directory) and which line
/// says so.
#[derive(Debug)]
struct AdminGui {
    label: String,
    url: Option<String>,
    dir: Option<String>,
    origin: Origin,
    /// Apache's config names it (an Alias or a container), as opposed to a
    /// GUI found on disk under the document root.
    declared: bool,
}

pub fn run(host: &HostRoot, report: &mut Report) {
    let conf = match ApacheConf::read(host) {
        Ok(conf) => conf,
        Err(ConfError::NotFound(_)) => {
            report.skip(
                AREA,
                "web.admin-public",
                "no Apache configuration found (etc/apache2/apache2.conf, etc/httpd/conf/httpd.conf)",
            );
            return;
        }
        Err(e) => {
            report.skip(AREA, "web.admin-public", skip_reason(&e));
            return;
        }
    };
    note_unreadable(report, AREA, "web.admin-public", &conf.unreadable);
    let public_listen = public_listen(&conf);
    let Some(listen) = public_listen else {
        return;
    };
    for gui in admin_guis(host, &conf) {
        if restricted(&conf, &gui) {
            continue;
        }
        let container = gui
            .dir
            .as_ref()
            .map(|d| format!("<Directory {d}>"))
            .or_else(|| gui.url.as_ref().map(|u| format!("<Location {u}>")))
            .unwrap_or_default();
        let fix = if gui.declared {
            format!("Require ip 127.0.0.1 <admin LAN, e.g. 192.168.1.0/24> inside {container} (in /{}), replacing Require all granted", gui.origin.file)
        } else {
            format!("a {container} block with Require ip 127.0.0.1 <admin LAN, e.g. 192.168.1.0/24> (in /{} or a conf-enabled file)", gui.origin.file)
        };
        report.findings.push(at(
            AREA,
            "web.admin-public",
            Severity::Medium,
            &gui.origin,
            format!(
                "{} is served to every address Apache listens on ({listen}) with no Require ip/Require local",
                gui.label
            ),
            fix,
        ));
    }
}

/// The first `Listen` reachable from outside the LAN, described; `None` when
/// Apache only listens on loopback or private addresses.
fn public_listen(conf: &ApacheConf) -> Option<String> {
    let listens: Vec<&Directive> = conf.named("listen").collect();
    if listens.is_empty() {
        return Some("port 80 on all addresses (no Listen)".into());
    }
    listens.into_iter().find_map(|d| {
        let arg = d.arg(0)?;
        let all = !arg.contains(':')
            || arg.starts_with("0.0.0.0:")
            || arg.starts_with("[::]:")
            || arg.starts_with("*:");
        let public = all || parse_ip_loose(arg).is_some_and(|ip| !is_internal(ip));
        public.then(|| format!("Listen {arg}, {}:{}", d.origin.file, d.origin.line))
    })
}

fn is_admin(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    let s = s.trim_end_matches('/');
    ADMIN_MARKERS.iter().any(|m| {
        if *m == "/admin" {
            s.ends_with("/admin") || s == "admin"
        } else {
            s.contains(m)
        }
    })
}

fn label_for(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    if lower.contains("phpmyadmin") {
        "phpMyAdmin".into()
    } else if lower.contains("adminer") {
        "Adminer".into()
    } else {
        "the FreePBX admin GUI".into()
    }
}

fn admin_guis(host: &HostRoot, conf: &ApacheConf) -> Vec<AdminGui> {
    let mut out: Vec<AdminGui> = Vec::new();
    for d in conf.directives.iter() {
        if matches!(d.name.as_str(), "alias" | "scriptalias") {
            if let (Some(url), Some(dir)) = (d.arg(0), d.arg(1)) {
                if is_admin(url) || is_admin(dir) {
                    out.push(AdminGui {
                        label: format!("{} ({url})", label_for(&format!("{url} {dir}"))),
                        url: Some(url.trim_end_matches('/').to_string()),
                        dir: Some(dir.trim_end_matches('/').to_string()),
                        origin: d.origin.clone(),
                        declared: true,
                    });
                }
            }
        }
    }
    let mut seen_containers: Vec<Origin> = Vec::new();
    for d in &conf.directives {
        for c in &d.within {
            let is_dir = c.kind == "directory";
            let is_loc = c.kind == "location";
            if !(is_dir || is_loc) || !is_admin(&c.arg) || seen_containers.contains(&c.origin) {
                continue;
            }
            seen_containers.push(c.origin.clone());
            let path = c.arg.trim_end_matches('/').to_string();
            let covered = out.iter().any(|g| {
                (is_dir && g.dir.as_deref() == Some(path.as_str()))
                    || (is_loc && g.url.as_deref() == Some(path.as_str()))
            });
            if !covered {
                out.push(AdminGui {
                    label: format!("{} ({path})", label_for(&path)),
                    url: is_loc.then(|| path.clone()),
                    dir: is_dir.then(|| path.clone()),
                    origin: c.origin.clone(),
                    declared: true,
                });
            }
        }
    }
    // FreePBX installed under the document root needs no Apache line of its own.
    if host.is_dir(FREEPBX_DIR) {
        let dir = format!("/{FREEPBX_DIR}");
        let covered = out.iter().any(|g| g.dir.as_deref() == Some(dir.as_str()));
        let docroot = conf.named("documentroot").find(|d| {
            d.arg(0)
                .is_some_and(|a| a.trim_end_matches('/') == "/var/www/html")
        });
        if let (false, Some(docroot)) = (covered, docroot) {
            out.push(AdminGui {
                label: "the FreePBX admin GUI (/admin)".into(),
                url: Some("/admin".into()),
                dir: Some(dir),
                origin: docroot.origin.clone(),
                declared: false,
            });
        }
    }
    out
}

/// Whether the most specific `<Location>` (which Apache applies last), or
/// else the most specific `<Directory>`, covering the GUI limits who may
/// connect by address.
fn restricted(conf: &ApacheConf, gui: &AdminGui) -> bool {
    let access: Vec<&Directive> = conf
        .directives
        .iter()
        .filter(|d| matches!(d.name.as_str(), "require" | "allow" | "deny" | "order"))
        .collect();
    let covering = |kind: &str, target: Option<&str>| -> Option<Vec<&Directive>> {
        let target = target?;
        let mut best: Option<(usize, Vec<&Directive>)> = None;
        for d in &access {
            let Some(c) = d
                .container(&["directory", "location"])
                .filter(|c| c.kind == kind)
            else {
                continue;
            };
            let p = c.arg.trim_end_matches('/');
            let covers = p.is_empty() || target == p || target.starts_with(&format!("{p}/"));
            if !covers {
                continue;
            }
            match &mut best {
                Some((len, list)) if *len == p.len() => list.push(d),
                Some((len, _)) if *len > p.len() => {}
                _ => best = Some((p.len(), vec![d])),
            }
        }
        best.map(|(_, list)| list)
    };
    let rules = covering("location", gui.url.as_deref())
        .or_else(|| covering("directory", gui.dir.as_deref()));
    let Some(rules) = rules else {
        return false;
    };
    rules.iter().any(|d| {
        let a0 = d.arg(0).unwrap_or("").to_ascii_lowercase();
        let a1 = d.arg(1).unwrap_or("").to_ascii_lowercase();
        match d.name.as_str() {
            "require" => {
                matches!(a0.as_str(), "ip" | "local" | "host" | "forward-dns")
                    || (a0 == "all" && a1 == "denied")
            }
            "deny" => a0 == "from" && a1 == "all",
            _ => false,
        }
    })
}
