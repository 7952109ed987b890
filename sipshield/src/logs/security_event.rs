//! res_security_log lines: `SecurityEvent="InvalidPassword",EventTV="...",...`.
//!
//! Asterisk writes every field as `,Key="value"` and does not escape values.
//! Several values come from the attacker: `AccountID` (the From user),
//! `SessionID` (the Call-ID for PJSIP), and after the address
//! `ReceivedChallenge`, `ReceivedHash`, `Response`, `RequestType`,
//! `RequestParams`. A value can therefore contain
//! `",RemoteAddress="IPV4/UDP/9.9.9.9/5060` and look like a field.
//!
//! The tokenizer ends a value only at a quote followed by `,Key="` or by the
//! end of the line. Asterisk's own field boundaries always have that shape,
//! so attacker text can only split one value into *more* fields.
//!
//! The structural rule: each event type has a fixed field order
//! (`sec_events[]` in Asterisk's `main/security_events.c`, the same from 13
//! to 22: the common fields, `RemoteAddress`, the type's required fields,
//! then the optional ones present, in order). A reading of a line maps the
//! fields onto that order, where an attacker-written field may have
//! swallowed the fields that follow it in the text. The line charges the
//! `RemoteAddress` of every reading when all readings agree, and nobody
//! when two readings name different addresses. A line that fits no reading
//! (a field a newer Asterisk added) falls back to the unanimous rule: every
//! `RemoteAddress`-looking field must name the same address.

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
            // A field whose value could never close (`,Key="` at the end:
            // its quote is the one closing this value) is no field.
            if len > 0 && next[len..].starts_with("=\"") && next[len + 2..].contains('"') {
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

    let ip = match structural_remote(event, &fields) {
        Structural::One(ip) => ip,
        Structural::Ambiguous => return None,
        Structural::NoReading => unanimous_remote(&fields)?,
    };

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

/// The distinct addresses a security event's readings name: for the
/// tie-break by what the kernel saw, when there are several.
pub(crate) fn readings(message: &str) -> Vec<IpAddr> {
    let Some(fields) = fields(message) else {
        return Vec::new();
    };
    let Some(event) = fields
        .first()
        .and_then(|f| SecurityEventType::from_name(f.value))
    else {
        return Vec::new();
    };
    let mut out: Vec<IpAddr> = match structural_candidates(event, &fields) {
        Some(c) => c,
        None => fields
            .iter()
            .filter(|f| f.key == "RemoteAddress")
            .filter_map(|f| parse_security_address(f.value))
            .collect(),
    };
    out.sort();
    out.dedup();
    out
}

/// The failure a security event reports, whoever sent it.
pub(crate) fn failure_kind_of(message: &str) -> Option<FailureKind> {
    let fields = fields(message)?;
    let event = SecurityEventType::from_name(fields.first()?.value)?;
    let ami = fields
        .iter()
        .find(|f| f.key == "Service")
        .is_some_and(|f| f.value == "AMI");
    event.failure_kind(ami)
}

/// Every `RemoteAddress`-looking field names the same address.
fn unanimous_remote(fields: &[Field<'_>]) -> Option<IpAddr> {
    let mut remote = None;
    for field in fields.iter().filter(|f| f.key == "RemoteAddress") {
        let ip = parse_security_address(field.value)?;
        if remote.is_some_and(|seen| seen != ip) {
            return None;
        }
        remote = Some(ip);
    }
    remote
}

/// Who writes a field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Writer {
    /// Asterisk itself: the value is one token.
    Asterisk,
    /// An address Asterisk prints: one token that parses as one.
    Address,
    /// The remote side: the value may contain what looks like more fields.
    Attacker,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    key: &'static str,
    writer: Writer,
    optional: bool,
}

const fn req(key: &'static str, writer: Writer) -> Slot {
    Slot {
        key,
        writer,
        optional: false,
    }
}

const fn opt(key: &'static str, writer: Writer) -> Slot {
    Slot {
        key,
        writer,
        optional: true,
    }
}

use Writer::{Address as Ad, Asterisk as Ast, Attacker as Att};

/// The fields before the remote address, for every type but RequestBadFormat.
const HEAD: [Slot; 9] = [
    req("SecurityEvent", Ast),
    req("EventTV", Ast),
    req("Severity", Ast),
    req("Service", Ast),
    req("EventVersion", Ast),
    req("AccountID", Att),
    req("SessionID", Att),
    req("LocalAddress", Ad),
    req("RemoteAddress", Ad),
];

/// RequestBadFormat has no AccountID there (it is optional, at the end).
const BAD_FORMAT_HEAD: [Slot; 8] = [
    req("SecurityEvent", Ast),
    req("EventTV", Ast),
    req("Severity", Ast),
    req("Service", Ast),
    req("EventVersion", Ast),
    req("SessionID", Att),
    req("LocalAddress", Ad),
    req("RemoteAddress", Ad),
];

const MODULE_TV: [Slot; 2] = [opt("Module", Ast), opt("SessionTV", Ast)];

/// The field order of `event`, from Asterisk's `sec_events[]` table.
fn schema(event: SecurityEventType) -> Vec<Slot> {
    use SecurityEventType as E;
    let head: &[Slot] = if event == E::RequestBadFormat {
        &BAD_FORMAT_HEAD
    } else {
        &HEAD
    };
    let tail: &[Slot] = match event {
        E::FailedAcl => &[
            opt("Module", Ast),
            opt("ACLName", Ast),
            opt("SessionTV", Ast),
        ],
        E::InvalidAccountId | E::SessionLimit | E::MemoryLimit | E::LoadAverageLimit => &MODULE_TV,
        E::RequestNotSupported => &[
            req("RequestType", Att),
            opt("Module", Ast),
            opt("SessionTV", Ast),
        ],
        E::RequestNotAllowed => &[
            req("RequestType", Att),
            opt("Module", Ast),
            opt("SessionTV", Ast),
            opt("RequestParams", Att),
        ],
        E::AuthMethodNotAllowed => &[
            req("AuthMethod", Att),
            opt("Module", Ast),
            opt("SessionTV", Ast),
        ],
        E::RequestBadFormat => &[
            req("RequestType", Att),
            opt("Module", Ast),
            opt("SessionTV", Ast),
            opt("AccountID", Att),
            opt("RequestParams", Att),
        ],
        E::SuccessfulAuth => &[
            req("UsingPassword", Ast),
            opt("Module", Ast),
            opt("SessionTV", Ast),
        ],
        E::UnexpectedAddress => &[
            req("ExpectedAddress", Ad),
            opt("Module", Ast),
            opt("SessionTV", Ast),
        ],
        E::ChallengeResponseFailed => &[
            req("Challenge", Ast),
            req("Response", Att),
            req("ExpectedResponse", Att),
            opt("Module", Ast),
            opt("SessionTV", Ast),
        ],
        E::InvalidPassword => &[
            opt("Module", Ast),
            opt("SessionTV", Ast),
            opt("Challenge", Ast),
            opt("ReceivedChallenge", Att),
            opt("ReceivedHash", Att),
        ],
        E::ChallengeSent => &[
            req("Challenge", Ast),
            opt("Module", Ast),
            opt("SessionTV", Ast),
        ],
        E::InvalidTransport => &[
            req("AttemptedTransport", Ast),
            opt("Module", Ast),
            opt("SessionTV", Ast),
        ],
    };
    head.iter().chain(tail).copied().collect()
}

#[derive(Debug, PartialEq, Eq)]
enum Structural {
    One(IpAddr),
    Ambiguous,
    NoReading,
}

/// The remote address under every reading of `fields` by `event`'s order.
///
/// `ahead[t][s]`: fields `..t` can be read as slots `..s`; `behind[t][s]`:
/// fields `t..` as slots `s..`. The `RemoteAddress` slot can be field `t`
/// when `ahead[t][r]`, field `t` fits it, and `behind[t + 1][r + 1]`.
/// Both tables are O(fields x slots): an attacker's thousand fake fields
/// cost tens of microseconds.
fn structural_remote(event: SecurityEventType, fields: &[Field<'_>]) -> Structural {
    match structural_candidates(event, fields) {
        None => Structural::NoReading,
        Some(c) if c.len() == 1 => Structural::One(c[0]),
        Some(_) => Structural::Ambiguous,
    }
}

/// The distinct addresses of every reading; `None` when there is none.
fn structural_candidates(event: SecurityEventType, fields: &[Field<'_>]) -> Option<Vec<IpAddr>> {
    let slots = schema(event);
    let (n, m) = (fields.len(), slots.len());
    let r = slots.iter().position(|s| s.key == "RemoteAddress")?;
    let fits = |t: usize, s: usize| {
        let (field, slot) = (&fields[t], &slots[s]);
        field.key == slot.key
            && (slot.writer != Writer::Address || parse_security_address(field.value).is_some())
    };
    let mut ahead = vec![vec![false; m + 1]; n + 1];
    ahead[0][0] = true;
    for s in 0..m {
        let attacker = slots[s].writer == Writer::Attacker;
        // An attacker's value begun at an earlier field may end at this one.
        let mut begun = false;
        for t in 0..=n {
            if begun {
                ahead[t][s + 1] = true;
            }
            if !ahead[t][s] {
                continue;
            }
            if slots[s].optional {
                ahead[t][s + 1] = true;
            }
            if t < n && fits(t, s) {
                if attacker {
                    begun = true;
                } else {
                    ahead[t + 1][s + 1] = true;
                }
            }
        }
    }
    let mut behind = vec![vec![false; m + 1]; n + 1];
    behind[n][m] = true;
    for s in (0..m).rev() {
        let attacker = slots[s].writer == Writer::Attacker;
        // Some field after t can start the rest (slot s + 1 on).
        let mut rest_after = false;
        for t in (0..=n).rev() {
            let mut ok = slots[s].optional && behind[t][s + 1];
            if !ok && t < n && fits(t, s) {
                ok = if attacker {
                    rest_after
                } else {
                    behind[t + 1][s + 1]
                };
            }
            behind[t][s] = ok;
            rest_after |= behind[t][s + 1];
        }
    }
    let mut found: Vec<IpAddr> = Vec::new();
    for t in 0..n {
        if ahead[t][r] && fits(t, r) && behind[t + 1][r + 1] {
            if let Some(ip) = parse_security_address(fields[t].value) {
                if !found.contains(&ip) {
                    found.push(ip);
                }
            }
        }
    }
    (!found.is_empty()).then_some(found)
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
        // `,B="` at the very end: its quote closes A's value.
        let got = fields(r#"A="x",B=""#).unwrap();
        assert_eq!(got[0].value, r#"x",B="#);
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
