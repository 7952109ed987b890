//! A `sipshield run` process inside a test namespace, killed on drop.
//!
//! Started with `nsenter --net` (network namespace only), not `ip netns
//! exec`: the latter remounts /sys, so pins would land in a private bpffs
//! that dies with the process.

use std::{
    fs::OpenOptions,
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::netns::Netns;

/// The sipshield binary: `$SIPSHIELD_BIN`, or next to this executable
/// (target/<profile>/ for binaries, its parent for tests in deps/).
pub fn sipshield_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("SIPSHIELD_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe.parent().expect("executable dir");
    let found = [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join("sipshield"))
        .find(|b| b.exists());
    match found {
        Some(bin) => bin,
        None => panic!(
            "sipshield binary missing near {}: cargo build -p sipshield first",
            dir.display()
        ),
    }
}

/// Paths one daemon uses, all private to the test.
pub struct DaemonPaths {
    pub dir: tempfile::TempDir,
    pub pin_root: PathBuf,
}

impl DaemonPaths {
    pub fn new(tag: &str) -> DaemonPaths {
        let dir = tempfile::tempdir().expect("temp dir");
        let pin_root = PathBuf::from(format!("/sys/fs/bpf/sst{}-{tag}", std::process::id()));
        DaemonPaths { dir, pin_root }
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("ctl.sock")
    }
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for DaemonPaths {
    fn drop(&mut self) {
        // Links, program and maps: nothing stays loaded after a test.
        sipshield::bpf::pins::purge(&self.pin_root);
        let _ = std::fs::remove_dir_all(&self.pin_root);
    }
}

pub struct Daemon {
    pub child: Child,
}

impl Daemon {
    /// Starts `sipshield run` in `ns` with the common private paths plus
    /// `args`; waits for the control socket.
    pub fn start(ns: &Netns, paths: &DaemonPaths, args: &[&str]) -> Daemon {
        Self::start_custom(ns, paths, &paths.socket(), &[], args)
    }

    /// As `start`, with the control socket at `socket`.
    pub fn start_with_socket(
        ns: &Netns,
        paths: &DaemonPaths,
        socket: &Path,
        args: &[&str],
    ) -> Daemon {
        Self::start_custom(ns, paths, socket, &[], args)
    }

    /// As `start`, run through `wrapper` (a command that execs the rest,
    /// such as `prlimit --nofile=N`), waiting for `socket`.
    pub fn start_custom(
        ns: &Netns,
        paths: &DaemonPaths,
        socket: &Path,
        wrapper: &[&str],
        args: &[&str],
    ) -> Daemon {
        let _ = std::fs::remove_file(socket);
        let log = std::fs::File::create(paths.dir.path().join("daemon.log")).expect("daemon log");
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", ns.name))
            .args(wrapper)
            .arg(sipshield_bin())
            .args(["-v", "run"])
            .arg("--socket")
            .arg(socket)
            .arg("--pin-root")
            .arg(&paths.pin_root)
            .arg("--state-dir")
            .arg(paths.state_dir())
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sipshield run");
        let mut d = Daemon { child };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !socket.exists() {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("daemon exited ({status}): {}", daemon_log(paths));
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not start: {}",
                daemon_log(paths)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// SIGKILL, as a crash would.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then `sipshield detach`: the test leaves nothing attached.
    pub fn stop_and_detach(self, ns: &Netns, paths: &DaemonPaths) {
        self.stop();
        let out = cli(ns, paths, &["detach"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// SIGTERM and wait.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        self.child.wait().expect("wait")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn daemon_log(paths: &DaemonPaths) -> String {
    std::fs::read_to_string(paths.dir.path().join("daemon.log")).unwrap_or_default()
}

/// Runs a sipshield CLI command in `ns` against this daemon's paths.
pub fn cli(ns: &Netns, paths: &DaemonPaths, args: &[&str]) -> Output {
    cli_in(&ns.name, paths, args)
}

/// As `cli`, in the namespace of this name.
pub fn cli_in(ns: &str, paths: &DaemonPaths, args: &[&str]) -> Output {
    Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .arg(sipshield_bin())
        .args(args)
        .arg("--socket")
        .arg(paths.socket())
        .arg("--pin-root")
        .arg(&paths.pin_root)
        .output()
        .expect("run sipshield")
}

/// `sipshield status --json`, parsed.
pub fn status(ns: &Netns, paths: &DaemonPaths) -> serde_json::Value {
    let out = cli(ns, paths, &["status", "--json"]);
    assert!(
        out.status.success(),
        "status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// Appends lines to a log file (creating it).
pub fn append(path: &Path, lines: &[String]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    for l in lines {
        writeln!(f, "{l}").expect("append");
    }
}

/// A chan_sip wrong-password line for `ip`, as Asterisk writes it.
pub fn wrong_password(ip: &str, n: usize) -> String {
    format!(
        "[2026-11-25 10:00:{:02}] NOTICE[2245][C-00000{n:03}] chan_sip.c: Registration from '\"10{n}\" <sip:10{n}@10.0.0.1:5060>' failed for '{ip}:5060' - Wrong password",
        n % 60
    )
}

/// The targets of `sipshield bans list --json`.
pub fn ban_targets(ns: &Netns, paths: &DaemonPaths) -> Vec<String> {
    let out = cli(ns, paths, &["bans", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bans JSON");
    v.as_array()
        .expect("a list of bans")
        .iter()
        .filter_map(|b| b["target"].as_str().map(String::from))
        .collect()
}

/// Polls `f` every 100 ms until it holds or `limit` passes.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Starts a daemon guarding `iface` of `ns` with `config` (TOML text, in
/// the paths' `sipshield.toml`) and empty Asterisk and sshd logs of its own.
pub fn start_configured(ns: &Netns, paths: &DaemonPaths, iface: &str, config: &str) -> Daemon {
    let file = paths.log("sipshield.toml");
    std::fs::write(&file, config).expect("config");
    let messages = paths.log("messages");
    append(&messages, &[]);
    let auth = paths.log("auth.log");
    append(&auth, &[]);
    let arg = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    Daemon::start(
        ns,
        paths,
        &[
            "--config",
            &arg(&file),
            "--iface",
            iface,
            "--asterisk-log",
            &arg(&messages),
            "--auth-log",
            &arg(&auth),
        ],
    )
}
