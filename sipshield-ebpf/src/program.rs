//! The XDP entry point and the verdict pipeline.

use aya_ebpf::{
    bindings::xdp_action::XDP_PASS, helpers::bpf_xdp_load_bytes, macros::xdp, programs::XdpContext,
};
use sipshield_common::{
    config::{
        Mode, ScannerAction, XdpConfig, MAX_SIP_PORTS, MIN_FIRST_FRAGMENT_PAYLOAD, POLICE_GAP_NS,
        PORT_SIGHTING, PORT_SOURCE_ONLY, PROTO_TCP, PROTO_UDP, UA_SCAN_LIMIT,
    },
    counters::{Counter, Reason},
    maps::SourceStats,
    sip::Method,
};

use crate::{
    clock,
    family::{Family, V4, V6},
    guard,
    maps::{CONFIG, SCRATCH},
    packet::{self, L3State, Untagged, ETH_P_IPV4, ETH_P_IPV6, IPPROTO_TCP, L3, L4},
    sip::{self, Start, UaVerdict},
    verdict::{self, drop, pass, Verdict},
};

#[xdp]
#[inline(always)]
pub fn sipshield(ctx: XdpContext) -> u32 {
    // Fast path: an untagged frame from a banned source (exact, or a range
    // with no allowlisted prefix inside) is dropped after the lookups,
    // before the config is read or the frame parsed: the source address is
    // all these verdicts need. Little is live here, so little is spilled.
    let early = match packet::untagged_source(&ctx) {
        Some(Untagged::V4(src)) => early_bans::<V4>(&src),
        Some(Untagged::V6(src)) => early_bans::<V6>(&src),
        None => Ok(Early::NotChecked),
    };
    let early = match early {
        Ok(early) => early,
        Err(reason) => return verdict::finish(&ctx, drop(configured_mode(), reason)),
    };
    // The config map always has entry 0 (zeroed until userspace writes it:
    // enforce mode, no SIP ports, bans and allowlist only).
    match CONFIG.get(0) {
        Some(cfg) => verdict::finish(&ctx, judge_frame(&ctx, cfg, early)),
        None => XDP_PASS,
    }
}

/// What the fast path found for an untagged frame's source (the same
/// address the full parse reads), so the ban tables are not looked up
/// twice.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Early {
    /// Not looked up (a tagged frame, or not IP).
    NotChecked,
    /// No active exact ban, no active range.
    Clear,
    /// No active exact ban; an active range with an allowlisted prefix
    /// inside (the allowlist decides).
    RangeBanned,
}

/// The exact ban and range lookups, in this order: the reason to drop, or
/// what the rest of the path still needs to know. Log and operator bans
/// first: userspace never puts an allowlisted address there, so a banned
/// source costs one lookup. Ranges before the allowlist: a range no
/// allowlisted prefix overlaps drops at once; one that overlaps defers to
/// the allowlist.
#[inline(always)]
fn early_bans<F: Family>(src: &F::Addr) -> Result<Early, Reason> {
    let mut now = 0;
    if let Some(ban) = F::ban(src) {
        if active(unsafe { (*ban).expires_ns }, &mut now) {
            return Err(Reason::BannedExact);
        }
    }
    if let Some(range) = F::range(src) {
        if active(unsafe { (*range).expires_ns }, &mut now) {
            if unsafe { (*range).no_allow_inside } != 0 {
                return Err(Reason::BannedRange);
            }
            return Ok(Early::RangeBanned);
        }
    }
    Ok(Early::Clear)
}

/// The configured mode (enforce when the config cannot be read).
#[inline(always)]
fn configured_mode() -> Mode {
    CONFIG
        .get(0)
        .map_or(Mode::Enforce, |cfg| Mode::from_u32(cfg.mode))
}

