//! The daemon following the systemd journal, end to end: sshd entries are
//! charged, entries a local user forged are not, and a restart (a crash, in
//! fact) resumes from the position stored with the offences: no entry lost
//! while it was down, none counted twice. Needs root and
//! `systemd-journal-remote` (`cargo xtask deps`).
//!
//! This machine kind runs no journald, so the test writes a journal file of
//! its own with `systemd-journal-remote` from journald's export format
//! (what `journalctl -o export` prints), and points the daemon at its
//! directory (`[logs] journal_directory`).

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, SystemTime},
};

use sipshield_tests::{
    daemon::{ban_targets, daemon_log, status, wait_for, Daemon, DaemonPaths},
    netns::{VethLab, GUARD_DEV},
};

const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// A journal file of the test's own, appended to entry by entry.
struct Journal {
    dir: PathBuf,
    boot_id: String,
    written: usize,
}

impl Journal {
    fn new(paths: &DaemonPaths) -> Journal {
        assert!(
            Path::new(JOURNAL_REMOTE).exists(),
            "{JOURNAL_REMOTE} missing: cargo xtask deps installs systemd-journal-remote"
        );
        let dir = paths.log("journal");
        std::fs::create_dir_all(&dir).unwrap();
        // journalctl --follow wants entries of the running boot.
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .unwrap()
            .trim()
            .replace('-', "");
        Journal {
            dir,
            boot_id,
            written: 0,
        }
    }

    /// Appends entries, each a list of `FIELD=value` lines (export format).
    fn write(&mut self, entries: &[Vec<String>]) {
        let mut export = String::new();
        for fields in entries {
            self.written += 1;
            let usec = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_micros();
            export.push_str(&format!(
                "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID={}\n_HOSTNAME=pbx\n",
                usec + self.written as u128,
                self.written,
                self.boot_id
            ));
            for f in fields {
                export.push_str(f);
                export.push('\n');
            }
            export.push('\n');
        }
        let mut child = Command::new(JOURNAL_REMOTE)
            .arg(format!(
                "--output={}",
                self.dir.join("test.journal").display()
            ))
            .arg("-")
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("systemd-journal-remote");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(export.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "journal-remote wrote");
    }
}

/// sshd's entry as journald stores it on Debian 12 (`journalctl -o export`
/// of ssh.service: _COMM, _UID and _SYSTEMD_UNIT are journald's own).
fn sshd_entry(message: &str) -> Vec<String> {
    [
        "_TRANSPORT=syslog",
        "_UID=0",
        "_GID=0",
        "_COMM=sshd",
        "_EXE=/usr/sbin/sshd",
        "_SYSTEMD_UNIT=ssh.service",
        "SYSLOG_IDENTIFIER=sshd",
        "SYSLOG_FACILITY=4",
        "PRIORITY=6",
        "_PID=4242",
    ]
    .map(String::from)
    .into_iter()
    .chain([format!("MESSAGE={message}")])
    .collect()
}

/// `logger -t sshd "..."` by an unprivileged local user: journald records
/// the user's credentials, the identifier is the user's claim.
fn forged_entry(message: &str) -> Vec<String> {
    [
        "_TRANSPORT=syslog",
        "_UID=1000",
        "_GID=1000",
        "_COMM=logger",
        "_EXE=/usr/bin/logger",
        "_SYSTEMD_UNIT=session-3.scope",
        "SYSLOG_IDENTIFIER=sshd",
        "_PID=777",
    ]
    .map(String::from)
    .into_iter()
    .chain([format!("MESSAGE={message}")])
    .collect()
}

fn failed(ip: &str, n: usize) -> Vec<String> {
    sshd_entry(&format!(
        "Failed password for root from {ip} port {} ssh2",
        40000 + n
    ))
}

