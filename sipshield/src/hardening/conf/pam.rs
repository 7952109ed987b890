//! PAM service stacks (`/etc/pam.d/<service>`): `type control module args`
//! lines, bracketed controls (`[success=1 default=ignore]`), and the ways one
//! file pulls in another: `@include file`, and `include`/`substack` controls.

use std::collections::HashSet;

use super::{join_rel, ConfError, HostRoot, Origin};

pub const PAM_DIR: &str = "etc/pam.d";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PamRule {
    /// `auth`, `account`, `password` or `session` (a leading `-` removed).
    pub kind: String,
    pub control: String,
    /// Module file name without its directory, e.g. `pam_faillock.so`.
    pub module: String,
    pub args: Vec<String>,
    pub origin: Origin,
}

impl PamRule {
    /// The value of a `name=value` argument.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args
            .iter()
            .find_map(|a| a.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PamStack {
    pub service_file: String,
    /// Every rule of the stack with included files expanded in place.
    pub rules: Vec<PamRule>,
}

impl PamStack {
    pub fn read(host: &HostRoot, service: &str) -> Result<PamStack, ConfError> {
        let file = join_rel(PAM_DIR, service);
        let text = host.read(&file)?;
        let mut stack = PamStack {
            service_file: file.clone(),
            rules: Vec::new(),
        };
        let mut visited = HashSet::from([file.clone()]);
        stack.parse(host, &file, &text, None, &mut visited);
        Ok(stack)
    }

    /// `only_kind`: for `auth include common-auth`, only that type is taken.
    fn parse(
        &mut self,
        host: &HostRoot,
        file: &str,
        text: &str,
        only_kind: Option<&str>,
        visited: &mut HashSet<String>,
    ) {
        for (idx, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let origin = Origin {
                file: file.to_string(),
                line: u32::try_from(idx + 1).unwrap_or(u32::MAX),
            };
            if let Some(target) = line.strip_prefix("@include") {
                self.include(host, target.trim(), only_kind, visited);
                continue;
            }
            let (kind, rest) = next_word(line);
            let kind = kind.trim_start_matches('-').to_ascii_lowercase();
            if only_kind.is_some_and(|k| k != kind) {
                continue;
            }
            let (control, rest) = if rest.starts_with('[') {
                match rest.find(']') {
                    Some(end) => (&rest[..=end], rest[end + 1..].trim_start()),
                    None => (rest, ""),
                }
            } else {
                next_word(rest)
            };
            let (module, rest) = next_word(rest);
            let control = control.to_ascii_lowercase();
            if control == "include" || control == "substack" {
                self.include(host, module, Some(&kind), visited);
                continue;
            }
            let module = module.rsplit('/').next().unwrap_or(module).to_string();
            self.rules.push(PamRule {
                kind,
                control,
                module,
                args: rest.split_whitespace().map(str::to_string).collect(),
                origin,
            });
        }
    }

    fn include(
        &mut self,
        host: &HostRoot,
        target: &str,
        only_kind: Option<&str>,
        visited: &mut HashSet<String>,
    ) {
        let rel = join_rel(PAM_DIR, target);
        if !visited.insert(rel.clone()) {
            return;
        }
        if let Ok(text) = host.read(&rel) {
            self.parse(host, &rel, &text, only_kind, visited);
        }
    }
}

fn next_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}