#[inline(always)]
fn judge_frame(ctx: &XdpContext, cfg: &XdpConfig, early: Early) -> Verdict {
    let mode = Mode::from_u32(cfg.mode);
    let Some((proto, off)) = packet::parse_l2(ctx) else {
        return pass(Reason::NotIp);
    };
    match proto {
        ETH_P_IPV4 => match packet::parse_ipv4(ctx, off) {
            Some(l3) => judge_ip::<V4>(ctx, cfg, mode, l3, early),
            None => drop(mode, Reason::Malformed),
        },
        ETH_P_IPV6 => match packet::parse_ipv6(ctx, off) {
            Some(l3) => judge_ip::<V6>(ctx, cfg, mode, l3, early),
            None => drop(mode, Reason::Malformed),
        },
        _ => pass(Reason::NotIp),
    }
}

/// Active unless it has an expiry that has passed (expired entries count as
/// absent; the daemon prunes them).
#[inline(always)]
fn active(expires_ns: u64, now: &mut u64) -> bool {
    if expires_ns == 0 {
        return true;
    }
    if *now == 0 {
        *now = clock::coarse();
    }
    *now < expires_ns
}

#[inline(always)]
fn judge_ip<F: Family>(
    ctx: &XdpContext,
    cfg: &XdpConfig,
    mode: Mode,
    l3: L3<F::Addr>,
    early: Early,
) -> Verdict {
    let src = l3.src;
    // Read lazily: most packets never need the time.
    let mut now = 0u64;
    // A tagged frame's source was not looked up on the fast path: the
    // same lookups now.
    let early = match early {
        Early::NotChecked => match early_bans::<F>(&src) {
            Ok(early) => early,
            Err(reason) => return drop(mode, reason),
        },
        checked => checked,
    };
    let range_banned = early == Early::RangeBanned;
    if let Some(allow) = F::allow(&src) {
        let cap = unsafe { (*allow).cap };
        if cap.interval_ns != 0 {
            if now == 0 {
                now = clock::coarse();
            }
            if !guard::take_tokens(unsafe { &mut (*allow).tat_ns }, now, &cap, 1) {
                return drop(mode, Reason::AllowCapped);
            }
        }
        return pass(Reason::Allowlisted);
    }
    if range_banned {
        return drop(mode, Reason::BannedRange);
    }
    if let Some(ban) = F::kernel_ban(&src) {
        if active(unsafe { (*ban).expires_ns }, &mut now) {
            return drop(mode, Reason::BannedKernel);
        }
    }
    match l3.state {
        L3State::Ok => {}
        L3State::Fragment => return pass(Reason::Fragment),
        L3State::Malformed => return drop(mode, Reason::Malformed),
    }

    let mut first_fragment = l3.first_fragment;
    let transport = if F::FAMILY == sipshield_common::event::FAMILY_V6 {
        match packet::walk_ipv6_extensions(ctx, l3.next, l3.next_off) {
            Ok((proto, off, first)) => {
                first_fragment = first;
                packet::parse_transport(ctx, proto, off, l3.ip_end)
            }
            Err(reason) => reason,
        }
    } else {
        packet::parse_transport(ctx, l3.next, l3.next_off, l3.ip_end)
    };
    match transport {
        L4::Transport {
            proto,
            dport,
            payload_off,
            payload_len,
            syn,
        } => {
            // Merge the parse paths before the (long) SIP step.
            let payload_off = packet::forget_range(payload_off, packet::OFFSET_MASK);
            let payload_len = packet::forget_range(payload_len, packet::OFFSET_MASK);
            let ip_len = packet::forget_range(l3.ip_len, packet::OFFSET_MASK);
            let msg = Message {
                proto,
                dport,
                payload_off,
                payload_len,
                ip_len,
                first_fragment,
                syn,
            };
            judge_sip::<F>(ctx, cfg, mode, &src, &msg)
        }
        L4::Other => pass(Reason::NotSip),
        L4::Fragment => pass(Reason::Fragment),
        L4::Malformed => drop(mode, Reason::Malformed),
        // Could be SIP hidden behind a long chain: only allowlisted sources
        // may send that in allowlist-only mode; everyone else pays for it.
        L4::Unparsed if matches!(mode, Mode::AllowlistOnly) => drop(mode, Reason::NotAllowlisted),
        L4::Unparsed => {
            let len = packet::forget_range(l3.ip_len, packet::OFFSET_MASK);
            let now = clock::coarse();
            match police::<F>(
                cfg,
                mode,
                &src,
                Method::Other as u8,
                true,
                false,
                1,
                len,
                now,
            ) {
                Policed::Over(verdict) => verdict,
                _ => pass(Reason::Unparsed),
            }
        }
    }
}

