//! `[[feeds]]`: SIP blocklist feeds whose entries become bans of origin
//! `feed:<name>`.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::{
    duration::human,
    error::{KeyPath, Problems},
};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedKind {
    /// APIBAN's REST API (`{url}/{KEY}/banned/{ID}`), paged by ID.
    Apiban,
    /// VoIPBL's plain list.
    Voipbl,
    /// Any URL serving one IP or CIDR per line.
    #[default]
    List,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedSection {
    /// Names the origin `feed:<name>` (letters, digits, `-`, `_`).
    pub name: String,
    pub kind: FeedKind,
    /// "" = the kind's own (https://apiban.org/api, http://www.voipbl.org/update/).
    pub url: String,
    /// APIBAN: a file holding the key (its first line).
    pub key_file: PathBuf,
    /// How often it is fetched; 0 = the kind's own (APIBAN 4m, lists 4h).
    #[serde(with = "human")]
    pub refresh: Duration,
    /// An entry is lifted this long after it first came (APIBAN keeps
    /// entries 7 days: 0 = 7d for it); 0 for a list: when it drops it.
    #[serde(with = "human")]
    pub max_age: Duration,
    /// One download (or APIBAN page) that takes longer fails.
    #[serde(with = "human")]
    pub timeout: Duration,
    /// APIBAN: between two pages (its limit is 11 requests in 2 minutes).
    #[serde(with = "human")]
    pub request_interval: Duration,
}

impl Default for FeedSection {
    fn default() -> Self {
        FeedSection {
            name: String::new(),
            kind: FeedKind::List,
            url: String::new(),
            key_file: PathBuf::new(),
            refresh: Duration::ZERO,
            max_age: Duration::ZERO,
            timeout: Duration::from_secs(30),
            request_interval: Duration::from_secs(11),
        }
    }
}

impl FeedSection {
    /// With the kind's defaults in place of the zeros and empty URL.
    pub fn resolved(&self) -> FeedSection {
        let mut f = self.clone();
        if f.url.is_empty() {
            f.url = match f.kind {
                FeedKind::Apiban => "https://apiban.org/api".into(),
                FeedKind::Voipbl => "http://www.voipbl.org/update/".into(),
                FeedKind::List => String::new(),
            };
        }
        if f.refresh.is_zero() {
            f.refresh = match f.kind {
                FeedKind::Apiban => Duration::from_secs(240),
                _ => Duration::from_secs(4 * 3600),
            };
        }
        if f.max_age.is_zero() && f.kind == FeedKind::Apiban {
            f.max_age = Duration::from_secs(7 * 86_400);
        }
        f
    }

    /// The APIBAN key: the first line of `key_file`.
    pub fn key(&self) -> Result<String, String> {
        let text = std::fs::read_to_string(&self.key_file)
            .map_err(|e| format!("{}: {e}", self.key_file.display()))?;
        let key = text.lines().next().unwrap_or("").trim().to_string();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!("{} holds no APIBAN key", self.key_file.display()));
        }
        Ok(key)
    }

    pub(crate) fn validate(&self, index: usize, problems: &mut Problems) {
        let at = KeyPath::new("feeds").index(index);
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 32
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            problems.push(
                at.key("name"),
                "must be 1 to 32 letters, digits, - or _ (it names the origin feed:<name>)",
            );
        }
        let url = self.resolved().url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            problems.push(
                at.key("url"),
                format!("{url:?} is no http:// or https:// URL"),
            );
        }
        if self.kind == FeedKind::Apiban && self.key_file.as_os_str().is_empty() {
            problems.push(at.key("key_file"), "APIBAN needs its key, in a file");
        }
        let r = self.resolved().refresh;
        if r < Duration::from_secs(1) || r > Duration::from_secs(7 * 86_400) {
            problems.push(at.key("refresh"), "must be from 1s to 7d");
        }
        if self.timeout < Duration::from_millis(100) || self.timeout > Duration::from_secs(600) {
            problems.push(at.key("timeout"), "must be from 100ms to 10m");
        }
        if self.request_interval > Duration::from_secs(600) {
            problems.push(at.key("request_interval"), "must be at most 10m");
        }
    }
}

pub(crate) fn validate_all(feeds: &[FeedSection], problems: &mut Problems) {
    for (i, f) in feeds.iter().enumerate() {
        f.validate(i, problems);
        if feeds[..i].iter().any(|g| g.name == f.name) {
            problems.push(
                KeyPath::new("feeds").index(i).key("name"),
                format!("{:?} names two feeds", f.name),
            );
        }
    }
}
