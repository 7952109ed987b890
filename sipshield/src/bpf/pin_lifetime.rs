//! Will the pins outlive this process? A bpffs mounted only inside a
//! private mount namespace (`ip netns exec`, `unshare -m`, some container
//! setups) dies with the last process in it, and with it the program, the
//! links and every ban: a SIGKILL would silently end all enforcement. Such
//! a start is refused with what to do instead.
//!
//! The test: the bpffs holding the pins (its device number) is also
//! mounted in PID 1's mount namespace. Inside a container PID 1 is the
//! container's init: pins then last as long as the container, which is
//! what the container asked for.

use std::{fs, os::unix::fs::MetadataExt, path::Path};

use super::BpfError;

/// Checks that pins under `root` (an existing path on bpffs) outlive this
/// process.
pub fn check(root: &Path) -> Result<(), BpfError> {
    let probe = root
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let Ok(meta) = fs::metadata(probe) else {
        return Ok(());
    };
    let dev = device_name(meta.dev());
    // Device numbers of mounts are the same in every namespace. PID 1's
    // table may be closed to us (some sandboxes): then our parent's, which
    // `ip netns exec` leaves outside the namespace it made.
    let parent = std::os::unix::process::parent_id();
    let reference = fs::read_to_string("/proc/1/mountinfo")
        .or_else(|_| fs::read_to_string(format!("/proc/{parent}/mountinfo")));
    let Ok(mounts) = reference else {
        // Cannot tell: do not refuse on a guess.
        return Ok(());
    };
    if bpf_mount_with_device(&mounts, &dev) {
        return Ok(());
    }
    Err(BpfError::Invalid(format!(
        "{} is on a bpf filesystem that exists only in this process's private mount namespace \
         (started with `ip netns exec`, `unshare -m` or the like): the pinned program and every \
         ban would vanish when sipshield exits or is killed. Start it in the host's mount \
         namespace, e.g. `nsenter --net=/run/netns/NAME sipshield run ...`, or give the \
         container the host's /sys/fs/bpf",
        root.display()
    )))
}

/// `major:minor` as mountinfo writes a device number.
fn device_name(dev: u64) -> String {
    format!("{}:{}", libc::major(dev), libc::minor(dev))
}

/// True when `mountinfo` has a bpf mount of device `dev` (`major:minor`).
/// Lines: `id parent major:minor root mountpoint options [optional...] - fstype source super`.
fn bpf_mount_with_device(mountinfo: &str, dev: &str) -> bool {
    mountinfo.lines().any(|line| {
        let mut fields = line.split(' ');
        let device = fields.nth(2);
        let fstype = line
            .split_once(" - ")
            .and_then(|(_, rest)| rest.split(' ').next());
        device == Some(dev) && fstype == Some("bpf")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INIT: &str = "\
22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 22 0:26 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:12 - bpf bpf rw,mode=700
31 28 0:27 / /run rw,nosuid,nodev shared:13 - tmpfs tmpfs rw,size=401080k,mode=755
";

    #[test]
    fn a_bpffs_init_also_mounts_outlives_us() {
        assert!(bpf_mount_with_device(INIT, "0:26"));
        // A bpffs of our own (ip netns exec remounted /sys, we mounted it).
        assert!(!bpf_mount_with_device(INIT, "0:58"));
        // Same device but not bpf: never a match.
        assert!(!bpf_mount_with_device(INIT, "0:27"));
        assert!(!bpf_mount_with_device("garbage\n\n- -", "0:26"));
    }

    #[test]
    fn devices_are_written_as_mountinfo_writes_them() {
        assert_eq!(device_name(libc::makedev(0, 26)), "0:26");
        assert_eq!(device_name(libc::makedev(259, 3)), "259:3");
    }
}
