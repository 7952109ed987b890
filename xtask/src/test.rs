//! `cargo xtask test`: everything, in the order that fails fastest.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use anyhow::{bail, Result};

use crate::{deps, lab, shell};

pub fn run(filter: Option<&str>) -> Result<()> {
    deps::ensure()?;
    if !shell::is_root() {
        bail!("the tests load BPF programs and create network namespaces: run as root");
    }
    lab::mount_bpffs()?;
    let root = shell::workspace_root();
    // A clean build of everything the tests need is about 2.5 GiB.
    shell::ensure_disk_space(&root, 3, "cargo xtask test")?;

    let mut tally = Tally::default();

    // Unit and pure integration tests (parsers, audit, policy...): parallel.
    let mut unit = cargo(&root);
    unit.args([
        "test",
        "--workspace",
        "--exclude",
        "sipshield-tests",
        "--exclude",
        "sipshield-ebpf",
    ]);
    unit.args(["--lib", "--bins", "--tests"]);
    if let Some(f) = filter {
        unit.args(["--", f]);
    }
    let unit_ok = tally.run(&mut unit)?;

    // The daemon tests run the real binary; the package tests the .deb.
    shell::run(cargo(&root).args(["build", "-p", "sipshield"]))?;
    crate::deb::run()?;

    // Kernel tests share kernel state: one at a time.
    let mut kernel = cargo(&root);
    kernel.args(["test", "-p", "sipshield-tests", "--tests", "--"]);
    if let Some(f) = filter {
        kernel.arg(f);
    }
    kernel.arg("--test-threads=1");
    let kernel_ok = tally.run(&mut kernel)?;
    let clean = lab::assert_no_leftovers();

    println!(
        "xtask test: {} passed, {} failed",
        tally.passed, tally.failed
    );
    if !unit_ok || !kernel_ok {
        bail!("some tests failed");
    }
    clean
}

/// Sums cargo's `test result:` lines while passing all output through.
#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
}

impl Tally {
    fn run(&mut self, cmd: &mut Command) -> Result<bool> {
        eprintln!("+ {}", shell::describe(cmd));
        let mut child = cmd.stdout(Stdio::piped()).spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                self.passed += field(rest, "passed");
                self.failed += field(rest, "failed");
            }
        }
        Ok(child.wait()?.success())
    }
}

/// The number before `name` in "ok. 3 passed; 0 failed; ...".
fn field(s: &str, name: &str) -> u64 {
    s.split(';')
        .filter_map(|part| {
            let mut words = part.split_whitespace().rev();
            match (words.next(), words.next()) {
                (Some(n), Some(v)) if n == name => v.parse::<u64>().ok(),
                _ => None,
            }
        })
        .sum()
}

fn cargo(root: &std::path::Path) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root);
    c
}
