//! `sipshield parse`: runs the log parsers over files, like `fail2ban-regex`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sipshield::logs::{
    self, asterisk::Reading, AsteriskParser, FailureKind, LogSource, Parsed, SshdParser,
};

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
    /// Which of the daemon's parsers reads the files: `asterisk` (as it
    /// reads `[logs] asterisk`), `sshd` (as `[logs] auth`), or `auto`
    /// (each line by its prefix).
    #[arg(long, value_enum, default_value_t = Kind::Auto)]
    kind: Kind,
    /// Print every line with what it charged and why, or why nobody, like
    /// `cscli explain`.
    #[arg(long, conflicts_with = "json")]
    explain: bool,
    /// Log files to read (Asterisk messages/security logs, auth.log,
    /// journalctl output); `-` reads standard input.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

/// The parsers `sipshield parse` runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Asterisk,
    Sshd,
    Auto,
}

impl Kind {
    /// What a line says, read as the daemon reads this kind of file.
    fn read(self, line: &str) -> Reading {
        match self {
            Kind::Asterisk => AsteriskParser::new().read(line),
            Kind::Sshd => match SshdParser::new().parse(line) {
                Some(parsed) => Reading::Charged(parsed),
                None => Reading::Silent,
            },
            Kind::Auto => match logs::parse_line(line) {
                Some(parsed) => Reading::Charged(parsed),
                None => AsteriskParser::new().read(line),
            },
        }
    }

