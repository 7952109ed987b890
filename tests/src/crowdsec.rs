//! A real CrowdSec Local API (Debian's `crowdsec`, offline) in a test
//! namespace: its own config directory, database and port; the agent and
//! the Central API off. Killed when dropped.

use std::{
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::netns::{enter_named, Netns};

pub struct Lapi {
    pub dir: tempfile::TempDir,
    pub port: u16,
    ns: String,
    child: Option<Child>,
}

impl Lapi {
    /// Writes a config under a temp dir and starts LAPI in `ns` on
    /// `0.0.0.0:port`.
    pub fn start(ns: &Netns, port: u16) -> Lapi {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display().to_string();
        for sub in ["data", "hub", "notifications"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("hub/.index.json"), "{}").unwrap();
        std::fs::write(dir.path().join("acquis.yaml"), "").unwrap();
        std::fs::write(dir.path().join("simulation.yaml"), "simulation: false\n").unwrap();
        std::fs::write(
            dir.path().join("profiles.yaml"),
            "name: default_ip_remediation\nfilters:\n - Alert.Remediation == true && Alert.GetScope() == \"Ip\"\ndecisions:\n - type: ban\n   duration: 4h\non_success: break\n",
        )
        .unwrap();
        let config = format!(
            "common:\n  daemonize: false\n  log_media: stdout\n  log_level: info\n  working_dir: .\n\
config_paths:\n  config_dir: {d}/\n  data_dir: {d}/data/\n  simulation_path: {d}/simulation.yaml\n  hub_dir: {d}/hub/\n  index_path: {d}/hub/.index.json\n  notification_dir: {d}/notifications/\n  plugin_dir: /usr/lib/crowdsec/plugins/\n\
crowdsec_service:\n  acquisition_path: {d}/acquis.yaml\n\
db_config:\n  type: sqlite\n  db_path: {d}/data/crowdsec.db\n  use_wal: false\n\
api:\n  client:\n    credentials_path: {d}/local_api_credentials.yaml\n  server:\n    listen_uri: 0.0.0.0:{port}\n    profiles_path: {d}/profiles.yaml\n    console_path: {d}/console.yaml\n    trusted_ips: [127.0.0.1, \"::1\"]\n\
prometheus:\n  enabled: false\n"
        );
        std::fs::write(dir.path().join("config.yaml"), config).unwrap();
        let mut lapi = Lapi {
            dir,
            port,
            ns: ns.name.clone(),
            child: None,
        };
        // cscli's own machine (its credentials file), before LAPI runs.
        let out = lapi.cscli(&[
            "machines",
            "add",
            "sipshield-test",
            "--password",
            "test-password-0123",
            "-f",
            &format!("{d}/local_api_credentials.yaml"),
            "--url",
            &format!("http://127.0.0.1:{port}"),
        ]);
        assert!(out.status.success(), "cscli machines add: {out:?}");
        lapi.resume();
        lapi
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }

    /// Runs `cscli -c <config> args` in the namespace.
    pub fn cscli(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns))
            .arg("cscli")
            .arg("-c")
            .arg(self.config())
            .args(args)
            .output()
            .expect("run cscli (cargo xtask deps installs crowdsec)")
    }

    /// As `cscli`, asserting success; its stdout.
    pub fn cscli_ok(&self, args: &[&str]) -> String {
        let out = self.cscli(args);
        assert!(
            out.status.success(),
            "cscli {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A bouncer key for `name`.
    pub fn add_bouncer(&self, name: &str) -> String {
        let key = format!("{name}-key-0123456789abcdef");
        self.cscli_ok(&["bouncers", "add", name, "-k", &key]);
        key
    }

    /// Stops LAPI (its database stays).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts LAPI again on the same database; waits until it listens.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "LAPI runs already");
        let log = std::fs::File::create(self.dir.path().join("lapi.log")).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns))
            .arg("crowdsec")
            .arg("-c")
            .arg(self.config())
            .arg("-no-cs")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start crowdsec (cargo xtask deps installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let up = enter_named(&self.ns, || {
                TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            });
            if up {
                break;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("crowdsec exited ({status}): {}", self.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "LAPI did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("lapi.log")).unwrap_or_default()
    }
}

impl Drop for Lapi {
    fn drop(&mut self) {
        self.stop();
    }
}
