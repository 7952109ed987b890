//! `cargo xtask bench [--quick]`: measurements, side by side with what
//! operators would use instead, every figure a ratio within one run.
//!
//! Covered: per-packet cost of the XDP program (BPF_PROG_TEST_RUN) against a
//! pass-only and a one-lookup drop baseline at several ban counts, with the
//! time to load the bans; log parsing of `sipshield parse` against
//! `fail2ban-regex` with fail2ban's stock asterisk filter on the same log.
//! Not yet covered (see docs/benchmarks.md): drop rate on the NIC-like and skb
//! paths against nftables, iperf3 overhead, ban latency, daemon memory.

use std::{
    fmt::Write as _,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context, Result};

use crate::{deps, lab, shell};

const F2B_FILTER: &str = "/etc/fail2ban/filter.d/asterisk.conf";

pub fn run(quick: bool) -> Result<()> {
    deps::ensure()?;
    deps::ensure_packages(&["fail2ban"])?;
    if !shell::is_root() {
        bail!("the benchmarks load BPF programs: run as root");
    }
    lab::mount_bpffs()?;
    let root = shell::workspace_root();
    shell::run(Command::new("cargo").current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "sipshield",
        "-p",
        "sipshield-tests",
        "--bin",
        "sipshield",
        "--bin",
        "sipshield-bench",
    ]))?;
    let release = root.join("target/release");
    let out_dir = root.join("target/bench");
    std::fs::create_dir_all(&out_dir)?;

    eprintln!(
        "bench: [1/2] XDP per-packet cost (BPF_PROG_TEST_RUN){}",
        if quick { ", quick" } else { "" }
    );
    let mut cmd = Command::new(release.join("sipshield-bench"));
    cmd.arg("xdp");
    if quick {
        cmd.arg("--quick");
    }
    let xdp: serde_json::Value = serde_json::from_slice(&checked_output(&mut cmd)?)?;

    eprintln!("bench: [2/2] log parsing: sipshield parse vs fail2ban-regex");
    let lines = if quick { 50_000 } else { 400_000 };
    let log = out_dir.join("asterisk-bench.log");
    let made: serde_json::Value = serde_json::from_slice(&checked_output(
        Command::new(release.join("sipshield-bench"))
            .arg("make-log")
            .arg(&log)
            .arg(lines.to_string()),
    )?)?;
    let t = Instant::now();
    let ours = checked_output(
        Command::new(release.join("sipshield"))
            .arg("parse")
            .arg("--json")
            .arg(&log),
    )?;
    let ours_s = t.elapsed().as_secs_f64();
    let ours_found = ours
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count() as u64;
    let t = Instant::now();
    let f2b = checked_output(Command::new("fail2ban-regex").arg(&log).arg(F2B_FILTER))?;
    let f2b_s = t.elapsed().as_secs_f64();
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

    let report = serde_json::json!({
        "quick": quick,
        "machine": machine(),
        "xdp": xdp,
        "parse": parse,
    });
    std::fs::write(
        out_dir.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let md = markdown(&report);
    std::fs::write(out_dir.join("report.md"), &md)?;
    println!("{md}");
    eprintln!("bench: wrote target/bench/report.json and target/bench/report.md");
    Ok(())
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
    let x = &r["xdp"];
    let _ = writeln!(
        s,
        "## XDP per-packet cost (BPF_PROG_TEST_RUN, {} repeats)\n",
        x["repeat"]
    );
    let _ = writeln!(s, "Ratio: sipshield ns/packet over the one-lookup drop baseline holding the same bans (target for drops: at most 1.5x).\n");
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
    let worst_drop = x["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["classes"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["verdict"] == "drop")
        .filter_map(|c| c["ratio_to_lookup"].as_f64())
        .fold(0.0f64, f64::max);
    let _ = writeln!(
        s,
        "\nWorst drop-path ratio to the one-lookup baseline at any ban count: {worst_drop:.2}x, target at most 1.5x: {}.",
        if worst_drop <= 1.5 { "met" } else { "MISSED" }
    );
    s
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