    fn parse(self, line: &str) -> Option<Parsed> {
        match self {
            Kind::Asterisk => AsteriskParser::new().parse(line),
            Kind::Sshd => SshdParser::new().parse(line),
            Kind::Auto => logs::parse_line(line),
        }
    }
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
        let input: Box<dyn Read> = if path.as_os_str() == "-" {
            Box::new(io::stdin().lock())
        } else {
            Box::new(File::open(path).with_context(|| format!("cannot open {name}"))?)
        };
        let result = if args.explain {
            explain(input, &name, args.kind, &mut out, &mut tally)
        } else {
            scan(input, &name, args.kind, args.json, &mut out, &mut tally)
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

/// Bytes read and parsed at a time; a block is split across the cores at
/// line boundaries and the results are written in file order.
const BLOCK: usize = 8 << 20;

/// What one worker found in its share of a block.
#[derive(Default)]
struct Share {
    lines: u64,
    known_good: u64,
    /// (line number within the share, 1-based; the failure)
    failures: Vec<(u64, logs::Failure)>,
}

fn parse_share(bytes: &[u8], kind: Kind) -> Share {
    let mut share = Share::default();
    for raw in bytes.split(|b| *b == b'\n') {
        share.lines += 1;
        // Valid UTF-8 (nearly every line) is checked far faster than a
        // lossy conversion walks it.
        let line = match std::str::from_utf8(raw) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(raw),
        };
        match kind.parse(&line) {
            None => {}
            Some(Parsed::KnownGood(_)) => share.known_good += 1,
            Some(Parsed::Failure(f)) => share.failures.push((share.lines, f)),
        }
    }
    share
}

/// `bytes` (whole lines, without the last newline) cut into about `n`
/// pieces at newlines.
fn split_lines(bytes: &[u8], n: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(n);
    let mut rest = bytes;
    for left in (1..n).rev() {
        let target = rest.len() / (left + 1);
        match rest[target..].iter().position(|b| *b == b'\n') {
            Some(at) if target + at + 1 < rest.len() => {
                pieces.push(&rest[..target + at]);
                rest = &rest[target + at + 1..];
            }
            _ => break,
        }
    }
    pieces.push(rest);
    pieces
}

/// Appends up to `max` bytes from `input` to `buf`; the count read (0 at
/// EOF). No zero-filling of the block first.
fn fill(input: &mut impl Read, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    let mut total = 0;
    while total < max {
        match input.by_ref().take((max - total) as u64).read_to_end(buf) {
            Ok(0) => break,
            Ok(k) => total += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

fn scan(
    input: impl Read,
    name: &str,
    kind: Kind,
    json: bool,
    out: &mut impl Write,
    tally: &mut Tally,
) -> Result<(), ScanError> {
    scan_blocks(input, BLOCK, name, kind, json, out, tally)
}

/// `--explain`: every line, in order, with its reading.
fn explain(
    input: impl Read,
    name: &str,
    kind: Kind,
    out: &mut impl Write,
    tally: &mut Tally,
) -> Result<(), ScanError> {
    let mut reader = io::BufReader::new(input);
    let mut raw = Vec::new();
    let mut number = 0u64;
    loop {
        raw.clear();
        let n = io::BufRead::read_until(&mut reader, b'\n', &mut raw).map_err(ScanError::Input)?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        tally.lines += 1;
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\n', '\r']);
        let said = match kind.read(line) {
            Reading::Charged(Parsed::Failure(f)) => {
                tally.failures += 1;
                *tally.by_kind.entry(f.kind).or_default() += 1;
                format!("charged {} as {} ({} parser)", f.ip, f.kind, f.source)
            }
            Reading::Charged(Parsed::KnownGood(g)) => {
                tally.known_good += 1;
                format!("known good {} (a successful login, {} parser)", g.ip, g.source)
            }
            Reading::Ambiguous(a) => format!(
                "charged nobody here: {} with two readings of the sender ({}); the daemon charges the one the kernel saw send lately, if only one",
                a.kind,
                a.candidates().map(|ip| ip.to_string()).collect::<Vec<_>>().join(" or ")
            ),
            Reading::Nobody => "charged nobody: a failure line whose sender cannot be told (two readings of the address remain, or the line may have been cut)".to_string(),
            Reading::Silent => "no failure".to_string(),
        };
        writeln!(out, "{name}:{number}  {said}").map_err(ScanError::Output)?;
    }
}

fn scan_blocks(
    mut input: impl Read,
    block: usize,
    name: &str,
    kind: Kind,
    json: bool,
    out: &mut impl Write,
    tally: &mut Tally,
) -> Result<(), ScanError> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let mut data: Vec<u8> = Vec::with_capacity(block * 2);
    let mut number = 0u64;
    loop {
        let read = fill(&mut input, &mut data, block).map_err(ScanError::Input)?;
        let eof = read == 0;
        // Whole lines only, unless the file ends (its last line may lack
        // a newline) or one line is longer than a block (cut: parsers
        // refuse lines that long anyway).
        let end = match data.iter().rposition(|b| *b == b'\n') {
            _ if eof => data.len(),
            Some(nl) => nl + 1,
            None if data.len() >= block => data.len(),
            None => continue,
        };
        if end > 0 {
            let body = match data[..end].strip_suffix(b"\n") {
                Some(b) => b,
                None => &data[..end],
            };
            let pieces = split_lines(body, workers);
            let shares: Vec<Share> = std::thread::scope(|s| {
                let handles: Vec<_> = pieces
                    .iter()
                    .map(|piece| s.spawn(move || parse_share(piece, kind)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_default())
                    .collect()
            });
            for share in shares {
                for (at, failure) in &share.failures {
                    write_failure(out, name, number + at, failure, json, tally)
                        .map_err(ScanError::Output)?;
                }
                number += share.lines;
                tally.lines += share.lines;
                tally.known_good += share.known_good;
            }
        }
        data.drain(..end);
        if eof {
            return Ok(());
        }
    }
}

fn write_failure(
    out: &mut impl Write,
    name: &str,
    number: u64,
    failure: &logs::Failure,
    json: bool,
    tally: &mut Tally,
) -> io::Result<()> {
    tally.failures += 1;
    *tally.by_kind.entry(failure.kind).or_default() += 1;
    if json {
        let record = Record {
            file: name,
            line: number,
            source: failure.source,
            event: failure.kind,
            ip: failure.ip,
        };
        serde_json::to_writer(&mut *out, &record).map_err(io::Error::from)?;
        out.write_all(b"\n")
    } else {
        writeln!(
            out,
            "{name}:{number}  {}  {}  {}",
            failure.source, failure.kind, failure.ip
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    const FAIL: &str = "[2026-11-25 10:00:00] NOTICE[1] chan_sip.c: Registration from '<sip:a@b>' failed for '192.0.2.";
    const TAIL: &str = ":5060' - Wrong password";

    fn log(lines: usize) -> String {
        (1..=lines)
            .map(|n| {
                if n % 3 == 0 {
                    format!("{FAIL}{}{TAIL}\n", n % 250)
                } else {
                    format!("noise line {n}\n")
                }
            })
            .collect()
    }

    fn run(text: &str, block: usize) -> (String, u64, u64) {
        let mut out = Vec::new();
        let mut tally = Tally::default();
        if scan_blocks(
            text.as_bytes(),
            block,
            "f",
            Kind::Auto,
            false,
            &mut out,
            &mut tally,
        )
        .is_err()
        {
            panic!("scan failed");
        }
        (String::from_utf8(out).unwrap(), tally.lines, tally.failures)
    }

    #[test]
    fn small_blocks_give_the_same_lines_and_numbers_as_one_block() {
        let text = log(500);
        let whole = run(&text, 1 << 20);
        assert_eq!(whole.1, 500);
        assert_eq!(whole.2, 166);
        assert!(whole.0.starts_with("f:3  asterisk"), "{}", whole.0);
        // Blocks larger than the longest line (about 110 bytes); longer
        // lines are cut by design.
        for block in [128, 200, 1000, 4096] {
            assert_eq!(run(&text, block), whole, "block {block}");
        }
    }

    #[test]
    fn last_line_without_newline_and_empty_input() {
        let text = format!("a\n{FAIL}9{TAIL}");
        let (out, lines, failures) = run(&text, 1 << 20);
        assert_eq!((lines, failures), (2, 1));
        assert!(out.starts_with("f:2  "), "{out}");
        assert_eq!(run("", 1 << 20), (String::new(), 0, 0));
        assert_eq!(run("\n\n", 1 << 20).1, 2);
    }

    #[test]
    fn invalid_utf8_lines_are_still_read() {
        let mut text = b"noise \xff\xfe\n".to_vec();
        text.extend_from_slice(format!("{FAIL}7{TAIL}\n").as_bytes());
        let mut out = Vec::new();
        let mut tally = Tally::default();
        assert!(scan_blocks(
            &text[..],
            1 << 20,
            "f",
            Kind::Auto,
            false,
            &mut out,
            &mut tally
        )
        .is_ok());
        assert_eq!((tally.lines, tally.failures), (2, 1));
    }

    #[test]
    fn split_lines_cuts_only_at_newlines() {
        let text = b"aa\nbbbb\ncc\nd";
        let pieces = split_lines(text, 3);
        assert!(pieces.len() > 1);
        assert_eq!(pieces.join(&b'\n'), text.to_vec());
        assert_eq!(split_lines(b"one", 4), vec![&b"one"[..]]);
    }
}
