//! `sipshield parse`: runs the log parsers over files, like `fail2ban-regex`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sipshield::logs::{self, FailureKind, LogSource, Parsed};

/// Arguments of `sipshield parse` (its one-line help is on the subcommand).
#[derive(clap::Args, Debug)]
#[command(
    after_help = "A dry run to check what the daemon would see in your logs: each line is \
recognised on its own as Asterisk's or sshd's. Human output is `file:line  source  event  ip`, \
with a summary on standard error."
)]
pub struct Args {
    /// Print one JSON object per failure line instead of a table:
    /// {"file": ..., "line": N, "source": "asterisk"|"sshd", "event": ..., "ip": ...}
    #[arg(long)]
    json: bool,
    /// Log files to read (Asterisk messages/security logs, auth.log,
    /// journalctl output); `-` reads standard input.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

#[derive(serde::Serialize)]
struct Record<'a> {
    file: &'a str,
    line: u64,
    source: LogSource,
    event: FailureKind,
    ip: IpAddr,
}

#[derive(Default)]
struct Tally {
    lines: u64,
    failures: u64,
    known_good: u64,
    by_kind: BTreeMap<FailureKind, u64>,
}

enum ScanError {
    Input(io::Error),
    Output(io::Error),
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let mut tally = Tally::default();
    for path in &args.files {
        let name = path.to_string_lossy();
        let result = if path.as_os_str() == "-" {
            scan(io::stdin().lock(), &name, args.json, &mut out, &mut tally)
        } else {
            let file = File::open(path).with_context(|| format!("cannot open {name}"))?;
            scan(
                BufReader::with_capacity(256 * 1024, file),
                &name,
                args.json,
                &mut out,
                &mut tally,
            )
        };
        match result {
            Ok(()) => {}
            Err(ScanError::Input(err)) => {
                return Err(err).with_context(|| format!("cannot read {name}"))
            }
            Err(ScanError::Output(err)) => return output_failed(err),
        }
    }
    if let Err(err) = out.flush() {
        return output_failed(err);
    }
    if !args.json {
        print_summary(&tally);
    }
    Ok(ExitCode::SUCCESS)
}

/// `sipshield parse ... | head` closes our output early: that is not an error.
fn output_failed(err: io::Error) -> anyhow::Result<ExitCode> {
    if err.kind() == io::ErrorKind::BrokenPipe {
        return Ok(ExitCode::SUCCESS);
    }
    Err(err).context("writing output")
}

fn scan(
    mut input: impl BufRead,
    name: &str,
    json: bool,
    out: &mut impl Write,
    tally: &mut Tally,
) -> Result<(), ScanError> {
    let mut buf = Vec::with_capacity(1024);
    let mut number = 0u64;
    loop {
        buf.clear();
        if input
            .read_until(b'\n', &mut buf)
            .map_err(ScanError::Input)?
            == 0
        {
            return Ok(());
        }
        number += 1;
        tally.lines += 1;
        let line = String::from_utf8_lossy(&buf);
        match logs::parse_line(&line) {
            None => {}
            Some(Parsed::KnownGood(_)) => tally.known_good += 1,
            Some(Parsed::Failure(failure)) => {
                tally.failures += 1;
                *tally.by_kind.entry(failure.kind).or_default() += 1;
                let written = if json {
                    let record = Record {
                        file: name,
                        line: number,
                        source: failure.source,
                        event: failure.kind,
                        ip: failure.ip,
                    };
                    serde_json::to_writer(&mut *out, &record)
                        .map_err(io::Error::from)
                        .and_then(|()| out.write_all(b"\n"))
                } else {
                    writeln!(
                        out,
                        "{name}:{number}  {}  {}  {}",
                        failure.source, failure.kind, failure.ip
                    )
                };
                written.map_err(ScanError::Output)?;
            }
        }
    }
}

/// One line, e.g. `1200 lines read, 3 failures (sip-wrong-password 2, ssh-invalid-user 1), 1 known good`.
fn print_summary(tally: &Tally) {
    let kinds: Vec<String> = tally
        .by_kind
        .iter()
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect();
    let kinds = if kinds.is_empty() {
        String::new()
    } else {
        format!(" ({})", kinds.join(", "))
    };
    eprintln!(
        "{} lines read, {} failures{kinds}, {} known good",
        tally.lines, tally.failures, tally.known_good
    );
}
