//! `LogFollower` behaves like `tail -F`: specified by example on temp files.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sipshield::logs::{FollowOptions, LogFollower, StartAt};

fn options(start: StartAt) -> FollowOptions {
    FollowOptions {
        start,
        rotated_grace: Duration::from_secs(60),
        ..FollowOptions::default()
    }
}

fn append(path: &Path, text: &str) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn log_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("messages")
}

#[test]
fn starts_at_the_end_of_an_existing_file_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    append(&path, "old 1\nold 2\n");
    let mut follower = LogFollower::new(&path, FollowOptions::default()).unwrap();
    assert!(follower.poll().unwrap().is_empty());
    append(&path, "new 1\nnew 2\n");
    assert_eq!(follower.poll().unwrap(), ["new 1", "new 2"]);
    assert!(follower.poll().unwrap().is_empty());
    assert_eq!(follower.stats().lines, 2);
}

#[test]
fn from_start_reads_what_is_already_there() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    append(&path, "old 1\r\nold 2\n");
    let mut follower = LogFollower::new(&path, options(StartAt::Beginning)).unwrap();
    assert_eq!(follower.poll().unwrap(), ["old 1", "old 2"]);
}

#[test]
fn starting_at_the_end_skips_the_line_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    append(&path, "old\nhalf of a li");
    let mut follower = LogFollower::new(&path, FollowOptions::default()).unwrap();
    append(&path, "ne\nnext\n");
    assert_eq!(follower.poll().unwrap(), ["next"]);
}

#[test]
fn a_partial_line_waits_for_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    File::create(&path).unwrap();
    let mut follower = LogFollower::new(&path, FollowOptions::default()).unwrap();
    append(&path, "Failed password for ro");
    assert!(follower.poll().unwrap().is_empty());
    append(&path, "ot from 5.6.7.8 port 22 ssh2\nInvalid");
    assert_eq!(
        follower.poll().unwrap(),
        ["Failed password for root from 5.6.7.8 port 22 ssh2"]
    );
    append(&path, " user x\n");
    assert_eq!(follower.poll().unwrap(), ["Invalid user x"]);
}

#[test]
fn a_file_that_does_not_exist_yet_is_read_from_its_beginning_once_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    let mut follower = LogFollower::new(&path, FollowOptions::default()).unwrap();
    assert!(!follower.is_open());
    assert!(follower.poll().unwrap().is_empty());
    append(&path, "first\nsecond\n");
    assert_eq!(follower.poll().unwrap(), ["first", "second"]);
    assert!(follower.is_open());
}

#[test]
fn rename_and_create_reads_the_old_files_remainder_then_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    append(&path, "1\n");
    let mut follower = LogFollower::new(&path, options(StartAt::Beginning)).unwrap();
    assert_eq!(follower.poll().unwrap(), ["1"]);

    append(&path, "2\n3\n");
    let rotated = dir.path().join("messages.1");
    fs::rename(&path, &rotated).unwrap();
    append(&path, "4\n");
    assert_eq!(follower.poll().unwrap(), ["2", "3", "4"]);
    assert_eq!(follower.stats().rotations, 1);

    // The writer has not reopened its log yet: it still appends to the old file.
    append(&rotated, "5\n");
    append(&path, "6\n");
    assert_eq!(follower.poll().unwrap(), ["5", "6"]);
}

#[test]
fn a_rotated_file_is_let_go_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    File::create(&path).unwrap();
    let grace = Duration::from_millis(50);
    let mut follower = LogFollower::new(
        &path,
        FollowOptions {
            rotated_grace: grace,
            ..FollowOptions::default()
        },
    )
    .unwrap();
    let rotated = dir.path().join("messages.1");
    fs::rename(&path, &rotated).unwrap();
    append(&path, "new\n");
    assert_eq!(follower.poll().unwrap(), ["new"]);

    // Its unterminated last line is still a line when it is let go.
    append(&rotated, "last words");
    assert!(follower.poll().unwrap().is_empty());
    std::thread::sleep(grace * 2);
    assert_eq!(follower.poll().unwrap(), ["last words"]);
    append(&rotated, "too late\n");
    assert!(follower.poll().unwrap().is_empty());
}

#[test]
fn renamed_away_and_not_yet_recreated_keeps_reading_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    File::create(&path).unwrap();
    let mut follower = LogFollower::new(&path, FollowOptions::default()).unwrap();
    let rotated = dir.path().join("messages.1");
    fs::rename(&path, &rotated).unwrap();
    append(&rotated, "a\n");
    assert_eq!(follower.poll().unwrap(), ["a"]);
    append(&path, "b\n");
    assert_eq!(follower.poll().unwrap(), ["b"]);
}

#[test]
fn copytruncate_reads_the_file_again_from_its_beginning() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    append(&path, "1\n2\n");
    let mut follower = LogFollower::new(&path, options(StartAt::Beginning)).unwrap();
    assert_eq!(follower.poll().unwrap(), ["1", "2"]);

    File::create(&path).unwrap(); // truncate
    append(&path, "3\n");
    assert_eq!(follower.poll().unwrap(), ["3"]);
    assert_eq!(follower.stats().truncations, 1);
}

