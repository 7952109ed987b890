//! `[xdp]`: what the XDP program does per packet.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sipshield_common::{
    config::{
        Mode, RateLimit, ScannerAction, SipPort, UaPrefix, XdpConfig, DEFAULT_KERNEL_BAN_NS,
        DEFAULT_KNOWN_GOOD_FACTOR, DEFAULT_MESSAGE_FLOOD, DEFAULT_MESSAGE_POLICE,
        DEFAULT_REGISTER_FLOOD, DEFAULT_REGISTER_POLICE, DEFAULT_SCANNER_BAN_HITS,
        DEFAULT_SUSTAIN_NS, DEFAULT_UA_PREFIXES, MAX_SIP_PORTS, MAX_UA_PREFIXES, PORT_PARSE,
        PORT_SIGHTING, PORT_SOURCE_ONLY, PROTO_TCP, PROTO_UDP, UA_PREFIX_MAX_LEN,
    },
    maps,
};

use super::{
    duration::{human, BanLength},
    error::{KeyPath, Problems},
};
use crate::bpf::MapSizes;

/// How the program acts on its verdicts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShieldMode {
    /// Drop banned sources.
    #[default]
    Enforce,
    /// Drop nothing, ban nothing; count and report what would happen.
    Observe,
    /// As enforce, and drop all SIP-port traffic from sources not allowlisted.
    AllowlistOnly,
}

impl ShieldMode {
    pub fn kernel(self) -> Mode {
        match self {
            ShieldMode::Enforce => Mode::Enforce,
            ShieldMode::Observe => Mode::Observe,
            ShieldMode::AllowlistOnly => Mode::AllowlistOnly,
        }
    }
}

/// What to do with a request whose User-Agent is a known scanner's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScannerMode {
    #[default]
    Ban,
    Count,
}

