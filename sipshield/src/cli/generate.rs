//! `sipshield generate`: man pages (clap_mangen) and shell completions
//! (clap_complete) from the same definitions as `--help`, for packaging.

use std::{
    fs,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context;
use clap::Subcommand;
use clap_complete::Shell;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// Man pages, section 8: sipshield.8 and sipshield-<command>.8 for every
    /// command (and sipshield-<command>-<sub>.8 for theirs).
    Man {
        /// Directory to write them to.
        dir: PathBuf,
    },
    /// The completion script for a shell.
    Completions {
        shell: Shell,
        /// Directory to write it to (its usual file name); stdout without.
        dir: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cmd = super::command();
    match args.what {
        What::Man { dir } => {
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let n = write_pages(&cmd, "sipshield", &dir)?;
            eprintln!("{n} man pages in {}", dir.display());
        }
        What::Completions { shell, dir } => {
            let mut cmd = cmd;
            match dir {
                None => {
                    clap_complete::generate(shell, &mut cmd, "sipshield", &mut std::io::stdout())
                }
                Some(dir) => {
                    fs::create_dir_all(&dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                    let path = clap_complete::generate_to(shell, &mut cmd, "sipshield", &dir)
                        .with_context(|| format!("writing into {}", dir.display()))?;
                    eprintln!("{}", path.display());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cmd`'s page as `name.8`, then one per visible subcommand.
fn write_pages(cmd: &clap::Command, name: &str, dir: &Path) -> anyhow::Result<usize> {
    let page = cmd
        .clone()
        .name(name.to_string())
        .bin_name(name.replace('-', " "));
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .section("8")
        .manual("sipshield")
        .render(&mut out)
        .context("rendering a man page")?;
    let path = dir.join(format!("{name}.8"));
    fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    let mut n = 1;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        n += write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(n)
}
