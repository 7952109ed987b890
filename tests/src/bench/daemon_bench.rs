//! Daemon-side measurements: how fast a ban lands (a failure line in the
//! log → the kernel drops the source; a flood → the kernel rate guard bans
//! it with no userspace at all), and how the daemon scales (time to restore
//! 100k and 1M bans from its state database into the kernel, and its memory).

use std::{
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sipshield::{
    bpf::pins,
    offence::OffenceClass,
    state::{BanOrigin, BanRecord, BanTarget, State, STATE_VERSION},
};
use sipshield_common::{
    config::{RateLimit, XdpConfig},
    counters::{Action, Reason},
};

use crate::{
    daemon::{append, wrong_password, Daemon, DaemonPaths},
    netns::{VethLab, GUARD_DEV},
};

/// p-th percentile (0..=100) of sorted `v`.
fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Failure line appended → source in the kernel's ban map (the next packet
/// of it is dropped), over `trials` fresh sources, daemon defaults
/// (5 failures, 50 ms log polling), with `held` bans already in the
/// daemon's state (restored at start): what a busy PBX's daemon carries
/// while it keeps banning.
pub fn log_ban_latency(trials: u32, held: u32, with_top: bool) -> Result<Value> {
    let lab = VethLab::new("10.211.1");
    let paths = DaemonPaths::new("lat");
    if held > 0 {
        write_state(&paths, held)?;
    }
    let (_daemon, maps, log, _) = run_daemon(&lab, &paths, held)?;
    // An operator watching `sipshield top` (a request a second) meanwhile.
    let top = with_top.then(|| TopWatcher::start(&lab, &paths));
    let mut ms = Vec::new();
    for t in 0..trials {
        let ip = Ipv4Addr::from(0x0a4d_0000u32 + 256 * (t / 250) + (t % 250) + 1);
        let ips = ip.to_string();
        // Four failures first, untimed; the fifth crosses the threshold.
        let lines: Vec<String> = (0..4).map(|n| wrong_password(&ips, n)).collect();
        append(&log, &lines);
        std::thread::sleep(Duration::from_millis(120));
        let t0 = Instant::now();
        append(&log, &[wrong_password(&ips, 4)]);
        loop {
            if maps.ban_of(IpAddr::V4(ip))?.is_some() {
                break;
            }
            if t0.elapsed() > Duration::from_secs(3) {
                bail!("{ips} not banned 3 s after its fifth failure");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
        // Next trial at a random phase of the daemon's poll cycle.
        std::thread::sleep(Duration::from_millis(u64::from(rand::random::<u8>() % 50)));
    }
    drop(top);
    let mut sorted = ms.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(json!({
        "trials": trials,
        "bans_held": held,
        "with_top": with_top,
        "p50_ms": percentile(&sorted, 50.0),
        "p99_ms": percentile(&sorted, 99.0),
        "max_ms": sorted.last().copied().unwrap_or(0.0),
        "min_ms": sorted.first().copied().unwrap_or(0.0),
        "poll_interval_ms": 50,
    }))
}

/// `sipshield top` running against the daemon until dropped.
struct TopWatcher(std::process::Child);

impl TopWatcher {
    fn start(lab: &VethLab, paths: &DaemonPaths) -> TopWatcher {
        let child = std::process::Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", lab.guarded.name))
            .arg(crate::daemon::sipshield_bin())
            .args(["top", "--socket"])
            .arg(paths.socket())
            .arg("--pin-root")
            .arg(&paths.pin_root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sipshield top");
        TopWatcher(child)
    }
}

impl Drop for TopWatcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wall time of `ok()`, median of 5, in ms; NaN if any run fails.
fn median_ms_of_5(mut ok: impl FnMut() -> bool) -> f64 {
    let mut runs = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        let done = ok();
        runs.push(t0.elapsed().as_secs_f64() * 1e3);
        if !done {
            return f64::NAN;
        }
    }
    runs.sort_by(f64::total_cmp);
    runs[2]
}

/// Wall time of `sipshield status --json`, median of 5, in ms.
fn status_ms(lab: &VethLab, paths: &DaemonPaths) -> f64 {
    median_ms_of_5(|| {
        crate::daemon::cli(&lab.guarded, paths, &["status", "--json"])
            .status
            .success()
    })
}

/// Wall time of one `GET /metrics` from the daemon's default endpoint
/// (127.0.0.1:9794 in the guarded namespace), median of 5, in ms; NaN if
/// it does not answer 200. A scrape reads gauges the engine keeps, so it
/// should not grow with the bans held.
fn scrape_ms(lab: &VethLab) -> f64 {
    use std::io::{Read, Write};
    median_ms_of_5(|| {
        let answer = lab.guarded.enter(|| -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", 9794))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
            let mut raw = String::new();
            s.read_to_string(&mut raw)?;
            Ok(raw)
        });
        answer.is_ok_and(|a| a.starts_with("HTTP/1.1 200"))
    })
}

/// Bytes the daemon wrote to storage (`write_bytes` of /proc/PID/io).
fn written_bytes(pid: u32) -> Result<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .context("write_bytes in /proc/PID/io")
}

/// Bytes written to disk per ban while 100 new bans a second arrive
/// (five failures each in the Asterisk log) for `seconds`.
pub fn disk_per_ban(seconds: u32) -> Result<Value> {
    let lab = VethLab::new("10.211.4");
    let paths = DaemonPaths::new("dsk");
    let (daemon, maps, log, _) = run_daemon(&lab, &paths, 0)?;
    let pid = daemon.child.id();
    std::thread::sleep(Duration::from_millis(500));
    let before = written_bytes(pid)?;
    let start = Instant::now();
    let total = 100 * seconds;
    for i in 0..total {
        let ip = Ipv4Addr::from(0x0a58_0000u32 + i + 1).to_string();
        append(
            &log,
            &(0..5).map(|n| wrong_password(&ip, n)).collect::<Vec<_>>(),
        );
        // 100 a second, on schedule.
        let due = Duration::from_millis(10 * u64::from(i + 1));
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    wait_bans(&maps, total, |i| Ipv4Addr::from(0x0a58_0000u32 + i + 1))?;
    // The last batches and the WAL checkpoint they trigger.
    std::thread::sleep(Duration::from_millis(1500));
    let written = written_bytes(pid)? - before;
    Ok(json!({
        "seconds": seconds,
        "bans": total,
        "bytes_written": written,
        "bytes_per_ban": written as f64 / f64::from(total),
    }))
}

/// `sipshield run` guarding the lab's veth and following an (empty)
/// Asterisk log, once its maps are pinned and it has put the `held` bans of
/// its state file into the kernel; the daemon, its maps, the log.
fn run_daemon(
    lab: &VethLab,
    paths: &DaemonPaths,
    held: u32,
) -> Result<(Daemon, sipshield::bpf::ShieldMaps, PathBuf, Instant)> {
    let log = paths.log("messages");
    append(&log, &[]);
    let log_arg = log.to_str().context("utf-8 path")?.to_string();
    // Log bans may use all but 1/16 of xdp.max_bans (the operators'
    // share): a table of twice the bans held leaves them room.
    let config = paths.log("sipshield.toml");
    std::fs::write(
        &config,
        format!("[xdp]\nmax_bans = {}\n", (u64::from(held) * 2).max(1 << 20)),
    )?;
    let config_arg = config.to_str().context("utf-8 path")?.to_string();
    let daemon = Daemon::start(
        &lab.guarded,
        paths,
        &[
            "--config",
            &config_arg,
            "--iface",
            GUARD_DEV,
            "--asterisk-log",
            &log_arg,
            "--detach-on-exit",
        ],
    );
    let maps = wait_maps(paths)?;
    let ready = wait_bans(&maps, held, held_addr)?;
    Ok((daemon, maps, log, ready))
}

fn wait_maps(paths: &DaemonPaths) -> Result<sipshield::bpf::ShieldMaps> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(m) = pins::open_maps(&paths.pin_root) {
            return Ok(m);
        }
        if Instant::now() > deadline {
            bail!("daemon did not pin its maps");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A REGISTER flood from one source against the program alone (no daemon
/// running) with the default stages: at which packet and how long after
/// the first the kernel's rate guard banned it (over the flood bucket;
/// the packets before it past the police burst are policed).
pub fn rate_guard_ban() -> Result<Value> {
    let lab = VethLab::new("10.211.2");
    let config = XdpConfig::default();
    let (_prog, maps) = lab.attach_sipshield(config);
    let src = lab.add_sender(77);
    let tx = lab.sender(&src);
    let to = format!("{}:5060", lab.guarded_addr());
    let sent = 2_000u32;
    for n in 0..sent {
        let msg = format!(
            "REGISTER sip:{0} SIP/2.0\r\nVia: SIP/2.0/UDP {src}:5060;branch=z9hG4bK{n}\r\nFrom: <sip:100@{0}>;tag={n}\r\nTo: <sip:100@{0}>\r\nCall-ID: {n}@{src}\r\nCSeq: {n} REGISTER\r\nUser-Agent: Z 5.5.2\r\nContent-Length: 0\r\n\r\n",
            lab.guarded_addr()
        );
        tx.send_to(msg.as_bytes(), &to)?;
    }
    std::thread::sleep(Duration::from_millis(50));
    let ip: IpAddr = src.parse()?;
    let ban = maps.ban_of(ip)?.context("flood source not banned")?;
    let stats = maps.sources.get(ip)?.context("flood source not counted")?;
    let per_second = |l: RateLimit| 1_000_000_000 / l.interval_ns.max(1);
    let burst = |l: RateLimit| l.window_ns / l.interval_ns.max(1);
    let counters = maps.stats.snapshot()?;
    Ok(json!({
        "sent": sent,
        "register_burst": burst(config.register_limit),
        "register_per_second": per_second(config.register_limit),
        "register_flood_burst": burst(config.register_flood),
        "register_flood_per_second": per_second(config.register_flood),
        "policed": counters.verdict(Action::Drop, Reason::Policed),
        "banned_at_packet": stats.total_messages(),
        "first_packet_to_ban_us": ban.created_ns.saturating_sub(stats.first_seen_ns) as f64 / 1e3,
        "userspace_involved": false,
    }))
}

/// Writes a state database of `n` active bans for the daemon of `paths`; its
/// size in MB.
/// The i-th of the bans a state database of `write_state` holds.
fn held_addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x2000_0000u32 + i)
}

fn write_state(paths: &DaemonPaths, n: u32) -> Result<f64> {
    let now = sipshield::state::unix_secs(std::time::SystemTime::now());
    let bans = (0..n)
        .map(|i| BanRecord {
            target: BanTarget::addr(IpAddr::V4(held_addr(i))),
            created: now,
            expires: Some(now + 86_400),
            class: OffenceClass::SipAuth,
            origin: BanOrigin::Log,
            offence_number: 1,
            reason: "5 sip-auth offences within 10m".into(),
        })
        .collect();
    let state = State {
        version: STATE_VERSION,
        saved_at: now,
        bans,
        history: Vec::new(),
        allow: Vec::new(),
        ssh_sessions: Vec::new(),
        windows: Vec::new(),
        known_good: Vec::new(),
    };
    // The daemon's own database, as a daemon that made these bans left it.
    sipshield::state::StateFile::prepare_dir(&paths.state_dir())?;
    let (db, _) = sipshield::state::db::StateDb::open(&paths.state_dir());
    db?.replace_all(&state)?;
    let db_file = paths.state_dir().join(sipshield::state::db::DB_FILE_NAME);
    Ok(std::fs::metadata(db_file)?.len() as f64 / 1e6)
}

/// Waits (up to 120 s) until the kernel holds at least `n` bans.
/// Waits until the kernel holds the `n` bans whose i-th address is
/// `addr_of(i)`; returns when they were there. A spread sample of 64 is
/// polled (walking a million entries would take longer than the restore),
/// then every entry is counted once, untimed.
fn wait_bans(
    maps: &sipshield::bpf::ShieldMaps,
    n: u32,
    addr_of: impl Fn(u32) -> Ipv4Addr,
) -> Result<Instant> {
    let t0 = Instant::now();
    if n == 0 {
        return Ok(t0);
    }
    let sample: Vec<IpAddr> = (0..64u64)
        .map(|k| IpAddr::V4(addr_of(((u64::from(n) - 1) * k / 63) as u32)))
        .collect();
    let ready = loop {
        if sample
            .iter()
            .all(|ip| maps.ban_of(*ip).ok().flatten().is_some())
        {
            break Instant::now();
        }
        if t0.elapsed() > Duration::from_secs(120) {
            bail!("the kernel lacks bans 120 s after the start");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    loop {
        let (v4, v6) = maps.bans.len();
        if v4 + v6 >= n as usize {
            return Ok(ready);
        }
        if t0.elapsed() > Duration::from_secs(120) {
            bail!("only {} of {n} bans in the kernel after 120 s", v4 + v6);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes a state database of `n` active bans, starts the daemon on it, and
/// times until the kernel holds all of them; the daemon's memory then.
pub fn restore(n: u32) -> Result<Value> {
    let lab = VethLab::new("10.211.3");
    let paths = DaemonPaths::new("rst");
    let file_mb = write_state(&paths, n)?;
    let t0 = Instant::now();
    let (daemon, _maps, _log, ready) = run_daemon(&lab, &paths, n)?;
    let restore_s = ready.duration_since(t0).as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    let status_up_ms = status_ms(&lab, &paths);
    let scrape = scrape_ms(&lab);
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id()))?;
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    let (rss, peak) = (field("VmRSS:"), field("VmHWM:"));
    if std::env::var_os("SIPSHIELD_BENCH_SHOW_LOG").is_some() {
        eprintln!("{}", crate::daemon::daemon_log(&paths));
    }
    // Daemon down (killed: its pins stay), status walks the maps itself.
    daemon.crash();
    let status_down_ms = status_ms(&lab, &paths);
    Ok(json!({
        "bans": n,
        "state_file_mb": file_mb,
        "restore_s": restore_s,
        "rss_mb": rss,
        "peak_rss_mb": peak,
        "status_ms": status_up_ms,
        "scrape_ms": scrape,
        "status_daemon_down_ms": status_down_ms,
    }))
}

/// Everything above.
pub fn run(quick: bool) -> Result<Value> {
    let trials = if quick { 20 } else { 100 };
    let mut log = Vec::new();
    let big = if quick { 100_000 } else { 1_000_000 };
    for (held, with_top) in [(0, false), (100_000, false), (big, true)] {
        eprintln!(
            "bench:   ban latency, log path, {trials} trials, {held} bans held{}",
            if with_top {
                ", sipshield top running"
            } else {
                ""
            }
        );
        let l = log_ban_latency(trials, held, with_top)?;
        eprintln!(
            "bench:     p50 {:.1} ms, p99 {:.1} ms",
            l["p50_ms"].as_f64().unwrap_or(0.0),
            l["p99_ms"].as_f64().unwrap_or(0.0)
        );
        log.push(l);
    }
    let rate = rate_guard_ban()?;
    eprintln!(
        "bench:   rate guard: banned at packet {} (flood burst {}, {} policed before), {:.0} us after the first",
        rate["banned_at_packet"],
        rate["register_flood_burst"],
        rate["policed"],
        rate["first_packet_to_ban_us"].as_f64().unwrap_or(0.0)
    );
    let sizes: &[u32] = if quick {
        &[0, 10_000, 100_000]
    } else {
        &[0, 100_000, 1_000_000]
    };
    let mut scale = Vec::new();
    for &n in sizes {
        let r = restore(n)?;
        eprintln!(
            "bench:   restore {n} bans: {:.2} s, daemon RSS {:.0} MB (peak {:.0} MB), metrics scrape {:.1} ms",
            r["restore_s"].as_f64().unwrap_or(0.0),
            r["rss_mb"].as_f64().unwrap_or(0.0),
            r["peak_rss_mb"].as_f64().unwrap_or(0.0),
            r["scrape_ms"].as_f64().unwrap_or(f64::NAN)
        );
        scale.push(r);
    }
    let secs = if quick { 10 } else { 60 };
    eprintln!("bench:   disk writes, 100 bans a second for {secs} s");
    let disk = disk_per_ban(secs)?;
    eprintln!(
        "bench:     {:.0} bytes per ban",
        disk["bytes_per_ban"].as_f64().unwrap_or(0.0)
    );
    eprintln!("bench:   CrowdSec start-up pull of 100k decisions (canned answer)");
    let crowdsec = crowdsec_pull(100_000)?;
    eprintln!(
        "bench:     {:.2} s from the answer to all in the kernel (daemon: {:.0} ms)",
        crowdsec["answer_to_kernel_s"].as_f64().unwrap_or(0.0),
        crowdsec["daemon_apply_ms"].as_f64().unwrap_or(0.0)
    );
    Ok(
        json!({ "log_ban": log, "rate_guard_ban": rate, "restore": scale, "disk": disk, "crowdsec_pull": crowdsec }),
    )
}

/// The address of canned CrowdSec decision `i` (100.64.0.0/10).
fn canned_addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + i)
}

/// A LAPI start-up answer of `n` Ip ban decisions, as CrowdSec writes it.
fn canned_stream(n: u32) -> String {
    let mut body = String::with_capacity(n as usize * 160);
    body.push_str("{\"deleted\":null,\"new\":[");
    for i in 0..n {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "{{\"duration\":\"3h59m58.123456789s\",\"id\":{},\"origin\":\"CAPI\",\"scenario\":\"crowdsecurity/ssh-bf\",\"scope\":\"Ip\",\"type\":\"ban\",\"value\":\"{}\"}}",
            i + 1,
            canned_addr(i)
        ));
    }
    body.push_str("]}");
    body
}

/// Serves `body` to the first `startup=true` pull, empty deltas after;
/// returns the port and when the answer was written.
fn canned_lapi(
    lab: &VethLab,
    body: String,
) -> Result<(u16, std::sync::Arc<std::sync::Mutex<Option<Instant>>>)> {
    use std::io::{Read, Write};
    let listener = lab
        .guarded
        .enter(|| std::net::TcpListener::bind("127.0.0.1:0"))?;
    let port = listener.local_addr()?.port();
    let sent = std::sync::Arc::new(std::sync::Mutex::new(None));
    let mark = sent.clone();
    std::thread::spawn(move || {
        let mut served = false;
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                match conn.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let startup = String::from_utf8_lossy(&head).contains("startup=true");
            let answer = if startup && !served {
                served = true;
                body.as_str()
            } else {
                "{\"deleted\":null,\"new\":null}"
            };
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                answer.len()
            );
            let _ = conn.write_all(answer.as_bytes());
            let _ = conn.flush();
            if answer.len() > 100 {
                if let Ok(mut m) = mark.lock() {
                    *m = Some(Instant::now());
                }
            }
        }
    });
    Ok((port, sent))
}

