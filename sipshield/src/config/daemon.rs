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
            interfaces: Vec::new(),
            xdp_mode: AttachMode::Auto,
            state_dir: PathBuf::from("/var/lib/sipshield"),
            control_socket: PathBuf::from("/run/sipshield/sipshield.sock"),
            control_group: None,
            bpffs_dir: PathBuf::from("/sys/fs/bpf/sipshield"),
        }
    }
}

impl DaemonSection {
    pub(crate) fn validate(&self, problems: &mut Problems) {
        let section = KeyPath::new("daemon");
        for (i, name) in self.interfaces.iter().enumerate() {
            let key = section.key("interfaces").index(i);
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
