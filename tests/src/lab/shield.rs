//! sipshield's daemon guarding the lab's PBX: its configuration (the PBX's
//! Asterisk log, a pjsip.conf naming the trunk so it is allowlisted the way
//! an operator's would be), start, crash, restart, and what it reports.

use std::{
    net::IpAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use serde_json::Value;
use sipshield::bpf::{pins, ShieldMaps};

use super::topology::{Topology, PBX_DEV, TRUNK};
use crate::daemon::{cli_in, daemon_log, Daemon, DaemonPaths};

/// How the lab's daemon is set up.
#[derive(Debug, Clone, Default)]
pub struct ShieldOptions {
    /// Drop nothing, report what would be dropped and banned.
    pub observe: bool,
    /// No kernel scanner signatures (as if a cracker such as svcrack had
    /// changed its User-Agent), so the log path alone must stop it.
    pub no_signatures: bool,
}

pub struct Shield {
    pub paths: DaemonPaths,
    daemon: Option<Daemon>,
    config: PathBuf,
    ns: String,
    observe: bool,
}

impl Shield {
    /// Writes the configuration and starts `sipshield run` in the PBX
    /// namespace; returns once the trunk is allowlisted in the kernel.
    pub fn start(topo: &Topology, tag: &str, opts: &ShieldOptions) -> Shield {
        let paths = DaemonPaths::new(tag);
        let asterisk = paths.dir.path().join("asterisk");
        std::fs::create_dir_all(&asterisk).expect("asterisk config dir");
        std::fs::write(
            asterisk.join("pjsip.conf"),
            format!(
                "; The SIP provider: calls from it are identified by address.\n\
                 [provider]\ntype=endpoint\ncontext=from-trunk\nallow=ulaw,alaw\n\n\
                 [provider-identify]\ntype=identify\nendpoint=provider\nmatch={TRUNK}\n"
            ),
        )
        .expect("pjsip.conf");
        let messages = paths.log("messages");
        std::fs::write(&messages, "").expect("messages log");
        let config = paths.dir.path().join("sipshield.toml");
        let mut toml = format!(
            "[daemon]\ninterfaces = [\"{PBX_DEV}\"]\n\n\
             [logs]\nasterisk = [\"{}\"]\nauth = []\n\n\
             [allow]\nasterisk_config_dir = \"{}\"\n",
            messages.display(),
            asterisk.display()
        );
        if opts.no_signatures {
            toml.push_str("\n[xdp]\nscanner_user_agents = []\n");
        }
        std::fs::write(&config, toml).expect("sipshield.toml");
        let mut s = Shield {
            paths,
            daemon: None,
            config,
            ns: topo.pbx.name.clone(),
            observe: opts.observe,
        };
        s.launch(topo);
        s
    }

    fn launch(&mut self, topo: &Topology) {
        let config = self.config.to_str().expect("utf-8 path").to_string();
        let mut args = vec!["--config", config.as_str(), "--detach-on-exit"];
        if self.observe {
            args.push("--observe");
        }
        self.daemon = Some(Daemon::start(&topo.pbx, &self.paths, &args));
        let trunk: IpAddr = TRUNK.parse().expect("trunk address");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(maps) = pins::open_maps(&self.paths.pin_root) {
                if maps.allow.contains(trunk).unwrap_or(false) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not attach and allowlist the trunk: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The Asterisk log the daemon follows (the lab PBX writes it).
    pub fn messages_log(&self) -> PathBuf {
        self.paths.log("messages")
    }

    /// SIGKILL, as a crash would; the pinned program keeps enforcing.
    pub fn crash(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.crash();
        }
    }

    /// Starts the daemon again over the pins and state of the last one.
    pub fn restart(&mut self, topo: &Topology) {
        self.crash();
        self.launch(topo);
    }

    /// SIGTERM; true on a clean exit.
    pub fn stop(&mut self) -> bool {
        self.daemon.take().is_some_and(|d| d.stop().success())
    }

    pub fn pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(|d| d.child.id())
    }

    /// The daemon's own log (stderr), for failure messages.
    pub fn log(&self) -> String {
        daemon_log(&self.paths)
    }

    /// Runs a `sipshield` CLI command in the PBX namespace.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        cli_in(&self.ns, &self.paths, args)
    }

    fn cli_json(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "sipshield {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON from sipshield")
    }

    /// `sipshield status --json`.
    pub fn status(&self) -> Value {
        self.cli_json(&["status", "--json"])
    }

    /// `sipshield status` as an operator sees it.
    pub fn status_text(&self) -> String {
        String::from_utf8_lossy(&self.cli(&["status"]).stdout).into_owned()
    }

    /// `sipshield bans list --json`.
    pub fn bans(&self) -> Vec<Value> {
        match self.cli_json(&["bans", "list", "--json"]) {
            Value::Array(v) => v,
            other => panic!("bans list: {other}"),
        }
    }

    /// The daemon's ban record of `ip`, if any.
    pub fn ban_of(&self, ip: &str) -> Option<Value> {
        self.bans().into_iter().find(|b| b["target"] == ip)
    }

    /// The pinned kernel maps of the PBX interface.
    pub fn maps(&self) -> ShieldMaps {
        pins::open_maps(&self.paths.pin_root).expect("pinned maps")
    }

    /// Waits up to `within` for the kernel to hold a ban of `ip`.
    pub fn wait_kernel_ban(
        &self,
        ip: &str,
        within: Duration,
    ) -> Option<sipshield_common::maps::BanEntry> {
        let ip: IpAddr = ip.parse().expect("address");
        let maps = self.maps();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(b)) = maps.ban_of(ip) {
                return Some(b);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
