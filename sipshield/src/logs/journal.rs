//! Follows the systemd journal through `journalctl --follow --output=json`.
//!
//! - Why journalctl and not libsystemd: nothing to link, the journal file
//!   format stays journald's business, and it is the tool the operator
//!   already uses to look at the same entries.
//! - Who wrote an entry is read from the fields journald adds itself from
//!   the sender's credentials (`_UID`, `_COMM`, `_SYSTEMD_UNIT`), which a
//!   program cannot set. `SYSLOG_IDENTIFIER` is the writer's own claim
//!   (`logger -t sshd ...` by any local user) and is not used: sshd entries
//!   count only from root, Asterisk entries from root or the `asterisk`
//!   user.
//! - `--merge` because `--follow` alone keeps to the current boot, and a
//!   cursor from before a reboot would then skip what came after it; on the
//!   system journal the host's own machine ID is added to every match so
//!   journals received from other hosts stay theirs.
//! - Resuming: every entry carries its cursor; the daemon stores the last one
//!   it handled with the offences it counted (one database transaction), and
//!   starts the next `journalctl` after it: a restart loses no entry and
//!   counts none twice.
//! - journalctl runs in a thread of its own (spawn, read, restart with
//!   backoff, from the last cursor seen); entries reach the daemon through a
//!   bounded queue, so a burst waits in the pipe instead of being dropped.

use std::{
    io::{self, BufRead, BufReader, Read},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc, Mutex,
    },
    thread,
    time::Duration,
};

use serde_json::Value;

use super::prefix::Origin;

/// Followed when no auth log exists (Debian 12 without rsyslog): sshd's
/// unit on Debian (`ssh.service`) and elsewhere (`sshd.service`).
pub const DEFAULT_SSHD_MATCHES: &[&str] =
    &["_SYSTEMD_UNIT=ssh.service", "_SYSTEMD_UNIT=sshd.service"];

/// journald's default `LineMax` for stdout streams: a longer line is split
/// there, so an entry this long may have been cut.
const STDOUT_LINE_MAX: usize = 48 * 1024;

/// A JSON line longer than this is skipped (an entry of several MiB is no
/// log line of ours; its cursor comes again with the next entry).
const MAX_JSON_LINE: usize = 1024 * 1024;

/// Entries waiting for the daemon; beyond it journalctl waits on its pipe.
const QUEUE: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal match {0:?}: expected FIELD=value words (FIELD of capitals, digits and _)")]
    BadMatch(String),
}

/// Checks one match group: `FIELD=value` words, all of which an entry
/// must have (groups are alternatives).
pub fn validate_match(group: &str) -> Result<(), JournalError> {
    let bad = || JournalError::BadMatch(group.to_string());
    let mut words = group.split_whitespace().peekable();
    words.peek().ok_or_else(bad)?;
    for word in words {
        let (field, value) = word.split_once('=').ok_or_else(bad)?;
        let field_ok = !field.is_empty()
            && !field.starts_with(|c: char| c.is_ascii_digit())
            && field
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !field_ok || value.is_empty() {
            return Err(bad());
        }
    }
    Ok(())
}

/// What to follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalSpec {
    /// Match groups; an entry matching any one is read.
    pub matches: Vec<String>,
    /// A journal directory instead of the system journal
    /// (`journalctl --directory`).
    pub directory: Option<PathBuf>,
    /// Without a stored cursor: every entry, not only new ones.
    pub from_start: bool,
}

impl JournalSpec {
    /// The key the cursor is stored under: one per journal.
    pub fn cursor_key(&self) -> String {
        match &self.directory {
            None => "log_cursor journal".to_string(),
            Some(d) => format!("log_cursor journal:{}", d.display()),
        }
    }

    /// As shown in `status`.
    pub fn describe(&self) -> String {
        let place = match &self.directory {
            None => "journal".to_string(),
            Some(d) => format!("journal:{}", d.display()),
        };
        format!("{place} ({})", self.matches.join(" + "))
    }

    /// journalctl's arguments, resuming after `cursor` when there is one.
    pub fn args(&self, cursor: Option<&str>, machine_id: Option<&str>) -> Vec<String> {
        let mut args: Vec<String> = [
            "--follow",
            "--output=json",
            "--merge",
            "--no-pager",
            "--quiet",
        ]
        .map(String::from)
        .to_vec();
        if let Some(d) = &self.directory {
            args.push(format!("--directory={}", d.display()));
        }
        match cursor {
            Some(c) => args.push(format!("--after-cursor={c}")),
            None if self.from_start => args.push("--lines=all".into()),
            None => args.push("--lines=0".into()),
        }
        for (i, group) in self.matches.iter().enumerate() {
            if i > 0 {
                args.push("+".into());
            }
            args.extend(group.split_whitespace().map(String::from));
            if let Some(id) = machine_id {
                args.push(format!("_MACHINE_ID={id}"));
            }
        }
        args
    }
}

