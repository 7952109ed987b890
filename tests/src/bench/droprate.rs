//! Drop rate of a banned source, sipshield against what operators use
//! instead: nftables `netdev ingress` and `inet` raw prerouting drops with a
//! named set of the same size, and nothing at all.
//!
//! Two paths into the receiving veth:
//! - NIC-like: a generator namespace runs an XDP program that redirects
//!   every frame into its veth (`bench_redirect`), driven by
//!   BPF_PROG_TEST_RUN with live frames. The receiver gets raw frames, no
//!   skb, as from a NIC driver: XDP's home ground.
//! - skb: an AF_PACKET socket sends the frames (what trafgen does); they
//!   reach the receiver as skbs, so XDP on veth first pays for a copy.
//!
//! Each point counts what the receiver itself dropped (sipshield's stats
//! map, the nft rule's counter, or the stack's rx count for "none") over
//! the wall time, and the CPU time all cores spent, from /proc/stat.

use std::{
    io::Write,
    net::Ipv4Addr,
    os::fd::{AsRawFd, FromRawFd},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use aya::{
    maps::Array,
    programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp},
    EbpfLoader,
};
use serde_json::{json, Value};
use sipshield::bpf::{clock::monotonic_ns, object, AttachMode, LoadedProgram, MapSizes};
use sipshield_common::{
    counters::Action,
    maps::{BanEntry, BanOrigin},
};

use crate::{netns::Netns, packet::Frame};

/// The banned source the frames come from.
const BANNED: &str = "198.51.100.7";
const RX_IP: &str = "10.99.0.1";
const RX_MAC: &str = "02:00:00:00:00:01";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    None,
    Sipshield,
    /// The one-lookup baseline program (`bench_lookup_drop`).
    OneLookup,
    NftNetdev,
    NftRaw,
}

impl Method {
    pub const ALL: [Method; 5] = [
        Method::Sipshield,
        Method::OneLookup,
        Method::NftNetdev,
        Method::NftRaw,
        Method::None,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Method::None => "none",
            Method::Sipshield => "sipshield",
            Method::OneLookup => "one-lookup-xdp",
            Method::NftNetdev => "nft-netdev-ingress",
            Method::NftRaw => "nft-inet-raw-prerouting",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    NicLike,
    Skb,
}

/// A generator and a receiver namespace joined by veth g0 <-> r0.
struct Pair {
    gen: Netns,
    rx: Netns,
}

impl Pair {
    fn new() -> Pair {
        let gen = Netns::create("bg");
        let rx = Netns::create("br");
        let ok = Command::new("ip")
            .args(["link", "add", "g0", "netns", &gen.name, "type", "veth"])
            .args(["peer", "name", "r0", "netns", &rx.name])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "veth pair");
        rx.ip(&["link", "set", "r0", "address", RX_MAC]);
        rx.ip(&["addr", "add", &format!("{RX_IP}/24"), "dev", "r0"]);
        gen.ip(&["addr", "add", "10.99.0.2/24", "dev", "g0"]);
        rx.ip(&["link", "set", "r0", "up"]);
        gen.ip(&["link", "set", "g0", "up"]);
        // Raw frames redirected into g0 need NAPI on r0: an XDP program or
        // GRO (toolchain.md, "Measuring drop cost honestly on veth").
        let ok = rx
            .command("ethtool")
            .args(["-K", "r0", "gro", "on"])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "ethtool -K r0 gro on");
        Pair { gen, rx }
    }

    fn ifindex(&self, ns: &Netns, dev: &str) -> Result<u32> {
        let out = ns
            .command("cat")
            .arg(format!("/sys/class/net/{dev}/ifindex"))
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    }

    fn rx_packets(&self) -> Result<u64> {
        let out = Command::new("ip")
            .args(["-n", &self.rx.name, "-j", "-s", "link", "show", "dev", "r0"])
            .output()?;
        let v: Value = serde_json::from_slice(&out.stdout)?;
        v[0]["stats64"]["rx"]["packets"]
            .as_u64()
            .context("rx packets of r0")
    }
}

