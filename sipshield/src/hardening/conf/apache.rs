//! Apache httpd configuration: directives with their enclosing containers
//! (`<VirtualHost>`, `<Directory>`, `<Location>`, `<IfModule>`, ...),
//! `Include`/`IncludeOptional` with globs relative to the server root,
//! `#` comment lines and `\` line continuations.

use std::collections::HashSet;

use super::{join_rel, ConfError, HostRoot, Origin, Unreadable};

/// (server root, main file) for Debian/Ubuntu and for RHEL-like layouts.
pub const LAYOUTS: [(&str, &str); 2] = [
    ("etc/apache2", "etc/apache2/apache2.conf"),
    ("etc/httpd", "etc/httpd/conf/httpd.conf"),
];

/// The stock main file of each layout, for trees that have its parts but
/// not itself: (server root, main file, directories that mark the layout,
/// the includes and listeners the stock file has).
const ASSUMED_MAIN: [(&str, &str, &[&str], &str); 2] = [
    (
        "etc/apache2",
        "etc/apache2/apache2.conf",
        &["sites-enabled", "conf-enabled", "mods-enabled"],
        "IncludeOptional mods-enabled/*.load\nIncludeOptional mods-enabled/*.conf\n\
         IncludeOptional ports.conf\nIncludeOptional conf-enabled/*.conf\n\
         IncludeOptional sites-enabled/*.conf\n",
    ),
    (
        "etc/httpd",
        "etc/httpd/conf/httpd.conf",
        &["conf.d", "conf.modules.d"],
        "Listen 80\nIncludeOptional conf.modules.d/*.conf\n\
         DocumentRoot /var/www/html\nIncludeOptional conf.d/*.conf\n",
    ),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Lower-cased: `directory`, `location`, `virtualhost`, `ifmodule`, ...
    pub kind: String,
    pub arg: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased directive name.
    pub name: String,
    pub args: Vec<String>,
    pub origin: Origin,
    /// Enclosing containers, outermost first.
    pub within: Vec<Container>,
}

