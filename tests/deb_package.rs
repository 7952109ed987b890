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

#[test]
fn install_and_purge_leave_the_machine_as_it_was() {
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
    let _purge = Purge { policy_rc_d: ours };
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
