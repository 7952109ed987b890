//! `cargo xtask demo`: a small real demo of the data plane. Two namespaces
//! joined by a veth; sipshield attached on the `pbx` side with one sender
//! banned; both senders send SIP OPTIONS; we show who got through and the
//! kernel counters. Everything is removed at the end, also on Ctrl-C.

use std::{
    io::{BufRead, BufReader},
    net::{SocketAddr, UdpSocket},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::{deps, lab, lab::interrupt, lab::Ns, shell};

const PBX: &str = "10.203.0.1";
const PHONE: &str = "10.203.0.10";
const ATTACKER: &str = "10.203.0.66";

pub fn run() -> Result<()> {
    deps::ensure()?;
    if !shell::is_root() {
        bail!("the demo creates network namespaces and attaches XDP: run as root");
    }
    interrupt::install();
    let root = shell::workspace_root();
    shell::run(
        Command::new("cargo")
            .current_dir(&root)
            .args(["build", "-p", "sipshield"]),
    )?;
    let bin = root.join("target/debug/sipshield");
    lab::mount_bpffs()?;

    step("setting up the lab: namespaces ssd-pbx and ssd-net, veth pair");
    let pbx = Ns::create("ssd-pbx")?;
    let net = Ns::create("ssd-net")?;
    shell::run(Command::new("ip").args([
        "link", "add", "pbx0", "netns", &pbx.name, "type", "veth", "peer", "name", "net0", "netns",
        &net.name,
    ]))?;
    pbx.ip(&["addr", "add", &format!("{PBX}/24"), "dev", "pbx0"])?;
    net.ip(&["addr", "add", &format!("{PHONE}/24"), "dev", "net0"])?;
    net.ip(&["addr", "add", &format!("{ATTACKER}/24"), "dev", "net0"])?;
    pbx.ip(&["link", "set", "pbx0", "up"])?;
    net.ip(&["link", "set", "net0", "up"])?;

    step(&format!(
        "attaching sipshield to pbx0 with {ATTACKER} banned"
    ));
    let mut shield = ChildGuard(
        pbx.command(bin.to_str().context("binary path")?)
            .args([
                "attach",
                "--iface",
                "pbx0",
                "--ban",
                ATTACKER,
                "--interval",
                "0",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .context("starting sipshield attach")?,
    );
    let stdout = shield.0.stdout.take().context("sipshield stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    match lines.next() {
        Some(Ok(l)) if l.starts_with("attached") => println!("  sipshield: {l}"),
        other => bail!("sipshield did not attach: {other:?}"),
    }

    let receiver = pbx.enter(|| UdpSocket::bind(format!("{PBX}:5060")))??;
    receiver.set_read_timeout(Some(Duration::from_millis(200)))?;
    let to: SocketAddr = format!("{PBX}:5060").parse()?;
    for (who, from) in [("phone", PHONE), ("attacker", ATTACKER)] {
        if interrupt::hit() {
            bail!("interrupted");
        }
        step(&format!(
            "{who} ({from}) sends 20 SIP OPTIONS to {PBX}:5060"
        ));
        let sock = net.enter(|| UdpSocket::bind(format!("{from}:0")))??;
        for i in 0..20 {
            let msg = format!(
                "OPTIONS sip:{PBX} SIP/2.0\r\nVia: SIP/2.0/UDP {from}:5060;branch=z9hG4bK{i}\r\n\
                 From: <sip:{who}@{from}>;tag={i}\r\nTo: <sip:{PBX}>\r\nCall-ID: {i}@{from}\r\n\
                 CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            );
            sock.send_to(msg.as_bytes(), to)?;
        }
        let got = count_received(&receiver);
        println!("  the PBX received {got} of 20 from the {who}");
    }

    step("stopping sipshield (SIGTERM): it detaches and prints its counters");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(shield.0.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    for line in lines.map_while(Result::ok) {
        println!("  sipshield: {line}");
        if Instant::now() > deadline {
            break;
        }
    }
    let _ = shield.0.wait();
    step("tearing the lab down");
    drop(net);
    drop(pbx);
    println!("\ndemo done: the banned source was dropped at the XDP hook, the phone got through.");
    Ok(())
}

fn count_received(sock: &UdpSocket) -> usize {
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while sock.recv_from(&mut buf).is_ok() {
        n += 1;
    }
    n
}

fn step(what: &str) {
    println!("\n==> {what}");
}

/// Kills the child if the demo ends early.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
