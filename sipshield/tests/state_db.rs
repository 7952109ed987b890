//! The state database: rows in, rows out; a corrupt file moved aside; a
//! newer schema refused; `state.json` imported once.

use std::{fs, time::SystemTime};

use sipshield::{
    daemon::restore::open_state,
    offence::OffenceClass,
    state::{
        db::{Change, DbError, StateDb, DB_FILE_NAME},
        AllowRecord, BanOrigin, BanRecord, HistoryRecord, SshSession, State, StateFile,
        WindowRecord, STATE_VERSION,
    },
};

fn now_unix() -> u64 {
    sipshield::state::unix_secs(SystemTime::now())
}

fn ban(target: &str, n: u32) -> BanRecord {
    BanRecord {
        target: target.parse().unwrap(),
        created: now_unix() - 5,
        expires: Some(now_unix() + 3600),
        class: OffenceClass::SipAuth,
        origin: BanOrigin::Log,
        offence_number: n,
        reason: format!("5 sip-auth offences within 10m (ban #{n})").into(),
    }
}

fn open(dir: &std::path::Path) -> StateDb {
    let (db, moved) = StateDb::open(dir);
    assert!(moved.is_none());
    db.unwrap()
}

#[test]
fn changes_are_rows_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(dir.path());
    // Made once: `ban` reads the clock, and a second may pass.
    let addr_ban = ban("198.51.100.7", 2);
    let history = HistoryRecord {
        addr: "198.51.100.7".parse().unwrap(),
        bans: 2,
        last_offence: now_unix(),
        banned_until: Some(now_unix() + 3600),
    };
    let session = SshSession {
        ip: "192.0.2.4".parse().unwrap(),
        port: 50000,
        method: "publickey".into(),
        accepted: now_unix() - 60,
        last_open: now_unix(),
    };
    let allow = AllowRecord {
        net: "192.0.2.0/24".parse().unwrap(),
        note: "office".into(),
    };
    db.apply(
        &[
            Change::Ban(addr_ban.clone()),
            Change::Ban(ban("203.0.113.0/24", 1)),
            Change::Ban(ban("2001:db8::66", 1)),
            Change::History(history.clone()),
            Change::Allow(vec![allow.clone()]),
            Change::Ssh(vec![session.clone()]),
        ],
        SystemTime::now(),
    )
    .unwrap();
    db.apply(&[Change::Lift(ban("2001:db8::66", 1))], SystemTime::now())
        .unwrap();
    drop(db);
    let db = open(dir.path());
    let (state, skipped) = db.load().unwrap();
    assert_eq!(skipped, 0);
    let mut targets: Vec<String> = state.bans.iter().map(|b| b.target.to_string()).collect();
    targets.sort();
    assert_eq!(targets, ["198.51.100.7", "203.0.113.0/24"]);
    assert_eq!(
        state.bans.iter().find(|b| b.offence_number == 2).unwrap(),
        &addr_ban
    );
    assert_eq!(state.history, [history]);
    assert_eq!(state.allow, [allow]);
    assert_eq!(state.ssh_sessions, [session]);

    // The lift is in the log, with what the ban was.
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
    let (action, class): (String, String) = conn
        .query_row(
            "SELECT action, class FROM ban_log WHERE target = '2001:db8::66' ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((action.as_str(), class.as_str()), ("lift", "sip-auth"));
    let logged: i64 = conn
        .query_row("SELECT count(*) FROM ban_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(logged, 4, "three bans and one lift");
}

#[test]
fn failure_windows_and_journal_positions_are_kept_and_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(dir.path());
    let now_ms = now_unix() * 1000;
    let open_window = WindowRecord {
        addr: "198.51.100.8".parse().unwrap(),
        class: OffenceClass::SipAuth,
        times_ms: vec![now_ms - 2000, now_ms - 1000],
    };
    let old_window = WindowRecord {
        addr: "198.51.100.9".parse().unwrap(),
        class: OffenceClass::Ssh,
        times_ms: vec![now_ms - 7_200_000],
    };
    let gone = WindowRecord {
        addr: "198.51.100.10".parse().unwrap(),
        class: OffenceClass::SipAuth,
        times_ms: vec![now_ms],
    };
    db.apply(
        &[
            Change::Window(open_window.clone()),
            Change::Window(old_window),
            Change::Window(gone.clone()),
            Change::Meta {
                key: "log_cursor journal".into(),
                value: "s=abc;i=7".into(),
            },
        ],
        SystemTime::now(),
    )
    .unwrap();
    // The source was banned: its window went.
    db.apply(
        &[Change::Window(WindowRecord {
            times_ms: Vec::new(),
            ..gone
        })],
        SystemTime::now(),
    )
    .unwrap();
    db.prune(
        SystemTime::now(),
        std::time::Duration::from_secs(86_400),
        std::time::Duration::from_secs(3600),
    )
    .unwrap();
    drop(db);
    let db = open(dir.path());
    let (state, skipped) = db.load().unwrap();
    assert_eq!(skipped, 0);
    assert_eq!(
        state.windows,
        [open_window],
        "the old one is pruned, the gone one deleted"
    );
    assert_eq!(
        db.meta("log_cursor journal").unwrap().as_deref(),
        Some("s=abc;i=7")
    );
}

