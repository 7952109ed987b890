//! `sipshield detach`: remove the pinned program and maps from interfaces.
//! Bans in the state file are kept; the kernel stops enforcing them.

use std::process::ExitCode;

use sipshield::bpf::pins;

use super::connection::Connection;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    conn: Connection,
    /// Interfaces to detach from (default: every pinned interface).
    #[arg(long = "iface")]
    ifaces: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args
        .conn
        .ask(&sipshield::control::Request::Status)?
        .is_some()
    {
        anyhow::bail!(
            "the daemon is running: stop it first, or run it with --detach-on-exit and stop it"
        );
    }
    let ifaces = if args.ifaces.is_empty() {
        pins::pinned_interfaces(&args.conn.pin_root)
    } else {
        args.ifaces
    };
    if ifaces.is_empty() {
        println!("nothing pinned under {}", args.conn.pin_root.display());
        return Ok(ExitCode::SUCCESS);
    }
    for iface in ifaces {
        if pins::detach(&args.conn.pin_root, &iface)? {
            println!("detached from {iface}");
        } else {
            println!("{iface}: nothing pinned");
        }
    }
    Ok(ExitCode::SUCCESS)
}
