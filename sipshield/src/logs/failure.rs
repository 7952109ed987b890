//! What a log line says about a remote address: a failure to charge, or a
//! sign that the address is a legitimate user.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::offence::OffenceClass;

/// Which program wrote the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogSource {
    Asterisk,
    Sshd,
}

impl LogSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            LogSource::Asterisk => "asterisk",
            LogSource::Sshd => "sshd",
        }
    }
}

impl fmt::Display for LogSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for LogSource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One kind of failure line. `as_str` is stable: it is the `event` of
/// `sipshield parse --json` and may be stored in state files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    // chan_sip REGISTER failures: `Registration from '...' failed for 'IP' - <reason>`.
    /// Wrong password.
    SipWrongPassword,
    /// No matching peer found.
    SipUnknownPeer,
    /// Username/auth name mismatch.
    SipAuthNameMismatch,
    /// Not a local domain.
    SipNotLocalDomain,
    /// Peer is not supposed to register (host is not dynamic).
    SipPeerNotDynamic,
    /// Device does not match ACL / ACL error (permit/deny).
    SipAclDenied,
    /// Device not configured to use this transport type.
    SipWrongTransport,
    /// A call to an extension that does not exist (chan_sip or res_pjsip_session).
    SipUnknownExtension,
    /// `Rejecting unknown SIP connection from ...`.
    SipUnknownConnection,
    /// `hacking attempt detected '...'`.
    SipHackingAttempt,

    // res_pjsip distributor: `Request '...' from '...' failed for 'IP:port' (callid: ...) - <reason>`.
    /// No matching endpoint found.
    PjsipUnknownEndpoint,
    /// Not match Endpoint ACL.
    PjsipAclDenied,
    /// Not match Endpoint Contact ACL.
    PjsipContactAclDenied,
    /// Failed to authenticate / Error to authenticate.
    PjsipAuthFailed,

    // res_security_log events of the SIP channel drivers (Service "SIP", "PJSIP").
    SecurityInvalidAccountId,
    SecurityInvalidPassword,
    SecurityChallengeResponseFailed,
    SecurityFailedAcl,
    SecurityAuthMethodNotAllowed,
    SecurityInvalidTransport,
    SecurityUnexpectedAddress,
    SecurityRequestNotAllowed,
    SecurityRequestNotSupported,
    SecurityRequestBadFormat,

    // Asterisk Manager Interface (manager.c, and its security events).
    /// Login with a user name that does not exist.
    AmiUnknownUser,
    /// Wrong secret or failed challenge response.
    AmiAuthFailed,
    /// The user's permit/deny ACL refused the address.
    AmiAclDenied,
    /// A session that connected and never authenticated.
    AmiNoAuth,

    // IAX2 (chan_iax2).
    /// Wrong secret (plaintext or MD5) for a peer.
    IaxAuthFailed,
    /// Registration for a peer that does not exist.
    IaxUnknownPeer,
    /// Registration for a peer that is not dynamic.
    IaxPeerNotDynamic,
    /// The peer's ACL refused the address.
    IaxAclDenied,

    // sshd.
    /// `Failed password for ...`.
    SshFailedPassword,
    /// `Failed publickey for ...`.
    SshFailedPublickey,
    /// Another failed method (keyboard-interactive, hostbased, gssapi).
    SshFailedAuth,
    /// `Invalid user ... from ...`.
    SshInvalidUser,
    /// `User ... from ... not allowed because ...` (AllowUsers, DenyGroups...).
    SshUserNotAllowed,
    /// `maximum authentication attempts exceeded for ...`.
    SshMaxAuthAttempts,
    /// `Disconnecting ...: Too many authentication failures`.
    SshTooManyAuthFailures,
    /// A pre-authentication disconnect or close by an invalid or
    /// authenticating user.
    SshPreauthDisconnect,
}

