//! The XDP entry point and the verdict pipeline.

use aya_ebpf::{
    bindings::xdp_action::XDP_PASS,
    helpers::{bpf_ktime_get_ns, bpf_xdp_load_bytes},
    macros::xdp,
    programs::XdpContext,
};
use sipshield_common::{
    config::{
        Mode, ScannerAction, XdpConfig, MAX_SIP_PORTS, PORT_SOURCE_ONLY, PROTO_TCP, PROTO_UDP,
        UA_SCAN_LIMIT,
    },
    counters::Reason,
    maps::SourceStats,
    sip::Method,
};

use crate::{
    family::{Family, V4, V6},
    guard,
    maps::{CONFIG, SCRATCH},
    packet::{self, L3State, ETH_P_IPV4, ETH_P_IPV6, IPPROTO_TCP, L3, L4},
    sip,
    verdict::{self, drop, pass},
};

#[xdp]
pub fn sipshield(ctx: XdpContext) -> u32 {
    // The config map always has entry 0 (zeroed until userspace writes it:
    // enforce mode, no SIP ports, bans and allowlist only).
    match CONFIG.get(0) {
        Some(cfg) => judge_frame(&ctx, cfg),
        None => XDP_PASS,
    }
}

#[inline(always)]
fn judge_frame(ctx: &XdpContext, cfg: &XdpConfig) -> u32 {
    let mode = Mode::from_u32(cfg.mode);
    let Some((proto, off)) = packet::parse_l2(ctx) else {
        return pass(Reason::NotIp);
    };
    match proto {
        ETH_P_IPV4 => match packet::parse_ipv4(ctx, off) {
            Some(l3) => judge_ip::<V4>(ctx, cfg, mode, l3),
            None => drop(mode, Reason::Malformed),
        },
        ETH_P_IPV6 => match packet::parse_ipv6(ctx, off) {
            Some(l3) => judge_ip::<V6>(ctx, cfg, mode, l3),
            None => drop(mode, Reason::Malformed),
        },
        _ => pass(Reason::NotIp),
    }
}

