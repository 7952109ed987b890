//! `[crowdsec]`: sipshield as a bouncer of CrowdSec's Local API. Key names
//! follow crowdsec-firewall-bouncer's where they mean the same.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::{
    duration::human,
    error::{KeyPath, Problems},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrowdSecSection {
    /// LAPI's base URL (`http://127.0.0.1:8080/`); "" turns the bouncer off.
    pub api_url: String,
    /// The bouncer key (`cscli bouncers add sipshield`); or:
    pub api_key: String,
    /// A file holding the key (first line), kept out of the config.
    pub api_key_file: PathBuf,
    /// How often the decision stream is pulled.
    #[serde(with = "human")]
    pub update_frequency: Duration,
    /// Decision scopes asked for (LAPI's `scopes`): `ip` and `range` are
    /// the ones sipshield enforces.
    pub scopes: Vec<String>,
    /// Only decisions of these origins (`crowdsec`, `cscli`, `CAPI`,
    /// `lists`); empty: all.
    pub origins: Vec<String>,
    /// Only decisions whose scenario contains one of these; empty: all.
    pub scenarios_containing: Vec<String>,
    /// No decision whose scenario contains one of these.
    pub scenarios_not_containing: Vec<String>,
    /// Run `[hooks]` for CrowdSec's and the feeds' bans too (off: a
    /// 100k-decision pull is no fork storm).
    pub hooks: bool,
    /// The watcher (`cscli machines add`): with these, bans backed by proof
    /// are sent to LAPI as alerts; "" sends nothing.
    pub machine_id: String,
    pub password: String,
    /// Or a file holding the password (its first line).
    pub password_file: PathBuf,
    /// Send the kernel's own bans (rate guard, scanner) of UDP sources too:
    /// off, because a forged datagram would become a ban on every host.
    pub push_kernel_bans: bool,
    /// The shortest time between two batches of alerts (of 100 at most).
    #[serde(with = "human")]
    pub push_interval: Duration,
}

impl Default for CrowdSecSection {
    fn default() -> Self {
        CrowdSecSection {
            api_url: String::new(),
            api_key: String::new(),
            api_key_file: PathBuf::new(),
            update_frequency: Duration::from_secs(10),
            scopes: vec!["ip".into(), "range".into()],
            origins: Vec::new(),
            scenarios_containing: Vec::new(),
            scenarios_not_containing: Vec::new(),
            hooks: false,
            machine_id: String::new(),
            password: String::new(),
            password_file: PathBuf::new(),
            push_kernel_bans: false,
            push_interval: Duration::from_secs(2),
        }
    }
}

impl CrowdSecSection {
    pub fn enabled(&self) -> bool {
        !self.api_url.is_empty()
    }

    /// The bouncer key: `api_key`, else the first line of `api_key_file`.
    pub fn key(&self) -> Result<String, String> {
        if !self.api_key.is_empty() {
            return Ok(self.api_key.clone());
        }
        let text = std::fs::read_to_string(&self.api_key_file)
            .map_err(|e| format!("{}: {e}", self.api_key_file.display()))?;
        let key = text.lines().next().unwrap_or("").trim().to_string();
        if key.is_empty() {
            return Err(format!("{} holds no key", self.api_key_file.display()));
        }
        Ok(key)
    }

    /// Pulls decisions (a bouncer key is configured): the watcher may run
    /// alone.
    pub fn pulls(&self) -> bool {
        self.enabled() && !(self.api_key.is_empty() && self.api_key_file.as_os_str().is_empty())
    }

    /// Sends alerts (a watcher login is configured).
    pub fn pushes(&self) -> bool {
        self.enabled() && !self.machine_id.is_empty()
    }

    /// The watcher password: `password`, else the first line of `password_file`.
    pub fn watcher_password(&self) -> Result<String, String> {
        if !self.password.is_empty() {
            return Ok(self.password.clone());
        }
        let text = std::fs::read_to_string(&self.password_file)
            .map_err(|e| format!("{}: {e}", self.password_file.display()))?;
        let pw = text.lines().next().unwrap_or("").trim().to_string();
        if pw.is_empty() {
            return Err(format!(
                "{} holds no password",
                self.password_file.display()
            ));
        }
        Ok(pw)
    }

