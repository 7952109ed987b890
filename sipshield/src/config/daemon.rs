//! `[daemon]`: where the daemon attaches and keeps its files.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{KeyPath, Problems};
use crate::bpf::AttachMode;

/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonSection {
    /// Interfaces to attach the XDP program to. May be empty here when the
    /// command line names them (`--iface`).
    pub interfaces: Vec<String>,
    pub xdp_mode: AttachMode,
    pub state_dir: PathBuf,
    pub control_socket: PathBuf,
    /// Group (besides root) allowed on the control socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_group: Option<String>,
    /// Per-interface pin directories are created below this one.
    pub bpffs_dir: PathBuf,
}

impl Default for DaemonSection {
    fn default() -> Self {
        DaemonSection {
            interfaces: vec![AUTO_INTERFACES.to_string()],
            xdp_mode: AttachMode::Auto,
            state_dir: PathBuf::from("/var/lib/sipshield"),
            control_socket: PathBuf::from("/run/sipshield/sipshield.sock"),
            control_group: None,
            bpffs_dir: PathBuf::from("/sys/fs/bpf/sipshield"),
        }
    }
}

/// `interfaces = ["auto"]`: the interfaces that carry a default route.
pub const AUTO_INTERFACES: &str = "auto";

impl DaemonSection {
    /// The interfaces to guard, with `auto` replaced by the interfaces of
    /// the default routes (IPv4 and IPv6) read from `proc`.
    pub fn resolved_interfaces(&self, proc: &std::path::Path) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for name in &self.interfaces {
            let found = if name == AUTO_INTERFACES {
                default_route_interfaces(proc)
            } else {
                vec![name.clone()]
            };
            for f in found {
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
        out
    }

    pub(crate) fn validate(&self, problems: &mut Problems) {
        let section = KeyPath::new("daemon");
        for (i, name) in self.interfaces.iter().enumerate() {
            let key = section.key("interfaces").index(i);
            if name == AUTO_INTERFACES {
                continue;
            }
            if name.is_empty() || name.len() > IFNAME_MAX {
                problems.push(
                    key,
                    format!("{name:?}: an interface name has 1 to {IFNAME_MAX} bytes"),
                );
            } else if name.contains(['/', ':'])
                || name.chars().any(char::is_whitespace)
                || name == "."
                || name == ".."
            {
                problems.push(key, format!("{name:?} is not a valid interface name"));
            } else if self.interfaces[..i].contains(name) {
                problems.push(key, format!("{name:?} is listed twice"));
            }
        }
        for (key, path) in [
            ("state_dir", &self.state_dir),
            ("control_socket", &self.control_socket),
            ("bpffs_dir", &self.bpffs_dir),
        ] {
            if path.as_os_str().is_empty() {
                problems.push(section.key(key), "must not be empty");
            }
        }
        if self
            .control_group
            .as_deref()
            .is_some_and(|g| g.trim().is_empty())
        {
            problems.push(
                section.key("control_group"),
                "must not be empty (leave it out for root only)",
            );
        }
    }
}

/// Interfaces of the default routes in `proc/net/route` (destination and
/// mask 0) and `proc/net/ipv6_route` (`::/0`), loopback left out.
pub fn default_route_interfaces(proc: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if name != "lo" && !name.is_empty() && !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    };
    if let Ok(text) = std::fs::read_to_string(proc.join("net/route")) {
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
            if f.len() > 7 && f[1] == "00000000" && f[7] == "00000000" {
                add(f[0]);
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(proc.join("net/ipv6_route")) {
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            // dest plen src splen nexthop metric refcnt use flags iface
            if f.len() == 10 && f[0].bytes().all(|b| b == b'0') && f[1] == "00" {
                add(f[9]);
            }
        }
    }
    out
}

#[cfg(test)]
mod auto_tests {
    use super::*;

    #[test]
    fn auto_is_the_interfaces_of_the_default_routes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("net")).unwrap();
        std::fs::write(
            dir.path().join("net/route"),
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
             eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
             eth0\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n\
             wg0\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("net/ipv6_route"),
            "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth1\n\
             00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo\n",
        )
        .unwrap();
        let section = DaemonSection {
            interfaces: vec!["auto".into(), "eth0".into(), "vlan5".into()],
            ..DaemonSection::default()
        };
        assert_eq!(
            section.resolved_interfaces(dir.path()),
            ["eth0", "eth1", "vlan5"]
        );
    }
}
