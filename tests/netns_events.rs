//! Ban events in a namespace: `sipshield events --follow` shows a ban as it
//! is made and its lift, and the operator's hook runs with the ban's
//! address, class, duration and reason as arguments. Needs root.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use sipshield_tests::{
    daemon::{append, cli, daemon_log, sipshield_bin, wrong_password, Daemon, DaemonPaths},
    netns::{VethLab, GUARD_DEV},
};

#[test]
fn events_follow_shows_a_ban_and_its_lift_and_the_hook_runs() {
    let lab = VethLab::new("10.206.1");
    let paths = DaemonPaths::new("e1");
    let messages = paths.log("messages");
    append(&messages, &[]);
    let ran = paths.log("hook-ran");
    let hook = paths.log("on-ban.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nprintf '%s|%s|%s|%s|%s\\n' \"$SIPSHIELD_ACTION\" \"$1\" \"$2\" \"$3\" \"$4\" >> {}\n",
            ran.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = paths.log("sipshield.toml");
    std::fs::write(
        &config,
        format!(
            "[hooks]\non_ban = \"{}\"\n[allow]\nasterisk_trunks = false\n",
            hook.display()
        ),
    )
    .unwrap();
    let daemon = Daemon::start(
        &lab.guarded,
        &paths,
        &[
            "--config",
            config.to_str().unwrap(),
            "--iface",
            GUARD_DEV,
            "--asterisk-log",
            messages.to_str().unwrap(),
            "--auth-log",
            paths.log("auth.log").to_str().unwrap(),
        ],
    );

    // A follower, as another tool would run it.
    let mut follower = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", lab.guarded.name))
        .arg(sipshield_bin())
        .args(["events", "--follow", "--json", "--socket"])
        .arg(paths.socket())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sipshield events --follow");
    let (tx, rx) = mpsc::channel::<serde_json::Value>();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send(v).is_err() {
                    return;
                }
            }
        }
    });
    // It idles longer than the control socket's request and reply
    // timeouts (5 s, 10 s) before the ban: a follower is never cut.
    std::thread::sleep(Duration::from_secs(11));
    assert!(
        follower.try_wait().unwrap().is_none(),
        "the follower ended while idle"
    );
    let guesser = "198.51.100.88";
    append(
        &messages,
        &(0..5)
            .map(|n| wrong_password(guesser, n))
            .collect::<Vec<_>>(),
    );
    let next = |action: &str| -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(v) if v["action"] == action && v["target"] == guesser => return v,
                Ok(_) => continue,
                Err(_) => panic!("no {action} event for {guesser}: {}", daemon_log(&paths)),
            }
        }
    };
    let ban = next("ban");
    assert_eq!(ban["class"], "sip-auth");
    assert_eq!(ban["origin"], "log");
    assert_eq!(ban["duration_s"], 600);

    // The hook ran once, without a shell, with the ban's facts.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = String::new();
    while Instant::now() < deadline {
        got = std::fs::read_to_string(&ran).unwrap_or_default();
        if !got.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let fields: Vec<&str> = got.trim_end().split('|').collect();
    assert_eq!(fields[..4], ["ban", guesser, "sip-auth", "600"], "{got}");
    assert!(fields[4].contains("sip-auth offences"), "{got}");

    // The lift is an event too; the daemon's log has the structured line.
    let out = cli(&lab.guarded, &paths, &["bans", "del", guesser]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    next("unban");
    assert!(
        daemon_log(&paths).contains(&format!(
            "sipshield-event action=ban target={guesser} class=sip-auth origin=log duration=600"
        )),
        "{}",
        daemon_log(&paths)
    );
    // Without --follow: the recent ones, then the command ends.
    let recent = cli(&lab.guarded, &paths, &["events"]);
    assert!(recent.status.success());
    let text = String::from_utf8_lossy(&recent.stdout);
    assert!(text.contains("ban") && text.contains(guesser), "{text}");

    let _ = follower.kill();
    let _ = follower.wait();
    daemon.stop_and_detach(&lab.guarded, &paths);
}
