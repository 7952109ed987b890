//! Ban events for other tools: every ban, lift and would-ban as one
//! structured line (journald fields under systemd, a logfmt line on stderr
//! otherwise), to `sipshield events` subscribers, and to the operator's
//! hooks.
//!
//! Hooks run one at a time from a bounded queue, without a shell, with a
//! time limit: a forged flood that makes thousands of kernel bans costs at
//! most the queue, never a fork storm, and never blocks the event loop;
//! what did not fit is counted as dropped.

use std::{
    collections::VecDeque,
    io::Write,
    os::unix::net::UnixDatagram,
    path::PathBuf,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc, Arc,
    },
    time::{Duration, Instant, SystemTime},
};

use serde::Serialize;
use tokio::sync::broadcast;

/// Events kept for `sipshield events` without `--follow`.
const RECENT: usize = 200;

/// Hook runs waiting at most; beyond it events are dropped (counted).
pub const HOOK_QUEUE: usize = 256;

/// Subscribers further behind than this lose events (told how many).
const SUBSCRIBER_BACKLOG: usize = 1024;

const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventAction {
    Ban,
    Unban,
    WouldBan,
}

impl EventAction {
    pub fn as_str(self) -> &'static str {
        match self {
            EventAction::Ban => "ban",
            EventAction::Unban => "unban",
            EventAction::WouldBan => "would-ban",
        }
    }
}

/// One ban event, as tools see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BanEvent {
    /// Unix seconds.
    pub at: u64,
    pub action: EventAction,
    /// Address or CIDR.
    pub target: String,
    pub class: String,
    pub origin: String,
    /// Seconds; `None`: permanent (or, for an unban, unknown).
    pub duration_s: Option<u64>,
    pub reason: String,
}

impl BanEvent {
    /// `sipshield-event action=ban target=... class=... ...` (logfmt).
    pub fn logfmt(&self) -> String {
        let duration = self
            .duration_s
            .map_or("permanent".to_string(), |d| d.to_string());
        format!(
            "sipshield-event action={} target={} class={} origin={} duration={} reason={}",
            self.action.as_str(),
            self.target,
            self.class,
            self.origin,
            duration,
            quoted(&self.reason)
        )
    }
}

fn quoted(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("\"{}\"", clean.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The operator's hook programs (`[hooks]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookConfig {
    pub on_ban: Option<PathBuf>,
    pub on_unban: Option<PathBuf>,
    pub timeout: Duration,
}

/// What the hooks did, for `status` and the metrics.
#[derive(Debug, Default)]
pub struct HookStats {
    pub ran: AtomicU64,
    pub failed: AtomicU64,
    pub timed_out: AtomicU64,
    pub dropped: AtomicU64,
}

pub struct EventBus {
    tx: broadcast::Sender<BanEvent>,
    recent: VecDeque<BanEvent>,
    hooks: HookConfig,
    queue: Option<mpsc::SyncSender<(PathBuf, BanEvent)>>,
    pub hook_stats: Arc<HookStats>,
    journal: Option<UnixDatagram>,
}

impl EventBus {
    pub fn new(hooks: HookConfig) -> EventBus {
        let (tx, _) = broadcast::channel(SUBSCRIBER_BACKLOG);
        let hook_stats = Arc::new(HookStats::default());
        let queue = (hooks.on_ban.is_some() || hooks.on_unban.is_some())
            .then(|| start_hook_runner(hooks.timeout, hook_stats.clone()))
            .flatten();
        // Under systemd (JOURNAL_STREAM set for the unit's stderr) the
        // event goes to the journal with its fields; else a stderr line.
        let journal = std::env::var_os("JOURNAL_STREAM")
            .and_then(|_| UnixDatagram::unbound().ok())
            .filter(|s| s.connect(JOURNAL_SOCKET).is_ok());
        EventBus {
            tx,
            recent: VecDeque::new(),
            hooks,
            queue,
            hook_stats,
            journal,
        }
    }

    /// A subscription to events from now on (`sipshield events --follow`).
    pub fn subscribe(&self) -> broadcast::Receiver<BanEvent> {
        self.tx.subscribe()
    }

    /// A handle that can subscribe from another task.
    pub fn sender(&self) -> broadcast::Sender<BanEvent> {
        self.tx.clone()
    }

    pub fn recent(&self) -> Vec<BanEvent> {
        self.recent.iter().cloned().collect()
    }

    pub fn emit(&mut self, event: BanEvent) {
        self.emit_with(event, true);
    }

    /// Logged and streamed always; the hook runs only with `run_hooks`.
    pub fn emit_with(&mut self, event: BanEvent, run_hooks: bool) {
        self.log(&event);
        let _ = self.tx.send(event.clone());
        let hook = match event.action {
            _ if !run_hooks => None,
            EventAction::Ban => self.hooks.on_ban.clone(),
            EventAction::Unban => self.hooks.on_unban.clone(),
            EventAction::WouldBan => None,
        };
        if let (Some(hook), Some(queue)) = (hook, &self.queue) {
            if queue.try_send((hook, event.clone())).is_err() {
                self.hook_stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(event);
    }

    fn log(&self, e: &BanEvent) {
        let line = e.logfmt();
        if let Some(j) = &self.journal {
            let field = |k: &str, v: &str| format!("{k}={}\n", v.replace('\n', " "));
            let mut msg = String::new();
            msg += &field("MESSAGE", &line);
            msg += &field("PRIORITY", "5");
            msg += &field("SYSLOG_IDENTIFIER", "sipshield");
            msg += &field("SIPSHIELD_ACTION", e.action.as_str());
            msg += &field("SIPSHIELD_TARGET", &e.target);
            msg += &field("SIPSHIELD_CLASS", &e.class);
            msg += &field("SIPSHIELD_ORIGIN", &e.origin);
            msg += &field(
                "SIPSHIELD_DURATION",
                &e.duration_s.map_or("permanent".into(), |d| d.to_string()),
            );
            msg += &field("SIPSHIELD_REASON", &e.reason);
            if j.send(msg.as_bytes()).is_ok() {
                return;
            }
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }
}

/// The worker that runs hooks, one at a time.
fn start_hook_runner(
    timeout: Duration,
    stats: Arc<HookStats>,
) -> Option<mpsc::SyncSender<(PathBuf, BanEvent)>> {
    let (tx, rx) = mpsc::sync_channel::<(PathBuf, BanEvent)>(HOOK_QUEUE);
    std::thread::Builder::new()
        .name("sipshield-hooks".into())
        .spawn(move || {
            for (program, event) in rx {
                run_hook(&program, &event, timeout, &stats);
            }
        })
        .ok()?;
    Some(tx)
}

/// `program ADDRESS CLASS DURATION REASON`, no shell; killed at `timeout`.
fn run_hook(program: &PathBuf, e: &BanEvent, timeout: Duration, stats: &HookStats) {
    let duration = e
        .duration_s
        .map_or("permanent".to_string(), |d| d.to_string());
    let child = Command::new(program)
        .args([&e.target, &e.class, &duration, &e.reason])
        .env("SIPSHIELD_ACTION", e.action.as_str())
        .env("SIPSHIELD_ORIGIN", &e.origin)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(err) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            log::warn!("hook {}: {err}", program.display());
            return;
        }
    };
    stats.ran.fetch_add(1, Ordering::Relaxed);
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    log::warn!("hook {} for {}: {status}", program.display(), e.target);
                }
                return;
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                stats.timed_out.fetch_add(1, Ordering::Relaxed);
                log::warn!(
                    "hook {} for {}: killed after {} s",
                    program.display(),
                    e.target,
                    timeout.as_secs()
                );
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(err) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                log::warn!("hook {}: {err}", program.display());
                return;
            }
        }
    }
}

