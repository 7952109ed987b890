//! Types shared by the XDP program and userspace.
//!
//! Every struct here crosses the kernel/user boundary through a BPF map or the
//! ring buffer, so all are `#[repr(C)]` with explicit padding and no implicit
//! holes. Addresses are stored as raw bytes in network byte order (exactly as
//! they appear in the packet); every other integer is in host byte order.
//! Times are `CLOCK_MONOTONIC` nanoseconds (`bpf_ktime_get_ns`).
#![no_std]

pub mod config;
pub mod counters;
pub mod event;
pub mod maps;
pub mod sip;

pub use config::{Mode, RateLimit, ScannerAction, SipPort, UaPrefix, XdpConfig};
pub use counters::{Action, Counter, Reason};
pub use event::{Event, EventKind};
pub use maps::{AllowEntry, BanEntry, BanOrigin, KnownEntry, Meta, RangeEntry, SourceStats};
pub use sip::Method;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: every type below is `#[repr(C)]`, `Copy`, made only of integers
    // and byte arrays, and has no implicit padding: any bit pattern is valid.
    unsafe impl aya::Pod for crate::XdpConfig {}
    unsafe impl aya::Pod for crate::UaPrefix {}
    unsafe impl aya::Pod for crate::config::RateLimit {}
    unsafe impl aya::Pod for crate::config::SipPort {}
    unsafe impl aya::Pod for crate::BanEntry {}
    unsafe impl aya::Pod for crate::RangeEntry {}
    unsafe impl aya::Pod for crate::SourceStats {}
    unsafe impl aya::Pod for crate::AllowEntry {}
    unsafe impl aya::Pod for crate::KnownEntry {}
    unsafe impl aya::Pod for crate::Meta {}
}