/// Addresses to fill a ban set with: N-1 others and the banned one.
fn ban_set(n: u32) -> Vec<Ipv4Addr> {
    let mut v: Vec<Ipv4Addr> = (1..n).map(|i| Ipv4Addr::from(0x0a40_0000u32 + i)).collect();
    v.push(BANNED.parse().expect("banned address"));
    v
}

/// Loads an nftables ruleset into the receiver's namespace.
fn nft_apply(pair: &Pair, script: &str) -> Result<()> {
    let mut child = pair
        .rx
        .command("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .context("nft (package nftables)")?;
    child
        .stdin
        .take()
        .context("nft stdin")?
        .write_all(script.as_bytes())?;
    if !child.wait()?.success() {
        bail!("nft -f failed");
    }
    Ok(())
}

/// The receiver as one method sets it up; `dropped()` reads its count.
enum Receiver {
    None,
    Sipshield(Box<(LoadedProgram, sipshield::bpf::ShieldMaps)>),
    /// Held so the program stays attached while the point runs.
    OneLookup(#[expect(dead_code, reason = "kept alive, never read")] Box<aya::Ebpf>),
    Nft,
}

impl Receiver {
    fn install(pair: &Pair, method: Method, bans: u32) -> Result<Receiver> {
        let set = ban_set(bans);
        Ok(match method {
            Method::None => Receiver::None,
            Method::Sipshield => {
                let mut prog = LoadedProgram::load(MapSizes {
                    max_bans: bans.max(1024),
                    max_ranges: 1024,
                    max_allow: 1024,
                    max_sources: 65536,
                    ..MapSizes::default()
                })?;
                let mut maps = prog.take_maps()?;
                let entry = BanEntry {
                    expires_ns: 0,
                    created_ns: monotonic_ns(),
                    origin: BanOrigin::Userspace as u32,
                    _pad: 0,
                };
                for a in &set {
                    maps.bans.insert((*a).into(), entry)?;
                }
                pair.rx.enter(|| prog.attach("r0", AttachMode::Driver))?;
                Receiver::Sipshield(Box::new((prog, maps)))
            }
            Method::OneLookup => {
                if object::BASELINES.is_empty() {
                    bail!("built without the baseline programs (AYA_BUILD_SKIP)");
                }
                let mut ebpf = aya::EbpfLoader::new().load(object::BASELINES)?;
                {
                    let mut m4: aya::maps::HashMap<_, [u8; 4], u8> = aya::maps::HashMap::try_from(
                        ebpf.map_mut("BASE_BANS_V4").context("BASE_BANS_V4")?,
                    )?;
                    for a in &set {
                        m4.insert(a.octets(), 1, 0)?;
                    }
                }
                let prog: &mut aya::programs::Xdp = ebpf
                    .program_mut("bench_lookup_drop")
                    .context("bench_lookup_drop")?
                    .try_into()?;
                prog.load()?;
                pair.rx
                    .enter(|| prog.attach("r0", aya::programs::XdpMode::Driver))?;
                Receiver::OneLookup(Box::new(ebpf))
            }
            Method::NftNetdev | Method::NftRaw => {
                let (family, hook) = if method == Method::NftNetdev {
                    (
                        "netdev",
                        "type filter hook ingress device \"r0\" priority 0;",
                    )
                } else {
                    ("inet", "type filter hook prerouting priority raw;")
                };
                let mut script = format!(
                    "table {family} sipbench {{\n set banned {{\n  type ipv4_addr; size {};\n  elements = {{ ",
                    bans.max(1) * 2
                );
                let list: Vec<String> = set.iter().map(Ipv4Addr::to_string).collect();
                script.push_str(&list.join(", "));
                script.push_str(&format!(
                    " }}\n }}\n chain c {{\n  {hook}\n  ip saddr @banned counter drop\n }}\n}}\n"
                ));
                nft_apply(pair, &script).with_context(|| method.name())?;
                Receiver::Nft
            }
        })
    }

    /// Packets this receiver has dropped (for "none": received by r0).
    fn dropped(&self, pair: &Pair) -> Result<u64> {
        match self {
            Receiver::None => pair.rx_packets(),
            Receiver::Sipshield(loaded) => Ok(loaded.1.stats.snapshot()?.total(Action::Drop)),
            // The baseline counts nothing itself: veth's XDP drop counters.
            Receiver::OneLookup(_) => {
                let out = pair.rx.command("ethtool").args(["-S", "r0"]).output()?;
                Ok(String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| l.contains("xdp_drops"))
                    .filter_map(|l| l.rsplit(':').next()?.trim().parse::<u64>().ok())
                    .sum())
            }
            Receiver::Nft => {
                let out = pair
                    .rx
                    .command("nft")
                    .args(["-j", "list", "ruleset"])
                    .output()?;
                let v: Value = serde_json::from_slice(&out.stdout)?;
                let packets = v["nftables"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o["rule"]["expr"].as_array())
                    .flatten()
                    .filter_map(|e| e["counter"]["packets"].as_u64())
                    .sum();
                Ok(packets)
            }
        }
    }
}

/// CPU time (all cores, non-idle) in nanoseconds, from /proc/stat.
fn busy_cpu_ns() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("/proc/stat")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Ok(busy * 1_000_000_000 / hz.max(1))
}

