//! Namespaces for the demo, removed on drop; bpffs; leftover checks.

use std::{
    fs::File,
    os::fd::AsRawFd,
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};

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
    Ok(())
}

/// A namespace the demo created; deleted (processes killed) on drop.
pub struct Ns {
    pub name: String,
}

impl Ns {
    pub fn create(name: &str) -> Result<Ns> {
        // A stale one from an interrupted run would make `add` fail.
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        run(Command::new("ip").args(["netns", "add", name]))?;
        let ns = Ns { name: name.into() };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn ip(&self, args: &[&str]) -> Result<()> {
        let out = shell::output(Command::new("ip").args(["-n", &self.name]).args(args))?;
        if !out.status.success() {
            bail!(
                "ip -n {} {}: {}",
                self.name,
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` on this thread inside the namespace.
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        let home = File::open("/proc/thread-self/ns/net")?;
        let target = File::open(format!("/run/netns/{}", self.name))
            .with_context(|| format!("namespace {}", self.name))?;
        setns(&target)?;
        let r = f();
        setns(&home)?;
        Ok(r)
    }
}

fn setns(f: &File) -> Result<()> {
    // SAFETY: valid namespace fd; affects only this thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!("setns: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

impl Drop for Ns {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-TERM", pid]).status();
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        eprintln!("lab: removed namespace {}", self.name);
    }
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
