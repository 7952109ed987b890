//! The Debian package that `cargo xtask deb` builds (`cargo xtask test`
//! builds it before these tests): its contents, conffile and maintainer
//! scripts, lintian, and an install and purge that leave the machine as it
//! was. The service is kept from starting by Debian's `policy-rc.d`, so
//! nothing attaches to the machine's interfaces. Needs root and dpkg.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn deb() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debian");
    let version = env!("CARGO_PKG_VERSION");
    let path = dir.join(format!("sipshield_{version}_amd64.deb"));
    assert!(
        path.exists(),
        "{} missing: cargo xtask deb builds it",
        path.display()
    );
    path
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_package_holds_the_daemon_unit_config_man_pages_and_completions() {
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(deb()));
    for path in [
        "./usr/sbin/sipshield",
        "./usr/lib/systemd/system/sipshield.service",
        "./etc/sipshield/sipshield.toml",
        "./usr/share/man/man8/sipshield.8.gz",
        "./usr/share/man/man8/sipshield-status.8.gz",
        "./usr/share/man/man8/sipshield-run.8.gz",
        "./usr/share/man/man8/sipshield-bans-add.8.gz",
        "./usr/share/man/man8/sipshield-events.8.gz",
        "./usr/share/bash-completion/completions/sipshield",
        "./usr/share/zsh/vendor-completions/_sipshield",
        "./usr/share/fish/vendor_completions.d/sipshield.fish",
        "./usr/share/doc/sipshield/README.Debian",
        "./usr/share/doc/sipshield/copyright",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(path)),
            "{path} missing from the package:\n{listing}"
        );
    }
    // A page for every command the binary knows (its own clap tree, as
    // `sipshield generate man` walks it), not only the ones named above.
    let pages = tempfile::tempdir().unwrap();
    run(Command::new(sipshield_tests::daemon::sipshield_bin())
        .args(["generate", "man"])
        .arg(pages.path()));
    let mut generated: Vec<String> = std::fs::read_dir(pages.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    generated.sort();
    assert!(generated.len() >= 20, "{generated:?}");
    for page in &generated {
        let packaged = format!("./usr/share/man/man8/{page}.gz");
        assert!(
            listing.lines().any(|l| l.ends_with(&packaged)),
            "{packaged} missing from the package:\n{listing}"
        );
    }
    let control = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(deb())
        .arg(control.path()));
    let read = |name: &str| std::fs::read_to_string(control.path().join(name)).unwrap();
    assert_eq!(read("conffiles").trim(), "/etc/sipshield/sipshield.toml");
    assert!(
        read("control").contains("Depends: libc6"),
        "{}",
        read("control")
    );
    // Installing enables and starts the unit; a failed start never fails it.
    let postinst = read("postinst");
    assert!(
        postinst.contains("deb-systemd-helper") && postinst.contains("enable"),
        "{postinst}"
    );
    assert!(postinst.contains("|| true"), "{postinst}");
    // Removing detaches and removes the pins; purging removes the state.
    assert!(
        read("prerm").contains("sipshield detach --purge"),
        "{}",
        read("prerm")
    );
    assert!(
        read("postrm").contains("rm -rf /var/lib/sipshield"),
        "{}",
        read("postrm")
    );
    // The unit runs the packaged binary with the packaged config.
    let unit = run(Command::new("dpkg-deb").args(["--fsys-tarfile"]).arg(deb()));
    assert!(
        unit.contains("ExecStart=/usr/sbin/sipshield run --config /etc/sipshield/sipshield.toml")
    );
    // The conffile is the documented default: it guards the default routes' interfaces.
    assert!(unit.contains("interfaces = [\"auto\"]"));
}

