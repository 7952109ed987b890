//! How CLI commands reach the daemon (control socket) or, when it is down,
//! the pinned maps.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use sipshield::{
    bpf::pins,
    control::{client, ControlError, Request},
    daemon::shield::Shield,
};

#[derive(clap::Args, Debug, Clone)]
pub struct Connection {
    /// The daemon's control socket.
    #[arg(long, default_value = sipshield::control::DEFAULT_SOCKET, global = true)]
    pub socket: PathBuf,
    /// Where the daemon pins the program and maps (bpffs).
    #[arg(long, default_value = pins::DEFAULT_PIN_ROOT, global = true)]
    pub pin_root: PathBuf,
}

impl Connection {
    /// Sends `req`; `Ok(None)` when the daemon is not running.
    pub fn ask(&self, req: &Request) -> anyhow::Result<Option<serde_json::Value>> {
        match client::request(&self.socket, req) {
            Ok(resp) if resp.ok => Ok(Some(resp.data)),
            Ok(resp) => bail!(resp.error.unwrap_or_else(|| "the daemon refused".into())),
            Err(ControlError::NotRunning(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Like `ask`, but the daemon must be running.
    pub fn require(&self, req: &Request) -> anyhow::Result<serde_json::Value> {
        self.ask(req)?.with_context(|| {
            format!(
                "the sipshield daemon is not running (no socket at {}); start it with `sipshield run`",
                self.socket.display()
            )
        })
    }

    /// The pinned program and maps, opened directly (root needed).
    pub fn pinned_shield(&self) -> anyhow::Result<Shield> {
        open_pinned(&self.pin_root)
    }
}

pub fn open_pinned(root: &Path) -> anyhow::Result<Shield> {
    let pinned = pins::open(root).with_context(|| {
        format!(
            "opening the maps pinned under {} (root needed; is sipshield attached?)",
            pins::maps_dir(root).display()
        )
    })?;
    let capacity =
        aya::maps::MapInfo::from_pin(pins::maps_dir(root).join(sipshield_common::maps::BANS_V4))
            .map(|i| i.max_entries())
            .unwrap_or(u32::MAX);
    Ok(Shield::new(pinned, capacity)?)
}