impl FailureKind {
    pub const ALL: [FailureKind; 40] = [
        FailureKind::SipWrongPassword,
        FailureKind::SipUnknownPeer,
        FailureKind::SipAuthNameMismatch,
        FailureKind::SipNotLocalDomain,
        FailureKind::SipPeerNotDynamic,
        FailureKind::SipAclDenied,
        FailureKind::SipWrongTransport,
        FailureKind::SipUnknownExtension,
        FailureKind::SipUnknownConnection,
        FailureKind::SipHackingAttempt,
        FailureKind::PjsipUnknownEndpoint,
        FailureKind::PjsipAclDenied,
        FailureKind::PjsipContactAclDenied,
        FailureKind::PjsipAuthFailed,
        FailureKind::SecurityInvalidAccountId,
        FailureKind::SecurityInvalidPassword,
        FailureKind::SecurityChallengeResponseFailed,
        FailureKind::SecurityFailedAcl,
        FailureKind::SecurityAuthMethodNotAllowed,
        FailureKind::SecurityInvalidTransport,
        FailureKind::SecurityUnexpectedAddress,
        FailureKind::SecurityRequestNotAllowed,
        FailureKind::SecurityRequestNotSupported,
        FailureKind::SecurityRequestBadFormat,
        FailureKind::AmiUnknownUser,
        FailureKind::AmiAuthFailed,
        FailureKind::AmiAclDenied,
        FailureKind::AmiNoAuth,
        FailureKind::IaxAuthFailed,
        FailureKind::IaxUnknownPeer,
        FailureKind::IaxPeerNotDynamic,
        FailureKind::IaxAclDenied,
        FailureKind::SshFailedPassword,
        FailureKind::SshFailedPublickey,
        FailureKind::SshFailedAuth,
        FailureKind::SshInvalidUser,
        FailureKind::SshUserNotAllowed,
        FailureKind::SshMaxAuthAttempts,
        FailureKind::SshTooManyAuthFailures,
        FailureKind::SshPreauthDisconnect,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            FailureKind::SipWrongPassword => "sip-wrong-password",
            FailureKind::SipUnknownPeer => "sip-unknown-peer",
            FailureKind::SipAuthNameMismatch => "sip-auth-name-mismatch",
            FailureKind::SipNotLocalDomain => "sip-not-local-domain",
            FailureKind::SipPeerNotDynamic => "sip-peer-not-dynamic",
            FailureKind::SipAclDenied => "sip-acl-denied",
            FailureKind::SipWrongTransport => "sip-wrong-transport",
            FailureKind::SipUnknownExtension => "sip-unknown-extension",
            FailureKind::SipUnknownConnection => "sip-unknown-connection",
            FailureKind::SipHackingAttempt => "sip-hacking-attempt",
            FailureKind::PjsipUnknownEndpoint => "pjsip-unknown-endpoint",
            FailureKind::PjsipAclDenied => "pjsip-acl-denied",
            FailureKind::PjsipContactAclDenied => "pjsip-contact-acl-denied",
            FailureKind::PjsipAuthFailed => "pjsip-auth-failed",
            FailureKind::SecurityInvalidAccountId => "security-invalid-account-id",
            FailureKind::SecurityInvalidPassword => "security-invalid-password",
            FailureKind::SecurityChallengeResponseFailed => "security-challenge-response-failed",
            FailureKind::SecurityFailedAcl => "security-failed-acl",
            FailureKind::SecurityAuthMethodNotAllowed => "security-auth-method-not-allowed",
            FailureKind::SecurityInvalidTransport => "security-invalid-transport",
            FailureKind::SecurityUnexpectedAddress => "security-unexpected-address",
            FailureKind::SecurityRequestNotAllowed => "security-request-not-allowed",
            FailureKind::SecurityRequestNotSupported => "security-request-not-supported",
            FailureKind::SecurityRequestBadFormat => "security-request-bad-format",
            FailureKind::AmiUnknownUser => "ami-unknown-user",
            FailureKind::AmiAuthFailed => "ami-auth-failed",
            FailureKind::AmiAclDenied => "ami-acl-denied",
            FailureKind::AmiNoAuth => "ami-no-auth",
            FailureKind::IaxAuthFailed => "iax-auth-failed",
            FailureKind::IaxUnknownPeer => "iax-unknown-peer",
            FailureKind::IaxPeerNotDynamic => "iax-peer-not-dynamic",
            FailureKind::IaxAclDenied => "iax-acl-denied",
            FailureKind::SshFailedPassword => "ssh-failed-password",
            FailureKind::SshFailedPublickey => "ssh-failed-publickey",
            FailureKind::SshFailedAuth => "ssh-failed-auth",
            FailureKind::SshInvalidUser => "ssh-invalid-user",
            FailureKind::SshUserNotAllowed => "ssh-user-not-allowed",
            FailureKind::SshMaxAuthAttempts => "ssh-max-auth-attempts",
            FailureKind::SshTooManyAuthFailures => "ssh-too-many-auth-failures",
            FailureKind::SshPreauthDisconnect => "ssh-preauth-disconnect",
        }
    }

    /// The source saw sipshield's host answer before this failure, so its
    /// address is no forgery: a TCP handshake (sshd, AMI), or a digest
    /// response to a challenge (a wrong password: Asterisk's nonces are
    /// bound to the source address, res_pjsip_authenticator_digest.c
    /// `build_nonce`, and chan_sip keeps them per dialog). Only bans backed
    /// by such failures go to the fleet.
    pub const fn is_proof(self) -> bool {
        matches!(
            self,
            FailureKind::SipWrongPassword
                | FailureKind::PjsipAuthFailed
                | FailureKind::SecurityInvalidPassword
                | FailureKind::SecurityChallengeResponseFailed
                | FailureKind::AmiUnknownUser
                | FailureKind::AmiAuthFailed
                | FailureKind::AmiAclDenied
                | FailureKind::AmiNoAuth
                | FailureKind::SshFailedPassword
                | FailureKind::SshFailedPublickey
                | FailureKind::SshFailedAuth
                | FailureKind::SshInvalidUser
                | FailureKind::SshUserNotAllowed
                | FailureKind::SshMaxAuthAttempts
                | FailureKind::SshTooManyAuthFailures
                | FailureKind::SshPreauthDisconnect
        )
    }

    /// The policy class this failure counts toward.
    pub const fn class(self) -> OffenceClass {
        match self {
            FailureKind::SipWrongPassword
            | FailureKind::SipUnknownPeer
            | FailureKind::SipAuthNameMismatch
            | FailureKind::SipNotLocalDomain
            | FailureKind::SipPeerNotDynamic
            | FailureKind::SipAclDenied
            | FailureKind::SipWrongTransport
            | FailureKind::PjsipUnknownEndpoint
            | FailureKind::PjsipAclDenied
            | FailureKind::PjsipContactAclDenied
            | FailureKind::PjsipAuthFailed
            | FailureKind::SecurityInvalidAccountId
            | FailureKind::SecurityInvalidPassword
            | FailureKind::SecurityChallengeResponseFailed
            | FailureKind::SecurityFailedAcl
            | FailureKind::SecurityAuthMethodNotAllowed
            | FailureKind::SecurityInvalidTransport
            | FailureKind::SecurityUnexpectedAddress => OffenceClass::SipAuth,
            FailureKind::SipUnknownExtension
            | FailureKind::SipUnknownConnection
            | FailureKind::SipHackingAttempt
            | FailureKind::SecurityRequestNotAllowed
            | FailureKind::SecurityRequestNotSupported
            | FailureKind::SecurityRequestBadFormat => OffenceClass::SipProbe,
            FailureKind::AmiUnknownUser
            | FailureKind::AmiAuthFailed
            | FailureKind::AmiAclDenied
            | FailureKind::AmiNoAuth => OffenceClass::Ami,
            FailureKind::IaxAuthFailed
            | FailureKind::IaxUnknownPeer
            | FailureKind::IaxPeerNotDynamic
            | FailureKind::IaxAclDenied => OffenceClass::Iax,
            FailureKind::SshFailedPassword
            | FailureKind::SshFailedPublickey
            | FailureKind::SshFailedAuth
            | FailureKind::SshInvalidUser
            | FailureKind::SshUserNotAllowed
            | FailureKind::SshMaxAuthAttempts
            | FailureKind::SshTooManyAuthFailures
            | FailureKind::SshPreauthDisconnect => OffenceClass::Ssh,
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string is not one of `FailureKind::as_str`.
#[derive(Debug, thiserror::Error)]
#[error("unknown failure kind {0:?}")]
pub struct UnknownFailureKind(pub String);

impl FromStr for FailureKind {
    type Err = UnknownFailureKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FailureKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownFailureKind(s.to_owned()))
    }
}

