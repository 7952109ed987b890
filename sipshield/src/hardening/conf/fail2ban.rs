//! fail2ban jail configuration: jail.conf, jail.d/*.conf, jail.local,
//! jail.d/*.local, read in that order so later files override earlier ones
//! (Python configparser syntax: `[jail]`, `key = value` or `key: value`,
//! `#`/`;` comment lines, indented continuation lines). `[DEFAULT]` values
//! apply to every jail that does not set its own.

use super::{join_rel, HostRoot, Origin};

pub const FAIL2BAN_DIR: &str = "etc/fail2ban";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailValue {
    pub jail: String,
    /// Lower-cased key.
    pub key: String,
    pub value: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JailConf {
    pub files: Vec<String>,
    pub values: Vec<JailValue>,
}

impl JailConf {
    /// Reads whatever jail files exist (possibly none).
    pub fn read(host: &HostRoot) -> JailConf {
        let mut conf = JailConf::default();
        let jail_d = join_rel(FAIL2BAN_DIR, "jail.d");
        let drop_ins = host.list_dir(&jail_d);
        let mut files = vec![join_rel(FAIL2BAN_DIR, "jail.conf")];
        files.extend(
            drop_ins
                .iter()
                .filter(|n| n.ends_with(".conf"))
                .map(|n| join_rel(&jail_d, n)),
        );
        files.push(join_rel(FAIL2BAN_DIR, "jail.local"));
        files.extend(
            drop_ins
                .iter()
                .filter(|n| n.ends_with(".local"))
                .map(|n| join_rel(&jail_d, n)),
        );
        for file in files {
            if let Ok(text) = host.read(&file) {
                conf.parse(&file, &text);
                conf.files.push(file);
            }
        }
        conf
    }

    pub fn parse(&mut self, file: &str, text: &str) {
        let mut jail = String::new();
        for (idx, raw) in text.lines().enumerate() {
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if raw.starts_with([' ', '\t']) {
                // A continuation of the previous value.
                if let Some(last) = self.values.last_mut() {
                    last.value.push(' ');
                    last.value.push_str(trimmed);
                }
                continue;
            }
            if let Some(rest) = trimmed.strip_prefix('[') {
                if let Some(end) = rest.find(']') {
                    jail = rest[..end].trim().to_string();
                }
                continue;
            }
            let Some(sep) = trimmed.find(['=', ':']) else {
                continue;
            };
            self.values.push(JailValue {
                jail: jail.clone(),
                key: trimmed[..sep].trim().to_ascii_lowercase(),
                value: trimmed[sep + 1..].trim().to_string(),
                origin: Origin {
                    file: file.to_string(),
                    line: u32::try_from(idx + 1).unwrap_or(u32::MAX),
                },
            });
        }
    }

    /// Jail names in the order first seen (not `DEFAULT`/`INCLUDES`).
    pub fn jails(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for v in &self.values {
            if v.jail != "DEFAULT" && v.jail != "INCLUDES" && !out.contains(&v.jail.as_str()) {
                out.push(&v.jail);
            }
        }
        out
    }

    /// The effective value of `key` for a jail, falling back to `[DEFAULT]`.
    pub fn get(&self, jail: &str, key: &str) -> Option<&JailValue> {
        let key = key.to_ascii_lowercase();
        let last_in = |j: &str| {
            self.values
                .iter()
                .rev()
                .find(|v| v.jail == j && v.key == key)
        };
        last_in(jail).or_else(|| last_in("DEFAULT"))
    }
}