#[test]
fn a_corrupt_database_is_moved_aside_and_a_new_one_made() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    fs::write(
        &path,
        b"this is not an SQLite database, it only has its name",
    )
    .unwrap();
    let (db, moved) = StateDb::open(dir.path());
    let db = db.expect("a new database");
    match moved {
        Some(DbError::MovedAside { aside, .. }) => {
            assert!(aside.exists(), "the evidence is kept");
            assert!(fs::read(&aside).unwrap().starts_with(b"this is not"));
        }
        other => panic!("not reported: {other:?}"),
    }
    assert!(db.load().unwrap().0.bans.is_empty());
}

#[test]
fn a_newer_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
    conn.execute(
        "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let (db, moved) = StateDb::open(dir.path());
    assert!(matches!(db, Err(DbError::Newer { found: 99, .. })));
    assert!(moved.is_none());
    assert!(dir.path().join(DB_FILE_NAME).exists());
}

#[test]
fn rows_a_hand_edit_broke_are_skipped_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(dir.path());
    db.apply(&[Change::Ban(ban("198.51.100.9", 1))], SystemTime::now())
        .unwrap();
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
    conn.execute(
        "INSERT INTO bans VALUES ('not-an-address', 1, NULL, 'sip-auth', 'log', 1, 'x'),
                                 ('198.51.100.10', -5, NULL, 'no-such-class', 'log', 1, 'x'),
                                 ('198.51.100.11', 'yesterday', NULL, 'sip-auth', 'log', 1, 'x'),
                                 ('198.51.100.12', 1, NULL, 'sip-auth', 'log', 1, X'00ff')",
        [],
    )
    .unwrap();
    // A text where a number belongs, a blob where a text does: skipped
    // like any other hand edit, never the whole load (and the start).
    conn.execute(
        "INSERT INTO history VALUES ('198.51.100.13', 'two', 1, NULL)",
        [],
    )
    .unwrap();
    let (state, skipped) = db.load().unwrap();
    assert_eq!((state.bans.len(), skipped), (1, 5));
}