#[test]
fn lintian_finds_no_error() {
    let out = Command::new("lintian")
        .args(["--tag-display-limit", "0"])
        .arg(deb())
        .output()
        .expect("lintian (cargo xtask deps installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian errors:\n{text}");
    // Exit 0: it ran to the end and found no error (1 is an error tag, 2 a
    // lintian failure, which would print no tags at all).
    assert!(
        out.status.success(),
        "lintian failed ({}): {text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Removes what the install test put on the machine, whatever happened.
struct Purge {
    policy_rc_d: Option<PathBuf>,
}

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "sipshield"]).output();
        if let Some(p) = &self.policy_rc_d {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Checks that the package may be installed here and keeps its service
/// from starting; the guard purges it (and our policy-rc.d) whatever
/// happens.
fn install_guard() -> Purge {
    // A real deployment's pins on this machine would be removed by the
    // package's prerm: never touch them.
    if Path::new("/sys/fs/bpf/sipshield").exists() {
        panic!("/sys/fs/bpf/sipshield exists (a deployed sipshield?): not installing over it");
    }
    let installed = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "sipshield"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false);
    assert!(
        !installed,
        "sipshield is installed on this machine: not testing over it"
    );
    // Debian's way of keeping services from starting: exit 101.
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let ours = if policy.exists() {
        // Someone else's: only if it really forbids starting the service.
        let verdict = Command::new(policy)
            .args(["sipshield.service", "start"])
            .status()
            .expect("run the existing policy-rc.d");
        assert_eq!(
            verdict.code(),
            Some(101),
            "{} exists and allows starts: not installing",
            policy.display()
        );
        None
    } else {
        std::fs::write(
            policy,
            "#!/bin/sh\n# sipshield's package test: no service starts\nexit 101\n",
        )
        .unwrap();
        std::fs::set_permissions(policy, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        Some(policy.to_path_buf())
    };
    Purge { policy_rc_d: ours }
}

#[test]
fn install_and_purge_leave_the_machine_as_it_was() {
    let _purge = install_guard();
    run(Command::new("dpkg").arg("-i").arg(deb()));
    let version = run(Command::new("/usr/sbin/sipshield").arg("--version"));
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
    let check = run(Command::new("/usr/sbin/sipshield").args([
        "config",
        "check",
        "/etc/sipshield/sipshield.toml",
    ]));
    assert!(!check.is_empty());
    assert!(Path::new("/var/lib/sipshield").is_dir());
    assert!(Path::new("/usr/share/man/man8/sipshield.8.gz").exists());
    // Nothing was attached: the service did not run.
    assert!(!Path::new("/sys/fs/bpf/sipshield").exists());

    // An upgrade (the same package again) keeps the state and an edited
    // conffile.
    std::fs::write("/var/lib/sipshield/state.db", b"kept").unwrap();
    let edited = std::fs::read_to_string("/etc/sipshield/sipshield.toml").unwrap()
        + "\n# edited by the operator\n";
    std::fs::write("/etc/sipshield/sipshield.toml", &edited).unwrap();
    run(Command::new("dpkg")
        .args(["--force-confold", "-i"])
        .arg(deb()));
    assert_eq!(
        std::fs::read("/var/lib/sipshield/state.db").unwrap(),
        b"kept"
    );
    assert_eq!(
        std::fs::read_to_string("/etc/sipshield/sipshield.toml").unwrap(),
        edited
    );
    // Removing (not purging) keeps the state for a reinstall.
    run(Command::new("dpkg").args(["--remove", "sipshield"]));
    assert!(Path::new("/var/lib/sipshield/state.db").exists());
    assert!(!Path::new("/usr/sbin/sipshield").exists());

    run(Command::new("dpkg").args(["--purge", "sipshield"]));
    for gone in [
        "/usr/sbin/sipshield",
        "/etc/sipshield/sipshield.toml",
        "/var/lib/sipshield",
        "/usr/lib/systemd/system/sipshield.service",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
}

/// The packaged daemon guards a veth in a namespace of the test's own, with
/// the pins on a bpffs of the test's own, bind-mounted over /sys/fs/bpf in
/// a private mount namespace (the machine's own /sys/fs/bpf is never
/// touched). It bans, crashes; an upgrade leaves the
/// program attached and the ban in the kernel; removing the package
/// detaches the program and removes the pins.
/// A bpffs of the test's own, mounted in the host's mount namespace (the
/// daemon refuses pins that would die with a private namespace), unmounted
/// whatever happens: the pins in it go with it.
struct OwnBpffs(PathBuf);

impl OwnBpffs {
    fn mount() -> OwnBpffs {
        let dir = PathBuf::from(format!("/run/sipshield-debtest-bpf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let own = OwnBpffs(dir);
        run(Command::new("mount").args(["-t", "bpf", "bpf"]).arg(&own.0));
        own
    }
}

impl Drop for OwnBpffs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn an_upgrade_keeps_the_program_and_its_bans_and_remove_detaches() {
    let lab = sipshield_tests::netns::VethLab::new("10.208.1");
    let bpffs = OwnBpffs::mount();
    let _purge = install_guard();
    run(Command::new("dpkg").arg("-i").arg(deb()));
    let work = tempfile::tempdir().unwrap();
    let ns = &lab.guarded.name;
    let dev = sipshield_tests::netns::GUARD_DEV;
    let script = format!(
        r#"
set -eu
mount --bind {bpffs} /sys/fs/bpf
W={work}
nsenter --net=/run/netns/{ns} /usr/sbin/sipshield run --iface {dev} \
    --socket $W/control.sock --state-dir $W/state >$W/daemon.log 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true' EXIT
i=0; until [ -S $W/control.sock ]; do i=$((i+1)); [ $i -lt 300 ] || {{ echo "no daemon"; cat $W/daemon.log; exit 1; }}; sleep 0.1; done
/usr/sbin/sipshield bans add 198.51.100.7 --for 1h --socket $W/control.sock
kill -9 $pid; wait $pid || true
ip -n {ns} link show dev {dev} | grep -q xdp || {{ echo "not attached after the crash"; exit 1; }}
dpkg --force-confold -i {deb}
ip -n {ns} link show dev {dev} | grep -q xdp || {{ echo "upgrade detached the program"; exit 1; }}
/usr/sbin/sipshield bans list --socket $W/control.sock | grep -q 198.51.100.7 || {{ echo "upgrade lost the ban"; exit 1; }}
dpkg --remove sipshield
if ip -n {ns} link show dev {dev} | grep -q xdp; then echo "remove left the program attached"; exit 1; fi
if [ -e /sys/fs/bpf/sipshield ]; then echo "remove left the pins"; ls -R /sys/fs/bpf/sipshield; exit 1; fi
echo "checked"
"#,
        work = work.path().display(),
        deb = deb().display(),
        bpffs = bpffs.0.display(),
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(&script)
        .output()
        .expect("unshare");
    let text = format!(
        "{}{}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(work.path().join("daemon.log")).unwrap_or_default()
    );
    assert!(out.status.success() && text.contains("checked"), "{text}");
    assert!(
        !Path::new("/sys/fs/bpf/sipshield").exists(),
        "the machine's bpffs was touched"
    );
}
