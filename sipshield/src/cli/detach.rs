//! `sipshield detach`: remove the program from interfaces. The pinned maps
//! (with every ban) stay until `--purge`; bans in the state file are kept.

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
    /// Also remove the pinned maps: bans only the kernel held are lost.
    #[arg(long)]
    purge: bool,
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
    if ifaces.is_empty() && !args.purge {
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
    if args.purge {
        pins::purge(&args.conn.pin_root);
        println!(
            "removed the pinned maps under {}",
            args.conn.pin_root.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
