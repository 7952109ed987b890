//! Config errors that point at the place in the file: `file:line:column`.

use std::{fmt, io, ops::Range, path::PathBuf};

/// A 1-based position in the config file (column counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The position of byte `offset` of `text`.
    pub fn of_offset(text: &str, offset: usize) -> Location {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location { line, column }
    }
}

/// A key in the config, e.g. `xdp.sip_ports[2].port`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(&'static str),
    Index(usize),
}

impl KeyPath {
    pub fn new(section: &'static str) -> KeyPath {
        KeyPath(vec![Segment::Key(section)])
    }

    pub fn key(&self, key: &'static str) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Segment::Key(key));
        path
    }

    pub fn index(&self, index: usize) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// One semantic problem: a value that parses but makes no sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    /// Where the offending value is written; `None` when it comes from a
    /// default (or the config did not come from a file).
    pub location: Option<Location>,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}{}: {message}", path.display(), at(location))]
    Parse {
        path: PathBuf,
        location: Option<Location>,
        message: String,
    },
    #[error("{}", invalid_lines(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn at(location: &Option<Location>) -> String {
    location.map_or_else(String::new, |l| format!(":{}:{}", l.line, l.column))
}

fn invalid_lines(path: &std::path::Path, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| {
            format!(
                "{}{}: {}: {}",
                path.display(),
                at(&p.location),
                p.key,
                p.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Collects problems found by validation.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub(crate) Vec<(KeyPath, String)>);

impl Problems {
    pub(crate) fn push(&mut self, key: KeyPath, message: impl Into<String>) {
        self.0.push((key, message.into()));
    }
}

/// A place in a parsed document, while walking a `KeyPath` down it.
#[derive(Clone, Copy)]
enum Cursor<'a> {
    Table(&'a toml_edit::Table),
    Item(&'a toml_edit::Item),
    Value(&'a toml_edit::Value),
}

fn step<'a>(cursor: Cursor<'a>, segment: &Segment) -> Option<(Cursor<'a>, Option<Range<usize>>)> {
    use toml_edit::{Item, Value};
    let cursor = match cursor {
        Cursor::Item(Item::Table(table)) => Cursor::Table(table),
        Cursor::Item(Item::Value(value)) => Cursor::Value(value),
        other => other,
    };
    let keyed = |(key, item): (&'a toml_edit::Key, &'a Item)| {
        (Cursor::Item(item), item.span().or_else(|| key.span()))
    };
    match (cursor, segment) {
        (Cursor::Table(table), Segment::Key(name)) => table.get_key_value(name).map(keyed),
        (Cursor::Value(Value::InlineTable(table)), Segment::Key(name)) => {
            table.get_key_value(name).map(keyed)
        }
        (Cursor::Value(Value::Array(array)), Segment::Index(i)) => array
            .get(*i)
            .map(|value| (Cursor::Value(value), value.span())),
        (Cursor::Item(Item::ArrayOfTables(array)), Segment::Index(i)) => array
            .get(*i)
            .map(|table| (Cursor::Table(table), table.span())),
        _ => None,
    }
}

/// Where `key` is written in `text`: the deepest part of the path that the
/// file spells out, or `None` when none of it is (a default value).
pub(crate) fn locate(text: &str, key: &KeyPath) -> Option<Location> {
    let document = toml_edit::ImDocument::parse(text).ok()?;
    let mut cursor = Cursor::Table(document.as_table());
    let mut found = None;
    for segment in &key.0 {
        let Some((next, span)) = step(cursor, segment) else {
            break;
        };
        cursor = next;
        found = span.or(found);
    }
    found.map(|span| Location::of_offset(text, span.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_one_based_lines_and_columns() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(
            Location::of_offset(text, 0),
            Location { line: 1, column: 1 }
        );
        assert_eq!(
            Location::of_offset(text, 6),
            Location { line: 2, column: 1 }
        );
        // "bé = " is 6 bytes but 5 characters.
        assert_eq!(
            Location::of_offset(text, 12),
            Location { line: 2, column: 6 }
        );
    }

    #[test]
    fn key_paths_print_like_toml() {
        let path = KeyPath::new("xdp").key("sip_ports").index(2).key("port");
        assert_eq!(path.to_string(), "xdp.sip_ports[2].port");
    }

    #[test]
    fn locate_finds_nested_values() {
        let text = "[xdp]\nsip_ports = [\n  { port = 1 },\n  { port = 0 },\n]\n";
        let path = KeyPath::new("xdp").key("sip_ports").index(1).key("port");
        assert_eq!(
            locate(text, &path),
            Some(Location {
                line: 4,
                column: 12
            })
        );
        let missing = KeyPath::new("policy").key("ban_ladder");
        assert_eq!(locate(text, &missing), None);
        let text = concat!(
            "[xdp]\nmax_bans = 1\n",
            "[policy.ssh]\nmaxretry = 0\n",
            "[[xdp2]]\na = 1\n",
            "[[xdp2]]\na = [1, 2]\n",
        );
        let path = KeyPath::new("policy").key("ssh").key("maxretry");
        assert_eq!(
            locate(text, &path),
            Some(Location {
                line: 4,
                column: 12
            })
        );
        let path = KeyPath::new("xdp2").index(1).key("a").index(1);
        assert_eq!(locate(text, &path), Some(Location { line: 8, column: 9 }));
    }
}
