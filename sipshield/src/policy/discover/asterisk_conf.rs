//! Just enough of Asterisk's `.conf` format to find trunk hosts: sections
//! with templates, `key = value` and `key => value`, `;` and `;-- --;`
//! comments, `#include` / `#tryinclude` (relative to the config directory,
//! with `*` and `?` wildcards).

use std::{
    fs, io,
    path::{Path, PathBuf},
};

/// Includes nested deeper than this are ignored (and reported): a loop.
const MAX_INCLUDE_DEPTH: usize = 10;
/// Template chains longer than this are cut (and a loop ends).
const MAX_TEMPLATE_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub key: String,
    pub value: String,
    /// File name, for notes.
    pub file: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Section {
    pub name: String,
    /// Declared with `(!)`: a template, not an object.
    pub template: bool,
    pub parents: Vec<String>,
    pub entries: Vec<Entry>,
}

/// Reads `name` from `config_dir` with its includes. `None` when the file
/// does not exist (that module is not configured).
pub(crate) fn read(
    config_dir: &Path,
    name: &str,
    warnings: &mut Vec<String>,
) -> Option<Vec<Section>> {
    let path = config_dir.join(name);
    if !path.exists() {
        return None;
    }
    let mut reader = Reader {
        config_dir,
        sections: Vec::new(),
        current: None,
        in_block_comment: false,
        warnings,
    };
    reader.read_file(&path, 0, true);
    Some(reader.sections)
}

struct Reader<'a> {
    config_dir: &'a Path,
    sections: Vec<Section>,
    current: Option<usize>,
    in_block_comment: bool,
    warnings: &'a mut Vec<String>,
}

impl Reader<'_> {
    fn read_file(&mut self, path: &Path, depth: usize, required: bool) {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound && !required => return,
            Err(err) => {
                self.warnings
                    .push(format!("reading {}: {err}", path.display()));
                return;
            }
        };
        let file = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        for (index, raw) in text.lines().enumerate() {
            let stripped = self.strip_comments(raw);
            let line = stripped.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(directive) = line.strip_prefix('#') {
                self.directive(directive, path, depth);
            } else if line.starts_with('[') {
                self.header(line);
            } else if let (Some(current), Some((key, value))) = (self.current, line.split_once('='))
            {
                let value = value.strip_prefix('>').unwrap_or(value);
                self.sections[current].entries.push(Entry {
                    key: key.trim().to_ascii_lowercase(),
                    value: value.trim().to_string(),
                    file: file.clone(),
                    line: index + 1,
                });
            }
        }
    }

    /// Removes comments; `\;` is a literal semicolon.
    fn strip_comments(&mut self, raw: &str) -> String {
        let mut out = String::new();
        let mut rest = raw;
        loop {
            if self.in_block_comment {
                match rest.find("--;") {
                    Some(end) => {
                        rest = &rest[end + 3..];
                        self.in_block_comment = false;
                    }
                    None => return out,
                }
            }
            let mut chars = rest.char_indices().peekable();
            let mut cut = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' if chars.peek().is_some_and(|(_, n)| *n == ';') => {
                        out.push(';');
                        chars.next();
                    }
                    ';' => {
                        cut = Some(i);
                        break;
                    }
                    _ => out.push(c),
                }
            }
            let Some(i) = cut else {
                return out;
            };
            if rest[i..].starts_with(";--") {
                self.in_block_comment = true;
                rest = &rest[i + 3..];
            } else {
                return out;
            }
        }
    }

    fn directive(&mut self, directive: &str, from: &Path, depth: usize) {
        let (word, argument) = directive
            .split_once(char::is_whitespace)
            .unwrap_or((directive, ""));
        let required = match word {
            "include" => true,
            "tryinclude" => false,
            _ => return, // #exec and the rest: not followed.
        };
        let target = argument
            .trim()
            .trim_matches(|c| c == '"' || c == '<' || c == '>');
        if target.is_empty() {
            return;
        }
        if depth >= MAX_INCLUDE_DEPTH {
            self.warnings.push(format!(
                "{}: #include {target} nested more than {MAX_INCLUDE_DEPTH} deep, ignored",
                from.display()
            ));
            return;
        }
        let path = self.config_dir.join(target);
        let has_wildcard = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains(['*', '?']));
        if has_wildcard {
            for matched in expand_wildcard(&path) {
                self.read_file(&matched, depth + 1, false);
            }
        } else {
            self.read_file(&path, depth + 1, required);
        }
    }

    /// `[name]`, `[name](!)`, `[name](tmpl1,tmpl2)`, `[name](!,tmpl)`, `[name](+)`.
    fn header(&mut self, line: &str) {
        let Some(end) = line.find(']') else {
            return;
        };
        let name = line[1..end].trim().to_string();
        let options = line[end + 1..].trim();
        let options = options
            .strip_prefix('(')
            .and_then(|o| o.strip_suffix(')'))
            .unwrap_or("");
        let mut section = Section {
            name,
            template: false,
            parents: Vec::new(),
            entries: Vec::new(),
        };
        for option in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            match option {
                "!" => section.template = true,
                "+" => {
                    // Adds to an earlier section of the same name.
                    if let Some(existing) =
                        self.sections.iter().rposition(|s| s.name == section.name)
                    {
                        self.current = Some(existing);
                        return;
                    }
                }
                parent => section.parents.push(parent.to_string()),
            }
        }
        self.sections.push(section);
        self.current = Some(self.sections.len() - 1);
    }
}

