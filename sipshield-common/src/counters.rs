//! Per-CPU packet counters.
//!
//! Every packet increments exactly one verdict counter in `VERDICTS`, in the
//! block of the interface slot it came in on, at `verdict_index(action,
//! reason)`. `COUNTERS` holds event counters that do not classify packets
//! (`Counter`), then SIP messages by method.

/// What happened to the packet.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Pass = 0,
    Drop = 1,
    /// Observe mode: would have been dropped, was passed.
    WouldDrop = 2,
}

impl Action {
    pub const COUNT: usize = 3;
    pub const ALL: [Action; Self::COUNT] = [Action::Pass, Action::Drop, Action::WouldDrop];

    pub const fn name(self) -> &'static str {
        match self {
            Action::Pass => "pass",
            Action::Drop => "drop",
            Action::WouldDrop => "would_drop",
        }
    }
}

/// Why.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Source in the allowlist (always PASS).
    Allowlisted = 0,
    /// Not IPv4/IPv6 (ARP, LLDP, ...), or a frame too short to tell.
    NotIp = 1,
    /// SIP message counted per source.
    SipCounted = 2,
    /// IP traffic from an unlisted source that is not SIP (or carries no
    /// SIP payload, e.g. a bare TCP ACK to 5060).
    NotSip = 3,
    /// Source in the exact ban table.
    BannedExact = 4,
    /// Source inside a banned range.
    BannedRange = 5,
    /// Source exceeded the rate guard.
    RateGuard = 6,
    /// SIP request with a scanner User-Agent.
    Scanner = 7,
    /// SIP-port traffic from a non-allowlisted source in allowlist-only mode.
    NotAllowlisted = 8,
    /// Truncated or invalid IP/transport header.
    Malformed = 9,
    /// Non-first IP fragment: no transport header, decided by source only.
    Fragment = 10,
    /// IPv6 extension-header chain longer than the program walks, or an
    /// unknown extension: decided by source only.
    Unparsed = 11,
    /// First fragment on a SIP port too short to hold a request line.
    ShortFragment = 12,
    /// Source in the kernel's own ban share (rate guard, scanner).
    BannedKernel = 13,
    /// Allowlisted source over its entry's rate cap (never banned).
    AllowCapped = 14,
    /// Over the rate guard's police rate: dropped, the source not banned
    /// (a phone retransmits it; a registration storm spreads out).
    Policed = 15,
}

impl Reason {
    pub const COUNT: usize = 16;
    pub const ALL: [Reason; Self::COUNT] = [
        Reason::Allowlisted,
        Reason::NotIp,
        Reason::SipCounted,
        Reason::NotSip,
        Reason::BannedExact,
        Reason::BannedRange,
        Reason::RateGuard,
        Reason::Scanner,
        Reason::NotAllowlisted,
        Reason::Malformed,
        Reason::Fragment,
        Reason::Unparsed,
        Reason::ShortFragment,
        Reason::BannedKernel,
        Reason::AllowCapped,
        Reason::Policed,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Reason::Allowlisted => "allowlisted",
            Reason::NotIp => "not_ip",
            Reason::SipCounted => "sip_counted",
            Reason::NotSip => "not_sip",
            Reason::BannedExact => "banned_exact",
            Reason::BannedRange => "banned_range",
            Reason::RateGuard => "rate_guard",
            Reason::Scanner => "scanner",
            Reason::NotAllowlisted => "not_allowlisted",
            Reason::Malformed => "malformed",
            Reason::Fragment => "fragment",
            Reason::Unparsed => "unparsed",
            Reason::ShortFragment => "short_fragment",
            Reason::BannedKernel => "banned_kernel",
            Reason::AllowCapped => "allow_capped",
            Reason::Policed => "policed",
        }
    }

    pub const fn from_u32(v: u32) -> Option<Reason> {
        if (v as usize) < Self::COUNT {
            Some(Self::ALL[v as usize])
        } else {
            None
        }
    }
}

