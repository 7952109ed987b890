//! sipshield's XDP program: per-packet verdicts for a SIP edge host.
//!
//! For every packet, in this order: allowlist (PASS) → exact bans (DROP) →
//! banned ranges (DROP) → SIP-port handling (per-source counting, rate guard,
//! scanner User-Agent signature). Policy lives in userspace; the kernel only
//! bans on its own when a flood must stop before a userspace round trip.
//!
//! Verdicts for malformed input (all counted, none is XDP_ABORTED):
//! - frame too short for Ethernet/VLAN, or not IPv4/IPv6 → PASS (`not_ip`);
//! - IP header too short to read the source → DROP (`malformed`);
//! - readable source but invalid/truncated IP options, extension headers or
//!   transport header → source rules first, then DROP (`malformed`);
//! - non-first fragment → source rules only, then PASS (`fragment`);
//! - IPv6 extension chain longer than we walk → source rules only, then PASS
//!   (`unparsed`), or DROP in allowlist-only mode (it could be SIP).
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod clock;
#[cfg(target_arch = "bpf")]
mod family;
#[cfg(target_arch = "bpf")]
mod guard;
#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod packet;
#[cfg(target_arch = "bpf")]
mod program;
#[cfg(target_arch = "bpf")]
mod sip;
#[cfg(target_arch = "bpf")]
mod verdict;

#[cfg(not(target_arch = "bpf"))]
fn main() {}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// Dual licence: GPL-compatible so the kernel offers every helper we use.
#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
