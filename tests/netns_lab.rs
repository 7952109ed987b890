//! End-to-end: the lab (a PBX behind a router; attacker, trunk and phone in
//! their own namespaces; sipshield's daemon guarding the PBX's interface)
//! against the real attack tools. Each test builds its own lab and removes
//! it, also when it fails. Needs root, bpffs and the Debian packages that
//! `cargo xtask deps` installs (sipvicious, sipsak, hping3).

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use serde_json::Value;
use sipshield_common::{
    config::{DEFAULT_MESSAGE_POLICE, DEFAULT_REGISTER_POLICE},
    maps::BanOrigin,
};
use sipshield_tests::{
    lab::{
        attack::{bogus_register, Attacker},
        scene::{Lab, PHONE_SECRET},
        shield::ShieldOptions,
        topology::*,
    },
    netns::Netns,
};

fn lab(tag: &str, opts: ShieldOptions) -> Lab {
    Lab::new(|role| Netns::create(&role[..3]), tag, &opts)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The phone and the trunk both complete their calls.
fn legit_traffic_works(lab: &mut Lab, when: &str) {
    lab.phone_round()
        .unwrap_or_else(|e| panic!("phone {when}: {e:#}\n{}", lab.shield.log()));
    lab.trunk_round()
        .unwrap_or_else(|e| panic!("trunk {when}: {e:#}\n{}", lab.shield.log()));
}

/// svwar, run until its source has sent the scanner hits that ban (each
/// run gives up after a probe or two that nothing answers).
fn persist(attacker: &Attacker, from: &str) {
    for _ in 0..sipshield_common::config::DEFAULT_SCANNER_BAN_HITS {
        attacker.svwar(from, "100-102");
    }
}

#[test]
fn svmap_and_svwar_are_dropped_from_their_first_packet_and_banned_at_their_third() {
    let mut lab = lab("scan", ShieldOptions::default());
    legit_traffic_works(&mut lab, "before the scan");
    let attacker = Attacker::new(&lab.topo);
    let map = attacker.svmap(SCANNER);
    let war = attacker.svwar(ATTACKER, "100-140");
    eprintln!("svmap: {}\nsvwar: {}", map.output.trim(), war.output.trim());

    let maps = lab.shield.maps();
    let hits = u64::from(sipshield_common::config::DEFAULT_SCANNER_BAN_HITS);
    persist(&attacker, ATTACKER);
    for scanner in [SCANNER, ATTACKER] {
        assert_eq!(
            lab.pbx.seen(ip(scanner)).requests,
            0,
            "{scanner}: no request reached the PBX, so no answer went back"
        );
        let stats = maps.sources.get(ip(scanner)).unwrap().expect("counted");
        let sent = stats.total_messages();
        match maps.ban_of(ip(scanner)).unwrap() {
            Some(ban) => {
                assert_eq!(ban.origin, BanOrigin::Scanner as u32, "{scanner}");
                assert_eq!(sent, hits, "{scanner}: banned at its {hits}th request");
                // Each svwar run waits out its timeout: the time to the ban
                // is the scanner's pace, the count is what matters.
                let first_to_ban = ban.created_ns.saturating_sub(stats.first_seen_ns);
                eprintln!("{scanner}: first packet to kernel ban {first_to_ban} ns");
            }
            None => assert!(sent < hits, "{scanner}: {sent} requests, not banned"),
        }
    }
    // Answered by nothing, both give up after a probe or two; run again
    // (a scanner that persists), svwar reached the hits and was banned.
    assert!(
        maps.ban_of(ip(ATTACKER)).unwrap().is_some(),
        "{}",
        lab.shield.log()
    );
    assert_eq!(lab.pbx.seen(ip(ATTACKER)).requests, 0);
    // Everything they sent was dropped: svmap got no answer, svwar found
    // no extension.
    assert!(
        !map.output.contains(PBX),
        "svmap found nothing: {}",
        map.output
    );
    assert!(
        !war.output.contains("reqauth"),
        "svwar found nothing: {}",
        war.output
    );
    std::thread::sleep(Duration::from_millis(200));
    let rec = lab
        .shield
        .ban_of(ATTACKER)
        .unwrap_or_else(|| panic!("daemon recorded {ATTACKER}: {:?}", lab.shield.bans()));
    assert_eq!(rec["class"], "scanner");
    legit_traffic_works(&mut lab, "after the scan");
    assert!(lab.shield.stop(), "daemon exits cleanly");
}

#[test]
fn svcrack_is_banned_from_log_failures_before_it_finds_the_password() {
    // No signatures here, as if the cracker had changed its User-Agent:
    // the log path alone must stop it.
    let opts = ShieldOptions {
        no_signatures: true,
        ..Default::default()
    };
    let mut lab = lab("crack", opts);
    legit_traffic_works(&mut lab, "before the attack");
    let attacker = Attacker::new(&lab.topo);
    // The right password is 8th: past policy.sip_auth.maxretry (5).
    let dictionary = [
        "1234",
        "200",
        "password",
        "admin",
        "0000",
        "12345",
        "qwerty",
        PHONE_SECRET,
        "letmein",
    ];
    let run = attacker.svcrack(CRACKER, "200", &dictionary);
    eprintln!("svcrack ({:?}): {}", run.elapsed, run.output.trim());

    let seen = lab.pbx.seen(ip(CRACKER));
    assert_eq!(seen.registered, 0, "svcrack never got in: {seen:?}");
    assert!(!run.output.contains("The password for"), "{}", run.output);
    assert!(
        (5..=7).contains(&seen.auth_failures),
        "banned at the 5th failure (plus what was in flight): {seen:?}"
    );
    let ban = lab
        .shield
        .wait_kernel_ban(CRACKER, Duration::from_secs(1))
        .expect("svcrack banned in the kernel");
    assert_eq!(ban.origin, BanOrigin::Userspace as u32);
    let rec = lab.shield.ban_of(CRACKER).expect("daemon ban record");
    assert_eq!(rec["class"], "sip-auth");
    assert_eq!(rec["origin"], "log");
    // The signature was still counted.
    let stats = lab.shield.maps().sources.get(ip(CRACKER)).unwrap().unwrap();
    assert!(stats.total_messages() >= 6, "{stats:?}");
    legit_traffic_works(&mut lab, "after the attack");
}

#[test]
fn floods_are_cut_the_trunk_is_never_banned_and_calls_go_on() {
    let mut lab = lab("flood", ShieldOptions::default());
    legit_traffic_works(&mut lab, "before the flood");
    let topo_attacker = Attacker::new(&lab.topo);

    // hping3 forges failing REGISTERs from three sources and from the
    // trunk's own address (500/s each, 1.6 s); sipsak floods OPTIONS.
    let forged: Vec<&str> = SPOOFED.iter().copied().chain([TRUNK]).collect();
    const PER_SOURCE: u32 = 800;
    let mut during = Vec::new();
    std::thread::scope(|s| {
        let floods: Vec<_> = forged
            .iter()
            .map(|src| {
                let a = &topo_attacker;
                s.spawn(move || a.hping_flood(src, PER_SOURCE, 2_000, &bogus_register(src)))
            })
            .collect();
        let sipsak = s.spawn(|| topo_attacker.sipsak_flood(FLOODER, 2_000));
        std::thread::sleep(Duration::from_millis(300));
        // The phone and the trunk, while the floods run.
        // A round is 7 messages; one every 200 ms stays a phone's pace
        // (the rate guard polices over 60 messages/s per source).
        let until = Instant::now() + Duration::from_millis(1_200);
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(200));
            let phone = lab
                .phone_round()
                .map(|_| ())
                .map_err(|e| format!("phone: {e:#}"));
            let trunk = lab
                .trunk_round()
                .map(|_| ())
                .map_err(|e| format!("trunk: {e:#}"));
            during.push((phone, trunk));
        }
        for f in floods {
            eprintln!("{}", f.join().unwrap().output.trim());
        }
        eprintln!("{}", sipsak.join().unwrap().output.trim());
    });
    assert!(!during.is_empty());
    for (phone, trunk) in &during {
        assert!(
            phone.is_ok() && trunk.is_ok(),
            "during the flood: {phone:?} {trunk:?}"
        );
    }
    eprintln!("{} phone and trunk rounds during the flood", during.len());

    let maps = lab.shield.maps();
    // Forged sources at 500/s: policed past the REGISTER burst (120), and
    // banned by whichever comes first: the daemon reading 5 failures, or
    // the kernel's flood bucket (600 at 300/s, after some 3 s of this).
    let burst = DEFAULT_REGISTER_POLICE.1;
    for src in SPOOFED {
        let seen = lab.pbx.seen(ip(src)).requests;
        eprintln!("{src}: {seen} forged REGISTERs reached the PBX");
        assert!(seen <= burst + 1, "{src}: {seen} REGISTERs reached the PBX");
        let ban = maps
            .bans
            .get(ip(src))
            .unwrap()
            .expect("forged source banned");
        assert!(
            [BanOrigin::RateGuard as u32, BanOrigin::Userspace as u32].contains(&ban.origin),
            "{src}: {ban:?}"
        );
    }
    // sipsak: policed past the message burst (240), then banned over the
    // flood bucket (1200 at 600/s) well before its 2000 are out.
    let message_burst = DEFAULT_MESSAGE_POLICE.1;
    let seen = lab.pbx.seen(ip(FLOODER)).requests;
    eprintln!("sipsak: {seen} of 2000 reached the PBX");
    assert!(
        (1..=message_burst + 10).contains(&seen),
        "sipsak flood reached the PBX {seen} times"
    );
    let ban = maps.ban_of(ip(FLOODER)).unwrap().expect("sipsak banned");
    assert_eq!(ban.origin, BanOrigin::RateGuard as u32, "{ban:?}");

    // The trunk: allowlisted, so never banned, in the kernel or by the
    // daemon, though its forged REGISTERs all failed in the log...
    // (The PBX may still be reading its socket.)
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.pbx.seen(ip(TRUNK)).auth_failures, u64::from(PER_SOURCE));
    assert!(
        maps.ban_of(ip(TRUNK)).unwrap().is_none(),
        "trunk banned in the kernel"
    );
    assert!(
        lab.shield.ban_of(TRUNK).is_none(),
        "trunk banned by the daemon"
    );
    // ...and the operator is told what would have happened.
    let status = lab.shield.status();
    let would: Vec<&Value> = status["recent_bans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["target"] == TRUNK)
        .collect();
    // One report, however many times the forged failures crossed the
    // threshold (800 failures, 5 per would-ban): it buries nothing else.
    assert_eq!(would.len(), 1, "one would-ban of the trunk: {status:#}");
    assert!(would[0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("WOULD BAN"));
    let repeats = would[0]["repeats"].as_u64().unwrap_or(1);
    assert!(repeats >= 100, "merged repeats: {}", would[0]);
    legit_traffic_works(&mut lab, "after the flood");
}

#[test]
fn sigkill_mid_attack_keeps_bans_enforced_and_restart_adopts_them() {
    let mut lab = lab("kill", ShieldOptions::default());
    let attacker = Attacker::new(&lab.topo);
    persist(&attacker, SCANNER);
    assert!(lab
        .shield
        .wait_kernel_ban(SCANNER, Duration::from_secs(1))
        .is_some());
    let program = attached_program(&lab);

    std::thread::scope(|s| {
        let flood =
            s.spawn(|| attacker.hping_flood(SPOOFED[0], 1_500, 1_000, &bogus_register(SPOOFED[0])));
        std::thread::sleep(Duration::from_millis(150));
        lab.shield.crash();
        flood.join().unwrap();
    });
    // With the daemon dead: the program still runs, the old ban holds, the
    // flood was cut, and a new scanner is still banned by the kernel.
    assert_eq!(attached_program(&lab), program, "program still attached");
    attacker.svmap(SCANNER);
    persist(&attacker, ATTACKER);
    for src in [SCANNER, ATTACKER] {
        assert_eq!(lab.pbx.seen(ip(src)).requests, 0, "{src} reached the PBX");
    }
    // The forged flood (1000/s) with nobody reading the log: policed past
    // the REGISTER burst, banned by the kernel over its flood bucket (600
    // at 300/s) within a second, so at most the burst and a second of the
    // police rate reached the PBX.
    let (rate, burst) = DEFAULT_REGISTER_POLICE;
    let forged = lab.pbx.seen(ip(SPOOFED[0])).requests;
    assert!(
        forged <= burst + rate + 1,
        "{forged} forged REGISTERs arrived"
    );
    let maps = lab.shield.maps();
    for src in [SCANNER, ATTACKER, SPOOFED[0]] {
        assert!(
            maps.ban_of(ip(src)).unwrap().is_some(),
            "{src} banned while the daemon was down"
        );
    }
    lab.phone_round()
        .expect("the phone works with the daemon down");

    // Restart: the same program is adopted, not reloaded, and the daemon
    // knows every ban, including the one the kernel made without it.
    let topo = &lab.topo;
    lab.shield.restart(topo);
    assert_eq!(attached_program(&lab), program, "pinned program adopted");
    std::thread::sleep(Duration::from_millis(300));
    for src in [SCANNER, ATTACKER, SPOOFED[0]] {
        assert!(
            lab.shield.ban_of(src).is_some(),
            "{src} known after restart: {:?}\n{}",
            lab.shield.bans(),
            lab.shield.log()
        );
    }
    legit_traffic_works(&mut lab, "after the restart");
}

#[test]
fn observe_mode_drops_nothing_and_reports_every_would_ban() {
    let opts = ShieldOptions {
        observe: true,
        ..Default::default()
    };
    let mut lab = lab("obs", opts);
    let attacker = Attacker::new(&lab.topo);
    persist(&attacker, SCANNER);
    attacker.sipsak_flood(FLOODER, 1_500);
    for n in 0..6 {
        attacker.sipsak_register(GUESSER, "200", &format!("guess{n}"));
    }
    std::thread::sleep(Duration::from_millis(300));

    // Everything reached the PBX.
    assert!(lab.pbx.seen(ip(SCANNER)).requests >= 1);
    // The kernel passed all 1500 flood messages (the PBX's deep socket
    // buffer holds sipsak's burst), far more than
    // the 240 of the police burst that enforce mode allows, and past the
    // flood bucket (1200) that would have banned it.
    let maps = lab.shield.maps();
    let flood = maps
        .sources
        .get(ip(FLOODER))
        .unwrap()
        .expect("flood counted");
    assert_eq!(flood.total_messages(), 1_500);
    let seen = lab.pbx.seen(ip(FLOODER)).requests;
    eprintln!("observe: the PBX read {seen} of the 1500 passed");
    assert!(seen > 241, "the PBX read {seen} of the 1500 passed");
    assert_eq!(lab.pbx.seen(ip(GUESSER)).auth_failures, 6);
    // Nothing was banned...
    assert!(
        maps.all_bans().unwrap().is_empty(),
        "kernel bans in observe mode"
    );
    assert!(lab.shield.bans().is_empty(), "daemon bans in observe mode");
    // ...and every would-ban was reported, with what would have been dropped.
    let status = lab.shield.status();
    assert_eq!(status["daemon"]["observe"], true);
    assert!(
        status["packets"]["would_drop"].as_u64().unwrap() > 0,
        "{status:#}"
    );
    assert_eq!(
        status["packets"]["dropped"].as_u64().unwrap_or(0),
        0,
        "{status:#}"
    );
    for src in [SCANNER, FLOODER, GUESSER] {
        let reported = status["recent_bans"].as_array().unwrap().iter().any(|b| {
            b["target"] == src && b["reason"].as_str().unwrap_or("").starts_with("WOULD BAN")
        });
        assert!(reported, "would-ban of {src}: {status:#}");
    }
    legit_traffic_works(&mut lab, "in observe mode");
}

/// The id of the XDP program on the PBX's interface.
fn attached_program(lab: &Lab) -> u32 {
    lab.topo
        .pbx_program_id()
        .unwrap_or_else(|| panic!("no XDP program on {PBX_DEV}"))
}

/// A REGISTER with wrong credentials whose From display name and Call-ID
/// each carry a fake `failed for` tail naming `framed`, as a guesser that
/// read sipshield's parser would send it.
fn injecting_register(from: &str, framed: &str, n: u32) -> Vec<u8> {
    format!(
        "REGISTER sip:{PBX} SIP/2.0\r\nVia: SIP/2.0/UDP {from}:5060;branch=z9hG4bKinj{n}\r\nMax-Forwards: 70\r\nFrom: \"x' failed for '{framed}:5060' (callid: y\" <sip:200@{PBX}>;tag=i{n}\r\nTo: <sip:200@{PBX}>\r\nCall-ID: q{n}' failed for '{framed}:5060' (callid: r\r\nCSeq: 1 REGISTER\r\nContact: <sip:200@{from}:5060>\r\nAuthorization: Digest username=\"200\", realm=\"sipshield-lab\", nonce=\"00\", uri=\"sip:{PBX}\", response=\"00000000000000000000000000000000\", algorithm=MD5\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn a_guesser_that_injects_another_address_is_banned_and_that_address_is_not() {
    let opts = ShieldOptions {
        no_signatures: true,
        ..Default::default()
    };
    let mut lab = lab("inj", opts);
    legit_traffic_works(&mut lab, "before the injections");
    let sock = lab
        .topo
        .attacker
        .enter(|| std::net::UdpSocket::bind(format!("{GUESSER}:5060")))
        .expect("bind the guesser");
    for n in 0..6 {
        sock.send_to(
            &injecting_register(GUESSER, PHONE, n),
            format!("{PBX}:5060"),
        )
        .expect("send");
        std::thread::sleep(Duration::from_millis(30));
    }
    // The lab PBX wrote the fields as they came, quotes and fake tails too.
    let log = std::fs::read_to_string(lab.shield.messages_log()).unwrap();
    assert!(
        log.contains(&format!("from '\"x' failed for '{PHONE}:5060' (callid: y\" <sip:200@{PBX}>' failed for '{GUESSER}:")),
        "{log}"
    );
    lab.shield
        .wait_kernel_ban(GUESSER, Duration::from_secs(2))
        .unwrap_or_else(|| panic!("the guesser is banned: {}", lab.shield.log()));
    assert!(
        lab.shield.ban_of(PHONE).is_none(),
        "the phone it named is not"
    );
    legit_traffic_works(&mut lab, "after the injections");
}
