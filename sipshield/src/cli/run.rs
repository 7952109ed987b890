//! `sipshield run`: the daemon. Attaches (or adopts) the XDP program, watches
//! Asterisk and sshd logs and the kernel's events, bans by policy, keeps
//! state. SIGTERM/SIGINT stop it (bans stay pinned); SIGHUP reloads config.

use std::{path::PathBuf, process::ExitCode};

use ipnet::IpNet;
use sipshield::{
    bpf::{addr, AttachMode},
    daemon::{self, Overrides, RunOptions},
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Config file [default: /etc/sipshield/sipshield.toml if present].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Interface to guard (repeatable); overrides daemon.interfaces.
    #[arg(long = "iface", value_name = "IF")]
    ifaces: Vec<String>,
    /// Never drop or ban this address or CIDR (repeatable; adds to allow.cidrs).
    #[arg(long = "allow", value_name = "CIDR", value_parser = addr::parse_net)]
    allow: Vec<IpNet>,
    /// Asterisk log to watch (repeatable); overrides logs.asterisk.
    #[arg(long = "asterisk-log", value_name = "PATH")]
    asterisk_logs: Vec<PathBuf>,
    /// sshd auth log to watch; overrides logs.auth.
    #[arg(long, value_name = "PATH")]
    auth_log: Option<PathBuf>,
    /// Where the state file lives; overrides daemon.state_dir.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Decide everything, drop and ban nothing, report what would happen.
    #[arg(long)]
    observe: bool,
    /// Read logs from their beginning instead of their end.
    #[arg(long)]
    from_start: bool,
    /// Remove the program from the interfaces when the daemon exits (the
    /// pinned maps stay, with their bans; `sipshield detach --purge`).
    #[arg(long)]
    detach_on_exit: bool,
    /// Control socket; overrides daemon.control_socket.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Pin directory in bpffs; overrides daemon.bpffs_dir.
    #[arg(long)]
    pin_root: Option<PathBuf>,
    /// XDP attach mode: auto, driver or skb; overrides daemon.xdp_mode.
    #[arg(long)]
    xdp_mode: Option<AttachMode>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let opts = RunOptions {
        config: args.config,
        overrides: Overrides {
            ifaces: args.ifaces,
            allow: args.allow,
            asterisk_logs: args.asterisk_logs,
            auth_log: args.auth_log,
            state_dir: args.state_dir,
            observe: args.observe,
            from_start: args.from_start,
            socket: args.socket,
            pin_root: args.pin_root,
            xdp_mode: args.xdp_mode,
        },
        detach_on_exit: args.detach_on_exit,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(daemon::run(opts))?;
    Ok(ExitCode::SUCCESS)
}