impl serde::Serialize for FailureKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for FailureKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A remote address failed (or probed) something: the policy counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Failure {
    pub source: LogSource,
    pub kind: FailureKind,
    /// The remote peer, canonical: IPv4-mapped IPv6 is reported as IPv4.
    pub ip: IpAddr,
}

impl Failure {
    pub const fn class(&self) -> OffenceClass {
        self.kind.class()
    }
}

/// A remote address authenticated successfully (res_security_log
/// `SuccessfulAuth`, sshd `Accepted ...`). Policy may use it to recognise
/// legitimate users; it is never a reason to ban.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct KnownGood {
    pub source: LogSource,
    pub ip: IpAddr,
    /// sshd's `Accepted` line: the session it opened.
    pub session: Option<SshLogin>,
}

/// The connection an sshd login was accepted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct SshLogin {
    /// The peer's port: with the address, the connection in the kernel's table.
    pub port: u16,
    pub method: &'static str,
}

/// What one log line says, if anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Parsed {
    Failure(Failure),
    KnownGood(KnownGood),
}

impl Parsed {
    pub const fn failure(kind: FailureKind, source: LogSource, ip: IpAddr) -> Parsed {
        Parsed::Failure(Failure { source, kind, ip })
    }

    pub const fn as_failure(&self) -> Option<&Failure> {
        match self {
            Parsed::Failure(failure) => Some(failure),
            Parsed::KnownGood(_) => None,
        }
    }

