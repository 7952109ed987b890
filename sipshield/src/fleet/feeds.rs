//! SIP blocklist feeds: APIBAN (its REST API, paged by ID), VoIPBL and any
//! URL serving one IP or CIDR per line.
//!
//! A feed is trusted with what it lists, not with well-formed input: lines
//! that are no address are skipped and counted, an answer that lists
//! nothing valid is a failed download, and a failed download keeps the
//! entries it had. One thread fetches every feed in turn.

use std::{
    collections::HashMap,
    io::Read,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime},
};

use serde::Deserialize;

use crate::{config::FeedKind, config::FeedSection, state::BanTarget};

/// A download larger than this is refused.
const MAX_BODY: u64 = 64 << 20;
/// APIBAN pages fetched per refresh at most (250 addresses each).
const MAX_PAGES: usize = 200;
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// A parsed list: the targets and how many lines were not addresses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ParsedList {
    pub targets: Vec<BanTarget>,
    pub bad_lines: usize,
}

/// One IP or CIDR per line; `#` and `;` start comments (VoIPBL's header
/// is one), blank lines are skipped. A /32 (or /128) is an address.
pub fn parse_list(text: &str) -> ParsedList {
    let mut out = ParsedList::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        // Some lists add a second column (a date, a reason).
        let first = line.split_whitespace().next().unwrap_or("");
        match first.parse::<BanTarget>() {
            // A default route is no blocklist entry.
            Ok(BanTarget::Net(n)) if n.prefix_len() < 8 => out.bad_lines += 1,
            Ok(t) => out.targets.push(t),
            Err(_) => out.bad_lines += 1,
        }
    }
    out.targets.sort();
    out.targets.dedup();
    out
}

/// An APIBAN answer: `{"ipaddress": [...], "ID": "..."}` (in error
/// answers `ipaddress` is a string).
#[derive(Debug, Deserialize)]
struct ApibanPage {
    #[serde(default)]
    ipaddress: serde_json::Value,
    #[serde(rename = "ID", default)]
    id: serde_json::Value,
}

/// What one APIBAN page says.
#[derive(Debug, PartialEq, Eq)]
pub enum Page {
    /// Entries and the ID to ask from next.
    More {
        targets: Vec<BanTarget>,
        bad: usize,
        next: String,
    },
    /// Nothing new after the ID asked for.
    End,
}

pub fn parse_apiban(status: u16, body: &str) -> Result<Page, String> {
    let page: ApibanPage = serde_json::from_str(body)
        .map_err(|e| format!("APIBAN answered {status} with no JSON it sends ({e})"))?;
    let id = match &page.id {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    if id == "none" {
        return Ok(Page::End);
    }
    match status {
        200 => {}
        403 => return Err("APIBAN refused the key (403)".into()),
        429 => return Err("APIBAN's rate limit (429)".into()),
        _ => return Err(format!("APIBAN answered {status}: {body:.200}")),
    }
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("APIBAN's next ID {id:?} is not one"));
    }
    let list = page
        .ipaddress
        .as_array()
        .ok_or("APIBAN's ipaddress is no list")?;
    let (mut targets, mut bad) = (Vec::new(), 0);
    for v in list {
        match v
            .as_str()
            .and_then(|s| s.trim().parse::<std::net::IpAddr>().ok())
        {
            Some(ip) => targets.push(BanTarget::addr(ip)),
            None => bad += 1,
        }
    }
    Ok(Page::More {
        targets,
        bad,
        next: id,
    })
}

/// What the fetcher tells the engine.
#[derive(Debug)]
pub enum FeedUpdate {
    /// The whole list as it is now (plain lists): replace.
    Full {
        feed: String,
        targets: Vec<BanTarget>,
        bad_lines: usize,
    },
    /// New entries since `cursor` (APIBAN): add; `cursor` is where the
    /// next refresh asks from.
    Added {
        feed: String,
        targets: Vec<BanTarget>,
        bad_lines: usize,
        cursor: String,
    },
    /// A download failed: the feed keeps its entries.
    Failed {
        feed: String,
        error: String,
        at: SystemTime,
    },
}

