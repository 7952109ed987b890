//! The daemon's Prometheus endpoint, scraped in a namespace: what a ban
//! shows, and the exposition checked by `promtool check metrics` (Debian's
//! prometheus package, installed by `cargo xtask deps`). Needs root.

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use sipshield_tests::{
    daemon::{append, daemon_log, wait_for, wrong_password, Daemon, DaemonPaths},
    netns::{VethLab, GUARD_DEV},
};

const PORT: u16 = 19794;

/// `GET /metrics` from inside the guarded namespace: (status line, body).
fn scrape(lab: &VethLab) -> (String, String) {
    scrape_as(lab, "")
}

/// As `scrape`, with extra request headers.
fn scrape_as(lab: &VethLab, headers: &str) -> (String, String) {
    get(lab, PORT, "/metrics", headers)
}

/// `GET path` from port `port` on the guarded namespace's loopback.
fn get(lab: &VethLab, port: u16, path: &str, headers: &str) -> (String, String) {
    // The endpoint opens just after the control socket: allow a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut s = loop {
        match lab
            .guarded
            .enter(|| TcpStream::connect(("127.0.0.1", port)))
        {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("connect to the metrics port: {e}"),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// The value of the sample `name{labels}` (labels as printed), if present.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[test]
fn a_scrape_shows_a_ban_and_promtool_accepts_it() {
    let lab = VethLab::new("10.205.1");
    let paths = DaemonPaths::new("m1");
    let messages = paths.log("messages");
    append(&messages, &[]);
    let config = paths.log("sipshield.toml");
    std::fs::write(
        &config,
        format!("[metrics]\nlisten = \"127.0.0.1:{PORT}\"\n[allow]\nasterisk_trunks = false\n"),
    )
    .unwrap();
    let daemon = Daemon::start(
        &lab.guarded,
        &paths,
        &[
            "--config",
            config.to_str().unwrap(),
            "--iface",
            GUARD_DEV,
            "--asterisk-log",
            messages.to_str().unwrap(),
            "--auth-log",
            paths.log("auth.log").to_str().unwrap(),
        ],
    );
    let (status, body) = scrape(&lab);
    assert!(status.contains("200"), "{status}");
    assert_eq!(sample(&body, "sipshield_up"), Some(1.0), "{body}");
    assert!(body.contains("sipshield_build_info{version=\""), "{body}");

    // Five wrong passwords: a log ban, counted and held.
    append(
        &messages,
        &(0..5)
            .map(|n| wrong_password("198.51.100.77", n))
            .collect::<Vec<_>>(),
    );
    let banned = |body: &str| {
        sample(body, "sipshield_bans{origin=\"log\",class=\"sip-auth\"}") == Some(1.0)
            && sample(body, "sipshield_bans_made_total{class=\"sip-auth\"}") == Some(1.0)
    };
    let mut last = String::new();
    assert!(
        wait_for(Duration::from_secs(5), || {
            last = scrape(&lab).1;
            banned(&last)
        }),
        "{last}\n{}",
        daemon_log(&paths)
    );
    assert!(
        sample(
            &last,
            &format!(
                "sipshield_log_failures_total{{log=\"{}\",kind=\"asterisk\"}}",
                messages.display()
            )
        ) == Some(5.0),
        "{last}"
    );
    assert!(
        last.contains("sipshield_ban_latency_seconds_count 1"),
        "{last}"
    );
    // SIP messages by method, counted by the kernel.
    let rx = lab.receiver();
    for _ in 0..3 {
        lab.arrives("10.205.1.2", &rx);
    }
    assert!(
        wait_for(Duration::from_secs(3), || {
            last = scrape(&lab).1;
            sample(&last, "sipshield_sip_messages_total{method=\"OPTIONS\"}").unwrap_or(0.0) >= 3.0
        }),
        "{last}"
    );
    // No label names a source address.
    assert!(!last.contains("198.51.100.77"), "{last}");

    // The exposition passes promtool's checks.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (cargo xtask deps installs prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(last.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Prometheus itself asks for OpenMetrics and gets it.
    let (_, open) = scrape_as(
        &lab,
        "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n",
    );
    assert!(open.ends_with("# EOF\n"), "{open}");
    assert!(
        open.contains("# TYPE sipshield_bans_made counter"),
        "{open}"
    );

    // A real Prometheus (Debian's) scrapes the OpenMetrics and stores it.
    let prom = Prometheus::start(&lab, &paths);
    let query = "/api/v1/query?query=sipshield_bans_made_total";
    let mut answer = String::new();
    assert!(
        wait_for(Duration::from_secs(20), || {
            answer = get(&lab, PROM_PORT, query, "").1;
            answer.contains("\"class\":\"sip-auth\"") && answer.contains("\"1\"]")
        }),
        "prometheus: {answer}\n{}",
        prom.log()
    );
    let targets = get(&lab, PROM_PORT, "/api/v1/targets", "").1;
    assert!(
        targets.contains("\"health\":\"up\"") && targets.contains("\"lastError\":\"\""),
        "{targets}"
    );
    drop(prom);

    // Every metric the Grafana dashboard queries is exported.
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dist/grafana-dashboard.json"
    ))
    .expect("dist/grafana-dashboard.json");
    let exported: Vec<&str> = last
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut queried = 0;
    for word in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if !word.starts_with("sipshield_") {
            continue;
        }
        queried += 1;
        let family = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| word.strip_suffix(s))
            .unwrap_or(word);
        assert!(
            exported.contains(&family) || exported.contains(&word),
            "the dashboard queries {word}, which is not exported: {exported:?}"
        );
    }
    assert!(queried >= 5, "the dashboard queries sipshield metrics");
    daemon.stop_and_detach(&lab.guarded, &paths);
}

