//! sipshield as a CrowdSec bouncer against a real Local API (Debian's
//! `crowdsec`, offline, in a test namespace of its own config, database
//! and port). Two PBX namespaces, each with its own sipshield (pins, socket,
//! state), pull from one LAPI: what `cscli` decides reaches both kernels,
//! deletions lift only what CrowdSec added, the allowlist wins, and a LAPI
//! outage keeps what is in force and resyncs when it returns. Needs root.

use std::time::Duration;

use sipshield_tests::{
    crowdsec::Lapi,
    daemon::{
        append, ban_targets, cli, daemon_log, start_configured, status, wait_for, wrong_password,
        Daemon, DaemonPaths,
    },
    netns::{drain, Netns, VethLab, GUARD_DEV},
};

const LAPI_PORT: u16 = 18300;

/// A second PBX: `sgb` (`{subnet}.1`) to `sob` (.2) in `lab`'s outside.
fn second_pbx(lab: &VethLab, subnet: &str) -> Netns {
    lab.add_namespace("b", "sgb", "sob", subnet)
}

/// A second PBX: `sgb` (`{subnet}.1`) to `sob` (.2) in `lab`'s outside, with
/// a route back to the lab's first subnet (its senders).
fn routed_second_pbx(lab: &VethLab, subnet: &str) -> Netns {
    let ns = second_pbx(lab, subnet);
    ns.ip(&[
        "route",
        "add",
        &format!("{}.0/24", lab.prefix),
        "via",
        &format!("{subnet}.2"),
    ]);
    ns
}

/// Sends one SIP OPTIONS from `from` (an outside address) to `to:5060` in
/// `ns`; true if it reached a socket there (PBX B's kernel let it pass).
fn arrives_at(lab: &VethLab, ns: &Netns, to: &str, from: &str) -> bool {
    let rx = ns
        .enter(|| std::net::UdpSocket::bind(format!("{to}:5060")))
        .expect("bind on B");
    rx.set_read_timeout(Some(Duration::from_millis(150)))
        .unwrap();
    lab.sender(from)
        .send_to(b"OPTIONS sip:100@pbx SIP/2.0\r\n\r\n", format!("{to}:5060"))
        .expect("send");
    drain(&rx)
        .iter()
        .any(|(_, peer)| peer.ip().to_string() == from)
}

/// Both daemons' logs and LAPI's, for a failed assertion.
fn logs(a: &DaemonPaths, b: &DaemonPaths, lapi: &Lapi) -> String {
    format!(
        "A:\n{}\nB:\n{}\nLAPI:\n{}",
        daemon_log(a),
        daemon_log(b),
        lapi.log()
    )
}

/// A sipshield on `iface` of `ns` that pulls from LAPI at `lapi_addr`.
fn pbx(ns: &Netns, paths: &DaemonPaths, iface: &str, lapi_addr: &str, key: &str) -> Daemon {
    start_configured(ns, paths, iface, &pbx_config(lapi_addr, key, ""))
}

/// The config of a PBX that pulls from LAPI at `lapi_addr`, plus `extra`.
fn pbx_config(lapi_addr: &str, key: &str, extra: &str) -> String {
    format!(
        "[metrics]\nlisten = \"\"\n[allow]\nasterisk_trunks = false\n\
         [crowdsec]\napi_url = \"http://{lapi_addr}:{LAPI_PORT}/\"\napi_key = \"{key}\"\nupdate_frequency = \"1s\"\n{extra}"
    )
}

