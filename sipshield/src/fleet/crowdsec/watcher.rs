//! sipshield as a CrowdSec alert source (a "watcher"): bans backed by
//! proof go to LAPI as alerts with their decision, for every bouncer of the
//! fleet.
//!
//! A thread of its own logs in (`POST /v1/watchers/login`), renews the
//! token before it ends and logs in again on a 401, and sends what is
//! queued in batches (`POST /v1/alerts`), at most one batch per interval.
//! Delivery is at least once: the engine keeps each alert in the state
//! database until LAPI acknowledged it (this thread reports the keys), so
//! an outage or a restart loses none.

use std::{
    collections::VecDeque,
    io::Read,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime},
};

use serde_json::{json, Value};

/// One alert waiting for LAPI, under the key the database keeps it by.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedAlert {
    pub key: String,
    pub alert: Value,
}

/// What the pusher tells the engine.
#[derive(Debug)]
pub enum Pushed {
    /// LAPI took these (their rows can go).
    Acked { keys: Vec<String> },
    /// A login or a push failed; the alerts stay queued.
    Failed { error: String, at: SystemTime },
}

/// The watcher's login.
#[derive(Debug, Clone)]
pub struct WatcherLogin {
    pub api_url: String,
    pub machine_id: String,
    pub password: String,
}

/// Alerts in one `POST /v1/alerts`.
pub const BATCH: usize = 100;
/// Alerts held in memory; past this the oldest wait in the database for
/// the next start (a fleet outage during a flood must not eat the memory).
const HELD: usize = 20_000;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub struct Pusher {
    tx: mpsc::Sender<QueuedAlert>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Pusher {
    /// Starts the pusher; `every` is the shortest time between batches.
    pub fn start(
        login: WatcherLogin,
        every: Duration,
        reports: tokio::sync::mpsc::Sender<Pushed>,
    ) -> std::io::Result<Pusher> {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sipshield-alerts".into())
            .spawn(move || push_loop(&login, every, &rx, &reports, &flag))?;
        Ok(Pusher {
            tx,
            stop,
            thread: Some(thread),
        })
    }

    pub fn send(&self, alert: QueuedAlert) {
        let _ = self.tx.send(alert);
    }
}

impl Drop for Pusher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.thread.take());
    }
}

fn agent() -> ureq::Agent {
    crate::fleet::http_agent(Duration::from_secs(5), Duration::from_secs(30))
}

/// A token and until when it is good (renewed 5 minutes before).
struct Token {
    jwt: String,
    renew_at: Instant,
}

