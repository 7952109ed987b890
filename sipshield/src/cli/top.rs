//! `sipshield top`: live view of SIP sources by message rate.

use std::{
    collections::HashMap,
    process::ExitCode,
    time::{Duration, Instant},
};

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
    /// Sources shown.
    #[arg(short = 'n', long, default_value_t = 20)]
    count: usize,
    /// Refresh interval in seconds.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Print one table and exit (for scripts).
    #[arg(long)]
    once: bool,
}

fn sources(conn: &Connection, n: usize) -> anyhow::Result<Vec<Value>> {
    let v = match conn.ask(&Request::Top { n })? {
        Some(v) => v,
        None => {
            let shield = conn.pinned_shield()?;
            status::report(&shield, None, n)?["top_sources"].clone()
        }
    };
    Ok(v.as_array().cloned().unwrap_or_default())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let interval = Duration::from_secs_f64(args.interval.max(0.2));
    let mut previous: HashMap<String, u64> = HashMap::new();
    let mut last = Instant::now();
    loop {
        let rows = sources(&args.conn, args.count.max(1) * 4)?;
        let elapsed = last.elapsed().as_secs_f64().max(0.001);
        last = Instant::now();
        let mut shown: Vec<(f64, &Value)> = rows
            .iter()
            .map(|r| {
                let ip = r["ip"].as_str().unwrap_or("").to_string();
                let total = r["messages"].as_u64().unwrap_or(0);
                let rate = previous
                    .get(&ip)
                    .map_or(0.0, |p| total.saturating_sub(*p) as f64 / elapsed);
                (rate, r)
            })
            .collect();
        shown.sort_by(|a, b| b.0.total_cmp(&a.0));
        shown.truncate(args.count);
        let mut t = Table::new(&[
            "SOURCE", "MSG/S", "TOTAL", "REGISTER", "INVITE", "OPTIONS", "BANNED",
        ]);
        for (rate, r) in &shown {
            let m = &r["methods"];
            t.row(vec![
                r["ip"].as_str().unwrap_or("-").into(),
                format!("{rate:.1}"),
                thousands(r["messages"].as_u64().unwrap_or(0)),
                thousands(m["REGISTER"].as_u64().unwrap_or(0)),
                thousands(m["INVITE"].as_u64().unwrap_or(0)),
                thousands(m["OPTIONS"].as_u64().unwrap_or(0)),
                if r["banned"].as_bool() == Some(true) {
                    "yes"
                } else {
                    ""
                }
                .into(),
            ]);
        }
        if !args.once {
            print!("\x1b[2J\x1b[H");
            println!("sipshield top: SIP sources by message rate (Ctrl-C to quit)\n");
        }
        print!("{}", t.render(0));
        if args.once {
            return Ok(ExitCode::SUCCESS);
        }
        previous = rows
            .iter()
            .map(|r| {
                (
                    r["ip"].as_str().unwrap_or("").to_string(),
                    r["messages"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        std::thread::sleep(interval);
    }
}
