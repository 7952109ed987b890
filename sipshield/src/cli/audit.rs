//! `sipshield audit`: checks the host's hardening (or a mounted image's)
//! and says exactly what to fix. Exit 0 when nothing at or above
//! `--fail-on`, 1 when something is, 2 when the audit could not run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use sipshield::hardening::{self, Area, Finding, Report, Severity};

use super::table::Table;

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

fn location(f: &Finding) -> String {
    match f.line {
        Some(line) => format!("{}:{line}", f.file),
        None => f.file.clone(),
    }
}

/// Findings grouped by area, worst first within each; then what was
/// skipped; then counts.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for area in Area::ALL {
        let mut findings: Vec<&Finding> =
            report.findings.iter().filter(|f| f.area == area).collect();
        if findings.is_empty() {
            continue;
        }
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        out += &format!("{}\n", area.title());
        let mut table = Table::new(&["SEVERITY", "CHECK", "WHERE", "FOUND"]);
        for f in findings {
            table.row(vec![
                f.severity.as_str().to_string(),
                f.id.to_string(),
                location(f),
                f.message.clone(),
            ]);
            table.row(vec![
                String::new(),
                String::new(),
                String::new(),
                format!("fix: {}", f.fix),
            ]);
        }
        out += &table.render(2);
        out.push('\n');
    }
    if report.findings.is_empty() {
        out += "No findings.\n\n";
    }
    if !report.skipped.is_empty() {
        out += "Skipped\n";
        let mut table = Table::new(&["AREA", "CHECKS", "REASON"]);
        for s in &report.skipped {
            table.row(vec![
                s.area.title().to_string(),
                s.checks.clone(),
                s.reason.clone(),
            ]);
        }
        out += &table.render(2);
        out.push('\n');
    }
    let counts: Vec<String> = Severity::ALL
        .iter()
        .map(|s| format!("{} {s}", report.count(*s)))
        .collect();
    out += &format!(
        "Summary: {} findings ({}), {} checks skipped\n",
        report.findings.len(),
        counts.join(", "),
        report.skipped.len()
    );
    out
}