pub struct Fetcher {
    stop: Arc<AtomicBool>,
    /// One thread per feed: APIBAN's paced paging (a request per 11 s)
    /// never holds up another feed's refresh.
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.clear();
    }
}

/// A feed as the fetcher runs it.
struct Running {
    section: FeedSection,
    key: Option<String>,
    cursor: String,
    next_at: Instant,
    backoff: Duration,
}

impl Fetcher {
    /// Starts fetching `feeds`; `cursors` are where each APIBAN feed was
    /// left (from the state database).
    pub fn start(
        feeds: &[FeedSection],
        cursors: &HashMap<String, String>,
        tx: tokio::sync::mpsc::Sender<FeedUpdate>,
    ) -> std::io::Result<Fetcher> {
        let mut running = Vec::new();
        for f in feeds {
            let key = match f.kind {
                FeedKind::Apiban => match f.key() {
                    Ok(k) => Some(k),
                    Err(e) => {
                        let _ = tx.try_send(FeedUpdate::Failed {
                            feed: f.name.clone(),
                            error: format!("no APIBAN key: {e}"),
                            at: SystemTime::now(),
                        });
                        continue;
                    }
                },
                _ => None,
            };
            running.push(Running {
                section: f.clone(),
                key,
                cursor: cursors
                    .get(&f.name)
                    .cloned()
                    .unwrap_or_else(|| "100".into()),
                next_at: Instant::now(),
                backoff: Duration::ZERO,
            });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(running.len());
        for r in running {
            let (flag, tx) = (stop.clone(), tx.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("sipshield-feed-{}", r.section.name))
                    .spawn(move || fetch_loop(r, &tx, &flag))?,
            );
        }
        Ok(Fetcher { stop, threads })
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    crate::fleet::http_agent(timeout.min(Duration::from_secs(10)), timeout)
}

/// GET `url`: (status, body), any status; errors only when nothing came.
fn get(agent: &ureq::Agent, url: &str) -> Result<(u16, String), String> {
    let response = match agent.get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(format!("unreachable: {e}")),
    };
    let status = response.status();
    let mut body = String::new();
    response
        .into_reader()
        .take(MAX_BODY + 1)
        .read_to_string(&mut body)
        .map_err(|e| format!("reading the answer: {e}"))?;
    if body.len() as u64 > MAX_BODY {
        return Err(format!("the answer is over {} MiB", MAX_BODY >> 20));
    }
    Ok((status, body))
}

fn fetch_list(f: &FeedSection) -> Result<FeedUpdate, String> {
    let (status, body) = get(&agent(f.timeout), &f.url)?;
    if status != 200 {
        return Err(format!("answered {status}"));
    }
    let parsed = parse_list(&body);
    if parsed.targets.is_empty() {
        // An error page or an empty answer is no reason to lift a list.
        return Err(format!(
            "the answer lists no address ({} lines that are none)",
            parsed.bad_lines
        ));
    }
    Ok(FeedUpdate::Full {
        feed: f.name.clone(),
        targets: parsed.targets,
        bad_lines: parsed.bad_lines,
    })
}

