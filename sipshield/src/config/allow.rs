//! `[allow]`: sources never banned, configured and discovered.

use std::{fmt, net::IpAddr, path::PathBuf, str::FromStr, time::Duration};

use ipnet::IpNet;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use super::{
    duration::human,
    error::{KeyPath, Problems},
};

/// An address or network: `"192.0.2.7"`, `"198.51.100.0/24"`, `"2001:db8::/32"`.
/// Host bits are cleared (`"10.1.2.3/8"` is `10.0.0.0/8`); IPv4-mapped IPv6
/// addresses are stored as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr(pub IpNet);

impl Cidr {
    pub fn net(self) -> IpNet {
        self.0
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(Cidr(IpNet::from(addr.to_canonical())));
        }
        match s.parse::<IpNet>() {
            Ok(net) => Ok(Cidr(canonical_net(net.trunc()))),
            Err(_) => Err(format!(
                "{s:?} is not an IP address or CIDR (e.g. \"192.0.2.0/24\")"
            )),
        }
    }
}

/// `::ffff:a.b.c.d/n` (n >= 96) is the IPv4 network `a.b.c.d/(n-96)`.
pub(crate) fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        _ => net,
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// A rate cap on allowlisted sources: every allowlist entry inside `net`
/// (configured or discovered) may send `per_second` packets with a burst of
/// `burst`; the excess is dropped and counted, never banned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowCap {
    pub net: Cidr,
    pub per_second: u64,
    pub burst: u64,
}

impl AllowCap {
    pub fn limit(&self) -> sipshield_common::config::RateLimit {
        sipshield_common::config::RateLimit::new(self.per_second, self.burst)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AllowSection {
    pub cidrs: Vec<Cidr>,
    /// Optional rate caps on allowlist entries (none by default).
    pub caps: Vec<AllowCap>,
    /// The host's own addresses (and loopback).
    pub host_addresses: bool,
    /// The host's default gateways (IPv4 and IPv6).
    pub default_gateways: bool,
    /// Peers of authenticated SSH sessions (sshd `Accepted` lines in the
    /// auth log) while their connection to `ssh_ports` lasts.
    pub ssh_sessions: bool,
    pub ssh_ports: Vec<u16>,
    /// How long a session stays allowlisted after its connection is gone.
    #[serde(with = "human")]
    pub ssh_grace: Duration,
    /// SIP trunk hosts from Asterisk's sip.conf and pjsip.conf.
    pub asterisk_trunks: bool,
    pub asterisk_config_dir: PathBuf,
    /// How often the automatic sources are looked at again.
    #[serde(with = "human")]
    pub refresh: Duration,
}

impl Default for AllowSection {
    fn default() -> Self {
        AllowSection {
            cidrs: Vec::new(),
            caps: Vec::new(),
            host_addresses: true,
            default_gateways: true,
            ssh_sessions: true,
            ssh_ports: vec![22],
            ssh_grace: Duration::from_secs(120),
            asterisk_trunks: true,
            asterisk_config_dir: PathBuf::from("/etc/asterisk"),
            refresh: Duration::from_secs(60),
        }
    }
}

impl AllowSection {
    /// The cap for an allowlist entry: the first cap whose net holds it.
    pub fn cap_for(&self, entry: IpNet) -> Option<sipshield_common::config::RateLimit> {
        self.caps
            .iter()
            .find(|c| c.net.0.contains(&entry))
            .map(AllowCap::limit)
    }

    pub(crate) fn validate(&self, max_allow: u32, problems: &mut Problems) {
        let section = KeyPath::new("allow");
        if self.cidrs.len() > max_allow as usize {
            problems.push(
                section.key("cidrs"),
                format!(
                    "{} entries but xdp.max_allow is {max_allow}",
                    self.cidrs.len()
                ),
            );
        }
        for (i, cidr) in self.cidrs.iter().enumerate() {
            if cidr.0.prefix_len() == 0 {
                problems.push(
                    section.key("cidrs").index(i),
                    format!("{cidr} allows every address: nothing could be banned"),
                );
            }
        }
        for (i, cap) in self.caps.iter().enumerate() {
            let key = section.key("caps").index(i);
            if cap.per_second == 0 || cap.per_second > 1_000_000_000 {
                problems.push(key.key("per_second"), "between 1 and 1000000000");
            }
            if cap.burst == 0 {
                problems.push(key.key("burst"), "at least 1");
            }
        }
        for (i, port) in self.ssh_ports.iter().enumerate() {
            if *port == 0 {
                problems.push(section.key("ssh_ports").index(i), "port 0 is not a port");
            }
        }
        if self.ssh_sessions && self.ssh_ports.is_empty() {
            problems.push(
                section.key("ssh_ports"),
                "list sshd's port(s) or set ssh_sessions = false",
            );
        }
        if self.ssh_grace > Duration::from_secs(86_400) {
            problems.push(
                section.key("ssh_grace"),
                "at most 1d: a session ended long ago proves nothing",
            );
        }
        if self.asterisk_trunks && self.asterisk_config_dir.as_os_str().is_empty() {
            problems.push(section.key("asterisk_config_dir"), "must not be empty");
        }
        if self.refresh.is_zero() {
            problems.push(section.key("refresh"), "must be longer than 0");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_accept_addresses_and_networks() {
        let cidr = |s: &str| s.parse::<Cidr>().map(|c| c.to_string());
        assert_eq!(cidr("192.0.2.7"), Ok("192.0.2.7/32".to_string()));
        assert_eq!(cidr("10.1.2.3/8"), Ok("10.0.0.0/8".to_string()));
        assert_eq!(cidr("2001:db8::1"), Ok("2001:db8::1/128".to_string()));
        assert_eq!(cidr("::ffff:192.0.2.7"), Ok("192.0.2.7/32".to_string()));
        assert_eq!(cidr("::ffff:192.0.2.0/120"), Ok("192.0.2.0/24".to_string()));
        assert!(cidr("192.0.2.0/33").is_err());
        assert!(cidr("pbx.example.com").is_err());
    }

    #[test]
    fn a_cap_covers_the_allowlist_entries_inside_its_net() {
        let section = AllowSection {
            caps: vec![AllowCap {
                net: "192.0.2.0/24".parse().unwrap(),
                per_second: 100,
                burst: 200,
            }],
            ..AllowSection::default()
        };
        let cap = section.cap_for("192.0.2.50/32".parse().unwrap()).unwrap();
        assert_eq!(cap, sipshield_common::config::RateLimit::new(100, 200));
        assert!(section.cap_for("192.0.3.1/32".parse().unwrap()).is_none());
        assert!(
            section.cap_for("192.0.0.0/16".parse().unwrap()).is_none(),
            "a wider entry is not inside the cap"
        );
    }
}
