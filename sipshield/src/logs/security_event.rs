//! res_security_log lines: `SecurityEvent="InvalidPassword",EventTV="...",...`.
//!
//! Asterisk writes every field as `,Key="value"` in a fixed order and does not
//! escape values. Several values come from the attacker: `AccountID` (the
//! From user), `SessionID` (the Call-ID for PJSIP), and after the address
//! `ReceivedChallenge`, `ReceivedHash`, `RequestParams`. A value can therefore
//! contain `",RemoteAddress="IPV4/UDP/9.9.9.9/5060` and look like a field.
//!
//! The tokenizer ends a value only at a quote followed by `,Key="` or by the
//! end of the line. Asterisk's own field boundaries always have that shape, so
//! the real `RemoteAddress` field is always found; attacker text can only add
//! *more* fields. Hence the rule: every `RemoteAddress` field must parse and
//! name the same address, otherwise the line is ambiguous and charges nobody.
//! The fields before `AccountID` (`EventTV`, `Severity`, `Service`) are
//! Asterisk's, so the first `Service` field is the real one.

use std::net::IpAddr;

use super::addr::{is_port, parse_peer};
use super::failure::{FailureKind, KnownGood, LogSource, Parsed};

/// The security event types of Asterisk 13-20 (`security_events.c`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityEventType {
    FailedAcl,
    InvalidAccountId,
    SessionLimit,
    MemoryLimit,
    LoadAverageLimit,
    RequestNotSupported,
    RequestNotAllowed,
    AuthMethodNotAllowed,
    RequestBadFormat,
    SuccessfulAuth,
    UnexpectedAddress,
    ChallengeResponseFailed,
    InvalidPassword,
    ChallengeSent,
    InvalidTransport,
}

/// True when `message` is a security event of a failure type (whether or
/// not its address could be read).
pub fn is_failure_event(message: &str) -> bool {
    message
        .strip_prefix("SecurityEvent=\"")
        .and_then(|rest| rest.split_once('"'))
        .and_then(|(name, _)| SecurityEventType::from_name(name))
        .is_some_and(|e| e.failure_kind(false).is_some())
}

impl SecurityEventType {
    fn from_name(name: &str) -> Option<SecurityEventType> {
        Some(match name {
            "FailedACL" => SecurityEventType::FailedAcl,
            "InvalidAccountID" => SecurityEventType::InvalidAccountId,
            "SessionLimit" => SecurityEventType::SessionLimit,
            "MemoryLimit" => SecurityEventType::MemoryLimit,
            "LoadAverageLimit" => SecurityEventType::LoadAverageLimit,
            "RequestNotSupported" => SecurityEventType::RequestNotSupported,
            "RequestNotAllowed" => SecurityEventType::RequestNotAllowed,
            "AuthMethodNotAllowed" => SecurityEventType::AuthMethodNotAllowed,
            "RequestBadFormat" => SecurityEventType::RequestBadFormat,
            "SuccessfulAuth" => SecurityEventType::SuccessfulAuth,
            "UnexpectedAddress" => SecurityEventType::UnexpectedAddress,
            "ChallengeResponseFailed" => SecurityEventType::ChallengeResponseFailed,
            "InvalidPassword" => SecurityEventType::InvalidPassword,
            "ChallengeSent" => SecurityEventType::ChallengeSent,
            "InvalidTransport" => SecurityEventType::InvalidTransport,
            _ => return None,
        })
    }

    /// The failure this event is, for a SIP channel driver (`Service="SIP"`,
    /// `"PJSIP"`) or the manager (`Service="AMI"`).
    ///
    /// Not failures: `ChallengeSent` (every normal login gets one),
    /// `SuccessfulAuth`, and the resource limits (`SessionLimit`,
    /// `MemoryLimit`, `LoadAverageLimit`), which describe the server's state
    /// rather than the peer's intent and would get legitimate callers banned
    /// whenever the host is busy. For AMI, only the authentication events
    /// count: the others come from sessions that already logged in.
    fn failure_kind(self, ami: bool) -> Option<FailureKind> {
        use SecurityEventType as E;
        if ami {
            return match self {
                E::InvalidAccountId => Some(FailureKind::AmiUnknownUser),
                E::InvalidPassword | E::ChallengeResponseFailed => Some(FailureKind::AmiAuthFailed),
                E::FailedAcl => Some(FailureKind::AmiAclDenied),
                _ => None,
            };
        }
        match self {
            E::InvalidAccountId => Some(FailureKind::SecurityInvalidAccountId),
            E::InvalidPassword => Some(FailureKind::SecurityInvalidPassword),
            E::ChallengeResponseFailed => Some(FailureKind::SecurityChallengeResponseFailed),
            E::FailedAcl => Some(FailureKind::SecurityFailedAcl),
            E::AuthMethodNotAllowed => Some(FailureKind::SecurityAuthMethodNotAllowed),
            E::InvalidTransport => Some(FailureKind::SecurityInvalidTransport),
            E::UnexpectedAddress => Some(FailureKind::SecurityUnexpectedAddress),
            E::RequestNotAllowed => Some(FailureKind::SecurityRequestNotAllowed),
            E::RequestNotSupported => Some(FailureKind::SecurityRequestNotSupported),
            E::RequestBadFormat => Some(FailureKind::SecurityRequestBadFormat),
            E::SessionLimit
            | E::MemoryLimit
            | E::LoadAverageLimit
            | E::ChallengeSent
            | E::SuccessfulAuth => None,
        }
    }
}

/// One `Key="value"` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    pub key: &'a str,
    pub value: &'a str,
}

