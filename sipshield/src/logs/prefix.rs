//! Splits a log line into who wrote it and the message proper.
//!
//! Parsers match messages from their first byte, never anywhere in the line:
//! attacker-controlled text (a SIP From header, an SSH user name) can contain
//! anything, but it never comes before the message's fixed opening words. So
//! the prefix must be taken off exactly. Recognised prefixes:
//!
//! - Asterisk's own files: `[date] LEVEL[lwp][C-xxxxxxxx] file.c: ` (default
//!   format) and `[date] LEVEL[lwp][C-xxxxxxxx]: file.c:123 function: `
//!   (plain format, console, Asterisk 11 with `in function`); any date format
//!   inside the brackets.
//! - syslog and journald: `Mmm dd HH:MM:SS[.ffffff] host tag[pid]: `, the
//!   RFC 3339 variant `2024-01-02T03:04:05.123456+00:00 host tag[pid]: ` and
//!   journald's `short-full` `Tue 2024-01-02 03:04:05 UTC host tag[pid]: `.
//!   Asterisk's syslog channel then adds `LEVEL[lwp][C-..]: file.c:123 in function: `.
//! - nothing: the whole line is the message (`journalctl -o cat`).

/// Who wrote a line, as far as its prefix tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Asterisk's own log format, or syslog tag `asterisk`.
    Asterisk,
    /// syslog tag `sshd`, `sshd-session` or `sshd-auth`.
    Sshd,
    /// A syslog line from another program: its messages are not ours to parse.
    OtherProgram,
    /// No prefix recognised: the whole line is the message.
    Unknown,
}

/// A line split into origin, Asterisk source file and message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefixed<'a> {
    pub origin: Origin,
    /// The Asterisk source file named in the prefix (`chan_sip.c`,
    /// `res_pjsip/pjsip_distributor.c`), when there is one.
    pub module: Option<&'a str>,
    /// The message, trailing whitespace removed.
    pub message: &'a str,
    /// The line came through syslog (or the journal's syslog-style
    /// output), which cuts long messages at its own limit.
    pub via_syslog: bool,
}

