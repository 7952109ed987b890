//! PAM service stacks (`/etc/pam.d/<service>`): `type control module args`
//! lines, bracketed controls (`[success=1 default=ignore]`), and the ways one
//! file pulls in another: `@include file`, and `include`/`substack` controls.

use super::{join_rel, ConfError, HostRoot, IncludeChain, Origin, Unreadable};

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
    /// Included files that could not be read.
    pub unreadable: Vec<Unreadable>,
}

impl PamStack {
    pub fn read(host: &HostRoot, service: &str) -> Result<PamStack, ConfError> {
        let file = join_rel(PAM_DIR, service);
        let text = host.read(&file)?;
        let mut stack = PamStack {
            service_file: file.clone(),
            rules: Vec::new(),
            unreadable: Vec::new(),
        };
        let mut chain = IncludeChain::new(&file);
        stack.parse(host, &file, &text, None, &mut chain);
        Ok(stack)
    }

    /// `only_kind`: for `auth include common-auth`, only that type is taken.
    fn parse(
        &mut self,
        host: &HostRoot,
        file: &str,
        text: &str,
        only_kind: Option<&str>,
        chain: &mut IncludeChain,
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
                self.include(host, target.trim(), &origin, only_kind, chain);
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
                self.include(host, module, &origin, Some(&kind), chain);
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
        from: &Origin,
        only_kind: Option<&str>,
        chain: &mut IncludeChain,
    ) {
        let rel = join_rel(PAM_DIR, target);
        if let Err(refused) = chain.enter(&rel) {
            if let Some(reason) = refused.reason() {
                self.unreadable.push(Unreadable {
                    file: rel,
                    from: Some(from.clone()),
                    reason,
                });
            }
            return;
        }
        match host.read(&rel) {
            Ok(text) => self.parse(host, &rel, &text, only_kind, chain),
            Err(e) => self.unreadable.push(Unreadable::new(&rel, Some(from), &e)),
        }
        chain.leave();
    }
}

fn next_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;

    fn modules(stack: &PamStack, kind: &str) -> Vec<String> {
        stack
            .rules
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.module.clone())
            .collect()
    }

    #[test]
    fn include_and_substack_take_only_their_type_and_the_same_file_twice() {
        // RHEL's layout: one file pulled in once per type.
        let (_dir, host) = testing::host(&[
            (
                "etc/pam.d/sshd",
                Some(
                    "account include password-auth\n\
                     auth substack password-auth # comment\n\
                     -session optional pam_systemd.so\n",
                ),
            ),
            (
                "etc/pam.d/password-auth",
                Some(
                    "auth required pam_faillock.so preauth deny=4\n\
                     auth [success=1 default=bad] pam_unix.so\n\
                     account required pam_unix.so\n",
                ),
            ),
        ]);
        let stack = PamStack::read(&host, "sshd").expect("read");
        assert_eq!(modules(&stack, "auth"), ["pam_faillock.so", "pam_unix.so"]);
        assert_eq!(modules(&stack, "account"), ["pam_unix.so"]);
        assert_eq!(modules(&stack, "session"), ["pam_systemd.so"]);
        assert_eq!(stack.rules[0].control, "required", "account rule first");
        let faillock = &stack.rules[1];
        assert_eq!(faillock.arg("deny"), Some("4"));
        assert_eq!(faillock.origin.file, "etc/pam.d/password-auth");
        assert_eq!(stack.rules[2].control, "[success=1 default=bad]");
    }

    #[test]
    fn at_include_cycles_end_and_unreadable_files_are_recorded() {
        let (_dir, host) = testing::host(&[
            (
                "etc/pam.d/sshd",
                Some("@include common-auth\n@include common-gone\n"),
            ),
            (
                "etc/pam.d/common-auth",
                Some("@include sshd\nauth required pam_tally2.so deny=3\n"),
            ),
        ]);
        let stack = PamStack::read(&host, "sshd").expect("read");
        assert_eq!(modules(&stack, "auth"), ["pam_tally2.so"]);
        assert_eq!(stack.unreadable.len(), 1);
        assert_eq!(stack.unreadable[0].file, "etc/pam.d/common-gone");
        assert_eq!(stack.unreadable[0].reason, "not found");
    }
}
