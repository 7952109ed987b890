//! Start-up: the state database opened (a corrupt one moved aside), an
//! older sipshield's `state.json` imported once, and the operator's plain
//! allowlist file merged in.

use std::{path::Path, time::SystemTime};

use anyhow::Context;

use super::store::{read_allowlist, write_allowlist, ALLOWLIST_FILE_NAME};
use crate::state::{db::StateDb, State, StateError, StateFile, STATE_FILE_NAME};

/// Set in `meta` once `state.json` was looked at.
const IMPORTED_KEY: &str = "imported_state_json";

/// Opens the state in `dir`; returns the database and what it holds.
pub fn open_state(dir: &Path, now: SystemTime) -> anyhow::Result<(StateDb, State)> {
    StateFile::prepare_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (db, moved) = StateDb::open(dir);
    if let Some(report) = &moved {
        // Kept for inspection; the pinned maps still hold the bans, and the
        // daemon adopts them.
        log::error!("{report}");
        eprintln!("sipshield: {report}");
    }
    let mut db = db.context("opening the state database")?;
    if db.meta(IMPORTED_KEY)?.is_none() {
        import_json(dir, &mut db, now)?;
    }
    let (mut state, skipped) = db.load()?;
    if skipped > 0 {
        log::warn!(
            "{}: {skipped} row(s) that do not parse were skipped",
            db.path().display()
        );
    }
    // The plain file holds the operator's entries even when the database
    // was lost; the database's are written back to it.
    let file = dir.join(ALLOWLIST_FILE_NAME);
    let (from_file, bad) = read_allowlist(&file);
    if bad > 0 {
        log::warn!(
            "{}: {bad} line(s) that do not parse were skipped",
            file.display()
        );
    }
    for entry in from_file {
        if !state.allow.iter().any(|a| a.net == entry.net) {
            state.allow.push(entry);
        }
    }
    if let Err(e) = write_allowlist(&file, &state.allow) {
        log::error!("writing {}: {e}", file.display());
    }
    let now_unix = crate::state::unix_secs(now);
    let active = state.bans.iter().filter(|b| b.is_active(now_unix)).count();
    log::info!(
        "state: {} ban(s) restored, {} expired while down, {} source histories, {} operator allowlist entries",
        active,
        state.bans.len() - active,
        state.history.len(),
        state.allow.len()
    );
    Ok((db, state))
}

/// Imports `state.json` into an empty database once, then renames it
/// `state.json.imported`. A corrupt one is moved aside and reported.
fn import_json(dir: &Path, db: &mut StateDb, now: SystemTime) -> anyhow::Result<()> {
    let json = StateFile::in_dir(dir);
    if json.path().exists() {
        match json.load(now) {
            Ok(loaded) => {
                db.replace_all(&loaded.state)?;
                let done = dir.join(format!("{STATE_FILE_NAME}.imported"));
                if let Err(e) = std::fs::rename(json.path(), &done) {
                    log::warn!("renaming {}: {e}", json.path().display());
                }
                log::warn!(
                    "imported {} ban(s) from {} into {}",
                    loaded.state.bans.len(),
                    json.path().display(),
                    db.path().display()
                );
            }
            Err(e @ (StateError::Corrupt { .. } | StateError::Unreadable { .. })) => {
                log::error!("{e}; not imported");
                eprintln!("sipshield: {e}; not imported");
            }
            Err(e) => return Err(e).context("importing the state file"),
        }
    }
    db.set_meta(IMPORTED_KEY, &crate::state::unix_secs(now).to_string())?;
    Ok(())
}
