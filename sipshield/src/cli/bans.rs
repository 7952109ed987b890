//! `sipshield bans list|add|del`.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;
use sipshield::{
    bpf::{addr, clock},
    config::parse_duration,
    control::Request,
    daemon::{shield::origin_name, status},
};
use sipshield_common::maps::BanOrigin;

use super::{connection::Connection, table::Table};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// List bans (from the daemon, or the pinned maps when it is down).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Ban an address or CIDR, permanently or for a time.
    Add {
        /// Address or CIDR, e.g. 198.51.100.7 or 203.0.113.0/24.
        target: String,
        /// How long: 90s, 10m, 1h, 1d, 1w. Permanent when absent.
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<String>,
        /// Why (shown in `bans list`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift the ban of an address or CIDR.
    Del { target: String },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::List { json } => {
            let list = match args.conn.ask(&Request::BansList)? {
                Some(v) => v,
                None => pinned_list(&args.conn)?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_list(&list);
            }
        }
        Action::Add {
            target,
            duration,
            reason,
        } => {
            let net = addr::parse_net(&target).map_err(anyhow::Error::msg)?;
            if let Some(d) = &duration {
                parse_duration(d).with_context(|| format!("--for {d}"))?;
            }
            let req = Request::BanAdd {
                target: net.to_string(),
                duration: duration.clone(),
                reason,
            };
            match args.conn.ask(&req)? {
                Some(_) => println!(
                    "banned {net} {}",
                    duration.map_or("permanently".to_string(), |d| format!("for {d}"))
                ),
                None => {
                    let expires = match &duration {
                        None => 0,
                        Some(d) => clock::expiry_after(Some(parse_duration(d)?)),
                    };
                    let mut shield = args.conn.pinned_shield()?;
                    // The program looks bans up before the allowlist: an
                    // allowlisted address must never reach the ban table.
                    if shield.maps.allow.overlaps(net)? {
                        anyhow::bail!(
                            "{net} is (partly) allowlisted in the kernel: not banned \
                             (remove the allowlist entry first)"
                        );
                    }
                    shield.ban(net, clock::monotonic_ns(), expires, BanOrigin::Operator)?;
                    println!("banned {net} in the kernel (daemon not running: it adopts the ban at start)");
                }
            }
        }
        Action::Del { target } => {
            let net = addr::parse_net(&target).map_err(anyhow::Error::msg)?;
            let found = match args.conn.ask(&Request::BanDel {
                target: net.to_string(),
            })? {
                Some(v) => v["removed"].as_bool().unwrap_or(false),
                None => args.conn.pinned_shield()?.unban(net)?,
            };
            if !found {
                eprintln!("{net} was not banned");
                return Ok(ExitCode::from(1));
            }
            println!("unbanned {net}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The kernel's view when the daemon is down: no reasons, only origins.
fn pinned_list(conn: &Connection) -> anyhow::Result<Value> {
    let shield = conn.pinned_shield()?;
    let mut out = Vec::new();
    let now = clock::monotonic_ns();
    let when = |ns: u64| -> Value {
        if ns == 0 {
            Value::Null
        } else {
            status::unix(clock::monotonic_to_wall(ns)).into()
        }
    };
    let exact = shield.maps.all_bans()?;
    for (ip, e) in exact {
        if !e.is_active(now) {
            continue;
        }
        out.push(serde_json::json!({
            "target": ip.to_string(),
            "origin": origin_name(e.origin),
            "created": status::unix(clock::monotonic_to_wall(e.created_ns)),
            "expires": when(e.expires_ns),
        }));
    }
    for (net, e) in shield.maps.ranges.entries()? {
        if e.own_expires_ns != 0 && e.own_expires_ns <= now {
            continue;
        }
        out.push(serde_json::json!({
            "target": net.to_string(),
            "origin": origin_name(e.origin),
            "created": status::unix(clock::monotonic_to_wall(e.created_ns)),
            "expires": when(e.own_expires_ns),
        }));
    }
    Ok(Value::Array(out))
}

fn print_list(list: &Value) {
    let rows = list.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        println!("no bans");
        return;
    }
    let mut t = Table::new(&["TARGET", "BY", "SINCE", "EXPIRES", "REASON"]);
    let now = status::unix(std::time::SystemTime::now());
    for b in &rows {
        t.row(vec![
            b["target"].as_str().unwrap_or("-").into(),
            b.get("class")
                .and_then(Value::as_str)
                .or(b["origin"].as_str())
                .unwrap_or("-")
                .into(),
            b["created"]
                .as_u64()
                .map(|c| format!("{} ago", status::age(c)))
                .unwrap_or_default(),
            match b["expires"].as_u64() {
                None => "permanent".into(),
                Some(e) => format!(
                    "in {}",
                    sipshield::config::format_duration(std::time::Duration::from_secs(
                        e.saturating_sub(now)
                    ))
                ),
            },
            match b.get("enforced") {
                Some(Value::Bool(false)) => format!(
                    "NOT ENFORCED (share full, waiting for room): {}",
                    b.get("reason").and_then(Value::as_str).unwrap_or("")
                ),
                _ => b.get("reason").and_then(Value::as_str).unwrap_or("").into(),
            },
        ]);
    }
    print!("{}", t.render(0));
    println!("{} ban(s)", rows.len());
}
