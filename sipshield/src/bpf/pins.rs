//! Pinning in bpffs: one program and one set of maps shared by every
//! guarded interface, so bans stay enforced everywhere when the daemon dies
//! and a ban made on one interface drops on all of them at once.
//!
//! Layout under the root (`bpffs_dir`):
//! - `maps/<MAP>`: every map, once; `META` records the layout version and
//!   the build id of the program using them;
//! - `links/<iface>`: one XDP bpf_link per interface (bpffs refuses dots in
//!   names, so a `.` of a VLAN name like `eth0.100` is pinned as `:`, which
//!   no interface name can hold).
//!
//! Start-up, in order of preference: adopt (same build, same layout: no
//! load at all), replace the program in place on the same maps
//! (`bpf_link_update`: no gap), or migrate every entry into new maps when
//! the layout or a size changed. Nothing is ever removed before its
//! entries are safe elsewhere: a failed adoption is an error, not a reset.

use std::{
    fs, io,
    path::{Path, PathBuf},
    process::Command,
};

use aya::{
    maps::MapInfo,
    programs::{
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
    },
};
use sipshield_common::maps::{self as names, Meta, LAYOUT_VERSION};

use super::{
    iface_stats::{self, IfaceSlot},
    loader::{AttachMode, LoadedProgram, MapSizes},
    migrate, object,
    shield_maps::MAP_NAMES,
    BpfError, ShieldMaps,
};

pub const DEFAULT_PIN_ROOT: &str = "/sys/fs/bpf/sipshield";
const MAPS_DIR: &str = "maps";
const LINKS_DIR: &str = "links";
/// Where a link pin is made before it replaces the old one.
const LINKS_TMP_DIR: &str = "links-new";
/// Where incompatible maps wait while their entries are copied.
const MAPS_OLD_DIR: &str = "maps-old";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// One guarded interface.
#[derive(Clone, Debug)]
pub struct LinkState {
    pub iface: String,
    /// True when a running link was adopted rather than attached now.
    pub adopted: bool,
}

/// The pinned program and maps, and the interfaces they guard.
pub struct Pinned {
    pub root: PathBuf,
    pub maps: ShieldMaps,
    /// The kernel id of the pinned program (0 when none is pinned).
    pub program_id: u32,
    pub links: Vec<LinkState>,
    /// What start-up did, for the log and `status`.
    pub how: String,
    /// The counter slot of each interface.
    pub slots: Vec<IfaceSlot>,
}

pub fn maps_dir(root: &Path) -> PathBuf {
    root.join(MAPS_DIR)
}

pub fn links_dir(root: &Path) -> PathBuf {
    root.join(LINKS_DIR)
}

/// The pin of `iface`'s link.
pub fn link_pin(root: &Path, iface: &str) -> PathBuf {
    links_dir(root).join(iface.replace('.', ":"))
}

fn invalid(what: impl std::fmt::Display) -> BpfError {
    BpfError::Invalid(what.to_string())
}

/// Mounts bpffs on `/sys/fs/bpf` if `root` is not on a bpffs already.
pub fn ensure_bpffs(root: &Path) -> Result<(), BpfError> {
    let probe = root
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    if is_bpffs(probe) {
        return Ok(());
    }
    let sys_bpf = Path::new("/sys/fs/bpf");
    if root.starts_with(sys_bpf) && !is_bpffs(sys_bpf) {
        let status = Command::new("mount")
            .args(["-t", "bpf", "bpf", "/sys/fs/bpf"])
            .status()
            .map_err(|e| invalid(format!("mounting bpffs: {e}")))?;
        if status.success() && is_bpffs(sys_bpf) {
            return Ok(());
        }
    }
    Err(invalid(format!(
        "{} is not on a bpf filesystem (mount -t bpf bpf /sys/fs/bpf)",
        root.display()
    )))
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: valid C string and a zeroed statfs for the kernel to fill.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == BPF_FS_MAGIC
    }
}

fn mkdir(dir: &Path) -> Result<(), BpfError> {
    fs::create_dir_all(dir).map_err(|e| invalid(format!("{}: {e}", dir.display())))
}

