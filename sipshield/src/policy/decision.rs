//! What policy answers to each offence.

use std::{
    net::IpAddr,
    time::{Duration, SystemTime},
};

use super::AllowEntry;
use crate::{config::format_duration, offence::OffenceClass};

/// A ban policy has decided on (or would decide on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanOrder {
    pub ip: IpAddr,
    pub class: OffenceClass,
    /// `None`: permanent.
    pub duration: Option<Duration>,
    /// The source's how-many-th ban this is (1 = first); the ban ladder step
    /// is `offence_number - 1` (the last step repeats).
    pub offence_number: u32,
    /// When it was decided (the offence's time).
    pub at: SystemTime,
    /// For logs and `sipshield bans list`, e.g.
    /// "5 sip-auth offences within 10m (ban #2 of this source: 1h)".
    pub reason: String,
}

impl BanOrder {
    /// Wall-clock end of the ban; `None` when permanent.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.duration.and_then(|d| self.at.checked_add(d))
    }

    /// "1h", "permanent".
    pub fn length_text(&self) -> String {
        self.duration
            .map_or_else(|| "permanent".to_string(), format_duration)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Counted; the threshold is not reached yet.
    Pending { count: u32, threshold: u32 },
    /// The source is already banned (in observe mode: would be); the offence
    /// only refreshes its history.
    AlreadyBanned,
    /// The class is not counted from logs (kernel and manual classes) or is
    /// disabled in the config.
    Ignored,
    /// Ban `ip` now (kernel ban table, state file).
    Ban(BanOrder),
    /// What would have been banned, reported and never applied: the source is
    /// allowlisted (`allowlisted` names the entry), or the shield is in
    /// observe mode (`allowlisted` is `None`). For a ban the kernel already
    /// made, the daemon lifts it.
    WouldBan {
        ban: BanOrder,
        allowlisted: Option<AllowEntry>,
    },
}

impl Decision {
    /// The ban to apply, if any.
    pub fn ban(&self) -> Option<&BanOrder> {
        match self {
            Decision::Ban(order) => Some(order),
            _ => None,
        }
    }

    pub fn is_allowlisted(&self) -> bool {
        matches!(
            self,
            Decision::WouldBan {
                allowlisted: Some(_),
                ..
            }
        )
    }
}
