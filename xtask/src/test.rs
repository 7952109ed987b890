//! `cargo xtask test`: everything, in the order that fails fastest.

use std::process::Command;

use anyhow::{bail, Result};

use crate::{deps, lab, shell};

pub fn run(filter: Option<&str>) -> Result<()> {
    deps::ensure()?;
    if !shell::is_root() {
        bail!("the tests load BPF programs and create network namespaces: run as root");
    }
    lab::mount_bpffs()?;
    let root = shell::workspace_root();

    // Unit and pure integration tests (parsers, audit, policy...): parallel.
    let mut unit = cargo(&root);
    unit.args(["test", "--workspace", "--exclude", "sipshield-tests", "--exclude", "sipshield-ebpf"]);
    if let Some(f) = filter {
        unit.args(["--", f]);
    }
    shell::run(&mut unit)?;

    // Kernel tests share kernel state: one at a time.
    let mut kernel = cargo(&root);
    kernel.args(["test", "-p", "sipshield-tests", "--"]);
    if let Some(f) = filter {
        kernel.arg(f);
    }
    kernel.arg("--test-threads=1");
    shell::run(&mut kernel)?;
    lab::assert_no_leftovers()?;
    eprintln!("xtask test: all suites passed");
    Ok(())
}

fn cargo(root: &std::path::Path) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root);
    c
}
