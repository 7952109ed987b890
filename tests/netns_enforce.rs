//! The daemon never stops enforcing without saying so: a start whose pins
//! would die with it is refused. Needs root.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use sipshield_tests::{
    daemon::{cli, daemon_log, sipshield_bin, status, Daemon, DaemonPaths},
    netns::{VethLab, GUARD_DEV},
};

#[test]
fn a_start_in_a_private_mount_namespace_is_refused_with_what_to_do() {
    let lab = VethLab::new("10.204.1");
    let paths = DaemonPaths::new("e1");
    // `ip netns exec` unshares the mount namespace and remounts /sys: a
    // bpffs mounted there dies with the daemon, and every ban with it.
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.guarded.name])
        .arg(sipshield_bin())
        .args(["run", "--iface", GUARD_DEV, "--socket"])
        .arg(paths.socket())
        .arg("--pin-root")
        .arg(&paths.pin_root)
        .arg("--state-dir")
        .arg(paths.state_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the daemon ran with pins that die with it");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("private mount namespace") && stderr.contains("nsenter --net="),
        "says why and what to do: {stderr}"
    );
    assert!(!stderr.contains("maps shared in"), "{stderr}");
    // Nothing was left attached.
    let out = lab
        .guarded
        .command("ip")
        .args(["-d", "link", "show", GUARD_DEV])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("prog/xdp"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A state file of `n` log bans of 10.66.0.1, 10.66.0.2, ... for an hour.
fn state_with_bans(paths: &DaemonPaths, n: u32) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let bans: Vec<serde_json::Value> = (1..=n)
        .map(|i| {
            serde_json::json!({
                "target": format!("10.66.0.{i}"),
                "created": now - 10,
                "expires": now + 3600,
                "class": "sip-auth",
                "origin": "log",
                "offence_number": 1,
                "reason": "5 sip-auth offences within 10m",
            })
        })
        .collect();
    std::fs::create_dir_all(paths.state_dir()).unwrap();
    std::fs::write(
        paths.state_dir().join("state.json"),
        serde_json::json!({"version": 1, "saved_at": now, "bans": bans}).to_string(),
    )
    .unwrap();
}

