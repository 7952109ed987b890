//! The daemon side of the control socket. Connections are served on their
//! own tasks; each request goes to the daemon loop (which owns all state)
//! through a channel, with a oneshot for the reply.

use std::{
    os::{fd::AsRawFd, unix::fs::PermissionsExt},
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::{broadcast, mpsc, oneshot},
};

use crate::daemon::events::BanEvent;

use super::{ControlError, Request, Response};

/// A request from a client, with where to send the answer.
pub type Envelope = (Request, oneshot::Sender<Response>);

/// Longest request line accepted.
const MAX_LINE: usize = 64 * 1024;

/// A client has this long to send its request line; one that connects and
/// says nothing is hung up on. Only the request is timed: an answer that
/// streams for long (a future `top --follow`) is not cut.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A client that does not read its answer is dropped after this long.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

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

    /// Accepts connections until the task is dropped. Out of descriptors
    /// (EMFILE, ENFILE) or memory, accept fails at once every time it is
    /// retried: back off (up to a second) instead of spinning a core.
    pub async fn serve(
        self,
        requests: mpsc::Sender<Envelope>,
        events: broadcast::Sender<BanEvent>,
    ) {
        let mut backoff = Duration::ZERO;
        loop {
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => {
                    backoff = Duration::ZERO;
                    stream
                }
                Err(e) => {
                    backoff = (backoff * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
                    if backoff == ACCEPT_BACKOFF_MAX || backoff == ACCEPT_BACKOFF_MIN * 2 {
                        log::warn!(
                            "control socket: accept failed ({e}); retrying in {} ms",
                            backoff.as_millis()
                        );
                    }
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            };
            let tx = requests.clone();
            let group = self.group;
            let events = events.clone();
            tokio::spawn(async move {
                if let Err(e) = handle(stream, group, tx, events).await {
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

/// Root, or a member of the control group: as primary group or as one of
/// the supplementary groups (`adduser ops sipshield` makes the latter).
fn permitted(stream: &UnixStream, group: Option<u32>) -> bool {
    let Ok(cred) = stream.peer_cred() else {
        return false;
    };
    if cred.uid() == 0 {
        return true;
    }
    let Some(group) = group else {
        return false;
    };
    cred.gid() == group || peer_groups(stream).is_some_and(|groups| groups.contains(&group))
}

/// The peer's supplementary groups as of its `connect` (`SO_PEERGROUPS`).
fn peer_groups(stream: &UnixStream) -> Option<Vec<u32>> {
    let fd = stream.as_raw_fd();
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: `groups` has room for `len` bytes; the kernel writes at
        // most that many and sets `len` to what it wrote or needs.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let n = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(n);
            return Some(groups);
        }
        let err = std::io::Error::last_os_error();
        // ERANGE: `len` now says how much room it needs (NGROUPS_MAX is 65536).
        if err.raw_os_error() == Some(libc::ERANGE) && n > groups.len() && n <= 65_536 {
            groups.resize(n, 0);
            continue;
        }
        return None;
    }
}

async fn handle(
    stream: UnixStream,
    group: Option<u32>,
    requests: mpsc::Sender<Envelope>,
    events: broadcast::Sender<BanEvent>,
) -> std::io::Result<()> {
    let allowed = permitted(&stream, group);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read).take(MAX_LINE as u64);
    let mut line = String::new();
    match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await {
        Ok(read) => read?,
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no request within 5 s",
            ))
        }
    };
    // A follower subscribes before the recent events are asked for: none
    // falls between the two.
    let mut follow: Option<broadcast::Receiver<BanEvent>> = None;
    let response = if !allowed {
        Response::error("permission denied: root or the configured group only")
    } else {
        match serde_json::from_str::<Request>(&line) {
            Err(e) => Response::error(format!("bad request: {e}")),
            Ok(req) => {
                if req == (Request::Events { follow: true }) {
                    follow = Some(events.subscribe());
                }
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
    send_line(&mut write, &out).await?;
    let Some(mut rx) = follow else {
        return Ok(());
    };
    // Long-lived: no idle limit, but every line must be read in time.
    loop {
        let line = match rx.recv().await {
            Ok(event) => serde_json::to_vec(&event),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                serde_json::to_vec(&serde_json::json!({ "lost": n }))
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        };
        let mut line = line.unwrap_or_default();
        line.push(b'\n');
        send_line(&mut write, &line).await?;
    }
}

async fn send_line(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    line: &[u8],
) -> std::io::Result<()> {
    match tokio::time::timeout(REPLY_TIMEOUT, write.write_all(line)).await {
        Ok(written) => written,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client did not read its answer",
        )),
    }
}