/// The frame: banned source, UDP to the receiver's 5060, a SIP REGISTER.
fn frame() -> Vec<u8> {
    let payload = b"REGISTER sip:10.99.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK1\r\nFrom: <sip:100@10.99.0.1>;tag=1\r\nTo: <sip:100@10.99.0.1>\r\nCall-ID: 1@198.51.100.7\r\nCSeq: 1 REGISTER\r\nUser-Agent: Z 5.5.2\r\nContent-Length: 0\r\n\r\n";
    Frame::udp(BANNED, 5060, payload).with_dst(RX_IP).build()
}

/// An XDP traffic generator for one pair: `bench_redirect`, or
/// `bench_redirect_random` for a new source each frame, loaded once. Loading
/// the baselines object creates its two preallocated 1M-entry hash maps,
/// which takes longer than a quick run's traffic: it must stay out of the
/// timed runs (it once was inside them, and shrank every ratio).
pub struct Generator {
    ebpf: aya::Ebpf,
    program: &'static str,
}

impl Generator {
    fn new(pair: &Pair, program: &'static str) -> Result<Generator> {
        if object::BASELINES.is_empty() {
            bail!("built without the baseline programs (AYA_BUILD_SKIP)");
        }
        let ifindex = pair.ifindex(&pair.gen, "g0")?;
        let mut ebpf = EbpfLoader::new().load(object::BASELINES)?;
        let mut tx: Array<_, u32> = Array::try_from(ebpf.map_mut("BASE_TX").context("BASE_TX")?)?;
        tx.set(0, ifindex, 0)?;
        let prog: &mut Xdp = ebpf
            .program_mut(program)
            .context("generator program")?
            .try_into()?;
        prog.load()?;
        Ok(Generator { ebpf, program })
    }

    /// Sends `repeat` copies of `data` into g0 (live frames, 64 a batch).
    fn send(&self, pair: &Pair, data: &[u8], repeat: u32) -> Result<()> {
        let prog: &Xdp = self
            .ebpf
            .program(self.program)
            .context("generator program")?
            .try_into()?;
        pair.gen.enter(|| -> Result<()> {
            prog.test_run(TestRunOptions {
                data_in: Some(data),
                repeat,
                attrs: TestRunAttrs::new().xdp_live_frames(64),
                ..Default::default()
            })?;
            Ok(())
        })
    }
}

/// Sends frames through an AF_PACKET socket on g0 for `dur` (as trafgen).
fn generate_skb(pair: &Pair, dur: Duration) -> Result<u64> {
    let ifindex = pair.ifindex(&pair.gen, "g0")?;
    let data = frame();
    pair.gen.enter(|| -> Result<u64> {
        // SAFETY: plain socket calls on a descriptor owned here.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if fd < 0 {
            bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor, owned from here on.
        let sock = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let one: libc::c_int = 1;
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                &one as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        addr.sll_halen = 6;
        let mut sent = 0u64;
        let until = Instant::now() + dur;
        while Instant::now() < until {
            for _ in 0..256 {
                let n = unsafe {
                    libc::sendto(
                        sock.as_raw_fd(),
                        data.as_ptr() as *const libc::c_void,
                        data.len(),
                        0,
                        &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    )
                };
                if n > 0 {
                    sent += 1;
                }
            }
        }
        Ok(sent)
    })
}