/// The configured SIP port entry for this destination, as its `kind`.
#[inline(always)]
fn sip_port_kind(cfg: &XdpConfig, proto: u8, dport: u16) -> Option<u8> {
    let bit = if proto == IPPROTO_TCP {
        PROTO_TCP
    } else {
        PROTO_UDP
    };
    for i in 0..MAX_SIP_PORTS {
        let p = &cfg.sip_ports[i];
        if p.port == 0 {
            return None;
        }
        if p.port == dport && p.protos & bit != 0 {
            return Some(p.kind);
        }
    }
    None
}

/// The transport payload the SIP step looks at.
struct Message {
    proto: u8,
    dport: u16,
    payload_off: usize,
    payload_len: usize,
    ip_len: usize,
    first_fragment: bool,
    syn: bool,
}

#[inline(always)]
fn is_known<F: Family>(src: &F::Addr, now: u64) -> bool {
    match F::known(src) {
        Some(k) => unsafe { (*k).is_active(now) },
        None => false,
    }
}

/// What the rate guard made of a message.
enum Policed {
    /// Over the limit: this verdict (dropped; an unknown source banned).
    Over(Verdict),
    /// Within the limit.
    Within,
    /// A source's first message (or an LRU race): not policed, no entry.
    Untracked,
}

/// Counts `messages` for `src` and runs the rate guard, in stages: within
/// the police buckets a message passes; over them it is dropped
/// (`Reason::Policed`), and an unknown source is banned only when it is
/// also over a flood bucket or has been policed without a pause for longer
/// than `sustain_ns`. A known-good source is policed at its larger limits
/// and never banned. `hidden`: the method could not be read, so the
/// REGISTER buckets are charged too.
#[inline(always)]
#[expect(clippy::too_many_arguments, reason = "flat step on the packet path")]
fn police<F: Family>(
    cfg: &XdpConfig,
    mode: Mode,
    src: &F::Addr,
    method: u8,
    hidden: bool,
    tcp: bool,
    messages: u64,
    ip_len: usize,
    now: u64,
) -> Policed {
    // Only UDP sources can be forged for free: a TCP peer completed a
    // handshake, and its segment may carry many messages.
    let Some((stats, earlier)) =
        account::<F>(src, method, messages, ip_len, now, cfg.seen_seed, tcp)
    else {
        return Policed::Untracked;
    };
    let st = unsafe { &mut *stats };
    // The remembered first message passed already: it takes its tokens
    // now, unchecked, as it would have then.
    if let Some(first) = earlier.method() {
        guard::spend_token(&mut st.message_tat_ns, now, &cfg.message_limit);
        guard::spend_token(&mut st.message_flood_tat_ns, now, &cfg.message_flood);
        if first == Method::Register as u8 || first == Method::Other as u8 {
            guard::spend_token(&mut st.register_tat_ns, now, &cfg.register_limit);
            guard::spend_token(&mut st.register_flood_tat_ns, now, &cfg.register_flood);
        }
    }
    let register = method == Method::Register as u8 || hidden;
    // Every message counts against the message buckets, REGISTERs (and
    // what hides its method) also against their own. The flood buckets
    // take every message, policed or not: a flood drains them.
    let mut flood = !guard::take_tokens(
        &mut st.message_flood_tat_ns,
        now,
        &cfg.message_flood,
        messages,
    );
    if register
        && !guard::take_tokens(
            &mut st.register_flood_tat_ns,
            now,
            &cfg.register_flood,
            messages,
        )
    {
        flood = true;
    }
    // Both police buckets or neither: a message over one uses none of the
    // other's room.
    let message_fit = guard::fits(st.message_tat_ns, now, &cfg.message_limit, messages);
    let register_fit = if register {
        guard::fits(st.register_tat_ns, now, &cfg.register_limit, messages)
    } else {
        Some(st.register_tat_ns)
    };
    if !flood {
        if let (Some(m), Some(r)) = (message_fit, register_fit) {
            st.message_tat_ns = m;
            st.register_tat_ns = r;
            return Policed::Within;
        }
    }
    // Only now, off the common path: is the source known good? What its
    // police buckets cannot take, its extra buckets may.
    let known = is_known::<F>(src, now);
    if known {
        let message_extra = guard::spill(
            message_fit,
            st.known_message_tat_ns,
            now,
            &cfg.known_message_extra,
            messages,
        );
        let register_extra = guard::spill(
            register_fit,
            st.known_register_tat_ns,
            now,
            &cfg.known_register_extra,
            messages,
        );
        if let (Some(me), Some(re)) = (message_extra, register_extra) {
            if let Some(m) = message_fit {
                st.message_tat_ns = m;
            }
            if let Some(r) = register_fit {
                st.register_tat_ns = r;
            }
            st.known_message_tat_ns = me;
            st.known_register_tat_ns = re;
            return Policed::Within;
        }
    }
    // A run of policed messages goes on while none is more than the gap
    // after the one before.
    if st.last_policed_ns == 0 || now.saturating_sub(st.last_policed_ns) > POLICE_GAP_NS {
        st.policed_since_ns = now;
    }
    st.last_policed_ns = now;
    let sustained =
        cfg.sustain_ns != 0 && now.saturating_sub(st.policed_since_ns) >= cfg.sustain_ns;
    if !flood && !sustained {
        return Policed::Over(drop(mode, Reason::Policed));
    }
    if known {
        // Policed, never banned: a forger must not cut off a real phone.
        verdict::count(Counter::KnownGoodSpared);
        return Policed::Over(drop(mode, Reason::Policed));
    }
    verdict::count(if flood {
        Counter::FloodBan
    } else {
        Counter::SustainedBan
    });
    guard::kernel_ban::<F>(src, stats, cfg.rate_ban_ns, Reason::RateGuard, method, mode);
    Policed::Over(drop(mode, Reason::RateGuard))
}

