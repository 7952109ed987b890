//! Command-line interface: one module per subcommand; doc comments are the help.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod allow;
mod attach;
mod audit;
mod bans;
mod config;
mod connection;
mod detach;
mod events;
mod generate;
mod parse;
mod reload;
mod run;
mod status;
mod table;
mod top;

/// Protects a SIP/Asterisk host: drops hostile sources in XDP, bans from logs,
/// audits the host's hardening.
#[derive(Parser, Debug)]
#[command(name = "sipshield", version, about, long_about = None)]
struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon: guard interfaces, watch logs, ban by policy.
    Run(run::Args),
    /// Show what is guarded, dropped and banned (works with the daemon down).
    Status(status::Args),
    /// List, add or remove bans.
    Bans(bans::Args),
    /// List, add or remove allowlist entries.
    Allow(allow::Args),
    /// Live view of SIP sources by message rate.
    Top(top::Args),
    /// Bans, unbans and would-bans as they happen (--follow), for people or tools (--json).
    Events(events::Args),
    /// Make the daemon re-read its config file.
    Reload(reload::Args),
    /// Remove the pinned XDP program and maps (the daemon must be stopped).
    Detach(detach::Args),
    /// Load and attach the XDP program to interfaces (foreground, no log watching).
    Attach(attach::Args),
    /// Check a config file, or print the documented default config.
    Config(config::Args),
    /// Run the log parsers over files and print each failure found (no root needed).
    Parse(parse::Args),
    /// Audit the host's hardening (SIP, AMI, SSH, PAM, MySQL, web, services, IPS) and print the fixes.
    Audit(audit::Args),
    /// Write the man pages or shell completions (for packaging).
    #[command(hide = true)]
    Generate(generate::Args),
}

/// The whole command-line definition (man pages, completions).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Status(args) => status::run(args),
        Command::Bans(args) => bans::run(args),
        Command::Allow(args) => allow::run(args),
        Command::Top(args) => top::run(args),
        Command::Events(args) => events::run(args),
        Command::Reload(args) => reload::run(args),
        Command::Detach(args) => detach::run(args),
        Command::Attach(args) => attach::run(args),
        Command::Config(args) => config::run(args),
        Command::Parse(args) => parse::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Generate(args) => generate::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("sipshield: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp_millis()
        .init();
}
