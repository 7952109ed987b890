//! `cargo xtask deps`: installs what building and testing sipshield needs.
//!
//! Why this toolchain: rustup has no `rust-src` here and newer aya needs a
//! newer rustc, so the XDP program is built with Debian's rustc-web (1.96,
//! LLVM 22) plus its library sources, linked as the rustup toolchain
//! `sipshield-bpf`, and bpf-linker built against the same LLVM 22. See
//! README "How the build works".

use std::process::Command;

use anyhow::{bail, Result};

use crate::shell::{self, run, succeeds};

pub const BPF_TOOLCHAIN: &str = "sipshield-bpf";
const BPF_LINKER_VERSION: &str = "0.13.0";
/// Builds the Debian package (`cargo xtask deb`).
const CARGO_DEB_VERSION: &str = "3.8.0";

/// Debian packages: eBPF build, then test and lab tools.
const PACKAGES: &[&str] = &[
    // eBPF build
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "build-essential",
    // namespaces, veth, XDP inspection
    "iproute2",
    "ethtool",
    "procps",
    "util-linux",
    // real attack tools for the end-to-end tests and the demo
    "sipvicious",
    "sipsak",
    "hping3",
    // writes journal files for the journald-following tests
    "systemd-journal-remote",
    // promtool checks the metrics scrape
    "prometheus",
    // the Debian package: dependencies (dpkg-shlibdeps) and its checks
    "dpkg-dev",
    "lintian",
    // a real CrowdSec Local API for the fleet tests (offline: see
    // `prepare_crowdsec_offline`)
    "crowdsec",
    // a real registrar and real phones for the legitimate-burst tests
    // (not started by their postinst without systemd or RUN_KAMAILIO)
    "kamailio",
    "baresip-core",
];

/// CrowdSec's postinst registers with the Central API unless
/// `online_api_credentials.yaml` exists and is not empty: a file that holds
/// only a comment keeps it offline (the tests run their own LAPI anyway).
const CROWDSEC_CAPI_FILE: &str = "/etc/crowdsec/online_api_credentials.yaml";

fn prepare_crowdsec_offline() -> Result<()> {
    let path = std::path::Path::new(CROWDSEC_CAPI_FILE);
    if path.metadata().is_ok_and(|m| m.len() > 0) {
        return Ok(());
    }
    std::fs::create_dir_all("/etc/crowdsec")?;
    std::fs::write(
        path,
        "# No Central API credentials: this CrowdSec runs offline (written by cargo xtask deps).\n",
    )?;
    Ok(())
}

/// What is missing, in words; empty when everything is in place.
pub fn missing() -> Vec<String> {
    let mut out: Vec<String> = missing_packages()
        .into_iter()
        .map(|p| format!("package {p}"))
        .collect();
    if !toolchain_linked() {
        out.push(format!("rustup toolchain {BPF_TOOLCHAIN}"));
    }
    if !bpf_linker_ok() {
        out.push(format!("bpf-linker {BPF_LINKER_VERSION}"));
    }
    if !cargo_deb_ok() {
        out.push(format!("cargo-deb {CARGO_DEB_VERSION}"));
    }
    out
}

fn cargo_deb_ok() -> bool {
    Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .map(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(CARGO_DEB_VERSION)
        })
        .unwrap_or(false)
}

fn missing_packages() -> Vec<&'static str> {
    PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            let out = Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output();
            !matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect()
}

fn toolchain_linked() -> bool {
    succeeds(Command::new("rustup").args(["run", BPF_TOOLCHAIN, "rustc", "-V"]))
}

fn bpf_linker_ok() -> bool {
    Command::new("bpf-linker")
        .arg("--version")
        .output()
        .map(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION)
        })
        .unwrap_or(false)
}

pub fn install() -> Result<()> {
    let pkgs = missing_packages();
    if pkgs.is_empty() {
        eprintln!("deps: all {} Debian packages present", PACKAGES.len());
    } else {
        if !shell::is_root() {
            bail!("installing packages needs root: {}", pkgs.join(" "));
        }
        eprintln!("deps: installing {}", pkgs.join(" "));
        if pkgs.contains(&"crowdsec") {
            prepare_crowdsec_offline()?;
        }
        run(Command::new("apt-get").args(["update", "-q"]))?;
        run(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&pkgs))?;
    }
    if toolchain_linked() {
        eprintln!("deps: rustup toolchain {BPF_TOOLCHAIN} present");
    } else {
        eprintln!("deps: linking Debian's rustc as rustup toolchain {BPF_TOOLCHAIN}");
        run(Command::new("rustup").args(["toolchain", "link", BPF_TOOLCHAIN, "/usr"]))?;
    }
    if bpf_linker_ok() {
        eprintln!("deps: bpf-linker {BPF_LINKER_VERSION} present");
    } else {
        eprintln!(
            "deps: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about a minute)"
        );
        // llvm-config of LLVM 22 must come first, or the build finds LLVM 14.
        let path = format!(
            "/usr/lib/llvm-22/bin:{}",
            std::env::var("PATH").unwrap_or_default()
        );
        run(Command::new("cargo")
            .env("PATH", path)
            .args([
                "install",
                &format!("bpf-linker@{BPF_LINKER_VERSION}"),
                "--locked",
            ])
            .args(["--no-default-features", "--features", "llvm-22"]))?;
    }
    if cargo_deb_ok() {
        eprintln!("deps: cargo-deb {CARGO_DEB_VERSION} present");
    } else {
        eprintln!("deps: building cargo-deb {CARGO_DEB_VERSION} (a few minutes)");
        run(Command::new("cargo").args([
            "install",
            &format!("cargo-deb@{CARGO_DEB_VERSION}"),
            "--locked",
        ]))?;
    }
    let left = missing();
    if !left.is_empty() {
        bail!("still missing after install: {}", left.join(", "));
    }
    eprintln!("deps: ready");
    Ok(())
}

/// Installs extra Debian packages a task needs (benchmark peers), if missing.
pub fn ensure_packages(pkgs: &[&str]) -> Result<()> {
    let missing: Vec<&str> = pkgs
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("deps: installing {}", missing.join(" "));
    run(Command::new("apt-get").args(["update", "-q"]))?;
    run(Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing))
}

/// Installs only when something is missing (what `test` and `demo` call).
pub fn ensure() -> Result<()> {
    let m = missing();
    if m.is_empty() {
        return Ok(());
    }
    eprintln!("deps: missing {}; installing", m.join(", "));
    install()
}
