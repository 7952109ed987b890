//! sipshield: protects SIP/Asterisk hosts.
//!
//! Data flow, one module per room: packets are judged by the XDP program
//! (`bpf` is userspace's typed view of its maps); log lines become failure
//! events (`logs`), events become bans (`policy`), bans are kept (`state`) and
//! served to the CLI (`control`). `hardening` audits the host's configuration
//! (`sipshield audit`).

pub mod bpf;
pub mod config;
pub mod control;
pub mod daemon;
pub mod fleet;
pub mod hardening;
pub mod logs;
pub mod offence;
pub mod policy;
pub mod state;
