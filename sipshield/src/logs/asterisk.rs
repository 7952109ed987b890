//! Asterisk's failure messages (chan_sip, res_pjsip, res_security_log,
//! manager.c, chan_iax2).
//!
//! Every message is matched from its first byte. Where attacker text sits
//! *before* the address (the To header in chan_sip's `Registration from`,
//! the peer name in chan_iax2's `No registration for peer`), the address is
//! read from the end of the line, whose tail Asterisk writes itself. Where
//! attacker text sits on *both* sides (res_pjsip's From and Call-ID), every
//! place that looks like the address must agree, or the line charges nobody.
//!
//! A cut line can end inside attacker text that imitates the real tail.
//! Asterisk's logger cuts a message at 8 KiB (`BUFSIZ`): tail-read lines
//! from its own files are trusted below [`MAX_TRUSTED_LINE`], so padding a
//! header to a few kilobytes no longer hides a guesser. Syslog cuts at its
//! message size (1 KiB on the RFC 3164 wire; 2, 4 or 8 KiB as configured):
//! a syslog line whose length sits at one of those limits is taken as cut
//! and charges nobody; other lengths were not cut.

use std::net::IpAddr;

use super::addr::parse_peer;
pub use super::failure::Ambiguity;
use super::failure::{FailureKind, LogSource, Parsed};
use super::prefix::{self, Origin};
use super::security_event;

/// Longest line whose tail we trust: below Asterisk's 8 KiB message limit,
/// with room for the file prefix (see the module documentation).
pub const MAX_TRUSTED_LINE: usize = 8100;

/// Message sizes at which syslog daemons and relays cut, and how far below
/// one a cut line's length may fall (the header a relay counts and the file
/// format differ).
const SYSLOG_LIMITS: [usize; 4] = [1024, 2048, 4096, 8192];
const SYSLOG_LIMIT_SLACK: usize = 128;

/// True when a syslog line is as long as a transport limit: it may have
/// been cut there.
fn at_syslog_limit(len: usize) -> bool {
    SYSLOG_LIMITS
        .iter()
        .any(|limit| len <= limit + 16 && len + SYSLOG_LIMIT_SLACK >= *limit)
}

/// What a line says about who failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    Charged(Parsed),
    /// Two readings remain: nobody, unless a tie-break picks one.
    Ambiguous(Ambiguity),
    /// A failure line of a known kind whose sender cannot be told: two
    /// readings of the address remain, or the line may have been cut. The
    /// last resort, counted and shown: it is also a way to escape a ban.
    Nobody,
    /// Not a failure line (or one of the server's own problems).
    Silent,
}

/// Recognises Asterisk's failure lines. Stateless; cheap to copy.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsteriskParser;

impl AsteriskParser {
    pub const fn new() -> Self {
        AsteriskParser
    }

    /// Parses one line from an Asterisk log (file, syslog or journald).
    /// Lines that syslog attributes to another program give `None`.
    pub fn parse(&self, line: &str) -> Option<Parsed> {
        let clean = prefix::without_colour(line);
        let split = prefix::split(&clean);
        match split.origin {
            // The transport's limits apply to the line as it came.
            Origin::Asterisk | Origin::Unknown => self.parse_split(&split, line.len()),
            Origin::Sshd | Origin::OtherProgram => None,
        }
    }

    /// `parse`, telling a failure line that charges nobody from a line
    /// that is none.
    pub fn read(&self, line: &str) -> Reading {
        let clean = prefix::without_colour(line);
        self.read_split(&prefix::split(&clean), line.len())
    }

