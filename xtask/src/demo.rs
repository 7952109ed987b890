//! `cargo xtask demo`: the README's first command. Installs what is
//! missing, builds, and runs `sipshield-lab demo` (tests/src/bin): a PBX
//! behind a router attacked by svmap, svwar, sipsak, hping3 and svcrack
//! while a phone and a trunk keep calling, sipshield guarding it. The lab
//! binary removes its namespaces on success, failure and Ctrl-C; this
//! checks nothing was left behind. `--fleet`: two PBX hosts and a real
//! CrowdSec Local API (`sipshield-lab fleet`).

use std::process::Command;

use anyhow::{bail, Result};

use crate::{deps, lab, lab::interrupt, shell};

pub fn run(fleet: bool) -> Result<()> {
    deps::ensure()?;
    if !shell::is_root() {
        bail!("the demo creates network namespaces and attaches XDP: run as root");
    }
    let debug = shell::build_with_sipshield("sipshield-lab", false)?;
    lab::mount_bpffs()?;
    // Ctrl-C reaches the lab binary too; we only wait for it to clean up.
    interrupt::install();
    let status = Command::new(debug.join("sipshield-lab"))
        .arg(if fleet { "fleet" } else { "demo" })
        .env("SIPSHIELD_BIN", debug.join("sipshield"))
        .status()?;
    let clean = lab::assert_no_leftovers();
    if interrupt::hit() {
        bail!("demo interrupted");
    }
    if !status.success() {
        bail!("the demo failed ({status})");
    }
    clean
}