/// Splits `Key="value",Key="value"...` into fields; `None` when the text
/// does not have that shape all the way to its end.
pub fn fields(text: &str) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::with_capacity(16);
    let mut rest = text;
    loop {
        let key_len = key_len(rest);
        if key_len == 0 {
            return None;
        }
        let key = &rest[..key_len];
        let body = rest[key_len..].strip_prefix("=\"")?;
        let end = value_end(body)?;
        out.push(Field {
            key,
            value: &body[..end],
        });
        let after = &body[end + 1..];
        if after.is_empty() {
            return Some(out);
        }
        rest = after.strip_prefix(',')?;
    }
}

fn key_len(s: &str) -> usize {
    s.bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count()
}

/// Index of the quote that closes the value starting at `body`: the first
/// quote followed by the end of the text or by `,Key="`.
fn value_end(body: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(offset) = body[from..].find('"') {
        let quote = from + offset;
        let after = &body[quote + 1..];
        if after.is_empty() {
            return Some(quote);
        }
        if let Some(next) = after.strip_prefix(',') {
            let len = key_len(next);
            if len > 0 && next[len..].starts_with("=\"") {
                return Some(quote);
            }
        }
        from = quote + 1;
    }
    None
}

/// `IPV4/UDP/1.2.3.4/5060`, `IPV6/TCP/2001:db8::1/5061`, `IPV4/1.2.3.4/5038`
/// (no transport) → the address.
pub fn parse_security_address(value: &str) -> Option<IpAddr> {
    let rest = value
        .strip_prefix("IPV4/")
        .or_else(|| value.strip_prefix("IPV6/"))?;
    let (rest, port) = rest.rsplit_once('/')?;
    if !is_port(port) {
        return None;
    }
    let host = match rest.split_once('/') {
        Some((transport, host))
            if !transport.is_empty() && transport.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            host
        }
        Some(_) => return None,
        None => rest,
    };
    if host.starts_with('[') {
        return None;
    }
    parse_peer(host)
}

/// Parses a message that starts with `SecurityEvent="`.
pub(crate) fn parse_message(message: &str) -> Option<Parsed> {
    if !message.starts_with("SecurityEvent=\"") {
        return None;
    }
    let fields = fields(message)?;
    let event = SecurityEventType::from_name(fields.first()?.value)?;
    let ami = fields
        .iter()
        .find(|f| f.key == "Service")
        .is_some_and(|f| f.value == "AMI");

    let mut remote = None;
    for field in fields.iter().filter(|f| f.key == "RemoteAddress") {
        let ip = parse_security_address(field.value)?;
        if remote.is_some_and(|seen| seen != ip) {
            return None;
        }
        remote = Some(ip);
    }
    let ip = remote?;

    if event == SecurityEventType::SuccessfulAuth {
        return Some(Parsed::KnownGood(KnownGood {
            source: LogSource::Asterisk,
            ip,
            session: None,
        }));
    }
    let kind = event.failure_kind(ami)?;
    Some(Parsed::failure(kind, LogSource::Asterisk, ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_splits_plain_fields() {
        let got = fields(r#"A="1",Bb="two words",C="""#).unwrap();
        assert_eq!(
            got,
            vec![
                Field {
                    key: "A",
                    value: "1"
                },
                Field {
                    key: "Bb",
                    value: "two words"
                },
                Field {
                    key: "C",
                    value: ""
                },
            ]
        );
    }

    #[test]
    fn tokenizer_keeps_quotes_and_commas_that_do_not_start_a_field() {
        let got = fields(r#"A="x"y,z",B="q""#).unwrap();
        assert_eq!(
            got,
            vec![
                Field {
                    key: "A",
                    value: r#"x"y,z"#
                },
                Field {
                    key: "B",
                    value: "q"
                }
            ]
        );
        let got = fields(r#"A="1"B="2""#).unwrap();
        assert_eq!(
            got,
            vec![Field {
                key: "A",
                value: r#"1"B="2"#
            }]
        );
        let got = fields(r#"A="RemoteAddress=IPV4/UDP/9.9.9.9/5060",B="1""#).unwrap();
        assert_eq!(got[0].value, "RemoteAddress=IPV4/UDP/9.9.9.9/5060");
    }

    #[test]
    fn tokenizer_rejects_broken_shapes() {
        for text in [
            r#"A="unterminated"#,
            r#"="1""#,
            r#"A="1","#,
            r#"A="1" "#,
            "A=1",
        ] {
            assert_eq!(fields(text), None, "{text}");
        }
    }

    #[test]
    fn security_addresses() {
        let v4: IpAddr = "5.6.7.8".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(parse_security_address("IPV4/UDP/5.6.7.8/5060"), Some(v4));
        assert_eq!(parse_security_address("IPV4/TLS/5.6.7.8/5061"), Some(v4));
        assert_eq!(parse_security_address("IPV4/5.6.7.8/5038"), Some(v4));
        assert_eq!(
            parse_security_address("IPV6/UDP/2001:db8::1/5060"),
            Some(v6)
        );
        assert_eq!(
            parse_security_address("IPV4/UDP/::ffff:5.6.7.8/5060"),
            Some(v4)
        );
        for bad in [
            "",
            "IPV4/UDP/5.6.7.8",
            "IPV4/UDP/host/5060",
            "IPV4/U D P/5.6.7.8/5060",
            "UDP/5.6.7.8/5060",
            "IPV4/UDP/0.0.0.0/5060",
        ] {
            assert_eq!(parse_security_address(bad), None, "{bad}");
        }
    }
}
