//! `sipshield events`: bans, unbans and would-bans as they happen (recent
//! ones first), for people and for other tools (`--json`: one object per
//! line).

use std::{io::Write, process::ExitCode};

use anyhow::bail;
use serde_json::Value;
use sipshield::control::{client, ControlError, Request, Response};

use super::connection::Connection;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep streaming new events until interrupted.
    #[arg(short, long)]
    follow: bool,
    /// One JSON object per event and line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: Connection,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let req = Request::Events {
        follow: args.follow,
    };
    let mut first = true;
    let mut failure: Option<String> = None;
    let mut out = std::io::stdout().lock();
    let result = client::stream(&args.conn.socket, &req, |line| {
        if first {
            first = false;
            match serde_json::from_str::<Response>(line) {
                Ok(r) if r.ok => {
                    for e in r.data.as_array().into_iter().flatten() {
                        if print(&mut out, e, args.json).is_err() {
                            return false;
                        }
                    }
                }
                Ok(r) => {
                    failure = Some(r.error.unwrap_or_else(|| "the daemon refused".into()));
                    return false;
                }
                Err(e) => {
                    failure = Some(format!("bad answer from the daemon: {e}"));
                    return false;
                }
            }
            return args.follow;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(e) => print(&mut out, &e, args.json).is_ok(),
            Err(_) => true,
        }
    });
    match result {
        Err(ControlError::NotRunning(s)) => {
            bail!("the sipshield daemon is not running (no socket at {s})")
        }
        Err(e) => return Err(e.into()),
        Ok(()) => {}
    }
    if let Some(f) = failure {
        bail!(f);
    }
    Ok(ExitCode::SUCCESS)
}

fn print(out: &mut impl Write, e: &Value, json: bool) -> std::io::Result<()> {
    if json {
        writeln!(out, "{e}")?;
    } else if let Some(lost) = e["lost"].as_u64() {
        writeln!(out, "... {lost} events lost (this reader fell behind)")?;
    } else {
        let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
        let length = match e["duration_s"].as_u64() {
            Some(d) => sipshield::config::format_duration(std::time::Duration::from_secs(d)),
            None if s("action") == "unban" => "-".into(),
            None => "permanent".into(),
        };
        writeln!(
            out,
            "{} {:<9} {:<39} {:<12} {:<18} {:<9} {}",
            sipshield::daemon::status::age(e["at"].as_u64().unwrap_or(0)) + " ago",
            s("action"),
            s("target"),
            s("class"),
            s("origin"),
            length,
            s("reason")
        )?;
    }
    out.flush()
}
