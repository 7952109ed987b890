//! Fake hosts for the per-check specifications: a temporary root with a
//! few configuration files, audited through the library.

#![allow(dead_code, reason = "each test crate uses its own part of it")]

use sipshield::hardening::{self, Finding, Report};

pub struct Host {
    dir: tempfile::TempDir,
}

/// A host whose root holds `files` (path relative to the root, text).
pub fn host(files: &[(&str, &str)]) -> Host {
    let host = Host {
        dir: tempfile::tempdir().expect("temp dir"),
    };
    for (rel, text) in files {
        host.write(rel, text);
    }
    host
}

/// Lines of a config file; line N of the file is `lines[N - 1]`.
pub fn conf(lines: &[&str]) -> String {
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

impl Host {
    fn write(&self, rel: &str, text: &str) {
        let path = self.dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }

    /// A directory where a file is expected: unreadable as a file, even
    /// for root, so tests of unreadable files run the same everywhere.
    pub fn unreadable(self, rel: &str) -> Host {
        std::fs::create_dir_all(self.dir.path().join(rel)).expect("mkdir");
        self
    }

    /// An empty marker file (an enabled systemd unit, a GUI's directory).
    pub fn touch(self, rel: &str) -> Host {
        self.write(rel, "");
        self
    }

    pub fn report(&self) -> Report {
        hardening::audit(self.dir.path()).expect("audit runs")
    }

    /// Where findings of `id` point: (file, line).
    pub fn hits(&self, id: &str) -> Vec<(String, Option<u32>)> {
        self.report()
            .findings
            .iter()
            .filter(|f| f.id == id)
            .map(|f| (f.file.clone(), f.line))
            .collect()
    }

    /// The only finding of `id`.
    pub fn the(&self, id: &str) -> Finding {
        let all: Vec<Finding> = self
            .report()
            .findings
            .into_iter()
            .filter(|f| f.id == id)
            .collect();
        assert_eq!(all.len(), 1, "one {id} finding: {all:#?}");
        all.into_iter().next().expect("one")
    }

    /// Skipped checks as `checks: reason`.
    pub fn skipped(&self) -> Vec<String> {
        self.report()
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.checks, s.reason))
            .collect()
    }
}

pub fn at(file: &str, line: u32) -> (String, Option<u32>) {
    (file.to_string(), Some(line))
}

pub fn whole(file: &str) -> (String, Option<u32>) {
    (file.to_string(), None)
}

pub fn none() -> Vec<(String, Option<u32>)> {
    Vec::new()
}
