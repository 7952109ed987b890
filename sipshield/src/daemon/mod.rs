//! `sipshield run`: the daemon. `shield` is the kernel side, `watch` the
//! log files, `engine` the decisions, `run` the event loop, `status` the
//! report served to the CLI.

pub mod engine;
pub mod events;
pub mod metrics;
pub mod restore;
pub mod run;
pub mod shield;
pub mod status;
pub mod store;
pub mod watch;

pub use run::{run, Overrides, RunOptions};
