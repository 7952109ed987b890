//! PNG plots for the benchmark report, drawn by gnuplot (Debian package
//! gnuplot-nox) from the report's JSON: ns/packet against the ban count,
//! and the drop rate of each method per path.

use std::{fmt::Write as _, path::Path, process::Command};

use anyhow::{bail, Result};
use serde_json::Value;

/// Writes `xdp-ns-per-packet.png` and `drop-rate.png` into `dir`; returns
/// the file names written.
pub fn draw(report: &Value, dir: &Path) -> Result<Vec<String>> {
    let mut written = Vec::new();
    if let Some(name) = ns_per_packet(report, dir)? {
        written.push(name);
    }
    if let Some(name) = drop_rate(report, dir)? {
        written.push(name);
    }
    Ok(written)
}

fn label(bans: u64) -> String {
    match bans {
        b if b >= 1_000_000 && b % 1_000_000 == 0 => format!("{}M", b / 1_000_000),
        b if b >= 1_000 && b % 1_000 == 0 => format!("{}k", b / 1_000),
        b => b.to_string(),
    }
}

fn gnuplot(script: &str, dir: &Path) -> Result<()> {
    let path = dir.join("plot.gp");
    std::fs::write(&path, script)?;
    let out = Command::new("gnuplot")
        .arg(&path)
        .current_dir(dir)
        .output()?;
    if !out.status.success() {
        bail!("gnuplot: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Columns of `xdp-ns.dat`, 1-based as gnuplot counts them.
const COL_INDEX: usize = 1;
const COL_LABEL: usize = 2;
const COL_PASS: usize = 3;
const COL_LOOKUP_V4: usize = 4;
const COL_LOOKUP_V6: usize = 5;
const COL_BLOCKED_V4: usize = 6;
const COL_BLOCKED_V6: usize = 7;
const COL_RANGE: usize = 8;

/// The rows of `xdp-ns.dat`: one line per ban count, the columns above.
fn ns_data(rows: &[Value]) -> String {
    let mut data = String::from(
        "# index bans-label pass-only lookup-v4 lookup-v6 blocked-v4 blocked-v6 range-blocked\n",
    );
    for (i, r) in rows.iter().enumerate() {
        let class = |name: &str| {
            r["classes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["class"].as_str().is_some_and(|n| n.starts_with(name)))
                .and_then(|c| c["ns"].as_f64())
                .unwrap_or(f64::NAN)
        };
        let _ = writeln!(
            data,
            "{i} \"{}\" {} {} {} {} {} {}",
            label(r["bans"].as_u64().unwrap_or(0)),
            r["baseline_pass_ns"].as_f64().unwrap_or(f64::NAN),
            r["baseline_lookup_v4_ns"].as_f64().unwrap_or(f64::NAN),
            r["baseline_lookup_v6_ns"].as_f64().unwrap_or(f64::NAN),
            class("blocked v4"),
            class("blocked v6"),
            class("range"),
        );
    }
    data
}

/// One line per drop-path class plus the baselines, ns against bans.
fn ns_per_packet(report: &Value, dir: &Path) -> Result<Option<String>> {
    let rows = report["xdp"]["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if rows.is_empty() {
        return Ok(None);
    }
    std::fs::write(dir.join("xdp-ns.dat"), ns_data(&rows))?;
    let name = "xdp-ns-per-packet.png";
    gnuplot(
        &format!(
            "set terminal pngcairo size 900,540 noenhanced\nset output '{name}'\n\
             set title 'XDP cost of a dropped packet (BPF_PROG_TEST_RUN)'\n\
             set xlabel 'bans loaded'\nset ylabel 'ns per packet'\nset yrange [0:*]\n\
             set key outside right\nset grid ytics\n\
             plot 'xdp-ns.dat' using {COL_INDEX}:{COL_BLOCKED_V4}:xtic({COL_LABEL}) with linespoints lw 2 title 'sipshield blocked v4', \\\n\
             '' using {COL_INDEX}:{COL_BLOCKED_V6} with linespoints lw 2 title 'sipshield blocked v6', \\\n\
             '' using {COL_INDEX}:{COL_RANGE} with linespoints lw 2 title 'sipshield range-blocked', \\\n\
             '' using {COL_INDEX}:{COL_LOOKUP_V4} with linespoints dt 2 lc rgb '#b06000' title 'one-lookup drop v4 (baseline)', \\\n\
             '' using {COL_INDEX}:{COL_LOOKUP_V6} with linespoints dt 2 lc rgb '#a02050' title 'one-lookup drop v6 (baseline)', \\\n\
             '' using {COL_INDEX}:{COL_PASS} with linespoints dt 3 lc rgb '#404040' title 'XDP_PASS only (baseline)'\n"
        ),
        dir,
    )?;
    Ok(Some(name.into()))
}

/// Grouped bars: Mpps dropped per method at each ban count, one panel per
/// path.
fn drop_rate(report: &Value, dir: &Path) -> Result<Option<String>> {
    let points = report["droprate"]["points"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if points.is_empty() {
        return Ok(None);
    }
    let methods = [
        "sipshield",
        "nft-netdev-ingress",
        "nft-inet-raw-prerouting",
        "none",
    ];
    let mut panels = String::new();
    for (n, path) in ["nic-like", "skb"].iter().enumerate() {
        let mut bans: Vec<u64> = points
            .iter()
            .filter(|p| p["path"] == *path)
            .filter_map(|p| p["bans"].as_u64())
            .collect();
        bans.sort_unstable();
        bans.dedup();
        let mut data = String::new();
        for b in &bans {
            let _ = write!(data, "\"{}\"", label(*b));
            for m in methods {
                let v = points
                    .iter()
                    .find(|p| p["path"] == *path && p["method"] == m && p["bans"] == *b)
                    .and_then(|p| p["mpps"].as_f64())
                    .unwrap_or(0.0);
                let _ = write!(data, " {v}");
            }
            data.push('\n');
        }
        let file = format!("drop-{path}.dat");
        std::fs::write(dir.join(&file), data)?;
        let _ = write!(
            panels,
            "set title '{} path'\n\
             plot '{file}' using 2:xtic(1) title 'sipshield (XDP)', '' using 3 title 'nftables netdev ingress', \
             '' using 4 title 'nftables inet raw prerouting', '' using 5 title 'nothing (stack drops it)'\n",
            if n == 0 { "NIC-like (XDP-redirected frames)" } else { "skb (AF_PACKET sender)" }
        );
    }
    let name = "drop-rate.png";
    gnuplot(
        &format!(
            "set terminal pngcairo size 1100,520 noenhanced\nset output '{name}'\n\
             set multiplot layout 1,2 title 'Banned source: packets dropped per second'\n\
             set style data histograms\nset style histogram clustered gap 1\n\
             set style fill solid 0.8 border -1\nset boxwidth 0.9\n\
             set ylabel 'Mpps dropped'\nset xlabel 'addresses in the ban set'\nset yrange [0:*]\nset grid ytics\n\
             set key outside below font ',9'\n{panels}unset multiplot\n"
        ),
        dir,
    )?;
    Ok(Some(name.into()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ns_data_columns_match_the_plot() {
        let rows = vec![json!({
            "bans": 10_000,
            "baseline_pass_ns": 21.0,
            "baseline_lookup_v4_ns": 46.0,
            "baseline_lookup_v6_ns": 49.0,
            "classes": [
                {"class": "blocked v4", "ns": 62.0},
                {"class": "blocked v6", "ns": 64.0},
                {"class": "range-blocked", "ns": 65.0},
            ],
        })];
        let data = ns_data(&rows);
        let line = data.lines().nth(1).unwrap();
        let cols: Vec<&str> = line.split_whitespace().collect();
        let col = |n: usize| cols[n - 1];
        assert_eq!(col(COL_INDEX), "0");
        assert_eq!(col(COL_LABEL), "\"10k\"");
        assert_eq!(col(COL_PASS), "21");
        assert_eq!(col(COL_LOOKUP_V4), "46");
        assert_eq!(col(COL_LOOKUP_V6), "49");
        assert_eq!(col(COL_BLOCKED_V4), "62");
        assert_eq!(col(COL_BLOCKED_V6), "64");
        assert_eq!(col(COL_RANGE), "65");
        assert_eq!(cols.len(), COL_RANGE);
        // The header names every column too.
        assert_eq!(
            data.lines().next().unwrap().split_whitespace().count(),
            COL_RANGE + 1
        );
    }
}
