//! The bouncer's puller: a thread of its own asks LAPI for the decision
//! stream every `update_frequency` and hands what it brought to the engine.
//!
//! The first pull (and the first after any failure) asks for everything
//! (`startup=true`): the engine then replaces what it holds, so what
//! changed while LAPI was away is reconciled. While LAPI is unreachable
//! the bans in force stay; pulls back off up to a minute.

use std::{
    io::Read,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime},
};

use super::stream::{self, StreamDelta};
use crate::config::CrowdSecSection;

/// A stream answer larger than this is refused (100k decisions are ~15 MB).
const MAX_BODY: u64 = 256 << 20;
/// Longest wait between failed pulls.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What the puller tells the engine.
#[derive(Debug)]
pub enum Pulled {
    /// One answer. `startup`: everything LAPI holds (replace, do not add).
    Delta {
        startup: bool,
        delta: StreamDelta,
        /// When the answer was in (the 100k-in-5s clock starts here).
        received: Instant,
    },
    /// A pull failed; bans in force stay.
    Failed { error: String, at: SystemTime },
}

pub struct Bouncer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Bouncer {
    /// Starts pulling; answers go to `tx`.
    pub fn start(
        section: &CrowdSecSection,
        key: String,
        tx: tokio::sync::mpsc::Sender<Pulled>,
    ) -> std::io::Result<Bouncer> {
        let stop = Arc::new(AtomicBool::new(false));
        let url = stream_url(section);
        let every = section.update_frequency;
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sipshield-crowdsec".into())
            .spawn(move || pull_loop(&url, &key, every, &tx, &flag))?;
        Ok(Bouncer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The thread notices within a tick (or when its request times out);
        // not joined: a reload must not wait on LAPI.
        drop(self.thread.take());
    }
}

/// `…/v1/decisions/stream?` with the filters (`startup` is added per pull).
pub fn stream_url(section: &CrowdSecSection) -> String {
    let base = section.api_url.trim_end_matches('/');
    let mut url = format!("{base}/v1/decisions/stream?");
    let mut params: Vec<(&str, String)> = vec![("scopes", section.scopes.join(","))];
    if !section.origins.is_empty() {
        params.push(("origins", section.origins.join(",")));
    }
    if !section.scenarios_containing.is_empty() {
        params.push((
            "scenarios_containing",
            section.scenarios_containing.join(","),
        ));
    }
    if !section.scenarios_not_containing.is_empty() {
        params.push((
            "scenarios_not_containing",
            section.scenarios_not_containing.join(","),
        ));
    }
    for (k, v) in params {
        url.push_str(&format!("{k}={}&", encode(&v)));
    }
    url
}

/// Percent-encodes a query value (everything but unreserved characters).
fn encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn agent() -> ureq::Agent {
    crate::fleet::http_agent(Duration::from_secs(5), Duration::from_secs(60))
}

/// One pull: the decoded answer and when it was in, or why not.
pub fn pull(
    agent: &ureq::Agent,
    url: &str,
    key: &str,
    startup: bool,
) -> Result<(StreamDelta, Instant), String> {
    let full = format!("{url}startup={startup}");
    let response = match agent.get(&full).set("X-Api-Key", key).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => {
            let mut text = String::new();
            let _ = r.into_reader().take(512).read_to_string(&mut text);
            let hint = if code == 403 || code == 401 {
                " (the bouncer key is wrong: cscli bouncers add)"
            } else {
                ""
            };
            return Err(format!("LAPI answered {code}{hint}: {}", text.trim()));
        }
        Err(e) => return Err(format!("LAPI unreachable: {e}")),
    };
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_BODY + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("reading LAPI's answer: {e}"))?;
    let received = Instant::now();
    if body.len() as u64 > MAX_BODY {
        return Err(format!("LAPI's answer is over {} MiB", MAX_BODY >> 20));
    }
    let delta = stream::parse(&body).map_err(|e| e.to_string())?;
    Ok((delta, received))
}

fn pull_loop(
    url: &str,
    key: &str,
    every: Duration,
    tx: &tokio::sync::mpsc::Sender<Pulled>,
    stop: &AtomicBool,
) {
    let agent = agent();
    let mut startup = true;
    let mut backoff = Duration::from_secs(1);
    while !stop.load(Ordering::Relaxed) {
        let result = pull(&agent, url, key, startup);
        // Stopped while asking (a reload): the answer is for the old config.
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let wait = match result {
            Ok((delta, received)) => {
                let msg = Pulled::Delta {
                    startup,
                    delta,
                    received,
                };
                if tx.blocking_send(msg).is_err() {
                    return;
                }
                startup = false;
                backoff = Duration::from_secs(1);
                every
            }
            Err(error) => {
                let msg = Pulled::Failed {
                    error,
                    at: SystemTime::now(),
                };
                if tx.blocking_send(msg).is_err() {
                    return;
                }
                // Whatever happened meanwhile is fetched whole next time.
                startup = true;
                let wait = backoff
                    .min(every.max(Duration::from_secs(1)) * 6)
                    .min(MAX_BACKOFF);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        let until = Instant::now() + wait;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_carries_the_filters_encoded() {
        let s = CrowdSecSection {
            api_url: "http://127.0.0.1:8080/".into(),
            origins: vec!["cscli".into(), "crowdsec".into()],
            scenarios_containing: vec!["ssh bf&x".into()],
            ..CrowdSecSection::default()
        };
        assert_eq!(
            stream_url(&s),
            "http://127.0.0.1:8080/v1/decisions/stream?scopes=ip,range&origins=cscli,crowdsec&scenarios_containing=ssh%20bf%26x&"
        );
    }

    #[test]
    fn an_unreachable_lapi_is_an_error_not_a_hang() {
        // Port 9 on loopback: nothing listens (connection refused at once).
        let t = Instant::now();
        let e = pull(
            &agent(),
            "http://127.0.0.1:9/v1/decisions/stream?",
            "k",
            true,
        )
        .unwrap_err();
        assert!(e.contains("unreachable"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(6));
    }
}