/// Counters of things that are not packet verdicts.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Bans the kernel put into the ban table (rate guard or scanner).
    KernelBan = 0,
    /// A kernel ban that failed because the ban table is full.
    BanTableFull = 1,
    /// SIP requests carrying a scanner User-Agent (any action).
    ScannerSeen = 2,
    /// Events dropped because the ring buffer was full.
    EventLost = 3,
    /// Requests whose headers ran past the scan window: not scanned.
    UaUnscanned = 4,
    /// Kernel bans not made because the source is known good.
    KnownGoodSpared = 5,
    /// Scanner-signature requests dropped without a ban (below the hit
    /// threshold, count-only action, or a known-good source).
    ScannerDropped = 6,
    /// Rate-guard bans of a source over its flood bucket.
    FloodBan = 7,
    /// Rate-guard bans of a source policed without a pause for longer
    /// than `XdpConfig::sustain_ns`.
    SustainedBan = 8,
}

impl Counter {
    pub const COUNT: usize = 9;
    pub const ALL: [Counter; Self::COUNT] = [
        Counter::KernelBan,
        Counter::BanTableFull,
        Counter::ScannerSeen,
        Counter::EventLost,
        Counter::UaUnscanned,
        Counter::KnownGoodSpared,
        Counter::ScannerDropped,
        Counter::FloodBan,
        Counter::SustainedBan,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Counter::KernelBan => "kernel_ban",
            Counter::BanTableFull => "ban_table_full",
            Counter::ScannerSeen => "scanner_seen",
            Counter::EventLost => "event_lost",
            Counter::UaUnscanned => "ua_unscanned",
            Counter::KnownGoodSpared => "known_good_spared",
            Counter::ScannerDropped => "scanner_dropped",
            Counter::FloodBan => "flood_ban",
            Counter::SustainedBan => "sustained_ban",
        }
    }
}

/// Index of a verdict within one interface slot's block of `VERDICTS`.
pub const fn verdict_index(action: Action, reason: Reason) -> u32 {
    action as u32 * Reason::COUNT as u32 + reason as u32
}

/// Verdict counters (action × reason) of one interface slot.
pub const VERDICTS_LEN: u32 = (Action::COUNT * Reason::COUNT) as u32;

/// Interfaces counted apart (slots 1..=MAX_IFACE_SLOTS); slot 0 holds
/// packets of any other interface (one attached by hand, one whose
/// ifindex is past `IFINDEX_LIMIT`).
pub const MAX_IFACE_SLOTS: u32 = 16;

/// `IFACE_SLOTS` is indexed by ifindex directly (an array lookup the JIT
/// inlines, where a hash would cost a lookup on every dropped packet).
pub const IFINDEX_LIMIT: u32 = 4096;

/// Entries in the `VERDICTS` per-CPU array: a block per slot. The totals
/// over every interface are the sums over the slots (a packet is counted
/// once, on the drop path's only counter).
pub const VERDICTS_ENTRIES: u32 = (MAX_IFACE_SLOTS + 1) * VERDICTS_LEN;

/// Index in `VERDICTS` of verdict `verdict` (a `verdict_index`) of `slot`.
pub const fn slot_verdict_index(slot: u32, verdict: u32) -> u32 {
    slot * VERDICTS_LEN + verdict
}

/// Index in `COUNTERS` of an event counter.
pub const fn counter_index(counter: Counter) -> u32 {
    counter as u32
}

/// Index in `COUNTERS` of the SIP messages seen on a SIP port of a method
/// (`Method` order), whatever their verdict; a TCP segment counts each
/// message it holds.
pub const fn method_index(method: u8) -> u32 {
    let m = if (method as usize) < crate::sip::Method::COUNT {
        method as u32
    } else {
        crate::sip::Method::Other as u32
    };
    Counter::COUNT as u32 + m
}

/// Entries in the `COUNTERS` per-CPU array.
pub const COUNTERS_LEN: u32 = (Counter::COUNT + crate::sip::Method::COUNT) as u32;