/// Files of `pattern`'s directory whose names match its last component
/// (`*`: any run of characters, `?`: one), in name order.
fn expand_wildcard(pattern: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let Ok(listing) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = listing
        .filter_map(Result::ok)
        .filter(|e| wildcard_match(&name, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Classic two-pointer match with backtracking to the last `*`.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// A section's entries with those of its templates first (later entries
/// override earlier ones for single-valued keys).
pub(crate) fn effective_entries<'a>(
    sections: &'a [Section],
    section: &'a Section,
) -> Vec<&'a Entry> {
    let mut out = Vec::new();
    collect(sections, section, 0, &mut out);
    out
}

fn collect<'a>(
    sections: &'a [Section],
    section: &'a Section,
    depth: usize,
    out: &mut Vec<&'a Entry>,
) {
    if depth > MAX_TEMPLATE_DEPTH {
        return;
    }
    for parent in &section.parents {
        if let Some(template) = sections.iter().rev().find(|s| &s.name == parent) {
            collect(sections, template, depth + 1, out);
        }
    }
    out.extend(section.entries.iter());
}

/// The last value of `key` (case-insensitive) among `entries`.
pub(crate) fn last_value<'a>(entries: &[&'a Entry], key: &str) -> Option<&'a Entry> {
    entries.iter().rev().find(|e| e.key == key).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Section> {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("x.conf"), text).unwrap();
        let mut warnings = Vec::new();
        let sections = read(dir.path(), "x.conf", &mut warnings).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        sections
    }

    #[test]
    fn sections_keys_and_comments() {
        let sections = parse(
            "[general]\nbindport=5060 ; comment\n;-- a block\ncomment [fake]\nhost=1.2.3.4 --;\n\
             [peer](!,base)\nsecret = a\\;b\nregister => user@host\n",
        );
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].entries.len(), 1);
        assert_eq!(sections[0].entries[0].value, "5060");
        assert!(sections[1].template);
        assert_eq!(sections[1].parents, ["base"]);
        assert_eq!(sections[1].entries[0].value, "a;b");
        assert_eq!(sections[1].entries[1].key, "register");
        assert_eq!(sections[1].entries[1].value, "user@host");
        assert_eq!(sections[1].entries[1].line, 8);
    }

    #[test]
    fn templates_are_inherited() {
        let sections = parse("[t](!)\ntype=aor\ncontact=sip:a\n[x](t)\ncontact=sip:b\n");
        let x = &sections[1];
        let entries = effective_entries(&sections, x);
        assert_eq!(
            last_value(&entries, "type").map(|e| e.value.as_str()),
            Some("aor")
        );
        assert_eq!(entries.iter().filter(|e| e.key == "contact").count(), 2);
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("pjsip.*.conf", "pjsip.endpoint.conf"));
        assert!(wildcard_match("*", "x"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("pjsip.*.conf", "pjsip.conf"));
        assert!(!wildcard_match("*.conf", "x.conf.bak"));
    }
}
