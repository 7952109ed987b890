//! What the daemon trusts, end to end in a namespace: an SSH peer is
//! allowlisted only after sshd logged its `Accepted` line, only while its
//! connection lasts plus the grace, and across a daemon restart. Needs root.

use std::{
    io::Read,
    net::{TcpListener, TcpStream},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sipshield_tests::{
    daemon::{append, cli, daemon_log, status, wait_for, Daemon, DaemonPaths},
    netns::{VethLab, GUARD_DEV},
};

/// The tie-break by the kernel's sighting is opt-in.
const TIE_BREAK: &str = "[logs]\ntie_break = true\n";

/// The sshd port the tests listen on in the guarded namespace (no sshd
/// needed: the kernel's connection table is what the daemon reads).
const SSH_PORT: u16 = 22;

/// A listener on the guarded address that accepts and holds connections.
struct FakeSshd {
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl FakeSshd {
    fn start(lab: &VethLab) -> FakeSshd {
        let listener = lab
            .guarded
            .enter(|| TcpListener::bind(format!("{}:{SSH_PORT}", lab.guarded_addr())))
            .expect("listen on 22");
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = held.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                keep.lock().unwrap().push(stream);
            }
        });
        FakeSshd { held }
    }

    /// Closes the server side of every held connection.
    fn hang_up_all(&self) {
        self.held.lock().unwrap().clear();
    }
}