    pub const fn ip(&self) -> IpAddr {
        match self {
            Parsed::Failure(failure) => failure.ip,
            Parsed::KnownGood(good) => good.ip,
        }
    }

    pub const fn source(&self) -> LogSource {
        match self {
            Parsed::Failure(failure) => failure.source,
            Parsed::KnownGood(good) => good.source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_kebab_case_name_that_parses_back() {
        let mut seen = std::collections::HashSet::new();
        for kind in FailureKind::ALL {
            let name = kind.as_str();
            assert!(seen.insert(name), "{name} used twice");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{name} is not kebab-case"
            );
            assert_eq!(name.parse::<FailureKind>().ok(), Some(kind));
        }
        assert!("sip-nonsense".parse::<FailureKind>().is_err());
    }

    #[test]
    fn kinds_map_to_the_class_of_the_service_they_concern() {
        assert_eq!(FailureKind::SipWrongPassword.class(), OffenceClass::SipAuth);
        assert_eq!(
            FailureKind::PjsipUnknownEndpoint.class(),
            OffenceClass::SipAuth
        );
        assert_eq!(
            FailureKind::SipUnknownExtension.class(),
            OffenceClass::SipProbe
        );
        assert_eq!(FailureKind::AmiUnknownUser.class(), OffenceClass::Ami);
        assert_eq!(FailureKind::IaxAuthFailed.class(), OffenceClass::Iax);
        assert_eq!(FailureKind::SshInvalidUser.class(), OffenceClass::Ssh);
    }

    #[test]
    fn kind_serializes_as_its_name() {
        let json = serde_json::to_string(&FailureKind::SecurityFailedAcl).unwrap();
        assert_eq!(json, "\"security-failed-acl\"");
        let back: FailureKind = serde_json::from_str(&json).unwrap();
        assert_eq!(back, FailureKind::SecurityFailedAcl);
    }
}

/// More readings than this are no tie to break.
pub const MAX_CANDIDATES: usize = 4;

/// A failure line with two or more readings of its sender, each complete
/// (the line was not cut): the daemon charges the one candidate the kernel
/// saw send, if exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ambiguity {
    pub kind: FailureKind,
    pub candidates: [Option<IpAddr>; MAX_CANDIDATES],
}

impl Ambiguity {
    /// Two to `MAX_CANDIDATES` distinct addresses, else none.
    pub fn new(kind: FailureKind, found: &[IpAddr]) -> Option<Ambiguity> {
        let mut distinct: Vec<IpAddr> = found.to_vec();
        distinct.sort();
        distinct.dedup();
        if distinct.len() < 2 || distinct.len() > MAX_CANDIDATES {
            return None;
        }
        let mut candidates = [None; MAX_CANDIDATES];
        for (slot, ip) in candidates.iter_mut().zip(distinct) {
            *slot = Some(ip);
        }
        Some(Ambiguity { kind, candidates })
    }

    pub fn candidates(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.candidates.iter().flatten().copied()
    }
}
