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

/// Identifies this build of the program: FNV-1a over the object's bytes.
/// Pinned maps record it, so a restart can tell its own program from an
/// older one it must replace.
pub fn build_id() -> u64 {
    OBJECT.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
