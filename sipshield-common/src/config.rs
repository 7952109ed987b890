//! The XDP program's configuration, written by userspace into the one-entry
//! `CONFIG` array map and read by the program on every packet.

/// How the program acts on what it decides.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Drop what the rules say to drop.
    Enforce = 0,
    /// Never drop; count what would have been dropped, by reason.
    Observe = 1,
    /// As `Enforce`, and drop all SIP-port traffic from sources that are not
    /// allowlisted ("allow ONLY specific IPs").
    AllowlistOnly = 2,
}

impl Mode {
    pub const fn from_u32(v: u32) -> Mode {
        match v {
            1 => Mode::Observe,
            2 => Mode::AllowlistOnly,
            _ => Mode::Enforce,
        }
    }
}

/// What to do with a SIP request whose User-Agent matches a scanner prefix.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScannerAction {
    /// Count it (and report the source once); let it through.
    Count = 0,
    /// Ban the source in the kernel, like the rate guard.
    Ban = 1,
}

/// `SipPort::protos` bits.
pub const PROTO_UDP: u8 = 1;
pub const PROTO_TCP: u8 = 2;

/// `SipPort::kind`: parse the payload (method, User-Agent, rate guard).
pub const PORT_PARSE: u8 = 0;
/// `SipPort::kind`: encrypted (TLS); count by source only.
pub const PORT_SOURCE_ONLY: u8 = 1;
/// `SipPort::kind`: not SIP (SSH, AMI, HTTP): a source's TCP SYNs are noted
/// in the source table (when it was last seen), nothing is policed. The
/// daemon breaks a tie between two readings of a log line with it.
pub const PORT_SIGHTING: u8 = 2;

/// The default `PORT_SIGHTING` ports: sshd, AMI, Asterisk's HTTP and HTTPS.
pub const DEFAULT_SIGHTING_PORTS: [u16; 4] = [22, 5038, 8088, 8089];

/// A destination port the program treats as SIP. `port == 0` ends the list.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SipPort {
    /// Host byte order.
    pub port: u16,
    /// `PROTO_UDP | PROTO_TCP`.
    pub protos: u8,
    /// `PORT_PARSE`, `PORT_SOURCE_ONLY` or `PORT_SIGHTING`.
    pub kind: u8,
}

pub const MAX_SIP_PORTS: usize = 8;
pub const MAX_UA_PREFIXES: u32 = 16;
pub const UA_PREFIX_MAX_LEN: usize = 32;
/// How many payload bytes the scanner signature looks at: a whole
/// Ethernet-sized datagram, so padding headers cannot push a User-Agent out
/// of sight. A request whose headers run past it is passed unscanned (and
/// counted, `ua_unscanned`).
pub const UA_SCAN_LIMIT: usize = 2048;
/// First kernel ban (rate guard and scanner): short, because UDP sources
/// can be forged. The daemon lengthens bans of repeat offenders.
pub const DEFAULT_KERNEL_BAN_NS: u64 = 600 * 1_000_000_000;
/// Scanner-signature requests before an unknown source is banned.
pub const DEFAULT_SCANNER_BAN_HITS: u32 = 3;
/// Shortest UDP payload of a first fragment on a SIP port: anything
/// shorter cannot hold a request line and is dropped.
pub const MIN_FIRST_FRAGMENT_PAYLOAD: usize = 16;
/// The per-CPU copy of the payload is longer than what is scanned so that
/// word reads starting inside the scanned part stay inside the buffer.
pub const SCRATCH_LEN: usize = UA_SCAN_LIMIT + 136;