    /// `read` of a line already cleaned and split (the daemon splits each
    /// line once, for this and for the drift alarm).
    pub fn read_split(&self, split: &prefix::Prefixed<'_>, line_len: usize) -> Reading {
        if !matches!(split.origin, Origin::Asterisk | Origin::Unknown) {
            return Reading::Silent;
        }
        if let Some(parsed) = self.parse_split(split, line_len) {
            return Reading::Charged(parsed);
        }
        let message = strip_verbose_marker(split.message.trim_start());
        let from = |names: &[&str]| split.module.is_none_or(|m| names.contains(&basename(m)));
        let failure = (message.starts_with("Registration from '")
            && from(&["chan_sip.c"])
            && registration_kind(message).is_some())
            || (message.starts_with("Request ")
                && from(&["pjsip_distributor.c"])
                && pjsip_kind(message).is_some())
            || (from(&["res_security_log.c"]) && security_event::is_failure_event(message));
        if !failure {
            return Reading::Silent;
        }
        // Not cut, and a security event whose readings disagree: who they are.
        let cut = line_len > MAX_TRUSTED_LINE || (split.via_syslog && at_syslog_limit(line_len));
        if !cut && message.starts_with("SecurityEvent=\"") {
            let found = security_event::readings(message);
            if let Some(kind) = security_event::failure_kind_of(message) {
                if let Some(a) = Ambiguity::new(kind, &found) {
                    return Reading::Ambiguous(a);
                }
            }
        }
        Reading::Nobody
    }

    /// Parses a line already split by `prefix::split`; `line_len` is the
    /// whole line's length. A syslog line at a transport limit counts as
    /// too long to trust its tail.
    pub fn parse_split(&self, split: &prefix::Prefixed<'_>, line_len: usize) -> Option<Parsed> {
        let len = if split.via_syslog && at_syslog_limit(line_len) {
            usize::MAX
        } else {
            line_len
        };
        self.parse_message(split.module, split.message, len)
    }

    /// Parses a message whose prefix is already removed. `module` is the
    /// source file named in the prefix, if any; a message that names a
    /// module is only matched against that module's messages. `line_len` is
    /// the length of the whole line, for the truncation guard.
    pub fn parse_message(
        &self,
        module: Option<&str>,
        message: &str,
        line_len: usize,
    ) -> Option<Parsed> {
        let message = strip_verbose_marker(message.trim_start());
        let from = |names: &[&str]| module.is_none_or(|m| names.contains(&basename(m)));
        let (kind, ip) = match message.as_bytes().first()? {
            b'R' if message.starts_with("Registration from '") && from(&["chan_sip.c"]) => {
                guard(line_len)?;
                sip_registration(message)?
            }
            b'R' if message.starts_with("Request ") && from(&["pjsip_distributor.c"]) => {
                pjsip_request(message)?
            }
            b'R' | b'"'
                if message
                    .trim_start_matches('"')
                    .starts_with(UNKNOWN_CONNECTION) =>
            {
                (
                    FailureKind::SipUnknownConnection,
                    unknown_connection(message)?,
                )
            }
            b'h' if message.starts_with("hacking attempt detected '") => {
                (FailureKind::SipHackingAttempt, hacking_attempt(message)?)
            }
            b'S' if message.starts_with("SecurityEvent=\"") && from(&["res_security_log.c"]) => {
                guard(line_len)?;
                return security_event::parse_message(message);
            }
            b'C' if message.starts_with("Call ")
                && from(&["chan_sip.c", "res_pjsip_session.c"]) =>
            {
                (
                    FailureKind::SipUnknownExtension,
                    unknown_extension(message)?,
                )
            }
            b'C' | b'H' if message.contains("onnect attempt from '") && from(&["manager.c"]) => {
                (FailureKind::AmiNoAuth, ami_unauthenticated(message)?)
            }
            b'C' if message.starts_with("Client from ") && from(&["manager.c"]) => {
                (FailureKind::AmiNoAuth, ami_auth_timeout(message)?)
            }
            b'H' if message.starts_with("Host ") && from(&["chan_iax2.c"]) => iax_host(message)?,
            b'N' | b'P' | b'E' if is_iax_registration(message) && from(&["chan_iax2.c"]) => {
                guard(line_len)?;
                iax_registration(message)?
            }
            _ => match ami_login(message) {
                Some(found) if from(&["manager.c"]) => found,
                _ if from(&["res_pjsip_session.c"]) => (
                    FailureKind::SipUnknownExtension,
                    named_unknown_extension(message)?,
                ),
                _ => return None,
            },
        };
        Some(Parsed::failure(kind, LogSource::Asterisk, ip))
    }
}

fn guard(line_len: usize) -> Option<()> {
    (line_len <= MAX_TRUSTED_LINE).then_some(())
}

fn basename(module: &str) -> &str {
    module.rsplit('/').next().unwrap_or(module)
}

