//! Real scanners (sipvicious svmap and svwar) against a guarded namespace
//! with the daemon running: the kernel's scanner signature bans them at
//! their first packet, they get no answer, the daemon records the ban, and a
//! phone keeps being answered. Needs root and the sipvicious package.

use std::{
    collections::HashMap,
    net::{IpAddr, UdpSocket},
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use sipshield::bpf::{clock::monotonic_ns, pins};
use sipshield_common::{maps::BanOrigin, sip::Method};
use sipshield_tests::{
    daemon::{cli, daemon_log, Daemon, DaemonPaths},
    netns::{VethLab, GUARD_DEV},
};

/// Answers every SIP request with 200 OK (echoing the transaction headers)
/// and counts requests per source, until dropped.
struct Responder {
    seen: Arc<Mutex<HashMap<IpAddr, u32>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responder {
    fn start(lab: &VethLab) -> Responder {
        let sock = lab
            .guarded
            .enter(|| UdpSocket::bind(format!("{}:5060", lab.guarded_addr())))
            .expect("bind 5060");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (Arc::clone(&seen), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !st2.load(Ordering::Relaxed) {
                let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                *s2.lock().unwrap().entry(peer.ip()).or_insert(0) += 1;
                let req = String::from_utf8_lossy(&buf[..n]);
                let mut reply = String::from("SIP/2.0 200 OK\r\n");
                for line in req.lines() {
                    let l = line.to_ascii_lowercase();
                    if ["via:", "from:", "to:", "call-id:", "cseq:"]
                        .iter()
                        .any(|h| l.starts_with(h))
                    {
                        reply.push_str(line);
                        reply.push_str("\r\n");
                    }
                }
                reply.push_str("Content-Length: 0\r\n\r\n");
                let _ = sock.send_to(reply.as_bytes(), peer);
            }
        });
        Responder {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn requests_from(&self, ip: &str) -> u32 {
        let ip: IpAddr = ip.parse().unwrap();
        self.seen.lock().unwrap().get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs a sipvicious tool in the outside namespace from `from`, bounded.
fn sipvicious(lab: &VethLab, home: &std::path::Path, tool: &str, args: &[&str]) {
    let out = Command::new("timeout")
        .args(["20", "ip", "netns", "exec", &lab.outside.name, tool])
        .args(args)
        .env("HOME", home)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (is sipvicious installed? cargo xtask deps)"));
    eprintln!("{tool}: {}", String::from_utf8_lossy(&out.stdout).trim());
}

#[test]
fn svmap_and_svwar_are_banned_by_the_kernel_at_their_first_packet() {
    let lab = VethLab::new("10.202.5");
    let phone = lab.add_sender(20);
    let mapper = lab.add_sender(66);
    // svwar does not apply --bindingip to its REGISTERs: it sends from the
    // namespace's primary address.
    let warrior = format!("{}.2", lab.prefix);
    let paths = DaemonPaths::new("d5");
    let log = paths.log("messages").to_str().unwrap().to_string();
    let daemon = Daemon::start(
        &lab.guarded,
        &paths,
        &[
            "--iface",
            GUARD_DEV,
            "--asterisk-log",
            &log,
            "--detach-on-exit",
        ],
    );
    let responder = Responder::start(&lab);
    let home = tempfile::tempdir().unwrap();
    let target = lab.guarded_addr();

    // A phone is answered before the scan.
    let ph = lab.sender(&phone);
    ph.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let options = |sock: &UdpSocket| {
        let msg = format!(
            "OPTIONS sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {phone}:5060;branch=z9hG4bK1\r\nFrom: <sip:101@{phone}>;tag=1\r\nTo: <sip:{target}>\r\nCall-ID: 1@{phone}\r\nCSeq: 1 OPTIONS\r\nUser-Agent: Yealink SIP-T46S\r\nContent-Length: 0\r\n\r\n"
        );
        sock.send_to(msg.as_bytes(), format!("{target}:5060"))
            .unwrap();
        let mut buf = [0u8; 2048];
        sock.recv_from(&mut buf).is_ok()
    };
    assert!(options(&ph), "the phone is answered before the scan");

    // svmap from its own address.
    let t0 = monotonic_ns();
    sipvicious(
        &lab,
        home.path(),
        "svmap",
        &["-p5060", "--bindingip", &mapper, "-t", "0.5", &target],
    );
    // svwar (REGISTER extension enumeration) from another.
    sipvicious(
        &lab,
        home.path(),
        "svwar",
        &[
            "-e100-120",
            "-m",
            "REGISTER",
            "-t",
            "0.5",
            &format!("udp://{target}:5060"),
        ],
    );

    let maps = pins::open_pinned(&paths.pin_root, GUARD_DEV).expect("pinned maps");
    for scanner in [&mapper, &warrior] {
        assert_eq!(
            responder.requests_from(scanner),
            0,
            "{scanner}: not one request reached the PBX, so no answer either"
        );
        let ban = maps
            .bans
            .get(scanner.parse().unwrap())
            .unwrap()
            .unwrap_or_else(|| panic!("{scanner} banned by the kernel: {}", daemon_log(&paths)));
        assert_eq!(ban.origin, BanOrigin::Scanner as u32, "{scanner}");
        let stats = maps
            .sources
            .get(scanner.parse().unwrap())
            .unwrap()
            .expect("source stats");
        assert_eq!(
            stats.total_messages(),
            1,
            "{scanner}: banned at its first packet"
        );
        if scanner == &mapper {
            assert_eq!(stats.methods[Method::Options as usize], 1);
            let after_launch = ban.created_ns.saturating_sub(t0) as f64 / 1e6;
            eprintln!("svmap banned {after_launch:.0} ms after launch (Python start-up included)");
            assert!(after_launch < 5_000.0, "{after_launch} ms");
        }
    }

    // The daemon recorded the kernel bans with their class.
    std::thread::sleep(Duration::from_millis(200));
    let out = cli(&lab.guarded, &paths, &["bans", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for scanner in [&mapper, &warrior] {
        let rec = list
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["target"] == scanner.as_str())
            .unwrap_or_else(|| panic!("{scanner} recorded: {list:#}"));
        assert_eq!(rec["class"], "scanner");
    }

    // The phone is still answered.
    assert!(options(&ph), "the phone is answered after the scan");
    assert!(responder.requests_from(&phone) >= 2);
    drop(responder);
    assert!(daemon.stop().success());
}
