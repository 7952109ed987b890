//! Writing state without stalling the daemon: batches of changes go to a
//! thread of their own, which writes each batch in one SQLite transaction
//! (the event loop never waits on a disk). A batch that fails (disk full)
//! is kept and written with the next one, so nothing is skipped.
//!
//! The operator's allowlist entries are also kept in a plain file beside
//! the database (`allowlist.txt`, one `NET NOTE` per line): the engine
//! rewrites it at once when they change, start-up merges it back, so a
//! corrupt database never loses them. Its reader and writer live here.

use std::{
    fs,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::Path,
    sync::mpsc,
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime},
};

use crate::state::{
    db::{Change, StateDb},
    AllowRecord,
};

pub const ALLOWLIST_FILE_NAME: &str = "allowlist.txt";

enum Msg {
    Batch(Vec<Change>),
    Prune(Duration, Duration),
}

pub struct Store {
    tx: Option<mpsc::Sender<Msg>>,
    writer: Option<JoinHandle<()>>,
}

impl Store {
    /// Starts the writer thread on `db`.
    pub fn start(db: StateDb) -> Store {
        let (tx, rx) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("sipshield-store".into())
            .spawn(move || write_loop(db, rx))
            .ok();
        if writer.is_none() {
            log::error!("could not start the state writer: changes are not saved");
        }
        Store {
            tx: Some(tx),
            writer,
        }
    }

    /// Queues one batch (empty ones are dropped).
    pub fn send(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        if let Some(tx) = &self.tx {
            if tx.send(Msg::Batch(changes)).is_err() {
                log::error!("the state writer is gone: changes are not saved");
            }
        }
    }

    /// Drops old `ban_log` rows and forgotten history.
    pub fn prune(&self, forget_after: Duration, window_keep: Duration) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Prune(forget_after, window_keep));
        }
    }

    /// Writes what is queued and stops the thread.
    pub fn finish(&mut self) {
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.finish();
    }
}

fn write_loop(mut db: StateDb, rx: mpsc::Receiver<Msg>) {
    let mut pending: Vec<Change> = Vec::new();
    let mut last_error: Option<Instant> = None;
    loop {
        // A failed batch is retried every second even if nothing new comes.
        let msg = if pending.is_empty() {
            rx.recv().ok()
        } else {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(m) => Some(m),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    write_pending(&mut db, &mut pending, &mut last_error);
                    return;
                }
            }
        };
        match msg {
            Some(Msg::Batch(changes)) => pending.extend(changes),
            Some(Msg::Prune(forget_after, window_keep)) => {
                if let Err(e) = db.prune(SystemTime::now(), forget_after, window_keep) {
                    log::warn!("pruning the state database: {e}");
                }
                continue;
            }
            None if pending.is_empty() => return,
            None => {}
        }
        // Whatever else is queued joins this transaction.
        while let Ok(m) = rx.try_recv() {
            match m {
                Msg::Batch(changes) => pending.extend(changes),
                Msg::Prune(..) => {}
            }
        }
        write_pending(&mut db, &mut pending, &mut last_error);
    }
}

fn write_pending(db: &mut StateDb, pending: &mut Vec<Change>, last_error: &mut Option<Instant>) {
    if pending.is_empty() {
        return;
    }
    match db.apply(pending, SystemTime::now()) {
        Ok(()) => {
            pending.clear();
            if last_error.take().is_some() {
                log::warn!("state database writable again");
            }
        }
        Err(e) => {
            // Once a minute, not once a second.
            if last_error.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                log::error!("writing the state database (kept, retried): {e}");
                *last_error = Some(Instant::now());
            }
        }
    }
}

/// Writes the plain allowlist file atomically (temp file, fsync, rename).
pub fn write_allowlist(path: &Path, entries: &[AllowRecord]) -> std::io::Result<()> {
    let mut text = String::from(
        "# sipshield: the operator's allowlist entries (sipshield allow add/del).\n\
         # Kept beside state.db so a damaged database never loses them. One per line:\n\
         # NET NOTE\n",
    );
    for e in entries {
        let note: String = e
            .note
            .chars()
            .filter(|c| *c != '\n' && *c != '\r')
            .collect();
        text.push_str(&format!("{} {}\n", e.net, note).replace(" \n", "\n"));
    }
    let temp = path.with_extension("txt.tmp");
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&temp, path)
}

/// Reads the plain allowlist file; lines that do not parse are skipped
/// (and counted), a missing file is empty.
pub fn read_allowlist(path: &Path) -> (Vec<AllowRecord>, usize) {
    let Ok(text) = fs::read_to_string(path) else {
        return (Vec::new(), 0);
    };
    let mut bad = 0;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (net, note) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match crate::bpf::addr::parse_net(net) {
            Ok(net) => out.push(AllowRecord {
                net,
                note: note.trim().to_string(),
            }),
            Err(_) => bad += 1,
        }
    }
    (out, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_allowlist_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ALLOWLIST_FILE_NAME);
        let entries = vec![
            AllowRecord {
                net: "192.0.2.0/24".parse().unwrap(),
                note: "office\nwith a newline".into(),
            },
            AllowRecord {
                net: "2001:db8::1/128".parse().unwrap(),
                note: String::new(),
            },
        ];
        write_allowlist(&path, &entries).unwrap();
        let (back, bad) = read_allowlist(&path);
        assert_eq!(bad, 0);
        assert_eq!(back[0].note, "officewith a newline");
        assert_eq!(back[1].net, entries[1].net);
        fs::write(&path, "# c\nnot-a-net x\n10.0.0.0/8 lab\n").unwrap();
        let (back, bad) = read_allowlist(&path);
        assert_eq!((back.len(), bad), (1, 1));
    }
}