#[inline(always)]
fn judge_sip<F: Family>(
    ctx: &XdpContext,
    cfg: &XdpConfig,
    mode: Mode,
    src: &F::Addr,
    msg: &Message,
) -> Verdict {
    let Some(kind) = sip_port_kind(cfg, msg.proto, msg.dport) else {
        return pass(Reason::NotSip);
    };
    if kind == PORT_SIGHTING {
        if msg.syn {
            note_sighting::<F>(src, cfg.seen_seed);
        }
        return pass(Reason::NotSip);
    }
    if matches!(mode, Mode::AllowlistOnly) {
        return drop(mode, Reason::NotAllowlisted);
    }
    let tcp = msg.proto == IPPROTO_TCP;
    if msg.payload_len == 0 && tcp {
        // Bare TCP segments (handshake, ACKs) carry no SIP message.
        return pass(Reason::NotSip);
    }
    if msg.first_fragment && msg.payload_len < MIN_FIRST_FRAGMENT_PAYLOAD {
        // The kernel would reassemble a request we never saw the start of.
        return drop(mode, Reason::ShortFragment);
    }
    let now = clock::coarse();
    if kind == PORT_SOURCE_ONLY {
        account::<F>(
            src,
            Method::Tls as u8,
            1,
            msg.ip_len,
            now,
            cfg.seen_seed,
            false,
        );
        return pass(Reason::SipCounted);
    }

    let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
        return pass(Reason::SipCounted);
    };
    let len = if msg.payload_len > UA_SCAN_LIMIT {
        UA_SCAN_LIMIT
    } else {
        msg.payload_len
    };
    if len > 0 {
        let copied = unsafe {
            bpf_xdp_load_bytes(
                ctx.ctx,
                msg.payload_off as u32,
                (*scratch).payload.as_mut_ptr() as *mut _,
                len as u32,
            )
        };
        if copied != 0 {
            return drop(mode, Reason::Malformed);
        }
    }
    let start = if len == 0 {
        // An empty datagram: nothing to read, still charged.
        Start {
            method: Method::Other,
            at: 0,
            hidden: false,
        }
    } else {
        sip::classify(unsafe { &(*scratch).payload }, len)
    };
    // One unknown value for the rest of the path: the verifier walks the
    // steps below once, not once per method.
    let packed = packet::forget_range(
        start.method as usize | (usize::from(start.hidden) << 8) | (start.at << 16),
        0x7ff_ffff,
    );
    let method = (packed & 0xff) as u8;
    let hidden = packed & 0x100 != 0;
    let at = packed >> 16;
    let messages = if tcp {
        sip::tcp_messages(len, msg.payload_len)
    } else {
        1
    };
    verdict::count_messages(method, messages);

    // A first message (untracked) is scanned all the same. Only whether it
    // was counted is carried on, as an unknown value: one path for the
    // verifier through the scan below.
    let counted = match police::<F>(
        cfg, mode, src, method, hidden, tcp, messages, msg.ip_len, now,
    ) {
        Policed::Over(verdict) => return verdict,
        Policed::Within => 1,
        Policed::Untracked => 0,
    };
    let counted = packet::forget_range(counted, 1) != 0;

    let scanned = method != Method::Response as u8
        && method != Method::KeepAlive as u8
        && method != Method::Tls as u8;
    if !scanned || cfg.ua_prefix_count == 0 {
        return pass(Reason::SipCounted);
    }
    let truncated = msg.payload_len > len || msg.first_fragment;
    match sip::scan_user_agents(len, at, cfg.ua_prefix_count, truncated) {
        UaVerdict::Clean => pass(Reason::SipCounted),
        UaVerdict::Unscanned => {
            verdict::count(Counter::UaUnscanned);
            pass(Reason::SipCounted)
        }
        UaVerdict::Scanner => {
            // A scanner gets its entry at once: its hits must count. An
            // untracked message was just remembered as a first sight, so
            // making the entry counts it (as the earlier message).
            let bytes = if counted { 0 } else { msg.ip_len };
            let stats =
                account::<F>(src, method, 0, bytes, now, cfg.seen_seed, true).map(|(s, _)| s);
            match stats {
                Some(stats) => scanner::<F>(cfg, mode, src, stats, method, now),
                None => verdict::count(Counter::ScannerSeen),
            }
            drop(mode, Reason::Scanner)
        }
    }
}