/// Why the pinned maps cannot be reused as they are, or `None` if they can.
fn incompatibility(dir: &Path, sizes: MapSizes) -> Option<String> {
    // The layout first: an older one's maps may not open as this one's.
    if let Ok(m) = super::meta::MetaMap::from_pins(dir).and_then(|meta| meta.read()) {
        if m.layout != LAYOUT_VERSION {
            return Some(format!("layout {} pinned, {LAYOUT_VERSION} here", m.layout));
        }
    }
    let maps = match ShieldMaps::from_pins(dir) {
        Ok(m) => m,
        Err(e) => return Some(format!("pinned maps do not open as this layout ({e})")),
    };
    match maps.meta.read() {
        Ok(m) if m.layout == LAYOUT_VERSION => {}
        Ok(m) => return Some(format!("layout {} pinned, {LAYOUT_VERSION} here", m.layout)),
        Err(e) => return Some(format!("layout unreadable ({e})")),
    }
    // aya reuses a pinned map without checking its size: check it here.
    let wanted = [
        (names::BANS_V4, sizes.max_bans),
        (names::BANS_V6, sizes.max_bans),
        (names::KBANS_V4, sizes.max_kernel_bans),
        (names::KBANS_V6, sizes.max_kernel_bans),
        (names::RANGES_V4, sizes.max_ranges),
        (names::RANGES_V6, sizes.max_ranges),
        (names::ALLOW_V4, sizes.max_allow),
        (names::ALLOW_V6, sizes.max_allow),
        (names::KNOWN_V4, sizes.max_known),
        (names::KNOWN_V6, sizes.max_known),
        (names::SOURCES_V4, sizes.max_sources),
        (names::SOURCES_V6, sizes.max_sources),
        // A filter gone (removed by hand) would be made afresh, empty, in
        // front of every ban: migrate instead, which marks them all.
        (names::BAN_FILTER, names::BAN_FILTER_WORDS),
    ];
    for (name, want) in wanted {
        match MapInfo::from_pin(dir.join(name)) {
            Ok(info) if info.max_entries() == want => {}
            Ok(info) => {
                return Some(format!(
                    "{name} holds {} entries, {want} configured",
                    info.max_entries()
                ))
            }
            Err(e) => return Some(format!("{name}: {e}")),
        }
    }
    None
}

/// The program id a pinned link runs, if the link is alive on `iface`.
fn live_link(path: &Path, iface: &str) -> Option<FdLink> {
    let link = PinnedLink::from_pin(path).ok()?;
    let fd: FdLink = link.into();
    let prog = fd.info().ok()?.program_id();
    (attached_program_id(iface) == Some(prog)).then_some(fd)
}

/// The program the pinned links run (the first one that opens).
fn pinned_program_id(root: &Path) -> Option<u32> {
    pinned_interfaces(root).iter().find_map(|iface| {
        let link = PinnedLink::from_pin(link_pin(root, iface)).ok()?;
        let fd: FdLink = link.into();
        fd.info().ok().map(|i| i.program_id())
    })
}

