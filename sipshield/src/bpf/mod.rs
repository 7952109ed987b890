//! Userspace's typed view of the XDP program and its maps.
//!
//! `ShieldMaps` bundles one handle per map, taken either from a freshly
//! loaded program (`loader`) or from pins in bpffs; the daemon, the CLI and
//! the tests all go through these types, never through raw map names.

pub mod addr;
pub mod allowlist;
pub mod ban_filter;
pub mod ban_table;
mod batch;
pub mod clock;
pub mod config_map;
pub mod events;
pub mod iface_stats;
pub mod known;
pub mod loader;
pub mod meta;
pub mod migrate;
pub mod object;
mod pin_lifetime;
pub mod pins;
pub mod ranges;
pub mod shield_maps;
pub mod sources;
pub mod stats;

pub use allowlist::Allowlist;
pub use ban_table::BanTable;
pub use config_map::ConfigMap;
pub use events::{EventStream, KernelEvent};
pub use known::KnownSources;
pub use loader::{AttachMode, LoadedProgram, MapSizes};
pub use ranges::BanRanges;
pub use shield_maps::ShieldMaps;
pub use sources::SourceCounters;
pub use stats::{Stats, StatsSnapshot};

/// Errors of the map layer and loader.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("this sipshield binary was built without the XDP program (AYA_BUILD_SKIP); rebuild after `cargo xtask deps`")]
    NotEmbedded,
    #[error("loading the XDP program: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("XDP program: {0}")]
    Program(#[from] aya::programs::ProgramError),
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("map {0} is missing from the program object")]
    MissingMap(&'static str),
    #[error("pinning {path}: {source}")]
    Pin {
        path: String,
        #[source]
        source: aya::pin::PinError,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("the {origin} share of the ban table is full: {target} is not banned in the kernel (raise xdp.max_bans)")]
    ShareFull {
        target: std::net::IpAddr,
        origin: &'static str,
    },
    #[error("attaching to {iface} in {mode} mode: {source} (try --xdp-mode skb)")]
    Attach {
        iface: String,
        mode: AttachMode,
        #[source]
        source: aya::programs::ProgramError,
    },
}

pub(crate) fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> BpfError {
    move |source| BpfError::Map { name, source }
}