/// The ban of `target` as `bans list --json` shows it (its origin).
fn origin_of(ns: &Netns, paths: &DaemonPaths, target: &str) -> Option<String> {
    let out = cli(ns, paths, &["bans", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v.as_array()?
        .iter()
        .find(|b| b["target"] == target)
        .and_then(|b| b["origin"].as_str().map(String::from))
}

fn banned_on_both(a: (&Netns, &DaemonPaths), b: (&Netns, &DaemonPaths), target: &str) -> bool {
    ban_targets(a.0, a.1).iter().any(|t| t == target)
        && ban_targets(b.0, b.1).iter().any(|t| t == target)
}

fn lifted_on_both(a: (&Netns, &DaemonPaths), b: (&Netns, &DaemonPaths), target: &str) -> bool {
    !ban_targets(a.0, a.1).iter().any(|t| t == target)
        && !ban_targets(b.0, b.1).iter().any(|t| t == target)
}

#[test]
fn cscli_decisions_reach_both_pbx_kernels_and_an_outage_resyncs() {
    let lab = VethLab::new("10.206.1");
    let pbx_b = routed_second_pbx(&lab, "10.206.2");
    let mut lapi = Lapi::start(&lab.outside, LAPI_PORT);
    let key_a = lapi.add_bouncer("pbx-a");
    let key_b = lapi.add_bouncer("pbx-b");
    let paths_a = DaemonPaths::new("csa");
    let paths_b = DaemonPaths::new("csb");
    let daemon_a = pbx(&lab.guarded, &paths_a, GUARD_DEV, "10.206.1.2", &key_a);
    let mut daemon_b = pbx(&pbx_b, &paths_b, "sgb", "10.206.2.2", &key_b);
    let a = (&lab.guarded, &paths_a);
    let b = (&pbx_b, &paths_b);

    // An address decision: enforced by both kernels within 15 s.
    let bad = lab.add_sender(77);
    let rx = lab.receiver();
    assert!(lab.arrives(&bad, &rx), "before any decision");
    assert!(arrives_at(&lab, &pbx_b, "10.206.2.1", &bad), "B, before");
    lapi.cscli_ok(&[
        "decisions",
        "add",
        "--ip",
        &bad,
        "--duration",
        "1h",
        "--reason",
        "test scanner",
    ]);
    assert!(
        wait_for(Duration::from_secs(15), || banned_on_both(a, b, &bad)),
        "{}",
        logs(&paths_a, &paths_b, &lapi)
    );
    assert_eq!(origin_of(a.0, a.1, &bad).as_deref(), Some("crowdsec"));
    assert!(!lab.arrives(&bad, &rx), "dropped by PBX A's kernel");
    assert!(
        !arrives_at(&lab, &pbx_b, "10.206.2.1", &bad),
        "dropped by PBX B's kernel"
    );

    // A range decision stays a range.
    lapi.cscli_ok(&[
        "decisions",
        "add",
        "--range",
        "198.51.100.0/24",
        "--duration",
        "2h",
    ]);
    assert!(
        wait_for(Duration::from_secs(15), || banned_on_both(
            a,
            b,
            "198.51.100.0/24"
        )),
        "{}",
        logs(&paths_a, &paths_b, &lapi)
    );
    // Both kernels drop a source inside it.
    lab.outside
        .ip(&["addr", "add", "198.51.100.9/32", "dev", "so0"]);
    assert!(!lab.arrives("198.51.100.9", &rx), "the range, on A");
    assert!(
        !arrives_at(&lab, &pbx_b, "10.206.2.1", "198.51.100.9"),
        "the range, on B"
    );
    lab.outside
        .ip(&["addr", "add", "198.51.101.9/32", "dev", "so0"]);
    assert!(
        arrives_at(&lab, &pbx_b, "10.206.2.1", "198.51.101.9"),
        "outside the range, on B"
    );

    // A CrowdSec deletion never lifts a ban sipshield made itself.
    let own_sender = lab.add_sender(88);
    let own = own_sender.as_str();
    let out = cli(a.0, a.1, &["bans", "add", own, "--for", "1h"]);
    assert!(out.status.success(), "{out:?}");
    lapi.cscli_ok(&["decisions", "add", "--ip", own, "--duration", "1h"]);
    assert!(wait_for(Duration::from_secs(15), || banned_on_both(
        a, b, own
    )));
    // Lifting it locally is refused where CrowdSec alone bans it.
    let out = cli(b.0, b.1, &["bans", "del", own]);
    assert!(!out.status.success(), "B's ban is CrowdSec's: {out:?}");
    lapi.cscli_ok(&["decisions", "delete", "--ip", own]);
    assert!(
        wait_for(Duration::from_secs(15), || !ban_targets(b.0, b.1)
            .iter()
            .any(|t| t == own)),
        "{}",
        logs(&paths_a, &paths_b, &lapi)
    );
    assert_eq!(origin_of(a.0, a.1, own).as_deref(), Some("manual"));
    assert!(!lab.arrives(own, &rx), "A's kernel still drops its own ban");

    // Deleting the address decision lifts it on both.
    lapi.cscli_ok(&["decisions", "delete", "--ip", &bad]);
    assert!(
        wait_for(Duration::from_secs(15), || lifted_on_both(a, b, &bad)),
        "{}",
        logs(&paths_a, &paths_b, &lapi)
    );
    assert!(lab.arrives(&bad, &rx), "passes again");
    assert!(
        arrives_at(&lab, &pbx_b, "10.206.2.1", &bad),
        "passes B again"
    );
    // CrowdSec's ban never moved it up A's ladder: its first log ban is
    // the first rung (sip-auth: 10 minutes).
    append(
        &paths_a.log("messages"),
        &(0..5).map(|n| wrong_password(&bad, n)).collect::<Vec<_>>(),
    );
    let first_rung = || {
        let out = cli(a.0, a.1, &["events", "--json"]);
        String::from_utf8_lossy(&out.stdout).lines().any(|l| {
            serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| {
                v["action"] == "ban"
                    && v["target"] == bad.as_str()
                    && v["origin"] == "log"
                    && v["duration_s"] == 600
            })
        })
    };
    assert!(
        wait_for(Duration::from_secs(5), first_rung),
        "{}",
        String::from_utf8_lossy(&cli(a.0, a.1, &["events", "--json"]).stdout)
    );
    let out = cli(a.0, a.1, &["bans", "del", &bad]);
    assert!(out.status.success(), "{out:?}");

    // The allowlist wins over CrowdSec, and says so.
    let trusted = "192.0.2.50";
    let out = cli(a.0, a.1, &["allow", "add", trusted]);
    assert!(out.status.success(), "{out:?}");
    lapi.cscli_ok(&["decisions", "add", "--ip", trusted, "--duration", "1h"]);
    assert!(wait_for(Duration::from_secs(15), || ban_targets(b.0, b.1)
        .iter()
        .any(|t| t == trusted)));
    assert!(wait_for(Duration::from_secs(5), || {
        status(a.0, a.1)["crowdsec"]["allowlisted"].as_u64() >= Some(1)
    }));
    assert!(!ban_targets(a.0, a.1).iter().any(|t| t == trusted));
    let st = status(a.0, a.1);
    assert_eq!(st["bans"]["fleet_by_source"]["crowdsec"], 1, "{st}");

    // A short decision: each keeps its own duration, in the kernel too.
    let short = lab.add_sender(55);
    lapi.cscli_ok(&["decisions", "add", "--ip", &short, "--duration", "8s"]);
    assert!(
        wait_for(Duration::from_secs(5), || banned_on_both(a, b, &short)),
        "{}",
        logs(&paths_a, &paths_b, &lapi)
    );
    assert!(!arrives_at(&lab, &pbx_b, "10.206.2.1", &short));

    // LAPI goes away: what is in force stays, status says since when.
    lapi.stop();
    assert!(
        wait_for(Duration::from_secs(10), || {
            status(a.0, a.1)["crowdsec"]["down_since"]
                .as_u64()
                .is_some()
        }),
        "{}",
        logs(&paths_a, &paths_b, &lapi)
    );
    assert!(banned_on_both(a, b, "198.51.100.0/24"));
    // The short decision ends on time with LAPI away, in both kernels.
    assert!(
        wait_for(Duration::from_secs(15), || lifted_on_both(a, b, &short)),
        "{}",
        logs(&paths_a, &paths_b, &lapi)
    );
    assert!(arrives_at(&lab, &pbx_b, "10.206.2.1", &short));
    assert!(lab.arrives(&short, &rx));
    // PBX B restarts while LAPI is down: its bans come back from its own
    // state and are enforced at once.
    daemon_b.signal(libc::SIGKILL);
    let _ = daemon_b.child.wait();
    daemon_b = pbx(&pbx_b, &paths_b, "sgb", "10.206.2.2", &key_b);
    assert!(ban_targets(b.0, b.1).iter().any(|t| t == "198.51.100.0/24"));
    let st_b = status(b.0, b.1);
    assert_eq!(st_b["crowdsec"]["enabled"], true, "{st_b}");
    assert!(
        st_b["bans"]["fleet_by_source"]["crowdsec"].as_u64() >= Some(2),
        "{st_b}"
    );

    // Back: both resync (a full pull first), and follow what changed.
    lapi.resume();
    assert!(
        wait_for(Duration::from_secs(20), || {
            status(a.0, a.1)["crowdsec"]["down_since"].is_null()
                && status(b.0, b.1)["crowdsec"]["last_pull"].as_u64().is_some()
        }),
        "{}",
        logs(&paths_a, &paths_b, &lapi)
    );
    lapi.cscli_ok(&["decisions", "delete", "--range", "198.51.100.0/24"]);
    let later_sender = lab.add_sender(99);
    let later = later_sender.as_str();
    lapi.cscli_ok(&["decisions", "add", "--ip", later, "--duration", "1h"]);
    assert!(
        wait_for(Duration::from_secs(20), || banned_on_both(a, b, later)
            && lifted_on_both(a, b, "198.51.100.0/24")),
        "{}",
        logs(&paths_a, &paths_b, &lapi)
    );

    assert!(!arrives_at(&lab, &pbx_b, "10.206.2.1", later));

    // Deleted while PBX B is down: B restores the decision from its own
    // state, and its first (full) pull lifts it; nothing else is lost.
    daemon_b.signal(libc::SIGKILL);
    let _ = daemon_b.child.wait();
    lapi.cscli_ok(&["decisions", "delete", "--ip", later]);
    let daemon_b = pbx(&pbx_b, &paths_b, "sgb", "10.206.2.2", &key_b);
    assert!(
        wait_for(Duration::from_secs(15), || !ban_targets(b.0, b.1)
            .iter()
            .any(|t| t == later)),
        "{}",
        logs(&paths_a, &paths_b, &lapi)
    );
    assert!(arrives_at(&lab, &pbx_b, "10.206.2.1", later));
    assert!(ban_targets(b.0, b.1).iter().any(|t| t == trusted));

    daemon_a.stop_and_detach(a.0, a.1);
    daemon_b.stop_and_detach(b.0, b.1);
}

/// A sipshield that also sends its proof-backed bans (machine `machine`).
fn watcher_pbx(
    ns: &Netns,
    paths: &DaemonPaths,
    iface: &str,
    lapi_addr: &str,
    key: &str,
    machine: &str,
) -> Daemon {
    let login = format!(
        "machine_id = \"{machine}\"\npassword = \"{machine}-password-0123\"\npush_interval = \"500ms\"\n"
    );
    start_configured(ns, paths, iface, &pbx_config(lapi_addr, key, &login))
}

#[test]
fn a_proof_backed_ban_on_pbx_a_is_dropped_by_pbx_b_and_a_forgeable_one_is_not_sent() {
    let lab = VethLab::new("10.206.3");
    let pbx_b = routed_second_pbx(&lab, "10.206.4");
    // Each test's LAPI is in its own namespace: the same port is free.
    let mut lapi = Lapi::start(&lab.outside, LAPI_PORT);
    let key_a = lapi.add_bouncer("pbx-a");
    let key_b = lapi.add_bouncer("pbx-b");
    lapi.cscli_ok(&[
        "machines",
        "add",
        "pbxa",
        "--password",
        "pbxa-password-0123",
        "-f",
        "/dev/null",
    ]);
    let paths_a = DaemonPaths::new("cwa");
    let paths_b = DaemonPaths::new("cwb");
    let daemon_a = watcher_pbx(
        &lab.guarded,
        &paths_a,
        GUARD_DEV,
        "10.206.3.2",
        &key_a,
        "pbxa",
    );
    let daemon_b = pbx(&pbx_b, &paths_b, "sgb", "10.206.4.2", &key_b);
    let a = (&lab.guarded, &paths_a);
    let b = (&pbx_b, &paths_b);

    // Five wrong passwords on A: proof (each needed a challenge's nonce,
    // bound to the source). A bans it; B drops it within 15 s.
    let guesser = lab.add_sender(66);
    assert!(
        arrives_at(&lab, &pbx_b, "10.206.4.1", &guesser),
        "B, before"
    );
    append(
        &paths_a.log("messages"),
        &(0..5)
            .map(|n| wrong_password(&guesser, n))
            .collect::<Vec<_>>(),
    );
    assert!(
        wait_for(Duration::from_secs(5), || ban_targets(a.0, a.1)
            .contains(&guesser)),
        "{}",
        logs(&paths_a, &paths_b, &lapi)
    );
    assert!(
        wait_for(Duration::from_secs(15), || origin_of(b.0, b.1, &guesser)
            .as_deref()
            == Some("crowdsec")),
        "{}",
        logs(&paths_a, &paths_b, &lapi)
    );
    assert!(
        !arrives_at(&lab, &pbx_b, "10.206.4.1", &guesser),
        "dropped by PBX B's kernel"
    );
    let sa = status(a.0, a.1);
    assert_eq!(sa["crowdsec"]["alerts"]["sent"], 1, "{sa}");

    // Wrong extensions on A from another source: no reply was needed, so
    // anyone could have forged them: banned on A, never sent.
    let prober = lab.add_sender(67);
    append(
        &paths_a.log("messages"),
        &(0..10)
            .map(|n| {
                format!(
                    "[2026-11-25 10:01:{:02}] NOTICE[2245][C-00000{n:03}] chan_sip.c: Call from '' (udp:{prober}:5060) to extension '00972{n}' rejected because extension not found in context 'default'.",
                    n % 60
                )
            })
            .collect::<Vec<_>>(),
    );
    assert!(
        wait_for(Duration::from_secs(5), || ban_targets(a.0, a.1)
            .contains(&prober)),
        "{}",
        logs(&paths_a, &paths_b, &lapi)
    );
    assert!(wait_for(Duration::from_secs(5), || {
        status(a.0, a.1)["crowdsec"]["alerts"]["not_sent_unproven"].as_u64() >= Some(1)
    }));
    std::thread::sleep(Duration::from_secs(3));
    assert!(!ban_targets(b.0, b.1).contains(&prober));

    // A scanner's User-Agent from a UDP source: the kernel bans it on A (at
    // its third hit); a forged datagram could do that, so it is not sent.
    let scanner = lab.add_sender(68);
    let tx = lab.sender(&scanner);
    for n in 0..5 {
        tx.send_to(
            format!("OPTIONS sip:100@10.206.3.1 SIP/2.0\r\nVia: SIP/2.0/UDP {scanner}:5060\r\nCall-ID: s{n}\r\nUser-Agent: friendly-scanner\r\n\r\n").as_bytes(),
            "10.206.3.1:5060",
        )
        .unwrap();
    }
    assert!(
        wait_for(Duration::from_secs(5), || origin_of(a.0, a.1, &scanner)
            .is_some()),
        "{}",
        logs(&paths_a, &paths_b, &lapi)
    );
    assert!(wait_for(Duration::from_secs(5), || {
        status(a.0, a.1)["crowdsec"]["alerts"]["not_sent_kernel"].as_u64() >= Some(1)
    }));
    std::thread::sleep(Duration::from_secs(3));
    assert!(!ban_targets(b.0, b.1).contains(&scanner));

    // LAPI away: an operator ban on A waits in A's database, and reaches
    // B once LAPI is back (with a new token: LAPI forgot the old one).
    lapi.stop();
    let op = "203.0.113.44";
    let out = cli(a.0, a.1, &["bans", "add", op, "--for", "2h"]);
    assert!(out.status.success(), "{out:?}");
    assert!(wait_for(Duration::from_secs(10), || {
        let st = status(a.0, a.1);
        st["crowdsec"]["alerts"]["waiting"] == 1 && st["crowdsec"]["alerts"]["down_since"].is_u64()
    }));
    lapi.resume();
    assert!(
        wait_for(Duration::from_secs(30), || origin_of(b.0, b.1, op)
            .as_deref()
            == Some("crowdsec")),
        "{}",
        logs(&paths_a, &paths_b, &lapi)
    );
    let sa = status(a.0, a.1);
    assert_eq!(sa["crowdsec"]["alerts"]["waiting"], 0, "{sa}");
    assert!(
        sa["crowdsec"]["sipshield_decisions"].as_u64() >= Some(1),
        "{sa}"
    );

    daemon_a.stop_and_detach(a.0, a.1);
    daemon_b.stop_and_detach(b.0, b.1);
}

#[test]
fn range_decisions_take_only_the_fleets_share_of_the_range_table() {
    let lab = VethLab::new("10.206.5");
    let lapi = Lapi::start(&lab.outside, LAPI_PORT);
    let key = lapi.add_bouncer("pbx-a");
    let paths = DaemonPaths::new("csr");
    // A range table of 8 per family: the fleet may use 2 of them.
    let daemon = start_configured(
        &lab.guarded,
        &paths,
        GUARD_DEV,
        &format!(
            "[xdp]\nmax_ranges = 8\n{}",
            pbx_config("10.206.5.2", &key, "")
        ),
    );
    for net in ["198.51.100.0/24", "198.51.101.0/24", "198.51.102.0/24"] {
        lapi.cscli_ok(&["decisions", "add", "--range", net, "--duration", "1h"]);
    }
    assert!(
        wait_for(Duration::from_secs(15), || {
            status(&lab.guarded, &paths)["crowdsec"]["ranges_refused"].as_u64() >= Some(1)
        }),
        "{}\n{}",
        daemon_log(&paths),
        lapi.log()
    );
    let held = ban_targets(&lab.guarded, &paths);
    let enforced: Vec<&String> = held.iter().filter(|t| t.starts_with("198.51.10")).collect();
    // All three are kept (listed), two are in the kernel.
    assert_eq!(enforced.len(), 3, "{held:?}");
    let kernel_ranges = sipshield::bpf::pins::open_maps(&paths.pin_root)
        .unwrap()
        .ranges
        .entries()
        .unwrap()
        .len();
    assert_eq!(kernel_ranges, 2);
    // An operator's range still finds room.
    let out = cli(
        &lab.guarded,
        &paths,
        &["bans", "add", "203.0.113.0/24", "--for", "1h"],
    );
    assert!(out.status.success(), "{out:?}");
    daemon.stop_and_detach(&lab.guarded, &paths);
}