pub fn unix_now() -> u64 {
    crate::state::unix_secs(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: EventAction) -> BanEvent {
        BanEvent {
            at: 1,
            action,
            target: "203.0.113.5".into(),
            class: "sip-auth".into(),
            origin: "log".into(),
            duration_s: Some(600),
            reason: "5 \"sip-auth\" offences\nwithin 10m".into(),
        }
    }

    #[test]
    fn the_line_is_logfmt_with_the_reason_quoted() {
        assert_eq!(
            event(EventAction::Ban).logfmt(),
            "sipshield-event action=ban target=203.0.113.5 class=sip-auth origin=log duration=600 reason=\"5 \\\"sip-auth\\\" offences within 10m\""
        );
    }

    #[test]
    fn a_hook_runs_with_its_arguments_and_a_full_queue_drops() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let hook = dir.path().join("hook.sh");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\necho \"$SIPSHIELD_ACTION $1 $2 $3 $4\" >> {}\n",
                out.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut bus = EventBus::new(HookConfig {
            on_ban: Some(hook.clone()),
            on_unban: None,
            timeout: Duration::from_secs(5),
        });
        bus.emit(event(EventAction::Ban));
        bus.emit(event(EventAction::Unban));
        let deadline = Instant::now() + Duration::from_secs(5);
        while bus.hook_stats.ran.load(Ordering::Relaxed) < 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            got, "ban 203.0.113.5 sip-auth 600 5 \"sip-auth\" offences\nwithin 10m\n",
            "one run, for the ban only, arguments as given (no shell)"
        );
        assert_eq!(bus.recent().len(), 2);
    }

    fn slow_hook(dir: &std::path::Path) -> PathBuf {
        let hook = dir.join("slow.sh");
        std::fs::write(&hook, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        hook
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut bus = EventBus::new(HookConfig {
            on_ban: Some(slow_hook(dir.path())),
            on_unban: None,
            timeout: Duration::from_millis(300),
        });
        let start = Instant::now();
        bus.emit(event(EventAction::Ban));
        while bus.hook_stats.timed_out.load(Ordering::Relaxed) < 1
            && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(bus.hook_stats.timed_out.load(Ordering::Relaxed), 1);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "killed, not waited for"
        );
    }

    #[test]
    fn a_ban_flood_never_blocks_and_becomes_no_fork_storm() {
        let dir = tempfile::tempdir().unwrap();
        let mut bus = EventBus::new(HookConfig {
            on_ban: Some(slow_hook(dir.path())),
            on_unban: None,
            timeout: Duration::from_secs(30),
        });
        // A forged flood's worth of bans against a hook that never ends:
        // the queue fills, the rest are dropped and counted, emit returns
        // at once, and one hook runs at a time.
        let n = 10 * HOOK_QUEUE as u64;
        let start = Instant::now();
        for _ in 0..n {
            bus.emit(event(EventAction::Ban));
        }
        assert!(start.elapsed() < Duration::from_secs(2), "emit blocked");
        std::thread::sleep(Duration::from_millis(200));
        let ran = bus.hook_stats.ran.load(Ordering::Relaxed);
        let dropped = bus.hook_stats.dropped.load(Ordering::Relaxed);
        assert_eq!(ran, 1, "one run at a time");
        assert!(
            dropped >= n - HOOK_QUEUE as u64 - 1,
            "dropped {dropped} of {n}"
        );
        // Events without hooks (the fleet's, unless asked) queue nothing.
        let before = dropped;
        bus.emit_with(event(EventAction::Ban), false);
        assert_eq!(bus.hook_stats.dropped.load(Ordering::Relaxed), before);
        assert_eq!(bus.recent().len(), RECENT);
    }
}
