//! Running commands with their command line echoed.

use std::process::{Command, Output};

use anyhow::{bail, Context, Result};

pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| ".".into())
}

/// Builds the `sipshield` binary and one binary of the
/// `sipshield-tests` crate (the lab or the bench); returns the target
/// directory they are in.
pub fn build_with_sipshield(tests_bin: &str, release: bool) -> Result<std::path::PathBuf> {
    let root = workspace_root();
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&root).arg("build");
    if release {
        cmd.arg("--release");
    }
    cmd.args(["-p", "sipshield", "-p", "sipshield-tests"])
        .args(["--bin", "sipshield", "--bin", tests_bin]);
    run(&mut cmd)?;
    Ok(root
        .join("target")
        .join(if release { "release" } else { "debug" }))
}

/// Runs `cmd`, inheriting stdio; fails with its exit status.
pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {}", describe(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("starting {}", describe(cmd)))?;
    if !status.success() {
        bail!("{} failed ({status})", describe(cmd));
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its output (success or not).
pub fn output(cmd: &mut Command) -> Result<Output> {
    cmd.output()
        .with_context(|| format!("starting {}", describe(cmd)))
}

/// True when `cmd` runs and exits 0.
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.output().map(|o| o.status.success()).unwrap_or(false)
}

pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Bytes free for an unprivileged writer on the filesystem holding `path`.
pub fn free_bytes(path: &std::path::Path) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .with_context(|| format!("{} holds a NUL byte", path.display()))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated and st is a valid out-parameter.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("statvfs {}", path.display()));
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Fails early, with the figures, when a build would run the disk full:
/// a full disk shows up much later as a linker's bus error.
pub fn ensure_disk_space(path: &std::path::Path, need_gib: u64, what: &str) -> Result<()> {
    let free = free_bytes(path)?;
    let need = need_gib << 30;
    if free < need {
        bail!(
            "{what} needs about {need_gib} GiB free under {}; {:.1} GiB are (free some, or point CARGO_TARGET_DIR elsewhere)",
            path.display(),
            free as f64 / (1u64 << 30) as f64
        );
    }
    Ok(())
}
