//! Blocklist feeds against a local HTTP server of the test's own, with
//! answers written from the feeds' documentation: VoIPBL's list (its `#`
//! header, CIDRs and /32s), APIBAN's pages by ID with its end marker (HTTP
//! 400, `"ID":"none"`) and its rate limit (429), garbage, and a server that
//! never answers. Needs root.

use std::{
    io::{Read, Write},
    net::TcpListener,
    sync::{Arc, Mutex},
    time::Duration,
};

use sipshield_tests::{
    daemon::{ban_targets, cli, daemon_log, start_configured, status, wait_for, DaemonPaths},
    netns::{VethLab, GUARD_DEV},
};

/// What the server answers, changed by the test as it goes.
#[derive(Default)]
struct Answers {
    voipbl: String,
    /// A plain list (`kind = "list"`): one address or CIDR per line.
    list: String,
    /// APIBAN pages (by ID) that answer 429 once before they answer.
    apiban_429: Vec<&'static str>,
    apiban_asked: Vec<String>,
}

fn respond(conn: &mut std::net::TcpStream, status: &str, body: &str) {
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Serves /voipbl, /list, /api/KEY/banned/ID and /slow (never answers).
fn serve(lab: &VethLab, answers: Arc<Mutex<Answers>>) -> u16 {
    let listener = lab
        .guarded
        .enter(|| TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                match conn.read(&mut b) {
                    Ok(1) => head.push(b[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut a = answers.lock().unwrap();
            if path == "/voipbl" {
                let body = a.voipbl.clone();
                respond(&mut conn, "200 OK", &body);
            } else if path == "/list" {
                let body = a.list.clone();
                respond(&mut conn, "200 OK", &body);
            } else if let Some(id) = path.strip_prefix("/api/testkey123/banned/") {
                a.apiban_asked.push(id.to_string());
                if let Some(at) = a.apiban_429.iter().position(|p| *p == id) {
                    a.apiban_429.remove(at);
                    respond(
                        &mut conn,
                        "429 Too Many Requests",
                        r#"{"ipaddress":"rate limit exceeded","ID":"unauthorized"}"#,
                    );
                    continue;
                }
                match id {
                    "100" => respond(
                        &mut conn,
                        "200 OK",
                        r#"{"ipaddress":["192.0.2.201","192.0.2.202"],"ID":"1700000200"}"#,
                    ),
                    "1700000200" => respond(
                        &mut conn,
                        "200 OK",
                        r#"{"ipaddress":["192.0.2.203","not-an-ip"],"ID":"1700000300"}"#,
                    ),
                    _ => respond(
                        &mut conn,
                        "400 Bad Request",
                        r#"{"ipaddress":["no new bans"],"ID":"none"}"#,
                    ),
                }
            } else if path.starts_with("/api/") {
                respond(
                    &mut conn,
                    "403 Forbidden",
                    r#"{"ipaddress":"none","ID":"unauthorized"}"#,
                );
            } else if path == "/slow" {
                // Held open, never answered: the client's timeout ends it.
                held.push(conn);
            } else {
                respond(&mut conn, "404 Not Found", "");
            }
        }
    });
    port
}

fn origin_of(lab: &VethLab, paths: &DaemonPaths, target: &str) -> Option<String> {
    let out = cli(&lab.guarded, paths, &["bans", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v.as_array()?
        .iter()
        .find(|b| b["target"] == target)
        .and_then(|b| b["origin"].as_str().map(String::from))
}

#[test]
fn voipbl_apiban_and_a_plain_list_become_bans_and_a_bad_download_keeps_them() {
    let lab = VethLab::new("10.207.1");
    let listed = lab.add_sender(120);
    let answers = Arc::new(Mutex::new(Answers {
        voipbl: format!(
            "# VoIPBL.org TOTAL NETBLOCK: 4\n{listed}/32\n198.51.100.0/24\n203.0.113.9/32\n<garbage>\n10.207.1.2/32\n"
        ),
        list: "# a plain list\n192.0.2.77\n".into(),
        // The first page, and the second while paging: pages already
        // fetched are kept, the next round goes on from the second.
        apiban_429: vec!["100", "1700000200"],
        ..Answers::default()
    }));
    let port = serve(&lab, answers.clone());
    let paths = DaemonPaths::new("fd");
    // A ban hook: the feeds' bans must not run it ([crowdsec] hooks off).
    let ran = paths.log("hook-ran");
    let hook = paths.log("on-ban.sh");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho \"$1\" >> {}\n", ran.display()),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let key = paths.log("apiban.key");
    std::fs::write(&key, "testkey123\n").unwrap();
    let rx = lab.receiver();
    let daemon = start_configured(
        &lab.guarded,
        &paths,
        GUARD_DEV,
        &format!(
            "[metrics]\nlisten = \"\"\n[hooks]\non_ban = \"{}\"\n[allow]\nasterisk_trunks = false\ncidrs = [\"10.207.1.2/32\"]\n\
             [[feeds]]\nname = \"voipbl\"\nkind = \"voipbl\"\nurl = \"http://127.0.0.1:{port}/voipbl\"\nrefresh = \"1s\"\n\
             [[feeds]]\nname = \"apiban\"\nkind = \"apiban\"\nurl = \"http://127.0.0.1:{port}/api\"\nkey_file = \"{}\"\nrefresh = \"1s\"\nrequest_interval = \"100ms\"\nmax_age = \"1h\"\n\
             [[feeds]]\nname = \"slow\"\nkind = \"list\"\nurl = \"http://127.0.0.1:{port}/slow\"\nrefresh = \"1s\"\ntimeout = \"500ms\"\n\
             [[feeds]]\nname = \"plain\"\nkind = \"list\"\nurl = \"http://127.0.0.1:{port}/list\"\nrefresh = \"1s\"\nmax_age = \"3s\"\n",
            hook.display(),
            key.display()
        ),
    );
    let log = || daemon_log(&paths);

    // VoIPBL: a /32 is an address ban, a /24 a range; the allowlisted
    // entry is not banned; its packets are dropped.
    assert!(
        wait_for(Duration::from_secs(10), || origin_of(&lab, &paths, &listed)
            .as_deref()
            == Some("feed:voipbl")),
        "{}",
        log()
    );
    let bans = ban_targets(&lab.guarded, &paths);
    assert!(bans.contains(&"198.51.100.0/24".to_string()), "{bans:?}");
    assert!(bans.contains(&"203.0.113.9".to_string()), "{bans:?}");
    assert!(
        !bans.contains(&"10.207.1.2".to_string()),
        "allowlisted: {bans:?}"
    );
    assert!(!lab.arrives(&listed, &rx), "dropped by the kernel");

    // APIBAN: a 429 first (backed off), then every page until the end
    // marker (a 429 halfway keeps the pages before it); garbage entries
    // skipped.
    assert!(
        wait_for(Duration::from_secs(15), || {
            let b = ban_targets(&lab.guarded, &paths);
            ["192.0.2.201", "192.0.2.202", "192.0.2.203"]
                .iter()
                .all(|t| b.contains(&t.to_string()))
        }),
        "{}",
        log()
    );
    assert_eq!(
        origin_of(&lab, &paths, "192.0.2.203").as_deref(),
        Some("feed:apiban")
    );
    // Next time it asks from where it was left, not from the start.
    assert!(wait_for(Duration::from_secs(5), || {
        let a = answers.lock().unwrap();
        a.apiban_asked
            .iter()
            .filter(|id| *id == "1700000300")
            .count()
            >= 2
    }));
    let asked = answers.lock().unwrap().apiban_asked.clone();
    assert_eq!(
        asked.iter().filter(|id| *id == "100").count(),
        2,
        "100 asked once more after its 429, never after the second page's: {asked:?}"
    );

    // A plain list: its address is banned, and max_age counts from the
    // last listing: still listed three max_ages later, it never lapsed.
    assert!(
        wait_for(Duration::from_secs(10), || origin_of(
            &lab,
            &paths,
            "192.0.2.77"
        )
        .as_deref()
            == Some("feed:plain")),
        "{}",
        log()
    );
    let watch = std::time::Instant::now();
    while watch.elapsed() < Duration::from_secs(9) {
        assert!(
            ban_targets(&lab.guarded, &paths).contains(&"192.0.2.77".to_string()),
            "a listed entry lapsed at max_age after {:?}: {}",
            watch.elapsed(),
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // No longer listed: lifted at the next refresh.
    answers.lock().unwrap().list = "# empty for now\n192.0.2.78\n".into();
    assert!(wait_for(Duration::from_secs(10), || !ban_targets(
        &lab.guarded,
        &paths
    )
    .contains(&"192.0.2.77".to_string())));

    // The feeds' bans and lifts are events (the structured line, the
    // stream), and ran no hook.
    let events = cli(&lab.guarded, &paths, &["events", "--json"]);
    let events = String::from_utf8_lossy(&events.stdout);
    let has = |action: &str, target: &str, origin: &str| {
        events.lines().any(|l| {
            serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| {
                v["action"] == action && v["target"] == target && v["origin"] == origin
            })
        })
    };
    assert!(has("ban", &listed, "feed:voipbl"), "{events}");
    assert!(has("ban", "192.0.2.77", "feed:plain"), "{events}");
    assert!(has("unban", "192.0.2.77", "feed:plain"), "{events}");
    assert!(
        log().contains(&format!(
            "sipshield-event action=ban target={listed} class=fleet origin=feed:voipbl"
        )),
        "{}",
        log()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !ran.exists(),
        "a feed's ban ran the hook: {:?}",
        std::fs::read_to_string(&ran)
    );

    // The feed that never answers fails alone.
    assert!(wait_for(Duration::from_secs(10), || {
        status(&lab.guarded, &paths)["crowdsec"]["feeds"]["slow"]["failing_since"].is_u64()
    }));

    // VoIPBL drops an entry and adds one: lifted and banned.
    answers.lock().unwrap().voipbl =
        format!("# VoIPBL.org TOTAL NETBLOCK: 2\n{listed}/32\n203.0.113.10/32\n");
    assert!(
        wait_for(Duration::from_secs(10), || {
            let b = ban_targets(&lab.guarded, &paths);
            b.contains(&"203.0.113.10".to_string()) && !b.contains(&"198.51.100.0/24".to_string())
        }),
        "{}",
        log()
    );

    // A garbage answer (an error page with 200): the entries stay.
    answers.lock().unwrap().voipbl = "<html><body>502 Bad Gateway</body></html>\n".into();
    assert!(
        wait_for(Duration::from_secs(10), || {
            status(&lab.guarded, &paths)["crowdsec"]["feeds"]["voipbl"]["failing_since"].is_u64()
        }),
        "{}",
        log()
    );
    assert_eq!(
        origin_of(&lab, &paths, &listed).as_deref(),
        Some("feed:voipbl")
    );
    assert!(!lab.arrives(&listed, &rx));
    let st = status(&lab.guarded, &paths);
    assert_eq!(st["bans"]["fleet_by_source"]["feed:voipbl"], 2, "{st}");
    assert_eq!(st["bans"]["fleet_by_source"]["feed:apiban"], 3, "{st}");

    // An operator cannot lift a feed's ban locally: the feed would bring
    // it back.
    let out = cli(&lab.guarded, &paths, &["bans", "del", &listed]);
    assert!(!out.status.success());

    daemon.stop_and_detach(&lab.guarded, &paths);
}