/// One journal entry, as far as the parsers need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Which parser reads it, from journald's own fields.
    pub program: Origin,
    pub message: String,
    pub cursor: String,
    /// Came through a transport that cuts long lines (syslog, stdout).
    pub via_syslog: bool,
    /// Long enough that the stdout stream may have cut it.
    pub maybe_cut: bool,
}

/// Reads one line of `journalctl --output=json`. `None` for what is no
/// entry. `asterisk_uid`: the uid of the `asterisk` user, when there is one.
pub fn parse_entry(line: &str, asterisk_uid: Option<u32>) -> Option<Entry> {
    let v: Value = serde_json::from_str(line).ok()?;
    let obj = v.as_object()?;
    let cursor = obj.get("__CURSOR")?.as_str()?.to_string();
    let text = |name: &str| obj.get(name).and_then(Value::as_str);
    let message = match obj.get("MESSAGE") {
        Some(Value::String(s)) => s.clone(),
        // Bytes that are not printable UTF-8 (colour escapes, say).
        Some(Value::Array(bytes)) if bytes.iter().all(Value::is_u64) => {
            let raw: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            String::from_utf8_lossy(&raw).into_owned()
        }
        // Several MESSAGE fields (the native protocol allows it) or none:
        // no single line to read; the cursor still moves on.
        _ => String::new(),
    };
    let uid = text("_UID").and_then(|u| u.parse::<u32>().ok());
    let program = program_of(text("_COMM"), text("_SYSTEMD_UNIT"), uid, asterisk_uid);
    let transport = text("_TRANSPORT").unwrap_or("");
    let via_syslog = matches!(transport, "syslog" | "stdout");
    let maybe_cut = transport == "stdout" && message.len() >= STDOUT_LINE_MAX;
    Some(Entry {
        program,
        message,
        cursor,
        via_syslog,
        maybe_cut,
    })
}

/// Who wrote an entry: the process name journald read (`_COMM`), else its
/// unit; and only from a user that program runs as.
fn program_of(
    comm: Option<&str>,
    unit: Option<&str>,
    uid: Option<u32>,
    asterisk_uid: Option<u32>,
) -> Origin {
    let program = match (comm, unit) {
        (Some(c), _) if c.starts_with("sshd") => Origin::Sshd,
        (Some("asterisk"), _) => Origin::Asterisk,
        (Some(_), _) => Origin::OtherProgram,
        (None, Some("ssh.service" | "sshd.service")) => Origin::Sshd,
        (None, Some("asterisk.service")) => Origin::Asterisk,
        _ => Origin::OtherProgram,
    };
    let trusted = match program {
        Origin::Sshd => uid == Some(0),
        Origin::Asterisk => uid.is_some() && (uid == Some(0) || uid == asterisk_uid),
        _ => false,
    };
    if trusted {
        program
    } else {
        Origin::OtherProgram
    }
}

/// What the reader thread hands over.
#[derive(Debug)]
pub enum JournalEvent {
    Entry(Entry),
    /// journalctl ended (it is restarted): why, as far as known.
    Ended(String),
}

/// A running `journalctl`, restarted when it ends; stopped on drop.
pub struct JournalFollower {
    rx: mpsc::Receiver<JournalEvent>,
    stop: Arc<AtomicBool>,
    child: Arc<Mutex<Option<Child>>>,
    running: Arc<AtomicBool>,
}

impl JournalFollower {
    /// Starts following after `cursor` (or per `spec.from_start`).
    pub fn start(spec: JournalSpec, cursor: Option<String>) -> io::Result<JournalFollower> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let child = Arc::new(Mutex::new(None));
        let running = Arc::new(AtomicBool::new(false));
        let reader = Reader {
            spec,
            cursor,
            machine_id: None,
            asterisk_uid: user_id("asterisk"),
            tx,
            stop: stop.clone(),
            child: child.clone(),
            running: running.clone(),
        };
        thread::Builder::new()
            .name("sipshield-journal".into())
            .spawn(move || reader.run())?;
        Ok(JournalFollower {
            rx,
            stop,
            child,
            running,
        })
    }

    /// What arrived since the last call, at most `max` events.
    pub fn drain(&self, max: usize) -> Vec<JournalEvent> {
        self.rx.try_iter().take(max).collect()
    }

    /// journalctl is running now.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }
}

impl Drop for JournalFollower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(mut c) = self.child.lock() {
            if let Some(child) = c.as_mut() {
                // Child::kill does nothing to a child already reaped.
                let _ = child.kill();
            }
        }
    }
}