#[test]
fn copytruncate_is_noticed_even_when_the_file_regrew_past_our_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    append(&path, "short 1\nshort 2\n");
    let mut follower = LogFollower::new(&path, options(StartAt::Beginning)).unwrap();
    assert_eq!(follower.poll().unwrap(), ["short 1", "short 2"]);

    File::create(&path).unwrap();
    append(&path, "a much longer line written after the truncation\n");
    assert_eq!(
        follower.poll().unwrap(),
        ["a much longer line written after the truncation"]
    );
}

#[test]
fn copytruncate_takes_unread_lines_from_logrotates_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    append(&path, "1\n");
    let mut follower = LogFollower::new(&path, options(StartAt::Beginning)).unwrap();
    assert_eq!(follower.poll().unwrap(), ["1"]);

    append(&path, "2\n3\n");
    fs::copy(&path, dir.path().join("messages.1")).unwrap();
    File::create(&path).unwrap();
    append(&path, "4\n");
    assert_eq!(follower.poll().unwrap(), ["2", "3", "4"]);
    assert_eq!(follower.stats().recovered_copies, 1);
}

#[test]
fn an_unrelated_sibling_is_not_mistaken_for_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    append(&path, "1\n");
    let mut follower = LogFollower::new(&path, options(StartAt::Beginning)).unwrap();
    assert_eq!(follower.poll().unwrap(), ["1"]);
    append(&path, "2\n");
    append(&dir.path().join("messages.old"), "x\ny\nz\n");
    File::create(&path).unwrap();
    append(&path, "3\n");
    assert_eq!(follower.poll().unwrap(), ["3"]);
}

#[test]
fn overlong_lines_are_dropped_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    File::create(&path).unwrap();
    let mut follower = LogFollower::new(
        &path,
        FollowOptions {
            max_line_bytes: 16,
            ..FollowOptions::default()
        },
    )
    .unwrap();
    append(&path, "short\nthis line is far too long");
    assert_eq!(follower.poll().unwrap(), ["short"]);
    append(&path, " and goes on\nok\n");
    assert_eq!(follower.poll().unwrap(), ["ok"]);
    assert_eq!(follower.stats().dropped_long_lines, 1);
}

/// A writer appends numbered lines and rotates its log every 150 lines,
/// alternating rename+create and copytruncate, while we poll: every line
/// arrives exactly once, in order.
#[test]
fn no_line_is_lost_or_read_twice_across_rotations() {
    const LINES: usize = 3000;
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    File::create(&path).unwrap();
    let mut follower = LogFollower::new(
        &path,
        FollowOptions {
            rotated_grace: Duration::from_millis(20),
            ..FollowOptions::default()
        },
    )
    .unwrap();

    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        let dir = writer_path.parent().unwrap().to_owned();
        let open = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .unwrap()
        };
        let mut file = open(&writer_path);
        for n in 0..LINES {
            // Lines of several sizes, written in two pieces, so reads see partial lines.
            let line = format!("line {n} {}\n", "x".repeat(n % 97));
            let (head, tail) = line.split_at(line.len() / 2);
            file.write_all(head.as_bytes()).unwrap();
            file.write_all(tail.as_bytes()).unwrap();
            if n % 150 == 149 {
                if (n / 150) % 2 == 0 {
                    fs::rename(&writer_path, dir.join(format!("messages.{n}"))).unwrap();
                    file = open(&writer_path);
                } else {
                    fs::copy(&writer_path, dir.join("messages.1")).unwrap();
                    file.set_len(0).unwrap();
                }
            }
            if n % 7 == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    });

    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < LINES && Instant::now() < deadline {
        got.extend(follower.poll().unwrap());
        std::thread::sleep(Duration::from_micros(300));
    }
    writer.join().unwrap();
    got.extend(follower.poll().unwrap());

    let want: Vec<String> = (0..LINES)
        .map(|n| format!("line {n} {}", "x".repeat(n % 97)))
        .collect();
    assert_eq!(got.len(), want.len());
    assert!(
        got == want,
        "first difference at {:?}",
        got.iter().zip(&want).position(|(a, b)| a != b)
    );
    let stats = follower.stats();
    assert_eq!(
        stats.rotations + stats.truncations,
        (LINES / 150) as u64,
        "{stats:?}"
    );
}