/// Verbose messages may keep the console's `-- ` / `== ` / `> ` marker.
fn strip_verbose_marker(message: &str) -> &str {
    for marker in ["-- ", "== ", "> "] {
        if let Some(rest) = message.strip_prefix(marker) {
            return rest.trim_start();
        }
    }
    message
}

/// chan_sip: `Registration from '<To header>' failed for '<addr>' - <reason>`.
/// The To header is the attacker's, so the address is read from the end.
fn sip_registration(message: &str) -> Option<(FailureKind, IpAddr)> {
    let kind = registration_kind(message)?;
    let (before, _) = message.rsplit_once("' - ")?;
    let (_, addr) = before.rsplit_once("' failed for '")?;
    Some((kind, parse_peer(addr)?))
}

/// The failure a chan_sip registration line reports, from its reason.
fn registration_kind(message: &str) -> Option<FailureKind> {
    let (_, reason) = message.rsplit_once("' - ")?;
    Some(match reason {
        "Wrong password" => FailureKind::SipWrongPassword,
        "No matching peer found" => FailureKind::SipUnknownPeer,
        "Username/auth name mismatch" => FailureKind::SipAuthNameMismatch,
        "Not a local domain" => FailureKind::SipNotLocalDomain,
        "Device does not match ACL" | "ACL error (permit/deny)" => FailureKind::SipAclDenied,
        "Device not configured to use this transport type" => FailureKind::SipWrongTransport,
        "Peer is not supposed to register" => FailureKind::SipPeerNotDynamic,
        // Older wording: "... - Peer is attempting to register but host is not dynamic" and the like.
        other if other.contains("not dynamic") => FailureKind::SipPeerNotDynamic,
        // "RTP initialization failed" and "Unknown failure" are the server's
        // problems, not the peer's.
        _ => return None,
    })
}

/// res_pjsip distributor (`log_failed_request`):
/// `Request '<method>' from '<From>' failed for '<addr>' (callid: <Call-ID>) - <reason>[ after N tries in X ms]`.
///
/// From and Call-ID are the attacker's, on both sides of the address, so
/// the address is found from the structure pjsip prints, not by position:
/// the method is a SIP token (no blanks); From is printed by
/// `pjsip_name_addr_print` as `<URI>` or `"DISPLAY" <URI>`, where the URI is
/// `scheme:...` without blanks or angle brackets, and a display that holds
/// a colon was a quoted string, whose own quotes pjsip keeps escaped; the
/// Call-ID may hold anything. Every `' failed for '<addr>' (callid: ` whose
/// From reads that way is a candidate; one address among them is charged,
/// different ones charge nobody. pjsip cuts From and Call-ID at 255 bytes,
/// so the line is short enough never to be cut by Asterisk.
fn pjsip_request(message: &str) -> Option<(FailureKind, IpAddr)> {
    let kind = pjsip_kind(message)?;
    let rest = message.strip_prefix("Request ")?;
    // Older Asterisk printed no method: `Request from '...'`.
    let from_start = match rest.strip_prefix("from '") {
        Some(_) => "Request from '".len(),
        None => {
            let method_end = rest.find("' from '")?;
            let method = rest.strip_prefix('\'')?.get(..method_end - 1)?;
            if method.is_empty() || method.bytes().any(|b| b.is_ascii_whitespace()) {
                return None;
            }
            "Request ".len() + method_end + "' from '".len()
        }
    };
    const OPEN: &str = "' failed for '";
    const CLOSE: &str = "' (callid: ";
    let mut agreed = None;
    let mut search = from_start;
    while let Some(at) = message[search..].find(OPEN) {
        let sep = search + at;
        search = sep + 1;
        let addr_start = sep + OPEN.len();
        let Some(len) = message[addr_start..].find('\'') else {
            break;
        };
        if !message[addr_start + len..].starts_with(CLOSE) {
            continue;
        }
        if !is_printed_from(&message[from_start..sep]) {
            continue;
        }
        // pjsip prints a real address there: text that is none is inside
        // the attacker's display name.
        let Some(ip) = parse_peer(&message[addr_start..addr_start + len]) else {
            continue;
        };
        if agreed.is_some_and(|seen| seen != ip) {
            return None;
        }
        agreed = Some(ip);
    }
    Some((kind, agreed?))
}

