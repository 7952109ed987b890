//! `sipshield attach`: load the XDP program, attach it to an interface and
//! stay in the foreground printing counters; detaches on SIGINT/SIGTERM.
//! The daemon (`sipshield run`) adds log watching, pinning and policy.

use std::{
    process::ExitCode,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use ipnet::IpNet;
use sipshield::bpf::{addr, clock, AttachMode, LoadedProgram, MapSizes, StatsSnapshot};
use sipshield_common::{
    config::{Mode, UaPrefix, XdpConfig, DEFAULT_UA_PREFIXES},
    maps::{BanEntry, BanOrigin, RangeEntry},
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Interface to attach to.
    #[arg(long)]
    iface: String,
    /// XDP attach mode: auto, driver or skb.
    #[arg(long, default_value = "auto")]
    xdp_mode: AttachMode,
    /// Ban an address or CIDR (repeatable).
    #[arg(long = "ban", value_name = "CIDR", value_parser = addr::parse_net)]
    bans: Vec<IpNet>,
    /// Allowlist an address or CIDR (repeatable).
    #[arg(long = "allow", value_name = "CIDR", value_parser = addr::parse_net)]
    allow: Vec<IpNet>,
    /// Count what would be dropped instead of dropping.
    #[arg(long)]
    observe: bool,
    /// Print counters every N seconds (0: only at exit).
    #[arg(long, default_value_t = 2)]
    interval: u64,
    /// Detach after N seconds (0: run until SIGINT/SIGTERM).
    #[arg(long, default_value_t = 0)]
    duration: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut program =
        LoadedProgram::load(MapSizes::default()).context("loading the XDP program")?;
    let mut maps = program.take_maps()?;
    let config = XdpConfig {
        mode: if args.observe {
            Mode::Observe
        } else {
            Mode::Enforce
        } as u32,
        ..XdpConfig::default()
    };
    let prefixes: Vec<UaPrefix> = DEFAULT_UA_PREFIXES
        .iter()
        .filter_map(|p| UaPrefix::new(p.as_bytes()))
        .collect();
    maps.config.write(&config, &prefixes)?;
    for net in &args.allow {
        maps.allow.insert(*net)?;
    }
    for net in &args.bans {
        let single = net.prefix_len() == net.max_prefix_len();
        if single {
            let entry = BanEntry {
                expires_ns: 0,
                created_ns: clock::monotonic_ns(),
                origin: BanOrigin::Userspace as u32,
                _pad: 0,
            };
            maps.bans.insert(net.addr(), entry)?;
        } else {
            maps.ranges.insert(*net, RangeEntry::default())?;
        }
    }
    program.attach(&args.iface, args.xdp_mode)?;
    let id = program.program_id()?;
    println!(
        "attached to {} (mode {}, program id {id}); {} ban(s), {} allowlist entr(ies)",
        args.iface,
        args.xdp_mode,
        args.bans.len(),
        args.allow.len()
    );

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook_like::SIGINT, signal_hook_like::SIGTERM] {
        signal_hook_like::register(sig, Arc::clone(&stop))?;
    }
    let start = Instant::now();
    let mut last_print = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        for e in maps.events.drain() {
            println!("kernel: {:?} {} ({:?})", e.kind, e.ip, e.reason);
        }
        if args.interval > 0 && last_print.elapsed() >= Duration::from_secs(args.interval) {
            print_counters(&maps.stats.snapshot()?);
            last_print = Instant::now();
        }
        if args.duration > 0 && start.elapsed() >= Duration::from_secs(args.duration) {
            break;
        }
    }
    println!("detaching from {}", args.iface);
    print_counters(&maps.stats.snapshot()?);
    Ok(ExitCode::SUCCESS)
}

fn print_counters(s: &StatsSnapshot) {
    let parts: Vec<String> = s
        .nonzero()
        .into_iter()
        .map(|(a, r, n)| format!("{}/{}={n}", a.name(), r.name()))
        .collect();
    println!(
        "packets: {}",
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(" ")
        }
    );
}

/// SIGINT/SIGTERM to a flag, with nothing but libc.
mod signal_hook_like {
    use std::sync::{
        atomic::{AtomicBool, AtomicPtr, Ordering},
        Arc,
    };

    pub const SIGINT: i32 = libc::SIGINT;
    pub const SIGTERM: i32 = libc::SIGTERM;

    static FLAG: AtomicPtr<AtomicBool> = AtomicPtr::new(std::ptr::null_mut());

    extern "C" fn on_signal(_: i32) {
        let p = FLAG.load(Ordering::SeqCst);
        if !p.is_null() {
            // SAFETY: points into an Arc leaked below, never freed.
            unsafe { (*p).store(true, Ordering::SeqCst) };
        }
    }

    pub fn register(sig: i32, flag: Arc<AtomicBool>) -> anyhow::Result<()> {
        FLAG.store(Arc::into_raw(flag) as *mut AtomicBool, Ordering::SeqCst);
        // SAFETY: installing an async-signal-safe handler (one atomic store).
        let prev = unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
        anyhow::ensure!(
            prev != libc::SIG_ERR,
            "cannot install handler for signal {sig}"
        );
        Ok(())
    }
}