impl Directive {
    pub fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(String::as_str)
    }

    /// The innermost container of one of these kinds.
    pub fn container(&self, kinds: &[&str]) -> Option<&Container> {
        self.within
            .iter()
            .rev()
            .find(|c| kinds.contains(&c.kind.as_str()))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApacheConf {
    pub main_file: String,
    pub directives: Vec<Directive>,
    /// Included files that could not be read.
    pub unreadable: Vec<Unreadable>,
}

impl ApacheConf {
    pub fn read(host: &HostRoot) -> Result<ApacheConf, ConfError> {
        let mut first_error = None;
        for (server_root, main) in LAYOUTS {
            match host.read(main) {
                Ok(text) => {
                    let mut conf = ApacheConf {
                        main_file: main.to_string(),
                        directives: Vec::new(),
                        unreadable: Vec::new(),
                    };
                    let mut visited = HashSet::from([main.to_string()]);
                    let mut stack = Vec::new();
                    conf.parse(host, server_root, main, &text, &mut stack, &mut visited);
                    return Ok(conf);
                }
                Err(ConfError::NotFound(_)) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if first_error.is_none() {
            // No main file, but the parts it would include: a partial copy
            // of /etc or a container image. The distribution's stock main
            // file is assumed, so those parts are still checked.
            for (server_root, main, markers, stock) in ASSUMED_MAIN {
                if markers
                    .iter()
                    .any(|m| host.is_dir(&join_rel(server_root, m)))
                {
                    let mut conf = ApacheConf {
                        main_file: main.to_string(),
                        directives: Vec::new(),
                        unreadable: Vec::new(),
                    };
                    let mut text = stock.to_string();
                    if !host.exists(&join_rel(server_root, "ports.conf"))
                        && server_root == "etc/apache2"
                    {
                        // Debian's stock ports.conf.
                        text.push_str("Listen 80\n");
                    }
                    let mut visited = HashSet::from([main.to_string()]);
                    let mut stack = Vec::new();
                    conf.parse(host, server_root, main, &text, &mut stack, &mut visited);
                    return Ok(conf);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| ConfError::NotFound(LAYOUTS[0].1.to_string())))
    }

    /// Parses one file's text; includes are read from `host`.
    pub fn parse_str(host: &HostRoot, server_root: &str, file: &str, text: &str) -> ApacheConf {
        let mut conf = ApacheConf {
            main_file: file.to_string(),
            directives: Vec::new(),
            unreadable: Vec::new(),
        };
        let mut visited = HashSet::from([file.to_string()]);
        let mut stack = Vec::new();
        conf.parse(host, server_root, file, text, &mut stack, &mut visited);
        conf
    }

    fn parse(
        &mut self,
        host: &HostRoot,
        server_root: &str,
        file: &str,
        text: &str,
        stack: &mut Vec<Container>,
        visited: &mut HashSet<String>,
    ) {
        let mut pending = String::new();
        let mut start_line = 0usize;
        for (idx, raw) in text.lines().enumerate() {
            if pending.is_empty() {
                start_line = idx + 1;
            }
            if let Some(cont) = raw.strip_suffix('\\') {
                pending.push_str(cont);
                pending.push(' ');
                continue;
            }
            pending.push_str(raw);
            let line = std::mem::take(&mut pending);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let origin = Origin {
                file: file.to_string(),
                line: u32::try_from(start_line).unwrap_or(u32::MAX),
            };
            if let Some(close) = line.strip_prefix("</") {
                let kind = close.trim_end_matches('>').trim().to_ascii_lowercase();
                if let Some(pos) = stack.iter().rposition(|c| c.kind == kind) {
                    stack.truncate(pos);
                }
                continue;
            }
            if let Some(open) = line.strip_prefix('<') {
                let open = open.trim_end().trim_end_matches('>');
                let (kind, arg) = match open.find(char::is_whitespace) {
                    Some(i) => (&open[..i], open[i..].trim()),
                    None => (open, ""),
                };
                stack.push(Container {
                    kind: kind.to_ascii_lowercase(),
                    arg: arg.trim_matches('"').to_string(),
                    origin,
                });
                continue;
            }
            let words = split_args(line);
            let Some((name, args)) = words.split_first() else {
                continue;
            };
            let name = name.to_ascii_lowercase();
            if name == "include" || name == "includeoptional" {
                for pattern in args {
                    let files = host.glob(server_root, pattern);
                    let wildcard = pattern.contains(['*', '?', '[']);
                    if files.is_empty() && name == "include" && !wildcard {
                        self.unreadable.push(Unreadable {
                            file: join_rel(server_root, pattern),
                            from: Some(origin.clone()),
                            reason: "named by Include but not found (Apache refuses to start)"
                                .to_string(),
                        });
                    }
                    for rel in files {
                        if host.is_dir(&rel) {
                            // `Include dir/` reads every file in it.
                            for f in host.list_dir(&rel) {
                                let path = join_rel(&rel, &f);
                                self.include(host, server_root, &path, &origin, stack, visited);
                            }
                        } else {
                            self.include(host, server_root, &rel, &origin, stack, visited);
                        }
                    }
                }
                continue;
            }
            self.directives.push(Directive {
                name,
                args: args.to_vec(),
                origin,
                within: stack.clone(),
            });
        }
    }

    fn include(
        &mut self,
        host: &HostRoot,
        server_root: &str,
        rel: &str,
        from: &Origin,
        stack: &mut Vec<Container>,
        visited: &mut HashSet<String>,
    ) {
        if !visited.insert(rel.to_string()) {
            return;
        }
        match host.read(rel) {
            Ok(text) => {
                let depth = stack.len();
                self.parse(host, server_root, rel, &text, stack, visited);
                // An unbalanced included file must not leak containers.
                stack.truncate(depth);
            }
            Err(e) => self.unreadable.push(Unreadable::new(rel, Some(from), &e)),
        }
    }

    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Directive> + 'a {
        self.directives
            .iter()
            .filter(move |d| d.name.eq_ignore_ascii_case(name))
    }
}

/// Whitespace-separated words; double-quoted words may contain spaces.
fn split_args(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;

    #[test]
    fn includes_keep_their_containers_and_missing_ones_are_recorded() {
        let (_dir, host) = testing::host(&[
            (
                "etc/apache2/apache2.conf",
                Some(
                    "Include ports.conf\nInclude gone.conf\nIncludeOptional conf-enabled/*.conf\n\
                     IncludeOptional maybe.conf\n<VirtualHost *:80>\nInclude vhost.inc\n</VirtualHost>\n",
                ),
            ),
            ("etc/apache2/ports.conf", Some("Listen 80\n")),
            ("etc/apache2/vhost.inc", Some("<Location /admin>\nRequire local\n")),
        ]);
        let conf = ApacheConf::read(&host).expect("read");
        let require = conf.named("require").next().expect("require");
        let kinds: Vec<&str> = require.within.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["virtualhost", "location"]);
        let unreadable: Vec<&str> = conf.unreadable.iter().map(|u| u.file.as_str()).collect();
        assert_eq!(
            unreadable,
            ["etc/apache2/gone.conf"],
            "IncludeOptional may miss"
        );
    }

    #[test]
    fn directives_know_their_containers() {
        let host = HostRoot::new(std::path::Path::new("/nonexistent-root"));
        let conf = ApacheConf::parse_str(
            &host,
            "etc/apache2",
            "etc/apache2/apache2.conf",
            "Listen 80\n<VirtualHost *:80>\n  <Directory \"/var/www/html/admin\">\n    \
             # Require ip 10.0.0.0/8\n    Require all \\\n granted\n  </Directory>\n</VirtualHost>\n",
        );
        let require: Vec<_> = conf.named("require").collect();
        assert_eq!(require.len(), 1);
        assert_eq!(require[0].args, vec!["all", "granted"]);
        assert_eq!(require[0].origin.line, 5);
        let dir = require[0]
            .container(&["directory"])
            .expect("in a Directory");
        assert_eq!(dir.arg, "/var/www/html/admin");
    }
}
