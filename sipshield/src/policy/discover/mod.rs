//! Sources allowlisted automatically, so the shield never bans its own
//! host, its gateway, the operator's SSH session or the SIP trunks.
//!
//! Each source is a function over a directory or file path so it can be
//! tested on fixtures; `discover` runs the enabled ones against the live
//! system. It may block on DNS (trunk host names): run it off the event loop.

mod asterisk_conf;
mod host;
mod proc_net;
mod trunks;

use std::{
    io,
    net::{IpAddr, ToSocketAddrs},
    path::{Path, PathBuf},
};

use ipnet::IpNet;

pub use host::{host_addresses, host_entries};
pub use proc_net::{default_gateways, ssh_connections};
pub use trunks::{asterisk_trunks, Resolver, Trunks, WIDEST_TRUNK_V4, WIDEST_TRUNK_V6};

use super::{AllowEntry, AllowSource, Allowlist};
use crate::config::AllowSection;

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("listing the host's addresses: {0}")]
    Interfaces(#[source] io::Error),
}

/// The automatic sources found by looking at the system, each with an
/// opt-out in `[allow]`. SSH sessions are not among them: they come from
/// sshd's `Accepted` lines, and discovery only says which are still open.
pub const AUTOMATIC_SOURCES: [AllowSource; 3] = [
    AllowSource::HostAddress,
    AllowSource::Gateway,
    AllowSource::AsteriskTrunk,
];

/// What one discovery pass found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    pub entries: Vec<AllowEntry>,
    /// Problems worth logging (unreadable file, unresolvable trunk host).
    pub warnings: Vec<String>,
    /// Sources that failed in part or whole: their earlier entries are kept.
    pub incomplete: Vec<AllowSource>,
    /// Established connections to an SSH port (peer address and port);
    /// `None` when not looked at (disabled, or the table was unreadable).
    pub ssh_connections: Option<Vec<(IpAddr, u16)>>,
}

impl Discovery {
    /// Makes the allowlist's automatic entries those found now: a source
    /// looked at completely replaces its old entries (so an ended SSH session
    /// or a removed trunk goes); an incomplete one only adds (a DNS hiccup
    /// must not drop a trunk); a disabled one ends up empty.
    pub fn apply(&self, allowlist: &mut Allowlist) {
        for source in AUTOMATIC_SOURCES {
            let found = self.entries.iter().filter(|e| e.source == source).cloned();
            if self.incomplete.contains(&source) {
                for entry in found {
                    allowlist.insert(entry);
                }
            } else {
                allowlist.replace_source(source, found);
            }
        }
    }
}

/// Runs the enabled sources against the live system: `getifaddrs`, the
/// tables under `proc_dir` (normally `/proc`), Asterisk's config directory,
/// and the system resolver.
pub fn discover(section: &AllowSection, proc_dir: &Path) -> Discovery {
    discover_with(section, proc_dir, host_addresses, &resolve_host)
}

/// `discover` with the host's addresses and name resolution supplied.
pub fn discover_with(
    section: &AllowSection,
    proc_dir: &Path,
    addresses: impl FnOnce() -> Result<Vec<(String, IpAddr)>, DiscoverError>,
    resolve: Resolver<'_>,
) -> Discovery {
    let mut found = Discovery::default();
    if section.host_addresses {
        match addresses() {
            Ok(addrs) => found.entries.extend(host_entries(&addrs)),
            Err(err) => found.fail(AllowSource::HostAddress, err.to_string()),
        }
    }
    if section.default_gateways {
        match default_gateways(proc_dir) {
            Ok(gateways) => found
                .entries
                .extend(gateways.into_iter().map(|(iface, ip)| {
                    AllowEntry::new(
                        IpNet::from(ip),
                        AllowSource::Gateway,
                        format!("default route via {iface}"),
                    )
                })),
            Err(err) => found.fail(AllowSource::Gateway, err.to_string()),
        }
    }
    if section.ssh_sessions {
        match ssh_connections(proc_dir, &section.ssh_ports) {
            Ok(open) => found.ssh_connections = Some(open),
            Err(err) => found.fail(AllowSource::SshSession, err.to_string()),
        }
    }
    if section.asterisk_trunks {
        let trunks = asterisk_trunks(&section.asterisk_config_dir, resolve);
        found.entries.extend(trunks.entries);
        if !trunks.warnings.is_empty() {
            found.incomplete.push(AllowSource::AsteriskTrunk);
            found.warnings.extend(trunks.warnings);
        }
        found.warnings.extend(trunks.refused);
    }
    found
}

impl Discovery {
    fn fail(&mut self, source: AllowSource, warning: String) {
        self.incomplete.push(source);
        self.warnings.push(format!("{source}: {warning}"));
    }
}

/// The addresses of a host name from the system resolver (A and AAAA).
pub fn resolve_host(name: &str) -> io::Result<Vec<IpAddr>> {
    let mut addrs: Vec<IpAddr> = (name, 0).to_socket_addrs()?.map(|a| a.ip()).collect();
    addrs.sort();
    addrs.dedup();
    Ok(addrs)
}