/// APIBAN: pages from `cursor` until it says there is nothing new, one
/// request per `request_interval` (its limit is 11 in 2 minutes). A failure
/// after some pages keeps them (the cursor moves past them): the error
/// comes with what was fetched, so a 429 halfway never restarts the walk.
fn fetch_apiban(r: &Running, stop: &AtomicBool) -> (Option<FeedUpdate>, Option<String>) {
    let agent = agent(r.section.timeout);
    let key = r.key.as_deref().unwrap_or("");
    let base = r.section.url.trim_end_matches('/');
    let (mut targets, mut bad) = (Vec::new(), 0);
    let mut cursor = r.cursor.clone();
    let mut failure = None;
    for page in 0..MAX_PAGES {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if page > 0 {
            std::thread::sleep(r.section.request_interval);
        }
        let answer = get(&agent, &format!("{base}/{key}/banned/{cursor}"))
            .and_then(|(status, body)| parse_apiban(status, &body));
        let page = match answer {
            Ok(p) => p,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        match page {
            Page::End => break,
            Page::More {
                targets: t,
                bad: b,
                next,
            } => {
                let done = next == cursor;
                targets.extend(t);
                bad += b;
                cursor = next;
                if done {
                    break;
                }
            }
        }
    }
    let fetched = (failure.is_none() || cursor != r.cursor).then(|| FeedUpdate::Added {
        feed: r.section.name.clone(),
        targets,
        bad_lines: bad,
        cursor,
    });
    (fetched, failure)
}

/// Fetches one feed every `refresh` (sooner, backing off, after a failure)
/// until `stop`.
fn fetch_loop(mut r: Running, tx: &tokio::sync::mpsc::Sender<FeedUpdate>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() < r.next_at {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let (fetched, failure) = match r.section.kind {
            FeedKind::Apiban => fetch_apiban(&r, stop),
            FeedKind::Voipbl | FeedKind::List => match fetch_list(&r.section) {
                Ok(update) => (Some(update), None),
                Err(e) => (None, Some(e)),
            },
        };
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if let Some(update) = fetched {
            if let FeedUpdate::Added { cursor, .. } = &update {
                r.cursor = cursor.clone();
            }
            if tx.blocking_send(update).is_err() {
                return;
            }
        }
        let Some(error) = failure else {
            r.backoff = Duration::ZERO;
            r.next_at = Instant::now() + r.section.refresh;
            continue;
        };
        // A 429 or an outage: retry sooner than the next refresh, waiting
        // longer each time (30 s, doubling), never longer than the refresh
        // itself.
        r.backoff = (r.backoff * 2)
            .max(Duration::from_secs(30))
            .min(MAX_BACKOFF);
        r.next_at = Instant::now() + r.backoff.min(r.section.refresh);
        let failed = FeedUpdate::Failed {
            feed: r.section.name.clone(),
            error,
            at: SystemTime::now(),
        };
        if tx.blocking_send(failed).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_voipbl_list_with_its_header_and_garbage() {
        let text = "# VoIPBL TOTAL NETBLOCK: 3\n1.2.3.4/32\n5.6.7.0/24\n\n  8.9.10.11  \n<html>\n0.0.0.0/0\n999.1.1.1\n5.6.7.0/24\n2001:db8::/48 # v6\n";
        let p = parse_list(text);
        let shown: Vec<String> = p.targets.iter().map(|t| t.to_string()).collect();
        assert_eq!(
            shown,
            ["1.2.3.4", "5.6.7.0/24", "8.9.10.11", "2001:db8::/48"]
        );
        assert_eq!(p.bad_lines, 3);
    }

    #[test]
    fn apiban_pages_and_the_end_marker() {
        let p = parse_apiban(
            200,
            r#"{"ipaddress":["198.51.100.1","x","2001:db8::1"],"ID":"1234567"}"#,
        )
        .unwrap();
        assert_eq!(
            p,
            Page::More {
                targets: vec![
                    "198.51.100.1".parse().unwrap(),
                    "2001:db8::1".parse().unwrap()
                ],
                bad: 1,
                next: "1234567".into()
            }
        );
        assert_eq!(
            parse_apiban(400, r#"{"ipaddress":["no new bans"],"ID":"none"}"#).unwrap(),
            Page::End
        );
        assert!(parse_apiban(
            429,
            r#"{"ipaddress":"rate limit exceeded","ID":"unauthorized"}"#
        )
        .unwrap_err()
        .contains("429"));
        assert!(parse_apiban(403, r#"{"ipaddress":"none","ID":"unauthorized"}"#).is_err());
        assert!(parse_apiban(200, "<html>").is_err());
        assert!(parse_apiban(200, r#"{"ipaddress":["1.2.3.4"],"ID":"../x"}"#).is_err());
        assert!(parse_apiban(200, r#"{"ipaddress":"1.2.3.4","ID":"5"}"#).is_err());
    }
}
