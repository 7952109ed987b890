//! Loading the embedded XDP program with configured map sizes, and
//! attaching it to interfaces.

use std::{fmt, path::Path, str::FromStr};

use aya::{
    programs::{xdp::XdpLinkId, Xdp, XdpMode},
    Ebpf, EbpfLoader,
};
use sipshield_common::maps as names;

use super::{object, shield_maps::MAP_NAMES, BpfError, ShieldMaps};

/// Name of the XDP entry point in the object.
pub const PROGRAM_NAME: &str = "sipshield";

/// Map capacities, fixed at load time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapSizes {
    /// Exact bans per address family.
    pub max_bans: u32,
    /// Banned CIDR ranges per address family.
    pub max_ranges: u32,
    /// Allowlist prefixes per address family.
    pub max_allow: u32,
    /// Sources tracked for SIP accounting per family (LRU).
    pub max_sources: u32,
    /// The kernel's own ban share per family (LRU).
    pub max_kernel_bans: u32,
    /// Known-good sources per family.
    pub max_known: u32,
}

impl Default for MapSizes {
    fn default() -> Self {
        MapSizes {
            max_bans: names::DEFAULT_MAX_BANS,
            max_ranges: names::DEFAULT_MAX_RANGES,
            max_allow: names::DEFAULT_MAX_ALLOW,
            max_sources: names::DEFAULT_MAX_SOURCES,
            max_kernel_bans: names::DEFAULT_MAX_KERNEL_BANS,
            max_known: names::DEFAULT_MAX_KNOWN,
        }
    }
}

/// How to attach: let the kernel choose, native driver mode, or generic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    #[default]
    Auto,
    Driver,
    Skb,
}

impl AttachMode {
    pub fn xdp_mode(self) -> XdpMode {
        match self {
            AttachMode::Auto => XdpMode::Default,
            AttachMode::Driver => XdpMode::Driver,
            AttachMode::Skb => XdpMode::Skb,
        }
    }
}

impl fmt::Display for AttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttachMode::Auto => "auto",
            AttachMode::Driver => "driver",
            AttachMode::Skb => "skb",
        })
    }
}

impl FromStr for AttachMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(AttachMode::Auto),
            "driver" | "native" | "drv" => Ok(AttachMode::Driver),
            "skb" | "generic" => Ok(AttachMode::Skb),
            _ => Err(format!(
                "unknown XDP mode {s:?} (expected auto, driver or skb)"
            )),
        }
    }
}

/// The program loaded into the kernel (verified), not yet attached.
pub struct LoadedProgram {
    ebpf: Ebpf,
}

impl LoadedProgram {
    /// Loads the embedded object with these map sizes and verifies the program.
    pub fn load(sizes: MapSizes) -> Result<LoadedProgram, BpfError> {
        Self::load_with(sizes, None)
    }

    /// As `load`, with every map pinned under `maps_dir`: maps already
    /// pinned there are reused as they are (the caller checks they fit),
    /// missing ones are created and pinned.
    pub fn load_pinned(sizes: MapSizes, maps_dir: &Path) -> Result<LoadedProgram, BpfError> {
        Self::load_with(sizes, Some(maps_dir))
    }

    fn load_with(sizes: MapSizes, maps_dir: Option<&Path>) -> Result<LoadedProgram, BpfError> {
        if !object::is_embedded() {
            return Err(BpfError::NotEmbedded);
        }
        let mut loader = EbpfLoader::new();
        if let Some(dir) = maps_dir {
            for name in MAP_NAMES {
                loader.map_pin_path(name, dir.join(name));
            }
        }
        for name in [names::BANS_V4, names::BANS_V6] {
            loader.map_max_entries(name, sizes.max_bans);
        }
        for name in [names::RANGES_V4, names::RANGES_V6] {
            loader.map_max_entries(name, sizes.max_ranges);
        }
        for name in [names::ALLOW_V4, names::ALLOW_V6] {
            loader.map_max_entries(name, sizes.max_allow);
        }
        for name in [names::SOURCES_V4, names::SOURCES_V6] {
            loader.map_max_entries(name, sizes.max_sources);
        }
        for name in [names::KBANS_V4, names::KBANS_V6] {
            loader.map_max_entries(name, sizes.max_kernel_bans);
        }
        for name in [names::KNOWN_V4, names::KNOWN_V6] {
            loader.map_max_entries(name, sizes.max_known);
        }
        let mut ebpf = loader.load(object::OBJECT)?;
        xdp_of(&mut ebpf)?.load()?;
        Ok(LoadedProgram { ebpf })
    }

    pub fn xdp(&mut self) -> Result<&mut Xdp, BpfError> {
        xdp_of(&mut self.ebpf)
    }

    pub fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }

    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Attaches to `iface`. The link lives as long as this `LoadedProgram`
    /// unless it is taken and pinned.
    pub fn attach(&mut self, iface: &str, mode: AttachMode) -> Result<XdpLinkId, BpfError> {
        let first = self.xdp()?.attach(iface, mode.xdp_mode());
        match (first, mode) {
            (Ok(id), _) => Ok(id),
            // The driver has native XDP but refused this program (an MTU
            // too large, a missing feature): generic mode still guards it,
            // and an admin's SSH session over that interface is no worse off.
            (Err(native), AttachMode::Auto) => {
                log::warn!("{iface}: native XDP attach refused ({native}); using generic mode");
                self.xdp()?
                    .attach(iface, AttachMode::Skb.xdp_mode())
                    .map_err(|source| BpfError::Attach {
                        iface: iface.to_string(),
                        mode: AttachMode::Skb,
                        source,
                    })
            }
            (Err(source), _) => Err(BpfError::Attach {
                iface: iface.to_string(),
                mode,
                source,
            }),
        }
    }

    /// Takes the maps out (the program keeps using them).
    pub fn take_maps(&mut self) -> Result<ShieldMaps, BpfError> {
        ShieldMaps::take_from(&mut self.ebpf)
    }

    /// The kernel's id of the loaded program.
    pub fn program_id(&mut self) -> Result<u32, BpfError> {
        Ok(self.xdp()?.info()?.id())
    }
}

fn xdp_of(ebpf: &mut Ebpf) -> Result<&mut Xdp, BpfError> {
    let prog = ebpf
        .program_mut(PROGRAM_NAME)
        .ok_or_else(|| BpfError::Invalid(format!("program {PROGRAM_NAME} missing from object")))?;
    prog.try_into()
        .map_err(|e: aya::programs::ProgramError| BpfError::Program(e))
}