fn bans_json(lab: &VethLab, paths: &DaemonPaths) -> Vec<serde_json::Value> {
    let out = cli(&lab.guarded, paths, &["bans", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_full_ban_table_does_not_stop_the_start_and_waiting_bans_enter_when_room_frees() {
    let lab = VethLab::new("10.204.2");
    let paths = DaemonPaths::new("e2");
    // 16 exact bans per family, one kept for operators: 15 log bans fit.
    let config = paths.log("sipshield.toml");
    std::fs::write(&config, "[xdp]\nmax_bans = 16\n").unwrap();
    state_with_bans(&paths, 20);
    let config_s = config.to_str().unwrap().to_string();
    let daemon = Daemon::start(
        &lab.guarded,
        &paths,
        &["--config", &config_s, "--iface", GUARD_DEV],
    );
    let bans = bans_json(&lab, &paths);
    assert_eq!(bans.len(), 20, "every ban is kept: {bans:#?}");
    let waiting: Vec<&serde_json::Value> = bans.iter().filter(|b| b["enforced"] == false).collect();
    assert_eq!(waiting.len(), 5, "{bans:#?}");
    let st = status(&lab.guarded, &paths);
    assert_eq!(st["bans"]["not_enforced"], 5, "{st:#}");
    let text = cli(&lab.guarded, &paths, &["status"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("5 not enforced"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    // Three lifted: three of the waiting bans enter within a few seconds.
    for i in 1..=3 {
        let out = cli(
            &lab.guarded,
            &paths,
            &["bans", "del", &format!("10.66.0.{i}")],
        );
        assert!(out.status.success());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = bans_json(&lab, &paths)
            .iter()
            .filter(|b| b["enforced"] == false)
            .count();
        if left == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} still waiting: {}",
            daemon_log(&paths)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    daemon.stop_and_detach(&lab.guarded, &paths);
}

#[test]
fn a_kernel_ban_made_while_the_daemon_was_down_counts_once() {
    let lab = VethLab::new("10.204.3");
    let flooder = lab.add_sender(66);
    let paths = DaemonPaths::new("e3");
    let config = paths.log("sipshield.toml");
    std::fs::write(
        &config,
        "[xdp]\nregister_per_second = 1\nregister_burst = 2\nregister_flood_per_second = 1\nregister_flood_burst = 2\n[allow]\nssh_sessions = false\n",
    )
    .unwrap();
    let config_s = config.to_str().unwrap().to_string();
    let args = ["--config", config_s.as_str(), "--iface", GUARD_DEV];
    let daemon = Daemon::start(&lab.guarded, &paths, &args);
    daemon.stop();

    // The pinned program bans the flooder on its own, nobody listening.
    let tx = lab.sender(&flooder);
    let register = b"REGISTER sip:pbx SIP/2.0\r\nVia: SIP/2.0/UDP x\r\n\r\n";
    for _ in 0..20 {
        tx.send_to(register, format!("{}:5060", lab.guarded_addr()))
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));

    // The restarted daemon adopts that ban and then reads its event off
    // the ring buffer: one ban, the source's first.
    let daemon = Daemon::start(&lab.guarded, &paths, &args);
    std::thread::sleep(Duration::from_millis(600));
    let bans = bans_json(&lab, &paths);
    let ours: Vec<&serde_json::Value> = bans
        .iter()
        .filter(|b| b["target"] == flooder.as_str())
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "{bans:#?} {}\n{:#}",
        daemon_log(&paths),
        sipshield_tests::daemon::status(&lab.guarded, &paths)["packets"]
    );
    assert_eq!(
        ours[0]["offence_number"],
        1,
        "counted once: {:#?} {}",
        ours[0],
        daemon_log(&paths)
    );
    assert!(
        !daemon_log(&paths).contains("ban #2"),
        "{}",
        daemon_log(&paths)
    );
    daemon.stop_and_detach(&lab.guarded, &paths);
}

#[test]
fn a_reload_names_the_keys_that_need_a_restart_and_keeps_them_running() {
    let lab = VethLab::new("10.204.4");
    let paths = DaemonPaths::new("e4");
    let config = paths.log("sipshield.toml");
    std::fs::write(&config, "[policy.sip_auth]\nmaxretry = 3\n").unwrap();
    let config_s = config.to_str().unwrap().to_string();
    let daemon = Daemon::start(
        &lab.guarded,
        &paths,
        &["--config", &config_s, "--iface", GUARD_DEV],
    );
    std::fs::write(
        &config,
        "[daemon]\nxdp_mode = \"skb\"\ncontrol_group = \"4242\"\n[xdp]\nmax_bans = 2048\n\
         [policy.sip_auth]\nmaxretry = 4\n",
    )
    .unwrap();
    let out = cli(&lab.guarded, &paths, &["reload"]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for key in ["daemon.xdp_mode", "daemon.control_group", "xdp.max_bans"] {
        assert!(said.contains(key), "{key} named: {said}");
    }
    assert!(
        !said.contains("maxretry"),
        "a live key is just applied: {said}"
    );
    // The socket still admits only root (the group takes a restart).
    let socket = paths.socket();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    daemon.stop_and_detach(&lab.guarded, &paths);
}

#[test]
fn the_state_directory_is_private_and_absurd_state_does_not_stop_the_start() {
    use std::os::unix::fs::PermissionsExt;
    let lab = VethLab::new("10.204.5");
    let paths = DaemonPaths::new("e5");
    // A hand-edited or corrupt-but-parseable state file: times past any
    // clock, counters at their maximum.
    std::fs::create_dir_all(paths.state_dir()).unwrap();
    std::fs::set_permissions(paths.state_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let max = u64::MAX;
    std::fs::write(
        paths.state_dir().join("state.json"),
        format!(
            r#"{{"version":1,"saved_at":{max},"bans":[{{"target":"10.66.0.1","created":{max},"expires":{max},"class":"sip-auth","origin":"log","offence_number":4294967295,"reason":"x"}}],"history":[{{"addr":"10.66.0.2","bans":4294967295,"last_offence":{max},"banned_until":{max}}}]}}"#
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&lab.guarded, &paths, &["--iface", GUARD_DEV]);
    let bans = bans_json(&lab, &paths);
    assert_eq!(bans.len(), 1, "{bans:#?}");
    let mode = std::fs::metadata(paths.state_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o700,
        "bans and sessions are nobody else's business"
    );
    daemon.stop_and_detach(&lab.guarded, &paths);
}

#[test]
fn after_sigkill_at_any_moment_every_ban_enforced_a_second_before_is_kept() {
    use rand::Rng;
    use sipshield_tests::daemon::{append, wrong_password};
    let lab = VethLab::new("10.204.6");
    let paths = DaemonPaths::new("e6");
    let log = paths.log("messages");
    append(&log, &[]);
    let log_s = log.to_str().unwrap().to_string();
    let args = ["--iface", GUARD_DEV, "--asterisk-log", log_s.as_str()];
    let mut daemon = Daemon::start(&lab.guarded, &paths, &args);
    let rx = lab.receiver();
    let mut rng = rand::thread_rng();
    let mut banned: Vec<String> = Vec::new();
    for round in 0..6u8 {
        let attacker = lab.add_sender(100 + round);
        append(
            &log,
            &(0..5)
                .map(|n| wrong_password(&attacker, n))
                .collect::<Vec<_>>(),
        );
        let deadline = Instant::now() + Duration::from_secs(2);
        while lab.arrives(&attacker, &rx) {
            assert!(
                Instant::now() < deadline,
                "not banned: {}",
                daemon_log(&paths)
            );
        }
        banned.push(attacker);
        std::thread::sleep(Duration::from_millis(1100));
        // More going on at the moment of the crash: half an offence window
        // of someone else, at a random point of the writer's cycle.
        let bystander = format!("{}.{}", lab.prefix, 200 + round);
        append(
            &log,
            &[wrong_password(&bystander, 0), wrong_password(&bystander, 1)],
        );
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..600)));
        daemon.crash();
        if round == 5 {
            // A reboot: no pins, everything from the database.
            let out = cli(&lab.guarded, &paths, &["detach", "--purge"]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        daemon = Daemon::start(&lab.guarded, &paths, &args);
        let text = daemon_log(&paths);
        assert!(
            !text.contains("moved aside") && !text.contains("corrupt"),
            "round {round}: {text}"
        );
        let bans = bans_json(&lab, &paths);
        for ip in &banned {
            let b = bans
                .iter()
                .find(|b| b["target"] == ip.as_str())
                .unwrap_or_else(|| panic!("round {round}: {ip} lost: {bans:#?}"));
            assert_eq!(b["class"], "sip-auth", "{b:#}");
            assert_eq!(b["origin"], "log", "{b:#}");
            assert_eq!(b["offence_number"], 1, "{b:#}");
        }
        for ip in &banned {
            assert!(!lab.arrives(ip, &rx), "round {round}: {ip} enforced again");
        }
    }
    daemon.stop_and_detach(&lab.guarded, &paths);
}

#[test]
fn a_corrupt_database_is_moved_aside_and_the_bans_come_back_from_the_pinned_maps() {
    let lab = VethLab::new("10.204.7");
    let paths = DaemonPaths::new("e7");
    let daemon = Daemon::start(&lab.guarded, &paths, &["--iface", GUARD_DEV]);
    for target in ["10.204.7.66", "10.204.7.128/26"] {
        let out = cli(&lab.guarded, &paths, &["bans", "add", target]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = cli(
        &lab.guarded,
        &paths,
        &["allow", "add", "192.0.2.50", "--note", "ACME trunk"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    daemon.crash();
    // The disk ate it.
    let db = paths.state_dir().join("state.db");
    std::fs::write(&db, b"\0\0\0 not a database any more \0\0\0").unwrap();
    let _ = std::fs::remove_file(paths.state_dir().join("state.db-wal"));
    let daemon = Daemon::start(&lab.guarded, &paths, &["--iface", GUARD_DEV]);
    let log = daemon_log(&paths);
    assert!(log.contains("moved aside"), "reported: {log}");
    let aside = std::fs::read_dir(paths.state_dir())
        .unwrap()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.db.corrupt-")
        });
    assert!(aside, "the evidence is kept");
    let mut targets: Vec<String> = bans_json(&lab, &paths)
        .iter()
        .map(|b| b["target"].as_str().unwrap().to_string())
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        ["10.204.7.128/26", "10.204.7.66"],
        "adopted from the kernel"
    );
    let out = cli(&lab.guarded, &paths, &["allow", "list", "--json"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ACME trunk"),
        "the operator's allowlist survives: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    daemon.stop_and_detach(&lab.guarded, &paths);
}
