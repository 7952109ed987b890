//! Readers for the configuration formats the checks look at. Each keeps the
//! file (relative to the audited root) and line of every value, so a finding
//! can point at the exact line to change.

use std::path::{Component, Path, PathBuf};

pub mod apache;
pub mod asterisk;
pub mod fail2ban;
pub mod mycnf;
pub mod pam;
pub mod proc_net;
pub mod sshd;

#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
}

/// Where a value came from: a file relative to the root, and a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: u32,
}

/// The audited filesystem: every path a config names is looked up below it,
/// never on the auditing host itself.
#[derive(Debug, Clone)]
pub struct HostRoot {
    root: PathBuf,
}

impl HostRoot {
    pub fn new(root: &Path) -> HostRoot {
        HostRoot {
            root: root.to_path_buf(),
        }
    }

    /// `etc/asterisk/sip.conf` → the real path under the root. `..` never
    /// climbs above the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        let mut out = self.root.clone();
        for part in normalize(rel) {
            out.push(part);
        }
        out
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(&self.resolve(rel)).exists()
    }

    pub fn is_dir(&self, rel: &str) -> bool {
        self.path(&self.resolve(rel)).is_dir()
    }

    /// Follows symlinks inside the audited tree: an absolute link target
    /// (Debian's `my.cnf -> /etc/alternatives/my.cnf`) is looked up below
    /// the root, not on the auditing host.
    pub fn resolve(&self, rel: &str) -> String {
        let mut pending: Vec<String> = normalize(rel);
        pending.reverse();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            done.push(part);
            let here = done.join("/");
            let Ok(target) = std::fs::read_link(self.path(&here)) else {
                continue;
            };
            hops += 1;
            if hops > 40 {
                break;
            }
            done.pop();
            let target = target.to_string_lossy().into_owned();
            let base = done.join("/");
            let mut rest: Vec<String> = normalize(&join_rel(&base, &target));
            done.clear();
            pending.extend(rest.drain(..).rev());
        }
        done.join("/")
    }

    /// True for a file or a symlink, even a dangling one (an enabled systemd
    /// unit in an image often points at a path only valid on the host).
    pub fn has_entry(&self, rel: &str) -> bool {
        std::fs::symlink_metadata(self.path(rel)).is_ok()
    }

    pub fn read(&self, rel: &str) -> Result<String, ConfError> {
        let rel = join_rel("", rel);
        match std::fs::read(self.path(&self.resolve(&rel))) {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ConfError::NotFound(rel)),
            Err(source) => Err(ConfError::Io { file: rel, source }),
        }
    }

    /// Names in a directory (relative to the root), sorted; empty when absent.
    pub fn list_dir(&self, rel: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.path(&self.resolve(rel))) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Expands a path that may contain `*`, `?` and `[...]` in any component
    /// into the existing paths (relative to the root), sorted as glob(3) does.
    /// `pattern` is absolute on the audited host, or relative to `base`.
    pub fn glob(&self, base: &str, pattern: &str) -> Vec<String> {
        let full = join_rel(base, pattern);
        let parts = normalize(&full);
        let mut found = vec![String::new()];
        for part in parts {
            let mut next = Vec::new();
            for prefix in &found {
                if has_wildcard(&part) {
                    for name in self.list_dir(prefix) {
                        if name.starts_with('.') && !part.starts_with('.') {
                            continue;
                        }
                        if wildcard_match(&part, &name) {
                            next.push(join_rel(prefix, &name));
                        }
                    }
                } else {
                    let candidate = join_rel(prefix, &part);
                    if self.has_entry(&candidate) || self.exists(&candidate) {
                        next.push(candidate);
                    }
                }
            }
            found = next;
        }
        found.retain(|p| !p.is_empty());
        found
    }
}

/// Joins a possibly absolute host path onto a root-relative base directory.
/// Absolute paths are taken from the root; the result has no leading `/`.
pub fn join_rel(base: &str, path: &str) -> String {
    let combined = if path.starts_with('/') || base.is_empty() {
        path.to_string()
    } else {
        format!("{base}/{path}")
    };
    normalize(&combined).join("/")
}

/// Splits into components, dropping `.` and resolving `..` lexically without
/// ever leaving the root.
fn normalize(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    parts
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Shell-style match of one path component: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|i| match_from(&p[1..], &n[i..])),
        Some('?') => !n.is_empty() && match_from(&p[1..], &n[1..]),
        Some('[') => {
            let Some(close) = p.iter().skip(2).position(|&c| c == ']').map(|i| i + 2) else {
                return n.first() == Some(&'[') && match_from(&p[1..], &n[1..]);
            };
            let Some(&c) = n.first() else {
                return false;
            };
            let class = &p[1..close];
            let (negate, class) = match class.first() {
                Some('!') | Some('^') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negate && match_from(&p[close + 1..], &n[1..])
        }
        Some(&c) => n.first() == Some(&c) && match_from(&p[1..], &n[1..]),
    }
}

/// Parent directory of a root-relative file.
pub fn dir_of(rel: &str) -> String {
    match rel.rfind('/') {
        Some(i) => rel[..i].to_string(),
        None => String::new(),
    }
}

/// Yes/no the way Asterisk's `ast_true` reads it.
pub fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "yes" | "true" | "y" | "t" | "1" | "on"
    )
}

/// The opposite of [`is_true`] the way `ast_false` reads it; a value that is
/// neither counts as neither.
pub fn is_false(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "no" | "false" | "n" | "f" | "0" | "off"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_glob() {
        assert!(wildcard_match("*.conf", "sip_custom.conf"));
        assert!(!wildcard_match("*.conf", "sip.conf.bak"));
        assert!(wildcard_match("sip_?.conf", "sip_1.conf"));
        assert!(wildcard_match("[0-9]*.cnf", "50-server.cnf"));
        assert!(!wildcard_match("[!0-9]*", "50-server.cnf"));
    }

    #[test]
    fn relative_paths_never_leave_the_root() {
        assert_eq!(join_rel("etc/asterisk", "../../../x"), "x");
        assert_eq!(join_rel("etc/asterisk", "/etc/ssh/a"), "etc/ssh/a");
        assert_eq!(
            join_rel("etc/asterisk", "./sip.conf"),
            "etc/asterisk/sip.conf"
        );
    }
}