/// The failure a pjsip request line reports, from its reason (written
/// last, after the attacker's Call-ID).
fn pjsip_kind(message: &str) -> Option<FailureKind> {
    let (_, reason) = message.rsplit_once(") - ")?;
    let reason = match reason.find(" after ") {
        Some(at) if reason.ends_with(" ms") => &reason[..at],
        _ => reason,
    };
    Some(match reason {
        "No matching endpoint found" => FailureKind::PjsipUnknownEndpoint,
        "Not match Endpoint ACL" => FailureKind::PjsipAclDenied,
        "Not match Endpoint Contact ACL" => FailureKind::PjsipContactAclDenied,
        "Failed to authenticate" | "Error to authenticate" => FailureKind::PjsipAuthFailed,
        _ => return None,
    })
}

/// True when `from` can be what `pjsip_name_addr_print` writes for a From
/// header: `<URI>` or `"DISPLAY" <URI>` (see `pjsip_request`); also a bare
/// URI or `DISPLAY <URI>` with a plain display.
fn is_printed_from(from: &str) -> bool {
    if let Some(uri) = from.strip_prefix('<').and_then(|f| f.strip_suffix('>')) {
        if is_printed_uri(uri) {
            return true;
        }
    }
    // Not what pjsip prints, but what other writers of this line do (a
    // bare URI, an unquoted display): neither can hold the blanks and colon
    // of a fake tail outside quotes, so accepting them adds no reading.
    if is_printed_uri(from) {
        return true;
    }
    if let Some((display, uri)) = from.split_once(" <") {
        if !display.is_empty()
            && !display.contains([':', '<', '"'])
            && uri.strip_suffix('>').is_some_and(is_printed_uri)
        {
            return true;
        }
    }
    let Some(rest) = from.strip_prefix('"') else {
        return false;
    };
    // Where the display ends is not marked: try every `" <` (pjsip's
    // spelling) and `"<` (older versions' and hand-written logs').
    let mut search = 0;
    while let Some(at) = rest[search..].find('"') {
        let end = search + at;
        search = end + 1;
        let after = &rest[end + 1..];
        let Some(uri) = after
            .strip_prefix(" <")
            .or_else(|| after.strip_prefix('<'))
            .and_then(|u| u.strip_suffix('>'))
        else {
            continue;
        };
        if is_printed_display(&rest[..end]) && is_printed_uri(uri) {
            return true;
        }
    }
    false
}

/// A URI as pjsip prints it: `scheme:...`, no blanks or angle brackets
/// outside the double-quoted parameter values pjsip keeps as they came.
fn is_printed_uri(uri: &str) -> bool {
    if !uri.contains(':') {
        return false;
    }
    let mut quoted = false;
    let mut escaped = false;
    for b in uri.bytes() {
        if quoted {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => quoted = true,
            b'<' | b'>' => return false,
            b if b.is_ascii_whitespace() => return false,
            _ => {}
        }
    }
    !quoted
}

/// A display name as pjsip prints it between quotes. Unquoted in the
/// request, it held no ':' or '<' (pjsip reads that form up to either);
/// quoted, its own quotes stayed escaped, and so did a final backslash.
fn is_printed_display(display: &str) -> bool {
    // An odd run of backslashes at the end escapes the closing quote: the
    // display goes on.
    let trailing = display.bytes().rev().take_while(|b| *b == b'\\').count();
    if trailing % 2 == 1 {
        return false;
    }
    if !display.contains([':', '<']) {
        return true;
    }
    let bytes = display.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return false,
            _ => i += 1,
        }
    }
    i == bytes.len()
}

/// chan_sip: `Call from '<peer>' (<addr>) to extension '...' rejected because extension not found in context '...'.`
/// res_pjsip_session (before 2020): `Call from '<endpoint>' (UDP:<addr>) to extension ...`.
/// The peer/endpoint name comes from configuration; the extension after the
/// address is the attacker's, so the address is read from the front.
fn unknown_extension(message: &str) -> Option<IpAddr> {
    let rest = message.strip_prefix("Call ")?;
    let rest = match rest.strip_prefix("from '") {
        Some(named) => named.split_once("' ")?.1,
        None => rest,
    };
    call_address(rest)
}