const PROM_PORT: u16 = 19090;

/// Debian's Prometheus in the guarded namespace, scraping the daemon every
/// second; killed (its own pid) when dropped.
struct Prometheus {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Prometheus {
    fn start(lab: &VethLab, paths: &DaemonPaths) -> Prometheus {
        let dir = paths.log("prometheus");
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: sipshield\n    static_configs:\n      - targets: ['127.0.0.1:{PORT}']\n"
            ),
        )
        .unwrap();
        let log = dir.join("log");
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", lab.guarded.name))
            .arg("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{PROM_PORT}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus (cargo xtask deps installs it)");
        Prometheus { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sipshield_packets_total{interface=..., action="pass", reason="sip_counted"}`.
fn counted_on(body: &str, iface: &str) -> f64 {
    sample(
        body,
        &format!(
            "sipshield_packets_total{{interface=\"{iface}\",action=\"pass\",reason=\"sip_counted\"}}"
        ),
    )
    .unwrap_or(0.0)
}

/// Sends `n` SIP OPTIONS from `{subnet}.2` to `{subnet}.1:5060`.
fn send_options(lab: &VethLab, subnet: &str, n: usize) {
    let tx = lab.sender(&format!("{subnet}.2"));
    for _ in 0..n {
        tx.send_to(
            b"OPTIONS sip:100@pbx SIP/2.0\r\n\r\n",
            format!("{subnet}.1:5060"),
        )
        .unwrap();
    }
}

#[test]
fn packets_are_counted_per_interface_and_go_on_across_a_restart() {
    let lab = VethLab::new("10.205.3");
    lab.add_link("sg1", "so1", "10.205.4");
    let paths = DaemonPaths::new("m2");
    let config = paths.log("sipshield.toml");
    std::fs::write(
        &config,
        format!("[metrics]\nlisten = \"127.0.0.1:{PORT}\"\n[allow]\nasterisk_trunks = false\n"),
    )
    .unwrap();
    let messages = paths.log("messages");
    append(&messages, &[]);
    let auth = paths.log("auth.log");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--iface",
        GUARD_DEV,
        "--iface",
        "sg1",
        "--asterisk-log",
        messages.to_str().unwrap(),
        "--auth-log",
        auth.to_str().unwrap(),
    ];
    let daemon = Daemon::start(&lab.guarded, &paths, &args);
    // The socket opens before the kernel is configured; its first answer
    // comes after: until then no port is a SIP port.
    sipshield_tests::daemon::status(&lab.guarded, &paths);
    send_options(&lab, "10.205.4", 4);
    let mut last = String::new();
    assert!(
        wait_for(Duration::from_secs(5), || {
            last = scrape(&lab).1;
            counted_on(&last, "sg1") >= 4.0
        }),
        "{last}\n{}",
        daemon_log(&paths)
    );
    assert_eq!(counted_on(&last, GUARD_DEV), 0.0, "{last}");
    send_options(&lab, "10.205.3", 2);
    assert!(
        wait_for(Duration::from_secs(5), || {
            last = scrape(&lab).1;
            counted_on(&last, GUARD_DEV) >= 2.0
        }),
        "{last}"
    );
    assert_eq!(counted_on(&last, "sg1"), 4.0, "{last}");

    // `status` shows them by interface too.
    let st = sipshield_tests::daemon::status(&lab.guarded, &paths);
    let sg1 = st["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["iface"] == "sg1")
        .cloned()
        .unwrap();
    assert!(sg1["packets"]["passed"].as_u64().unwrap() >= 4, "{st}");

    // A restart keeps each interface's slot: the counts go on.
    daemon.stop();
    let daemon = Daemon::start(&lab.guarded, &paths, &args);
    sipshield_tests::daemon::status(&lab.guarded, &paths);
    send_options(&lab, "10.205.4", 1);
    assert!(
        wait_for(Duration::from_secs(5), || {
            last = scrape(&lab).1;
            counted_on(&last, "sg1") >= 5.0
        }),
        "{last}\n{}",
        daemon_log(&paths)
    );
    assert_eq!(counted_on(&last, GUARD_DEV), 2.0, "{last}");
    daemon.stop_and_detach(&lab.guarded, &paths);
}
