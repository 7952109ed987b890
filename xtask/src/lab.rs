//! bpffs, Ctrl-C, and the check that no lab namespace was left behind.

use std::process::Command;

use anyhow::{bail, Result};

use crate::shell::{self, run};

pub fn mount_bpffs() -> Result<()> {
    if shell::succeeds(Command::new("mountpoint").args(["-q", "/sys/fs/bpf"])) {
        return Ok(());
    }
    run(Command::new("mount").args(["-t", "bpf", "bpf", "/sys/fs/bpf"]))
}

/// Fails if a test left a namespace of ours behind.
pub fn assert_no_leftovers() -> Result<()> {
    let out = shell::output(Command::new("ip").args(["netns", "list"]))?;
    let ours: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("sst") || n.starts_with("ssd-"))
        .map(str::to_string)
        .collect();
    if !ours.is_empty() {
        bail!("namespaces left behind: {}", ours.join(" "));
    }
    // Pins keep programs and maps loaded: a test must remove its own.
    let pins: Vec<String> = std::fs::read_dir("/sys/fs/bpf")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("sst") || n.starts_with("ssd-"))
        .collect();
    if !pins.is_empty() {
        bail!(
            "bpffs pins left behind under /sys/fs/bpf: {}",
            pins.join(" ")
        );
    }
    Ok(())
}

/// Ctrl-C sets a flag the demo polls, so guards run and tear the lab down.
pub mod interrupt {
    use std::sync::atomic::{AtomicBool, Ordering};

    static HIT: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_signal(_: i32) {
        HIT.store(true, Ordering::SeqCst);
    }

    pub fn install() {
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: async-signal-safe handler (one atomic store).
            unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
        }
    }

    pub fn hit() -> bool {
        HIT.load(Ordering::SeqCst)
    }
}
