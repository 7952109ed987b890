//! The daemon never stops enforcing without saying so: a start whose pins
//! would die with it is refused. Needs root.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use sipshield_tests::{
    daemon::{sipshield_bin, DaemonPaths},
    netns::{VethLab, GUARD_DEV},
};

#[test]
fn a_start_in_a_private_mount_namespace_is_refused_with_what_to_do() {
    let lab = VethLab::new("10.204.1");
    let paths = DaemonPaths::new("e1");
    // `ip netns exec` unshares the mount namespace and remounts /sys: a
    // bpffs mounted there dies with the daemon, and every ban with it.
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.guarded.name])
        .arg(sipshield_bin())
        .args(["run", "--iface", GUARD_DEV, "--socket"])
        .arg(paths.socket())
        .arg("--pin-root")
        .arg(&paths.pin_root)
        .arg("--state-dir")
        .arg(paths.state_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the daemon ran with pins that die with it");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("private mount namespace") && stderr.contains("nsenter --net="),
        "says why and what to do: {stderr}"
    );
    assert!(!stderr.contains("maps shared in"), "{stderr}");
    // Nothing was left attached.
    let out = lab
        .guarded
        .command("ip")
        .args(["-d", "link", "show", GUARD_DEV])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("prog/xdp"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
