//! `cargo xtask bench [--quick]`: measurements, side by side with what
//! operators would use instead, every figure a ratio within one run.
//!
//! Covered, each against its peer in the same run: the XDP program's
//! per-packet cost (BPF_PROG_TEST_RUN) against a pass-only and a one-lookup
//! drop baseline at several ban counts, with the time to load the bans; the
//! drop rate of a banned source against nftables on the NIC-like and skb
//! paths; iperf3 throughput with and without sipshield; ban latency (log
//! path, kernel rate guard); restoring 100k/1M bans and the daemon's memory;
//! log parsing of `sipshield parse` against `fail2ban-regex`. Measurements
//! that need the kernel run in `sipshield-bench` (tests/src/bench/).

use std::{
    fmt::Write as _,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context, Result};

use crate::{deps, lab, plot, shell};

const F2B_FILTER: &str = "/etc/fail2ban/filter.d/asterisk.conf";

pub fn run(quick: bool) -> Result<()> {
    deps::ensure()?;
    deps::ensure_packages(&["fail2ban", "nftables", "ethtool", "iperf3", "gnuplot-nox"])?;
    if !shell::is_root() {
        bail!("the benchmarks load BPF programs: run as root");
    }
    lab::mount_bpffs()?;
    let root = shell::workspace_root();
    let release = shell::build_with_sipshield("sipshield-bench", true)?;
    let out_dir = root.join("target/bench");
    std::fs::create_dir_all(&out_dir)?;

    eprintln!(
        "bench: [1/5] XDP per-packet cost (BPF_PROG_TEST_RUN){}",
        if quick { ", quick" } else { "" }
    );
    let mut cmd = Command::new(release.join("sipshield-bench"));
    cmd.arg("xdp");
    if quick {
        cmd.arg("--quick");
    }
    let xdp: serde_json::Value = serde_json::from_slice(&checked_output(&mut cmd)?)?;

    eprintln!(
        "bench: [2/5] drop rate of a banned source: sipshield vs nftables, NIC-like and skb paths"
    );
    let droprate = with_drop_ratios(sub(&release, "droprate", quick)?);

    eprintln!("bench: [2b/5] REGISTER floods: sipshield vs an nftables per-source meter");
    let flood = sub(&release, "flood", quick)?;

    eprintln!("bench: [3/5] legitimate throughput: iperf3 with and without sipshield");
    let iperf = sub(&release, "iperf", quick)?;
    eprintln!("bench: [4/5] ban latency, restoring bans from the state database, daemon memory");
    let daemon = sub(&release, "daemon", quick)?;

    eprintln!("bench: [5/5] log parsing: sipshield parse vs fail2ban-regex");
    let lines = if quick { 50_000 } else { 400_000 };
    let log = out_dir.join("asterisk-bench.log");
    let made: serde_json::Value = serde_json::from_slice(&checked_output(
        Command::new(release.join("sipshield-bench"))
            .arg("make-log")
            .arg(&log)
            .arg(lines.to_string()),
    )?)?;
    // Each tool three times, the median kept (the same for both).
    let (ours, ours_s) = median_run(|| {
        checked_output(
            Command::new(release.join("sipshield"))
                .arg("parse")
                .arg("--json")
                .arg(&log),
        )
    })?;
    let ours_found = ours
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count() as u64;
    let (f2b, f2b_s) =
        median_run(|| checked_output(Command::new("fail2ban-regex").arg(&log).arg(F2B_FILTER)))?;
    let f2b_found = fail2ban_matched(&String::from_utf8_lossy(&f2b))
        .context("reading fail2ban-regex's summary")?;
    let parse = serde_json::json!({
        "lines": lines,
        "expected_failures": made["failures"],
        "sipshield": {"seconds": ours_s, "failures": ours_found, "lines_per_s": lines as f64 / ours_s},
        "fail2ban_regex": {"seconds": f2b_s, "failures": f2b_found, "lines_per_s": lines as f64 / f2b_s},
        "speedup": f2b_s / ours_s,
        "same_failures": ours_found == f2b_found,
    });

    let mut report = serde_json::json!({
        "quick": quick,
        "machine": machine(),
        "xdp": xdp,
        "droprate": droprate,
        "flood": flood,
        "iperf": iperf,
        "daemon": daemon,
        "parse": parse,
    });
    report["targets"] = targets(&report);
    std::fs::write(
        out_dir.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let mut md = markdown(&report);
    match plot::draw(&report, &out_dir) {
        Ok(pngs) => {
            md.push_str("\n## Plots\n\n");
            for p in pngs {
                md.push_str(&format!("![{p}]({p})\n\n"));
            }
        }
        Err(e) => eprintln!("bench: no plots: {e:#}"),
    }
    std::fs::write(out_dir.join("report.md"), &md)?;
    println!("{md}");
    eprintln!("bench: wrote target/bench/report.json and target/bench/report.md");
    Ok(())
}

/// One target: `value` against `limit`; `None` when it was not measured
/// (then not met).
fn target(name: &str, value: Option<f64>, limit: f64, higher: bool) -> serde_json::Value {
    let met = value.is_some_and(|v| if higher { v >= limit } else { v <= limit });
    serde_json::json!({
        "name": name,
        "value": value,
        "limit": limit,
        "better": if higher { "higher" } else { "lower" },
        "met": met,
    })
}

/// A figure of the 1M-ban restore (not measured in a quick run).
fn restore_1m(r: &serde_json::Value, key: &str) -> Option<f64> {
    r["daemon"]["restore"]
        .as_array()?
        .iter()
        .find(|x| x["bans"] == 1_000_000)
        .and_then(|x| x[key].as_f64())
}

/// Every target of the report, each from figures measured in this run.
fn targets(r: &serde_json::Value) -> serde_json::Value {
    let rows = r["xdp"]["rows"].as_array().cloned().unwrap_or_default();
    // Worst (highest) mean ratio of a class over every ban count.
    let worst = |classes: &[&str]| -> Option<f64> {
        rows.iter()
            .flat_map(|row| row["classes"].as_array().cloned().unwrap_or_default())
            .filter(|c| classes.contains(&c["class"].as_str().unwrap_or("")))
            .filter_map(|c| c["mean_ratio_to_lookup"].as_f64())
            .reduce(f64::max)
    };
    let ratios = r["droprate"]["ratios"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let nic_min = |key: &str| -> Option<f64> {
        ratios
            .iter()
            .filter(|x| x["path"] == "nic-like")
            .filter_map(|x| x[key].as_f64())
            .reduce(f64::min)
    };
    let iperf_worst = |key: &str| -> Option<f64> {
        r["iperf"]["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x[key].as_f64())
            .reduce(f64::min)
    };
    // sipshield over the nftables meter, in one flood kind.
    let flood = |kind: &str, key: &str| -> Option<f64> {
        let rows = r["flood"]["rows"].as_array()?;
        let of = |who: &str| {
            rows.iter()
                .find(|x| x["flood"] == kind && x["receiver"] == who)
                .and_then(|x| x[key].as_f64())
        };
        let (ours, theirs) = (of("sipshield")?, of("nft-meter")?);
        (theirs > 0.0).then(|| ours / theirs)
    };
    let log_p99 = r["daemon"]["log_ban"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["p99_ms"].as_f64())
        .reduce(f64::max);
    serde_json::Value::Array(vec![
        target(
            "nic_like_vs_one_lookup",
            nic_min("over_one_lookup"),
            0.95,
            true,
        ),
        target(
            "nic_like_vs_nft_netdev",
            nic_min("over_nft_netdev"),
            2.0,
            true,
        ),
        target(
            "drop_exact_vs_one_lookup",
            worst(&["blocked v4", "blocked v6"]),
            1.25,
            false,
        ),
        target(
            "drop_range_vs_one_lookup",
            worst(&["range-blocked"]),
            1.5,
            false,
        ),
        target(
            "sip_known_vs_one_lookup",
            worst(&["SIP REGISTER known-good"]),
            4.0,
            false,
        ),
        target(
            "sip_unknown_vs_one_lookup",
            worst(&["SIP REGISTER counted"]),
            10.0,
            false,
        ),
        target(
            "flood_single_vs_nft_meter",
            flood("single-source", "mpps_dropped"),
            1.5,
            true,
        ),
        target(
            "flood_random_cpu_vs_nft_meter",
            flood("random-sources", "cpu_ms_per_mpkt"),
            1.0,
            false,
        ),
        target(
            "iperf_vs_empty_xdp",
            iperf_worst("ratio_to_xdp_pass"),
            0.9,
            true,
        ),
        target("log_ban_p99_ms", log_p99, 100.0, false),
        target("restore_1m_s", restore_1m(r, "restore_s"), 2.5, false),
        target("rss_1m_mb", restore_1m(r, "rss_mb"), 150.0, false),
        target("status_1m_ms", restore_1m(r, "status_ms"), 50.0, false),
        // A scrape is O(1) in the bans: one that walked 1M entries could
        // not answer within 5 ms (0.3 ms with none held, 0.5 ms at 1M).
        target("scrape_1m_ms", restore_1m(r, "scrape_ms"), 5.0, false),
        target(
            "ban_latency_p99_top_1m_ms",
            r["daemon"]["log_ban"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|x| x["with_top"] == true && x["bans_held"] == 1_000_000)
                .and_then(|x| x["p99_ms"].as_f64()),
            100.0,
            false,
        ),
        target(
            "crowdsec_100k_to_kernel_s",
            r["daemon"]["crowdsec_pull"]["answer_to_kernel_s"].as_f64(),
            5.0,
            false,
        ),
        target(
            "disk_bytes_per_ban",
            r["daemon"]["disk"]["bytes_per_ban"].as_f64(),
            4096.0,
            false,
        ),
        target(
            "parse_speedup_vs_fail2ban",
            r["parse"]["speedup"].as_f64(),
            50.0,
            true,
        ),
    ])
}

fn targets_markdown(s: &mut String, r: &serde_json::Value) {
    let _ = writeln!(s, "\n## Targets\n");
    let _ = writeln!(s, "| target | value | limit | |");
    let _ = writeln!(s, "|---|---:|---:|---|");
    for t in r["targets"].as_array().cloned().unwrap_or_default() {
        let value = t["value"]
            .as_f64()
            .map_or("not measured".to_string(), |v| format!("{v:.2}"));
        let limit = format!(
            "{} {}",
            if t["better"] == "higher" { ">=" } else { "<=" },
            t["limit"]
        );
        let met = if t["met"] == true { "met" } else { "MISSED" };
        let _ = writeln!(
            s,
            "| {} | {value} | {limit} | {met} |",
            t["name"].as_str().unwrap_or("?")
        );
    }
}

/// Runs `f` three times; the output and wall time of the median run.
fn median_run(mut f: impl FnMut() -> Result<Vec<u8>>) -> Result<(Vec<u8>, f64)> {
    let mut runs = Vec::with_capacity(3);
    for _ in 0..3 {
        let t = Instant::now();
        let out = f()?;
        runs.push((t.elapsed().as_secs_f64(), out));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (secs, out) = runs.swap_remove(1);
    Ok((out, secs))
}

/// Runs `sipshield-bench <what> [--quick]`; its JSON.
fn sub(release: &std::path::Path, what: &str, quick: bool) -> Result<serde_json::Value> {
    let mut cmd = Command::new(release.join("sipshield-bench"));
    cmd.arg(what);
    if quick {
        cmd.arg("--quick");
    }
    Ok(serde_json::from_slice(&checked_output(&mut cmd)?)?)
}

/// Adds, per path and ban count, sipshield's drop rate over each nftables
/// method's.
fn with_drop_ratios(mut d: serde_json::Value) -> serde_json::Value {
    let points = d["points"].as_array().cloned().unwrap_or_default();
    let mpps = |path: &str, method: &str, bans: u64| {
        points
            .iter()
            .find(|p| p["path"] == path && p["method"] == method && p["bans"] == bans)
            .and_then(|p| p["mpps"].as_f64())
    };
    let mut ratios = Vec::new();
    for p in points.iter().filter(|p| p["method"] == "sipshield") {
        let (path, bans) = (
            p["path"].as_str().unwrap_or(""),
            p["bans"].as_u64().unwrap_or(0),
        );
        let ours = p["mpps"].as_f64().unwrap_or(0.0);
        let ratio = |m| mpps(path, m, bans).filter(|v| *v > 0.0).map(|v| ours / v);
        ratios.push(serde_json::json!({
            "path": path,
            "bans": bans,
            "over_one_lookup": ratio("one-lookup-xdp"),
            "over_nft_netdev": ratio("nft-netdev-ingress"),
            "over_nft_raw": ratio("nft-inet-raw-prerouting"),
        }));
    }
    d["ratios"] = serde_json::Value::Array(ratios);
    d
}

fn checked_output(cmd: &mut Command) -> Result<Vec<u8>> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| shell::describe(cmd))?;
    if !out.status.success() {
        bail!("{} failed ({})", shell::describe(cmd), out.status);
    }
    Ok(out.stdout)
}

/// "Lines: 400000 lines, 0 ignored, 64000 matched, 336000 missed" → 64000.
fn fail2ban_matched(summary: &str) -> Option<u64> {
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("Lines:"))?;
    line.split(',')
        .find(|p| p.contains("matched"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn machine() -> serde_json::Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let kernel = String::from_utf8_lossy(
        &Command::new("uname")
            .arg("-r")
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default(),
    )
    .trim()
    .to_string();
    serde_json::json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "kernel": kernel,
    })
}

fn markdown(r: &serde_json::Value) -> String {
    let mut s = String::new();
    let m = &r["machine"];
    let _ = writeln!(s, "# sipshield benchmark report\n");
    let _ = writeln!(
        s,
        "Machine: {} ({} cores), kernel {}. {} run. Ratios compare figures of this one run.\n",
        m["cpu"].as_str().unwrap_or("?"),
        m["cores"],
        m["kernel"].as_str().unwrap_or("?"),
        if r["quick"].as_bool() == Some(true) {
            "Quick"
        } else {
            "Full"
        }
    );
    targets_markdown(&mut s, r);
    let x = &r["xdp"];
    let _ = writeln!(
        s,
        "## XDP per-packet cost (BPF_PROG_TEST_RUN, {} repeats)\n",
        x["repeat"]
    );
    let _ = writeln!(s, "Ratio: sipshield ns/packet (median) over the one-lookup drop baseline holding the same bans; the targets use the means.\n");
    let _ = writeln!(s, "| bans | class | verdict | ns/packet | x one-lookup |");
    let _ = writeln!(s, "|---:|---|---|---:|---:|");
    for row in x["rows"].as_array().cloned().unwrap_or_default() {
        let bans = row["bans"].as_u64().unwrap_or(0);
        let _ = writeln!(
            s,
            "| {bans} | *baseline: pass only* | pass | {:.1} | |",
            row["baseline_pass_ns"].as_f64().unwrap_or(0.0)
        );
        let _ = writeln!(
            s,
            "| {bans} | *baseline: one lookup, v4 / v6* | drop | {:.1} / {:.1} | 1.00 |",
            row["baseline_lookup_v4_ns"].as_f64().unwrap_or(0.0),
            row["baseline_lookup_v6_ns"].as_f64().unwrap_or(0.0)
        );
        for c in row["classes"].as_array().cloned().unwrap_or_default() {
            let _ = writeln!(
                s,
                "| {bans} | {} | {} | {:.1} | {:.2} |",
                c["class"].as_str().unwrap_or("?"),
                c["verdict"].as_str().unwrap_or("?"),
                c["ns"].as_f64().unwrap_or(0.0),
                c["ratio_to_lookup"].as_f64().unwrap_or(0.0)
            );
        }
    }
    let _ = writeln!(
        s,
        "\nTime to load the bans into the kernel (one syscall per ban):\n"
    );
    let _ = writeln!(s, "| bans | load time (ms) |");
    let _ = writeln!(s, "|---:|---:|");
    let mut prev = 0u64;
    for row in x["rows"].as_array().cloned().unwrap_or_default() {
        let bans = row["bans"].as_u64().unwrap_or(0);
        let _ = writeln!(
            s,
            "| {prev}..{bans} | {:.0} |",
            row["bans_load_ms"].as_f64().unwrap_or(0.0)
        );
        prev = bans;
    }
    droprate_markdown(&mut s, &r["droprate"]);
    flood_markdown(&mut s, &r["flood"]);
    iperf_markdown(&mut s, &r["iperf"]);
    daemon_markdown(&mut s, &r["daemon"]);
    let p = &r["parse"];
    let _ = writeln!(s, "\n## Log parsing\n");
    let _ = writeln!(
        s,
        "{} lines of a realistic Asterisk log ({} failures among the noise).\n",
        p["lines"], p["expected_failures"]
    );
    let _ = writeln!(s, "| tool | failures found | seconds | lines/s |");
    let _ = writeln!(s, "|---|---:|---:|---:|");
    for (name, key) in [
        ("sipshield parse --json", "sipshield"),
        ("fail2ban-regex (stock asterisk filter)", "fail2ban_regex"),
    ] {
        let t = &p[key];
        let _ = writeln!(
            s,
            "| {name} | {} | {:.2} | {:.0} |",
            t["failures"],
            t["seconds"].as_f64().unwrap_or(0.0),
            t["lines_per_s"].as_f64().unwrap_or(0.0)
        );
    }
    let speedup = p["speedup"].as_f64().unwrap_or(0.0);
    let _ = writeln!(
        s,
        "\nsipshield/fail2ban-regex speed: {speedup:.0}x, target at least 50x: {}; same failure count: {}.",
        if speedup >= 50.0 { "met" } else { "MISSED" },
        p["same_failures"]
    );
    s
}

fn flood_markdown(s: &mut String, d: &serde_json::Value) {
    let _ = writeln!(
        s,
        "\n## REGISTER floods: sipshield vs an nftables per-source meter\n"
    );
    let _ = writeln!(s, "| flood | receiver | Mpps dropped | CPU ms per Mpkt |");
    let _ = writeln!(s, "|---|---|---:|---:|");
    for r in d["rows"].as_array().cloned().unwrap_or_default() {
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} | {:.0} |",
            r["flood"].as_str().unwrap_or("?"),
            r["receiver"].as_str().unwrap_or("?"),
            r["mpps_dropped"].as_f64().unwrap_or(0.0),
            r["cpu_ms_per_mpkt"].as_f64().unwrap_or(0.0)
        );
    }
}

