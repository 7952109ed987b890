//! Userspace's typed view of the XDP program and its maps.

pub mod object;
