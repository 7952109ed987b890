//! `sipshield status`: what is guarded, what was dropped and banned, which
//! logs are watched. Works with the daemon down, from the pinned maps.

use std::process::ExitCode;

use serde_json::Value;
use sipshield::{control::Request, daemon::status};

use super::{
    connection::Connection,
    table::{thousands, Table},
};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    conn: Connection,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// How many top SIP sources to show.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let report = match args.conn.ask(&Request::Status)? {
        Some(r) => r,
        None => {
            let shield = args.conn.pinned_shield()?;
            status::report(&shield, None, args.top)?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub fn render(r: &Value) -> String {
    let mut out = String::new();
    let d = &r["daemon"];
    if d["running"].as_bool() == Some(true) {
        out += &format!(
            "sipshield daemon: running (pid {}, up {}), mode {}{}\n",
            n(&d["pid"]),
            sipshield::config::format_duration(std::time::Duration::from_secs(n(&d["uptime_s"]))),
            s(&r["mode"]),
            if d["observe"].as_bool() == Some(true) {
                " (observe: nothing is dropped)"
            } else {
                ""
            }
        );
    } else {
        out += &format!(
            "sipshield daemon: NOT running; pinned program still enforcing, mode {}\n",
            s(&r["mode"])
        );
    }
    let ifaces = r["interfaces"].as_array().cloned().unwrap_or_default();
    if ifaces.is_empty() {
        out += "interfaces: none guarded\n";
    } else {
        let mut t = Table::new(&[
            "INTERFACE",
            "XDP MODE",
            "PROGRAM",
            "STATE",
            "PASSED",
            "DROPPED",
        ]);
        for i in &ifaces {
            let p = &i["packets"];
            let (passed, dropped) = if p.is_object() {
                // Observe mode drops nothing: it passes would-drops.
                let (d, w) = (n(&p["dropped"]), n(&p["would_drop"]));
                let dropped = if w > 0 {
                    format!("{d} (would {w})")
                } else {
                    d.to_string()
                };
                (n(&p["passed"]).to_string(), dropped)
            } else {
                ("-".into(), "-".into())
            };
            t.row(vec![
                s(&i["iface"]),
                s(&i["attach_mode"]),
                n(&i["program_id"]).to_string(),
                if i["attached"].as_bool() == Some(true) {
                    "attached"
                } else {
                    "DETACHED"
                }
                .into(),
                passed,
                dropped,
            ]);
        }
        out += "interfaces:\n";
        out += &t.render(2);
    }
    let prog = &r["program"];
    if prog.is_object() {
        out += &format!(
            "program {} shared by every interface; maps in {}/maps ({})\n",
            n(&prog["id"]),
            s(&prog["pins"]),
            s(&prog["start"])
        );
    }
    let b = &r["bans"];
    out += &format!(
        "bans: {} exact ({} IPv4, {} IPv6), {} ranges{}\n",
        n(&b["exact_v4"]) + n(&b["exact_v6"]),
        n(&b["exact_v4"]),
        n(&b["exact_v6"]),
        n(&b["ranges"]),
        match n(&b["not_enforced"]) {
            0 => String::new(),
            waiting => format!(
                "; {} not enforced (their share is full: kept, entered as room frees)",
                thousands(waiting)
            ),
        }
    );
    let sh = &b["shares"];
    out += &format!(
        "  shares: log {}, operator {} (of {} per family, {} kept for operators){}; kernel-made {} (own LRU share)\n",
        thousands(n(&b["log"])),
        thousands(n(&b["operator"])),
        thousands(n(&sh["capacity_per_family"])),
        thousands(n(&sh["operator_reserve"])),
        if n(&sh["refused_full"]) > 0 {
            format!(", {} refused: share full", thousands(n(&sh["refused_full"])))
        } else {
            String::new()
        },
        thousands(n(&b["kernel_made"])),
    );
    if let Some(fill) = b["filter_fill"].as_f64() {
        out += &format!(
            "  ban filter: {:.1}% of its bits set{}\n",
            fill * 100.0,
            if fill > 0.5 {
                " (bits are never cleared while the pins live: a restart after a reboot, or a change of xdp.max_bans, starts it afresh)"
            } else {
                ""
            }
        );
    }
    if let Some(by) = b["fleet_by_source"].as_object().filter(|m| !m.is_empty()) {
        let parts: Vec<String> = by
            .iter()
            .map(|(k, v)| format!("{k} {}", thousands(n(v))))
            .collect();
        out += &format!(
            "  fleet: {} (of {} per family for CrowdSec, {} for the feeds)\n",
            parts.join(", "),
            thousands(n(&sh["crowdsec_share"])),
            thousands(n(&sh["feed_share"]))
        );
    }
    let cs = &r["crowdsec"];
    if let Some(feeds) = cs["feeds"].as_object() {
        for (name, f) in feeds {
            let state = match (f["failing_since"].as_u64(), f["last_ok"].as_u64()) {
                (Some(since), _) => format!(
                    "FAILING for {} ({}); its entries stay",
                    status::age(since),
                    s(&f["last_error"])
                ),
                (None, Some(at)) => format!("fetched {} ago", status::age(at)),
                (None, None) => "not fetched yet".into(),
            };
            out += &format!(
                "feed {name} ({}): {} entries; {state}\n",
                s(&f["kind"]),
                thousands(n(&f["entries"]))
            );
        }
    }
    if cs["enabled"].as_bool() == Some(true) {
        let state = match (cs["down_since"].as_u64(), cs["last_pull"].as_u64()) {
            (Some(since), _) => format!(
                "LAPI UNREACHABLE for {} ({}); bans in force stay",
                status::age(since),
                s(&cs["last_error"])
            ),
            (None, Some(at)) => format!("last pull {} ago", status::age(at)),
            (None, None) => "no answer yet".to_string(),
        };
        out += &format!(
            "crowdsec: {} decisions from {}; {state}{}\n",
            thousands(n(&cs["decisions"])),
            s(&cs["api_url"]),
            match n(&cs["allowlisted"]) {
                0 => String::new(),
                k => format!("; {k} not enforced (allowlisted)"),
            }
        );
    }
    let alerts = &cs["alerts"];
    if alerts["enabled"].as_bool() == Some(true) {
        let state = match alerts["down_since"].as_u64() {
            Some(since) => format!(
                "; LAPI REFUSING or UNREACHABLE for {} ({}), they wait",
                status::age(since),
                s(&alerts["last_error"])
            ),
            None => String::new(),
        };
        out += &format!(
            "crowdsec alerts: {} sent, {} waiting; not sent (no proof): {} forgeable, {} kernel bans{state}\n",
            thousands(n(&alerts["sent"])),
            thousands(n(&alerts["waiting"])),
            thousands(n(&alerts["not_sent_unproven"])),
            thousands(n(&alerts["not_sent_kernel"])),
        );
    }
    out += &format!(
        "known-good sources: {} (policed, never banned by the kernel)\n",
        thousands(n(&r["known_good"]))
    );
    let p = &r["packets"];
    out += &format!(
        "packets since attach: {} passed, {} dropped",
        thousands(n(&p["passed"])),
        thousands(n(&p["dropped"]))
    );
    if n(&p["would_drop"]) > 0 {
        out += &format!(
            ", {} would have been dropped",
            thousands(n(&p["would_drop"]))
        );
    }
    out += "\n";
    if let Some(reasons) = p["by_reason"].as_object() {
        let mut t = Table::new(&["REASON", "PASSED", "DROPPED", "WOULD DROP"]);
        for (name, v) in reasons {
            t.row(vec![
                name.clone(),
                thousands(n(&v["pass"])),
                thousands(n(&v["drop"])),
                thousands(n(&v["would_drop"])),
            ]);
        }
        if !t.is_empty() {
            out += &t.render(2);
        }
    }
    let top = r["top_sources"].as_array().cloned().unwrap_or_default();
    if !top.is_empty() {
        out += "top SIP sources:\n";
        let mut t = Table::new(&[
            "SOURCE",
            "MESSAGES",
            "REGISTER",
            "INVITE",
            "OPTIONS",
            "LAST SEEN",
            "BANNED",
        ]);
        for src in &top {
            let m = &src["methods"];
            t.row(vec![
                s(&src["ip"]),
                thousands(n(&src["messages"])),
                thousands(n(&m["REGISTER"])),
                thousands(n(&m["INVITE"])),
                thousands(n(&m["OPTIONS"])),
                format!("{}s ago", n(&src["last_seen_s_ago"])),
                if src["banned"].as_bool() == Some(true) {
                    "yes"
                } else {
                    ""
                }
                .into(),
            ]);
        }
        out += &t.render(2);
    }
    let recent = r["recent_bans"].as_array().cloned().unwrap_or_default();
    if !recent.is_empty() {
        out += "recent bans:\n";
        let mut t = Table::new(&["TARGET", "BY", "WHEN", "EXPIRES", "REASON"]);
        for ban in &recent {
            t.row(vec![
                s(&ban["target"]),
                s(ban.get("class").unwrap_or(&ban["origin"])),
                ban["created"]
                    .as_u64()
                    .map(|c| format!("{} ago", status::age(c)))
                    .unwrap_or_default(),
                match ban["expires"].as_u64() {
                    None => "permanent".into(),
                    Some(e) => format!("in {}", remaining(e)),
                },
                match ban["repeats"].as_u64() {
                    Some(n) => format!("{} (seen {n} times)", s(&ban["reason"])),
                    None => s(ban.get("reason").unwrap_or(&Value::Null)),
                },
            ]);
        }
        out += &t.render(2);
    }
    out += &allowlist_text(&r["allowlist"]);
    out += &known_good_text(&r["known_good_sources"]);
    let logs = r["logs"].as_array().cloned().unwrap_or_default();
    if !logs.is_empty() {
        out += "logs watched:\n";
        let mut t = Table::new(&["FILE", "KIND", "LINES", "FAILURES", "LAST FAILURE"]);
        for l in &logs {
            t.row(vec![
                format!(
                    "{}{}",
                    s(&l["path"]),
                    if l["present"].as_bool() == Some(false) {
                        if l["kind"] == "journal" {
                            " (journalctl not running)"
                        } else {
                            " (missing)"
                        }
                    } else {
                        ""
                    }
                ),
                s(&l["kind"]),
                thousands(n(&l["lines"])),
                thousands(n(&l["failures"])),
                l["last_match"]
                    .as_u64()
                    .map(|t| format!("{} ago", status::age(t)))
                    .unwrap_or_else(|| "never".into()),
            ]);
        }
        out += &t.render(2);
        // The drift alarm: wordings no parser knows.
        for l in &logs {
            let nobody = n(&l["charged_nobody"]);
            if nobody > 0 {
                out += &format!(
                    "  {}: {} failure line(s) charged nobody (two readings of the sender, or cut); latest: {}\n",
                    s(&l["path"]),
                    thousands(nobody),
                    s(&l["charged_nobody_sample"])
                );
            }
            let unmatched = n(&l["unmatched_failures"]);
            let version = match (
                l["asterisk_version"].as_str(),
                l["previous_asterisk_version"].as_str(),
            ) {
                (Some(v), Some(was)) => format!("Asterisk {v}, was {was}"),
                (Some(v), None) => format!("Asterisk {v}"),
                _ => "Asterisk version not seen".into(),
            };
            if unmatched > 0 {
                out += &format!(
                    "  {}: {} failure-looking line(s) match no parser ({version}): a new wording? Samples:\n",
                    s(&l["path"]),
                    thousands(unmatched)
                );
                for sample in l["unmatched_samples"].as_array().into_iter().flatten() {
                    out += &format!("    {}\n", s(sample));
                }
            } else if l["previous_asterisk_version"].is_string() {
                out += &format!("  {}: {version}\n", s(&l["path"]));
            }
        }
    }
    out
}

/// Entries shown one by one: the ones an operator asks about ("why is this
/// address never banned?"), SSH sessions first.
const ALLOW_SHOWN: usize = 10;

/// Remote agents: SIP sources that authenticated lately, policed at a
/// higher limit and never banned by the kernel.
fn known_good_text(list: &Value) -> String {
    let Some(entries) = list.as_array().filter(|e| !e.is_empty()) else {
        return String::new();
    };
    let now = status::unix(std::time::SystemTime::now());
    let mut out = format!(
        "known-good SIP sources (authenticated; higher threshold, short first ban): {}\n",
        entries.len()
    );
    for e in entries.iter().rev().take(ALLOW_SHOWN) {
        let left = e["until"].as_u64().unwrap_or(0).saturating_sub(now);
        out += &format!(
            "  {:<39} for {}\n",
            s(&e["addr"]),
            sipshield::config::format_duration(std::time::Duration::from_secs(left))
        );
    }
    if entries.len() > ALLOW_SHOWN {
        out += &format!(
            "  ... and {} more (status --json)\n",
            entries.len() - ALLOW_SHOWN
        );
    }
    out
}

/// The allowlist by source, and where each automatic entry came from.
fn allowlist_text(list: &Value) -> String {
    let Some(entries) = list.as_array() else {
        return String::new();
    };
    if entries.is_empty() {
        return String::new();
    }
    let mut counts: Vec<(String, usize)> = Vec::new();
    for e in entries {
        let source = s(&e["source"]);
        match counts.iter_mut().find(|(name, _)| *name == source) {
            Some((_, n)) => *n += 1,
            None => counts.push((source, 1)),
        }
    }
    let mut out = format!(
        "allowlist: {} entries ({})\n",
        entries.len(),
        counts
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let rank = |e: &&Value| match e["source"].as_str() {
        Some("ssh-session") => 0,
        Some("asterisk-trunk") => 1,
        Some("gateway") => 2,
        _ => 3,
    };
    let mut shown: Vec<&Value> = entries.iter().filter(|e| rank(e) < 3).collect();
    shown.sort_by_key(rank);
    if !shown.is_empty() {
        let mut t = Table::new(&["NET", "SOURCE", "FROM"]);
        for e in shown.iter().take(ALLOW_SHOWN) {
            t.row(vec![s(&e["net"]), s(&e["source"]), s(&e["note"])]);
        }
        out += &t.render(2);
        if shown.len() > ALLOW_SHOWN {
            out += &format!(
                "  ... and {} more (sipshield allow list)\n",
                shown.len() - ALLOW_SHOWN
            );
        }
    }
    out
}

fn remaining(unix_secs: u64) -> String {
    let now = status::unix(std::time::SystemTime::now());
    sipshield::config::format_duration(std::time::Duration::from_secs(
        unix_secs.saturating_sub(now),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alert_source_is_shown_with_what_it_sent_and_held_back() {
        let r = serde_json::json!({
            "crowdsec": {"alerts": {
                "enabled": true, "sent": 12, "waiting": 3, "down_since": null,
                "not_sent_unproven": 40, "not_sent_kernel": 7
            }}
        });
        let text = render(&r);
        assert!(
            text.contains("crowdsec alerts: 12 sent, 3 waiting; not sent (no proof): 40 forgeable, 7 kernel bans\n"),
            "{text}"
        );
        let off = render(&serde_json::json!({"crowdsec": {"alerts": {"enabled": false}}}));
        assert!(!off.contains("crowdsec alerts"), "{off}");
    }
}