fn iperf_markdown(s: &mut String, d: &serde_json::Value) {
    let _ = writeln!(
        s,
        "\n## Legitimate traffic through the guarded interface (iperf3)\n"
    );
    let _ = writeln!(
        s,
        "Non-SIP traffic (port 5201) across the veth, three ways in one run: no XDP program, the empty XDP_PASS baseline, sipshield.\n\
         On veth, attaching any XDP program stops the peer from sending 64 KB GSO super-packets, which is what the first column\n\
         enjoys; a physical NIC delivers MTU-sized frames either way and runs GRO after XDP. sipshield's own cost is the last ratio.\n"
    );
    let _ = writeln!(s, "| proto | no XDP Gbit/s | empty XDP Gbit/s | sipshield Gbit/s | sipshield / no XDP | sipshield / empty XDP |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
    let mut worst = f64::INFINITY;
    let mut worst_own = f64::INFINITY;
    for r in d["rows"].as_array().cloned().unwrap_or_default() {
        let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
        worst = worst.min(f("ratio"));
        worst_own = worst_own.min(f("ratio_to_xdp_pass"));
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} | {:.2} | {:.0}% | {:.0}% |",
            r["proto"].as_str().unwrap_or("?"),
            f("without_gbps"),
            f("xdp_pass_gbps"),
            f("with_gbps"),
            f("ratio") * 100.0,
            f("ratio_to_xdp_pass") * 100.0
        );
    }
    if worst.is_finite() {
        let _ = writeln!(
            s,
            "\nTarget: with sipshield at least 90% of without. Against no XDP program: {:.0}%, {}; against an empty XDP program: {:.0}%, {}.",
            worst * 100.0,
            if worst >= 0.9 { "met" } else { "MISSED (the veth GSO effect above)" },
            worst_own * 100.0,
            if worst_own >= 0.9 { "met" } else { "MISSED" }
        );
    }
}