    pub(crate) fn validate(&self, problems: &mut Problems) {
        let section = KeyPath::new("crowdsec");
        if !self.machine_id.is_empty() {
            if !self.enabled() {
                problems.push(
                    section.key("machine_id"),
                    "needs api_url (the LAPI to send to)",
                );
            }
            if self.password.is_empty() == self.password_file.as_os_str().is_empty() {
                problems.push(
                    section.key("password"),
                    "machine_id needs password or password_file (one of them)",
                );
            }
        }
        if self.push_interval < Duration::from_millis(100)
            || self.push_interval > Duration::from_secs(600)
        {
            problems.push(section.key("push_interval"), "must be from 100ms to 10m");
        }
        if !self.enabled() {
            return;
        }
        if !(self.api_url.starts_with("http://") || self.api_url.starts_with("https://")) {
            problems.push(
                section.key("api_url"),
                format!("{:?} is no http:// or https:// URL", self.api_url),
            );
        }
        match (
            self.api_key.is_empty(),
            self.api_key_file.as_os_str().is_empty(),
        ) {
            (true, true) if self.machine_id.is_empty() => problems.push(
                section.key("api_key"),
                "api_url needs api_key or api_key_file (cscli bouncers add sipshield), \
                 or machine_id for a watcher alone",
            ),
            (false, false) => problems.push(
                section.key("api_key_file"),
                "give api_key or api_key_file, not both",
            ),
            _ => {}
        }
        if self.api_key.chars().any(|c| c.is_control()) {
            problems.push(section.key("api_key"), "holds control characters");
        }
        if self.update_frequency < Duration::from_secs(1)
            || self.update_frequency > Duration::from_secs(3600)
        {
            problems.push(section.key("update_frequency"), "must be from 1s to 1h");
        }
        for scope in &self.scopes {
            if !["ip", "range"].contains(&scope.to_ascii_lowercase().as_str()) {
                problems.push(
                    section.key("scopes"),
                    format!("{scope:?}: sipshield enforces ip and range decisions only"),
                );
            }
        }
        let lists = [
            ("origins", &self.origins),
            ("scenarios_containing", &self.scenarios_containing),
            ("scenarios_not_containing", &self.scenarios_not_containing),
        ];
        for (key, list) in lists {
            if list
                .iter()
                .any(|v| v.is_empty() || v.contains(',') || v.chars().any(char::is_control))
            {
                problems.push(
                    section.key(key),
                    "entries must be non-empty, without commas",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(s: &CrowdSecSection) -> Vec<String> {
        let mut p = Problems::default();
        s.validate(&mut p);
        p.0.into_iter().map(|(k, m)| format!("{k}: {m}")).collect()
    }

    #[test]
    fn off_by_default_and_a_url_needs_a_key() {
        let mut s = CrowdSecSection::default();
        assert!(!s.enabled());
        assert!(problems(&s).is_empty());
        s.api_url = "http://127.0.0.1:8080/".into();
        assert_eq!(problems(&s).len(), 1, "{:?}", problems(&s));
        s.api_key = "k".into();
        assert!(problems(&s).is_empty());
        s.scopes.push("country".into());
        s.api_url = "127.0.0.1:8080".into();
        assert_eq!(problems(&s).len(), 2, "{:?}", problems(&s));
    }

    #[test]
    fn a_watcher_alone_needs_no_bouncer_key() {
        let s = CrowdSecSection {
            api_url: "http://10.0.0.5:8080/".into(),
            machine_id: "pbx1".into(),
            password_file: "/etc/sipshield/crowdsec.password".into(),
            ..CrowdSecSection::default()
        };
        assert!(problems(&s).is_empty(), "{:?}", problems(&s));
        assert!(s.pushes());
        assert!(!s.pulls(), "no key: the bouncer stays off");
        let both = CrowdSecSection {
            api_key: "k".into(),
            ..s
        };
        assert!(both.pulls() && both.pushes());
    }

    #[test]
    fn the_key_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "  abc123 \nrest\n").unwrap();
        let s = CrowdSecSection {
            api_key_file: path.clone(),
            ..CrowdSecSection::default()
        };
        assert_eq!(s.key().unwrap(), "abc123");
        std::fs::write(&path, "\n").unwrap();
        assert!(s.key().is_err());
    }
}
