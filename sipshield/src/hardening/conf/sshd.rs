//! sshd_config as sshd reads it: case-insensitive keywords, `Keyword value`
//! or `Keyword=value`, `Include` (globs, relative to /etc/ssh, read in place),
//! and `Match` blocks that last until the next `Match` or the end of the file.
//! For most keywords the first value wins; values inside a `Match` block only
//! apply to matching connections, so they never set the global value.

use super::{join_rel, ConfError, HostRoot, IncludeChain, Origin, Unreadable};

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
    /// Included files that could not be read.
    pub unreadable: Vec<Unreadable>,
}

impl SshdConfig {
    pub fn read(host: &HostRoot) -> Result<SshdConfig, ConfError> {
        let text = host.read(SSHD_CONFIG)?;
        let mut conf = SshdConfig::default();
        let mut chain = IncludeChain::new(SSHD_CONFIG);
        conf.parse(host, SSHD_CONFIG, &text, None, &mut chain);
        Ok(conf)
    }

    fn parse(
        &mut self,
        host: &HostRoot,
        file: &str,
        text: &str,
        outer_match: Option<String>,
        chain: &mut IncludeChain,
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
                            self.include(host, &rel, &origin, in_match.clone(), chain);
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

    /// Reads an included file in place; a `Match` inside it ends with it.
    fn include(
        &mut self,
        host: &HostRoot,
        rel: &str,
        from: &Origin,
        in_match: Option<String>,
        chain: &mut IncludeChain,
    ) {
        if let Err(refused) = chain.enter(rel) {
            if let Some(reason) = refused.reason() {
                self.unreadable.push(Unreadable {
                    file: rel.to_string(),
                    from: Some(from.clone()),
                    reason,
                });
            }
            return;
        }
        match host.read(rel) {
            Ok(text) => self.parse(host, rel, &text, in_match, chain),
            Err(e) => self.unreadable.push(Unreadable::new(rel, Some(from), &e)),
        }
        chain.leave();
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
    let file = join_rel("", file);
    let mut chain = IncludeChain::new(&file);
    conf.parse(&host, &file, text, None, &mut chain);
    conf
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;

    #[test]
    fn an_include_inside_match_stays_in_the_match_and_a_match_ends_with_its_file() {
        let (_dir, host) = testing::host(&[
            (
                "etc/ssh/sshd_config",
                Some(
                    "Include sshd_config.d/*.conf\nPasswordAuthentication no\n\
                     Match User admin\n  Include /etc/ssh/admin.conf\n",
                ),
            ),
            (
                "etc/ssh/sshd_config.d/50-cloud.conf",
                Some("Match Address 10.0.0.0/8\n  PermitRootLogin yes\n"),
            ),
            ("etc/ssh/admin.conf", Some("PasswordAuthentication yes\n")),
        ]);
        let conf = SshdConfig::read(&host).expect("read");
        // The drop-in's Match ended with the drop-in: line 2 is global.
        let global = conf.global("PasswordAuthentication").expect("global");
        assert_eq!(
            (global.origin.file.as_str(), global.origin.line),
            ("etc/ssh/sshd_config", 2)
        );
        assert_eq!(global.first_arg(), "no");
        let in_match: Vec<(&str, Option<&str>)> = conf
            .entries
            .iter()
            .filter(|e| e.in_match.is_some())
            .map(|e| (e.origin.file.as_str(), e.in_match.as_deref()))
            .collect();
        assert_eq!(
            in_match,
            [
                (
                    "etc/ssh/sshd_config.d/50-cloud.conf",
                    Some("Address 10.0.0.0/8")
                ),
                ("etc/ssh/admin.conf", Some("User admin")),
            ]
        );
        assert!(conf.global("PermitRootLogin").is_none());
    }

    #[test]
    fn an_unreadable_include_is_recorded_and_a_self_include_ends() {
        let (_dir, host) = testing::host(&[
            (
                "etc/ssh/sshd_config",
                Some("Include /etc/ssh/sshd_config\nInclude locked.conf\nPort 2222\n"),
            ),
            ("etc/ssh/locked.conf", None),
        ]);
        let conf = SshdConfig::read(&host).expect("read");
        assert_eq!(conf.unreadable.len(), 1);
        assert_eq!(conf.unreadable[0].file, "etc/ssh/locked.conf");
        assert_eq!(conf.all_global("Port").count(), 1);
    }

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
