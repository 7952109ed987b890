//! What the state file records: bans, offence history, manual allow entries.

use std::{cmp::Ordering, fmt, net::IpAddr, str::FromStr};

use ipnet::IpNet;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::offence::OffenceClass;

/// What a ban covers: one address (exact ban table) or a network (range table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BanTarget {
    Addr(IpAddr),
    Net(IpNet),
}

impl BanTarget {
    /// `/32` and `/128` networks become addresses; IPv4-mapped IPv6 becomes
    /// IPv4; host bits of networks are cleared.
    pub fn from_net(net: IpNet) -> BanTarget {
        let net = crate::config::canonical_net(net.trunc());
        if net.prefix_len() == net.max_prefix_len() {
            BanTarget::Addr(net.addr())
        } else {
            BanTarget::Net(net)
        }
    }

    pub fn addr(ip: IpAddr) -> BanTarget {
        BanTarget::Addr(ip.to_canonical())
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match self {
            BanTarget::Addr(a) => *a == ip.to_canonical(),
            BanTarget::Net(n) => n.contains(&ip.to_canonical()),
        }
    }

    pub fn as_net(&self) -> IpNet {
        match self {
            BanTarget::Addr(a) => IpNet::from(*a),
            BanTarget::Net(n) => *n,
        }
    }
}

// Ordered as networks (address, then prefix), so listings group neighbours.
impl Ord for BanTarget {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_net().cmp(&other.as_net())
    }
}

impl PartialOrd for BanTarget {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl From<IpAddr> for BanTarget {
    fn from(ip: IpAddr) -> Self {
        BanTarget::addr(ip)
    }
}

impl From<IpNet> for BanTarget {
    fn from(net: IpNet) -> Self {
        BanTarget::from_net(net)
    }
}

impl fmt::Display for BanTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BanTarget::Addr(a) => fmt::Display::fmt(a, f),
            BanTarget::Net(n) => fmt::Display::fmt(n, f),
        }
    }
}

impl FromStr for BanTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(BanTarget::addr(ip));
        }
        s.parse::<IpNet>()
            .map(BanTarget::from_net)
            .map_err(|_| format!("{s:?} is not an IP address or CIDR"))
    }
}

impl Serialize for BanTarget {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BanTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// Who made a ban.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BanOrigin {
    /// Failures counted from logs.
    Log,
    /// The kernel's rate guard.
    KernelRateGuard,
    /// The kernel's scanner signature.
    KernelScanner,
    /// An operator (`sipshield bans add`).
    Manual,
}

impl BanOrigin {
    /// The kernel's coarser view of the same thing.
    pub fn kernel(self) -> sipshield_common::BanOrigin {
        match self {
            BanOrigin::Log => sipshield_common::BanOrigin::Userspace,
            BanOrigin::Manual => sipshield_common::BanOrigin::Operator,
            BanOrigin::KernelRateGuard => sipshield_common::BanOrigin::RateGuard,
            BanOrigin::KernelScanner => sipshield_common::BanOrigin::Scanner,
        }
    }
}

impl fmt::Display for BanOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BanOrigin::Log => "log",
            BanOrigin::KernelRateGuard => "kernel-rate-guard",
            BanOrigin::KernelScanner => "kernel-scanner",
            BanOrigin::Manual => "manual",
        })
    }
}

/// One ban. Times are wall-clock unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanRecord {
    pub target: BanTarget,
    pub created: u64,
    /// `None` (JSON `null`): permanent.
    pub expires: Option<u64>,
    pub class: OffenceClass,
    pub origin: BanOrigin,
    /// The source's how-many-th ban this is (1 = first); 0 for manual bans,
    /// which take no part in escalation.
    pub offence_number: u32,
    /// Shared: a million bans have a handful of distinct reasons.
    pub reason: std::sync::Arc<str>,
}

impl BanRecord {
    pub fn is_active(&self, now_unix: u64) -> bool {
        self.expires.is_none_or(|e| now_unix < e)
    }
}

/// An open failure window: the latest offences of one source and class,
/// so a restart does not give a guesser a fresh count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRecord {
    pub addr: IpAddr,
    pub class: OffenceClass,
    /// Unix milliseconds, oldest first; empty: the window is gone.
    pub times_ms: Vec<u64>,
}

/// A SIP source that authenticated (Asterisk's `SuccessfulAuth`), known
/// good until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownGoodRecord {
    pub addr: IpAddr,
    /// Unix seconds.
    pub until: u64,
}

/// What policy remembers about a source between bans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    pub addr: IpAddr,
    /// Bans so far (selects the next step of the ban ladder).
    pub bans: u32,
    /// Unix seconds of its latest offence.
    pub last_offence: u64,
    /// Unix seconds when its latest timed ban ends (`None`: none, or permanent).
    pub banned_until: Option<u64>,
}

/// An allowlist entry added at run time (`sipshield allow add`); configured
/// and discovered entries are not stored, they are found again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowRecord {
    pub net: IpNet,
    pub note: String,
}

/// One authenticated session, as the state file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshSession {
    pub ip: IpAddr,
    pub port: u16,
    /// sshd's method name (`publickey`, `password`, ...).
    pub method: String,
    /// Unix seconds of the `Accepted` line.
    pub accepted: u64,
    /// Unix seconds the connection was last seen established (the accept
    /// time until a refresh sees it).
    pub last_open: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_normalise_host_networks_to_addresses() {
        let parse = |s: &str| s.parse::<BanTarget>();
        assert_eq!(parse("192.0.2.1/32"), parse("192.0.2.1"));
        assert_eq!(parse("::ffff:192.0.2.1"), parse("192.0.2.1"));
        assert_eq!(
            parse("10.9.8.7/8").map(|t| t.to_string()),
            Ok("10.0.0.0/8".to_string())
        );
        assert!(matches!(parse("2001:db8::/32"), Ok(BanTarget::Net(_))));
        assert!(parse("nonsense").is_err());
    }

    #[test]
    fn networks_contain_their_addresses() {
        let net: BanTarget = "198.51.100.0/24".parse().unwrap();
        assert!(net.contains("198.51.100.200".parse().unwrap()));
        assert!(!net.contains("198.51.101.1".parse().unwrap()));
        assert!(net.contains("::ffff:198.51.100.1".parse().unwrap()));
    }
}
