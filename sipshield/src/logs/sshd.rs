//! OpenSSH sshd's authentication failures, IPv4 and IPv6.
//!
//! The user name is the attacker's and comes before the address (sshd cuts
//! it to 100 characters but keeps spaces), so addresses are read from the
//! end of the message, which sshd writes itself. The one exception is the
//! `: <key>` suffix of `Failed publickey ... ssh2: ...`, which can carry a
//! certificate's key ID: there, every place that looks like the address must
//! agree. sshd messages never contain the local address, and none is charged.

use std::net::IpAddr;

use super::addr::{is_port, parse_peer};
use super::failure::{FailureKind, KnownGood, LogSource, Parsed, SshLogin};
use super::prefix::{self, Origin};

/// Recognises sshd's failure lines. Stateless; cheap to copy.
#[derive(Clone, Copy, Debug, Default)]
pub struct SshdParser;

impl SshdParser {
    pub const fn new() -> Self {
        SshdParser
    }

    /// Parses one line from an auth log or journald output. Lines that
    /// syslog attributes to another program give `None`.
    pub fn parse(&self, line: &str) -> Option<Parsed> {
        let split = prefix::split(line);
        match split.origin {
            Origin::Sshd | Origin::Unknown => self.parse_message(split.message),
            Origin::Asterisk | Origin::OtherProgram => None,
        }
    }

    /// Parses a message whose syslog prefix is already removed.
    pub fn parse_message(&self, message: &str) -> Option<Parsed> {
        let message = message.trim();
        let (body, preauth) = match message.strip_suffix(" [preauth]") {
            Some(body) => (body, true),
            None => (message, false),
        };
        let (kind, ip) = match body.as_bytes().first()? {
            b'F' => {
                let (method, ip, _) = auth_result(body.strip_prefix("Failed ")?)?;
                let kind = match method {
                    "password" => FailureKind::SshFailedPassword,
                    "publickey" => FailureKind::SshFailedPublickey,
                    // `none` is the client asking which methods exist, not a guess.
                    "none" => return None,
                    _ => FailureKind::SshFailedAuth,
                };
                (kind, ip)
            }
            b'A' => {
                let (method, ip, port) = auth_result(body.strip_prefix("Accepted ")?)?;
                // Without a certain connection there is no session to follow.
                let port = port?;
                return Some(Parsed::KnownGood(KnownGood {
                    source: LogSource::Sshd,
                    ip,
                    session: Some(SshLogin {
                        port,
                        method: method_name(method),
                    }),
                }));
            }
            b'I' => (
                FailureKind::SshInvalidUser,
                from_address(body.strip_prefix("Invalid user ")?)?,
            ),
            b'e' | b'm' => {
                let rest = body.strip_prefix("error: ").unwrap_or(body);
                let rest = rest.strip_prefix("maximum authentication attempts exceeded for ")?;
                (
                    FailureKind::SshMaxAuthAttempts,
                    from_address(rest.strip_suffix(" ssh2")?)?,
                )
            }
            b'D' => {
                if let Some(rest) = body.strip_prefix("Disconnecting ") {
                    let rest = rest.strip_suffix(": Too many authentication failures")?;
                    (FailureKind::SshTooManyAuthFailures, user_address(rest)?)
                } else {
                    preauth.then_some(())?;
                    (
                        FailureKind::SshPreauthDisconnect,
                        user_address(body.strip_prefix("Disconnected from ")?)?,
                    )
                }
            }
            b'C' => {
                preauth.then_some(())?;
                let rest = body
                    .strip_prefix("Connection closed by ")
                    .or_else(|| body.strip_prefix("Connection reset by "))?;
                (FailureKind::SshPreauthDisconnect, user_address(rest)?)
            }
            b'R' => {
                preauth.then_some(())?;
                (
                    FailureKind::SshPreauthDisconnect,
                    received_disconnect(body)?,
                )
            }
            b'U' => (FailureKind::SshUserNotAllowed, not_allowed(body)?),
            _ => return None,
        };
        Some(Parsed::failure(kind, LogSource::Sshd, ip))
    }
}

impl SshdParser {
    /// A key-method failure whose user name and key info give two readings
    /// of the address (`parse_message` charged nobody): the candidates.
    pub fn ambiguity(&self, message: &str) -> Option<super::failure::Ambiguity> {
        let message = message.trim();
        let body = message.strip_suffix(" [preauth]").unwrap_or(message);
        let rest = body.strip_prefix("Failed ")?;
        let (method, after) = rest.split_once(' ')?;
        let kind = match method {
            "publickey" => FailureKind::SshFailedPublickey,
            "hostbased" => FailureKind::SshFailedAuth,
            _ => return None,
        };
        let after = after.strip_prefix("for ")?;
        let mut found = Vec::new();
        let mut search = 0;
        while let Some(at) = after[search..].find(" from ") {
            let start = search + at + " from ".len();
            search = search + at + 1;
            match auth_tail(&after[start..]) {
                Some(Some((ip, _))) => found.push(ip),
                // `UNKNOWN` where an address belongs: no tie to break.
                Some(None) => return None,
                None => {}
            }
        }
        super::failure::Ambiguity::new(kind, &found)
    }
}

