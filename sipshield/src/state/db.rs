//! The state database: SQLite in WAL mode, `<state_dir>/state.db`.
//!
//! Changes are written as rows, a batch per transaction: a ban made or
//! lifted is one row in `bans` and one in `ban_log`, a source's history one
//! row in `history`. Nothing is ever rewritten whole. `synchronous=FULL`
//! makes each committed batch survive a crash of the process or the host.
//! The schema is in the README (operators query it with `sqlite3`).

use std::{
    fs,
    net::IpAddr,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{
    unix_secs, AllowRecord, BanOrigin, BanRecord, BanTarget, HistoryRecord, KnownGoodRecord,
    SshSession, State, WindowRecord, STATE_VERSION,
};
use crate::offence::OffenceClass;

pub const DB_FILE_NAME: &str = "state.db";

/// Bumped when the tables change incompatibly; a newer file is refused.
pub const SCHEMA_VERSION: i64 = 1;

/// How long `ban_log` keeps its rows.
pub const BAN_LOG_KEEP: Duration = Duration::from_secs(30 * 86_400);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bans (
    target TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    expires INTEGER,
    class TEXT NOT NULL,
    origin TEXT NOT NULL,
    offence_number INTEGER NOT NULL,
    reason TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ban_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    class TEXT NOT NULL,
    origin TEXT NOT NULL,
    expires INTEGER,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ban_log_at ON ban_log (at);
CREATE TABLE IF NOT EXISTS history (
    addr TEXT PRIMARY KEY,
    bans INTEGER NOT NULL,
    last_offence INTEGER NOT NULL,
    banned_until INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS allow (net TEXT PRIMARY KEY, note TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ssh_sessions (
    ip TEXT NOT NULL,
    port INTEGER NOT NULL,
    method TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    last_open INTEGER NOT NULL,
    PRIMARY KEY (ip, port)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS windows (
    addr TEXT NOT NULL,
    class TEXT NOT NULL,
    newest_ms INTEGER NOT NULL,
    times_ms TEXT NOT NULL,
    PRIMARY KEY (addr, class)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS known_good (addr TEXT PRIMARY KEY, until INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fleet (
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    target TEXT NOT NULL,
    until INTEGER,
    scenario TEXT NOT NULL,
    origin TEXT NOT NULL,
    PRIMARY KEY (source, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_queue (
    key TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    alert TEXT NOT NULL
) WITHOUT ROWID;
";

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{}: schema {found} is newer than this sipshield's {SCHEMA_VERSION}; upgrade sipshield or move the file away", path.display())]
    Newer { path: PathBuf, found: i64 },
    #[error("{} was unusable ({reason}); moved aside to {}, starting a new one", path.display(), aside.display())]
    MovedAside {
        path: PathBuf,
        aside: PathBuf,
        reason: String,
    },
}

/// One change to write, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A ban made or replaced.
    Ban(BanRecord),
    /// A ban lifted (expired, unbanned, allowlisted); the record it had.
    Lift(BanRecord),
    History(HistoryRecord),
    ForgetHistory(IpAddr),
    /// The operator's allowlist entries, all of them (a handful).
    Allow(Vec<AllowRecord>),
    /// The SSH sessions, all of them (a handful).
    Ssh(Vec<SshSession>),
    /// An open failure window as it is now (no times: gone).
    Window(WindowRecord),
    /// A known-good source until then; `None`: no longer.
    KnownGood {
        addr: IpAddr,
        until: Option<u64>,
    },
    /// A `meta` value: where a followed journal was left (written in the
    /// same transaction as the offences its entries counted).
    Meta {
        key: String,
        value: String,
    },
    /// A fleet decision (CrowdSec) made or changed.
    Fleet(crate::fleet::book::FleetDecision),
    /// A fleet decision gone.
    FleetGone {
        source: String,
        id: String,
    },
    /// An alert for CrowdSec, kept until LAPI takes it.
    AlertQueued {
        key: String,
        created: u64,
        alert: String,
    },
    /// LAPI took it.
    AlertSent {
        key: String,
    },
}

pub struct StateDb {
    conn: Connection,
    path: PathBuf,
}

impl StateDb {
    /// Opens `<dir>/state.db`, creating it. A file that is not a database,
    /// or fails SQLite's quick check, is moved aside (with its `-wal` and
    /// `-shm`) and a new one is made: the error says where it went.
    pub fn open(dir: &Path) -> (Result<StateDb, DbError>, Option<DbError>) {
        let path = dir.join(DB_FILE_NAME);
        match Self::open_checked(&path) {
            Ok(db) => (Ok(db), None),
            Err(e @ DbError::Newer { .. }) => (Err(e), None),
            Err(e) => {
                let aside = aside_path(&path);
                let moved = fs::rename(&path, &aside);
                for suffix in ["-wal", "-shm"] {
                    let side = PathBuf::from(format!("{}{suffix}", path.display()));
                    let _ = fs::rename(&side, format!("{}{suffix}", aside.display()));
                }
                if let Err(io) = moved {
                    return (
                        Err(DbError::Sqlite {
                            path: path.clone(),
                            source: rusqlite::Error::InvalidPath(
                                format!("cannot move the unusable database aside: {io}").into(),
                            ),
                        }),
                        None,
                    );
                }
                let report = DbError::MovedAside {
                    path: path.clone(),
                    aside,
                    reason: e.to_string(),
                };
                (Self::open_checked(&path), Some(report))
            }
        }
    }

    fn open_checked(path: &Path) -> Result<StateDb, DbError> {
        let err = |source| DbError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(err)?;
        if check != "ok" {
            return Err(err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(check),
            )));
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        let db = StateDb {
            conn,
            path: path.to_path_buf(),
        };
        match db.meta("schema_version")? {
            None => db.set_meta("schema_version", &SCHEMA_VERSION.to_string())?,
            Some(v) => {
                let found: i64 = v.parse().unwrap_or(i64::MAX);
                if found > SCHEMA_VERSION {
                    return Err(DbError::Newer {
                        path: path.to_path_buf(),
                        found,
                    });
                }
            }
        }
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> DbError {
        DbError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, DbError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), DbError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Everything stored, as the policy restores it. Rows that do not
    /// parse (a hand edit: text that is no address or name, a value of the
    /// wrong type) are skipped and counted in the second value.
    pub fn load(&self) -> Result<(State, usize), DbError> {
        let mut skipped = 0;
        let mut reasons: std::collections::HashSet<std::sync::Arc<str>> = Default::default();
        let mut classes = Names::<OffenceClass>::default();
        let mut origins = Names::<BanOrigin>::default();
        let mut state = State {
            version: STATE_VERSION,
            saved_at: unix_secs(SystemTime::now()),
            ..State::default()
        };
        self.each_row(
            "SELECT target, created, expires, class, origin, offence_number, reason FROM bans",
            &mut skipped,
            |r| {
                state.bans.push(BanRecord {
                    target: text(r, 0)?.parse::<BanTarget>().ok()?,
                    created: unsigned(r, 1)?,
                    expires: optional_unsigned(r, 2)?,
                    class: classes.get(text(r, 3)?)?,
                    origin: origins.get(text(r, 4)?)?,
                    offence_number: u32::try_from(int(r, 5)?).ok()?,
                    reason: shared_str(&mut reasons, text(r, 6)?),
                });
                Some(())
            },
        )?;
        self.each_row(
            "SELECT addr, bans, last_offence, banned_until FROM history",
            &mut skipped,
            |r| {
                state.history.push(HistoryRecord {
                    addr: text(r, 0)?.parse().ok()?,
                    bans: u32::try_from(int(r, 1)?).ok()?,
                    last_offence: unsigned(r, 2)?,
                    banned_until: optional_unsigned(r, 3)?,
                });
                Some(())
            },
        )?;
        self.each_row("SELECT net, note FROM allow", &mut skipped, |r| {
            state.allow.push(AllowRecord {
                net: text(r, 0)?.parse().ok()?,
                note: text(r, 1)?.to_string(),
            });
            Some(())
        })?;
        self.each_row(
            "SELECT ip, port, method, accepted, last_open FROM ssh_sessions",
            &mut skipped,
            |r| {
                state.ssh_sessions.push(SshSession {
                    ip: text(r, 0)?.parse().ok()?,
                    port: u16::try_from(int(r, 1)?).ok()?,
                    method: text(r, 2)?.to_string(),
                    accepted: unsigned(r, 3)?,
                    last_open: unsigned(r, 4)?,
                });
                Some(())
            },
        )?;
        self.each_row(
            "SELECT addr, class, times_ms FROM windows",
            &mut skipped,
            |r| {
                let times_ms = text(r, 2)?
                    .split_whitespace()
                    .map(|t| t.parse::<u64>().ok())
                    .collect::<Option<Vec<u64>>>()?;
                if times_ms.is_empty() {
                    return None;
                }
                state.windows.push(WindowRecord {
                    addr: text(r, 0)?.parse().ok()?,
                    class: classes.get(text(r, 1)?)?,
                    times_ms,
                });
                Some(())
            },
        )?;
        self.each_row("SELECT addr, until FROM known_good", &mut skipped, |r| {
            state.known_good.push(KnownGoodRecord {
                addr: text(r, 0)?.parse().ok()?,
                until: unsigned(r, 1)?,
            });
            Some(())
        })?;
        Ok((state, skipped))
    }

    /// Runs `sql` and hands each row to `read`; a row it cannot read
    /// (`None`) is counted in `skipped`. The row's text is borrowed, not
    /// copied: a million bans load without allocations of their own.
    fn each_row(
        &self,
        sql: &str,
        skipped: &mut usize,
        mut read: impl FnMut(&rusqlite::Row<'_>) -> Option<()>,
    ) -> Result<(), DbError> {
        let e = |e| self.err(e);
        let mut stmt = self.conn.prepare(sql).map_err(e)?;
        let mut rows = stmt.query([]).map_err(e)?;
        while let Some(row) = rows.next().map_err(e)? {
            if read(row).is_none() {
                *skipped += 1;
            }
        }
        Ok(())
    }

    /// The fleet decisions kept (those not over by `now_unix`); rows that
    /// do not parse (a value of the wrong type among them) are skipped and
    /// counted.
    pub fn load_fleet(
        &self,
        now_unix: u64,
    ) -> Result<(Vec<crate::fleet::book::FleetDecision>, usize), DbError> {
        use crate::fleet::book::{FleetDecision, FleetSource};
        let (mut out, mut skipped) = (Vec::new(), 0);
        let mut texts = std::collections::HashSet::new();
        self.each_row(
            "SELECT source, id, target, until, scenario, origin FROM fleet",
            &mut skipped,
            |r| {
                let source = FleetSource::parse(text(r, 0)?)?;
                let id = text(r, 1)?.to_string();
                let target = text(r, 2)?.parse::<BanTarget>().ok()?;
                // A negative end is long past, as before.
                let until = row_optional_int(r, 3)?.map(|u| u64::try_from(u).unwrap_or(0));
                let (scenario, origin) = (text(r, 4)?, text(r, 5)?);
                if until.is_none_or(|u| u > now_unix) {
                    out.push(FleetDecision {
                        source,
                        id,
                        target,
                        until,
                        scenario: shared_str(&mut texts, scenario),
                        origin: shared_str(&mut texts, origin),
                    });
                }
                Some(())
            },
        )?;
        Ok((out, skipped))
    }

    /// Alerts not yet taken by LAPI, oldest first: (key, alert JSON), and
    /// how many rows were skipped as unreadable.
    pub fn load_alert_queue(&self) -> Result<(Vec<(String, String)>, usize), DbError> {
        let (mut out, mut skipped) = (Vec::new(), 0);
        self.each_row(
            "SELECT key, alert FROM alert_queue ORDER BY created",
            &mut skipped,
            |r| {
                out.push((text(r, 0)?.to_string(), text(r, 1)?.to_string()));
                Some(())
            },
        )?;
        Ok((out, skipped))
    }

    /// Writes `changes` in one transaction: all of them or none.
    pub fn apply(&mut self, changes: &[Change], now: SystemTime) -> Result<(), DbError> {
        self.write(changes, now, true)
    }

    /// `apply`; `log`: also record bans and lifts in `ban_log`.
    fn write(
        &mut self,
        changes: &[Change],
        now: SystemTime,
        log_them: bool,
    ) -> Result<(), DbError> {
        let path = self.path.clone();
        let e = |source| DbError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut put_ban = tx
                .prepare_cached(
                    "INSERT INTO bans (target, created, expires, class, origin, offence_number, reason)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (target) DO UPDATE SET created = excluded.created,
                       expires = excluded.expires, class = excluded.class, origin = excluded.origin,
                       offence_number = excluded.offence_number, reason = excluded.reason",
                )
                .map_err(e)?;
            let mut del_ban = tx
                .prepare_cached("DELETE FROM bans WHERE target = ?1")
                .map_err(e)?;
            let mut log = tx
                .prepare_cached(
                    "INSERT INTO ban_log (at, action, target, class, origin, expires, reason)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(e)?;
            let mut put_history = tx
                .prepare_cached(
                    "INSERT INTO history (addr, bans, last_offence, banned_until) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (addr) DO UPDATE SET bans = excluded.bans,
                       last_offence = excluded.last_offence, banned_until = excluded.banned_until",
                )
                .map_err(e)?;
            let mut del_history = tx
                .prepare_cached("DELETE FROM history WHERE addr = ?1")
                .map_err(e)?;
            let at = sql_secs(unix_secs(now));
            for change in changes {
                match change {
                    Change::Ban(b) | Change::Lift(b) => {
                        let target = b.target.to_string();
                        let action = if matches!(change, Change::Ban(_)) {
                            put_ban
                                .execute(params![
                                    target,
                                    sql_secs(b.created),
                                    b.expires.map(sql_secs),
                                    b.class.as_str(),
                                    b.origin.to_string(),
                                    i64::from(b.offence_number),
                                    &*b.reason
                                ])
                                .map_err(e)?;
                            "ban"
                        } else {
                            del_ban.execute([&target]).map_err(e)?;
                            "lift"
                        };
                        if log_them {
                            log.execute(params![
                                at,
                                action,
                                target,
                                b.class.as_str(),
                                b.origin.to_string(),
                                b.expires.map(sql_secs),
                                &*b.reason
                            ])
                            .map_err(e)?;
                        }
                    }
                    Change::History(h) => {
                        put_history
                            .execute(params![
                                h.addr.to_string(),
                                i64::from(h.bans),
                                sql_secs(h.last_offence),
                                h.banned_until.map(sql_secs)
                            ])
                            .map_err(e)?;
                    }
                    Change::ForgetHistory(ip) => {
                        del_history.execute([ip.to_string()]).map_err(e)?;
                    }
                    Change::Allow(entries) => {
                        tx.execute("DELETE FROM allow", []).map_err(e)?;
                        for a in entries {
                            tx.execute(
                                "INSERT OR REPLACE INTO allow (net, note) VALUES (?1, ?2)",
                                params![a.net.to_string(), a.note],
                            )
                            .map_err(e)?;
                        }
                    }
                    Change::Window(w) => {
                        let (addr, class) = (w.addr.to_string(), w.class.as_str());
                        match w.times_ms.last() {
                            None => {
                                tx.execute(
                                    "DELETE FROM windows WHERE addr = ?1 AND class = ?2",
                                    params![addr, class],
                                )
                                .map_err(e)?;
                            }
                            Some(newest) => {
                                let times: Vec<String> =
                                    w.times_ms.iter().map(u64::to_string).collect();
                                tx.prepare_cached(
                                    "INSERT OR REPLACE INTO windows (addr, class, newest_ms, times_ms)
                                     VALUES (?1, ?2, ?3, ?4)",
                                )
                                .map_err(e)?
                                .execute(params![
                                    addr,
                                    class,
                                    i64::try_from(*newest).unwrap_or(i64::MAX),
                                    times.join(" ")
                                ])
                                .map_err(e)?;
                            }
                        }
                    }
                    Change::KnownGood { addr, until } => match until {
                        Some(until) => {
                            tx.prepare_cached(
                                "INSERT OR REPLACE INTO known_good (addr, until) VALUES (?1, ?2)",
                            )
                            .map_err(e)?
                            .execute(params![addr.to_string(), sql_secs(*until)])
                            .map_err(e)?;
                        }
                        None => {
                            tx.execute(
                                "DELETE FROM known_good WHERE addr = ?1",
                                [addr.to_string()],
                            )
                            .map_err(e)?;
                        }
                    },
                    Change::Fleet(d) => {
                        tx.prepare_cached(
                            "INSERT OR REPLACE INTO fleet (source, id, target, until, scenario, origin)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        )
                        .map_err(e)?
                        .execute(params![
                            d.source.name(),
                            d.id,
                            d.target.to_string(),
                            d.until.map(sql_secs),
                            &*d.scenario,
                            &*d.origin
                        ])
                        .map_err(e)?;
                    }
                    Change::AlertQueued {
                        key,
                        created,
                        alert,
                    } => {
                        tx.prepare_cached(
                            "INSERT OR IGNORE INTO alert_queue (key, created, alert) VALUES (?1, ?2, ?3)",
                        )
                        .map_err(e)?
                        .execute(params![key, sql_secs(*created), alert])
                        .map_err(e)?;
                    }
                    Change::AlertSent { key } => {
                        tx.prepare_cached("DELETE FROM alert_queue WHERE key = ?1")
                            .map_err(e)?
                            .execute(params![key])
                            .map_err(e)?;
                    }
                    Change::FleetGone { source, id } => {
                        tx.prepare_cached("DELETE FROM fleet WHERE source = ?1 AND id = ?2")
                            .map_err(e)?
                            .execute(params![source, id])
                            .map_err(e)?;
                    }
                    Change::Meta { key, value } => {
                        tx.execute(
                            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                            params![key, value],
                        )
                        .map_err(e)?;
                    }
                    Change::Ssh(sessions) => {
                        tx.execute("DELETE FROM ssh_sessions", []).map_err(e)?;
                        for s in sessions {
                            tx.execute(
                                "INSERT OR REPLACE INTO ssh_sessions (ip, port, method, accepted, last_open)
                                 VALUES (?1, ?2, ?3, ?4, ?5)",
                                params![
                                    s.ip.to_string(),
                                    i64::from(s.port),
                                    s.method,
                                    sql_secs(s.accepted),
                                    sql_secs(s.last_open)
                                ],
                            )
                            .map_err(e)?;
                        }
                    }
                }
            }
        }
        tx.commit().map_err(e)
    }

    /// Replaces everything with `state` in one transaction (an import, or
    /// a database rebuilt from the kernel after a corrupt one).
    pub fn replace_all(&mut self, state: &State) -> Result<(), DbError> {
        let tx_path = self.path.clone();
        {
            let tx = self.conn.transaction().map_err(|source| DbError::Sqlite {
                path: tx_path.clone(),
                source,
            })?;
            for table in [
                "bans",
                "history",
                "allow",
                "ssh_sessions",
                "windows",
                "known_good",
            ] {
                tx.execute(&format!("DELETE FROM {table}"), [])
                    .map_err(|source| DbError::Sqlite {
                        path: tx_path.clone(),
                        source,
                    })?;
            }
            tx.commit().map_err(|source| DbError::Sqlite {
                path: tx_path.clone(),
                source,
            })?;
        }
        let mut changes: Vec<Change> = state.bans.iter().cloned().map(Change::Ban).collect();
        changes.extend(state.history.iter().cloned().map(Change::History));
        changes.push(Change::Allow(state.allow.clone()));
        changes.push(Change::Ssh(state.ssh_sessions.clone()));
        changes.extend(state.windows.iter().cloned().map(Change::Window));
        changes.extend(state.known_good.iter().map(|k| Change::KnownGood {
            addr: k.addr,
            until: Some(k.until),
        }));
        // An import is not news: its bans were made before.
        self.write(&changes, SystemTime::now(), false)
    }

    /// Drops `ban_log` rows older than `BAN_LOG_KEEP` and history rows
    /// quiet for longer than `forget_after`, windows whose newest offence
    /// is older than `window_keep` (the longest findtime).
    pub fn prune(
        &self,
        now: SystemTime,
        forget_after: Duration,
        window_keep: Duration,
    ) -> Result<(), DbError> {
        let now_ms = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let keep_ms = window_keep.as_millis();
        self.conn
            .execute(
                "DELETE FROM known_good WHERE until < ?1",
                [sql_secs(unix_secs(now))],
            )
            .map_err(|e| self.err(e))?;
        self.conn
            .execute(
                "DELETE FROM fleet WHERE until < ?1",
                [sql_secs(unix_secs(now))],
            )
            .map_err(|e| self.err(e))?;
        self.conn
            .execute(
                "DELETE FROM windows WHERE newest_ms < ?1",
                [i64::try_from(now_ms.saturating_sub(keep_ms)).unwrap_or(0)],
            )
            .map_err(|e| self.err(e))?;
        let now = unix_secs(now);
        self.conn
            .execute(
                "DELETE FROM ban_log WHERE at < ?1",
                [sql_secs(now.saturating_sub(BAN_LOG_KEEP.as_secs()))],
            )
            .map_err(|e| self.err(e))?;
        self.conn
            .execute(
                "DELETE FROM history WHERE max(last_offence, coalesce(banned_until, 0)) < ?1",
                [sql_secs(now.saturating_sub(forget_after.as_secs()))],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

/// SQLite integers are signed: times past i64 (only a corrupt input has
/// them) are stored as the latest time `state` accepts.
fn sql_secs(secs: u64) -> i64 {
    i64::try_from(secs.min(super::LATEST_UNIX_SECS)).unwrap_or(i64::MAX)
}

/// Column `i` as text, borrowed from the row; `None` for any other type.
fn text<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Option<&'r str> {
    row.get_ref(i).ok()?.as_str().ok()
}

fn int(row: &rusqlite::Row<'_>, i: usize) -> Option<i64> {
    row.get::<_, i64>(i).ok()
}

fn unsigned(row: &rusqlite::Row<'_>, i: usize) -> Option<u64> {
    u64::try_from(int(row, i)?).ok()
}

/// `Some(None)` for NULL; `None` for a value that is no integer.
fn row_optional_int(row: &rusqlite::Row<'_>, i: usize) -> Option<Option<i64>> {
    row.get::<_, Option<i64>>(i).ok()
}

/// `Some(None)` for NULL; `None` for a value that is no unsigned integer.
fn optional_unsigned(row: &rusqlite::Row<'_>, i: usize) -> Option<Option<u64>> {
    match row_optional_int(row, i)? {
        None => Some(None),
        Some(x) => Some(Some(u64::try_from(x).ok()?)),
    }
}

/// `text` as the one shared copy kept in `set` (one copy of each reason
/// text while loading a million bans).
fn shared_str(
    set: &mut std::collections::HashSet<std::sync::Arc<str>>,
    text: &str,
) -> std::sync::Arc<str> {
    if let Some(r) = set.get(text) {
        return r.clone();
    }
    let r: std::sync::Arc<str> = text.into();
    set.insert(r.clone());
    r
}

/// Names already read as values: a million rows name a handful of
/// classes and origins, each read once.
struct Names<T>(Vec<(Box<str>, T)>);

impl<T> Default for Names<T> {
    fn default() -> Self {
        Names(Vec::new())
    }
}

impl<T: serde::de::DeserializeOwned + Copy> Names<T> {
    fn get(&mut self, name: &str) -> Option<T> {
        if let Some((_, v)) = self.0.iter().find(|(n, _)| &**n == name) {
            return Some(*v);
        }
        let v = from_name::<T>(name)?;
        self.0.push((name.into(), v));
        Some(v)
    }
}

/// An enum from its kebab-case serde name.
fn from_name<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

fn aside_path(path: &Path) -> PathBuf {
    let stamp = unix_secs(SystemTime::now());
    let mut n = 0;
    loop {
        let candidate = if n == 0 {
            PathBuf::from(format!("{}.corrupt-{stamp}", path.display()))
        } else {
            PathBuf::from(format!("{}.corrupt-{stamp}-{n}", path.display()))
        };
        if !candidate.exists() {
            return candidate;
        }
        n += 1;
    }
}
