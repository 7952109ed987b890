//! Measurements for `cargo xtask bench` that need the kernel or the library.
//! Prints one JSON document on stdout; the xtask builds the report.
//!
//! `sipshield-bench xdp [--quick]`: ns/packet of each packet class through
//! BPF_PROG_TEST_RUN at several ban counts, next to the baseline programs.
//! `sipshield-bench droprate [--quick]`: Mpps a banned source is dropped at,
//! sipshield against nftables, on the NIC-like and the skb path.
//! `sipshield-bench daemon [--quick]`: ban latency (log path, rate guard),
//! restoring 100k/1M bans from the state file, daemon memory.
//! `sipshield-bench iperf [--quick]`: TCP/UDP throughput with and without
//! sipshield attached.
//! `sipshield-bench restore N`: one start restoring N bans (time, memory, status).
//! `sipshield-bench make-log PATH LINES`: writes a realistic Asterisk log.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Instant,
};

use anyhow::{bail, Context, Result};
use aya::{
    maps::HashMap,
    programs::{TestRun, TestRunOptions, Xdp},
    Ebpf, EbpfLoader,
};
use serde_json::{json, Value};
use sipshield::bpf::{clock::monotonic_ns, object, MapSizes};
use sipshield_common::{
    config::{RateLimit, ScannerAction, XdpConfig},
    maps::{BanEntry, BanOrigin, RangeEntry},
};
use sipshield_tests::{
    harness::{Harness, XDP_PASS},
    packet::*,
};

const BLOCKED_V4: &str = "198.51.100.7";
const BLOCKED_V6: &str = "2001:db8::bad";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.first().map(String::as_str) {
        Some("xdp") => xdp(args.iter().any(|a| a == "--quick"))?,
        Some("daemon") => {
            sipshield_tests::bench::daemon_bench::run(args.iter().any(|a| a == "--quick"))?
        }
        Some("iperf") => {
            sipshield_tests::bench::throughput::run(args.iter().any(|a| a == "--quick"))?
        }
        Some("flood") => {
            sipshield_tests::bench::droprate::floods(args.iter().any(|a| a == "--quick"))?
        }
        Some("droprate") => {
            sipshield_tests::bench::droprate::run(args.iter().any(|a| a == "--quick"))?
        }
        Some("restore") => {
            let n: u32 = args.get(1).context("restore N")?.parse()?;
            sipshield_tests::bench::daemon_bench::restore(n)?
        }
        Some("crowdsec") => {
            let n: u32 = args.get(1).context("crowdsec N")?.parse()?;
            sipshield_tests::bench::daemon_bench::crowdsec_pull(n)?
        }
        Some("make-log") => {
            let path = args.get(1).context("make-log PATH LINES")?;
            let lines: usize = args.get(2).context("make-log PATH LINES")?.parse()?;
            make_log(path, lines)?
        }
        _ => {
            bail!("usage: sipshield-bench xdp [--quick] | droprate [--quick] | flood [--quick] | daemon [--quick] | iperf [--quick] | make-log PATH LINES")
        }
    };
    println!("{out}");
    Ok(())
}

fn classes() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "blocked v4",
            Frame::udp(BLOCKED_V4, 5060, &sip_request("REGISTER", None)).build(),
        ),
        (
            "blocked v6",
            Frame::udp(BLOCKED_V6, 5060, &sip_request("REGISTER", None)).build(),
        ),
        (
            "range-blocked",
            Frame::udp("203.0.113.9", 5060, b"x").build(),
        ),
        (
            "range-blocked, allowlist inside",
            Frame::udp("198.51.100.9", 5060, b"x").build(),
        ),
        (
            "allowlisted",
            Frame::udp("192.0.2.9", 5060, &sip_request("INVITE", None)).build(),
        ),
        (
            "SIP REGISTER counted",
            Frame::udp(
                "192.0.2.200",
                5060,
                &sip_request("REGISTER", Some("Yealink SIP-T46S")),
            )
            .build(),
        ),
        (
            "SIP REGISTER known-good",
            Frame::udp(
                KNOWN_GOOD,
                5060,
                &sip_request("REGISTER", Some("Yealink SIP-T46S")),
            )
            .build(),
        ),
        (
            "scanner signature",
            Frame::udp(
                "192.0.2.201",
                5060,
                &sip_request("OPTIONS", Some("friendly-scanner")),
            )
            .build(),
        ),
        (
            "QinQ SIP",
            Frame::udp("192.0.2.202", 5060, &sip_request("OPTIONS", None))
                .vlan(ETH_P_8021AD, 10)
                .vlan(ETH_P_8021Q, 20)
                .build(),
        ),
        (
            "fragment",
            Frame::udp("192.0.2.203", 5060, b"tail")
                .ipv4_fragment(185, false)
                .build(),
        ),
        (
            "non-SIP pass",
            Frame::udp("192.0.2.204", 53, b"dns query").build(),
        ),
    ]
}

