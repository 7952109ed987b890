//! What survives a reboot: bans, offence history, SSH sessions and manual
//! allowlist entries, kept in `<state_dir>/state.db` (`db`); `file` reads
//! the `state.json` of older versions, to import it once.
//!
//! Times are wall-clock unix seconds. Whoever programs the kernel converts
//! them to `CLOCK_MONOTONIC` expiries; this module never does.

pub mod db;
mod file;
mod record;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use file::{Aside, LoadedState, StateError, StateFile};
pub use record::{
    AllowRecord, BanOrigin, BanRecord, BanTarget, HistoryRecord, KnownGoodRecord, SshSession,
    WindowRecord,
};

pub const STATE_FILE_NAME: &str = "state.json";

/// Format version written into the file. Files with a newer version are
/// refused (a newer sipshield wrote them), never overwritten by this one.
pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// Unix seconds.
    pub saved_at: u64,
    #[serde(default)]
    pub bans: Vec<BanRecord>,
    #[serde(default)]
    pub history: Vec<HistoryRecord>,
    #[serde(default)]
    pub allow: Vec<AllowRecord>,
    /// Authenticated SSH sessions (allowlisted while open).
    #[serde(default)]
    pub ssh_sessions: Vec<SshSession>,
    /// Open failure windows (the database keeps them; the old JSON file
    /// did not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<WindowRecord>,
    /// Known-good SIP sources (remote agents) and until when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known_good: Vec<KnownGoodRecord>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: STATE_VERSION,
            saved_at: 0,
            bans: Vec::new(),
            history: Vec::new(),
            allow: Vec::new(),
            ssh_sessions: Vec::new(),
            windows: Vec::new(),
            known_good: Vec::new(),
        }
    }
}

/// Unix seconds of `time` (0 before 1970).
pub fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The latest time a state file may name: the end of year 9999. Later
/// values (a corrupt or hand-edited file) are read as this, so no time
/// arithmetic on them can overflow.
pub const LATEST_UNIX_SECS: u64 = 253_402_300_799;

pub fn from_unix_secs(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs.min(LATEST_UNIX_SECS))
}