fn daemon_markdown(s: &mut String, d: &serde_json::Value) {
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    let rows = d["log_ban"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(s, "\n## Ban latency\n");
    let _ = writeln!(
        s,
        "Log path: the 5th failure line of a fresh source appended to the Asterisk log, until the source is in the kernel's ban map\n\
         (its next packet is dropped); daemon defaults (5 failures, logs polled every 50 ms); with no other bans, and with 100k bans\n\
         held (restored from the state database at start), which the daemon must keep saving and pruning meanwhile.\n"
    );
    let _ = writeln!(
        s,
        "| bans held | `top` running | trials | p50 | p99 | min | max |"
    );
    let _ = writeln!(s, "|---:|---|---:|---:|---:|---:|---:|");
    let mut worst = 0.0f64;
    for l in &rows {
        worst = worst.max(f(&l["p99_ms"]));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            l["bans_held"],
            if l["with_top"] == true { "yes" } else { "no" },
            l["trials"],
            f(&l["p50_ms"]),
            f(&l["p99_ms"]),
            f(&l["min_ms"]),
            f(&l["max_ms"])
        );
    }
    let _ = writeln!(
        s,
        "\nTarget p99 at most 100 ms: {}.",
        if !rows.is_empty() && worst <= 100.0 {
            "met"
        } else {
            "MISSED"
        }
    );
    let r = &d["rate_guard_ban"];
    let at = r["banned_at_packet"].as_u64().unwrap_or(0);
    let flood_burst = r["register_flood_burst"].as_u64().unwrap_or(0);
    let after_us = r["first_packet_to_ban_us"].as_f64().unwrap_or(f64::MAX);
    let _ = writeln!(
        s,
        "\nKernel rate guard, program alone (no daemon running), default stages: a REGISTER flood of {} packets from one source; \
         past the police burst ({} at {}/s) {} were policed, and it was banned at packet {at}, {:.0} us after its first packet \
         (flood bucket: burst {flood_burst} at {}/s). Target, banned within one second of its first packet, in the flood burst, \
         no userspace round trip: {}.",
        r["sent"],
        r["register_burst"],
        r["register_per_second"],
        r["policed"],
        f(&r["first_packet_to_ban_us"]),
        r["register_flood_per_second"],
        if at > 0 && at <= flood_burst + 2 && after_us < 1e6 {
            "met"
        } else {
            "MISSED"
        }
    );
    let _ = writeln!(s, "\n## Scale: restoring bans at start, daemon memory\n");
    let _ = writeln!(
        s,
        "A state database of N active bans; time from starting `sipshield run` (program load and verification included) until the kernel holds all N; the daemon's resident memory then and its peak.\n"
    );
    let _ = writeln!(
        s,
        "| bans | state.db MB | start to all bans in the kernel | RSS MB | peak RSS MB | `status --json` | daemon down |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|");
    for r in d["restore"].as_array().cloned().unwrap_or_default() {
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.2} s | {:.0} | {:.0} | {:.0} ms | {:.0} ms |",
            r["bans"],
            f(&r["state_file_mb"]),
            f(&r["restore_s"]),
            f(&r["rss_mb"]),
            f(&r["peak_rss_mb"]),
            f(&r["status_ms"]),
            f(&r["status_daemon_down_ms"])
        );
    }
    let disk = &d["disk"];
    let _ = writeln!(
        s,
        "
Disk: {} new bans ({} a second for {} s) made the daemon write {:.0} KB to storage (`write_bytes` of /proc/PID/io): {:.0} bytes per ban.",
        disk["bans"],
        disk["bans"].as_u64().unwrap_or(0) / disk["seconds"].as_u64().unwrap_or(1).max(1),
        disk["seconds"],
        f(&disk["bytes_written"]) / 1024.0,
        f(&disk["bytes_per_ban"])
    );
    let cs = &d["crowdsec_pull"];
    if cs.is_object() {
        let _ = writeln!(
            s,
            "\nCrowdSec: a start-up pull of {} Ip decisions (a canned LAPI answer of {:.0} MB, so LAPI's own speed is not in the figure) \
             was all in the kernel {:.2} s after the answer was written (the daemon's own figure, from the answer read: {:.0} ms; target 5 s).",
            cs["decisions"],
            f(&cs["body_mb"]),
            f(&cs["answer_to_kernel_s"]),
            f(&cs["daemon_apply_ms"])
        );
    }
}