#[test]
fn a_wording_no_parser_knows_raises_the_drift_alarm_in_status() {
    use sipshield::daemon::watch::{LogKind, LogWatch};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messages");
    std::fs::write(&path, "").unwrap();
    let mut watch = LogWatch::new(path.clone(), LogKind::Asterisk, false);
    let lines = [
        "[2025-01-10 10:00:00] VERBOSE[1] asterisk.c: Asterisk 20.5.0, Copyright (C) 1999 - 2023, Sangoma Technologies Corporation and others.",
        // Known: matched, charged.
        "[2025-01-10 10:00:01] NOTICE[12] chan_sip.c: Registration from '<sip:1@h>' failed for '203.0.113.5:5060' - Wrong password",
        // A made-up rewording of the pjsip line: the parsers do not know it.
        "[2025-01-10 10:00:02] NOTICE[12] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '<sip:1@h>' failed for '203.0.113.6:5060' (callid: x) - Credentials rejected",
        // Noise: not counted.
        "[2025-01-10 10:00:03] NOTICE[12] chan_sip.c: Peer '100' is now Reachable. (5ms / 2000ms)",
    ];
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
    }
    {
        // A line whose sender cannot be told: counted, shown, charges nobody.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(f, "[2025-01-10 10:00:04] NOTICE[12] chan_sip.c: Registration from '{}' failed for '9.9.9.9' - Wrong password", "a".repeat(8200)).unwrap();
    }
    let parsed = watch.poll(&|_| false);
    assert_eq!(parsed.len(), 1, "the known line still parses");
    assert_eq!(watch.status().charged_nobody, 1);
    assert!(watch
        .status()
        .charged_nobody_sample
        .unwrap()
        .contains("Registration from"));
    let st = watch.status();
    assert_eq!(st.unmatched_failures, 1, "{st:?}");
    assert!(st.unmatched_samples[0].contains("Credentials rejected"));
    assert_eq!(st.asterisk_version.as_deref(), Some("20.5.0"));
}

#[test]
fn a_line_with_two_readings_charges_the_only_candidate_the_kernel_saw() {
    use sipshield::daemon::watch::{LogKind, LogWatch};
    use sipshield::logs::Parsed;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("security");
    std::fs::write(&path, "").unwrap();
    let mut watch = LogWatch::new(path.clone(), LogKind::Asterisk, false);
    // InvalidPassword with a whole fake middle in SessionID and the real
    // one swallowed by a ReceivedHash: both readings fit the field order.
    let line = |real: &str| {
        format!(
            "[2025-01-10 10:00:05] SECURITY[13] res_security_log.c: SecurityEvent=\"InvalidPassword\",EventTV=\"2025-01-10T10:00:05.000+0000\",Severity=\"Error\",Service=\"PJSIP\",EventVersion=\"2\",AccountID=\"100\",SessionID=\"s\",LocalAddress=\"IPV4/UDP/192.0.2.10/5060\",RemoteAddress=\"IPV4/UDP/9.9.9.9/5060\",ReceivedHash=\"x\",SessionID=\"c\",LocalAddress=\"IPV4/UDP/192.0.2.10/5060\",RemoteAddress=\"IPV4/UDP/{real}/5060\""
        )
    };
    let append = |l: String| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(f, "{l}").unwrap();
    };
    append(line("203.0.113.20"));
    // The kernel saw only 203.0.113.20 send.
    let seen: std::net::IpAddr = "203.0.113.20".parse().unwrap();
    let parsed = watch.poll(&|ip| ip == seen);
    assert!(
        matches!(parsed.as_slice(), [Parsed::Failure(f)] if f.ip == seen),
        "{parsed:?}"
    );
    assert_eq!(watch.status().charged_by_sighting, 1);
    // Both seen (a forger sent from the other one), or neither (the LRU
    // forgot): nobody.
    append(line("203.0.113.21"));
    assert!(watch.poll(&|_| true).is_empty());
    append(line("203.0.113.22"));
    assert!(watch.poll(&|_| false).is_empty());
    assert_eq!(watch.status().charged_nobody, 2);
}

#[test]
fn a_log_read_for_known_good_sources_only_charges_nobody() {
    use sipshield::daemon::watch::LogWatch;
    use sipshield::logs::Parsed;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("security");
    std::fs::write(&path, "").unwrap();
    let mut watch = LogWatch::asterisk(path.clone(), false, false);
    let event = |e: &str, ip: &str| {
        format!("[2025-01-10 10:00:05] SECURITY[13] res_security_log.c: SecurityEvent=\"{e}\",EventTV=\"t\",Severity=\"Error\",Service=\"PJSIP\",EventVersion=\"1\",AccountID=\"100\",SessionID=\"c\",LocalAddress=\"IPV4/UDP/192.0.2.10/5060\",RemoteAddress=\"IPV4/UDP/{ip}/5060\"")
    };
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(f, "{}", event("InvalidAccountID", "203.0.113.30")).unwrap();
    writeln!(
        f,
        "{},UsingPassword=\"1\"",
        event("SuccessfulAuth", "198.51.100.31")
    )
    .unwrap();
    drop(f);
    let parsed = watch.poll(&|_| false);
    assert!(
        matches!(parsed.as_slice(), [Parsed::KnownGood(g)] if g.ip.to_string() == "198.51.100.31"),
        "{parsed:?}"
    );
}
