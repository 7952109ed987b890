//! Bans shared by the fleet: decisions pulled from CrowdSec's Local API
//! (sipshield as a bouncer). They live in a book of their own
//! (`book::FleetBook`) and a share of the ban tables of their own; the
//! engine combines them with sipshield's own bans.

pub mod book;
pub mod crowdsec;
pub mod feeds;
pub mod go_duration;