/// res_pjsip_session (2020 on): `<session name>: Call (UDP:<addr>) to extension ...`.
fn named_unknown_extension(message: &str) -> Option<IpAddr> {
    let space = message.find(' ')?;
    if !message[..space].ends_with(':') {
        return None;
    }
    call_address(message[space + 1..].strip_prefix("Call ")?)
}

/// `(<addr>) to extension '...' rejected because extension not found in context '...'.`
/// with `<addr>` optionally preceded by a PJSIP transport name (`UDP:`, `TCP6:`).
fn call_address(rest: &str) -> Option<IpAddr> {
    let inner = rest.strip_prefix('(')?;
    let (inside, after) = inner.split_once(')')?;
    if !after.starts_with(" to extension '")
        || !after.contains("' rejected because extension not found in context '")
    {
        return None;
    }
    let addr = match inside.as_bytes().first() {
        Some(b) if b.is_ascii_alphabetic() => {
            let (transport, addr) = inside.split_once(':')?;
            if !transport.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            addr
        }
        _ => inside,
    };
    parse_peer(addr)
}

const UNKNOWN_CONNECTION: &str = "Rejecting unknown SIP connection from ";

/// `Rejecting unknown SIP connection from <addr>` (optionally quoted).
fn unknown_connection(message: &str) -> Option<IpAddr> {
    let rest = message.strip_prefix('"').unwrap_or(message);
    let rest = rest.strip_prefix(UNKNOWN_CONNECTION)?;
    let rest = rest.strip_suffix('"').unwrap_or(rest);
    parse_peer(rest.trim_end_matches('.'))
}

/// `hacking attempt detected '<addr>'`.
fn hacking_attempt(message: &str) -> Option<IpAddr> {
    let rest = message.strip_prefix("hacking attempt detected '")?;
    let (addr, after) = rest.split_once('\'')?;
    after.is_empty().then_some(())?;
    parse_peer(addr)
}

/// manager.c: `<addr> tried to authenticate with nonexistent user '<user>'`,
/// `<addr> failed to authenticate as '<user>'`, `<addr> failed to pass IP ACL as '<user>'`.
fn ami_login(message: &str) -> Option<(FailureKind, IpAddr)> {
    let (addr, rest) = message.split_once(' ')?;
    let kind = if rest.starts_with("tried to authenticate with nonexistent user '") {
        FailureKind::AmiUnknownUser
    } else if rest.starts_with("failed to authenticate as '") {
        FailureKind::AmiAuthFailed
    } else if rest.starts_with("failed to pass IP ACL as '") {
        FailureKind::AmiAclDenied
    } else {
        return None;
    };
    Some((kind, parse_peer(addr)?))
}

/// manager.c: `[HTTP ]Connect attempt from '<addr>' unable to authenticate`.
fn ami_unauthenticated(message: &str) -> Option<IpAddr> {
    let rest = message.strip_prefix("HTTP ").unwrap_or(message);
    let rest = rest.strip_prefix("Connect attempt from '")?;
    let (addr, after) = rest.split_once('\'')?;
    (after == " unable to authenticate").then_some(())?;
    parse_peer(addr)
}

/// manager.c: `Client from <addr>, failed to authenticate in <N> seconds`.
fn ami_auth_timeout(message: &str) -> Option<IpAddr> {
    let rest = message.strip_prefix("Client from ")?;
    let (addr, after) = rest.split_once(", ")?;
    after
        .starts_with("failed to authenticate in ")
        .then_some(())?;
    parse_peer(addr)
}

/// chan_iax2: `Host <addr> failed to authenticate as <user>`,
/// `Host <addr> failed MD5 authentication for '<peer>' (...)`,
/// `Host <addr> did not provide proper plaintext password for '<peer>'`,
/// `Host <addr> denied access to register peer '<peer>'`.
fn iax_host(message: &str) -> Option<(FailureKind, IpAddr)> {
    let rest = message.strip_prefix("Host ")?;
    let (addr, rest) = rest.split_once(' ')?;
    let kind = if rest.starts_with("failed to authenticate as ")
        || rest.starts_with("failed MD5 authentication for '")
        || rest.starts_with("did not provide proper plaintext password for '")
    {
        FailureKind::IaxAuthFailed
    } else if rest.starts_with("denied access to register peer '") {
        FailureKind::IaxAclDenied
    } else {
        return None;
    };
    Some((kind, parse_peer(addr)?))
}

