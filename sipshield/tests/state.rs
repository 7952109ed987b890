//! The state file: round trip, atomic replacement, corruption, versions,
//! expiry on load.

use std::{
    fs,
    path::Path,
    time::{Duration, SystemTime},
};

use sipshield::{
    offence::OffenceClass,
    policy::{Allowlist, Decision, Policy, PolicySettings},
    state::{
        AllowRecord, Aside, BanOrigin, BanRecord, HistoryRecord, SshSession, State, StateError,
        StateFile, STATE_VERSION,
    },
};

const NOW: u64 = 1_700_000_000;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn ban(target: &str, expires: Option<u64>) -> BanRecord {
    BanRecord {
        target: target.parse().unwrap(),
        created: NOW - 60,
        expires,
        class: OffenceClass::SipAuth,
        origin: BanOrigin::Log,
        offence_number: 1,
        reason: "5 sip-auth offences within 10m".into(),
    }
}

fn sample() -> State {
    State {
        version: STATE_VERSION,
        saved_at: NOW,
        bans: vec![
            ban("198.51.100.7", Some(NOW + 600)),
            ban("2001:db8:bad::1", None),
            BanRecord {
                origin: BanOrigin::Manual,
                class: OffenceClass::Manual,
                offence_number: 0,
                ..ban("203.0.113.0/24", Some(NOW + 3600))
            },
        ],
        history: vec![HistoryRecord {
            addr: "198.51.100.7".parse().unwrap(),
            bans: 2,
            last_offence: NOW - 60,
            banned_until: Some(NOW + 600),
        }],
        allow: vec![AllowRecord {
            net: "192.0.2.0/24".parse().unwrap(),
            note: "office".to_string(),
        }],
        ssh_sessions: vec![SshSession {
            ip: "192.0.2.44".parse().unwrap(),
            port: 54321,
            method: "publickey".to_string(),
            accepted: NOW - 300,
            last_open: NOW - 10,
        }],
        windows: Vec::new(),
        known_good: Vec::new(),
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn no_file_is_an_empty_state() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = StateFile::in_dir(dir.path()).load(at(NOW)).unwrap();
    assert!(!loaded.found);
    assert_eq!(loaded.state, State::default());
}

#[test]
fn what_is_saved_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let file = StateFile::in_dir(dir.path());
    file.save(&sample()).unwrap();
    let loaded = file.load(at(NOW)).unwrap();
    assert!(loaded.found);
    assert!(loaded.expired.is_empty());
    assert_eq!(loaded.state, sample());
}

#[test]
fn the_file_is_readable_json_with_a_version() {
    let dir = tempfile::tempdir().unwrap();
    let file = StateFile::in_dir(dir.path());
    file.save(&sample()).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&fs::read(file.path()).unwrap()).unwrap();
    assert_eq!(json["version"], STATE_VERSION);
    assert_eq!(json["bans"][0]["target"], "198.51.100.7");
    assert_eq!(json["bans"][0]["origin"], "log");
    assert_eq!(json["bans"][0]["class"], "sip-auth");
    assert_eq!(
        json["bans"][1]["expires"],
        serde_json::Value::Null,
        "permanent"
    );
    assert_eq!(json["bans"][2]["target"], "203.0.113.0/24");
    assert_eq!(json["bans"][2]["origin"], "manual");
}

#[test]
fn saving_replaces_the_file_and_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = StateFile::in_dir(dir.path());
    for n in 0..5 {
        let state = State {
            saved_at: NOW + n,
            ..sample()
        };
        file.save(&state).unwrap();
        assert_eq!(names_in(dir.path()), ["state.json"]);
        assert_eq!(file.load(at(NOW)).unwrap().state.saved_at, NOW + n);
    }
}

#[cfg(unix)]
#[test]
fn the_file_is_private_and_its_directory_is_created() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("var/lib/sipshield");
    let file = StateFile::in_dir(&state_dir);
    file.save(&sample()).unwrap();
    let mode = fs::metadata(file.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_failed_save_leaves_the_old_file_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = StateFile::in_dir(dir.path());
    file.save(&sample()).unwrap();
    // A directory where the file should go: the rename fails.
    let blocked = StateFile::new(dir.path().join("blocked"));
    fs::create_dir(dir.path().join("blocked")).unwrap();
    fs::write(dir.path().join("blocked/inside"), b"x").unwrap();
    assert!(matches!(
        blocked.save(&sample()),
        Err(StateError::Write { .. })
    ));
    assert_eq!(names_in(dir.path()), ["blocked", "state.json"]);
    assert_eq!(file.load(at(NOW)).unwrap().state, sample());
}

#[test]
fn a_corrupt_file_is_reported_and_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let file = StateFile::in_dir(dir.path());
    let garbage = b"{\"version\": 1, \"bans\": [ {\"target\": \"198.51.100.7\", ";
    fs::write(file.path(), garbage).unwrap();
    let err = file.load(at(NOW)).unwrap_err();
    let StateError::Corrupt {
        aside: Aside::MovedTo(moved),
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(moved, &dir.path().join(format!("state.json.corrupt-{NOW}")));
    assert_eq!(
        fs::read(moved).unwrap(),
        garbage,
        "the evidence is kept intact"
    );
    assert!(err.to_string().contains("corrupt"), "{err}");
    assert!(err.to_string().contains("moved aside to"), "{err}");
    // The next start begins empty, and saving does not touch the evidence.
    assert!(!file.load(at(NOW)).unwrap().found);
    file.save(&State::default()).unwrap();
    assert_eq!(fs::read(moved).unwrap(), garbage);
}