/// Interleaved rounds per point: a NIC-like run of a million frames lasts
/// under 0.1 s, so one noisy moment of a shared core moves a median of three.
const ROUNDS: usize = 5;

/// One run: (drops per second, sent, dropped, seconds, CPU ns).
type Run = (f64, u64, u64, f64, f64);

/// One run through `pair`.
fn one_run(
    pair: &Pair,
    generator: &Generator,
    receiver: &Receiver,
    path: Path,
    quick: bool,
) -> Result<Run> {
    let data = frame();
    let before = receiver.dropped(pair)?;
    let cpu0 = busy_cpu_ns()?;
    let t = Instant::now();
    let sent = match path {
        Path::NicLike => {
            let repeat = if quick { 2_000_000 } else { 5_000_000 };
            generator.send(pair, &data, repeat)?;
            u64::from(repeat)
        }
        Path::Skb => generate_skb(pair, Duration::from_millis(if quick { 300 } else { 1_000 }))?,
    };
    let secs = t.elapsed().as_secs_f64();
    let cpu = busy_cpu_ns()?.saturating_sub(cpu0) as f64;
    let dropped = receiver.dropped(pair)?.saturating_sub(before);
    Ok((dropped as f64 / secs, sent, dropped, secs, cpu))
}

/// The points of `methods` at one path and ban count, measured in
/// interleaved rounds (every method once per round) so a noisy moment of
/// the shared machine hits all of them; the median of `ROUNDS` each.
pub fn points_at(path: Path, methods: &[Method], bans: u32, quick: bool) -> Result<Vec<Value>> {
    let pairs: Vec<Pair> = methods.iter().map(|_| Pair::new()).collect();
    let receivers: Vec<Receiver> = methods
        .iter()
        .zip(&pairs)
        .map(|(m, p)| {
            Receiver::install(p, *m, bans).with_context(|| format!("{path:?} {}", m.name()))
        })
        .collect::<Result<_>>()?;
    let generators: Vec<Generator> = pairs
        .iter()
        .map(|p| Generator::new(p, "bench_redirect"))
        .collect::<Result<_>>()?;
    // Warm-up: caches, JIT, the first NAPI runs.
    for (pair, generator) in pairs.iter().zip(&generators) {
        match path {
            Path::NicLike => generator.send(pair, &frame(), 10_000)?,
            Path::Skb => {
                generate_skb(pair, Duration::from_millis(50))?;
            }
        }
    }
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); methods.len()];
    for _ in 0..ROUNDS {
        for (i, (pair, receiver)) in pairs.iter().zip(&receivers).enumerate() {
            runs[i].push(one_run(pair, &generators[i], receiver, path, quick)?);
        }
    }
    let mut out = Vec::new();
    for (i, method) in methods.iter().enumerate() {
        let mut r = std::mem::take(&mut runs[i]);
        r.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (rate, sent, dropped, secs, cpu) = r[ROUNDS / 2];
        let all: Vec<f64> = r.iter().map(|x| x.0 / 1e6).collect();
        out.push(json!({
            "path": match path { Path::NicLike => "nic-like", Path::Skb => "skb" },
            "method": method.name(),
            "bans": bans,
            "sent": sent,
            "dropped": dropped,
            "seconds": secs,
            "mpps": rate / 1e6,
            "runs_mpps": all,
            "cpu_ms_per_mpkt": if dropped > 0 { cpu / 1e6 / (dropped as f64 / 1e6) } else { 0.0 },
        }));
    }
    drop(receivers);
    Ok(out)
}

