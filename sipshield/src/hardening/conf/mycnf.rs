//! MySQL/MariaDB option files: `[group]` sections, `option` or
//! `option = value`, `#`/`;` comments, `!include FILE` and `!includedir DIR`
//! (its `*.cnf` files in name order). Option names treat `-` and `_` alike and
//! ignore a `loose-` prefix; a later value wins, as in mysqld.

use std::collections::HashSet;

use super::{dir_of, join_rel, ConfError, HostRoot, Origin, Unreadable};

/// Option files mysqld/mariadbd read, in order, relative to the root.
pub const DEFAULT_FILES: [&str; 2] = ["etc/my.cnf", "etc/mysql/my.cnf"];
/// Read when /etc/mysql/my.cnf itself is missing (a broken alternatives link).
const FALLBACK_FILES: [&str; 2] = ["etc/mysql/mariadb.cnf", "etc/mysql/mysql.cnf"];
const FALLBACK_DIRS: [&str; 3] = [
    "etc/mysql/conf.d",
    "etc/mysql/mariadb.conf.d",
    "etc/mysql/mysql.conf.d",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionEntry {
    /// Lower-cased group name (`mysqld`, `server`, `mariadb-10.6`, ...).
    pub group: String,
    /// Normalized name: lower case, `_` → `-`, no `loose-` prefix.
    pub name: String,
    pub value: Option<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptionFiles {
    /// Files read, in order.
    pub files: Vec<String>,
    pub entries: Vec<OptionEntry>,
    /// Included files and drop-ins that could not be read.
    pub unreadable: Vec<Unreadable>,
}

impl OptionFiles {
    /// Reads the server's option files under the root. `NotFound` when no
    /// MySQL/MariaDB option file exists at all.
    pub fn read(host: &HostRoot) -> Result<OptionFiles, ConfError> {
        let mut conf = OptionFiles::default();
        let mut visited = HashSet::new();
        let mut errors = Vec::new();
        let mut read_any =
            |conf: &mut OptionFiles, rel: &str, visited: &mut HashSet<String>| match conf
                .read_file(host, rel, visited)
            {
                Ok(()) => true,
                Err(ConfError::NotFound(_)) => false,
                Err(e) => {
                    errors.push(e);
                    false
                }
            };
        read_any(&mut conf, DEFAULT_FILES[0], &mut visited);
        if !read_any(&mut conf, DEFAULT_FILES[1], &mut visited) {
            let mut fallback = false;
            for f in FALLBACK_FILES {
                fallback |= read_any(&mut conf, f, &mut visited);
            }
            if !fallback {
                for dir in FALLBACK_DIRS {
                    conf.read_dir(host, dir, None, &mut visited);
                }
            }
        }
        if conf.files.is_empty() {
            return Err(errors
                .into_iter()
                .next()
                .unwrap_or_else(|| ConfError::NotFound("etc/mysql/my.cnf".into())));
        }
        Ok(conf)
    }

    fn read_file(
        &mut self,
        host: &HostRoot,
        rel: &str,
        visited: &mut HashSet<String>,
    ) -> Result<(), ConfError> {
        if !visited.insert(rel.to_string()) {
            return Ok(());
        }
        let text = host.read(rel)?;
        self.files.push(rel.to_string());
        self.parse(host, rel, &text, visited);
        Ok(())
    }

    /// The `*.cnf` files of a directory in name order, as `!includedir`
    /// reads them. An unreadable one is noted; the others still tell what
    /// the server would do.
    fn read_dir(
        &mut self,
        host: &HostRoot,
        dir: &str,
        from: Option<&Origin>,
        visited: &mut HashSet<String>,
    ) {
        for name in host.list_dir(dir) {
            if name.ends_with(".cnf") {
                let rel = join_rel(dir, &name);
                if let Err(e) = self.read_file(host, &rel, visited) {
                    self.unreadable.push(Unreadable::new(&rel, from, &e));
                }
            }
        }
    }

    fn parse(&mut self, host: &HostRoot, file: &str, text: &str, visited: &mut HashSet<String>) {
        let mut group = String::new();
        for (idx, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let origin = Origin {
                file: file.to_string(),
                line: u32::try_from(idx + 1).unwrap_or(u32::MAX),
            };
            if let Some(arg) = line.strip_prefix("!includedir") {
                let dir = join_rel(&dir_of(file), arg.trim());
                self.read_dir(host, &dir, Some(&origin), visited);
                continue;
            }
            if let Some(arg) = line.strip_prefix("!include") {
                let rel = join_rel(&dir_of(file), arg.trim());
                if let Err(e) = self.read_file(host, &rel, visited) {
                    self.unreadable
                        .push(Unreadable::new(&rel, Some(&origin), &e));
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                if let Some(end) = rest.find(']') {
                    group = rest[..end].trim().to_ascii_lowercase();
                }
                continue;
            }
            let line = strip_trailing_comment(line);
            let (name, value) = match line.find('=') {
                Some(i) => (line[..i].trim(), Some(unquote(line[i + 1..].trim()))),
                None => (line.trim(), None),
            };
            self.entries.push(OptionEntry {
                group: group.clone(),
                name: normalize_name(name),
                value,
                origin,
            });
        }
    }

    /// Entries in groups the server reads.
    pub fn server_entries(&self) -> impl Iterator<Item = &OptionEntry> {
        self.entries.iter().filter(|e| is_server_group(&e.group))
    }

    /// The effective (last) server value of an option.
    pub fn server_value(&self, name: &str) -> Option<&OptionEntry> {
        let name = normalize_name(name);
        self.server_entries().filter(|e| e.name == name).last()
    }

    pub fn has_server_group(&self) -> bool {
        self.entries.iter().any(|e| is_server_group(&e.group))
    }
}

/// Groups mysqld and mariadbd read (a versioned group like `mysqld-8.0` is
/// read by that version only, which an audit cannot tell, so it counts).
pub fn is_server_group(group: &str) -> bool {
    matches!(group, "mysqld" | "server" | "mariadb" | "mariadbd")
        || group.starts_with("mysqld-")
        || group.starts_with("mariadb-")
        || group.starts_with("mariadbd-")
}

fn normalize_name(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase().replace('_', "-");
    n.strip_prefix("loose-").map(str::to_string).unwrap_or(n)
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

fn strip_trailing_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"') | (None, '\'') => quote = Some(c),
            (None, '#') => return line[..i].trim_end(),
            _ => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;

    #[test]
    fn includedir_reads_cnf_files_in_name_order_and_records_unreadable_ones() {
        let (_dir, host) = testing::host(&[
            (
                "etc/mysql/my.cnf",
                Some("[mysqld]\nbind-address = 0.0.0.0\n!includedir /etc/mysql/conf.d/\n"),
            ),
            (
                "etc/mysql/conf.d/50-server.cnf",
                Some("[mysqld]\nbind-address = 10.0.0.5\n"),
            ),
            (
                "etc/mysql/conf.d/90-local.cnf",
                Some("[mysqld]\nbind_address=127.0.0.1\n"),
            ),
            (
                "etc/mysql/conf.d/README",
                Some("[mysqld]\nbind-address = 0.0.0.0\n"),
            ),
            ("etc/mysql/conf.d/70-broken.cnf", None),
        ]);
        let conf = OptionFiles::read(&host).expect("read");
        let e = conf.server_value("bind-address").expect("set");
        assert_eq!(e.value.as_deref(), Some("127.0.0.1"));
        assert_eq!(e.origin.file, "etc/mysql/conf.d/90-local.cnf");
        assert_eq!(conf.unreadable.len(), 1);
        assert_eq!(conf.unreadable[0].file, "etc/mysql/conf.d/70-broken.cnf");
        assert_eq!(conf.unreadable[0].from.as_ref().map(|o| o.line), Some(3));
    }

    #[test]
    fn later_values_win_and_names_are_normalized() {
        let host = HostRoot::new(std::path::Path::new("/nonexistent-root"));
        let mut conf = OptionFiles::default();
        let mut visited = HashSet::new();
        conf.parse(
            &host,
            "etc/mysql/my.cnf",
            "[client]\nbind-address=1.2.3.4\n[mysqld]\nbind_address = 127.0.0.1\n\
             # bind-address = 0.0.0.0\n[mariadb-10.6]\nloose-bind-address = \"0.0.0.0\" # all\n",
            &mut visited,
        );
        let e = conf.server_value("bind-address").expect("set");
        assert_eq!(e.value.as_deref(), Some("0.0.0.0"));
        assert_eq!(e.origin.line, 7);
    }
}