/// `line` without ANSI colour sequences (`ESC [ params final`): Asterisk
/// writes them to consoles, and they reach files and syslog when its
/// output is redirected or `logger.conf` asks for colour. Borrowed when
/// there are none (nearly always).
pub fn without_colour(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains('\x1b') {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        if chars.peek() != Some(&'[') {
            continue;
        }
        chars.next();
        // Parameters and intermediates, then one final byte.
        for c in chars.by_ref() {
            if ('@'..='~').contains(&c) {
                break;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Splits `line` (with or without its newline).
pub fn split(line: &str) -> Prefixed<'_> {
    let line = line.trim_end();
    if let Some((tag, rest)) = syslog_header(line) {
        return match origin_of_tag(tag) {
            Origin::Asterisk => match asterisk_header(rest) {
                Some((module, message)) => Prefixed {
                    origin: Origin::Asterisk,
                    module,
                    message,
                    via_syslog: true,
                },
                None => Prefixed {
                    origin: Origin::Asterisk,
                    module: None,
                    message: rest,
                    via_syslog: true,
                },
            },
            origin => Prefixed {
                origin,
                module: None,
                message: rest,
                via_syslog: true,
            },
        };
    }
    if let Some((module, message)) = asterisk_header(line) {
        return Prefixed {
            origin: Origin::Asterisk,
            module,
            message,
            via_syslog: false,
        };
    }
    Prefixed {
        origin: Origin::Unknown,
        module: None,
        message: line,
        via_syslog: false,
    }
}

/// Splits a message whose writer is known from elsewhere (the journal's
/// trusted fields), so no syslog header is expected. Asterisk's own
/// `LEVEL[lwp]: file.c:123 in function: ` header is still taken off.
pub fn split_known(message: &str, origin: Origin, via_syslog: bool) -> Prefixed<'_> {
    let message = message.trim_end();
    if origin == Origin::Asterisk {
        if let Some((module, message)) = asterisk_header(message) {
            return Prefixed {
                origin,
                module,
                message,
                via_syslog,
            };
        }
    }
    Prefixed {
        origin,
        module: None,
        message,
        via_syslog,
    }
}

fn origin_of_tag(tag: &str) -> Origin {
    let name = tag.rsplit('/').next().unwrap_or(tag);
    if name.starts_with("asterisk") {
        Origin::Asterisk
    } else if name.starts_with("sshd") {
        Origin::Sshd
    } else {
        Origin::OtherProgram
    }
}

/// `<timestamp> host tag[pid]: ` → (tag, rest).
fn syslog_header(line: &str) -> Option<(&str, &str)> {
    let rest = bsd_timestamp(line)
        .or_else(|| rfc3339_timestamp(line))
        .or_else(|| short_full_timestamp(line))?;
    let (host, rest) = rest.split_once(' ')?;
    if host.is_empty() {
        return None;
    }
    let tag_end = rest.find(['[', ':', ' '])?;
    let tag = &rest[..tag_end];
    if tag.is_empty() {
        return None;
    }
    let mut rest = &rest[tag_end..];
    if let Some(after) = rest.strip_prefix('[') {
        let (pid, after) = after.split_once(']')?;
        if !all_digits(pid) {
            return None;
        }
        rest = after;
    }
    let rest = rest.strip_prefix(':')?;
    Some((tag, rest.strip_prefix(' ').unwrap_or(rest)))
}

/// `Jan  2 03:04:05 `, `Jan 02 03:04:05.123456 `.
fn bsd_timestamp(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    if b.len() < 16
        || !b[0].is_ascii_uppercase()
        || !b[1].is_ascii_lowercase()
        || !b[2].is_ascii_lowercase()
        || b[3] != b' '
    {
        return None;
    }
    let mut i = 4;
    if b[i] == b' ' {
        i += 1;
    }
    let day_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if !(1..=2).contains(&(i - day_start)) || b.get(i) != Some(&b' ') {
        return None;
    }
    let rest = clock_time(&s[i + 1..])?;
    rest.strip_prefix(' ')
}

/// `2024-01-02T03:04:05[.ffffff][Z|+hh:mm|+hhmm] `.
fn rfc3339_timestamp(s: &str) -> Option<&str> {
    let rest = date(s)?;
    let rest = clock_time(rest.strip_prefix('T')?)?;
    let rest = if let Some(after) = rest.strip_prefix('Z') {
        after
    } else if let Some(after) = rest.strip_prefix(['+', '-']) {
        let digits = if after.as_bytes().get(2) == Some(&b':') {
            5
        } else {
            4
        };
        let (offset, after) = after.split_at_checked(digits)?;
        if !offset.bytes().all(|b| b.is_ascii_digit() || b == b':') {
            return None;
        }
        after
    } else {
        rest
    };
    rest.strip_prefix(' ')
}

/// journald `short-full`: `Tue 2024-01-02 03:04:05 UTC `.
fn short_full_timestamp(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    if b.len() < 4 || !b[..3].iter().all(u8::is_ascii_alphabetic) || b[3] != b' ' {
        return None;
    }
    let rest = date(&s[4..])?;
    let rest = clock_time(rest.strip_prefix(' ')?)?;
    let (zone, rest) = rest.strip_prefix(' ')?.split_once(' ')?;
    (!zone.is_empty()).then_some(rest)
}

/// `2024-01-02` → the rest.
fn date(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let shape = b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit);
    shape.then(|| &s[10..])
}

/// `03:04:05` with optional `.fraction` → the rest.
fn clock_time(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let shape = b.len() >= 8
        && b[..2].iter().all(u8::is_ascii_digit)
        && b[2] == b':'
        && b[3..5].iter().all(u8::is_ascii_digit)
        && b[5] == b':'
        && b[6..8].iter().all(u8::is_ascii_digit);
    if !shape {
        return None;
    }
    let mut rest = &s[8..];
    if let Some(frac) = rest.strip_prefix(['.', ',']) {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    Some(rest)
}

/// `[date] LEVEL[lwp][C-xxxxxxxx] file.c: msg` and the variants with `:`
/// after the ids, a line number and a function name; the `[date] ` is
/// absent in Asterisk's syslog channel. → (module, message).
fn asterisk_header(s: &str) -> Option<(Option<&str>, &str)> {
    let mut rest = s;
    if let Some(after) = rest.strip_prefix('[') {
        let end = after.find("] ")?;
        rest = &after[end + 2..];
    }
    let level_end = rest.find('[')?;
    // Some versions and logger.conf formats write `NOTICE [22382]`.
    let level = rest[..level_end].trim_end_matches(' ');
    if level.is_empty()
        || level.len() > 16
        || !level
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return None;
    }
    let (lwp, mut rest) = rest[level_end + 1..].split_once(']')?;
    if !all_digits(lwp) {
        return None;
    }
    if let Some(after) = rest.strip_prefix("[C-") {
        let (call_id, after) = after.split_once(']')?;
        if call_id.is_empty() || !call_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        rest = after;
    }
    rest = rest.strip_prefix(':').unwrap_or(rest);
    let rest = rest.strip_prefix(' ')?.trim_start_matches(' ');

    let module_end = rest.find(':')?;
    let module = &rest[..module_end];
    // The dialplan's Log() names `Ext. <exten>` as its file (app_verbose.c),
    // e.g. FreePBX's from-sip-external: `Ext. s: "Rejecting unknown ..."`.
    let dialplan = module
        .strip_prefix("Ext. ")
        .is_some_and(|exten| !exten.is_empty() && !exten.contains(' '));
    if module.is_empty()
        || !(dialplan
            || module
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')))
    {
        return None;
    }
    let rest = &rest[module_end + 1..];
    if let Some(message) = rest.strip_prefix(' ') {
        return Some((Some(module), message));
    }
    // file.c:123 [in ]function: message
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let rest = &rest[digits..];
    if let Some(message) = rest.strip_prefix(": ") {
        return Some((Some(module), message));
    }
    let rest = rest.strip_prefix(' ')?;
    let rest = rest.strip_prefix("in ").unwrap_or(rest);
    // Log()'s "function" is `@ <context>`: `Ext. s:6 in @ from-sip-external: ...`.
    if let Some(context) = rest.strip_prefix("@ ").filter(|_| dialplan) {
        let (name, message) = context.split_once(": ")?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return None;
        }
        return Some((Some(module), message));
    }
    let function_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    if function_len == 0 {
        return None;
    }
    let message = rest[function_len..].strip_prefix(':')?;
    Some((Some(module), message.strip_prefix(' ').unwrap_or(message)))
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asterisk(module: &'static str, message: &'static str) -> Prefixed<'static> {
        Prefixed {
            origin: Origin::Asterisk,
            module: Some(module),
            message,
            via_syslog: false,
        }
    }

    #[test]
    fn asterisk_file_default_format() {
        assert_eq!(
            split("[2024-03-05 10:21:46] NOTICE[1234] chan_sip.c: Registration from 'x'\n"),
            asterisk("chan_sip.c", "Registration from 'x'")
        );
        assert_eq!(
            split("[Dec 18 10:21:46] NOTICE[1234][C-0000002a] res_pjsip/pjsip_distributor.c: Request 'INVITE'"),
            asterisk("res_pjsip/pjsip_distributor.c", "Request 'INVITE'")
        );
        assert_eq!(
            split(
                "[2024-03-05 10:21:46.123] SECURITY[987] res_security_log.c: SecurityEvent=\"x\""
            ),
            asterisk("res_security_log.c", "SecurityEvent=\"x\"")
        );
    }

    #[test]
    fn asterisk_file_with_line_numbers_and_function_names() {
        assert_eq!(
            split("[2024-03-05 10:21:46] NOTICE[1234][C-00000001]: chan_sip.c:28475 handle_request_register: Registration"),
            asterisk("chan_sip.c", "Registration")
        );
        assert_eq!(
            split("[Jan 10 15:08:17] NOTICE[2828]: chan_sip.c:23433 in handle_request_register: Registration"),
            asterisk("chan_sip.c", "Registration")
        );
        assert_eq!(
            split("[2024-03-05T10:21:46.123+0100] WARNING[55]: manager.c:2324: msg"),
            asterisk("manager.c", "msg")
        );
    }

    #[test]
    fn syslog_prefixes_name_the_program() {
        let sshd = split("Mar  5 10:21:46 pbx sshd[4242]: Failed password for root");
        assert_eq!(
            sshd,
            Prefixed {
                origin: Origin::Sshd,
                module: None,
                message: "Failed password for root",
                via_syslog: true,
            }
        );
        let journald = split("Mar 05 10:21:46.123456 pbx sshd-session[4242]: Invalid user x");
        assert_eq!(journald.origin, Origin::Sshd);
        assert_eq!(journald.message, "Invalid user x");
        let rfc3339 = split("2024-03-05T10:21:46.123456+01:00 pbx sshd[1]: Invalid user x");
        assert_eq!(
            (rfc3339.origin, rfc3339.message),
            (Origin::Sshd, "Invalid user x")
        );
        let iso_z = split("2024-03-05T10:21:46Z pbx sshd-auth[1]: Invalid user x");
        assert_eq!(
            (iso_z.origin, iso_z.message),
            (Origin::Sshd, "Invalid user x")
        );
        let full = split("Tue 2024-03-05 10:21:46 UTC pbx sshd[1]: Invalid user x");
        assert_eq!(
            (full.origin, full.message),
            (Origin::Sshd, "Invalid user x")
        );
        let other = split(
            "Mar  5 10:21:46 pbx myapp[7]: Failed password for root from 9.9.9.9 port 1 ssh2",
        );
        assert_eq!(other.origin, Origin::OtherProgram);
        let no_pid = split("Mar  5 10:21:46 pbx kernel: [  12.3] eth0 up");
        assert_eq!(
            (no_pid.origin, no_pid.message),
            (Origin::OtherProgram, "[  12.3] eth0 up")
        );
    }

    #[test]
    fn asterisk_syslog_channel_adds_its_own_header() {
        let via_syslog = |module, message| Prefixed {
            via_syslog: true,
            ..asterisk(module, message)
        };
        assert_eq!(
            split("Mar  5 10:21:46 pbx asterisk[1234]: NOTICE[1290][C-00000003]: chan_sip.c:26829 in handle_request_invite: Call from"),
            via_syslog("chan_sip.c", "Call from")
        );
        assert_eq!(
            split("2024-03-05T10:21:46+00:00 pbx /usr/sbin/asterisk[1234]: NOTICE[1290]: manager.c:2287 in authenticate: 1.2.3.4 tried"),
            via_syslog("manager.c", "1.2.3.4 tried")
        );
        // journalctl -o cat of the same line
        assert_eq!(
            split("NOTICE[1290]: manager.c:2287 in authenticate: 1.2.3.4 tried"),
            asterisk("manager.c", "1.2.3.4 tried")
        );
    }

    #[test]
    fn unknown_prefixes_leave_the_whole_line() {
        for line in [
            "Failed password for root from 5.6.7.8 port 22 ssh2",
            "[2024-03-05 10:21:46] garbage",
            "[2024-03-05 10:21:46] NOTICE[12x] chan_sip.c: msg",
            "Mar  5 10:21:46",
            "",
        ] {
            let got = split(line);
            assert_eq!(
                (got.origin, got.module, got.message),
                (Origin::Unknown, None, line),
                "{line:?}"
            );
        }
    }
}