/// One kernel-averaged run of `repeat`: the verdict and ns per run.
fn test_run(xdp: &Xdp, frame: &[u8], repeat: u32) -> Result<(u32, f64)> {
    let r = xdp.test_run(TestRunOptions {
        data_in: Some(frame),
        repeat,
        ..Default::default()
    })?;
    Ok((r.return_value, r.duration.as_nanos() as f64))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Rounds per ban count: each round runs the baselines and every class
/// once, in turn, so a noisy moment on a shared core hits both sides of a
/// ratio alike; the median of each is kept.
/// Interleaved rounds per ban count: test_run reports whole nanoseconds, so
/// the targets take the mean of these (the tables show the median too).
const ROUNDS: usize = 12;
/// A banned range no allowlist entry overlaps (the usual case).
const RANGE: &str = "203.0.113.0/24";
/// A banned range with an allowlisted prefix inside it.
const RANGE_WITH_ALLOW: &str = "198.51.100.0/24";
const ALLOWED_INSIDE_RANGE: &str = "198.51.100.128/28";
/// A source in the known-good map (authenticated).
const KNOWN_GOOD: &str = "192.0.2.210";

fn filler_v4(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000u32 + i)
}

fn filler_v6(i: u32) -> Ipv6Addr {
    Ipv6Addr::from((0xfd00u128 << 112) + i as u128)
}

struct Baselines {
    ebpf: Ebpf,
}

impl Baselines {
    fn load() -> Result<Baselines> {
        if object::BASELINES.is_empty() {
            bail!("built without the baseline programs (AYA_BUILD_SKIP)");
        }
        let mut ebpf = EbpfLoader::new().load(object::BASELINES)?;
        for name in ["bench_pass", "bench_lookup_drop"] {
            let prog: &mut Xdp = ebpf.program_mut(name).context(name)?.try_into()?;
            prog.load()?;
        }
        Ok(Baselines { ebpf })
    }

    fn insert(&mut self, v4: &[Ipv4Addr], v6: &[Ipv6Addr]) -> Result<()> {
        let mut m4: HashMap<_, [u8; 4], u8> =
            HashMap::try_from(self.ebpf.map_mut("BASE_BANS_V4").context("map")?)?;
        for a in v4 {
            m4.insert(a.octets(), 1, 0)?;
        }
        let mut m6: HashMap<_, [u8; 16], u8> =
            HashMap::try_from(self.ebpf.map_mut("BASE_BANS_V6").context("map")?)?;
        for a in v6 {
            m6.insert(a.octets(), 1, 0)?;
        }
        Ok(())
    }

    fn run(&self, name: &'static str, frame: &[u8], repeat: u32) -> Result<(u32, f64)> {
        let prog: &Xdp = self.ebpf.program(name).context(name)?.try_into()?;
        test_run(prog, frame, repeat)
    }
}