#[test]
fn a_second_corruption_in_the_same_second_keeps_both() {
    let dir = tempfile::tempdir().unwrap();
    let file = StateFile::in_dir(dir.path());
    for _ in 0..2 {
        fs::write(file.path(), b"not json").unwrap();
        assert!(matches!(
            file.load(at(NOW)),
            Err(StateError::Corrupt { .. })
        ));
    }
    assert_eq!(
        names_in(dir.path()),
        [
            format!("state.json.corrupt-{NOW}"),
            format!("state.json.corrupt-{NOW}-1")
        ]
    );
}

#[test]
fn empty_files_and_files_without_a_version_are_corrupt() {
    for content in [
        "",
        "{}",
        "[]",
        "{\"version\": 0}",
        "{\"version\": 1, \"bans\": [{\"target\": \"x\"}]}",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(dir.path());
        fs::write(file.path(), content).unwrap();
        assert!(
            matches!(file.load(at(NOW)), Err(StateError::Corrupt { .. })),
            "{content:?}"
        );
        assert!(!file.path().exists(), "{content:?} was moved aside");
    }
}

#[test]
fn an_unreadable_file_is_reported_and_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let file = StateFile::in_dir(dir.path());
    fs::create_dir(file.path()).unwrap();
    let err = file.load(at(NOW)).unwrap_err();
    assert!(
        matches!(
            err,
            StateError::Unreadable {
                aside: Aside::MovedTo(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!file.path().exists());
}

#[test]
fn a_newer_format_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = StateFile::in_dir(dir.path());
    let newer = format!(
        "{{\"version\": {}, \"something\": \"new\"}}",
        STATE_VERSION + 1
    );
    fs::write(file.path(), &newer).unwrap();
    let err = file.load(at(NOW)).unwrap_err();
    let StateError::UnsupportedVersion {
        found, supported, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!((*found, *supported), (STATE_VERSION + 1, STATE_VERSION));
    assert!(err.to_string().contains("newer sipshield"), "{err}");
    assert_eq!(fs::read_to_string(file.path()).unwrap(), newer);
}

#[test]
fn expired_bans_are_pruned_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let file = StateFile::in_dir(dir.path());
    file.save(&sample()).unwrap();
    // 20 minutes later the 10 minute ban is over; the 1h range and the
    // permanent ban remain.
    let loaded = file.load(at(NOW + 1200)).unwrap();
    let targets: Vec<String> = loaded
        .state
        .bans
        .iter()
        .map(|b| b.target.to_string())
        .collect();
    assert_eq!(targets, ["2001:db8:bad::1", "203.0.113.0/24"]);
    assert_eq!(loaded.expired.len(), 1);
    assert_eq!(loaded.expired[0].target.to_string(), "198.51.100.7");
    // Exactly at its expiry a ban is over.
    let loaded = file.load(at(NOW + 600)).unwrap();
    assert_eq!(loaded.expired.len(), 1);
}

#[test]
fn policy_state_survives_a_restart_through_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = StateFile::in_dir(dir.path());
    let source = "198.51.100.7".parse().unwrap();

    let mut before = Policy::new(PolicySettings::default(), Allowlist::new());
    for i in 0..5 {
        before.offence(source, OffenceClass::SipAuth, at(NOW + i));
    }
    file.save(&before.snapshot(at(NOW + 10))).unwrap();

    // Reboot an hour later: the 10 minute ban is gone, the history is not.
    let loaded = file.load(at(NOW + 3600)).unwrap();
    assert_eq!(loaded.expired.len(), 1);
    let mut after = Policy::new(PolicySettings::default(), Allowlist::new());
    after.restore(&loaded.state, at(NOW + 3600));
    assert_eq!(after.ban_count(), 0);
    let mut last = Decision::Ignored;
    for i in 0..5 {
        last = after.offence(source, OffenceClass::SipAuth, at(NOW + 3600 + i));
    }
    let Decision::Ban(order) = last else {
        panic!("{last:?}");
    };
    assert_eq!(order.offence_number, 2);
    assert_eq!(order.duration, Some(Duration::from_secs(3600)));
}

#[test]
fn absurd_timestamps_in_a_state_file_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let max = u64::MAX;
    let text = format!(
        r#"{{"version":1,"saved_at":{max},
        "bans":[
          {{"target":"198.51.100.1","created":{max},"expires":{max},"class":"sip-auth","origin":"log","offence_number":4294967295,"reason":"x"}},
          {{"target":"198.51.100.2","created":0,"expires":1,"class":"sip-auth","origin":"log","offence_number":1,"reason":"x"}},
          {{"target":"198.51.100.0/24","created":{max},"expires":null,"class":"manual","origin":"manual","offence_number":0,"reason":"x"}}
        ],
        "history":[{{"addr":"198.51.100.3","bans":4294967295,"last_offence":{max},"banned_until":{max}}}],
        "ssh_sessions":[{{"ip":"192.0.2.4","port":22,"method":"publickey","accepted":{max},"last_open":{max}}}]}}"#
    );
    fs::write(dir.path().join("state.json"), text).unwrap();
    let file = StateFile::in_dir(dir.path());
    let now = SystemTime::now();
    let loaded = file.load(now).expect("loads");
    let mut policy = Policy::new(PolicySettings::default(), Allowlist::new());
    policy.restore(&loaded.state, now);
    // Offences, escalation, expiry and saving all still work.
    for n in 0..5 {
        let _ = policy.offence(
            "198.51.100.3".parse().unwrap(),
            OffenceClass::SipAuth,
            now + Duration::from_secs(n),
        );
    }
    let _ = policy.record_kernel_ban(
        "198.51.100.9".parse().unwrap(),
        OffenceClass::RateGuard,
        now,
    );
    policy.expire(now + Duration::from_secs(3600));
    policy.ssh_refresh(&[], now);
    let saved = policy.snapshot(now);
    file.save(&saved).unwrap();
    assert!(file.load(now).is_ok());
}