/// `<method> for [invalid user ]<user> from <ip> port <n> ssh2[: <key>]`
/// → (method, ip, port). Every ` from <ip> port <n> ssh2` that ends the
/// line or is followed by `: ` must name the same address; the port is
/// `None` unless they all name the same one.
fn auth_result(rest: &str) -> Option<(&str, IpAddr, Option<u16>)> {
    let (method, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix("for ")?;
    // Only key methods get `: <key info>` after `ssh2` (OpenSSH's
    // `auth_method_info`); for the others the tail ends the line, so the
    // user name cannot hold a second reading.
    let with_info = matches!(method, "publickey" | "hostbased");
    const FROM: &str = " from ";
    let mut agreed = None;
    let mut search = 0;
    while let Some(at) = rest[search..].find(FROM) {
        let start = search + at + FROM.len();
        // Overlapping: the user name may end in " from".
        search = search + at + 1;
        let Some(ip) = auth_tail(&rest[start..]) else {
            continue;
        };
        if !with_info && !rest.ends_with(" ssh2") {
            return None;
        }
        if !with_info && rest[start..].contains(": ") {
            continue;
        }
        // Shaped like the tail but not an address: perhaps the real tail
        // (sshd writes "UNKNOWN" for a lost peer), so nothing is certain.
        let (ip, port) = ip?;
        match agreed {
            Some((seen, _)) if seen != ip => return None,
            // Same address, other ports: the address is certain, the
            // connection is not.
            Some((_, seen_port)) if seen_port != Some(port) => agreed = Some((ip, None)),
            Some(_) => {}
            None => agreed = Some((ip, Some(port))),
        }
    }
    let (ip, port) = agreed?;
    Some((method, ip, port))
}

/// `<ip> port <n> ssh2` followed by the end or by `: ` → `Some(peer)`,
/// where the peer is `None` if `<ip>` is not an address.
fn auth_tail(text: &str) -> Option<Option<(IpAddr, u16)>> {
    let (ip, rest) = text.split_once(" port ")?;
    // sshd writes the peer as one word (an address or `UNKNOWN`): a blank
    // means this `from` is inside the user name.
    if ip.contains(' ') {
        return None;
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if !is_port(&rest[..digits]) {
        return None;
    }
    let port: u16 = rest[..digits].parse().ok()?;
    let after = rest[digits..].strip_prefix(" ssh2")?;
    if !(after.is_empty() || after.starts_with(": ")) {
        return None;
    }
    Some(parse_peer(ip).map(|ip| (ip, port)))
}

/// sshd's name of an authentication method, as a static name (`other`
/// for one this list lacks).
fn method_name(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = [
        "publickey",
        "password",
        "keyboard-interactive/pam",
        "keyboard-interactive",
        "hostbased",
        "gssapi-with-mic",
        "gssapi-keyex",
    ];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
}

/// `<user> from <ip> port <n>` or `<user> from <ip>` at the end of the message.
fn from_address(rest: &str) -> Option<IpAddr> {
    let (_, tail) = rest.rsplit_once(" from ")?;
    let ip = match tail.split_once(" port ") {
        Some((ip, port)) if is_port(port) => ip,
        Some(_) => return None,
        None => tail,
    };
    parse_peer(ip)
}

/// `authenticating user <user> <ip> port <n>` or `invalid user <user> <ip> port <n>`.
fn user_address(rest: &str) -> Option<IpAddr> {
    let rest = rest
        .strip_prefix("authenticating user ")
        .or_else(|| rest.strip_prefix("invalid user "))?;
    let (head, port) = rest.rsplit_once(" port ")?;
    if !is_port(port) {
        return None;
    }
    parse_peer(head.rsplit(' ').next()?)
}

/// `Received disconnect from <ip> port <n>:<code>: <client's text>`.
fn received_disconnect(body: &str) -> Option<IpAddr> {
    let rest = body.strip_prefix("Received disconnect from ")?;
    let (ip, rest) = rest.split_once(" port ")?;
    let (port, rest) = rest.split_once(':')?;
    if !is_port(port) || !rest.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    parse_peer(ip)
}

/// `User <user> from <ip> not allowed because <reason>`.
fn not_allowed(body: &str) -> Option<IpAddr> {
    let rest = body.strip_prefix("User ")?;
    let (before, _) = rest.rsplit_once(" not allowed because ")?;
    let (_, host) = before.rsplit_once(" from ")?;
    parse_peer(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(message: &str) -> Option<(FailureKind, String)> {
        match SshdParser::new().parse_message(message)? {
            Parsed::Failure(f) => Some((f.kind, f.ip.to_string())),
            Parsed::KnownGood(_) => None,
        }
    }

    #[test]
    fn failed_methods() {
        assert_eq!(
            parse("Failed password for root from 5.6.7.8 port 22 ssh2"),
            Some((FailureKind::SshFailedPassword, "5.6.7.8".into()))
        );
        assert_eq!(
            parse("Failed keyboard-interactive/pam for invalid user x from 5.6.7.8 port 22 ssh2"),
            Some((FailureKind::SshFailedAuth, "5.6.7.8".into()))
        );
        assert_eq!(
            parse("Failed none for invalid user x from 5.6.7.8 port 22 ssh2"),
            None
        );
    }

    #[test]
    fn a_forged_tail_in_the_user_name_is_ambiguous_only_before_key_info() {
        // A key method's `: <info>` after a fake tail: two readings.
        assert_eq!(
            parse(
                "Failed publickey for x from 9.9.9.9 port 1 ssh2: RSA y from 5.6.7.8 port 22 ssh2: RSA z"
            ),
            None
        );
        assert_eq!(
            parse(
                "Failed publickey for x from 5.6.7.8 port 1 ssh2: RSA y from 5.6.7.8 port 22 ssh2: RSA z"
            ),
            Some((FailureKind::SshFailedPublickey, "5.6.7.8".into()))
        );
        // A password line ends with its tail: the user name holds no reading.
        assert_eq!(
            parse(
                "Failed password for x from 9.9.9.9 port 1 ssh2: RSA y from 5.6.7.8 port 22 ssh2"
            ),
            Some((FailureKind::SshFailedPassword, "5.6.7.8".into()))
        );
        assert_eq!(
            parse("Failed password for x from 9.9.9.9 port 1 ssh2: RSA y"),
            None,
            "no key info on a password line: not sshd's"
        );
    }

    fn accepted(message: &str) -> Option<(String, u16, &'static str)> {
        match SshdParser::new().parse_message(message)? {
            Parsed::KnownGood(KnownGood {
                ip,
                session: Some(login),
                ..
            }) => Some((ip.to_string(), login.port, login.method)),
            _ => None,
        }
    }

    #[test]
    fn accepted_logins_name_the_peer_port_and_method() {
        // OpenSSH 9.2 (Debian 12) auth.c auth_log().
        assert_eq!(
            accepted(
                "Accepted publickey for admin from 192.0.2.9 port 50112 ssh2: ED25519 SHA256:q8Xz0"
            ),
            Some(("192.0.2.9".into(), 50112, "publickey"))
        );
        assert_eq!(
            accepted("Accepted keyboard-interactive/pam for root from 2001:db8::9 port 41000 ssh2"),
            Some(("2001:db8::9".into(), 41000, "keyboard-interactive/pam"))
        );
        // A certificate key ID cannot name another peer or port.
        assert_eq!(
            accepted("Accepted publickey for a from 192.0.2.9 port 50112 ssh2: ED25519-CERT SHA256:x ID k from 9.9.9.9 port 22 ssh2"),
            None
        );
        assert_eq!(
            accepted("Accepted publickey for a from 192.0.2.9 port 50112 ssh2: ED25519-CERT SHA256:x ID k from 192.0.2.9 port 22 ssh2"),
            None
        );
    }

    #[test]
    fn malformed_tails_are_refused() {
        for message in [
            "Failed password for root from 5.6.7.8 port 22 ssh3",
            "Failed password for root from 5.6.7.8 port 99999 ssh2",
            "Failed password for root from 5.6.7.8",
            "Invalid user admin from 5.6.7.8 port x",
            "Received disconnect from 5.6.7.8 port 22: Bye [preauth]",
            "Connection closed by invalid user x 5.6.7.8 port [preauth]",
        ] {
            assert_eq!(parse(message), None, "{message}");
        }
    }
}

#[cfg(test)]
mod ambiguity_tests {
    use super::*;

    #[test]
    fn a_key_method_line_with_two_readings_names_both() {
        let p = SshdParser::new();
        let line = "Failed publickey for x from 9.9.9.9 port 1 ssh2: RSA y from 5.6.7.8 port 22 ssh2: RSA z";
        assert_eq!(p.parse_message(line), None);
        let a = p.ambiguity(line).unwrap();
        assert_eq!(a.kind, FailureKind::SshFailedPublickey);
        let got: Vec<String> = a.candidates().map(|ip| ip.to_string()).collect();
        assert_eq!(got, ["5.6.7.8", "9.9.9.9"]);
        // One reading, or none that is an address: no tie.
        assert!(p
            .ambiguity("Failed publickey for x from 5.6.7.8 port 22 ssh2: RSA z")
            .is_none());
        assert!(p
            .ambiguity("Failed publickey for x from UNKNOWN port 1 ssh2: RSA y from 5.6.7.8 port 22 ssh2: RSA z")
            .is_none());
        assert!(p
            .ambiguity("Failed password for x from 5.6.7.8 port 22 ssh2")
            .is_none());
    }
}
