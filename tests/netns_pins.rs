//! Pinning: one program and one set of maps for every interface; bans stay
//! enforced with no process holding the program; a restart adopts, an
//! upgrade replaces the program in place, a size change migrates every
//! entry; nothing a failed adoption touches loses a ban.

use std::{net::UdpSocket, path::PathBuf, time::Duration};

use sipshield::bpf::{
    clock::monotonic_ns,
    pins::{self, attached_program_id},
    AttachMode, MapSizes,
};
use sipshield_common::{
    config::{RateLimit, XdpConfig},
    counters::{Action, Reason},
    maps::{BanEntry, BanOrigin, Meta, LAYOUT_VERSION},
};
use sipshield_tests::harness::ban_at_limit;
use sipshield_tests::{
    harness::Harness,
    netns::{drain, VethLab, GUARD_DEV},
};

struct PinRoot(PathBuf);

impl PinRoot {
    fn new(tag: &str) -> PinRoot {
        PinRoot(PathBuf::from(format!(
            "/sys/fs/bpf/sst{}-{tag}",
            std::process::id()
        )))
    }
}

impl Drop for PinRoot {
    fn drop(&mut self) {
        pins::purge(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn operator_ban() -> BanEntry {
    BanEntry {
        expires_ns: 0,
        created_ns: monotonic_ns(),
        origin: BanOrigin::Operator as u32,
        _pad: 0,
    }
}

fn ifaces(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The program on the lab's guarded interface, pinned under `root`.
fn attach(lab: &VethLab, root: &PinRoot, sizes: MapSizes) -> pins::Pinned {
    lab.guarded
        .enter(|| pins::attach_all(&root.0, &ifaces(&[GUARD_DEV]), AttachMode::Auto, sizes))
        .expect("attach")
}

#[test]
fn pinned_program_survives_its_owner_and_is_adopted_then_detached() {
    let lab = VethLab::new("10.201.5");
    let bad = lab.add_sender(66);
    let root = PinRoot::new("pins");
    let rx = lab.receiver();
    let sizes = MapSizes::default();

    let first = lab
        .guarded
        .enter(|| pins::attach_all(&root.0, &ifaces(&[GUARD_DEV]), AttachMode::Auto, sizes))
        .expect("attach");
    assert!(!first.links[0].adopted);
    let prog_id = first.program_id;
    let mut maps = first.maps;
    maps.bans
        .insert(bad.parse().unwrap(), operator_ban())
        .unwrap();
    // Everything this process held is gone, as after a crash.
    drop(maps);

    assert!(!lab.arrives(&bad, &rx), "ban enforced with no owner");
    assert!(lab.arrives(&format!("{}.2", lab.prefix), &rx));

    let second = lab
        .guarded
        .enter(|| pins::attach_all(&root.0, &ifaces(&[GUARD_DEV]), AttachMode::Auto, sizes))
        .expect("adopt");
    assert!(
        second.links[0].adopted,
        "second start adopts: {}",
        second.how
    );
    assert_eq!(second.program_id, prog_id, "no second program attached");
    assert_eq!(
        lab.guarded.enter(|| attached_program_id(GUARD_DEV)),
        Some(prog_id)
    );
    assert!(second
        .maps
        .bans
        .get(bad.parse().unwrap())
        .unwrap()
        .is_some());
    let s = second.maps.stats.snapshot().unwrap();
    assert!(
        s.verdict(Action::Drop, Reason::BannedExact) >= 1,
        "counters continue"
    );
    assert_eq!(
        pins::pinned_interfaces(&root.0),
        vec![GUARD_DEV.to_string()]
    );
    drop(second);

    assert!(pins::detach(&root.0, GUARD_DEV).unwrap());
    assert_eq!(
        lab.guarded.enter(|| attached_program_id(GUARD_DEV)),
        None,
        "detached"
    );
    assert!(lab.arrives(&bad, &rx), "no ban after detach");
    assert!(pins::pinned_interfaces(&root.0).is_empty());
    // The maps, and the ban in them, stay until purged.
    let maps = pins::open_maps(&root.0).expect("maps kept");
    assert!(maps.bans.get(bad.parse().unwrap()).unwrap().is_some());
}

/// Sends from `from` to `to:5060` and says whether `rx` got it.
fn reaches(lab: &VethLab, from: &str, to: &str, rx: &UdpSocket, payload: &[u8]) -> bool {
    lab.sender(from)
        .send_to(payload, format!("{to}:5060"))
        .expect("send");
    drain(rx).iter().any(|(_, p)| p.ip().to_string() == from)
}

#[test]
fn a_kernel_ban_made_on_one_interface_drops_on_every_other_with_no_daemon() {
    let lab = VethLab::new("10.201.7");
    lab.add_link("sg1", "so1", "10.201.8");
    let bad = lab.add_sender(66);
    let root = PinRoot::new("shared");
    let pinned = lab
        .guarded
        .enter(|| {
            pins::attach_all(
                &root.0,
                &ifaces(&[GUARD_DEV, "sg1"]),
                AttachMode::Auto,
                MapSizes::default(),
            )
        })
        .expect("attach both");
    assert_eq!(pinned.links.len(), 2);
    let mut maps = pinned.maps;
    maps.config
        .write(
            &XdpConfig {
                ..ban_at_limit(RateLimit::new(1, 2), RateLimit::new(0, 0))
            },
            &Harness::default_prefixes(),
        )
        .unwrap();
    drop(maps);
    let rx_a = lab.receiver();
    let rx_b = lab
        .guarded
        .enter(|| UdpSocket::bind("10.201.8.1:5060"))
        .unwrap();
    rx_b.set_read_timeout(Some(Duration::from_millis(150)))
        .unwrap();
    let register = b"REGISTER sip:pbx SIP/2.0\r\nContent-Length: 0\r\n\r\n";
    assert!(reaches(
        &lab,
        &bad,
        "10.201.8.1",
        &rx_b,
        b"OPTIONS sip:x SIP/2.0\r\n\r\n"
    ));
    // A REGISTER flood on the first interface: the rate guard bans.
    for _ in 0..5 {
        reaches(&lab, &bad, &lab.guarded_addr(), &rx_a, register);
    }
    let maps = pins::open_maps(&root.0).unwrap();
    assert!(maps
        .kernel_bans
        .get(bad.parse().unwrap())
        .unwrap()
        .is_some());
    // The second interface drops it too: one table.
    assert!(!reaches(
        &lab,
        &bad,
        "10.201.8.1",
        &rx_b,
        b"OPTIONS sip:x SIP/2.0\r\n\r\n"
    ));
    let s = maps.stats.snapshot().unwrap();
    assert!(s.verdict(Action::Drop, Reason::BannedKernel) >= 1);
}

#[test]
fn an_upgrade_replaces_the_program_in_place_and_a_resize_migrates_every_ban() {
    let lab = VethLab::new("10.201.9");
    let bad = lab.add_sender(66);
    let root = PinRoot::new("upgrade");
    let rx = lab.receiver();
    let sizes = MapSizes::default();
    let first = lab
        .guarded
        .enter(|| pins::attach_all(&root.0, &ifaces(&[GUARD_DEV]), AttachMode::Auto, sizes))
        .unwrap();
    let old_prog = first.program_id;
    let mut maps = first.maps;
    maps.bans
        .insert(bad.parse().unwrap(), operator_ban())
        .unwrap();
    maps.kernel_bans
        .insert(
            "10.201.9.67".parse().unwrap(),
            BanEntry {
                origin: BanOrigin::RateGuard as u32,
                ..operator_ban()
            },
        )
        .unwrap();
    // Pretend an older build left this program behind.
    maps.meta
        .write(Meta {
            layout: LAYOUT_VERSION,
            _pad: 0,
            build_id: 1,
        })
        .unwrap();
    drop(maps);

    let second = lab
        .guarded
        .enter(|| pins::attach_all(&root.0, &ifaces(&[GUARD_DEV]), AttachMode::Auto, sizes))
        .expect("upgrade");
    assert!(second.how.contains("replaced in place"), "{}", second.how);
    assert_ne!(second.program_id, old_prog, "the new build runs");
    assert_eq!(
        lab.guarded.enter(|| attached_program_id(GUARD_DEV)),
        Some(second.program_id)
    );
    assert!(second
        .maps
        .bans
        .get(bad.parse().unwrap())
        .unwrap()
        .is_some());
    drop(second);
    assert!(!lab.arrives(&bad, &rx), "still banned after the upgrade");

    // New map sizes: every entry moves to new maps.
    let bigger = MapSizes {
        max_bans: sizes.max_bans / 2,
        max_kernel_bans: 4096,
        ..sizes
    };
    let third = lab
        .guarded
        .enter(|| pins::attach_all(&root.0, &ifaces(&[GUARD_DEV]), AttachMode::Auto, bigger))
        .expect("migrate");
    assert!(third.how.contains("migrated"), "{}", third.how);
    assert!(third.maps.bans.get(bad.parse().unwrap()).unwrap().is_some());
    assert!(third
        .maps
        .kernel_bans
        .get("10.201.9.67".parse().unwrap())
        .unwrap()
        .is_some());
    assert!(
        !root.0.join("maps-old").exists(),
        "old maps removed after the copy"
    );
    drop(third);
    assert!(!lab.arrives(&bad, &rx), "still banned after the migration");
}

#[test]
fn a_stale_link_on_a_recreated_interface_is_replaced_and_the_bans_kept() {
    let lab = VethLab::new("10.201.6");
    let root = PinRoot::new("stale");
    let first = attach(&lab, &root, MapSizes::default());
    let mut maps = first.maps;
    maps.bans
        .insert("10.201.6.66".parse().unwrap(), operator_ban())
        .unwrap();
    drop(maps);
    // The interface goes away and comes back: the old link is defunct.
    drop(lab);
    let lab = VethLab::new("10.201.6");
    let bad = lab.add_sender(66);
    let rx = lab.receiver();
    let again = attach(&lab, &root, MapSizes::default());
    assert!(!again.links[0].adopted);
    assert!(
        again.maps.bans.get(bad.parse().unwrap()).unwrap().is_some(),
        "the kernel-only ban survived the failed adoption"
    );
    drop(again);
    assert!(!lab.arrives(&bad, &rx));
}

#[test]
fn an_allowlisted_source_inside_a_banned_range_always_passes() {
    use sipshield::daemon::shield::Shield;
    let lab = VethLab::new("10.201.4");
    let inside = lab.add_sender(66);
    let other = lab.add_sender(67);
    let root = PinRoot::new("rangeallow");
    let rx = lab.receiver();
    let pinned = attach(&lab, &root, MapSizes::default());
    let mut shield = Shield::new(pinned, MapSizes::default().max_bans).unwrap();
    // A range with nothing allowlisted in it: the fast drop.
    shield
        .ban(
            "10.201.4.64/26".parse().unwrap(),
            monotonic_ns(),
            0,
            BanOrigin::Operator,
        )
        .unwrap();
    let e = shield.maps.ranges.entries().unwrap()[0].1;
    assert_eq!(e.no_allow_inside, 1);
    assert!(!lab.arrives(&inside, &rx));
    // Allowlisting one address inside defers the range to the allowlist.
    shield
        .sync_allowlist(&[format!("{inside}/32").parse().unwrap()])
        .unwrap();
    assert_eq!(
        shield.maps.ranges.entries().unwrap()[0].1.no_allow_inside,
        0
    );
    assert!(lab.arrives(&inside, &rx), "allowlisted inside the range");
    assert!(
        !lab.arrives(&other, &rx),
        "the rest of the range is still banned"
    );
    // And back when the entry goes.
    shield.sync_allowlist(&[]).unwrap();
    assert_eq!(
        shield.maps.ranges.entries().unwrap()[0].1.no_allow_inside,
        1
    );
    assert!(!lab.arrives(&inside, &rx));
}

/// The program skips the ban table where the ban filter's bit is clear. A
/// filter pin gone (removed by hand, say) must not be made afresh, empty,
/// in front of the pinned bans: the maps are migrated instead, which marks
/// every ban again.
#[test]
fn a_ban_filter_removed_from_the_pins_is_never_made_afresh_in_front_of_the_bans() {
    let lab = VethLab::new("10.201.12");
    let bad = lab.add_sender(66);
    let root = PinRoot::new("filter");
    let rx = lab.receiver();
    let sizes = MapSizes::default();
    let mut first = attach(&lab, &root, sizes);
    first
        .maps
        .bans
        .insert(bad.parse().unwrap(), operator_ban())
        .unwrap();
    // An upgrade next: the program is replaced, on whatever filter it finds.
    first
        .maps
        .meta
        .write(Meta {
            layout: LAYOUT_VERSION,
            _pad: 0,
            build_id: 1,
        })
        .unwrap();
    drop(first);
    assert!(!lab.arrives(&bad, &rx), "banned");
    std::fs::remove_file(pins::maps_dir(&root.0).join(sipshield_common::maps::BAN_FILTER)).unwrap();
    let second = attach(&lab, &root, sizes);
    let how = second.how.clone();
    drop(second);
    assert!(
        !lab.arrives(&bad, &rx),
        "still banned: every ban marked again ({how})"
    );
    assert!(how.contains("migrated"), "{how}");
}