/// A request with a scanner signature: always dropped (by the caller).
/// An unknown source is banned once it reaches the configured hits; a
/// known-good one never is.
#[inline(always)]
fn scanner<F: Family>(
    cfg: &XdpConfig,
    mode: Mode,
    src: &F::Addr,
    stats: *mut SourceStats,
    method: u8,
    now: u64,
) {
    verdict::count(Counter::ScannerSeen);
    let hits = unsafe {
        let h = (*stats).scanner_hits.saturating_add(1);
        (*stats).scanner_hits = h;
        h
    };
    let needed = if cfg.scanner_ban_hits == 0 {
        1
    } else {
        cfg.scanner_ban_hits
    };
    let ban = cfg.scanner_action == ScannerAction::Ban as u32 && hits >= needed;
    if ban && !is_known::<F>(src, now) {
        guard::kernel_ban::<F>(
            src,
            stats,
            cfg.scanner_ban_ns,
            Reason::Scanner,
            method,
            mode,
        );
        return;
    }
    if ban {
        verdict::count(Counter::KnownGoodSpared);
    }
    verdict::count(Counter::ScannerDropped);
    guard::report_scanner::<F>(src, stats, now, method);
}

static FRESH_SOURCE: SourceStats = SourceStats {
    methods: [0; Method::COUNT],
    bytes: 0,
    first_seen_ns: 0,
    last_seen_ns: 0,
    register_tat_ns: 0,
    message_tat_ns: 0,
    register_flood_tat_ns: 0,
    message_flood_tat_ns: 0,
    known_register_tat_ns: 0,
    known_message_tat_ns: 0,
    policed_since_ns: 0,
    last_policed_ns: 0,
    flags: 0,
    scanner_hits: 0,
};

