//! The XDP program loaded (not attached) for BPF_PROG_TEST_RUN.

use aya::programs::{TestRun, TestRunOptions};
use sipshield::bpf::{LoadedProgram, MapSizes, ShieldMaps};
use sipshield_common::{
    config::{UaPrefix, XdpConfig, DEFAULT_UA_PREFIXES},
    counters::{Action, Reason},
};

pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;

/// How far the XDP program's clock may be behind `monotonic_ns()`: it reads
/// the coarse clock (the last tick: 4 ms at HZ=250, 10 ms at HZ=100), so an
/// expiry that passed by less than a tick may still hold. Tests that need an
/// entry expired set it at least this far in the past.
pub const CLOCK_LAG_NS: u64 = 25_000_000;

pub struct Harness {
    pub program: LoadedProgram,
    pub maps: ShieldMaps,
}

impl Harness {
    /// Loads the program with small maps and the default configuration.
    pub fn new() -> Harness {
        Self::with_sizes(Self::small_sizes())
    }

    /// The small map sizes `new` uses.
    pub fn small_sizes() -> MapSizes {
        MapSizes {
            max_bans: 1024,
            max_ranges: 256,
            max_allow: 256,
            max_sources: 1024,
            max_kernel_bans: 1024,
            max_known: 256,
        }
    }

    pub fn with_sizes(sizes: MapSizes) -> Harness {
        let mut program = LoadedProgram::load(sizes).expect("load XDP program (root + bpf needed)");
        let maps = program.take_maps().expect("take maps");
        let mut h = Harness { program, maps };
        h.configure(XdpConfig::default());
        h
    }

    pub fn default_prefixes() -> Vec<UaPrefix> {
        DEFAULT_UA_PREFIXES
            .iter()
            .map(|p| UaPrefix::new(p.as_bytes()).expect("valid prefix"))
            .collect()
    }

    pub fn configure(&mut self, config: XdpConfig) {
        self.maps
            .config
            .write(&config, &Self::default_prefixes())
            .expect("write config");
    }

    /// Runs the program once on `frame`; returns the XDP action.
    pub fn run(&mut self, frame: &[u8]) -> u32 {
        self.run_repeat(frame, 1).0
    }

    /// Runs `repeat` times; returns the action and the kernel's mean ns/run.
    pub fn run_repeat(&mut self, frame: &[u8], repeat: u32) -> (u32, f64) {
        let xdp = self.program.xdp().expect("xdp program");
        let result = xdp
            .test_run(TestRunOptions {
                data_in: Some(frame),
                repeat,
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("test_run on a {}-byte frame: {e}", frame.len()));
        (result.return_value, result.duration.as_nanos() as f64)
    }

    /// Whether the kernel's own share holds a ban of `src`.
    pub fn kernel_banned(&self, src: &str) -> bool {
        let ip: std::net::IpAddr = src.parse().expect("an address");
        self.maps
            .kernel_bans
            .get(ip)
            .expect("kernel ban lookup")
            .is_some()
    }

    pub fn verdicts(&self, action: Action, reason: Reason) -> u64 {
        self.maps
            .stats
            .snapshot()
            .expect("stats")
            .verdict(action, reason)
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// The rate guard as tests about a kernel ban want it: a source is banned
/// at its first message over `register` or `message` (flood buckets the
/// size of the police buckets, no extra room for known-good sources).
/// The staged defaults are tested on their own.
pub fn ban_at_limit(
    register: sipshield_common::config::RateLimit,
    message: sipshield_common::config::RateLimit,
) -> XdpConfig {
    XdpConfig {
        register_limit: register,
        message_limit: message,
        register_flood: register,
        message_flood: message,
        known_register_extra: sipshield_common::config::RateLimit::new(0, 0),
        known_message_extra: sipshield_common::config::RateLimit::new(0, 0),
        ..XdpConfig::default()
    }
}