#[inline(always)]
fn judge_ip<F: Family>(ctx: &XdpContext, cfg: &XdpConfig, mode: Mode, l3: L3<F::Addr>) -> u32 {
    let src = l3.src;
    if F::allowlisted(&src) {
        return pass(Reason::Allowlisted);
    }
    if let Some(ban) = F::ban(&src) {
        let expires = unsafe { (*ban).expires_ns };
        // An expired entry is treated as absent (the daemon prunes it).
        if expires == 0 || unsafe { bpf_ktime_get_ns() } < expires {
            return drop(mode, Reason::BannedExact);
        }
    }
    if F::range_banned(&src) {
        return drop(mode, Reason::BannedRange);
    }
    match l3.state {
        L3State::Ok => {}
        L3State::Fragment => return pass(Reason::Fragment),
        L3State::Malformed => return drop(mode, Reason::Malformed),
    }

    let transport = if F::FAMILY == sipshield_common::event::FAMILY_V6 {
        match packet::walk_ipv6_extensions(ctx, l3.next, l3.next_off) {
            Ok((proto, off)) => packet::parse_transport(ctx, proto, off, l3.ip_end),
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
        } => {
            // Merge the parse paths before the (long) SIP step.
            let payload_off = packet::forget_range(payload_off, packet::OFFSET_MASK);
            let payload_len = packet::forget_range(payload_len, packet::OFFSET_MASK);
            let ip_len = packet::forget_range(l3.ip_len, packet::OFFSET_MASK);
            judge_sip::<F>(
                ctx,
                cfg,
                mode,
                &src,
                proto,
                dport,
                payload_off,
                payload_len,
                ip_len,
            )
        }
        L4::Other => pass(Reason::NotSip),
        L4::Fragment => pass(Reason::Fragment),
        L4::Malformed => drop(mode, Reason::Malformed),
        // Could be SIP hidden behind a long chain: only allowlisted sources
        // may send that in allowlist-only mode.
        L4::Unparsed if matches!(mode, Mode::AllowlistOnly) => drop(mode, Reason::NotAllowlisted),
        L4::Unparsed => pass(Reason::Unparsed),
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

#[inline(always)]
#[expect(
    clippy::too_many_arguments,
    reason = "flat pipeline step on the packet path"
)]
fn judge_sip<F: Family>(
    ctx: &XdpContext,
    cfg: &XdpConfig,
    mode: Mode,
    src: &F::Addr,
    proto: u8,
    dport: u16,
    payload_off: usize,
    payload_len: usize,
    ip_len: usize,
) -> u32 {
    let Some(kind) = sip_port_kind(cfg, proto, dport) else {
        return pass(Reason::NotSip);
    };
    if matches!(mode, Mode::AllowlistOnly) {
        return drop(mode, Reason::NotAllowlisted);
    }
    if payload_len == 0 {
        // Bare TCP segments (handshake, ACKs) carry no SIP message.
        return pass(Reason::NotSip);
    }
    let now = unsafe { bpf_ktime_get_ns() };
    if kind == PORT_SOURCE_ONLY {
        account::<F>(src, Method::Tls, ip_len, now);
        return pass(Reason::SipCounted);
    }

    let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
        return pass(Reason::SipCounted);
    };
    let len = if payload_len > UA_SCAN_LIMIT {
        UA_SCAN_LIMIT
    } else {
        payload_len
    };
    let copied = unsafe {
        bpf_xdp_load_bytes(
            ctx.ctx,
            payload_off as u32,
            (*scratch).payload.as_mut_ptr() as *mut _,
            len as u32,
        )
    };
    if copied != 0 {
        return drop(mode, Reason::Malformed);
    }
    let method = sip::classify(unsafe { &(*scratch).payload }, len);

    let Some(stats) = account::<F>(src, method, ip_len, now) else {
        return pass(Reason::SipCounted);
    };

    // Rate guard: every message counts against the message bucket,
    // REGISTERs also against their own.
    let mut within = guard::take_token(
        unsafe { &mut (*stats).message_tat_ns },
        now,
        &cfg.message_limit,
    );
    if within && matches!(method, Method::Register) {
        within = guard::take_token(
            unsafe { &mut (*stats).register_tat_ns },
            now,
            &cfg.register_limit,
        );
    }
    if !within {
        guard::kernel_ban::<F>(
            src,
            stats,
            now,
            cfg.rate_ban_ns,
            Reason::RateGuard,
            method,
            mode,
        );
        return drop(mode, Reason::RateGuard);
    }

    let is_request = !matches!(method, Method::Response | Method::Other);
    if is_request
        && cfg.ua_prefix_count > 0
        && sip::has_scanner_user_agent(len, cfg.ua_prefix_count)
    {
        verdict::count(sipshield_common::counters::Counter::ScannerSeen);
        if cfg.scanner_action == ScannerAction::Ban as u32 {
            guard::kernel_ban::<F>(
                src,
                stats,
                now,
                cfg.scanner_ban_ns,
                Reason::Scanner,
                method,
                mode,
            );
            return drop(mode, Reason::Scanner);
        }
        guard::report_scanner::<F>(src, stats, now, method);
    }
    pass(Reason::SipCounted)
}

static FRESH_SOURCE: SourceStats = SourceStats {
    methods: [0; Method::COUNT],
    bytes: 0,
    first_seen_ns: 0,
    last_seen_ns: 0,
    register_tat_ns: 0,
    message_tat_ns: 0,
    flags: 0,
};

/// Counts one message for `src`, creating its entry on first sight.
#[inline(always)]
fn account<F: Family>(
    src: &F::Addr,
    method: Method,
    bytes: usize,
    now: u64,
) -> Option<*mut SourceStats> {
    let stats = match F::source(src) {
        Some(s) => s,
        None => {
            // From a zeroed static: building the value on the stack would
            // call memset, a loop the verifier walks on every path.
            // Fails only in a race with another CPU inserting it: fine.
            let _ = F::insert_source(src, &FRESH_SOURCE);
            let s = F::source(src)?;
            unsafe { (*s).first_seen_ns = now };
            s
        }
    };
    unsafe {
        let slot = (method as usize) % Method::COUNT;
        (*stats).methods[slot] += 1;
        (*stats).bytes += bytes as u64;
        (*stats).last_seen_ns = now;
    }
    Some(stats)
}
