//! Builds the XDP program (sipshield-ebpf) and leaves the object in OUT_DIR,
//! where `src/bpf/object.rs` embeds it.
//!
//! The eBPF build needs a toolchain rustup cannot provide on this machine kind
//! (see README, "How the build works"): Debian's rustc with core sources,
//! linked as the rustup toolchain `sipshield-bpf`, and bpf-linker built
//! against LLVM 22. `cargo xtask deps` installs all of it. When a piece is
//! missing we stop with that instruction instead of a linker trace.
//!
//! `AYA_BUILD_SKIP=1` skips the eBPF build (for check/clippy/doc, or unit
//! tests of the pure modules); the binary then refuses to load the program.

use std::{env, fs, path::PathBuf, process::Command};

const TOOLCHAIN: &str = "sipshield-bpf";
const BPF_BIN: &str = "sipshield";
const BASELINES_BIN: &str = "sipshield-baselines";

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");

    if skip_requested() {
        // An empty object marks "built without the XDP program".
        for bin in [BPF_BIN, BASELINES_BIN] {
            let path = out_dir.join(bin);
            if !path.exists() {
                fs::write(&path, []).expect("write empty eBPF placeholder");
            }
        }
        println!("cargo:warning=AYA_BUILD_SKIP set: this build carries no XDP program");
        return;
    }

    if let Some(missing) = missing_toolchain_piece() {
        eprintln!();
        eprintln!("error: cannot build the sipshield XDP program: {missing}.");
        eprintln!("       Run `cargo xtask deps` to install the eBPF toolchain, then build again.");
        eprintln!(
            "       (Set AYA_BUILD_SKIP=1 to build userspace only, without the XDP program.)"
        );
        eprintln!();
        std::process::exit(1);
    }

    // Debian's rustc is a stable compiler; RUSTC_BOOTSTRAP lets it build
    // `core` for bpfel-unknown-none (-Z build-std), which aya-build adds
    // itself when it sees this variable.
    env::set_var("RUSTC_BOOTSTRAP", "1");

    let ebpf = aya_build::Package {
        name: "sipshield-ebpf",
        root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../sipshield-ebpf"),
        ..Default::default()
    };
    if let Err(err) = aya_build::build_ebpf([ebpf], aya_build::Toolchain::Custom(TOOLCHAIN)) {
        eprintln!("error: building the XDP program failed: {err:#}");
        eprintln!("       If the toolchain is incomplete, `cargo xtask deps` repairs it.");
        std::process::exit(1);
    }
}

fn skip_requested() -> bool {
    matches!(
        env::var("AYA_BUILD_SKIP").as_deref(),
        Ok("1") | Ok("true") | Ok("TRUE") | Ok("True")
    )
}

/// The first missing piece of the eBPF toolchain, if any.
fn missing_toolchain_piece() -> Option<String> {
    let ok = |cmd: &mut Command| cmd.output().map(|o| o.status.success()).unwrap_or(false);
    if !ok(Command::new("bpf-linker").arg("--version")) {
        return Some("`bpf-linker` is not on PATH".into());
    }
    if !ok(Command::new("rustup").args(["run", TOOLCHAIN, "rustc", "-V"])) {
        return Some(format!("the rustup toolchain `{TOOLCHAIN}` is not set up"));
    }
    let sysroot = Command::new("rustup")
        .args(["run", TOOLCHAIN, "rustc", "--print", "sysroot"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let core_src = PathBuf::from(&sysroot).join("lib/rustlib/src/rust/library/core");
    if !core_src.is_dir() {
        return Some(format!(
            "the core library sources are missing ({})",
            core_src.display()
        ));
    }
    None
}