fn is_iax_registration(message: &str) -> bool {
    message.starts_with("No registration for peer '")
        || message.starts_with("Peer '")
        || message.starts_with("Empty registration from ")
}

/// chan_iax2: `No registration for peer '<peer>' (from <addr>)`,
/// `Peer '<peer>' is not dynamic (from <addr>)`, `Empty registration from <addr>`.
/// The peer name is the attacker's, so the address is read from the end.
fn iax_registration(message: &str) -> Option<(FailureKind, IpAddr)> {
    if let Some(addr) = message.strip_prefix("Empty registration from ") {
        return Some((FailureKind::IaxUnknownPeer, parse_peer(addr)?));
    }
    let kind = if message.starts_with("No registration for peer '") {
        FailureKind::IaxUnknownPeer
    } else if message.starts_with("Peer '") {
        FailureKind::IaxPeerNotDynamic
    } else {
        return None;
    };
    let (before, addr) = message.strip_suffix(')')?.rsplit_once(" (from ")?;
    if kind == FailureKind::IaxPeerNotDynamic && !before.ends_with("' is not dynamic") {
        return None;
    }
    if kind == FailureKind::IaxUnknownPeer && !before.ends_with('\'') {
        return None;
    }
    Some((kind, parse_peer(addr)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(message: &str) -> Option<(FailureKind, String)> {
        match AsteriskParser::new().parse_message(None, message, message.len())? {
            Parsed::Failure(f) => Some((f.kind, f.ip.to_string())),
            Parsed::KnownGood(_) => None,
        }
    }

    #[test]
    fn registration_reasons() {
        let cases = [
            ("Wrong password", FailureKind::SipWrongPassword),
            ("No matching peer found", FailureKind::SipUnknownPeer),
            (
                "Username/auth name mismatch",
                FailureKind::SipAuthNameMismatch,
            ),
            ("Not a local domain", FailureKind::SipNotLocalDomain),
            ("Device does not match ACL", FailureKind::SipAclDenied),
            ("ACL error (permit/deny)", FailureKind::SipAclDenied),
            (
                "Peer is not supposed to register",
                FailureKind::SipPeerNotDynamic,
            ),
            (
                "Device not configured to use this transport type",
                FailureKind::SipWrongTransport,
            ),
        ];
        for (reason, kind) in cases {
            let line = format!("Registration from '\"100\" <sip:100@1.2.3.4>' failed for '5.6.7.8:5060' - {reason}");
            assert_eq!(parse(&line), Some((kind, "5.6.7.8".into())), "{reason}");
        }
        assert_eq!(parse("Registration from '<sip:1@h>' failed for '5.6.7.8:5060' - RTP initialization failed"), None);
        assert_eq!(
            parse("Registration from '<sip:1@h>' failed for '5.6.7.8:5060' - Unknown failure"),
            None
        );
    }

    #[test]
    fn a_module_name_restricts_the_messages_it_can_have_written() {
        let p = AsteriskParser::new();
        let msg = "1.2.3.4 failed to authenticate as 'admin'";
        assert!(p.parse_message(Some("manager.c"), msg, 60).is_some());
        assert!(p.parse_message(Some("main/manager.c"), msg, 60).is_some());
        assert!(p.parse_message(Some("pbx.c"), msg, 60).is_none());
        let reg = "Registration from '<sip:1@h>' failed for '5.6.7.8' - Wrong password";
        assert!(p.parse_message(Some("chan_sip.c"), reg, 80).is_some());
        assert!(p.parse_message(Some("app_dial.c"), reg, 80).is_none());
    }

    #[test]
    fn long_lines_of_tail_anchored_shapes_are_not_trusted() {
        let reg = "Registration from '<sip:1@h>' failed for '5.6.7.8' - Wrong password";
        let p = AsteriskParser::new();
        assert!(p.parse_message(None, reg, MAX_TRUSTED_LINE).is_some());
        assert!(p.parse_message(None, reg, MAX_TRUSTED_LINE + 1).is_none());
    }

    #[test]
    fn verbose_markers_are_skipped() {
        assert_eq!(
            parse("  == Connect attempt from '172.16.0.5' unable to authenticate"),
            Some((FailureKind::AmiNoAuth, "172.16.0.5".into()))
        );
    }
}
