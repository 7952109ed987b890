//! Asterisk `.conf` files as Asterisk's own config loader reads them:
//! `[section]`, templates `[name](!)`, inheritance `[name](tpl1,tpl2)` (the
//! templates' values are copied in order, then the section's own follow and
//! win), `[name](+)` to add to an earlier section, `#include`/`#tryinclude`
//! (relative to /etc/asterisk, globs allowed; a file never includes itself
//! again further down its own include chain, so cycles end), `;` comments
//! with `\;` as a literal, `;-- --;` block comments, and both `=` and `=>`.

use super::{join_rel, ConfError, HostRoot, IncludeChain, Origin, Unreadable};

/// Where Asterisk looks for its configuration, relative to the root.
pub const CONFIG_DIR: &str = "etc/asterisk";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// As written (Asterisk compares keys case-insensitively).
    pub key: String,
    pub value: String,
    /// Written with `=>` (dialplan `exten =>`, `include =>`, `register =>`).
    pub arrow: bool,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    /// Declared with `(!)`: not an object itself, only inherited from.
    pub template: bool,
    /// Templates named in the header, in order.
    pub templates: Vec<String>,
    /// Inherited values first, then the section's own, in file order.
    pub values: Vec<Value>,
    pub origin: Origin,
}

impl Section {
    /// The effective value of `key`: the last one written (own values come
    /// after inherited ones, so they override).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values
            .iter()
            .rev()
            .find(|v| v.key.eq_ignore_ascii_case(key))
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).map(|v| v.value.as_str())
    }

    /// Every value of a key that may repeat (`permit`, `include`, `exten`).
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.values
            .iter()
            .filter(move |v| v.key.eq_ignore_ascii_case(key))
    }

    pub fn is(&self, key: &str, expected: &str) -> bool {
        self.get_str(key)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AsteriskConf {
    /// The file asked for, relative to the root.
    pub file: String,
    pub sections: Vec<Section>,
    /// Included files that could not be read, and `#include`s (not
    /// `#tryinclude`) that name no file.
    pub unreadable: Vec<Unreadable>,
}

impl AsteriskConf {
    /// Reads `name` (e.g. `sip.conf`) from /etc/asterisk under the root,
    /// following includes.
    pub fn read(host: &HostRoot, name: &str) -> Result<AsteriskConf, ConfError> {
        let file = join_rel(CONFIG_DIR, name);
        let text = host.read(&file)?;
        let mut parser = Parser {
            host,
            conf: AsteriskConf {
                file: file.clone(),
                ..AsteriskConf::default()
            },
            current: None,
            chain: IncludeChain::new(&file),
        };
        parser.parse_text(&file, &text);
        Ok(parser.conf)
    }

    /// Parses text as if it were the file `file` (no includes are followed
    /// unless `host` is given). For unit tests and one-off snippets.
    pub fn parse_str(file: &str, text: &str, host: &HostRoot) -> AsteriskConf {
        let mut parser = Parser {
            host,
            conf: AsteriskConf {
                file: file.to_string(),
                ..AsteriskConf::default()
            },
            current: None,
            chain: IncludeChain::new(file),
        };
        parser.parse_text(file, text);
        parser.conf
    }

    /// The first non-template section with this name.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.objects().find(|s| s.name == name)
    }

    /// Sections that are objects, not templates.
    pub fn objects(&self) -> impl Iterator<Item = &Section> {
        self.sections.iter().filter(|s| !s.template)
    }

    /// Whether a non-template section of that name exists.
    pub fn has_section(&self, name: &str) -> bool {
        self.section(name).is_some()
    }
}

struct Parser<'h> {
    host: &'h HostRoot,
    conf: AsteriskConf,
    /// Index of the section values go to; includes continue it, as in Asterisk.
    current: Option<usize>,
    chain: IncludeChain,
}