/// A CrowdSec start-up pull of `n` decisions against a canned answer (so
/// LAPI's own speed is not in the figure): from the answer written to all
/// `n` in the kernel, and the daemon's own figure from the answer read.
pub fn crowdsec_pull(n: u32) -> Result<Value> {
    let lab = VethLab::new("10.211.4");
    let paths = DaemonPaths::new("csp");
    let (port, sent) = canned_lapi(&lab, canned_stream(n))?;
    let config = paths.log("sipshield.toml");
    std::fs::write(
        &config,
        format!(
            "[metrics]\nlisten = \"\"\n[crowdsec]\napi_url = \"http://127.0.0.1:{port}/\"\napi_key = \"bench\"\nupdate_frequency = \"1s\"\n"
        ),
    )?;
    let log = paths.log("messages");
    append(&log, &[]);
    let daemon = Daemon::start(
        &lab.guarded,
        &paths,
        &[
            "--config",
            config.to_str().context("utf-8 path")?,
            "--iface",
            GUARD_DEV,
            "--asterisk-log",
            log.to_str().context("utf-8 path")?,
            "--detach-on-exit",
        ],
    );
    let maps = wait_maps(&paths)?;
    let ready = wait_bans(&maps, n, canned_addr)?;
    let sent_at = sent
        .lock()
        .ok()
        .and_then(|m| *m)
        .context("the canned answer was never asked for")?;
    let in_kernel_s = ready.saturating_duration_since(sent_at).as_secs_f64();
    let st = crate::daemon::status(&lab.guarded, &paths);
    let apply_ms = st["crowdsec"]["last_apply_ms"].as_f64();
    drop(daemon);
    Ok(json!({
        "decisions": n,
        "answer_to_kernel_s": in_kernel_s,
        "daemon_apply_ms": apply_ms,
        "body_mb": (n as f64 * 160.0) / 1e6,
    }))
}