/// The fleet decisions and the alert queue are read the same way: one row
/// a hand edit broke costs that row, not every CrowdSec ban kept (which
/// would be gone from the kernel until LAPI answers again) or every alert
/// waiting for LAPI.
#[test]
fn fleet_and_alert_rows_a_hand_edit_broke_are_skipped_not_fatal() {
    use sipshield::fleet::book::{FleetDecision, FleetSource};
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(dir.path());
    let now = now_unix();
    db.apply(
        &[
            Change::Fleet(FleetDecision {
                source: FleetSource::CrowdSec,
                id: "7".into(),
                target: "203.0.113.7".parse().unwrap(),
                until: Some(now + 3600),
                scenario: "crowdsecurity/ssh-bf".into(),
                origin: "CAPI".into(),
            }),
            Change::AlertQueued {
                key: "a1".into(),
                created: now,
                alert: "{}".into(),
            },
        ],
        SystemTime::now(),
    )
    .unwrap();
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
    conn.execute(
        "INSERT INTO fleet VALUES ('crowdsec', '8', '203.0.113.8', 'tomorrow', 's', 'CAPI'),
                                  ('crowdsec', '9', X'00ff', NULL, 's', 'CAPI'),
                                  ('crowdsec', '10', '203.0.113.10', NULL, X'01', 'CAPI'),
                                  ('nobody', '11', '203.0.113.11', NULL, 's', 'CAPI')",
        [],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO alert_queue VALUES ('a2', 2, X'00ff'), (X'01', 3, '{}')",
        [],
    )
    .unwrap();
    let (fleet, skipped) = db.load_fleet(now).unwrap();
    let ids: Vec<&str> = fleet.iter().map(|d| d.id.as_str()).collect();
    assert_eq!((ids, skipped), (vec!["7"], 4));
    let (queue, skipped) = db.load_alert_queue().unwrap();
    assert_eq!(queue, [("a1".to_string(), "{}".to_string())]);
    assert_eq!(skipped, 2);
}

#[test]
fn state_json_is_imported_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = State {
        version: STATE_VERSION,
        saved_at: now_unix(),
        bans: vec![ban("198.51.100.20", 1)],
        history: Vec::new(),
        allow: vec![AllowRecord {
            net: "10.0.0.0/8".parse().unwrap(),
            note: "lab".into(),
        }],
        ssh_sessions: Vec::new(),
        windows: Vec::new(),
        known_good: Vec::new(),
    };
    StateFile::in_dir(dir.path()).save(&state).unwrap();
    let (_, loaded) = open_state(dir.path(), SystemTime::now()).unwrap();
    assert_eq!(loaded.bans.len(), 1);
    assert_eq!(loaded.allow.len(), 1);
    assert!(!dir.path().join("state.json").exists());
    assert!(dir.path().join("state.json.imported").exists());
    assert!(dir.path().join("allowlist.txt").exists());
    // A state.json that appears later (an old sipshield run by mistake) is
    // not imported over the database.
    let other = State {
        bans: vec![ban("198.51.100.21", 1)],
        ..state
    };
    StateFile::in_dir(dir.path()).save(&other).unwrap();
    let (_, again) = open_state(dir.path(), SystemTime::now()).unwrap();
    let targets: Vec<String> = again.bans.iter().map(|b| b.target.to_string()).collect();
    assert_eq!(targets, ["198.51.100.20"]);
}

#[test]
fn the_operator_allowlist_survives_a_lost_database() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut db, _) = open_state(dir.path(), SystemTime::now()).unwrap();
        let entries = vec![AllowRecord {
            net: "192.0.2.50/32".parse().unwrap(),
            note: "trunk of ACME".into(),
        }];
        db.apply(&[Change::Allow(entries.clone())], SystemTime::now())
            .unwrap();
        sipshield::daemon::store::write_allowlist(&dir.path().join("allowlist.txt"), &entries)
            .unwrap();
    }
    fs::write(dir.path().join(DB_FILE_NAME), b"garbage").unwrap();
    let _ = fs::remove_file(dir.path().join("state.db-wal"));
    let (_, state) = open_state(dir.path(), SystemTime::now()).unwrap();
    assert_eq!(state.allow.len(), 1, "{state:?}");
    assert_eq!(state.allow[0].note, "trunk of ACME");
}