fn login(agent: &ureq::Agent, l: &WatcherLogin) -> Result<Token, String> {
    let url = format!("{}/v1/watchers/login", l.api_url.trim_end_matches('/'));
    let body = json!({
        "machine_id": l.machine_id,
        "password": l.password,
        "scenarios": super::SCENARIOS,
    });
    let r = agent.post(&url).send_json(body).map_err(|e| match e {
        ureq::Error::Status(code, r) => {
            format!("LAPI refused the watcher login ({code}): {}", text(r))
        }
        e => format!("LAPI unreachable: {e}"),
    })?;
    let v: Value = serde_json::from_str(&text(r)).map_err(|e| format!("login answer: {e}"))?;
    let jwt = v["token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or("the login answer holds no token")?
        .to_string();
    // LAPI's tokens last an hour; `expire` is in its local time zone, so
    // the lifetime is taken as it says and renewed well before.
    let lifetime = v["expire"]
        .as_str()
        .and_then(seconds_until)
        .unwrap_or(3600)
        .clamp(60, 3600);
    Ok(Token {
        jwt,
        renew_at: Instant::now() + Duration::from_secs(lifetime.saturating_sub(300).max(30)),
    })
}

fn text(r: ureq::Response) -> String {
    let mut s = String::new();
    let _ = r.into_reader().take(64 << 10).read_to_string(&mut s);
    s.trim().chars().take(512).collect()
}

/// Seconds from now to an RFC 3339 time (`2024-05-01T13:00:00+02:00`).
fn seconds_until(t: &str) -> Option<u64> {
    let unix = rfc3339_to_unix(t)?;
    let now = crate::state::unix_secs(SystemTime::now());
    unix.checked_sub(now)
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to unix seconds.
pub fn rfc3339_to_unix(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { t.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &t[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let end = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        rest = &frac[end..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset;
    u64::try_from(secs).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds as RFC 3339 UTC (`2026-12-02T03:04:05Z`).
pub fn unix_to_rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Inverse of `days_from_civil`.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

enum Sent {
    Ok(Vec<String>),
    Unauthorized,
    Failed(String),
}

fn post(agent: &ureq::Agent, api_url: &str, token: &Token, batch: &[QueuedAlert]) -> Sent {
    let url = format!("{}/v1/alerts", api_url.trim_end_matches('/'));
    let body = Value::Array(batch.iter().map(|a| a.alert.clone()).collect());
    match agent
        .post(&url)
        .set("Authorization", &format!("Bearer {}", token.jwt))
        .send_json(body)
    {
        Ok(r) if r.status() == 200 || r.status() == 201 => {
            Sent::Ok(batch.iter().map(|a| a.key.clone()).collect())
        }
        Ok(r) => Sent::Failed(format!("LAPI answered {}: {}", r.status(), text(r))),
        Err(ureq::Error::Status(401, _)) => Sent::Unauthorized,
        Err(ureq::Error::Status(code, r)) => {
            Sent::Failed(format!("LAPI refused the alerts ({code}): {}", text(r)))
        }
        Err(e) => Sent::Failed(format!("LAPI unreachable: {e}")),
    }
}

fn push_loop(
    l: &WatcherLogin,
    every: Duration,
    rx: &mpsc::Receiver<QueuedAlert>,
    reports: &tokio::sync::mpsc::Sender<Pushed>,
    stop: &AtomicBool,
) {
    let agent = agent();
    let mut queue: VecDeque<QueuedAlert> = VecDeque::new();
    let mut token: Option<Token> = None;
    let mut backoff = Duration::from_secs(1);
    let mut next_try = Instant::now();
    let report = |p: Pushed| reports.blocking_send(p).is_ok();
    while !stop.load(Ordering::Relaxed) {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(a) => {
                if !queue.iter().any(|q| q.key == a.key) {
                    queue.push_back(a);
                }
                while let Ok(a) = rx.try_recv() {
                    queue.push_back(a);
                }
                while queue.len() > HELD {
                    queue.pop_front();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        if queue.is_empty() || Instant::now() < next_try {
            continue;
        }
        let mut fresh = false;
        if token.as_ref().is_none_or(|t| Instant::now() >= t.renew_at) {
            match login(&agent, l) {
                Ok(t) => {
                    token = Some(t);
                    fresh = true;
                }
                Err(error) => {
                    if !report(Pushed::Failed {
                        error,
                        at: SystemTime::now(),
                    }) {
                        return;
                    }
                    next_try = Instant::now() + backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
        }
        let Some(t) = token.as_ref() else { continue };
        let n = queue.len().min(BATCH);
        let batch: Vec<QueuedAlert> = queue.iter().take(n).cloned().collect();
        match post(&agent, &l.api_url, t, &batch) {
            Sent::Ok(keys) => {
                queue.drain(..n);
                backoff = Duration::from_secs(1);
                // Rate limited: one batch per interval at most.
                next_try = Instant::now() + every;
                if !report(Pushed::Acked { keys }) {
                    return;
                }
            }
            Sent::Unauthorized if !fresh => {
                // A restarted LAPI forgets every token: log in again now.
                token = None;
            }
            Sent::Unauthorized => {
                // Refused with the token just given: logging in again at
                // once would loop; back off like any failure.
                token = None;
                next_try = Instant::now() + backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                if !report(Pushed::Failed {
                    error: "LAPI refused the alerts with a token it had just given (401)".into(),
                    at: SystemTime::now(),
                }) {
                    return;
                }
            }
            Sent::Failed(error) => {
                next_try = Instant::now() + backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                if !report(Pushed::Failed {
                    error,
                    at: SystemTime::now(),
                }) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A LAPI that gives a token to every login and refuses every alert
    /// with 401 (a misconfigured or broken LAPI): the logins it sees.
    fn refusing_lapi() -> (String, Arc<std::sync::atomic::AtomicU64>) {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let logins = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen = logins.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut buf = vec![0u8; 65536];
                let mut got = Vec::new();
                // Headers, then the body by its length.
                loop {
                    let n = conn.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&got);
                let (status, body) = if text.starts_with("POST /v1/watchers/login") {
                    seen.fetch_add(1, Ordering::Relaxed);
                    ("200 OK", r#"{"code":200,"expire":"","token":"t0k3n"}"#)
                } else {
                    ("401 Unauthorized", r#"{"message":"no"}"#)
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (url, logins)
    }

    #[test]
    fn a_401_with_a_fresh_token_backs_off_instead_of_looping() {
        let (api_url, logins) = refusing_lapi();
        let (tx, mut rx) = tokio::sync::mpsc::channel(1000);
        let pusher = Pusher::start(
            WatcherLogin {
                api_url,
                machine_id: "m".into(),
                password: "p".into(),
            },
            Duration::from_millis(100),
            tx,
        )
        .unwrap();
        pusher.send(QueuedAlert {
            key: "k".into(),
            alert: json!({}),
        });
        std::thread::sleep(Duration::from_millis(2500));
        drop(pusher);
        // 1 s, then 2 s of back-off: three logins at most, not one per
        // 100 ms loop.
        let n = logins.load(Ordering::Relaxed);
        assert!((1..=3).contains(&n), "{n} logins in 2.5 s");
        let mut failures = 0;
        while let Ok(p) = rx.try_recv() {
            failures += u32::from(matches!(p, Pushed::Failed { .. }));
        }
        assert!(failures >= 1, "the refusal is reported");
    }

    #[test]
    fn rfc3339_both_ways() {
        assert_eq!(rfc3339_to_unix("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_to_rfc3339(0), "1970-01-01T00:00:00Z");
        let t = 1_796_175_000;
        assert_eq!(rfc3339_to_unix(&unix_to_rfc3339(t)), Some(t));
        assert_eq!(unix_to_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339_to_unix("2024-05-01T13:00:00+02:00"),
            rfc3339_to_unix("2024-05-01T11:00:00Z")
        );
        assert_eq!(
            rfc3339_to_unix("2024-05-01T11:00:00.123456789Z"),
            rfc3339_to_unix("2024-05-01T11:00:00Z")
        );
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T11:00:00",
            "2024-05-01T11:00:00+2",
            "x024-05-01T11:00:00Z",
        ] {
            assert_eq!(rfc3339_to_unix(bad), None, "{bad:?}");
        }
    }
}
