//! `cargo xtask deb`: the Debian package, `target/debian/sipshield_<version>_amd64.deb`,
//! built with cargo-deb from the metadata in `sipshield/Cargo.toml`. The man
//! pages, completions and default config are generated from the binary
//! itself first (`sipshield generate`, `sipshield config default`).

use std::{fs, path::Path, process::Command};

use anyhow::{bail, Context, Result};

use crate::{deps, shell};

pub fn run() -> Result<std::path::PathBuf> {
    deps::ensure()?;
    let root = shell::workspace_root();
    shell::run(Command::new("cargo").current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "sipshield",
    ]))?;
    let bin = root.join("target/release/sipshield");
    let assets = root.join("target/debian-assets");
    let _ = fs::remove_dir_all(&assets);
    fs::create_dir_all(assets.join("completions"))?;
    shell::run(
        Command::new(&bin)
            .args(["generate", "man"])
            .arg(assets.join("man")),
    )?;
    for page in fs::read_dir(assets.join("man"))? {
        let page = page?.path();
        // -n: no name or time in the header, so the package is reproducible.
        shell::run(Command::new("gzip").args(["-9", "-n", "-f"]).arg(&page))?;
    }
    for shell_name in ["bash", "zsh", "fish"] {
        shell::run(
            Command::new(&bin)
                .args(["generate", "completions", shell_name])
                .arg(assets.join("completions")),
        )?;
    }
    let config = Command::new(&bin)
        .args(["config", "default"])
        .output()
        .context("sipshield config default")?;
    if !config.status.success() {
        bail!("sipshield config default failed");
    }
    fs::write(assets.join("sipshield.toml"), &config.stdout)?;
    let out_dir = root.join("target/debian");
    fs::create_dir_all(&out_dir)?;
    shell::run(
        Command::new("cargo")
            .current_dir(&root)
            .args(["deb", "-p", "sipshield", "--no-build", "--output"])
            .arg(&out_dir),
    )?;
    let version = env!("CARGO_PKG_VERSION");
    let deb = out_dir.join(format!("sipshield_{version}_amd64.deb"));
    let found = if deb.exists() {
        deb
    } else {
        newest_deb(&out_dir)?
    };
    println!("{}", found.display());
    Ok(found)
}

fn newest_deb(dir: &Path) -> Result<std::path::PathBuf> {
    let mut debs: Vec<_> = fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    debs.sort_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok());
    debs.pop().context("cargo deb wrote no .deb")
}