fn xdp(quick: bool) -> Result<Value> {
    let counts: &[u32] = if quick {
        &[0, 10_000]
    } else {
        &[0, 10_000, 100_000, 1_000_000]
    };
    let repeat: u32 = 500_000;
    let max = counts.iter().copied().max().unwrap_or(0) + 16;

    let mut h = Harness::with_sizes(MapSizes {
        max_bans: max,
        max_ranges: 64,
        max_allow: 64,
        max_sources: 1 << 16,
        ..MapSizes::default()
    });
    // The rate guard off, flood buckets too: each class is timed on its own
    // path, millions of times from one source, which a flood bucket would
    // otherwise ban after its burst (and time the ban instead).
    h.configure(XdpConfig {
        register_limit: RateLimit::new(0, 0),
        message_limit: RateLimit::new(0, 0),
        register_flood: RateLimit::new(0, 0),
        message_flood: RateLimit::new(0, 0),
        sustain_ns: 0,
        scanner_action: ScannerAction::Count as u32,
        ..XdpConfig::default()
    });
    let entry = BanEntry {
        expires_ns: 0,
        created_ns: monotonic_ns(),
        origin: BanOrigin::Userspace as u32,
        _pad: 0,
    };
    h.maps.bans.insert(BLOCKED_V4.parse()?, entry)?;
    h.maps.bans.insert(BLOCKED_V6.parse()?, entry)?;
    h.maps.allow.insert("192.0.2.0/28".parse()?)?;
    h.maps.allow.insert(ALLOWED_INSIDE_RANGE.parse()?)?;
    // Each range as the daemon writes it: flagged when no allowlisted
    // prefix lies inside (one trie lookup drops), unflagged otherwise (the
    // allowlist is looked up before the drop).
    for range in [RANGE, RANGE_WITH_ALLOW] {
        let net = range.parse()?;
        let entry = RangeEntry {
            no_allow_inside: u32::from(!h.maps.allow.overlaps(net)?),
            ..RangeEntry::default()
        };
        h.maps.ranges.insert(net, entry)?;
    }
    h.maps.known.insert(KNOWN_GOOD.parse()?, 0)?;

    let mut base = Baselines::load()?;
    let blocked4: Ipv4Addr = BLOCKED_V4.parse()?;
    let blocked6: Ipv6Addr = BLOCKED_V6.parse()?;
    base.insert(&[blocked4], &[blocked6])?;

    let frames = classes();
    // Warm-up: JIT images and maps into the caches before the first row.
    for (_, f) in &frames {
        test_run(h.program.xdp()?, f, repeat)?;
    }
    let mut loaded = 0u32;
    let mut rows = Vec::new();
    for &count in counts {
        // Half the filler bans IPv4, half IPv6, like a real table.
        let t = Instant::now();
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for i in loaded..count {
            if i % 2 == 0 {
                v4.push(filler_v4(i));
                h.maps.bans.insert(IpAddr::V4(filler_v4(i)), entry)?;
            } else {
                v6.push(filler_v6(i));
                h.maps.bans.insert(IpAddr::V6(filler_v6(i)), entry)?;
            }
        }
        let load_ms = t.elapsed().as_secs_f64() * 1000.0;
        base.insert(&v4, &v6)?;
        loaded = count;

        let mut pass_runs = Vec::new();
        let mut lookup4_runs = Vec::new();
        let mut lookup6_runs = Vec::new();
        let mut class_runs: Vec<Vec<f64>> = vec![Vec::new(); frames.len()];
        let mut verdicts = vec![0u32; frames.len()];
        for _ in 0..ROUNDS {
            pass_runs.push(base.run("bench_pass", &frames[0].1, repeat)?.1);
            let (v, ns) = base.run("bench_lookup_drop", &frames[0].1, repeat)?;
            if v != 1 {
                bail!("baseline did not drop the blocked v4 source");
            }
            lookup4_runs.push(ns);
            lookup6_runs.push(base.run("bench_lookup_drop", &frames[1].1, repeat)?.1);
            for (i, (_, f)) in frames.iter().enumerate() {
                let (verdict, ns) = test_run(h.program.xdp()?, f, repeat)?;
                verdicts[i] = verdict;
                class_runs[i].push(ns);
            }
        }
        // A counted message timed as a drop would be a figure of the wrong
        // path (a rate-guard ban of the repeating source, say).
        for (i, (name, _)) in frames.iter().enumerate() {
            if name.starts_with("SIP REGISTER") && verdicts[i] != XDP_PASS {
                bail!("{name}: verdict {} where it must pass", verdicts[i]);
            }
        }
        let lookup4_mean = mean(&lookup4_runs);
        let lookup6_mean = mean(&lookup6_runs);
        let pass_ns = median(pass_runs);
        let lookup4 = median(lookup4_runs);
        let lookup6 = median(lookup6_runs);
        let mut classes_out = Vec::new();
        for (i, (name, _)) in frames.iter().enumerate() {
            let runs = std::mem::take(&mut class_runs[i]);
            let mean_ns = mean(&runs);
            let ns = median(runs);
            let (baseline, baseline_mean) = if name.contains("v6") {
                (lookup6, lookup6_mean)
            } else {
                (lookup4, lookup4_mean)
            };
            classes_out.push(json!({
                "class": name,
                "verdict": if verdicts[i] == 1 { "drop" } else { "pass" },
                "ns": ns,
                "mean_ns": mean_ns,
                "ratio_to_lookup": ns / baseline,
                "mean_ratio_to_lookup": mean_ns / baseline_mean,
            }));
        }
        rows.push(json!({
            "bans": count,
            "bans_load_ms": load_ms,
            "baseline_pass_ns": pass_ns,
            "baseline_lookup_v4_ns": lookup4,
            "baseline_lookup_v6_ns": lookup6,
            "classes": classes_out,
        }));
        eprintln!("bench: xdp with {count} bans done");
    }
    Ok(json!({"repeat": repeat, "rows": rows}))
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// A realistic Asterisk log: failures fail2ban's stock asterisk filter and
/// sipshield both recognise, among the noise a busy PBX writes.
fn make_log(path: &str, lines: usize) -> Result<Value> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut failures = 0usize;
    for i in 0..lines {
        let ip = format!("203.0.{}.{}", (i / 250) % 250, i % 250 + 1);
        let ts = format!("[2026-11-25 10:{:02}:{:02}]", (i / 60) % 60, i % 60);
        let (line, failure) = match i % 25 {
            0 => (format!("{ts} NOTICE[2245][C-0000{:04x}] chan_sip.c: Registration from '\"1{:03}\" <sip:1{:03}@10.0.0.1:5060>' failed for '{ip}:5060' - Wrong password", i % 65535, i % 1000, i % 1000), true),
            1 => (format!("{ts} NOTICE[2245] chan_sip.c: Registration from '<sip:admin@10.0.0.1>' failed for '{ip}:5060' - No matching peer found"), true),
            2 => (format!("{ts} NOTICE[2311][C-00000{:03x}] chan_sip.c: Call from '' ({ip}:5071) to extension '011972595{:04}' rejected because extension not found in context 'default'.", i % 4096, i % 10000), true),
            3 => (format!("{ts} NOTICE[2290] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '<sip:{}@10.0.0.1>' failed for '{ip}:5060' (callid: {i}abc) - No matching endpoint found", i % 900), true),
            4 => (format!("{ts} VERBOSE[2300][C-0000{:04x}] pbx.c: Executing [s@macro-dial:7] Dial(\"PJSIP/101-0000{:04x}\", \"PJSIP/102,20,tr\") in new stack", i % 65535, i % 65535), false),
            5 => (format!("{ts} VERBOSE[2251] chan_sip.c: Registered SIP '101' at 192.168.1.{}:5060", i % 200 + 2), false),
            6 => (format!("{ts} NOTICE[2245] chan_sip.c: Peer '101' is now Reachable. (21ms / 2000ms)"), false),
            7 => (format!("{ts} WARNING[2245] chan_sip.c: Retransmission timeout reached on transmission {i}@10.0.0.1 for seqno 102 (Critical Response)"), false),
            8 => (format!("{ts} VERBOSE[2300][C-0000{:04x}] app_dial.c: Called PJSIP/102", i % 65535), false),
            9 => (format!("{ts} DEBUG[2245] res_rtp_asterisk.c: Setting RTP source address to 192.168.1.{}:{}", i % 200 + 2, 10000 + i % 10000), false),
            _ => (format!("{ts} VERBOSE[2300][C-0000{:04x}] pbx.c: Executing [{}@from-internal:{}] NoOp(\"PJSIP/101-0000{:04x}\", \"call\") in new stack", i % 65535, 100 + i % 900, i % 9 + 1, i % 65535), false),
        };
        failures += usize::from(failure);
        writeln!(f, "{line}")?;
    }
    f.flush()?;
    Ok(json!({"path": path, "lines": lines, "failures": failures}))
}
