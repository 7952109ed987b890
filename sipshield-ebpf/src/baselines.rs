//! Baseline XDP programs for `cargo xtask bench`: `bench_pass` returns
//! XDP_PASS and nothing else; `bench_lookup_drop` reads the source address at
//! the fixed untagged offset and drops it if it is in a plain hash map. What
//! sipshield costs is measured against these. `bench_redirect` is the drop
//! benchmark's traffic generator: run through BPF_PROG_TEST_RUN with live
//! frames, it redirects every frame into the veth whose ifindex is in
//! `BASE_TX[0]`, so the peer receives raw frames as from a NIC driver.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(not(target_arch = "bpf"))]
fn main() {}

#[cfg(target_arch = "bpf")]
mod programs {
    use aya_ebpf::{
        bindings::xdp_action::{XDP_ABORTED, XDP_DROP, XDP_PASS},
        helpers::bpf_redirect,
        macros::{map, xdp},
        maps::{Array, HashMap},
        programs::XdpContext,
    };

    #[map]
    static BASE_BANS_V4: HashMap<[u8; 4], u8> = HashMap::with_max_entries(1 << 20, 0);
    #[map]
    static BASE_BANS_V6: HashMap<[u8; 16], u8> = HashMap::with_max_entries(1 << 20, 0);

    #[map]
    static BASE_TX: Array<u32> = Array::with_max_entries(1, 0);

    /// Next forged source of `bench_redirect_random`.
    #[map]
    static BASE_SEQ: Array<u32> = Array::with_max_entries(1, 0);

    /// As `bench_redirect`, each frame from a new IPv4 source in 10.0.0.0/8
    /// (header checksum recomputed): a flood no per-source limit catches.
    #[xdp]
    pub fn bench_redirect_random(ctx: XdpContext) -> u32 {
        let start = ctx.data();
        if start + 34 > ctx.data_end() {
            return XDP_ABORTED;
        }
        let Some(seq) = BASE_SEQ.get_ptr_mut(0) else {
            return XDP_ABORTED;
        };
        let n = unsafe {
            let n = *seq;
            *seq = n.wrapping_add(1);
            n
        };
        let ip = (start + 14) as *mut u8;
        unsafe {
            *ip.add(12) = 10;
            *ip.add(13) = (n >> 16) as u8;
            *ip.add(14) = (n >> 8) as u8;
            *ip.add(15) = n as u8;
            *ip.add(10) = 0;
            *ip.add(11) = 0;
            let mut sum = 0u32;
            for i in 0..10 {
                sum += (u32::from(*ip.add(2 * i)) << 8) | u32::from(*ip.add(2 * i + 1));
            }
            sum = (sum & 0xffff) + (sum >> 16);
            sum = (sum & 0xffff) + (sum >> 16);
            let check = !(sum as u16);
            *ip.add(10) = (check >> 8) as u8;
            *ip.add(11) = check as u8;
        }
        match BASE_TX.get(0) {
            Some(ifindex) => unsafe { bpf_redirect(*ifindex, 0) as u32 },
            None => XDP_ABORTED,
        }
    }

    #[xdp]
    pub fn bench_redirect(_ctx: XdpContext) -> u32 {
        match BASE_TX.get(0) {
            Some(ifindex) => unsafe { bpf_redirect(*ifindex, 0) as u32 },
            None => XDP_ABORTED,
        }
    }

    #[xdp]
    pub fn bench_pass(_ctx: XdpContext) -> u32 {
        XDP_PASS
    }

    #[xdp]
    pub fn bench_lookup_drop(ctx: XdpContext) -> u32 {
        let start = ctx.data();
        let end = ctx.data_end();
        if start + 14 > end {
            return XDP_PASS;
        }
        let proto = unsafe { u16::from_be(*((start + 12) as *const u16)) };
        if proto == 0x0800 {
            if start + 34 > end {
                return XDP_PASS;
            }
            let src = unsafe { *((start + 26) as *const [u8; 4]) };
            if BASE_BANS_V4.get_ptr(&src).is_some() {
                return XDP_DROP;
            }
        } else if proto == 0x86dd {
            if start + 54 > end {
                return XDP_PASS;
            }
            let src = unsafe { *((start + 22) as *const [u8; 16]) };
            if BASE_BANS_V6.get_ptr(&src).is_some() {
                return XDP_DROP;
            }
        }
        XDP_PASS
    }
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