impl Parser<'_> {
    fn parse_text(&mut self, file: &str, text: &str) {
        let mut in_block_comment = false;
        for (idx, raw) in text.lines().enumerate() {
            let line_no = u32::try_from(idx + 1).unwrap_or(u32::MAX);
            let origin = Origin {
                file: file.to_string(),
                line: line_no,
            };
            let line = strip_comments(raw, &mut in_block_comment);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(directive) = line.strip_prefix('#') {
                self.directive(directive, &origin);
            } else if line.starts_with('[') {
                self.header(line, origin);
            } else if let Some(value) = parse_assignment(line, origin) {
                if let Some(i) = self.current {
                    self.conf.sections[i].values.push(value);
                }
            }
        }
    }

    fn directive(&mut self, directive: &str, origin: &Origin) {
        let (word, arg) = split_word(directive);
        let optional = match word.to_ascii_lowercase().as_str() {
            "include" => false,
            "tryinclude" => true,
            _ => return, // #exec runs a program: never done by an audit.
        };
        let arg = arg
            .trim()
            .trim_matches(|c| c == '"' || c == '<' || c == '>')
            .trim();
        if arg.is_empty() {
            return;
        }
        let files = self.host.glob(CONFIG_DIR, arg);
        if files.is_empty() && !optional && !arg.contains(['*', '?', '[']) {
            self.conf.unreadable.push(Unreadable {
                file: join_rel(CONFIG_DIR, arg),
                from: Some(origin.clone()),
                reason: "named by #include but not found (#tryinclude is for optional files)"
                    .to_string(),
            });
        }
        for rel in files {
            if let Err(refused) = self.chain.enter(&rel) {
                if let Some(reason) = refused.reason() {
                    self.conf.unreadable.push(Unreadable {
                        file: rel,
                        from: Some(origin.clone()),
                        reason,
                    });
                }
                continue;
            }
            match self.host.read(&rel) {
                Ok(text) => self.parse_text(&rel, &text),
                Err(e) => self
                    .conf
                    .unreadable
                    .push(Unreadable::new(&rel, Some(origin), &e)),
            }
            self.chain.leave();
        }
    }

    fn header(&mut self, line: &str, origin: Origin) {
        let Some(close) = line.find(']') else {
            return;
        };
        let name = line[1..close].trim().to_string();
        let rest = line[close + 1..].trim();
        let mut template = false;
        let mut append = false;
        let mut templates = Vec::new();
        if let Some(opts) = rest.strip_prefix('(') {
            let opts = opts.split(')').next().unwrap_or("");
            for opt in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                match opt {
                    "!" => template = true,
                    "+" => append = true,
                    tpl => templates.push(tpl.to_string()),
                }
            }
        }
        if append {
            if let Some(i) = self.conf.sections.iter().rposition(|s| s.name == name) {
                self.current = Some(i);
                return;
            }
        }
        let mut values = Vec::new();
        for tpl in &templates {
            let base = self
                .conf
                .sections
                .iter()
                .rev()
                .find(|s| s.template && s.name == *tpl)
                .or_else(|| self.conf.sections.iter().rev().find(|s| s.name == *tpl));
            if let Some(base) = base {
                values.extend(base.values.iter().cloned());
            }
        }
        self.conf.sections.push(Section {
            name,
            template,
            templates,
            values,
            origin,
        });
        self.current = Some(self.conf.sections.len() - 1);
    }
}

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(|c: char| c.is_whitespace() || c == '"' || c == '<') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// `key = value` or `key => value`; `None` for a line Asterisk would reject.
fn parse_assignment(line: &str, origin: Origin) -> Option<Value> {
    let eq = line.find('=')?;
    let key = line[..eq].trim();
    if key.is_empty() {
        return None;
    }
    let after = &line[eq + 1..];
    let (arrow, value) = match after.strip_prefix('>') {
        Some(v) => (true, v),
        None => (false, after),
    };
    Some(Value {
        key: key.to_string(),
        value: value.trim().to_string(),
        arrow,
        origin,
    })
}

