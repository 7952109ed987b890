//! The lab: a PBX behind a router with an attacker, a SIP trunk and a
//! phone, each in its own network namespace; the SIP pieces that play them;
//! and the real attack tools. Used by the end-to-end tests and by
//! `cargo xtask demo` (through the `sipshield-lab` binary).

pub mod attack;
pub mod client;
pub mod digest;
pub mod fleet;
pub mod pbx;
pub mod scene;
pub mod shield;
pub mod sip;
pub mod topology;
