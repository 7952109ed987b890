//! sshd_config as sshd reads it: case-insensitive keywords, `Keyword value`
//! or `Keyword=value`, `Include` (globs, relative to /etc/ssh, read in place),
//! and `Match` blocks that last until the next `Match` or the end of the file.
//! For most keywords the first value wins; values inside a `Match` block only
//! apply to matching connections, so they never set the global value.

use std::collections::HashSet;

use super::{join_rel, ConfError, HostRoot, Origin};

pub const SSHD_CONFIG: &str = "etc/ssh/sshd_config";
const SSH_DIR: &str = "etc/ssh";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Lower-cased keyword.
    pub keyword: String,
    /// Everything after the keyword, trimmed.
    pub args: String,
    pub origin: Origin,
    /// The `Match` criteria this entry sits under, if any.
    pub in_match: Option<String>,
}

impl Entry {
    /// The keyword as sshd's documentation spells it, for messages.
    pub fn keyword_name(&self) -> &'static str {
        match self.keyword.as_str() {
            "kbdinteractiveauthentication" => "KbdInteractiveAuthentication",
            "challengeresponseauthentication" => "ChallengeResponseAuthentication",
            "passwordauthentication" => "PasswordAuthentication",
            "permitrootlogin" => "PermitRootLogin",
            _ => "option",
        }
    }

    /// First argument, lower-cased (`yes`, `prohibit-password`, ...).
    pub fn first_arg(&self) -> String {
        self.args
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshdConfig {
    pub entries: Vec<Entry>,
}

impl SshdConfig {
    pub fn read(host: &HostRoot) -> Result<SshdConfig, ConfError> {
        let text = host.read(SSHD_CONFIG)?;
        let mut conf = SshdConfig::default();
        let mut visited = HashSet::from([SSHD_CONFIG.to_string()]);
        conf.parse(host, SSHD_CONFIG, &text, None, &mut visited);
        Ok(conf)
    }

    fn parse(
        &mut self,
        host: &HostRoot,
        file: &str,
        text: &str,
        outer_match: Option<String>,
        visited: &mut HashSet<String>,
    ) {
        let mut in_match = outer_match;
        for (idx, raw) in text.lines().enumerate() {
            let Some((keyword, args)) = split_line(raw) else {
                continue;
            };
            let origin = Origin {
                file: file.to_string(),
                line: u32::try_from(idx + 1).unwrap_or(u32::MAX),
            };
            match keyword.as_str() {
                "match" => {
                    // `Match all` ends a block the way a new `Match` does, but
                    // what follows still only applies through the Match.
                    in_match = Some(args.clone());
                }
                "include" => {
                    for pattern in args.split_whitespace() {
                        for rel in host.glob(SSH_DIR, pattern) {
                            if !visited.insert(rel.clone()) {
                                continue;
                            }
                            if let Ok(text) = host.read(&rel) {
                                self.parse(host, &rel, &text, in_match.clone(), visited);
                            }
                        }
                    }
                }
                _ => self.entries.push(Entry {
                    keyword,
                    args,
                    origin,
                    in_match: in_match.clone(),
                }),
            }
        }
    }

    /// The global effective entry: the first one outside any `Match`.
    pub fn global(&self, keyword: &str) -> Option<&Entry> {
        let keyword = keyword.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|e| e.in_match.is_none() && e.keyword == keyword)
    }

    /// Every entry for `keyword` inside a `Match` block.
    pub fn in_matches<'a>(&'a self, keyword: &str) -> impl Iterator<Item = &'a Entry> + 'a {
        let keyword = keyword.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(move |e| e.in_match.is_some() && e.keyword == keyword)
    }

    /// Every global entry of a keyword that accumulates (`Port`, `ListenAddress`).
    pub fn all_global<'a>(&'a self, keyword: &str) -> impl Iterator<Item = &'a Entry> + 'a {
        let keyword = keyword.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(move |e| e.in_match.is_none() && e.keyword == keyword)
    }
}

/// `Keyword args` / `Keyword=args`, `None` for blank and comment lines.
fn split_line(raw: &str) -> Option<(String, String)> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    // A `#` after whitespace starts a trailing comment (OpenSSH >= 8.7).
    let line = match line.find(" #").or_else(|| line.find("\t#")) {
        Some(i) => line[..i].trim_end(),
        None => line,
    };
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let keyword = line[..end].to_ascii_lowercase();
    let rest = line[end..].trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    let rest = rest.trim_matches('"');
    Some((keyword, rest.to_string()))
}

/// For tests and snippets: entries of a single file, no includes.
pub fn parse_str(file: &str, text: &str) -> SshdConfig {
    let host = HostRoot::new(std::path::Path::new("/nonexistent-root"));
    let mut conf = SshdConfig::default();
    let mut visited = HashSet::new();
    conf.parse(&host, &join_rel("", file), text, None, &mut visited);
    conf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_wins_and_match_does_not_change_the_global_value() {
        let conf = parse_str(
            "etc/ssh/sshd_config",
            "# PermitRootLogin yes\npermitrootlogin=no\nPermitRootLogin yes\n\
             Match User backup\n  PermitRootLogin yes\n",
        );
        let e = conf.global("PermitRootLogin").expect("set");
        assert_eq!(e.first_arg(), "no");
        assert_eq!(e.origin.line, 2);
        let in_match: Vec<_> = conf.in_matches("permitrootlogin").collect();
        assert_eq!(in_match.len(), 1);
        assert_eq!(in_match[0].in_match.as_deref(), Some("User backup"));
    }
}
