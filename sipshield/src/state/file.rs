//! Reading and atomically replacing the state file.

use std::{
    fmt,
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::SystemTime,
};

use serde::Deserialize;

use super::{unix_secs, BanRecord, State, STATE_FILE_NAME, STATE_VERSION};

/// What became of a state file that could not be used.
#[derive(Debug)]
pub enum Aside {
    MovedTo(PathBuf),
    NotMoved(io::Error),
}

impl fmt::Display for Aside {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Aside::MovedTo(path) => write!(f, "moved aside to {}", path.display()),
            Aside::NotMoved(err) => write!(f, "could not be moved aside: {err}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state file {} is corrupt ({reason}); {aside}", path.display())]
    Corrupt {
        path: PathBuf,
        reason: String,
        aside: Aside,
    },
    #[error("state file {} is unreadable ({source}); {aside}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
        aside: Aside,
    },
    #[error(
        "state file {} has format version {found}, this sipshield reads up to {supported}: \
         it was written by a newer sipshield; upgrade, or move the file away to start empty",
        path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("writing state file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("encoding state: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A loaded state, with the bans that had expired while nobody was looking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedState {
    pub state: State,
    /// `false` when there was no file (first start): `state` is empty.
    pub found: bool,
    /// Bans dropped because they expired before `now`.
    pub expired: Vec<BanRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn new(path: impl Into<PathBuf>) -> StateFile {
        StateFile { path: path.into() }
    }

    /// `<state_dir>/state.json`.
    pub fn in_dir(state_dir: &Path) -> StateFile {
        StateFile::new(state_dir.join(STATE_FILE_NAME))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state. No file: an empty state. A file that cannot be read
    /// or parsed is moved aside to `state.json.corrupt-<unix time>` and
    /// reported as an error, so the evidence is kept and a later save does not
    /// destroy it. A file from a newer sipshield is left alone and refused.
    pub fn load(&self, now: SystemTime) -> Result<LoadedState, StateError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Ok(LoadedState {
                    state: State::default(),
                    found: false,
                    expired: Vec::new(),
                })
            }
            Err(source) => {
                return Err(StateError::Unreadable {
                    path: self.path.clone(),
                    source,
                    aside: self.move_aside(now),
                })
            }
        };
        let mut state = self.parse(&bytes, now)?;
        let now_unix = unix_secs(now);
        let (active, expired) = state.bans.drain(..).partition(|b| b.is_active(now_unix));
        state.bans = active;
        Ok(LoadedState {
            state,
            found: true,
            expired,
        })
    }

    fn parse(&self, bytes: &[u8], now: SystemTime) -> Result<State, StateError> {
        /// Read first, so a newer format is recognised as such rather than
        /// as corruption.
        #[derive(Deserialize)]
        struct Version {
            version: Option<u32>,
        }
        let corrupt = |reason: String| StateError::Corrupt {
            path: self.path.clone(),
            reason,
            aside: self.move_aside(now),
        };
        let version = serde_json::from_slice::<Version>(bytes)
            .map_err(|e| corrupt(e.to_string()))?
            .version;
        match version {
            None => return Err(corrupt("no format version".to_string())),
            Some(found) if found > STATE_VERSION => {
                return Err(StateError::UnsupportedVersion {
                    path: self.path.clone(),
                    found,
                    supported: STATE_VERSION,
                })
            }
            Some(0) => return Err(corrupt("format version 0".to_string())),
            Some(_) => {}
        }
        serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))
    }

    fn move_aside(&self, now: SystemTime) -> Aside {
        let base = format!("{}.corrupt-{}", self.path.display(), unix_secs(now));
        let mut target = PathBuf::from(&base);
        let mut n = 1;
        while target.exists() {
            target = PathBuf::from(format!("{base}-{n}"));
            n += 1;
        }
        match fs::rename(&self.path, &target) {
            Ok(()) => Aside::MovedTo(target),
            Err(err) => Aside::NotMoved(err),
        }
    }

    /// Replaces the file atomically: a temporary file in the same directory
    /// is written and fsynced, renamed over the old one, and the directory
    /// fsynced, so a crash leaves either the old or the new state, whole.
    /// Creates the state directory mode 0700, or narrows an existing one
    /// to 0700: bans, offence history and SSH sessions are root's business.
    pub fn prepare_dir(dir: &Path) -> Result<(), StateError> {
        let write_err = |source| StateError::Write {
            path: dir.to_path_buf(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(write_err)?;
        let mode = fs::metadata(dir).map_err(write_err)?.permissions().mode();
        if mode & 0o077 != 0 {
            log::warn!(
                "{}: mode {:o} lets others read the state; narrowed to 0700",
                dir.display(),
                mode & 0o777
            );
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(write_err)?;
        }
        Ok(())
    }

    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let mut bytes = serde_json::to_vec_pretty(state)?;
        bytes.push(b'\n');
        let write_err = |source| StateError::Write {
            path: self.path.clone(),
            source,
        };
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(write_err)?;
        let temp = self.temp_path(&dir);
        let written = write_synced(&temp, &bytes).and_then(|()| fs::rename(&temp, &self.path));
        if let Err(err) = written {
            let _ = fs::remove_file(&temp);
            return Err(write_err(err));
        }
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(write_err)
    }

    fn temp_path(&self, dir: &Path) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = self
            .path
            .file_name()
            .map_or_else(|| STATE_FILE_NAME.into(), |n| n.to_string_lossy());
        dir.join(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ))
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
