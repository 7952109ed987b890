//! `sipshield config`: check a config file, print the documented default.

use std::{path::PathBuf, process::ExitCode};

use sipshield::config::{Config, DEFAULT_CONFIG_PATH, DEFAULT_CONFIG_TOML};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(clap::Subcommand, Debug)]
enum ConfigCommand {
    /// Check a config file: prints "ok", or each error as file:line:column
    /// and exits with status 1.
    Check {
        /// The file to check.
        #[arg(default_value = DEFAULT_CONFIG_PATH)]
        file: PathBuf,
    },
    /// Print the default configuration, every key set and documented.
    Default,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        ConfigCommand::Check { file } => match Config::load(&file) {
            Ok(_) => {
                println!("ok");
                Ok(ExitCode::SUCCESS)
            }
            Err(err) => {
                eprintln!("{err}");
                Ok(ExitCode::from(1))
            }
        },
        ConfigCommand::Default => {
            print!("{DEFAULT_CONFIG_TOML}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
