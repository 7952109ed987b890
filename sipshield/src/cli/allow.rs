//! `sipshield allow list|add|del`: sources that are never dropped or banned.

use std::process::ExitCode;

use serde_json::Value;
use sipshield::{bpf::addr, control::Request};

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
    /// List the allowlist with where each entry comes from.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Allowlist an address or CIDR (lifts any ban it covers).
    Add {
        target: String,
        /// A note, e.g. "SIP trunk of ACME".
        #[arg(long)]
        note: Option<String>,
    },
    /// Remove a manual allowlist entry.
    Del { target: String },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::List { json } => {
            let list = match args.conn.ask(&Request::AllowList)? {
                Some(v) => v,
                None => {
                    let shield = args.conn.pinned_shield()?;
                    let nets = shield.maps.allow.entries()?;
                    Value::Array(
                        nets.into_iter()
                            .map(|n| serde_json::json!({"net": n.to_string(), "source": "kernel"}))
                            .collect(),
                    )
                }
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows = list.as_array().cloned().unwrap_or_default();
            let mut t = Table::new(&["NET", "SOURCE", "NOTE"]);
            for e in &rows {
                t.row(vec![
                    e["net"].as_str().unwrap_or("-").into(),
                    e["source"].as_str().unwrap_or("-").into(),
                    e.get("note").and_then(Value::as_str).unwrap_or("").into(),
                ]);
            }
            print!("{}", t.render(0));
            println!("{} entr(ies)", rows.len());
        }
        Action::Add { target, note } => {
            let net = addr::parse_net(&target).map_err(anyhow::Error::msg)?;
            let v = args.conn.require(&Request::AllowAdd {
                target: net.to_string(),
                note,
            })?;
            println!("allowlisted {net}");
            if let Some(lifted) = v["lifted"].as_array().filter(|l| !l.is_empty()) {
                let names: Vec<String> = lifted
                    .iter()
                    .map(|l| l.as_str().unwrap_or("?").to_string())
                    .collect();
                println!("lifted ban(s): {}", names.join(", "));
            }
        }
        Action::Del { target } => {
            let net = addr::parse_net(&target).map_err(anyhow::Error::msg)?;
            let v = args.conn.require(&Request::AllowDel {
                target: net.to_string(),
            })?;
            if v["removed"].as_bool() != Some(true) {
                eprintln!("{net} is not a manual allowlist entry");
                return Ok(ExitCode::from(1));
            }
            println!("removed {net} from the allowlist");
        }
    }
    Ok(ExitCode::SUCCESS)
}