/// Removes `;` comments (keeping `\;` as a literal `;`) and `;-- ... --;`
/// block comments, which may span lines.
fn strip_comments(raw: &str, in_block: &mut bool) -> String {
    let mut out = String::with_capacity(raw.len());
    let chars: Vec<char> = raw.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if *in_block {
            if chars[i] == '-' && chars.get(i + 1) == Some(&'-') && chars.get(i + 2) == Some(&';') {
                *in_block = false;
                i += 3;
            } else {
                i += 1;
            }
            continue;
        }
        match chars[i] {
            '\\' if chars.get(i + 1) == Some(&';') => {
                out.push(';');
                i += 2;
            }
            ';' => {
                if chars.get(i + 1) == Some(&'-') && chars.get(i + 2) == Some(&'-') {
                    *in_block = true;
                    i += 3;
                } else {
                    break;
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;

    fn parse(text: &str) -> AsteriskConf {
        let host = HostRoot::new(std::path::Path::new("/nonexistent-root"));
        AsteriskConf::parse_str("etc/asterisk/sip.conf", text, &host)
    }

    #[test]
    fn templates_are_inherited_in_order_and_overridden_by_the_section() {
        let conf = parse(
            "[base](!)\nsecret = one\nqualify = no\n[nat](!)\nqualify = yes\nnat = force_rport\n\
             [6001](base,nat)\nsecret = two ; own value wins\n",
        );
        let peer = conf.section("6001").expect("peer");
        assert_eq!(peer.get_str("secret"), Some("two"));
        assert_eq!(peer.get_str("qualify"), Some("yes"));
        assert_eq!(peer.get("secret").map(|v| v.origin.line), Some(8));
        assert!(conf.section("base").is_none(), "templates are not objects");
    }

    #[test]
    fn comments_escapes_and_arrows() {
        let conf = parse(
            "[general]\n;allowguest = no\nsecret = a\\;b ; comment\n;-- block\nallowguest = no\n--;\n\
             register => user:pw@host\n",
        );
        let g = conf.section("general").expect("general");
        assert_eq!(g.get_str("allowguest"), None);
        assert_eq!(g.get_str("secret"), Some("a;b"));
        let reg = g.get("register").expect("register");
        assert!(reg.arrow);
        assert_eq!(reg.value, "user:pw@host");
    }

    #[test]
    fn files_that_include_each_other_by_glob_end_and_are_all_read() {
        let mut files: Vec<(String, String)> = (0..8)
            .map(|i| {
                (
                    format!("etc/asterisk/peers.d/{i}.conf"),
                    format!("#include peers.d/*.conf\n[peer{i}]\nsecret = s{i}\n"),
                )
            })
            .collect();
        files.push((
            "etc/asterisk/sip.conf".into(),
            "[general]\n#include peers.d/*.conf\n".into(),
        ));
        let refs: Vec<(&str, Option<&str>)> = files
            .iter()
            .map(|(p, t)| (p.as_str(), Some(t.as_str())))
            .collect();
        let (_dir, host) = testing::host(&refs);
        let started = std::time::Instant::now();
        let conf = AsteriskConf::read(&host, "sip.conf").expect("read");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        for i in 0..8 {
            let peer = conf.section(&format!("peer{i}")).expect("peer read");
            assert_eq!(peer.get_str("secret"), Some(format!("s{i}").as_str()));
        }
        assert!(
            conf.unreadable
                .iter()
                .any(|u| u.reason.contains("more than")),
            "the include budget is reported, not silently hit"
        );
    }

    #[test]
    fn a_file_included_in_two_sections_counts_in_both() {
        let (_dir, host) = testing::host(&[
            (
                "etc/asterisk/sip.conf",
                Some("[6001]\n#include phone.inc\n[6002]\n#include phone.inc\n"),
            ),
            (
                "etc/asterisk/phone.inc",
                Some("type = friend\nqualify = yes\n"),
            ),
        ]);
        let conf = AsteriskConf::read(&host, "sip.conf").expect("read");
        for name in ["6001", "6002"] {
            let peer = conf.section(name).expect("peer");
            assert_eq!(peer.get_str("qualify"), Some("yes"), "[{name}]");
            assert_eq!(
                peer.get("qualify").map(|v| v.origin.file.as_str()),
                Some("etc/asterisk/phone.inc")
            );
        }
    }

    #[test]
    fn unreadable_and_missing_includes_are_recorded_tryinclude_is_optional() {
        let (_dir, host) = testing::host(&[
            (
                "etc/asterisk/sip.conf",
                Some(
                    "[general]\n#include sip_secret.conf\n#include \"sip_gone.conf\"\n\
                     #tryinclude sip_optional.conf\nallowguest = no\n",
                ),
            ),
            ("etc/asterisk/sip_secret.conf", None),
        ]);
        let conf = AsteriskConf::read(&host, "sip.conf").expect("read");
        let files: Vec<(&str, u32)> = conf
            .unreadable
            .iter()
            .map(|u| (u.file.as_str(), u.from.as_ref().map_or(0, |o| o.line)))
            .collect();
        assert_eq!(
            files,
            [
                ("etc/asterisk/sip_secret.conf", 2),
                ("etc/asterisk/sip_gone.conf", 3)
            ]
        );
        assert_eq!(
            conf.section("general")
                .and_then(|g| g.get_str("allowguest")),
            Some("no"),
            "the rest of the file is still read"
        );
    }

    #[test]
    fn appending_to_an_earlier_section() {
        let conf =
            parse("[general]\nallowguest = yes\n[peer]\nx=1\n[general](+)\nallowguest = no\n");
        assert_eq!(
            conf.section("general")
                .and_then(|s| s.get_str("allowguest")),
            Some("no")
        );
    }
}
