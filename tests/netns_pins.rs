//! Pinning: bans stay enforced with no process holding the program, a
//! second attach adopts instead of attaching twice, detach removes it all.

use std::path::PathBuf;

use sipshield::bpf::{
    clock::monotonic_ns,
    pins::{self, attached_program_id},
    AttachMode, MapSizes,
};
use sipshield_common::{
    counters::{Action, Reason},
    maps::{BanEntry, BanOrigin},
};
use sipshield_tests::netns::{VethLab, GUARD_DEV};

struct PinRoot(PathBuf);

impl Drop for PinRoot {
    fn drop(&mut self) {
        for entry in std::fs::read_dir(&self.0).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(entry.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let _ = std::fs::remove_file(f.path());
            }
            let _ = std::fs::remove_dir(entry.path());
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn pinned_program_survives_its_owner_and_is_adopted_then_detached() {
    let lab = VethLab::new("10.201.5");
    let bad = lab.add_sender(66);
    let root = PinRoot(PathBuf::from(format!(
        "/sys/fs/bpf/sst{}-pins",
        std::process::id()
    )));
    let rx = lab.receiver();

    let first = lab
        .guarded
        .enter(|| pins::attach_or_adopt(&root.0, GUARD_DEV, AttachMode::Auto, MapSizes::default()))
        .expect("attach");
    assert!(!first.adopted);
    let prog_id = first.program_id;
    let mut maps = first.maps;
    let entry = BanEntry {
        expires_ns: 0,
        created_ns: monotonic_ns(),
        origin: BanOrigin::Userspace as u32,
        _pad: 0,
    };
    maps.bans.insert(bad.parse().unwrap(), entry).unwrap();
    // Everything this process held is gone, as after a crash.
    drop(maps);

    assert!(!lab.arrives(&bad, &rx), "ban enforced with no owner");
    assert!(lab.arrives(&format!("{}.2", lab.prefix), &rx));

    let second = lab
        .guarded
        .enter(|| pins::attach_or_adopt(&root.0, GUARD_DEV, AttachMode::Auto, MapSizes::default()))
        .expect("adopt");
    assert!(second.adopted, "second start adopts");
    assert_eq!(second.program_id, prog_id, "no second program attached");
    assert_eq!(
        lab.guarded.enter(|| attached_program_id(GUARD_DEV)),
        Some(prog_id)
    );
    assert!(
        second
            .maps
            .bans
            .get(bad.parse().unwrap())
            .unwrap()
            .is_some(),
        "ban kept"
    );
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
}

#[test]
fn stale_pin_on_a_recreated_interface_is_replaced() {
    let lab = VethLab::new("10.201.6");
    let root = PinRoot(PathBuf::from(format!(
        "/sys/fs/bpf/sst{}-stale",
        std::process::id()
    )));
    let first = lab
        .guarded
        .enter(|| pins::attach_or_adopt(&root.0, GUARD_DEV, AttachMode::Auto, MapSizes::default()))
        .unwrap();
    let old = first.program_id;
    drop(first);
    // The interface goes away and comes back: the old link is defunct.
    drop(lab);
    let lab = VethLab::new("10.201.6");
    let again = lab
        .guarded
        .enter(|| pins::attach_or_adopt(&root.0, GUARD_DEV, AttachMode::Auto, MapSizes::default()))
        .unwrap();
    assert!(!again.adopted);
    assert_ne!(again.program_id, old);
    drop(again);
    assert!(pins::detach(&root.0, GUARD_DEV).unwrap());
}