/// The rate guard's defaults (issue 15, `docs/rate-guard.md`): an office of
/// 100 phones behind one address re-registering at once (two REGISTERs
/// each, the second after a challenge, plus retransmissions) is policed,
/// never banned; a flood of thousands a second is banned within a second.
pub const DEFAULT_REGISTER_POLICE: (u64, u64) = (30, 120);
pub const DEFAULT_REGISTER_FLOOD: (u64, u64) = (300, 600);
pub const DEFAULT_MESSAGE_POLICE: (u64, u64) = (60, 240);
pub const DEFAULT_MESSAGE_FLOOD: (u64, u64) = (600, 1200);
/// Known-good (authenticated) sources are policed at this many times the
/// rates and bursts, and never banned by the guard.
pub const DEFAULT_KNOWN_GOOD_FACTOR: u64 = 4;
/// Policed without a pause for longer than this, a source is banned: a
/// storm's transactions end within Timer F (32 s) of their first send and
/// start within a couple of seconds of each other.
pub const DEFAULT_SUSTAIN_NS: u64 = 40 * 1_000_000_000;
/// A pause longer than this between policed messages ends their run (RFC
/// 3261's T2 is 4 s: a storm's late retransmissions are further apart).
pub const POLICE_GAP_NS: u64 = 2 * 1_000_000_000;

/// Token buckets are kept as GCRA "theoretical arrival times": a source may
/// send one request every `interval_ns` with a burst of `burst` back to back.
/// `interval_ns == 0` disables a bucket. Userspace precomputes
/// `window_ns = burst * interval_ns` so the packet path does no division.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub interval_ns: u64,
    pub window_ns: u64,
}

impl RateLimit {
    /// `per_second` requests per second with a burst of `burst`; 0 disables.
    pub const fn new(per_second: u64, burst: u64) -> RateLimit {
        if per_second == 0 || burst == 0 {
            return RateLimit {
                interval_ns: 0,
                window_ns: 0,
            };
        }
        let interval_ns = 1_000_000_000 / per_second;
        RateLimit {
            interval_ns,
            window_ns: interval_ns.saturating_mul(burst),
        }
    }

    /// From `(per_second, burst)`.
    pub const fn pair(limit: (u64, u64)) -> RateLimit {
        RateLimit::new(limit.0, limit.1)
    }

    /// The extra bucket of a known-good source whose limits are `factor`
    /// times `police` (`(per_second, burst)`): the difference. A factor of
    /// 1 or less: none (disabled).
    pub const fn known_extra(police: (u64, u64), factor: u64) -> RateLimit {
        if factor <= 1 {
            return RateLimit::new(0, 0);
        }
        RateLimit::new(
            police.0.saturating_mul(factor - 1),
            police.1.saturating_mul(factor - 1),
        )
    }