/// Every point: both paths, each method, each ban count.
pub fn run(quick: bool) -> Result<Value> {
    let counts: &[u32] = if quick {
        &[1, 10_000]
    } else {
        &[1, 10_000, 100_000]
    };
    let mut points = Vec::new();
    for path in [Path::NicLike, Path::Skb] {
        for &bans in counts {
            // No set for "none": one point is enough.
            let methods: Vec<Method> = Method::ALL
                .into_iter()
                .filter(|m| *m != Method::None || bans == counts[0])
                .collect();
            for p in points_at(path, &methods, bans, quick)? {
                eprintln!(
                    "bench:   {:<8} {:<24} {:>7} bans: {:>6.2} Mpps dropped, {:>6.0} ms CPU per Mpkt",
                    p["path"].as_str().unwrap_or(""),
                    p["method"].as_str().unwrap_or(""),
                    bans,
                    p["mpps"].as_f64().unwrap_or(0.0),
                    p["cpu_ms_per_mpkt"].as_f64().unwrap_or(0.0)
                );
                points.push(p);
            }
        }
    }
    Ok(json!({ "points": points }))
}

// ------------------------------------------------------------------ floods

/// Who receives a REGISTER flood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FloodReceiver {
    /// sipshield with its default rate guard (REGISTER police 30/s, burst
    /// 120 per source; flood bucket 300/s, burst 600).
    Sipshield,
    /// nftables per-source meter at `netdev ingress`, the same rate.
    NftMeter,
    /// The empty XDP program: what an XDP program that passes costs on veth
    /// (its frames become skbs the slow way), so sipshield's own part can
    /// be told from it.
    XdpPass,
}

impl FloodReceiver {
    fn name(self) -> &'static str {
        match self {
            FloodReceiver::Sipshield => "sipshield",
            FloodReceiver::NftMeter => "nft-meter",
            FloodReceiver::XdpPass => "xdp-pass",
        }
    }
}

/// A REGISTER flood's frame, from `src`.
fn flood_frame(src: &str) -> Vec<u8> {
    let payload = b"REGISTER sip:10.99.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.1.1:5060;branch=z9hG4bK1\r\nFrom: <sip:100@10.99.0.1>;tag=1\r\nTo: <sip:100@10.99.0.1>\r\nCall-ID: 1@10.1.1.1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
    let mut f = Frame::udp(src, 5060, payload).with_dst(RX_IP);
    f.sport = 5060;
    f.build()
}

/// Sets the receiver up; what it holds must live while the flood runs.
enum FloodRx {
    Sipshield(Box<(LoadedProgram, sipshield::bpf::ShieldMaps)>),
    Nft,
    XdpPass(#[expect(dead_code, reason = "kept attached, never read")] Box<aya::Ebpf>),
}

impl FloodRx {
    fn install(pair: &Pair, who: FloodReceiver) -> Result<FloodRx> {
        Ok(match who {
            FloodReceiver::Sipshield => {
                let mut prog = LoadedProgram::load(MapSizes::default())?;
                let mut maps = prog.take_maps()?;
                let prefixes: Vec<_> = sipshield_common::config::DEFAULT_UA_PREFIXES
                    .iter()
                    .filter_map(|p| sipshield_common::config::UaPrefix::new(p.as_bytes()))
                    .collect();
                maps.config
                    .write(&sipshield_common::config::XdpConfig::default(), &prefixes)?;
                pair.rx.enter(|| prog.attach("r0", AttachMode::Driver))?;
                FloodRx::Sipshield(Box::new((prog, maps)))
            }
            FloodReceiver::NftMeter => {
                // The same per-source rate as sipshield's REGISTER police.
                let (rate, burst) = sipshield_common::config::DEFAULT_REGISTER_POLICE;
                let script = format!("table netdev sipmeter {{\n set m {{ type ipv4_addr; size 65535; flags dynamic,timeout; timeout 60s; }}\n chain c {{\n  type filter hook ingress device \"r0\" priority 0;\n  meta protocol ip udp dport 5060 add @m {{ ip saddr limit rate over {rate}/second burst {burst} packets }} counter drop\n }}\n}}\n");
                nft_apply(pair, &script).context("the meter")?;
                FloodRx::Nft
            }
            FloodReceiver::XdpPass => {
                let mut ebpf = aya::EbpfLoader::new().load(object::BASELINES)?;
                let prog: &mut aya::programs::Xdp = ebpf
                    .program_mut("bench_pass")
                    .context("bench_pass")?
                    .try_into()?;
                prog.load()?;
                pair.rx
                    .enter(|| prog.attach("r0", aya::programs::XdpMode::Driver))?;
                FloodRx::XdpPass(Box::new(ebpf))
            }
        })
    }

