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