    pub const fn is_disabled(&self) -> bool {
        self.interval_ns == 0
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XdpConfig {
    /// `Mode` as u32.
    pub mode: u32,
    /// `ScannerAction` as u32.
    pub scanner_action: u32,
    pub sip_ports: [SipPort; MAX_SIP_PORTS],
    /// REGISTER requests per source: the police bucket (a message over it
    /// is dropped, `Reason::Policed`).
    pub register_limit: RateLimit,
    /// All SIP messages per source (requests, responses and unrecognised).
    pub message_limit: RateLimit,
    /// The flood buckets, charged by every message: an unknown source over
    /// one is banned at once. Disabled: only a sustained run bans.
    pub register_flood: RateLimit,
    pub message_flood: RateLimit,
    /// Known-good sources: the room they have beyond the police buckets,
    /// buckets of their own of (factor - 1) times the police rate and burst
    /// (disabled: none). They are never banned.
    pub known_register_extra: RateLimit,
    pub known_message_extra: RateLimit,
    /// An unknown source policed without a pause (`POLICE_GAP_NS`) for
    /// longer than this is banned; 0: never for that.
    pub sustain_ns: u64,
    /// Duration of a rate-guard ban; 0 = permanent.
    pub rate_ban_ns: u64,
    /// Duration of a scanner-signature ban; 0 = permanent.
    pub scanner_ban_ns: u64,
    /// Entries in use at the start of the `UA_PREFIXES` array.
    pub ua_prefix_count: u32,
    /// Requests with a scanner signature from one unknown source before the
    /// kernel bans it (each is dropped regardless): one forged datagram
    /// must not cut anyone off. 0 behaves as 1.
    pub scanner_ban_hits: u32,
    /// Key of the first-sight filter's hash (random, set by userspace when
    /// it writes the config), so nobody can pick colliding sources.
    pub seen_seed: u64,
}

impl Default for XdpConfig {
    fn default() -> Self {
        let mut sip_ports = [SipPort::default(); MAX_SIP_PORTS];
        sip_ports[0] = SipPort {
            port: 5060,
            protos: PROTO_UDP | PROTO_TCP,
            kind: PORT_PARSE,
        };
        sip_ports[1] = SipPort {
            port: 5061,
            protos: PROTO_TCP,
            kind: PORT_SOURCE_ONLY,
        };
        // Connection attempts noted: sshd, AMI, Asterisk's HTTP (and TLS).
        for (slot, port) in sip_ports[2..].iter_mut().zip(DEFAULT_SIGHTING_PORTS) {
            *slot = SipPort {
                port,
                protos: PROTO_TCP,
                kind: PORT_SIGHTING,
            };
        }
        XdpConfig {
            mode: Mode::Enforce as u32,
            scanner_action: ScannerAction::Ban as u32,
            sip_ports,
            register_limit: RateLimit::pair(DEFAULT_REGISTER_POLICE),
            message_limit: RateLimit::pair(DEFAULT_MESSAGE_POLICE),
            register_flood: RateLimit::pair(DEFAULT_REGISTER_FLOOD),
            message_flood: RateLimit::pair(DEFAULT_MESSAGE_FLOOD),
            known_register_extra: RateLimit::known_extra(
                DEFAULT_REGISTER_POLICE,
                DEFAULT_KNOWN_GOOD_FACTOR,
            ),
            known_message_extra: RateLimit::known_extra(
                DEFAULT_MESSAGE_POLICE,
                DEFAULT_KNOWN_GOOD_FACTOR,
            ),
            sustain_ns: DEFAULT_SUSTAIN_NS,
            rate_ban_ns: DEFAULT_KERNEL_BAN_NS,
            scanner_ban_ns: DEFAULT_KERNEL_BAN_NS,
            ua_prefix_count: 0,
            scanner_ban_hits: DEFAULT_SCANNER_BAN_HITS,
            seen_seed: 0,
        }
    }
}

/// One scanner User-Agent prefix, ready for a branch-free, case-insensitive
/// compare eight bytes at a time: payload word `x` matches word `i` when
/// `((x | fold[i]) ^ want[i]) & mask[i] == 0`. Byte `j` of the prefix sits in
/// word `j / 8` at bits `8 * (j % 8)` (little-endian loads).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UaPrefix {
    /// The prefix, ASCII letters lower-cased.
    pub want: [u64; 4],
    /// 0x20 in the bytes that are ASCII letters (folds case), else 0.
    pub fold: [u64; 4],
    /// 0xff in the bytes the prefix covers.
    pub mask: [u64; 4],
    pub len: u32,
    pub _pad: u32,
}

impl UaPrefix {
    /// `None` when empty or longer than `UA_PREFIX_MAX_LEN`.
    pub fn new(prefix: &[u8]) -> Option<UaPrefix> {
        if prefix.is_empty() || prefix.len() > UA_PREFIX_MAX_LEN {
            return None;
        }
        let mut p = UaPrefix {
            want: [0; 4],
            fold: [0; 4],
            mask: [0; 4],
            len: prefix.len() as u32,
            _pad: 0,
        };
        for (j, b) in prefix.iter().enumerate() {
            let shift = 8 * (j % 8);
            let letter = b.is_ascii_alphabetic();
            p.want[j / 8] |= u64::from(b.to_ascii_lowercase()) << shift;
            p.fold[j / 8] |= u64::from(if letter { 0x20u8 } else { 0 }) << shift;
            p.mask[j / 8] |= 0xffu64 << shift;
        }
        Some(p)
    }

    /// The prefix text (lower-cased), for display.
    pub fn bytes(&self) -> [u8; UA_PREFIX_MAX_LEN] {
        let mut out = [0u8; UA_PREFIX_MAX_LEN];
        for (j, b) in out.iter_mut().enumerate().take(self.len as usize) {
            *b = (self.want[j / 8] >> (8 * (j % 8))) as u8;
        }
        out
    }
}

/// The signatures shipped by default: User-Agents of common SIP scanners and
/// password crackers.
pub const DEFAULT_UA_PREFIXES: [&str; 10] = [
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "VaxSIPUserAgent",
    "pplsip",
    "sundayddr",
    "iWar",
    "sip-scan",
    "SIVuS",
    "smap",
];
