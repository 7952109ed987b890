//! Legitimate bursts are not attacks (issue 15): an office of 100 phones
//! behind one address registering at once with a real registrar (Debian's
//! kamailio, digest auth) and a real client (baresip, 100 accounts in one
//! process), through sipshield with its default config. Needs root.

use std::time::{Duration, Instant};

use sipshield_tests::{
    daemon::{ban_targets, daemon_log, start_configured, wait_for, Daemon, DaemonPaths},
    netns::{VethLab, GUARD_DEV},
    registrar::{Kamailio, Office},
};

/// sipshield on the registrar's side with `extra` config; the daemon and
/// its paths.
fn guard(lab: &VethLab, extra: &str) -> (Daemon, DaemonPaths) {
    let paths = DaemonPaths::new("burst");
    let daemon = start_configured(
        &lab.guarded,
        &paths,
        GUARD_DEV,
        &format!("[metrics]\nlisten = \"\"\n[allow]\nasterisk_trunks = false\n{extra}"),
    );
    // The kernel's config is in once the daemon answers.
    sipshield_tests::daemon::status(&lab.guarded, &paths);
    (daemon, paths)
}

/// Starts 100 phones; (all registered within 10 s, how many, seconds,
/// the office banned).
fn office_storm(
    lab: &VethLab,
    kamailio: &Kamailio,
    paths: &DaemonPaths,
) -> (bool, u64, f64, bool, Office) {
    let started = Instant::now();
    let office = Office::start(&lab.outside, "10.210.1.2", "10.210.1.1", 100);
    let all = wait_for(Duration::from_secs(10), || kamailio.registered() >= 100);
    let secs = started.elapsed().as_secs_f64();
    let banned = ban_targets(&lab.guarded, paths).contains(&"10.210.1.2".to_string());
    (all, kamailio.registered(), secs, banned, office)
}

/// The lab itself: with the rate guard off, all 100 register at once (so
/// the test below fails for the guard, not for the lab).
#[test]
fn the_office_lab_registers_100_phones_with_the_rate_guard_off() {
    let lab = VethLab::new("10.210.1");
    let kamailio = Kamailio::start(&lab.guarded, "10.210.1.1", 100);
    let (daemon, paths) = guard(
        &lab,
        "[xdp]\nregister_per_second = 0\nmessage_per_second = 0\n",
    );
    let (all, n, secs, banned, office) = office_storm(&lab, &kamailio, &paths);
    assert!(
        all && !banned,
        "{n} of 100 registered in {secs:.1} s (baresip: {} 200 OK)\n{}",
        office.registered(),
        kamailio.log()
    );
    drop(office);
    daemon.stop_and_detach(&lab.guarded, &paths);
}

/// `sipsak -F`: `count` OPTIONS as fast as it can from `from` (an address
/// of the outside namespace) to the registrar; bounded by `timeout`.
fn sipsak_flood(lab: &VethLab, from: &str, count: u32) -> std::process::Output {
    std::process::Command::new("timeout")
        .args([
            "20",
            "ip",
            "netns",
            "exec",
            &lab.outside.name,
            "sipsak",
            "-F",
        ])
        .args(["-e", &count.to_string(), "--local-ip", from])
        .args(["-s", "sip:100@10.210.1.1"])
        .output()
        .expect("sipsak (install it: cargo xtask deps)")
}

/// The attack on the operator, as a test (it failed before the staged
/// guard: the default guard banned the office at its 21st REGISTER and 0 of
/// 100 phones registered). The defaults alone must carry the office (no
/// Asterisk logs here: no source is known good), while a sipsak flood from
/// another address is banned within a second of its first packet.
#[test]
fn an_office_of_100_phones_registering_at_once_is_not_banned() {
    let lab = VethLab::new("10.210.1");
    let flooder = lab.add_sender(3);
    let kamailio = Kamailio::start(&lab.guarded, "10.210.1.1", 100);
    let (daemon, paths) = guard(&lab, "");
    let flood = std::thread::scope(|s| {
        let flood = s.spawn(|| {
            // Into the storm, not before it.
            std::thread::sleep(Duration::from_millis(200));
            sipsak_flood(&lab, &flooder, 5_000)
        });
        let storm = office_storm(&lab, &kamailio, &paths);
        (storm, flood.join().expect("flood thread"))
    });
    let ((all, n, secs, banned, office), flood_run) = flood;
    assert!(
        all && !banned,
        "{n} of 100 registered in {secs:.1} s (baresip saw {} 200 OK); office banned: {banned}\n{}",
        office.registered(),
        daemon_log(&paths)
    );
    // The kernel's own clock: the flooder's first counted packet to its ban.
    let maps = sipshield::bpf::pins::open_maps(&paths.pin_root).expect("pinned maps");
    let ip: std::net::IpAddr = flooder.parse().unwrap();
    let ban = maps.ban_of(ip).unwrap().unwrap_or_else(|| {
        panic!(
            "the flood is not banned: {}\n{}",
            String::from_utf8_lossy(&flood_run.stderr),
            daemon_log(&paths)
        )
    });
    let stats = maps.sources.get(ip).unwrap().expect("flooder counted");
    let after_ms = ban.created_ns.saturating_sub(stats.first_seen_ns) as f64 / 1e6;
    eprintln!(
        "office: {n}/100 in {secs:.2} s; flood banned at message {} after {after_ms:.1} ms",
        stats.total_messages()
    );
    assert!(
        after_ms < 1000.0,
        "flood banned {after_ms:.0} ms after its first packet"
    );
    let office_ip: std::net::IpAddr = "10.210.1.2".parse().unwrap();
    assert!(
        maps.ban_of(office_ip).unwrap().is_none(),
        "the office is not banned in the kernel either"
    );
    // It passed through the guard, not around it: no source is known good
    // here, the office was counted, and it was policed (its phones had to
    // retransmit: more than the 200 REGISTERs the guard-off run sends).
    assert!(
        maps.known.entries().unwrap().is_empty(),
        "a source is known good: the defaults alone must carry the office"
    );
    let o = maps
        .sources
        .get(office_ip)
        .unwrap()
        .expect("the office is counted by the kernel");
    let registers = o.methods[sipshield_common::sip::Method::Register as usize];
    eprintln!(
        "the office sent {registers} REGISTERs ({} messages) for 100 phones",
        o.total_messages()
    );
    assert!(
        registers > 200,
        "{registers} REGISTERs: the storm was never policed (retransmitted)"
    );
    let policed = maps.stats.snapshot().unwrap().verdict(
        sipshield_common::counters::Action::Drop,
        sipshield_common::counters::Reason::Policed,
    );
    eprintln!("policed during the storm and the flood: {policed}");
    drop(office);
    daemon.stop_and_detach(&lab.guarded, &paths);
}
