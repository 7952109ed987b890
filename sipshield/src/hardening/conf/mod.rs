//! Readers for the configuration formats the checks look at. Each keeps the
//! file (relative to the audited root) and line of every value, so a finding
//! can point at the exact line to change.

use std::{
    os::unix::fs::OpenOptionsExt,
    path::{Component, Path, PathBuf},
};

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

/// A file a configuration pulls in (an include) that could not be read. The
/// checks still run on the rest, and the report says what they missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The included file, relative to the root.
    pub file: String,
    /// The include line that names it; `None` for a file read on its own
    /// (a drop-in directory the program reads by default).
    pub from: Option<Origin>,
    pub reason: String,
}

impl Unreadable {
    pub(crate) fn new(file: &str, from: Option<&Origin>, err: &ConfError) -> Unreadable {
        let reason = match err {
            ConfError::NotFound(_) => "not found".to_string(),
            ConfError::Io { source, .. } => source.to_string(),
        };
        Unreadable {
            file: file.to_string(),
            from: from.cloned(),
            reason,
        }
    }
}

/// Deepest include nesting followed (Asterisk stops at 10 levels too).
const MAX_INCLUDE_DEPTH: usize = 10;
/// Most files read for one configuration, so files that include each other
/// through globs cannot make a parse take forever.
const MAX_INCLUDED_FILES: usize = 1000;

/// Keeps include-following finite. A file is not re-entered while it is
/// being read (a cycle; the program itself would just nest until its own
/// limit, adding nothing new), nesting stops at [`MAX_INCLUDE_DEPTH`], and
/// at most [`MAX_INCLUDED_FILES`] files are read. The same file included
/// twice side by side is read twice, as the programs do.
#[derive(Debug)]
pub(crate) struct IncludeChain {
    open: Vec<String>,
    reads: usize,
}

/// Why an include is not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotFollowed {
    /// The file is already being read further up the chain.
    Cycle,
    TooDeep,
    TooMany,
}

impl NotFollowed {
    /// The reason to report, `None` for a cycle (nothing is lost).
    pub(crate) fn reason(self) -> Option<String> {
        match self {
            NotFollowed::Cycle => None,
            NotFollowed::TooDeep => Some(format!(
                "not read: includes nested deeper than {MAX_INCLUDE_DEPTH} levels"
            )),
            NotFollowed::TooMany => Some(format!(
                "not read: more than {MAX_INCLUDED_FILES} files included"
            )),
        }
    }
}

impl IncludeChain {
    /// A chain whose outermost file is `top`.
    pub(crate) fn new(top: &str) -> IncludeChain {
        IncludeChain {
            open: vec![top.to_string()],
            reads: 1,
        }
    }

    /// Enters `file`; the caller reads it, then calls [`IncludeChain::leave`].
    pub(crate) fn enter(&mut self, file: &str) -> Result<(), NotFollowed> {
        if self.open.iter().any(|f| f == file) {
            return Err(NotFollowed::Cycle);
        }
        if self.open.len() > MAX_INCLUDE_DEPTH {
            return Err(NotFollowed::TooDeep);
        }
        if self.reads >= MAX_INCLUDED_FILES {
            return Err(NotFollowed::TooMany);
        }
        self.reads += 1;
        self.open.push(file.to_string());
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.open.pop();
    }
}

/// Links followed per path at most (the kernel's own limit, MAXSYMLINKS).
const MAX_SYMLINK_HOPS: usize = 40;

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
        self.resolve(rel)
            .is_some_and(|r| std::fs::symlink_metadata(self.path(&r)).is_ok())
    }

    pub fn is_dir(&self, rel: &str) -> bool {
        self.resolve(rel)
            .is_some_and(|r| std::fs::symlink_metadata(self.path(&r)).is_ok_and(|m| m.is_dir()))
    }

    /// Follows symlinks inside the audited tree: an absolute link target
    /// (Debian's `my.cnf -> /etc/alternatives/my.cnf`) is looked up below
    /// the root, not on the auditing host. `None` past 40 links (a loop, or
    /// a chain made to outlast us): the rest is never left to the kernel,
    /// which would resolve it on the auditing host.
    pub fn resolve(&self, rel: &str) -> Option<String> {
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
            if hops > MAX_SYMLINK_HOPS {
                return None;
            }
            done.pop();
            let target = target.to_string_lossy().into_owned();
            let base = done.join("/");
            let mut rest: Vec<String> = normalize(&join_rel(&base, &target));
            done.clear();
            pending.extend(rest.drain(..).rev());
        }
        Some(done.join("/"))
    }

    /// True for a file or a symlink, even a dangling one (an enabled systemd
    /// unit in an image often points at a path only valid on the host).
    pub fn has_entry(&self, rel: &str) -> bool {
        std::fs::symlink_metadata(self.path(rel)).is_ok()
    }

    pub fn read(&self, rel: &str) -> Result<String, ConfError> {
        let rel = join_rel("", rel);
        let Some(resolved) = self.resolve(&rel) else {
            return Err(ConfError::Io {
                file: rel,
                source: std::io::Error::from_raw_os_error(libc::ELOOP),
            });
        };
        // Every link was resolved above: the last component must not be one
        // now (a link swapped in meanwhile is not followed).
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.path(&resolved));
        let read = opened.and_then(|mut f| {
            let mut bytes: Vec<u8> = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut bytes).map(|_| bytes)
        });
        match read {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ConfError::NotFound(rel)),
            Err(source) => Err(ConfError::Io { file: rel, source }),
        }
    }

    /// Names in a directory (relative to the root), sorted; empty when absent.
    pub fn list_dir(&self, rel: &str) -> Vec<String> {
        let Some(resolved) = self.resolve(rel) else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(self.path(&resolved)) else {
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

/// Fake hosts for the parsers' tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::HostRoot;

    /// A temporary root holding `files` (path relative to the root, text).
    /// A text of `None` makes a directory where a file is expected, which no
    /// one, root included, can read as a file.
    pub(crate) fn host(files: &[(&str, Option<&str>)]) -> (tempfile::TempDir, HostRoot) {
        let dir = tempfile::tempdir().expect("temp dir");
        for (rel, text) in files {
            let path = dir.path().join(rel);
            match text {
                Some(text) => {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).expect("mkdir");
                    }
                    std::fs::write(&path, text).expect("write");
                }
                None => std::fs::create_dir_all(&path).expect("mkdir"),
            }
        }
        let host = HostRoot::new(dir.path());
        (dir, host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_include_chain_refuses_cycles_depth_and_volume() {
        let mut chain = IncludeChain::new("a");
        assert_eq!(chain.enter("a"), Err(NotFollowed::Cycle));
        assert_eq!(chain.enter("b"), Ok(()));
        assert_eq!(chain.enter("a"), Err(NotFollowed::Cycle), "a is still open");
        chain.leave();
        assert_eq!(chain.enter("b"), Ok(()), "b again, side by side");
        chain.leave();
        for i in 0..MAX_INCLUDE_DEPTH {
            assert_eq!(chain.enter(&format!("d{i}")), Ok(()));
        }
        assert_eq!(chain.enter("deeper"), Err(NotFollowed::TooDeep));
        let mut chain = IncludeChain::new("top");
        for i in 1..MAX_INCLUDED_FILES {
            assert_eq!(chain.enter(&format!("f{i}")), Ok(()));
            chain.leave();
        }
        assert_eq!(chain.enter("one-more"), Err(NotFollowed::TooMany));
        assert!(NotFollowed::Cycle.reason().is_none());
        assert!(NotFollowed::TooMany.reason().is_some());
    }

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
