//! Measurements for `cargo xtask bench` that need the kernel.

pub mod daemon_bench;
pub mod droprate;
pub mod throughput;