fn config(paths: &DaemonPaths, extra: &str) -> String {
    let path = paths.log("sipshield.toml");
    std::fs::write(
        &path,
        format!("[allow]\nrefresh = \"1s\"\nssh_grace = \"2s\"\nasterisk_trunks = false\n{extra}"),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

/// The arguments of a daemon following an (empty) auth log, with the test
/// config; the log's path and the arguments.
fn ssh_daemon_args(paths: &DaemonPaths) -> (std::path::PathBuf, Vec<String>) {
    ssh_daemon_args_with(paths, "")
}

/// As `ssh_daemon_args`, with `extra` config text.
fn ssh_daemon_args_with(paths: &DaemonPaths, extra: &str) -> (std::path::PathBuf, Vec<String>) {
    let auth = paths.log("auth.log");
    append(&auth, &[]);
    let args = [
        "--config",
        &config(paths, extra),
        "--iface",
        GUARD_DEV,
        "--auth-log",
        auth.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    (auth, args)
}

fn start(lab: &VethLab, paths: &DaemonPaths, args: &[String]) -> Daemon {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Daemon::start(&lab.guarded, paths, &args)
}

/// The automatic SSH-session entries in `status --json`.
fn ssh_entries(st: &serde_json::Value) -> Vec<(String, String)> {
    st["allowlist"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["source"] == "ssh-session")
        .map(|e| {
            (
                e["net"].as_str().unwrap_or("").to_string(),
                e["note"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn failed_password(ip: &str, port: u16, n: usize) -> String {
    format!(
        "Nov 25 10:00:{:02} pbx sshd[{}]: Failed password for root from {ip} port {port} ssh2",
        n % 60,
        4000 + n
    )
}

fn accepted(ip: &str, port: u16) -> String {
    format!(
        "Nov 25 10:01:00 pbx sshd[5001]: Accepted publickey for admin from {ip} port {port} ssh2: ED25519 SHA256:q8Xz0examplekey"
    )
}

#[test]
fn an_unauthenticated_ssh_connection_is_never_allowlisted_and_its_source_is_banned() {
    let lab = VethLab::new("10.203.1");
    let attacker = lab.add_sender(66);
    let paths = DaemonPaths::new("t1");
    let (auth, args) = ssh_daemon_args(&paths);
    let sshd = FakeSshd::start(&lab);
    let daemon = start(&lab, &paths, &args);
    let rx = lab.receiver();

    // `nc pbx 22`, held for several refresh periods, never logging in.
    let mut conn = lab.tcp_connect(&attacker, SSH_PORT);
    let port = conn.local_addr().unwrap().port();
    std::thread::sleep(Duration::from_millis(3500));
    let st = status(&lab.guarded, &paths);
    assert!(
        ssh_entries(&st).is_empty(),
        "an open TCP connection is no proof: {st:#}"
    );

    // Its password guesses get it banned like anyone else.
    append(
        &auth,
        &(0..5)
            .map(|n| failed_password(&attacker, port, n))
            .collect::<Vec<_>>(),
    );
    assert!(
        wait_for(Duration::from_secs(2), || !lab.arrives(&attacker, &rx)),
        "the guesser is banned: {}",
        daemon_log(&paths)
    );
    let mut buf = [0u8; 1];
    conn.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let _ = conn.read(&mut buf);
    drop(sshd);
    daemon.stop_and_detach(&lab.guarded, &paths);
}

#[test]
fn an_authenticated_ssh_session_is_allowlisted_while_it_lasts_and_across_a_restart() {
    let lab = VethLab::new("10.203.2");
    let operator = lab.add_sender(70);
    let paths = DaemonPaths::new("t2");
    let (auth, args) = ssh_daemon_args(&paths);
    let sshd = FakeSshd::start(&lab);
    let daemon = start(&lab, &paths, &args);

    let conn = lab.tcp_connect(&operator, SSH_PORT);
    let port = conn.local_addr().unwrap().port();
    append(&auth, &[accepted(&operator, port)]);
    let mut entries = Vec::new();
    assert!(
        wait_for(Duration::from_secs(2), || {
            entries = ssh_entries(&status(&lab.guarded, &paths));
            !entries.is_empty()
        }),
        "the Accepted line allowlists the peer: {}",
        daemon_log(&paths)
    );
    assert_eq!(entries[0].0, format!("{operator}/32"));
    assert!(
        entries[0].1.contains("Accepted publickey") && entries[0].1.contains(&port.to_string()),
        "status says where the entry came from: {entries:?}"
    );

    // Typos of the operator are would-bans.
    append(
        &auth,
        &(0..6)
            .map(|n| failed_password(&operator, port, n))
            .collect::<Vec<_>>(),
    );
    std::thread::sleep(Duration::from_millis(800));
    let rx = lab.receiver();
    assert!(lab.arrives(&operator, &rx), "{}", daemon_log(&paths));

    // The daemon restarts while the session is open: it still knows it,
    // even though the Accepted line is not read again.
    // (Saves are at most a second apart: the session is in the state file.)
    std::thread::sleep(Duration::from_millis(1500));
    daemon.crash();
    let daemon = start(&lab, &paths, &args);
    std::thread::sleep(Duration::from_millis(2500));
    let st = status(&lab.guarded, &paths);
    assert_eq!(
        ssh_entries(&st).len(),
        1,
        "an open session survives a restart: {st:#} {}",
        daemon_log(&paths)
    );

    // The session ends: the entry goes after the grace.
    drop(conn);
    sshd.hang_up_all();
    assert!(
        wait_for(Duration::from_secs(6), || ssh_entries(&status(
            &lab.guarded,
            &paths
        ))
        .is_empty()),
        "an ended session leaves the allowlist after the grace: {}",
        daemon_log(&paths)
    );
    daemon.stop_and_detach(&lab.guarded, &paths);
}

#[test]
fn an_accepted_line_without_its_connection_lasts_only_the_grace() {
    let lab = VethLab::new("10.203.3");
    let ghost = lab.add_sender(71);
    let paths = DaemonPaths::new("t3");
    let (auth, args) = ssh_daemon_args(&paths);
    let daemon = start(&lab, &paths, &args);
    // A session that was over before the line was read (or a line replayed
    // from an old log).
    append(&auth, &[accepted(&ghost, 40123)]);
    assert!(wait_for(Duration::from_secs(2), || !ssh_entries(&status(
        &lab.guarded,
        &paths
    ))
    .is_empty()));
    assert!(
        wait_for(Duration::from_secs(5), || ssh_entries(&status(
            &lab.guarded,
            &paths
        ))
        .is_empty()),
        "no connection, so gone after the grace: {}",
        daemon_log(&paths)
    );
    daemon.stop_and_detach(&lab.guarded, &paths);
}

/// Runs `sipshield bans list --json` against `socket` as uid/gid 65534
/// with `groups` as supplementary groups; its output.
fn bans_list_as_nobody(socket: &std::path::Path, gid: u32, groups: &str) -> std::process::Output {
    std::process::Command::new("setpriv")
        .args(["--reuid=65534", &format!("--regid={gid}")])
        .args(if groups.is_empty() {
            vec!["--clear-groups".to_string()]
        } else {
            vec![format!("--groups={groups}")]
        })
        .arg(sipshield_tests::daemon::sipshield_bin())
        .args(["bans", "list", "--json", "--socket"])
        .arg(socket)
        .output()
        .expect("setpriv")
}

#[test]
fn the_control_group_admits_its_members_through_supplementary_groups() {
    use std::os::unix::fs::PermissionsExt;
    let lab = VethLab::new("10.203.4");
    let paths = DaemonPaths::new("t4");
    let config_s = config(&paths, "[daemon]\ncontrol_group = \"4242\"\n");
    // A socket directory others may traverse (the temp dir is 0700).
    let dir = paths.dir.path().join("run");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(paths.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.join("ctl.sock");
    let daemon = Daemon::start_with_socket(
        &lab.guarded,
        &paths,
        &socket,
        &["--config", &config_s, "--iface", GUARD_DEV],
    );
    // The operator's account has the group as a supplementary group, as
    // `adduser ops sipshield` makes it.
    let out = bans_list_as_nobody(&socket, 65534, "4242");
    assert!(
        out.status.success(),
        "a supplementary member is admitted: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bans_list_as_nobody(&socket, 4242, "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bans_list_as_nobody(&socket, 65534, "4243");
    assert!(!out.status.success(), "a non-member is refused");
    daemon.stop_and_detach(&lab.guarded, &paths);
}

#[test]
fn a_silent_control_client_is_timed_out_and_a_flood_of_them_blocks_nobody() {
    use std::io::Write;
    let lab = VethLab::new("10.203.5");
    let paths = DaemonPaths::new("t5");
    let config_s = config(&paths, "");
    let daemon = Daemon::start(
        &lab.guarded,
        &paths,
        &["--config", &config_s, "--iface", GUARD_DEV],
    );
    // Connects and says nothing.
    let mut silent = std::os::unix::net::UnixStream::connect(paths.socket()).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = silent.read_to_end(&mut buf);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(12),
        "the daemon hangs up on a silent client ({waited:?})"
    );
    // Hundreds of silent clients (more than the daemon serves at once) do
    // not keep the operator out.
    let mut held = Vec::new();
    for _ in 0..300 {
        if let Ok(s) = std::os::unix::net::UnixStream::connect(paths.socket()) {
            held.push(s);
        }
    }
    let start = Instant::now();
    let st = status(&lab.guarded, &paths);
    assert_eq!(st["daemon"]["running"], true, "{st:#}");
    assert!(start.elapsed() < Duration::from_secs(12));
    let _ = silent.write_all(b"x");
    drop(held);
    daemon.stop_and_detach(&lab.guarded, &paths);
}

/// CPU time (user + system, clock ticks) the process has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 of stat(5), counted from the state (field 3).
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn out_of_descriptors_the_control_socket_backs_off_instead_of_spinning() {
    let lab = VethLab::new("10.203.6");
    let paths = DaemonPaths::new("t6");
    let config_s = config(&paths, "");
    let daemon = Daemon::start_custom(
        &lab.guarded,
        &paths,
        &paths.socket(),
        &["prlimit", "--nofile=160:160"],
        &["--config", &config_s, "--iface", GUARD_DEV],
    );
    let pid = daemon.child.id();
    // Hold enough connections that accept() fails with EMFILE.
    let mut held = Vec::new();
    for _ in 0..400 {
        match std::os::unix::net::UnixStream::connect(paths.socket()) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    // 100 ticks a second: a spinning accept loop uses about 200.
    assert!(
        used < 40,
        "{used} ticks of CPU in 2 s while out of descriptors: {}",
        daemon_log(&paths)
    );
    drop(held);
    // Descriptors back: the operator gets in again.
    assert!(wait_for(Duration::from_secs(8), || cli(
        &lab.guarded,
        &paths,
        &["bans", "list", "--json"]
    )
    .status
    .success()));
    daemon.stop_and_detach(&lab.guarded, &paths);
}

/// The arguments of a daemon following an (empty) Asterisk security log,
/// with the test config; the log's path and the arguments.
fn security_daemon_args(paths: &DaemonPaths, extra: &str) -> (std::path::PathBuf, Vec<String>) {
    let security = paths.log("security");
    append(&security, &[]);
    let args = [
        "--config",
        &config(paths, extra),
        "--iface",
        GUARD_DEV,
        "--asterisk-log",
        security.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    (security, args)
}

/// res_security_log's SuccessfulAuth for a phone (pjsip, Asterisk 20):
/// field order from `main/security_events.c`.
fn successful_auth(ip: &str) -> String {
    format!(
        "[2026-11-25 10:02:00] SECURITY[1301] res_security_log.c: SecurityEvent=\"SuccessfulAuth\",EventTV=\"2026-11-25T10:02:00.001+0000\",Severity=\"Informational\",Service=\"PJSIP\",EventVersion=\"1\",AccountID=\"100\",SessionID=\"c1@phone\",LocalAddress=\"IPV4/UDP/10.203.9.1/5060\",RemoteAddress=\"IPV4/UDP/{ip}/5060\",UsingPassword=\"1\""
    )
}

fn invalid_password(ip: &str, n: usize) -> String {
    format!(
        "[2026-11-25 10:03:{:02}] SECURITY[1301] res_security_log.c: SecurityEvent=\"InvalidPassword\",EventTV=\"2026-11-25T10:03:00.001+0000\",Severity=\"Error\",Service=\"PJSIP\",EventVersion=\"2\",AccountID=\"100\",SessionID=\"c{n}@phone\",LocalAddress=\"IPV4/UDP/10.203.9.1/5060\",RemoteAddress=\"IPV4/UDP/{ip}/5060\",Challenge=\"n\",ReceivedChallenge=\"n\",ReceivedHash=\"x\"",
        n % 60
    )
}

fn known_good(st: &serde_json::Value) -> Vec<String> {
    st["known_good_sources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["addr"].as_str().map(String::from))
        .collect()
}

#[test]
fn a_phone_that_authenticated_is_known_good_in_the_kernel_and_across_a_restart() {
    let lab = VethLab::new("10.203.9");
    let phone = lab.add_sender(80);
    let stranger = lab.add_sender(81);
    let paths = DaemonPaths::new("t9");
    let (security, args) = security_daemon_args(&paths, "");
    let daemon = start(&lab, &paths, &args);
    append(&security, &[successful_auth(&phone)]);
    assert!(
        wait_for(Duration::from_secs(3), || known_good(&status(
            &lab.guarded,
            &paths
        )) == [phone.clone()]),
        "listed: {:#}",
        status(&lab.guarded, &paths)
    );
    assert_eq!(
        status(&lab.guarded, &paths)["known_good"],
        1,
        "in the kernel's map"
    );

    // Its password went stale: five failures ban the stranger, not the phone.
    let mut lines: Vec<String> = (0..5).map(|n| invalid_password(&phone, n)).collect();
    lines.extend((0..5).map(|n| invalid_password(&stranger, n)));
    append(&security, &lines);
    let rx = lab.receiver();
    assert!(
        wait_for(Duration::from_secs(3), || !lab.arrives(&stranger, &rx)),
        "the stranger is banned: {}",
        daemon_log(&paths)
    );
    assert!(lab.arrives(&phone, &rx), "the phone is not");

    // A restart (a crash) keeps it known good, in policy and kernel.
    daemon.crash();
    let _ = cli(&lab.guarded, &paths, &["detach", "--purge"]);
    let daemon = start(&lab, &paths, &args);
    let st = status(&lab.guarded, &paths);
    assert_eq!(known_good(&st), std::slice::from_ref(&phone), "{st:#}");
    assert_eq!(st["known_good"], 1, "{st:#}");
    daemon.stop_and_detach(&lab.guarded, &paths);
}

/// InvalidPassword with two readings (a fake middle in SessionID, the real
/// one perhaps swallowed by ReceivedHash): `fake` or `real` sent it.
fn two_readings(fake: &str, real: &str, n: usize) -> String {
    format!(
        "[2026-11-25 10:04:{:02}] SECURITY[1301] res_security_log.c: SecurityEvent=\"InvalidPassword\",EventTV=\"2026-11-25T10:04:00.001+0000\",Severity=\"Error\",Service=\"PJSIP\",EventVersion=\"2\",AccountID=\"100\",SessionID=\"s\",LocalAddress=\"IPV4/UDP/10.203.8.1/5060\",RemoteAddress=\"IPV4/UDP/{fake}/5060\",ReceivedHash=\"x\",SessionID=\"c{n}\",LocalAddress=\"IPV4/UDP/10.203.8.1/5060\",RemoteAddress=\"IPV4/UDP/{real}/5060\"",
        n % 60
    )
}

#[test]
fn a_line_with_two_readings_charges_the_one_the_kernel_saw_send() {
    let lab = VethLab::new("10.203.8");
    let guesser = lab.add_sender(82);
    let framed = lab.add_sender(83);
    let paths = DaemonPaths::new("t8");
    let (security, args) = security_daemon_args(&paths, TIE_BREAK);
    let daemon = start(&lab, &paths, &args);
    let rx = lab.receiver();
    // The guesser's requests reached the PBX (the kernel's table takes a
    // source at its second message on one CPU: the first-sight filter is
    // per CPU); the address it wrote never sent anything.
    assert!(
        wait_for(Duration::from_secs(3), || {
            lab.arrives(&guesser, &rx);
            status(&lab.guarded, &paths)["top_sources"]
                .as_array()
                .is_some_and(|t| t.iter().any(|s| s["ip"] == guesser.as_str()))
        }),
        "the kernel counts the guesser"
    );
    append(
        &security,
        &(0..5)
            .map(|n| two_readings(&framed, &guesser, n))
            .collect::<Vec<_>>(),
    );
    assert!(
        wait_for(Duration::from_secs(3), || !lab.arrives(&guesser, &rx)),
        "the guesser is banned: {:#}",
        status(&lab.guarded, &paths)
    );
    assert!(lab.arrives(&framed, &rx), "the address it named is not");
    let st = status(&lab.guarded, &paths);
    let log = &st["logs"][0];
    assert_eq!(log["charged_by_sighting"], 5, "{st:#}");
    daemon.stop_and_detach(&lab.guarded, &paths);
}

#[test]
fn by_default_a_line_with_two_readings_charges_nobody_even_a_seen_sender() {
    // The sighting is what packets claim: a forger with many real source
    // addresses could choose it. Off unless the operator turns it on.
    let lab = VethLab::new("10.203.6");
    let guesser = lab.add_sender(86);
    let framed = lab.add_sender(87);
    let paths = DaemonPaths::new("t6");
    let (security, args) = security_daemon_args(&paths, "");
    let daemon = start(&lab, &paths, &args);
    let rx = lab.receiver();
    for who in [&guesser, &framed] {
        assert!(wait_for(Duration::from_secs(3), || {
            lab.arrives(who, &rx);
            status(&lab.guarded, &paths)["top_sources"]
                .as_array()
                .is_some_and(|t| t.iter().any(|s| s["ip"] == who.as_str()))
        }));
    }
    append(
        &security,
        &(0..5)
            .map(|n| two_readings(&framed, &guesser, n))
            .collect::<Vec<_>>(),
    );
    assert!(
        wait_for(Duration::from_secs(3), || status(&lab.guarded, &paths)
            ["logs"][0]["charged_nobody"]
            == 5),
        "{:#}",
        status(&lab.guarded, &paths)
    );
    assert!(lab.arrives(&guesser, &rx) && lab.arrives(&framed, &rx));
    daemon.stop_and_detach(&lab.guarded, &paths);
}

#[test]
fn an_sshd_line_with_two_readings_charges_the_one_the_kernel_saw_connect() {
    let lab = VethLab::new("10.203.7");
    let guesser = lab.add_sender(84);
    let framed = lab.add_sender(85);
    let paths = DaemonPaths::new("t7");
    let (auth, args) = ssh_daemon_args_with(&paths, TIE_BREAK);
    let _sshd = FakeSshd::start(&lab);
    let daemon = start(&lab, &paths, &args);
    // The guesser connects to sshd (its SYNs are noted: port 22 is a
    // sighting port by default); the address it names in its user name
    // never connected.
    let mut conns = Vec::new();
    assert!(
        wait_for(Duration::from_secs(3), || {
            conns.push(lab.tcp_connect(&guesser, SSH_PORT));
            status(&lab.guarded, &paths)["top_sources"]
                .as_array()
                .is_some_and(|t| t.iter().any(|s| s["ip"] == guesser.as_str()))
        }),
        "the kernel saw the guesser connect"
    );
    // A key method's info after a fake tail in the user name: two readings.
    let lines: Vec<String> = (0..5)
        .map(|n| {
            format!(
                "Nov 25 10:05:{n:02} pbx sshd[{}]: Failed publickey for x from {framed} port 1 ssh2: RSA SHA256:y from {guesser} port {} ssh2: RSA SHA256:z",
                6000 + n,
                40000 + n
            )
        })
        .collect();
    append(&auth, &lines);
    let rx = lab.receiver();
    assert!(
        wait_for(Duration::from_secs(3), || !lab.arrives(&guesser, &rx)),
        "the guesser is banned: {}",
        daemon_log(&paths)
    );
    assert!(lab.arrives(&framed, &rx), "the address it named is not");
    drop(conns);
    daemon.stop_and_detach(&lab.guarded, &paths);
}
