//! What an address did, as far as ban policy is concerned.
//!
//! Log parsers and the kernel's ring-buffer events both produce offences;
//! policy counts them per source and class in sliding windows.

use std::fmt;

/// A class of offence with its own threshold, window and ban ladder.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum OffenceClass {
    /// SIP authentication failures (wrong password, unknown peer/endpoint, ACL).
    SipAuth,
    /// SIP probing: calls to unknown extensions, unknown connections, hacking attempts.
    SipProbe,
    /// Asterisk Manager Interface login failures.
    Ami,
    /// IAX2 authentication/registration failures.
    Iax,
    /// sshd authentication failures.
    Ssh,
    /// Kernel rate guard fired.
    RateGuard,
    /// Kernel scanner User-Agent signature matched.
    Scanner,
    /// Operator action.
    Manual,
}

impl OffenceClass {
    pub const ALL: [OffenceClass; 8] = [
        OffenceClass::SipAuth,
        OffenceClass::SipProbe,
        OffenceClass::Ami,
        OffenceClass::Iax,
        OffenceClass::Ssh,
        OffenceClass::RateGuard,
        OffenceClass::Scanner,
        OffenceClass::Manual,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            OffenceClass::SipAuth => "sip-auth",
            OffenceClass::SipProbe => "sip-probe",
            OffenceClass::Ami => "ami",
            OffenceClass::Iax => "iax",
            OffenceClass::Ssh => "ssh",
            OffenceClass::RateGuard => "rate-guard",
            OffenceClass::Scanner => "scanner",
            OffenceClass::Manual => "manual",
        }
    }
}

impl fmt::Display for OffenceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