impl ScannerMode {
    pub fn kernel(self) -> ScannerAction {
        match self {
            ScannerMode::Ban => ScannerAction::Ban,
            ScannerMode::Count => ScannerAction::Count,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Udp,
    Tcp,
}

/// One port carrying SIP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipPortSection {
    pub port: u16,
    #[serde(default = "both_protocols")]
    pub protocols: Vec<Protocol>,
    /// Encrypted (SIP over TLS): sources are counted, payloads are not parsed.
    #[serde(default)]
    pub tls: bool,
}

fn both_protocols() -> Vec<Protocol> {
    vec![Protocol::Udp, Protocol::Tcp]
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XdpSection {
    pub mode: ShieldMode,
    pub sip_ports: Vec<SipPortSection>,
    /// TCP ports that are not SIP (SSH, AMI, HTTP) whose connection attempts
    /// are noted per source, to break a tie between two readings of a log
    /// line. They share the program's port table with `sip_ports`.
    pub sighting_ports: Vec<u16>,
    /// REGISTER requests per second per source over which they are dropped
    /// (police bucket); 0 disables the REGISTER buckets.
    pub register_per_second: u64,
    pub register_burst: u64,
    /// REGISTERs per second per source over which it is banned (flood
    /// bucket, charged by every REGISTER); 0: never for that.
    pub register_flood_per_second: u64,
    pub register_flood_burst: u64,
    /// All SIP messages per second per source (police bucket); 0 disables
    /// the message buckets.
    pub message_per_second: u64,
    pub message_burst: u64,
    pub message_flood_per_second: u64,
    pub message_flood_burst: u64,
    /// Policed without a pause for longer than this, a source is banned;
    /// "0s": never for that.
    #[serde(with = "human")]
    pub rate_sustain: Duration,
    /// Known-good (authenticated) sources: policed at this many times the
    /// rates and bursts, never banned by the rate guard.
    pub known_good_factor: u64,
    /// First ban of a rate-guard offender (repeat offenders escalate).
    pub rate_ban: BanLength,
    pub scanner_action: ScannerMode,
    /// First ban of a scanner-signature offender.
    pub scanner_ban: BanLength,
    /// Scanner-signature requests from one unknown source before the kernel
    /// bans it (every one is dropped).
    pub scanner_ban_hits: u32,
    pub scanner_user_agents: Vec<String>,
    /// Log and operator bans per address family.
    pub max_bans: u32,
    pub max_ranges: u32,
    pub max_allow: u32,
    pub max_sources: u32,
    /// The kernel's own ban share per family (LRU: oldest forgotten first).
    pub max_kernel_bans: u32,
    /// Known-good (authenticated) sources per family.
    pub max_known: u32,
}

impl Default for XdpSection {
    fn default() -> Self {
        XdpSection {
            mode: ShieldMode::Enforce,
            sip_ports: vec![
                SipPortSection {
                    port: 5060,
                    protocols: both_protocols(),
                    tls: false,
                },
                SipPortSection {
                    port: 5061,
                    protocols: vec![Protocol::Tcp],
                    tls: true,
                },
            ],
            // sshd, Asterisk's manager (AMI) and its HTTP server (plain, TLS).
            sighting_ports: sipshield_common::config::DEFAULT_SIGHTING_PORTS.to_vec(),
            register_per_second: DEFAULT_REGISTER_POLICE.0,
            register_burst: DEFAULT_REGISTER_POLICE.1,
            register_flood_per_second: DEFAULT_REGISTER_FLOOD.0,
            register_flood_burst: DEFAULT_REGISTER_FLOOD.1,
            message_per_second: DEFAULT_MESSAGE_POLICE.0,
            message_burst: DEFAULT_MESSAGE_POLICE.1,
            message_flood_per_second: DEFAULT_MESSAGE_FLOOD.0,
            message_flood_burst: DEFAULT_MESSAGE_FLOOD.1,
            rate_sustain: Duration::from_nanos(DEFAULT_SUSTAIN_NS),
            known_good_factor: DEFAULT_KNOWN_GOOD_FACTOR,
            rate_ban: BanLength::For(Duration::from_nanos(DEFAULT_KERNEL_BAN_NS)),
            scanner_action: ScannerMode::Ban,
            scanner_ban: BanLength::For(Duration::from_nanos(DEFAULT_KERNEL_BAN_NS)),
            scanner_ban_hits: DEFAULT_SCANNER_BAN_HITS,
            scanner_user_agents: DEFAULT_UA_PREFIXES.iter().map(|s| s.to_string()).collect(),
            max_bans: maps::DEFAULT_MAX_BANS,
            max_ranges: maps::DEFAULT_MAX_RANGES,
            max_allow: maps::DEFAULT_MAX_ALLOW,
            max_sources: maps::DEFAULT_MAX_SOURCES,
            max_kernel_bans: maps::DEFAULT_MAX_KERNEL_BANS,
            max_known: maps::DEFAULT_MAX_KNOWN,
        }
    }
}

/// A flood bucket only where its police bucket is on: with the police off,
/// nothing of that kind is policed or banned.
fn flood_bucket(police: RateLimit, per_second: u64, burst: u64) -> RateLimit {
    if police.is_disabled() {
        return police;
    }
    RateLimit::new(per_second, burst)
}

/// A rate above this has an interval under 1 ns: the kernel could not express it.
const MAX_PER_SECOND: u64 = 1_000_000_000;

impl XdpSection {
    /// The program's config record. `ua_prefix_count` is set from
    /// `ua_prefixes()`; the config map writer sets it again when writing both.
    pub fn to_xdp_config(&self) -> XdpConfig {
        let mut sip_ports = [SipPort::default(); MAX_SIP_PORTS];
        for (slot, port) in sip_ports.iter_mut().zip(&self.sip_ports) {
            *slot = SipPort {
                port: port.port,
                protos: port.protocols.iter().fold(0, |bits, p| {
                    bits | match p {
                        Protocol::Udp => PROTO_UDP,
                        Protocol::Tcp => PROTO_TCP,
                    }
                }),
                kind: if port.tls {
                    PORT_SOURCE_ONLY
                } else {
                    PORT_PARSE
                },
            };
        }
        let watched = self
            .sighting_ports
            .iter()
            .filter(|p| !self.sip_ports.iter().any(|s| s.port == **p));
        for (slot, port) in sip_ports.iter_mut().skip(self.sip_ports.len()).zip(watched) {
            *slot = SipPort {
                port: *port,
                protos: PROTO_TCP,
                kind: PORT_SIGHTING,
            };
        }
        let register_limit = RateLimit::new(self.register_per_second, self.register_burst);
        let message_limit = RateLimit::new(self.message_per_second, self.message_burst);
        XdpConfig {
            mode: self.mode.kernel() as u32,
            scanner_action: self.scanner_action.kernel() as u32,
            sip_ports,
            register_limit,
            message_limit,
            register_flood: flood_bucket(
                register_limit,
                self.register_flood_per_second,
                self.register_flood_burst,
            ),
            message_flood: flood_bucket(
                message_limit,
                self.message_flood_per_second,
                self.message_flood_burst,
            ),
            known_register_extra: RateLimit::known_extra(
                (self.register_per_second, self.register_burst),
                self.known_good_factor,
            ),
            known_message_extra: RateLimit::known_extra(
                (self.message_per_second, self.message_burst),
                self.known_good_factor,
            ),
            sustain_ns: u64::try_from(self.rate_sustain.as_nanos()).unwrap_or(u64::MAX),
            rate_ban_ns: self.rate_ban.as_kernel_ns(),
            scanner_ban_ns: self.scanner_ban.as_kernel_ns(),
            ua_prefix_count: self.ua_prefixes().len() as u32,
            scanner_ban_hits: self.scanner_ban_hits,
            seen_seed: 0,
        }
    }

    /// The scanner signatures, lower-cased for the kernel. Entries that do not
    /// fit are left out (validation reports them).
    pub fn ua_prefixes(&self) -> Vec<UaPrefix> {
        self.scanner_user_agents
            .iter()
            .filter_map(|ua| UaPrefix::new(ua.as_bytes()))
            .take(MAX_UA_PREFIXES as usize)
            .collect()
    }

    pub fn map_sizes(&self) -> MapSizes {
        MapSizes {
            max_bans: self.max_bans,
            max_ranges: self.max_ranges,
            max_allow: self.max_allow,
            max_sources: self.max_sources,
            max_kernel_bans: self.max_kernel_bans,
            max_known: self.max_known,
        }
    }

    pub(crate) fn validate(&self, problems: &mut Problems) {
        let section = KeyPath::new("xdp");
        if self.sip_ports.len() > MAX_SIP_PORTS {
            problems.push(
                section.key("sip_ports"),
                format!(
                    "{} ports listed, at most {MAX_SIP_PORTS} fit",
                    self.sip_ports.len()
                ),
            );
        }
        if self.sip_ports.len() <= MAX_SIP_PORTS
            && self.sip_ports.len() + self.sighting_ports.len() > MAX_SIP_PORTS
        {
            problems.push(
                section.key("sighting_ports"),
                format!(
                    "{} sighting ports and {} SIP ports: at most {MAX_SIP_PORTS} fit together",
                    self.sighting_ports.len(),
                    self.sip_ports.len()
                ),
            );
        }
        for (i, port) in self.sighting_ports.iter().enumerate() {
            let key = section.key("sighting_ports").index(i);
            if *port == 0 {
                problems.push(key, "port 0 is not a port");
            } else if self.sighting_ports[..i].contains(port) {
                problems.push(key, format!("port {port} is listed twice"));
            } else if self.sip_ports.iter().any(|s| s.port == *port) {
                problems.push(key, format!("port {port} is a SIP port (sip_ports)"));
            }
        }
        for (i, port) in self.sip_ports.iter().enumerate() {
            let key = section.key("sip_ports").index(i);
            if port.port == 0 {
                problems.push(key.key("port"), "port 0 is not a port");
            } else if self.sip_ports[..i].iter().any(|p| p.port == port.port) {
                problems.push(
                    key.key("port"),
                    format!("port {} is listed twice", port.port),
                );
            }
            if port.protocols.is_empty() {
                problems.push(key.key("protocols"), "list udp, tcp or both");
            }
            if port.tls && port.protocols.contains(&Protocol::Udp) {
                problems.push(key.key("protocols"), "SIP over TLS runs on tcp only");
            }
        }
        for (key, per_second) in [
            ("register_per_second", self.register_per_second),
            ("register_flood_per_second", self.register_flood_per_second),
            ("message_per_second", self.message_per_second),
            ("message_flood_per_second", self.message_flood_per_second),
        ] {
            if per_second > MAX_PER_SECOND {
                problems.push(
                    section.key(key),
                    format!("at most {MAX_PER_SECOND} (0 disables)"),
                );
            }
        }
        // A flood bucket smaller than its police bucket would ban what the
        // police lets through: the stages would be upside down.
        for (key, police, flood) in [
            (
                "register_flood_per_second",
                (self.register_per_second, self.register_burst),
                (self.register_flood_per_second, self.register_flood_burst),
            ),
            (
                "message_flood_per_second",
                (self.message_per_second, self.message_burst),
                (self.message_flood_per_second, self.message_flood_burst),
            ),
        ] {
            let police_on = police.0 != 0 && police.1 != 0;
            let flood_on = flood.0 != 0 && flood.1 != 0;
            if police_on && flood_on && (flood.0 < police.0 || flood.1 < police.1) {
                problems.push(
                    section.key(key),
                    format!(
                        "the flood bucket ({}/s, burst {}) is below the police bucket ({}/s, burst {}): \
                         it must be at least as large",
                        flood.0, flood.1, police.0, police.1
                    ),
                );
            }
        }
        if self.known_good_factor == 0 {
            problems.push(
                section.key("known_good_factor"),
                "at least 1 (1: known-good sources get the same limits, still never banned)",
            );
        }
        for (key, length) in [
            ("rate_ban", self.rate_ban),
            ("scanner_ban", self.scanner_ban),
        ] {
            if length == BanLength::For(Duration::ZERO) {
                problems.push(
                    section.key(key),
                    "a ban of 0s bans nothing (use e.g. \"1h\" or \"permanent\")",
                );
            }
        }
        if self.scanner_ban_hits == 0 {
            problems.push(
                section.key("scanner_ban_hits"),
                "at least 1 (1 lets one forged datagram ban its source address)",
            );
        }
        let agents = &self.scanner_user_agents;
        if agents.len() > MAX_UA_PREFIXES as usize {
            problems.push(
                section.key("scanner_user_agents"),
                format!(
                    "{} prefixes listed, at most {MAX_UA_PREFIXES} fit",
                    agents.len()
                ),
            );
        }
        for (i, ua) in agents.iter().enumerate() {
            let key = section.key("scanner_user_agents").index(i);
            if ua.is_empty() {
                problems.push(key, "an empty prefix would match every request");
            } else if ua.len() > UA_PREFIX_MAX_LEN {
                problems.push(
                    key,
                    format!(
                        "{ua:?} is {} bytes, at most {UA_PREFIX_MAX_LEN} fit",
                        ua.len()
                    ),
                );
            } else if ua.chars().any(char::is_control) {
                problems.push(key, format!("{ua:?} contains control characters"));
            } else if agents[..i].iter().any(|a| a.eq_ignore_ascii_case(ua)) {
                problems.push(
                    key,
                    format!("{ua:?} is listed twice (matching ignores case)"),
                );
            }
        }
        for (key, size) in [
            ("max_bans", self.max_bans),
            ("max_ranges", self.max_ranges),
            ("max_allow", self.max_allow),
            ("max_sources", self.max_sources),
            ("max_kernel_bans", self.max_kernel_bans),
            ("max_known", self.max_known),
        ] {
            if size == 0 {
                problems.push(section.key(key), "a map needs at least 1 entry");
            }
        }
    }
}