fn droprate_markdown(s: &mut String, d: &serde_json::Value) {
    let _ = writeln!(s, "\n## Drop rate of a banned source\n");
    let _ = writeln!(
        s,
        "One banned source, the ban set holding N addresses (sipshield's ban map, or an nftables named set).\n\
         NIC-like: frames redirected into the veth by an XDP generator (BPF_PROG_TEST_RUN live frames), no skb, as from a NIC driver.\n\
         skb: frames sent through an AF_PACKET socket, as trafgen does; XDP on veth then first copies the skb.\n\
         Mpps = packets the receiver dropped per second of wall time; CPU = busy time of all cores per million packets (generator included).\n"
    );
    let _ = writeln!(
        s,
        "| path | bans | method | Mpps dropped | CPU ms per Mpkt |"
    );
    let _ = writeln!(s, "|---|---:|---|---:|---:|");
    for p in d["points"].as_array().cloned().unwrap_or_default() {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} | {:.0} |",
            p["path"].as_str().unwrap_or("?"),
            p["bans"],
            p["method"].as_str().unwrap_or("?"),
            p["mpps"].as_f64().unwrap_or(0.0),
            p["cpu_ms_per_mpkt"].as_f64().unwrap_or(0.0)
        );
    }
    let _ = writeln!(
        s,
        "\n| path | bans | sipshield / nft netdev ingress | sipshield / nft inet raw prerouting |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|");
    let mut worst_nic = f64::INFINITY;
    for r in d["ratios"].as_array().cloned().unwrap_or_default() {
        let netdev = r["over_nft_netdev"].as_f64().unwrap_or(0.0);
        if r["path"] == "nic-like" {
            worst_nic = worst_nic.min(netdev);
        }
        let _ = writeln!(
            s,
            "| {} | {} | {:.2}x | {:.2}x |",
            r["path"].as_str().unwrap_or("?"),
            r["bans"],
            netdev,
            r["over_nft_raw"].as_f64().unwrap_or(0.0)
        );
    }
    if worst_nic.is_finite() {
        let _ = writeln!(
            s,
            "\nWorst NIC-like ratio to nftables netdev ingress: {worst_nic:.2}x, target at least 2x: {}.",
            if worst_nic >= 2.0 { "met" } else { "MISSED" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fail2ban_regex_summary() {
        let out = "Results\n=======\n\nLines: 400000 lines, 0 ignored, 64000 matched, 336000 missed\n[processed in 12.00 sec]\n";
        assert_eq!(fail2ban_matched(out), Some(64000));
        assert_eq!(fail2ban_matched("nothing"), None);
    }
}