struct Reader {
    spec: JournalSpec,
    cursor: Option<String>,
    machine_id: Option<String>,
    asterisk_uid: Option<u32>,
    tx: mpsc::SyncSender<JournalEvent>,
    stop: Arc<AtomicBool>,
    child: Arc<Mutex<Option<Child>>>,
    running: Arc<AtomicBool>,
}

impl Reader {
    fn run(mut self) {
        if self.spec.directory.is_none() {
            self.machine_id = std::fs::read_to_string("/etc/machine-id")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty());
        }
        let mut backoff = Duration::from_millis(500);
        while !self.stop.load(Ordering::Relaxed) {
            let why = match self.follow_once() {
                Ok(why) => why,
                Err(e) => format!("cannot run journalctl: {e}"),
            };
            self.running.store(false, Ordering::Relaxed);
            if self.stop.load(Ordering::Relaxed) || self.tx.send(JournalEvent::Ended(why)).is_err()
            {
                return;
            }
            // Sleep in slices so a stop is noticed.
            let until = std::time::Instant::now() + backoff;
            while std::time::Instant::now() < until && !self.stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(50));
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    /// One journalctl, read to its end. Returns why it ended.
    fn follow_once(&mut self) -> io::Result<String> {
        let args = self
            .spec
            .args(self.cursor.as_deref(), self.machine_id.as_deref());
        let mut cmd = Command::new("journalctl");
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl in the child before exec; async-signal-safe.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                // Dies with this thread (the daemon killed, say).
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        match self.child.lock() {
            Ok(mut slot) => *slot = Some(child),
            Err(_) => return Ok("lock poisoned".into()),
        }
        self.running.store(true, Ordering::Relaxed);
        let last_error = Arc::new(Mutex::new(String::new()));
        if let Some(mut err) = stderr {
            let last_error = last_error.clone();
            thread::spawn(move || {
                let mut text = String::new();
                let _ = (&mut err).take(64 * 1024).read_to_string(&mut text);
                if let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) {
                    if let Ok(mut e) = last_error.lock() {
                        *e = line.trim().to_string();
                    }
                }
            });
        }
        let mut delivered = 0u64;
        if let Some(out) = stdout {
            let mut out = BufReader::with_capacity(256 * 1024, out);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let n = (&mut out)
                    .take(MAX_JSON_LINE as u64 + 1)
                    .read_until(b'\n', &mut buf)?;
                if n == 0 {
                    break;
                }
                if buf.last() != Some(&b'\n') {
                    // Longer than the limit: skip to the end of the line.
                    let mut rest = Vec::new();
                    out.read_until(b'\n', &mut rest)?;
                    continue;
                }
                let Ok(line) = std::str::from_utf8(&buf) else {
                    continue;
                };
                if let Some(entry) = parse_entry(line, self.asterisk_uid) {
                    self.cursor = Some(entry.cursor.clone());
                    delivered += 1;
                    if self.tx.send(JournalEvent::Entry(entry)).is_err() {
                        break;
                    }
                }
            }
        }
        // Out of the slot before waiting: a stop must never wait on a lock.
        let child = self.child.lock().ok().and_then(|mut slot| slot.take());
        let status = child.map(|mut c| c.wait());
        // The stderr reader ends with the process.
        thread::sleep(Duration::from_millis(20));
        let detail = last_error.lock().map(|e| e.clone()).unwrap_or_default();
        let status = match status {
            Some(Ok(s)) => s.to_string(),
            Some(Err(e)) => e.to_string(),
            None => "unknown status".into(),
        };
        Ok(if detail.is_empty() {
            format!("journalctl ended ({status}) after {delivered} entries")
        } else {
            format!("journalctl ended ({status}) after {delivered} entries: {detail}")
        })
    }
}

/// The uid of a user by name.
fn user_id(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: valid C string; getpwnam returns null or static data.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    if pw.is_null() {
        None
    } else {
        // SAFETY: non-null result of getpwnam.
        Some(unsafe { (*pw).pw_uid })
    }
}