    fn dropped(&self, pair: &Pair) -> Result<u64> {
        match self {
            FloodRx::Sipshield(loaded) => Ok(loaded.1.stats.snapshot()?.total(Action::Drop)),
            FloodRx::Nft => Receiver::Nft.dropped(pair),
            FloodRx::XdpPass(_) => Ok(0),
        }
    }
}

/// One flood run: Mpps dropped, CPU ms per million packets sent.
fn flood_run(
    pair: &Pair,
    generator: &Generator,
    rx: &FloodRx,
    repeat: u32,
) -> Result<(f64, f64, u64)> {
    let data = flood_frame("10.1.1.1");
    let before = rx.dropped(pair)?;
    let cpu0 = busy_cpu_ns()?;
    let t = Instant::now();
    generator.send(pair, &data, repeat)?;
    let secs = t.elapsed().as_secs_f64();
    let cpu = busy_cpu_ns()?.saturating_sub(cpu0) as f64;
    let dropped = rx.dropped(pair)?.saturating_sub(before);
    Ok((
        dropped as f64 / secs / 1e6,
        cpu / 1e6 / (f64::from(repeat) / 1e6),
        dropped,
    ))
}

/// REGISTER floods against sipshield and an nftables meter at the same
/// per-source rate: one source (Mpps dropped), and a new forged source per
/// packet (CPU per million packets: nothing is dropped by either).
/// Interleaved rounds, medians.
pub fn floods(quick: bool) -> Result<Value> {
    let repeat = if quick { 500_000 } else { 2_000_000 };
    let rounds = if quick { 3 } else { 5 };
    let mut out = Vec::new();
    for random in [false, true] {
        let whos: &[FloodReceiver] = if random {
            &[
                FloodReceiver::Sipshield,
                FloodReceiver::NftMeter,
                FloodReceiver::XdpPass,
            ]
        } else {
            &[FloodReceiver::Sipshield, FloodReceiver::NftMeter]
        };
        let pairs: Vec<Pair> = whos.iter().map(|_| Pair::new()).collect();
        let rxs: Vec<FloodRx> = whos
            .iter()
            .zip(&pairs)
            .map(|(w, p)| FloodRx::install(p, *w))
            .collect::<Result<_>>()?;
        let program = if random {
            "bench_redirect_random"
        } else {
            "bench_redirect"
        };
        let generators: Vec<Generator> = pairs
            .iter()
            .map(|p| Generator::new(p, program))
            .collect::<Result<_>>()?;
        for ((p, g), rx) in pairs.iter().zip(&generators).zip(&rxs) {
            flood_run(p, g, rx, 20_000)?; // warm-up
        }
        let mut runs: Vec<Vec<(f64, f64, u64)>> = vec![Vec::new(); whos.len()];
        for _ in 0..rounds {
            for (i, (p, rx)) in pairs.iter().zip(&rxs).enumerate() {
                runs[i].push(flood_run(p, &generators[i], rx, repeat)?);
            }
        }
        for (i, who) in whos.iter().enumerate() {
            let mut mpps: Vec<f64> = runs[i].iter().map(|r| r.0).collect();
            let mut cpu: Vec<f64> = runs[i].iter().map(|r| r.1).collect();
            mpps.sort_by(f64::total_cmp);
            cpu.sort_by(f64::total_cmp);
            let row = json!({
                "flood": if random { "random-sources" } else { "single-source" },
                "receiver": who.name(),
                "sent_per_run": repeat,
                "mpps_dropped": mpps[mpps.len() / 2],
                "cpu_ms_per_mpkt": cpu[cpu.len() / 2],
                "runs_mpps": mpps,
                "runs_cpu": cpu,
            });
            eprintln!("bench:   flood {row}");
            out.push(row);
        }
    }
    Ok(json!({ "rows": out }))
}
