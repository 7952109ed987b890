//! Bans shared by the fleet: decisions pulled from CrowdSec's Local API
//! (sipshield as a bouncer). They live in a book of their own
//! (`book::FleetBook`) and a share of the ban tables of their own; the
//! engine combines them with sipshield's own bans.

pub mod book;
pub mod crowdsec;
pub mod feeds;
pub mod go_duration;

/// The HTTP client of every fleet thread (LAPI, feeds): rustls with ring,
/// a connect and a whole-request timeout, sipshield's User-Agent (LAPI
/// wants `name/version`, with one slash).
pub(crate) fn http_agent(connect: std::time::Duration, whole: std::time::Duration) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(connect)
        .timeout(whole)
        .user_agent(concat!("sipshield/", env!("CARGO_PKG_VERSION")))
        .build()
}