/// journalctl is installed.
pub fn available() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("journalctl").is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_must_be_field_value_words() {
        assert!(validate_match("_SYSTEMD_UNIT=ssh.service").is_ok());
        assert!(validate_match("_SYSTEMD_UNIT=asterisk.service _UID=0").is_ok());
        for bad in [
            "",
            "  ",
            "ssh.service",
            "_systemd_unit=x",
            "FIELD=",
            "=x",
            "1X=y",
            "A=b c",
        ] {
            assert!(validate_match(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn arguments_resume_after_the_cursor_and_keep_to_this_host() {
        let spec = JournalSpec {
            matches: vec![
                "_SYSTEMD_UNIT=ssh.service".into(),
                "_COMM=asterisk _UID=0".into(),
            ],
            directory: None,
            from_start: false,
        };
        let args = spec.args(Some("s=1;i=2"), Some("abc"));
        assert!(args.contains(&"--after-cursor=s=1;i=2".to_string()));
        assert!(args.contains(&"--merge".to_string()));
        let tail: Vec<&str> = args
            .iter()
            .map(String::as_str)
            .skip_while(|a| a.starts_with("--"))
            .collect();
        assert_eq!(
            tail,
            [
                "_SYSTEMD_UNIT=ssh.service",
                "_MACHINE_ID=abc",
                "+",
                "_COMM=asterisk",
                "_UID=0",
                "_MACHINE_ID=abc"
            ]
        );
        let fresh = spec.args(None, None);
        assert!(fresh.contains(&"--lines=0".to_string()));
        assert!(!fresh.iter().any(|a| a.starts_with("_MACHINE_ID")));
    }

    fn entry(fields: &str) -> Option<Entry> {
        parse_entry(&format!("{{\"__CURSOR\":\"c1\",{fields}}}"), Some(105))
    }

    #[test]
    fn the_writer_is_read_from_journald_fields_never_from_the_identifier() {
        // Debian 12 sshd, as `journalctl -o json` prints it.
        let e = entry(r#""_COMM":"sshd","_UID":"0","_SYSTEMD_UNIT":"ssh.service","SYSLOG_IDENTIFIER":"sshd","_TRANSPORT":"syslog","MESSAGE":"Failed password for root from 203.0.113.7 port 4000 ssh2""#).unwrap();
        assert_eq!(e.program, Origin::Sshd);
        assert!(e.via_syslog);
        assert_eq!(e.cursor, "c1");
        // `logger -t sshd` by a local user: journald records the user's uid and comm.
        let forged = entry(r#""_COMM":"logger","_UID":"1000","SYSLOG_IDENTIFIER":"sshd","MESSAGE":"Failed password for root from 192.0.2.1 port 1 ssh2""#).unwrap();
        assert_eq!(forged.program, Origin::OtherProgram);
        // A process renamed sshd, run by a user.
        let renamed = entry(r#""_COMM":"sshd","_UID":"1000","MESSAGE":"x""#).unwrap();
        assert_eq!(renamed.program, Origin::OtherProgram);
        // Asterisk as its own user, and as root; not as anyone else.
        assert_eq!(
            entry(r#""_COMM":"asterisk","_UID":"105","MESSAGE":"x""#)
                .unwrap()
                .program,
            Origin::Asterisk
        );
        assert_eq!(
            entry(r#""_COMM":"asterisk","_UID":"0","MESSAGE":"x""#)
                .unwrap()
                .program,
            Origin::Asterisk
        );
        assert_eq!(
            entry(r#""_COMM":"asterisk","_UID":"1000","MESSAGE":"x""#)
                .unwrap()
                .program,
            Origin::OtherProgram
        );
        // No uid at all: not trusted.
        assert_eq!(
            entry(r#""_COMM":"sshd","MESSAGE":"x""#).unwrap().program,
            Origin::OtherProgram
        );
        // The unit decides only without a process name.
        assert_eq!(
            entry(r#""_SYSTEMD_UNIT":"ssh.service","_UID":"0","MESSAGE":"x""#)
                .unwrap()
                .program,
            Origin::Sshd
        );
        assert_eq!(entry(r#""_COMM":"safe_asterisk","_SYSTEMD_UNIT":"asterisk.service","_UID":"0","MESSAGE":"x""#).unwrap().program, Origin::OtherProgram);
    }

    #[test]
    fn byte_array_messages_are_read_and_double_messages_are_not() {
        // journalctl prints a MESSAGE with an escape byte as numbers.
        let e = entry(r#""_COMM":"asterisk","_UID":"0","MESSAGE":[27,91,49,109,104,105]"#).unwrap();
        assert_eq!(e.message, "\u{1b}[1mhi");
        let two = entry(r#""_COMM":"sshd","_UID":"0","MESSAGE":["a","b"]"#).unwrap();
        assert_eq!(two.message, "");
        assert!(parse_entry("not json", None).is_none());
        assert!(parse_entry(r#"{"MESSAGE":"no cursor"}"#, None).is_none());
    }

    #[test]
    fn a_stdout_line_at_journalds_line_limit_may_be_cut() {
        let long = "a".repeat(STDOUT_LINE_MAX);
        let e = entry(&format!(
            r#""_COMM":"asterisk","_UID":"0","_TRANSPORT":"stdout","MESSAGE":"{long}""#
        ))
        .unwrap();
        assert!(e.maybe_cut);
        let native = entry(&format!(
            r#""_COMM":"asterisk","_UID":"0","_TRANSPORT":"journal","MESSAGE":"{long}""#
        ))
        .unwrap();
        assert!(!native.maybe_cut && !native.via_syslog);
    }
}
