//! `sipshield audit`: checks the host's hardening (or a mounted image's)
//! and says exactly what to fix. Exit 0 when nothing at or above
//! `--fail-on`, 1 when something is, 2 when the audit could not run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use sipshield::hardening::{self, Area, Finding, Report, Severity};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Audit the filesystem under this directory instead of `/` (a mounted
    /// image, a backup, a test tree). No root needed when files are readable.
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Print the findings as a JSON array (skipped checks go to stderr).
    #[arg(long)]
    json: bool,
    /// Exit 1 when a finding at or above this severity exists.
    #[arg(long, value_enum, default_value_t = FailOn::High)]
    fail_on: FailOn,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum FailOn {
    Info,
    Low,
    Medium,
    High,
}

impl From<FailOn> for Severity {
    fn from(f: FailOn) -> Severity {
        match f {
            FailOn::Info => Severity::Info,
            FailOn::Low => Severity::Low,
            FailOn::Medium => Severity::Medium,
            FailOn::High => Severity::High,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let report = hardening::audit(&args.root)
        .with_context(|| format!("cannot audit {}", args.root.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.findings)?);
        for s in &report.skipped {
            eprintln!("skipped: {} ({}): {}", s.checks, s.area.title(), s.reason);
        }
    } else {
        print!("{}", render(&report));
    }
    let failing = report.at_least(args.fail_on.into()).next().is_some();
    Ok(if failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Wrapped text stays within this many columns, so the report reads on an
/// 80-column terminal.
const WIDTH: usize = 80;
/// Where the message and fix start under a finding's first line.
const TEXT_INDENT: usize = 12;

fn location(f: &Finding) -> String {
    match f.line {
        Some(line) => format!("{}:{line}", f.file),
        None => f.file.clone(),
    }
}

/// Findings grouped by area, worst first within each: one line with
/// severity, check id and `file:line`, then what was found and the fix,
/// wrapped. Then what was skipped and why, then counts.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let pad = " ".repeat(TEXT_INDENT);
    for area in Area::ALL {
        let mut findings: Vec<&Finding> =
            report.findings.iter().filter(|f| f.area == area).collect();
        if findings.is_empty() {
            continue;
        }
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let id_width = findings
            .iter()
            .map(|f| f.id.len())
            .chain(std::iter::once("CHECK".len()))
            .max()
            .unwrap_or(0);
        out += &format!("{}\n", area.title());
        out += &format!("  {:<8}  {:<id_width$}  WHERE\n", "SEVERITY", "CHECK");
        for f in findings {
            out += &format!(
                "  {:<8}  {:<id_width$}  {}\n",
                f.severity.as_str(),
                f.id,
                location(f)
            );
            out += &wrap(&f.message, &pad, &pad);
            out += &wrap(&format!("fix: {}", f.fix), &pad, &format!("{pad}     "));
        }
        out.push('\n');
    }
    if report.findings.is_empty() {
        out += "No findings.\n\n";
    }
    if !report.skipped.is_empty() {
        out += "Skipped\n";
        for s in &report.skipped {
            let first = format!("  {:<8}  ", s.area.title());
            out += &wrap(&format!("{}: {}", s.checks, s.reason), &first, &pad);
        }
        out.push('\n');
    }
    let counts: Vec<String> = Severity::ALL
        .iter()
        .map(|s| format!("{} {s}", report.count(*s)))
        .collect();
    let n = report.findings.len();
    out += &format!(
        "Summary: {n} {} ({}), {} checks skipped\n",
        if n == 1 { "finding" } else { "findings" },
        counts.join(", "),
        report.skipped.len()
    );
    out
}

/// Greedy word wrap to [`WIDTH`] columns: `first` starts the first line,
/// `rest` the others. A word longer than a line (a long path) gets a line of
/// its own rather than being cut.
fn wrap(text: &str, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if !empty && len + 1 + word.chars().count() > WIDTH {
            out += line.trim_end();
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out += line.trim_end();
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_lines_within_the_width_and_indents_continuations() {
        let text = "word ".repeat(40);
        let out = wrap(&text, "  first ", "        ");
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 1);
        assert!(lines[0].starts_with("  first word"));
        assert!(lines[1..].iter().all(|l| l.starts_with("        word")));
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH));
        assert_eq!(out.split_whitespace().filter(|w| *w == "word").count(), 40);
    }

    #[test]
    fn wrap_gives_an_overlong_word_its_own_line() {
        let long = "x".repeat(WIDTH + 5);
        let out = wrap(&format!("a {long} b"), "", "  ");
        assert_eq!(out, format!("a\n  {long}\n  b\n"));
    }
}
