//! `cargo xtask deps | test | demo`: set-up, test and demo tasks.
//!
//! xtask depends on nothing that needs the eBPF toolchain, so it builds on a
//! fresh machine and can install that toolchain itself.

mod bench;
mod deb;
mod demo;
mod deps;
mod lab;
mod plot;
mod shell;
mod test;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "sipshield developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install every system package and tool the build and tests need (idempotent).
    Deps,
    /// Run all tests: unit, BPF_PROG_TEST_RUN and namespace tests (root).
    Test {
        /// Only run tests whose name contains this.
        filter: Option<String>,
    },
    /// Show sipshield dropping a banned sender between two namespaces.
    Demo {
        /// Two PBX hosts sharing bans through a real CrowdSec Local API.
        #[arg(long)]
        fleet: bool,
    },
    /// Build the Debian package: target/debian/sipshield_<version>_amd64.deb.
    Deb,
    /// Benchmarks: XDP per-packet cost against baselines, log parsing against
    /// fail2ban-regex. Writes target/bench/report.{json,md}.
    Bench {
        /// Smaller counts and repeats (about a minute).
        #[arg(long)]
        quick: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Deps => deps::install(),
        Task::Test { filter } => test::run(filter.as_deref()),
        Task::Demo { fleet } => demo::run(fleet),
        Task::Deb => deb::run().map(|_| ()),
        Task::Bench { quick } => bench::run(quick),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
