//! Command-line interface: one module per subcommand; doc comments are the help.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod attach;

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
    /// Load and attach the XDP program to interfaces (foreground, no log watching).
    Attach(attach::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Attach(args) => attach::run(args),
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
