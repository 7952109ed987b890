//! The XDP program object, embedded at build time by `build.rs`.

/// The compiled eBPF object (ELF). Empty when built with `AYA_BUILD_SKIP=1`.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sipshield"));

/// True when this binary was built with the XDP program inside.
pub fn is_embedded() -> bool {
    !OBJECT.is_empty()
}

/// Baseline programs for `cargo xtask bench` (`bench_pass`,
/// `bench_lookup_drop`); a few KB, never loaded by sipshield itself.
pub static BASELINES: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sipshield-baselines"));