/// Attaches the program (or adopts it) on every interface of `ifaces`,
/// with one shared set of maps pinned under `root`.
pub fn attach_all(
    root: &Path,
    ifaces: &[String],
    mode: AttachMode,
    sizes: MapSizes,
) -> Result<Pinned, BpfError> {
    ensure_bpffs(root)?;
    super::pin_lifetime::check(root)?;
    let maps_dir = maps_dir(root);
    let links_dir = links_dir(root);
    mkdir(&maps_dir)?;
    mkdir(&links_dir)?;
    let build_id = object::build_id();
    let has_pins = maps_dir.join(names::META).exists() || maps_dir.join(names::BANS_V4).exists();
    let problem = has_pins
        .then(|| incompatibility(&maps_dir, sizes))
        .flatten();
    let legacy = migrate::legacy_interfaces(root);

    // Adopt: same layout, same build, every interface running it.
    if has_pins && problem.is_none() && legacy.is_empty() {
        let maps = ShieldMaps::from_pins(&maps_dir)?;
        let same_build = maps.meta.read().is_ok_and(|m| m.build_id == build_id);
        if let (true, Some(program_id)) = (same_build, pinned_program_id(root)) {
            let all_live = ifaces.iter().all(|iface| {
                live_link(&link_pin(root, iface), iface)
                    .and_then(|fd| fd.info().ok())
                    .is_some_and(|i| i.program_id() == program_id)
            });
            if all_live {
                let mut maps = maps;
                let slots = assign_slots(&mut maps, ifaces);
                let links = ifaces
                    .iter()
                    .map(|iface| LinkState {
                        iface: iface.clone(),
                        adopted: true,
                    })
                    .collect();
                return Ok(Pinned {
                    root: root.to_path_buf(),
                    maps,
                    program_id,
                    links,
                    how: "adopted".into(),
                    slots,
                });
            }
        }
    }

    // Migrate: move incompatible maps aside, copy them into new ones.
    let mut how = Vec::new();
    let old_dir = match &problem {
        Some(why) => {
            let aside = root.join(MAPS_OLD_DIR);
            if aside.exists() {
                return Err(invalid(format!(
                    "{} is left from an interrupted migration: its bans are not copied yet; \
                     start the sipshield version that made it, or remove it by hand",
                    aside.display()
                )));
            }
            fs::rename(&maps_dir, &aside)
                .map_err(|e| invalid(format!("moving {} aside: {e}", maps_dir.display())))?;
            mkdir(&maps_dir)?;
            how.push(format!("migrated maps ({why})"));
            Some(aside)
        }
        None => None,
    };

    let mut program = LoadedProgram::load_pinned(sizes, &maps_dir)?;
    let mut maps = program.take_maps()?;
    if let Some(old) = &old_dir {
        let n = migrate::copy_v2(old, &mut maps)?;
        how.push(format!("{n} entries copied"));
    }
    for dir in &legacy {
        let n = migrate::copy_v1(dir, &mut maps)?;
        how.push(format!(
            "{n} entries copied from the per-interface pins of {}",
            dir.display()
        ));
    }
    maps.meta.write(Meta {
        layout: LAYOUT_VERSION,
        _pad: 0,
        build_id,
    })?;
    // Before the first attach: its first packets already count as its own.
    let slots = assign_slots(&mut maps, ifaces);

    // The links hold the program: nothing else needs to pin it.
    let program_id = program.program_id()?;

    let mut links = Vec::new();
    for iface in ifaces {
        let pin = link_pin(root, iface);
        let legacy_pin = root.join(iface).join("link");
        let live = live_link(&pin, iface).or_else(|| live_link(&legacy_pin, iface));
        match live {
            Some(fd) => {
                // Same link, new program: atomic, no packet unguarded.
                let link = XdpLink::try_from(fd)
                    .map_err(|e| invalid(format!("{iface}: pinned link: {e}")))?;
                let id = program.xdp()?.attach_to_link(link)?;
                pin_link(&mut program, id, root, &pin, iface)?;
                how.push(format!("{iface}: program replaced in place"));
            }
            None => {
                let id = program.attach(iface, mode)?;
                pin_link(&mut program, id, root, &pin, iface)?;
            }
        }
        links.push(LinkState {
            iface: iface.clone(),
            adopted: false,
        });
    }
    // Only now that every entry and link is safe in the new layout.
    if let Some(old) = &old_dir {
        remove_map_pins(old);
    }
    for dir in &legacy {
        migrate::remove_legacy(dir);
    }
    let how = if how.is_empty() {
        "loaded".to_string()
    } else {
        how.join("; ")
    };
    Ok(Pinned {
        root: root.to_path_buf(),
        maps,
        program_id,
        links,
        how,
        slots,
    })
}

/// Counter slots for `ifaces`; on failure every interface counts as
/// "other" (counting is never a reason not to guard).
fn assign_slots(maps: &mut ShieldMaps, ifaces: &[String]) -> Vec<IfaceSlot> {
    let named: Vec<(String, u32)> = ifaces
        .iter()
        .map(|n| (n.clone(), iface_stats::ifindex(n).unwrap_or(u32::MAX)))
        .collect();
    let Some(slots) = maps.interfaces.as_mut() else {
        return Vec::new();
    };
    match slots.assign(&named, &mut maps.stats) {
        Ok(slots) => slots,
        Err(e) => {
            log::warn!("per-interface counters: {e}; counting every interface as other");
            Vec::new()
        }
    }
}

