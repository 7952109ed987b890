//! The daemon's control socket: one JSON request per line, one JSON
//! response per line. Only root (or members of the configured group) may
//! connect; the socket is created mode 0600 (0660 with a group).

pub mod client;
pub mod protocol;
pub mod server;

pub use protocol::{Request, Response};

pub const DEFAULT_SOCKET: &str = "/run/sipshield/sipshield.sock";

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("the daemon is not running (no socket at {0})")]
    NotRunning(String),
    #[error("control socket {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("bad message on the control socket: {0}")]
    Protocol(String),
    #[error("{0}")]
    Refused(String),
}
