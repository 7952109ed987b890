//! Sources that are never banned, each labelled with where it came from.

use std::{collections::BTreeMap, fmt, net::IpAddr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::prefix::PrefixLengths;
use crate::config::{canonical_net, AllowSection};

/// Where an allowlist entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AllowSource {
    /// `[allow] cidrs` (and `--allow`).
    Config,
    /// One of this host's addresses.
    HostAddress,
    /// A default gateway.
    Gateway,
    /// The remote end of an SSH session.
    SshSession,
    /// A SIP trunk host from Asterisk's configuration.
    AsteriskTrunk,
    /// `sipshield allow add`.
    Manual,
}

impl fmt::Display for AllowSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AllowSource::Config => "config",
            AllowSource::HostAddress => "host-address",
            AllowSource::Gateway => "gateway",
            AllowSource::SshSession => "ssh-session",
            AllowSource::AsteriskTrunk => "asterisk-trunk",
            AllowSource::Manual => "manual",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowEntry {
    pub net: IpNet,
    pub source: AllowSource,
    /// Free text: the interface, the Asterisk file and section, the operator's note.
    pub note: String,
}

impl AllowEntry {
    /// Host bits are cleared and IPv4-mapped IPv6 becomes IPv4.
    pub fn new(net: IpNet, source: AllowSource, note: impl Into<String>) -> AllowEntry {
        AllowEntry {
            net: canonical_net(net.trunc()),
            source,
            note: note.into(),
        }
    }
}

/// Lookups cost at most 33 (IPv4) or 129 (IPv6) map lookups however many
/// entries there are (see `PrefixLengths`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    by_net: BTreeMap<IpNet, Vec<AllowEntry>>,
    lengths: PrefixLengths,
}

impl Allowlist {
    pub fn new() -> Allowlist {
        Allowlist::default()
    }

    /// The configured `[allow] cidrs`.
    pub fn from_config(section: &AllowSection) -> Allowlist {
        let mut list = Allowlist::new();
        for cidr in &section.cidrs {
            list.insert(AllowEntry::new(
                cidr.net(),
                AllowSource::Config,
                "sipshield.toml",
            ));
        }
        list
    }

    /// Adds an entry; `false` when the same network from the same source was
    /// already there (its note is updated).
    pub fn insert(&mut self, entry: AllowEntry) -> bool {
        let entry = AllowEntry::new(entry.net, entry.source, entry.note);
        let net = entry.net;
        let entries = self.by_net.entry(net).or_default();
        if let Some(existing) = entries.iter_mut().find(|e| e.source == entry.source) {
            existing.note = entry.note;
            return false;
        }
        if entries.is_empty() {
            self.lengths.add(net);
        }
        entries.push(entry);
        true
    }

    /// Removes the entry of `source` for `net`; `false` if there was none.
    pub fn remove(&mut self, net: IpNet, source: AllowSource) -> bool {
        let net = canonical_net(net.trunc());
        let Some(entries) = self.by_net.get_mut(&net) else {
            return false;
        };
        let before = entries.len();
        entries.retain(|e| e.source != source);
        let removed = entries.len() != before;
        if entries.is_empty() {
            self.by_net.remove(&net);
            self.lengths.remove(net);
        }
        removed
    }

    /// Makes the entries of `source` exactly `entries` (for re-discovery and
    /// config reloads); other sources are untouched.
    pub fn replace_source(
        &mut self,
        source: AllowSource,
        entries: impl IntoIterator<Item = AllowEntry>,
    ) {
        let stale: Vec<IpNet> = self
            .entries()
            .filter(|e| e.source == source)
            .map(|e| e.net)
            .collect();
        for net in stale {
            self.remove(net, source);
        }
        for entry in entries {
            self.insert(AllowEntry { source, ..entry });
        }
    }

    /// The most specific entry containing `ip`.
    pub fn contains(&self, ip: IpAddr) -> Option<&AllowEntry> {
        self.longest_match(IpNet::from(ip.to_canonical()))
    }

    /// An entry containing all of `net`.
    pub fn covers(&self, net: IpNet) -> Option<&AllowEntry> {
        self.longest_match(canonical_net(net.trunc()))
    }

    fn longest_match(&self, net: IpNet) -> Option<&AllowEntry> {
        self.lengths
            .containing(net)
            .find_map(|candidate| self.by_net.get(&candidate)?.first())
    }

    pub fn entries(&self) -> impl Iterator<Item = &AllowEntry> {
        self.by_net.values().flatten()
    }

    /// Distinct networks, for the kernel's allowlist.
    pub fn nets(&self) -> Vec<IpNet> {
        self.by_net.keys().copied().collect()
    }

    /// Number of distinct networks.
    pub fn len(&self) -> usize {
        self.by_net.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_net.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn contains_finds_the_most_specific_entry() {
        let mut list = Allowlist::new();
        list.insert(AllowEntry::new(
            net("10.0.0.0/8"),
            AllowSource::Config,
            "wide",
        ));
        list.insert(AllowEntry::new(
            net("10.1.2.3/32"),
            AllowSource::SshSession,
            "me",
        ));
        assert_eq!(
            list.contains(ip("10.1.2.3")).map(|e| e.source),
            Some(AllowSource::SshSession)
        );
        assert_eq!(
            list.contains(ip("10.200.0.1")).map(|e| e.source),
            Some(AllowSource::Config)
        );
        assert!(list.contains(ip("11.0.0.1")).is_none());
        assert!(list.contains(ip("::ffff:10.9.9.9")).is_some());
        assert!(list.contains(ip("2001:db8::1")).is_none());
    }

    #[test]
    fn ipv6_entries() {
        let mut list = Allowlist::new();
        list.insert(AllowEntry::new(
            net("2001:db8:1::/48"),
            AllowSource::AsteriskTrunk,
            "pjsip.conf",
        ));
        assert!(list.contains(ip("2001:db8:1:ffff::5")).is_some());
        assert!(list.contains(ip("2001:db8:2::5")).is_none());
        assert!(list.covers(net("2001:db8:1:2::/64")).is_some());
        assert!(list.covers(net("2001:db8::/32")).is_none());
    }

    #[test]
    fn removal_and_replacement_are_per_source() {
        let mut list = Allowlist::new();
        list.insert(AllowEntry::new(
            net("192.0.2.1/32"),
            AllowSource::Config,
            "",
        ));
        list.insert(AllowEntry::new(
            net("192.0.2.1/32"),
            AllowSource::SshSession,
            "",
        ));
        list.insert(AllowEntry::new(
            net("192.0.2.2/32"),
            AllowSource::SshSession,
            "",
        ));
        list.replace_source(
            AllowSource::SshSession,
            [AllowEntry::new(
                net("192.0.2.9/32"),
                AllowSource::SshSession,
                "",
            )],
        );
        assert!(
            list.contains(ip("192.0.2.1")).is_some(),
            "config entry stays"
        );
        assert!(
            list.contains(ip("192.0.2.2")).is_none(),
            "ended session goes"
        );
        assert!(list.contains(ip("192.0.2.9")).is_some());
        assert!(list.remove(net("192.0.2.1/32"), AllowSource::Config));
        assert!(!list.remove(net("192.0.2.1/32"), AllowSource::Config));
        assert!(list.contains(ip("192.0.2.1")).is_none());
        assert_eq!(list.len(), 1);
    }
}
