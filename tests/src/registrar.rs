//! A real registrar and real phones for the legitimate-burst tests:
//! Debian's `kamailio` with digest authentication from db_text files (no
//! database server; the stock config would drop scanner User-Agents and ban
//! a burst itself), and `baresip` with many accounts in one process. Both
//! run in test namespaces and are killed when dropped. Setup facts:
//! `docs/notes/legitimate-bursts-lab.md`.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::netns::Netns;

/// The password of lab user `user`.
pub fn password_of(user: &str) -> String {
    format!("pw-{user}")
}

/// `user001` ... `userNNN`.
pub fn user(i: u32) -> String {
    format!("user{i:03}")
}

pub struct Kamailio {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Kamailio {
    /// Starts a registrar on `ip:5060` in `ns` knowing `users` accounts.
    pub fn start(ns: &Netns, ip: &str, users: u32) -> Kamailio {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display().to_string();
        std::fs::create_dir_all(dir.path().join("db")).unwrap();
        std::fs::write(
            dir.path().join("db/version"),
            "id(int,auto) table_name(string) table_version(int) \n0:version:1\n0:subscriber:7\n",
        )
        .unwrap();
        // The hash columns must be nullable, or db_text refuses the table.
        let mut subscriber = String::from(
            "id(int,auto) username(string) domain(string) password(string) ha1(string,null) ha1b(string,null) \n",
        );
        for i in 1..=users {
            let u = user(i);
            subscriber.push_str(&format!("{i}:{u}:{ip}:{}::\n", password_of(&u)));
        }
        std::fs::write(dir.path().join("db/subscriber"), subscriber).unwrap();
        let modules = kamailio_modules();
        let cfg = format!(
            "#!KAMAILIO\ndebug=2\nlog_stderror=yes\nchildren=4\ndisable_tcp=yes\nenable_sctp=no\nauto_aliases=no\ndns=no\nrev_dns=no\nlisten=udp:{ip}:5060\n\
mpath=\"{modules}\"\n\
loadmodule \"kex.so\"\nloadmodule \"ctl.so\"\nloadmodule \"tm.so\"\nloadmodule \"sl.so\"\nloadmodule \"pv.so\"\nloadmodule \"maxfwd.so\"\nloadmodule \"textops.so\"\nloadmodule \"siputils.so\"\nloadmodule \"xlog.so\"\nloadmodule \"sanity.so\"\nloadmodule \"usrloc.so\"\nloadmodule \"registrar.so\"\nloadmodule \"db_text.so\"\nloadmodule \"auth.so\"\nloadmodule \"auth_db.so\"\n\
modparam(\"ctl\", \"binrpc\", \"unix:{d}/kamailio_ctl\")\nmodparam(\"usrloc\", \"db_mode\", 0)\nmodparam(\"registrar\", \"max_expires\", 3600)\n\
modparam(\"auth_db\", \"db_url\", \"text://{d}/db\")\nmodparam(\"auth_db\", \"calculate_ha1\", 1)\nmodparam(\"auth_db\", \"password_column\", \"password\")\nmodparam(\"auth_db\", \"use_domain\", 0)\n\
request_route {{\n\
 if (!mf_process_maxfwd_header(\"10\")) {{ sl_send_reply(\"483\", \"Too Many Hops\"); exit; }}\n\
 if (!sanity_check(\"17895\", \"7\")) {{ exit; }}\n\
 force_rport();\n\
 if (!is_method(\"REGISTER\")) {{ sl_send_reply(\"405\", \"Method Not Allowed\"); exit; }}\n\
 if (!auth_check(\"$fd\", \"subscriber\", \"1\")) {{ auth_challenge(\"$fd\", \"0\"); exit; }}\n\
 consume_credentials();\n\
 if (!save(\"location\")) {{ sl_reply_error(); exit; }}\n\
 exit;\n\
}}\n"
        );
        std::fs::write(dir.path().join("kamailio.cfg"), cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("kamailio.log")).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", ns.name))
            .arg("kamailio")
            .arg("-f")
            .arg(dir.path().join("kamailio.cfg"))
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .arg("-Y")
            .arg(dir.path())
            .arg("-w")
            .arg(dir.path())
            .args(["-DD", "-E", "-m", "64", "-M", "8"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start kamailio (cargo xtask deps installs it)");
        let k = Kamailio {
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !k.socket().exists() {
            assert!(
                Instant::now() < deadline,
                "kamailio did not start: {}",
                k.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        k
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("kamailio_ctl")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }

    /// Users with a binding now (`usrloc:registered_users`).
    pub fn registered(&self) -> u64 {
        let out = Command::new("kamcmd")
            .arg("-s")
            .arg(format!("unix:{}", self.socket().display()))
            .args(["stats.get_statistics", "registered_users"])
            .output()
            .expect("kamcmd");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| {
                l.split_once("registered_users = ")
                    .map(|(_, n)| n.trim().to_string())
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One baresip process with `phones` accounts on `local_ip`, registering
/// with the registrar at `registrar_ip` as soon as it starts.
pub struct Office {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Office {
    pub fn start(ns: &Netns, local_ip: &str, registrar_ip: &str, phones: u32) -> Office {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("config"),
            format!(
                "poll_method\tepoll\nsip_listen\t{local_ip}:5060\nnet_interface\t{local_ip}\nmodule_path\t/usr/lib/baresip/modules\nmodule_tmp\taccount.so\nmodule_app\tmenu.so\n"
            ),
        )
        .unwrap();
        let accounts: String = (1..=phones)
            .map(|i| {
                let u = user(i);
                format!(
                    "<sip:{u}@{registrar_ip};transport=udp>;auth_pass={};regint=600\n",
                    password_of(&u)
                )
            })
            .collect();
        std::fs::write(dir.path().join("accounts"), accounts).unwrap();
        let out = std::fs::File::create(dir.path().join("out.log")).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", ns.name))
            .arg("baresip")
            .arg("-f")
            .arg(dir.path())
            .args(["-t", "60"])
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("start baresip (cargo xtask deps installs baresip-core)");
        Office {
            dir,
            child: Some(child),
        }
    }

    /// Accounts that got their 200 OK so far.
    pub fn registered(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("out.log"))
            .unwrap_or_default()
            .matches("} 200 OK")
            .count()
    }
}

impl Drop for Office {
    fn drop(&mut self) {
        // SIGKILL: a clean exit would de-register every account first.
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Kamailio's module directory under the host's multiarch triplet
/// (`/usr/lib/x86_64-linux-gnu/kamailio/modules/` on amd64).
fn kamailio_modules() -> String {
    std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("kamailio/modules"))
        .find(|p| p.join("tm.so").exists())
        .map(|p| format!("{}/", p.display()))
        .unwrap_or_else(|| panic!("no kamailio modules under /usr/lib/*/ (cargo xtask deps)"))
}
