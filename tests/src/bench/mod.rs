//! Measurements for `cargo xtask bench` that need the kernel.

pub mod droprate;
