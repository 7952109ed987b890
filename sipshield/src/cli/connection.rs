//! How CLI commands reach the daemon (control socket) or, when it is down,
//! the pinned maps.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use sipshield::{
    bpf::pins::{self, Attachment},
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

    /// The pinned programs, opened directly (root needed).
    pub fn pinned_shield(&self) -> anyhow::Result<Shield> {
        Ok(Shield::new(open_pinned(&self.pin_root)?))
    }
}

pub fn open_pinned(root: &Path) -> anyhow::Result<Vec<Attachment>> {
    let mut out = Vec::new();
    for iface in pins::pinned_interfaces(root) {
        let maps = pins::open_pinned(root, &iface)
            .with_context(|| format!("opening the maps pinned for {iface} (root needed)"))?;
        out.push(Attachment {
            program_id: pins::attached_program_id(&iface).unwrap_or(0),
            dir: pins::iface_dir(root, &iface),
            iface,
            maps,
            adopted: true,
        });
    }
    Ok(out)
}