/// `matches`: `[logs] journal`; empty, the default (no auth log exists, so
/// sshd's units are followed). The directory stands in for the system
/// journal.
fn config(paths: &DaemonPaths, journal: &Journal, matches: &str) -> String {
    let path = paths.log("sipshield.toml");
    std::fs::write(
        &path,
        format!(
            "[logs]\nasterisk = []\nauth = [\"{}\"]\njournal = [{matches}]\njournal_directory = \"{}\"\n[allow]\nasterisk_trunks = false\nssh_sessions = false\n",
            paths.log("no-auth.log").display(),
            journal.dir.display()
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

fn start(lab: &VethLab, paths: &DaemonPaths, config: &str) -> Daemon {
    Daemon::start(
        &lab.guarded,
        paths,
        &["--config", config, "--iface", GUARD_DEV],
    )
}

/// The journal's `status` entry.
fn journal_status(lab: &VethLab, paths: &DaemonPaths) -> serde_json::Value {
    let st = status(&lab.guarded, paths);
    st["daemon"]["logs"]
        .as_array()
        .or_else(|| st["logs"].as_array())
        .and_then(|logs| logs.iter().find(|l| l["kind"] == "journal").cloned())
        .unwrap_or_else(|| panic!("no journal in status: {st:#}"))
}

#[test]
fn sshd_in_the_journal_is_charged_and_a_forged_identifier_is_not() {
    let lab = VethLab::new("10.204.1");
    let paths = DaemonPaths::new("j1");
    let mut journal = Journal::new(&paths);
    journal.write(&[sshd_entry("Server listening on 0.0.0.0 port 22.")]);
    // Matched by the identifier, as many setups do: the forged entries are
    // delivered, and journald's own fields must tell them apart.
    let cfg = config(&paths, &journal, "\"SYSLOG_IDENTIFIER=sshd\"");
    let daemon = start(&lab, &paths, &cfg);
    assert!(
        wait_for(Duration::from_secs(5), || journal_status(&lab, &paths)
            ["present"]
            == true),
        "journalctl runs: {}",
        daemon_log(&paths)
    );

    // Five guesses from one address, and five forged lines naming another.
    let mut entries: Vec<Vec<String>> = (0..5).map(|n| failed("198.51.100.71", n)).collect();
    entries.extend((0..5).map(|n| {
        forged_entry(&format!(
            "Failed password for root from 198.51.100.72 port {} ssh2",
            41000 + n
        ))
    }));
    journal.write(&entries);
    assert!(
        wait_for(Duration::from_secs(5), || ban_targets(&lab.guarded, &paths)
            .contains(&"198.51.100.71".to_string())),
        "the guesser is banned: {:#} {}",
        journal_status(&lab, &paths),
        daemon_log(&paths)
    );
    // Every entry written since the start was delivered (the one before it
    // was not: the journal is followed from its end), the forged ones too.
    assert!(wait_for(Duration::from_secs(3), || journal_status(
        &lab, &paths
    )["lines"]
        .as_u64()
        .unwrap_or(0)
        == 10));
    assert!(
        !ban_targets(&lab.guarded, &paths).contains(&"198.51.100.72".to_string()),
        "a local user's `logger -t sshd` frames nobody"
    );
    daemon.stop_and_detach(&lab.guarded, &paths);
}

#[test]
fn a_crash_and_restart_loses_no_journal_entry_and_counts_none_twice() {
    let lab = VethLab::new("10.204.2");
    let paths = DaemonPaths::new("j2");
    let mut journal = Journal::new(&paths);
    journal.write(&[sshd_entry("Server listening on 0.0.0.0 port 22.")]);
    let cfg = config(&paths, &journal, "");
    let daemon = start(&lab, &paths, &cfg);
    let guesser = "198.51.100.81";

    // Three of five guesses, read and stored (the writer commits every 500 ms).
    assert!(wait_for(Duration::from_secs(5), || journal_status(
        &lab, &paths
    )["present"]
        == true));
    journal.write(&(0..3).map(|n| failed(guesser, n)).collect::<Vec<_>>());
    assert!(
        wait_for(Duration::from_secs(5), || journal_status(&lab, &paths)
            ["failures"]
            == 3),
        "three failures read: {:#}",
        journal_status(&lab, &paths)
    );
    std::thread::sleep(Duration::from_millis(1500));
    daemon.crash();

    // One more while the daemon is down.
    journal.write(&[failed(guesser, 3)]);
    let daemon = start(&lab, &paths, &cfg);
    assert!(wait_for(Duration::from_secs(5), || journal_status(
        &lab, &paths
    )["failures"]
        == 1));
    std::thread::sleep(Duration::from_millis(500));
    // Four so far: read again from the start, the three would make seven
    // and a ban; forgotten, there would be one.
    assert!(
        !ban_targets(&lab.guarded, &paths).contains(&guesser.to_string()),
        "the three entries before the crash were counted twice: {}",
        daemon_log(&paths)
    );
    // The fifth bans: the window kept the three and the entry written while
    // the daemon was down was read.
    journal.write(&[failed(guesser, 4)]);
    assert!(
        wait_for(Duration::from_secs(5), || ban_targets(&lab.guarded, &paths)
            .contains(&guesser.to_string())),
        "the fifth guess bans: {:#} {}",
        journal_status(&lab, &paths),
        daemon_log(&paths)
    );
    daemon.stop_and_detach(&lab.guarded, &paths);
}
