//! `sipshield run` end to end in a namespace: log failures become kernel
//! bans within a second, allowlisted sources are never banned, bans survive
//! SIGKILL and are adopted on restart, rotation loses no line, status
//! reflects it all. Needs root.

use std::{
    net::UdpSocket,
    time::{Duration, Instant},
};

use sipshield_tests::{
    daemon::{append, cli, daemon_log, status, wrong_password, Daemon, DaemonPaths},
    netns::{VethLab, GUARD_DEV},
};

/// Waits until `from` is dropped; returns how long it took.
fn until_dropped(lab: &VethLab, from: &str, rx: &UdpSocket, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !lab.arrives(from, rx) {
            return Some(start.elapsed());
        }
    }
    None
}

fn banned(st: &serde_json::Value, ip: &str) -> bool {
    st["recent_bans"].as_array().is_some_and(|a| {
        a.iter()
            .any(|b| b["target"] == ip && !b["reason"].as_str().unwrap_or("").starts_with("WOULD"))
    })
}

fn bans_of(lab: &VethLab, paths: &DaemonPaths) -> Vec<String> {
    sipshield_tests::daemon::ban_targets(&lab.guarded, paths)
}

#[test]
fn log_failures_ban_allowlist_holds_bans_survive_crash_and_rotation() {
    let lab = VethLab::new("10.202.1");
    let attacker = lab.add_sender(66);
    let trunk = lab.add_sender(50);
    let paths = DaemonPaths::new("d1");
    let log = paths.log("messages");
    let auth = paths.log("auth.log");
    append(&log, &[]);
    let log_s = log.to_str().unwrap().to_string();
    let auth_s = auth.to_str().unwrap().to_string();
    let args = [
        "--iface",
        GUARD_DEV,
        "--asterisk-log",
        &log_s,
        "--auth-log",
        &auth_s,
        "--allow",
        &trunk,
    ];
    let daemon = Daemon::start(&lab.guarded, &paths, &args);
    let rx = lab.receiver();
    assert!(lab.arrives(&attacker, &rx), "not banned yet");

    // Four failures: below the threshold (5 in 10m).
    append(
        &log,
        &(0..4)
            .map(|n| wrong_password(&attacker, n))
            .collect::<Vec<_>>(),
    );
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        lab.arrives(&attacker, &rx),
        "4 failures do not ban: {}",
        daemon_log(&paths)
    );

    // The fifth bans, and its packets stop arriving within a second.
    append(&log, &[wrong_password(&attacker, 4)]);
    let took = until_dropped(&lab, &attacker, &rx, Duration::from_secs(1))
        .unwrap_or_else(|| panic!("not banned within 1s: {}", daemon_log(&paths)));
    eprintln!("log-driven ban took {took:?}");

    // The allowlisted trunk fails ten times and is never banned.
    append(
        &log,
        &(0..10)
            .map(|n| wrong_password(&trunk, n))
            .collect::<Vec<_>>(),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(lab.arrives(&trunk, &rx), "allowlisted trunk must pass");
    let st = status(&lab.guarded, &paths);
    assert!(banned(&st, &attacker), "{st:#}");
    assert!(!banned(&st, &trunk), "{st:#}");
    let would = st["recent_bans"].as_array().unwrap().iter().any(|b| {
        b["target"] == trunk.as_str() && b["reason"].as_str().unwrap_or("").contains("allowlisted")
    });
    assert!(would, "the would-ban of the trunk is reported: {st:#}");
    assert_eq!(st["daemon"]["running"], true);
    assert_eq!(st["interfaces"][0]["attached"], true);
    let log_status = &st["logs"].as_array().unwrap()[0];
    assert_eq!(log_status["lines"], 15, "{st:#}");
    assert_eq!(log_status["failures"], 15);
    let program = st["interfaces"][0]["program_id"].as_u64().unwrap();

    // Crash: bans stay enforced without the daemon; status still works.
    daemon.crash();
    assert!(!lab.arrives(&attacker, &rx), "ban enforced after SIGKILL");
    assert!(lab.arrives(&format!("{}.2", lab.prefix), &rx));
    let down = status(&lab.guarded, &paths);
    assert_eq!(down["daemon"]["running"], false, "{down:#}");
    assert_eq!(down["bans"]["exact_v4"], 1);
    // One ban: one bit of the filter's 2^23 (from the pins, daemon down).
    let fill = down["bans"]["filter_fill"].as_f64().unwrap_or(-1.0);
    assert!((0.0..0.001).contains(&fill), "{down:#}");

    // Restart: adopts the running program, keeps the ban, no duplicate.
    let daemon = Daemon::start(&lab.guarded, &paths, &args);
    let st = status(&lab.guarded, &paths);
    assert_eq!(
        st["interfaces"][0]["program_id"].as_u64(),
        Some(program),
        "no second attach"
    );
    assert_eq!(st["interfaces"][0]["adopted"], true);
    assert_eq!(bans_of(&lab, &paths), vec![attacker.clone()]);
    assert!(!lab.arrives(&attacker, &rx));
    assert!(
        st["packets"]["by_reason"]["banned_exact"]["drop"]
            .as_u64()
            .unwrap()
            >= 2,
        "counters continue across the restart: {st:#}"
    );

    // Rotation by rename + create: lines written to the old file after the
    // rename and to the new file both count.
    let second = lab.add_sender(67);
    let rotated = paths.log("messages.1");
    std::fs::rename(&log, &rotated).unwrap();
    append(
        &rotated,
        &(0..3)
            .map(|n| wrong_password(&second, n))
            .collect::<Vec<_>>(),
    );
    append(
        &log,
        &(3..5)
            .map(|n| wrong_password(&second, n))
            .collect::<Vec<_>>(),
    );
    until_dropped(&lab, &second, &rx, Duration::from_secs(2))
        .unwrap_or_else(|| panic!("rename+create rotation lost lines: {}", daemon_log(&paths)));

    // Rotation by copytruncate.
    let third = lab.add_sender(68);
    std::fs::copy(&log, paths.log("messages.2")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    append(
        &log,
        &(0..5)
            .map(|n| wrong_password(&third, n))
            .collect::<Vec<_>>(),
    );
    until_dropped(&lab, &third, &rx, Duration::from_secs(2))
        .unwrap_or_else(|| panic!("copytruncate rotation lost lines: {}", daemon_log(&paths)));

    let mut all = bans_of(&lab, &paths);
    all.sort();
    let mut want = vec![attacker.clone(), second.clone(), third.clone()];
    want.sort();
    assert_eq!(all, want);

    // SIGTERM: clean exit, bans stay pinned.
    let status_code = daemon.stop();
    assert!(status_code.success(), "{}", daemon_log(&paths));
    assert!(!lab.arrives(&third, &rx), "bans stay after a clean stop");

    // A restart restores from the state file too (the pins are gone here).
    let out = cli(&lab.guarded, &paths, &["detach"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(lab.arrives(&attacker, &rx), "detached: nothing enforced");
    let daemon = Daemon::start(&lab.guarded, &paths, &args);
    assert!(
        !lab.arrives(&attacker, &rx),
        "restored from state: {}",
        daemon_log(&paths)
    );
    assert_eq!(bans_of(&lab, &paths).len(), 3);
    daemon.stop();
    let out = cli(&lab.guarded, &paths, &["detach"]);
    assert!(out.status.success());
}

#[test]
fn observe_mode_bans_nothing_and_reports_would_bans() {
    let lab = VethLab::new("10.202.2");
    let attacker = lab.add_sender(66);
    let paths = DaemonPaths::new("d2");
    let log = paths.log("messages");
    append(&log, &[]);
    let log_s = log.to_str().unwrap().to_string();
    let daemon = Daemon::start(
        &lab.guarded,
        &paths,
        &[
            "--iface",
            GUARD_DEV,
            "--asterisk-log",
            &log_s,
            "--observe",
            "--detach-on-exit",
        ],
    );
    let rx = lab.receiver();
    append(
        &log,
        &(0..8)
            .map(|n| wrong_password(&attacker, n))
            .collect::<Vec<_>>(),
    );
    std::thread::sleep(Duration::from_millis(600));
    assert!(lab.arrives(&attacker, &rx), "observe mode drops nothing");
    let st = status(&lab.guarded, &paths);
    assert_eq!(st["mode"], "observe");
    assert_eq!(st["bans"]["exact_v4"], 0, "{st:#}");
    let reported = st["recent_bans"].as_array().unwrap().iter().any(|b| {
        b["target"] == attacker.as_str() && b["reason"].as_str().unwrap_or("").contains("observe")
    });
    assert!(reported, "{st:#}");
    assert!(daemon.stop().success());
    assert!(
        !paths.pin_root.join(GUARD_DEV).exists(),
        "--detach-on-exit removes the pins"
    );
}

#[test]
fn invalid_config_on_reload_is_rejected_and_the_running_one_stays() {
    let lab = VethLab::new("10.202.3");
    let paths = DaemonPaths::new("d3");
    let config = paths.log("sipshield.toml");
    std::fs::write(&config, "[policy.sip_auth]\nmaxretry = 3\n").unwrap();
    let config_s = config.to_str().unwrap().to_string();
    let log_s = paths.log("messages").to_str().unwrap().to_string();
    let daemon = Daemon::start(
        &lab.guarded,
        &paths,
        &[
            "--config",
            &config_s,
            "--iface",
            GUARD_DEV,
            "--asterisk-log",
            &log_s,
            "--detach-on-exit",
        ],
    );
    std::fs::write(
        &config,
        "[policy.sip_auth]\nmaxretry = \"many\"\nbogus = 1\n",
    )
    .unwrap();
    let out = cli(&lab.guarded, &paths, &["reload"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sipshield.toml"),
        "error names the file: {err}"
    );
    daemon.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    let st = status(&lab.guarded, &paths);
    assert_eq!(
        st["daemon"]["running"], true,
        "still running after a bad SIGHUP"
    );
    std::fs::write(&config, "[policy.sip_auth]\nmaxretry = 4\n").unwrap();
    let out = cli(&lab.guarded, &paths, &["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(daemon.stop().success());
}

#[test]
fn operator_commands_and_kernel_bans_go_through_the_daemon() {
    use std::os::unix::fs::PermissionsExt;
    let lab = VethLab::new("10.202.4");
    let flooder = lab.add_sender(77);
    let manual = lab.add_sender(88);
    let ranged = lab.add_sender(130);
    let paths = DaemonPaths::new("d4");
    let config = paths.log("sipshield.toml");
    std::fs::write(
        &config,
        "[xdp]\nregister_per_second = 1\nregister_burst = 5\nregister_flood_per_second = 1\nregister_flood_burst = 5\n",
    )
    .unwrap();
    let config_s = config.to_str().unwrap().to_string();
    let log_s = paths.log("messages").to_str().unwrap().to_string();
    let daemon = Daemon::start(
        &lab.guarded,
        &paths,
        &[
            "--config",
            &config_s,
            "--iface",
            GUARD_DEV,
            "--asterisk-log",
            &log_s,
            "--detach-on-exit",
        ],
    );
    let rx = lab.receiver();

    let mode = std::fs::metadata(paths.socket())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "control socket is root-only");
    let nobody = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(sipshield_tests::daemon::sipshield_bin())
        .args(["bans", "add", "192.0.2.1", "--socket"])
        .arg(paths.socket())
        .output()
        .unwrap();
    assert!(!nobody.status.success(), "an unprivileged user cannot ban");

    // Manual address ban with a duration, then removal.
    let out = cli(
        &lab.guarded,
        &paths,
        &["bans", "add", &manual, "--for", "1h", "--reason", "test"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!lab.arrives(&manual, &rx));
    let out = cli(&lab.guarded, &paths, &["bans", "del", &manual]);
    assert!(out.status.success());
    assert!(lab.arrives(&manual, &rx));
    let out = cli(&lab.guarded, &paths, &["bans", "del", &manual]);
    assert_eq!(out.status.code(), Some(1), "deleting an absent ban says so");

    // Range ban.
    let range = format!("{}.128/25", lab.prefix);
    let out = cli(&lab.guarded, &paths, &["bans", "add", &range]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!lab.arrives(&ranged, &rx));
    assert!(lab.arrives(&manual, &rx), "outside the range");

    // Allowlisting a banned address lifts its ban; banning it is refused.
    let out = cli(
        &lab.guarded,
        &paths,
        &["allow", "add", &ranged, "--note", "customer"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(lab.arrives(&ranged, &rx), "allowlist beats the range ban");
    let out = cli(&lab.guarded, &paths, &["bans", "add", &ranged]);
    assert!(
        !out.status.success(),
        "allowlisted addresses cannot be banned"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("allowlisted"));

    // A REGISTER flood: the kernel bans, the daemon records it.
    let tx = lab
        .outside
        .enter(|| UdpSocket::bind(format!("{flooder}:0")))
        .unwrap();
    for _ in 0..50 {
        tx.send_to(
            b"REGISTER sip:pbx SIP/2.0\r\n\r\n",
            format!("{}:5060", lab.guarded_addr()),
        )
        .unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let out = cli(&lab.guarded, &paths, &["bans", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rec = list
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["target"] == flooder.as_str())
        .unwrap_or_else(|| panic!("kernel ban recorded: {list:#} {}", daemon_log(&paths)));
    assert_eq!(rec["class"], "rate-guard");
    assert_eq!(rec["origin"], "kernel-rate-guard");

    // Human output.
    let out = cli(&lab.guarded, &paths, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sipshield daemon: running"), "{text}");
    assert!(
        text.contains(GUARD_DEV) && text.contains("rate_guard"),
        "{text}"
    );
    let out = cli(&lab.guarded, &paths, &["top", "--once"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&flooder));
    assert!(daemon.stop().success());
}
