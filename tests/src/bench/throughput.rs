//! Legitimate traffic through the guarded interface: iperf3 TCP and UDP
//! throughput with sipshield attached and without, in the same run.
//! The traffic is not SIP (port 5201), as most of a PBX host's is not
//! (RTP, web, SSH): what sipshield costs a packet it lets through.

use std::{
    process::{Child, Stdio},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use aya::{
    programs::{xdp::XdpMode, Xdp},
    EbpfLoader,
};
use serde_json::{json, Value};
use sipshield::bpf::object;
use sipshield_common::config::XdpConfig;

use crate::netns::{VethLab, GUARD_DEV};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One iperf3 run from the outside to the guarded side; bits per second
/// received.
fn iperf(lab: &VethLab, udp: bool, seconds: u32) -> Result<f64> {
    let _server = Server(
        lab.guarded
            .command("iperf3")
            .args(["-s", "-1", "-B", &lab.guarded_addr(), "-p", "5201"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("iperf3 (package iperf3)")?,
    );
    std::thread::sleep(Duration::from_millis(300));
    let mut client = lab.outside.command("timeout");
    client.args([
        &(seconds + 10).to_string(),
        "iperf3",
        "-J",
        "-c",
        &lab.guarded_addr(),
    ]);
    client.args(["-p", "5201", "-t", &seconds.to_string()]);
    if udp {
        // Unlimited rate, 1400-byte datagrams (RTP-sized and below MTU).
        client.args(["-u", "-b", "0", "-l", "1400"]);
    }
    let out = client.output()?;
    let v: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("iperf3 output: {}", String::from_utf8_lossy(&out.stderr)))?;
    if let Some(e) = v["error"].as_str() {
        bail!("iperf3: {e}");
    }
    let bps = if udp {
        // What arrived: the server-side figure.
        v["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .or_else(|| v["end"]["sum"]["bits_per_second"].as_f64())
    } else {
        v["end"]["sum_received"]["bits_per_second"].as_f64()
    };
    bps.context("iperf3 JSON without a throughput")
}

/// TCP and UDP: no XDP program, the empty XDP_PASS baseline program, and
/// sipshield (native XDP on the veth, as the daemon attaches it).
///
/// The middle column matters on veth: attaching any XDP program makes the
/// veth peer stop sending GSO super-packets (XDP needs page-sized frames),
/// so TCP between namespaces loses its 64 KB segments. A physical NIC
/// delivers MTU-sized frames with or without XDP, and GRO runs after it.
pub fn run(quick: bool) -> Result<Value> {
    let seconds = if quick { 2 } else { 4 };
    if object::BASELINES.is_empty() {
        bail!("built without the baseline programs (AYA_BUILD_SKIP)");
    }
    let mut rows = Vec::new();
    for udp in [false, true] {
        let proto = if udp { "udp" } else { "tcp" };
        // Three labs side by side, measured in turn, three rounds; the
        // median per setup (a shared 2-vCPU machine drifts between runs).
        let plain = VethLab::new("10.211.4");
        let empty = VethLab::new("10.211.5");
        let guarded = VethLab::new("10.211.6");
        let mut ebpf = EbpfLoader::new().load(object::BASELINES)?;
        let pass: &mut Xdp = ebpf
            .program_mut("bench_pass")
            .context("bench_pass")?
            .try_into()?;
        pass.load()?;
        empty
            .guarded
            .enter(|| pass.attach(GUARD_DEV, XdpMode::Default))?;
        let _shield = guarded.attach_sipshield(XdpConfig::default());
        let mut runs: [Vec<f64>; 3] = Default::default();
        for _ in 0..3 {
            for (i, lab) in [&plain, &empty, &guarded].into_iter().enumerate() {
                runs[i].push(iperf(lab, udp, seconds)?);
            }
        }
        let [without, xdp_pass, with] = runs.map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[1]
        });
        eprintln!(
            "bench:   iperf3 {proto}: {:.2} Gbit/s without XDP, {:.2} with an empty XDP program, {:.2} with sipshield ({:.0}% / {:.0}%)",
            without / 1e9,
            xdp_pass / 1e9,
            with / 1e9,
            with / without * 100.0,
            with / xdp_pass * 100.0
        );
        rows.push(json!({
            "proto": proto,
            "seconds": seconds,
            "runs": 3,
            "without_gbps": without / 1e9,
            "xdp_pass_gbps": xdp_pass / 1e9,
            "with_gbps": with / 1e9,
            "ratio": with / without,
            "ratio_to_xdp_pass": with / xdp_pass,
        }));
    }
    Ok(json!({ "rows": rows }))
}
