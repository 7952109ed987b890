//! The daemon side of the control socket. Connections are served on their
//! own tasks; each request goes to the daemon loop (which owns all state)
//! through a channel, with a oneshot for the reply.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::{mpsc, oneshot},
};

use super::{ControlError, Request, Response};

/// A request from a client, with where to send the answer.
pub type Envelope = (Request, oneshot::Sender<Response>);

/// Longest request line accepted.
const MAX_LINE: usize = 64 * 1024;

pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    group: Option<u32>,
}

impl ControlServer {
    /// Binds `path` (removing a stale socket), mode 0600, or 0660 owned by
    /// `group` when given.
    pub fn bind(path: &Path, group: Option<u32>) -> Result<ControlServer, ControlError> {
        let io = |source| ControlError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ControlError::Refused(format!(
                    "another sipshield daemon is serving {}",
                    path.display()
                )));
            }
            std::fs::remove_file(path).map_err(io)?;
        }
        let listener = UnixListener::bind(path).map_err(io)?;
        let mode = if group.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)?;
        if let Some(gid) = group {
            std::os::unix::fs::chown(path, None, Some(gid)).map_err(io)?;
        }
        Ok(ControlServer {
            listener,
            path: path.to_path_buf(),
            group,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts connections until the task is dropped.
    pub async fn serve(self, requests: mpsc::Sender<Envelope>) {
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                continue;
            };
            let tx = requests.clone();
            let group = self.group;
            tokio::spawn(async move {
                if let Err(e) = handle(stream, group, tx).await {
                    log::debug!("control connection: {e}");
                }
            });
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn permitted(stream: &UnixStream, group: Option<u32>) -> bool {
    match stream.peer_cred() {
        Ok(cred) => cred.uid() == 0 || group.is_some_and(|g| cred.gid() == g),
        Err(_) => false,
    }
}

async fn handle(
    stream: UnixStream,
    group: Option<u32>,
    requests: mpsc::Sender<Envelope>,
) -> std::io::Result<()> {
    let allowed = permitted(&stream, group);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read).take(MAX_LINE as u64);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let response = if !allowed {
        Response::error("permission denied: root or the configured group only")
    } else {
        match serde_json::from_str::<Request>(&line) {
            Err(e) => Response::error(format!("bad request: {e}")),
            Ok(req) => {
                let (tx, rx) = oneshot::channel();
                if requests.send((req, tx)).await.is_err() {
                    Response::error("the daemon is shutting down")
                } else {
                    rx.await
                        .unwrap_or_else(|_| Response::error("the daemon dropped the request"))
                }
            }
        }
    };
    let mut out = serde_json::to_vec(&response).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    out.push(b'\n');
    write.write_all(&out).await
}
