//! `cargo xtask demo --fleet`: two PBX hosts sharing bans through a real
//! CrowdSec Local API. svcrack guesses passwords on PBX A; A bans it and,
//! the failures being proof (a digest answer to A's challenge), sends the
//! ban to LAPI; PBX B pulls it and drops the cracker before it tries B at
//! all. Fails when B's PBX sees a single request from the cracker.

use std::{
    collections::HashMap,
    net::{IpAddr, UdpSocket},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use super::pbx::{Accounts, Pbx};
use crate::{
    crowdsec::Lapi,
    daemon::{append, ban_targets, start_configured, status, wait_for, Daemon, DaemonPaths},
    netns::{Netns, VethLab, GUARD_DEV},
};

const LAPI_PORT: u16 = 8080;
const EXT: &str = "200";

/// One PBX host: its namespace, lab PBX and sipshield.
struct Host {
    name: &'static str,
    paths: DaemonPaths,
    pbx: Pbx,
    daemon: Option<Daemon>,
}

fn start_host(
    name: &'static str,
    ns: &Netns,
    iface: &str,
    addr: &str,
    lapi_addr: &str,
    key: &str,
    machine: &str,
) -> Result<Host> {
    let paths = DaemonPaths::new(&format!("fleet-{name}"));
    let messages = paths.log("messages");
    append(&messages, &[]);
    let sock = ns.enter(|| UdpSocket::bind(format!("{addr}:5060")))?;
    let pbx = Pbx::start(
        sock,
        Accounts {
            users: HashMap::from([(EXT.to_string(), "k7-Vq2!mR9zx".to_string())]),
            trunks: Vec::new(),
        },
        &messages,
    )?;
    let daemon = start_configured(
        ns,
        &paths,
        iface,
        &format!(
            "[metrics]\nlisten = \"\"\n[allow]\nasterisk_trunks = false\n\
             [xdp]\nscanner_user_agents = []\n\
             [crowdsec]\napi_url = \"http://{lapi_addr}:{LAPI_PORT}/\"\napi_key = \"{key}\"\nupdate_frequency = \"1s\"\n\
             machine_id = \"{machine}\"\npassword = \"{machine}-fleet-password\"\npush_interval = \"500ms\"\n"
        ),
    );
    Ok(Host {
        name,
        paths,
        pbx,
        daemon: Some(daemon),
    })
}

fn svcrack(internet: &Netns, from: &str, target: &str, home: &std::path::Path) -> Result<String> {
    // svcrack sends from the route's preferred source: make it `from`.
    let (subnet, dev) = if target.starts_with("10.209.1.") {
        ("10.209.1.0/24", "so0")
    } else {
        ("10.209.2.0/24", "sob")
    };
    internet.ip(&["route", "replace", subnet, "dev", dev, "src", from]);
    let dict = home.join("dictionary.txt");
    let words: Vec<String> = (0..40).map(|i| format!("guess{i}")).collect();
    std::fs::write(&dict, words.join("\n") + "\n")?;
    let out = Command::new("timeout")
        .args(["30", "ip", "netns", "exec", &internet.name, "svcrack"])
        .args(["-u", EXT, "-d"])
        .arg(&dict)
        .args(["-b", from, "-t", "0.05", "--maximumtime", "3"])
        .arg(format!("udp://{target}:5060"))
        .env("HOME", home)
        .output()
        .context("svcrack (cargo xtask deps installs sipvicious)")?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

pub fn run() -> Result<()> {
    let t0 = Instant::now();
    let say = |what: &str| println!("[{:5.1}s] {what}", t0.elapsed().as_secs_f64());
    say("building the fleet: PBX A and PBX B on the internet, one CrowdSec Local API");
    let net = VethLab::new("10.209.1");
    let b_ns = net.add_namespace("pbxb", "sgb", "sob", "10.209.2");
    // B answers the internet's other subnet through it.
    b_ns.ip(&["route", "add", "10.209.1.0/24", "via", "10.209.2.2"]);

    let lapi = Lapi::start(&net.outside, LAPI_PORT);
    let key_a = lapi.add_bouncer("pbx-a");
    let key_b = lapi.add_bouncer("pbx-b");
    for m in ["pbx-a", "pbx-b"] {
        lapi.cscli_ok(&[
            "machines",
            "add",
            m,
            "--password",
            &format!("{m}-fleet-password"),
            "-f",
            "/dev/null",
        ]);
    }
    println!("         LAPI (Debian's crowdsec, offline) at 10.209.1.2:{LAPI_PORT}; bouncers and watchers pbx-a, pbx-b");
    let mut a = start_host(
        "A",
        &net.guarded,
        GUARD_DEV,
        "10.209.1.1",
        "10.209.1.2",
        &key_a,
        "pbx-a",
    )?;
    let mut b = start_host(
        "B",
        &b_ns,
        "sgb",
        "10.209.2.1",
        "10.209.2.2",
        &key_b,
        "pbx-b",
    )?;
    println!("         PBX A 10.209.1.1 and PBX B 10.209.2.1, each with its own sipshield (bouncer + alert source),");
    println!("         scanner User-Agent signatures off: the cracker is caught by A's log alone");

    // A cracker that changed svcrack's User-Agent, as real ones do: no
    // kernel signature catches it, only its failures in A's log.
    let cracker = net.add_sender(67);
    let cracker_ip: IpAddr = cracker.parse()?;
    let home = tempfile::tempdir()?;
    say(&format!(
        "svcrack from {cracker} guesses extension {EXT}'s password on PBX A"
    ));
    let out = svcrack(&net.outside, &cracker, "10.209.1.1", home.path())?;
    if std::env::var_os("SIPSHIELD_DEMO_VERBOSE").is_some() {
        println!("{out}");
    }
    let seen_a = a.pbx.seen(cracker_ip);
    println!(
        "         PBX A saw {} requests, {} wrong passwords",
        seen_a.requests, seen_a.auth_failures
    );
    let banned_a = wait_for(Duration::from_secs(10), || {
        ban_targets(&net.guarded, &a.paths).contains(&cracker)
    });
    if !banned_a {
        bail!(
            "PBX A did not ban the cracker: {}\n{}",
            status(&net.guarded, &a.paths)["packets"],
            crate::daemon::daemon_log(&a.paths)
        );
    }
    let banned_at = Instant::now();
    say("PBX A banned it (wrong passwords: proof, the cracker answered A's nonce)");
    let sent = wait_for(Duration::from_secs(15), || {
        status(&net.guarded, &a.paths)["crowdsec"]["alerts"]["sent"].as_u64() >= Some(1)
    });
    if !sent {
        bail!("PBX A's alert never reached LAPI");
    }
    println!("         A sent the ban to LAPI as alert sipshield/sip-auth");
    let on_b = wait_for(Duration::from_secs(15), || {
        ban_targets(&b_ns, &b.paths).contains(&cracker)
    });
    if !on_b {
        bail!("PBX B did not get A's ban within 15 s");
    }
    say(&format!(
        "PBX B holds the ban {:.1} s after A made it (pulled from LAPI, origin crowdsec)",
        banned_at.elapsed().as_secs_f64()
    ));
    say(&format!("svcrack from {cracker} now tries PBX B"));
    let _ = svcrack(&net.outside, &cracker, "10.209.2.1", home.path())?;
    let seen_b = b.pbx.seen(cracker_ip);
    let dropped = status(&b_ns, &b.paths)["packets"]["by_reason"]["banned_exact"]["drop"]
        .as_u64()
        .unwrap_or(0);
    println!(
        "         PBX B's kernel dropped {dropped} packets; PBX B itself saw {} requests from the cracker",
        seen_b.requests
    );
    for h in [&mut a, &mut b] {
        if let Some(d) = h.daemon.take() {
            d.stop();
        }
        println!("         sipshield on PBX {} stopped", h.name);
    }
    if seen_b.requests > 0 || dropped == 0 {
        bail!("PBX B did not drop what PBX A banned");
    }
    say("fleet demo passed: a ban made on A protected B before the cracker got there");
    Ok(())
}