/// Counts `messages` for `src`. A source without an entry gets one at its
/// second message (the first-sight filter remembers the first and its
/// method), or at once when `force`; `None` for a first sight. Also
/// returns the method of the remembered first message when the entry was
/// made from it: that message is counted too.
#[inline(always)]
fn account<F: Family>(
    src: &F::Addr,
    method: u8,
    messages: u64,
    bytes: usize,
    now: u64,
    seed: u64,
    force: bool,
) -> Option<(*mut SourceStats, Earlier)> {
    let (stats, earlier) = match F::source(src) {
        Some(s) => (s, 0),
        None => {
            // 0: none remembered, else the first message's method + 1.
            let earlier = match F::seen_before(src, seed, method) {
                Some(m) => usize::from(m) + 1,
                None => 0,
            };
            if earlier == 0 && !force {
                return None;
            }
            // From a zeroed static: building the value on the stack would
            // call memset, a loop the verifier walks on every path.
            // Fails only in a race with another CPU inserting it: fine.
            let _ = F::insert_source(src, &FRESH_SOURCE);
            let s = F::source(src)?;
            first_sight(s);
            (s, earlier)
        }
    };
    // One unknown value from here on: a single path for the verifier.
    let earlier = Earlier(packet::forget_range(earlier, 0x1f));
    if let Some(m) = earlier.method() {
        count_method(stats, m, 1);
    }
    count_method(stats, method, messages);
    unsafe {
        (*stats).bytes += bytes as u64;
        seen_at(stats, now);
    }
    Some((stats, earlier))
}

/// A connection attempt to a watched non-SIP port: when the source was
/// last seen, nothing counted. Forgeable like any SYN, so through the
/// first-sight filter: a SYN flood of one-off sources takes no entries.
#[inline(always)]
fn note_sighting<F: Family>(src: &F::Addr, seed: u64) {
    let now = clock::coarse();
    let stats = match F::source(src) {
        Some(s) => s,
        None => {
            if F::seen_before(src, seed, Method::Other as u8).is_none() {
                return;
            }
            let _ = F::insert_source(src, &FRESH_SOURCE);
            let Some(s) = F::source(src) else {
                return;
            };
            first_sight(s);
            s
        }
    };
    seen_at(stats, now);
}

/// Stamps a new entry's first sight exactly (a flood's ban latency is
/// measured from it), as its last sight too.
#[inline(always)]
fn first_sight(stats: *mut SourceStats) {
    let at = clock::exact();
    unsafe {
        (*stats).first_seen_ns = at;
        (*stats).last_seen_ns = at;
    }
}

/// Last sight at `now` (coarse): never before the exact first sight.
#[inline(always)]
fn seen_at(stats: *mut SourceStats, now: u64) {
    unsafe {
        if now > (*stats).last_seen_ns {
            (*stats).last_seen_ns = now;
        }
    }
}

/// The remembered first message of a source whose entry was just made
/// (0: none, else its method + 1).
#[derive(Clone, Copy)]
struct Earlier(usize);

impl Earlier {
    #[inline(always)]
    fn method(self) -> Option<u8> {
        (self.0 != 0).then(|| (self.0 - 1) as u8)
    }
}

/// Adds `n` to `method`'s counter (anything out of range counts as other).
/// The index passes through `forget_range` so the compiler keeps the bound
/// check where the verifier can see it.
#[inline(always)]
fn count_method(stats: *mut SourceStats, method: u8, n: u64) {
    let i = packet::forget_range(method as usize, 0x1f);
    let i = if i < Method::COUNT {
        i
    } else {
        Method::Other as usize
    };
    if let Some(c) = unsafe { (*stats).methods.get_mut(i) } {
        *c += n;
    }
}
