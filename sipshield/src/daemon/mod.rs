//! `sipshield run`: the daemon. `shield` is the kernel side, `watch` the
//! log files, `engine` the decisions, `run` the event loop, `status` the
//! report served to the CLI.

pub mod engine;
pub mod run;
pub mod saver;
pub mod shield;
pub mod status;
pub mod watch;

pub use run::{run, Overrides, RunOptions};