fn pin_link(
    program: &mut LoadedProgram,
    id: aya::programs::xdp::XdpLinkId,
    root: &Path,
    pin: &Path,
    iface: &str,
) -> Result<(), BpfError> {
    let link = program.xdp()?.take_link(id)?;
    let fd = FdLink::try_from(link).map_err(|e| {
        invalid(format!(
            "{iface}: kernel attached without a bpf_link ({e}); cannot pin"
        ))
    })?;
    let tmp_dir = root.join(LINKS_TMP_DIR);
    mkdir(&tmp_dir)?;
    let tmp = tmp_dir.join(pin.file_name().unwrap_or_default());
    let _ = fs::remove_file(&tmp);
    fd.pin(&tmp).map_err(|source| BpfError::Pin {
        path: tmp.display().to_string(),
        source,
    })?;
    // Replace any old pin of this interface in one step.
    fs::rename(&tmp, pin).map_err(|e| invalid(format!("{}: {e}", pin.display())))
}

/// The pinned maps and links as they are (for the CLI while the daemon is
/// down): attaches nothing.
pub fn open(root: &Path) -> Result<Pinned, BpfError> {
    let maps = ShieldMaps::from_pins(&maps_dir(root))?;
    let names = pinned_interfaces(root);
    let slots = maps
        .interfaces
        .as_ref()
        .map(|s| s.held(&names))
        .unwrap_or_default();
    let links = names
        .into_iter()
        .map(|iface| LinkState {
            iface,
            adopted: true,
        })
        .collect();
    Ok(Pinned {
        root: root.to_path_buf(),
        maps,
        program_id: pinned_program_id(root).unwrap_or(0),
        links,
        how: "opened".into(),
        slots,
    })
}

/// The pinned maps alone.
pub fn open_maps(root: &Path) -> Result<ShieldMaps, BpfError> {
    ShieldMaps::from_pins(&maps_dir(root))
}

/// Removes the link of `iface`: the program leaves it. Returns false if it
/// had none. The maps stay (with every ban) until `purge`.
pub fn detach(root: &Path, iface: &str) -> Result<bool, BpfError> {
    let pin = link_pin(root, iface);
    let before = attached_program_id(iface);
    let found = match fs::remove_file(&pin) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(invalid(format!("{}: {e}", pin.display()))),
    };
    if found {
        if let Some(id) = before {
            wait_until_gone(iface, id);
        }
    }
    Ok(found)
}

/// The kernel frees an unpinned link from a work queue, so the program can
/// still be on the interface for a moment after the unlink. Waits (bounded)
/// until it has left, so "detached" means nothing is enforced any more.
fn wait_until_gone(iface: &str, id: u32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while attached_program_id(iface) == Some(id) {
        if std::time::Instant::now() >= deadline {
            log::warn!("{iface}: program {id} still attached 3 s after its link was unpinned (another holder?)");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Removes every pin under `root`, maps included (bans in them are lost
/// unless a state file holds them).
pub fn purge(root: &Path) {
    for iface in pinned_interfaces(root) {
        let _ = detach(root, &iface);
    }
    remove_map_pins(&maps_dir(root));
    let _ = fs::remove_dir(links_dir(root));
    let _ = fs::remove_dir(root.join(LINKS_TMP_DIR));
    let _ = fs::remove_dir(root);
}

fn remove_map_pins(dir: &Path) {
    for name in MAP_NAMES {
        if let Err(e) = fs::remove_file(dir.join(name)) {
            if e.kind() != io::ErrorKind::NotFound {
                log::warn!("removing {}: {e}", dir.join(name).display());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// Interfaces with a pinned link under `root`.
pub fn pinned_interfaces(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(links_dir(root))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .map(|n| n.replace(':', "."))
        .collect();
    out.sort();
    out
}

/// The id of the XDP program attached to `iface` in this network namespace.
pub fn attached_program_id(iface: &str) -> Option<u32> {
    xdp_status(iface).map(|(id, _)| id)
}

/// (program id, mode name) of the XDP program on `iface`, from iproute2.
pub fn xdp_status(iface: &str) -> Option<(u32, &'static str)> {
    let out = Command::new("ip")
        .args(["-j", "-d", "link", "show", "dev", iface])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let xdp = v.get(0)?.get("xdp")?;
    let id = xdp.get("prog")?.get("id")?.as_u64()? as u32;
    let mode = match xdp.get("mode").and_then(|m| m.as_u64()) {
        Some(1) => "driver",
        Some(2) => "skb",
        Some(3) => "hardware",
        _ => "unknown",
    };
    Some((id, mode))
}
