//! Pinning in bpffs, so bans stay enforced when the daemon dies.
//!
//! Layout: `<root>/<iface>/link` (the XDP bpf_link) and `<root>/<iface>/<MAP>`
//! for every map. A daemon that finds a live pinned link on an interface
//! adopts it and its maps: no second attach, counters and bans continue.

use std::{
    fs, io,
    path::{Path, PathBuf},
    process::Command,
};

use aya::programs::links::{FdLink, PinnedLink};

use super::{
    loader::{AttachMode, LoadedProgram, MapSizes},
    shield_maps::{pin_maps, MAP_NAMES},
    BpfError, ShieldMaps,
};

pub const DEFAULT_PIN_ROOT: &str = "/sys/fs/bpf/sipshield";
const LINK_PIN: &str = "link";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The program attached (or adopted) on one interface, with its maps.
pub struct Attachment {
    pub iface: String,
    pub dir: PathBuf,
    pub maps: ShieldMaps,
    pub program_id: u32,
    /// True when a running program was adopted rather than attached now.
    pub adopted: bool,
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
            .map_err(|e| BpfError::Invalid(format!("mounting bpffs: {e}")))?;
        if status.success() && is_bpffs(sys_bpf) {
            return Ok(());
        }
    }
    Err(BpfError::Invalid(format!(
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

pub fn iface_dir(root: &Path, iface: &str) -> PathBuf {
    root.join(iface)
}

/// Adopts the pinned program on `iface` if it is still attached there;
/// otherwise loads, pins and attaches a fresh one.
pub fn attach_or_adopt(
    root: &Path,
    iface: &str,
    mode: AttachMode,
    sizes: MapSizes,
) -> Result<Attachment, BpfError> {
    ensure_bpffs(root)?;
    let dir = iface_dir(root, iface);
    if dir.join(LINK_PIN).exists() {
        match adopt(&dir, iface) {
            Ok(a) => return Ok(a),
            Err(e) => {
                log::warn!("{iface}: pinned program not adoptable ({e}); attaching afresh");
                remove_pins(&dir);
            }
        }
    }
    attach_fresh(&dir, iface, mode, sizes)
}

fn adopt(dir: &Path, iface: &str) -> Result<Attachment, BpfError> {
    let link = PinnedLink::from_pin(dir.join(LINK_PIN))
        .map_err(|e| BpfError::Invalid(format!("opening pinned link: {e}")))?;
    let fd: FdLink = link.into();
    let prog_id = fd
        .info()
        .map_err(|e| BpfError::Invalid(format!("link info: {e}")))?
        .program_id();
    match attached_program_id(iface) {
        Some(id) if id == prog_id => {}
        other => {
            return Err(BpfError::Invalid(format!(
                "{iface} runs XDP program {other:?}, the pin holds program {prog_id}"
            )))
        }
    }
    let maps = ShieldMaps::from_pins(dir)?;
    Ok(Attachment {
        iface: iface.to_string(),
        dir: dir.to_path_buf(),
        maps,
        program_id: prog_id,
        adopted: true,
    })
}

fn attach_fresh(
    dir: &Path,
    iface: &str,
    mode: AttachMode,
    sizes: MapSizes,
) -> Result<Attachment, BpfError> {
    let mut program = LoadedProgram::load(sizes)?;
    let program_id = program.program_id()?;
    pin_maps(program.ebpf(), dir)?;
    let result = (|| {
        let link_id = program.attach(iface, mode)?;
        let link = program.xdp()?.take_link(link_id)?;
        let fd = FdLink::try_from(link).map_err(|e| {
            BpfError::Invalid(format!(
                "{iface}: kernel attached without a bpf_link ({e}); cannot pin"
            ))
        })?;
        let path = dir.join(LINK_PIN);
        fd.pin(&path).map_err(|source| BpfError::Pin {
            path: path.display().to_string(),
            source,
        })?;
        program.take_maps()
    })();
    match result {
        Ok(maps) => Ok(Attachment {
            iface: iface.to_string(),
            dir: dir.to_path_buf(),
            maps,
            program_id,
            adopted: false,
        }),
        Err(e) => {
            remove_pins(dir);
            Err(e)
        }
    }
}

/// Removes the pins of `iface`: the program detaches once nothing else
/// holds the link. Returns false if nothing was pinned.
pub fn detach(root: &Path, iface: &str) -> Result<bool, BpfError> {
    let dir = iface_dir(root, iface);
    if !dir.exists() {
        return Ok(false);
    }
    remove_pins(&dir);
    if dir.exists() {
        return Err(BpfError::Invalid(format!(
            "could not remove {}",
            dir.display()
        )));
    }
    Ok(true)
}

fn remove_pins(dir: &Path) {
    for name in MAP_NAMES.iter().copied().chain([LINK_PIN]) {
        if let Err(e) = fs::remove_file(dir.join(name)) {
            if e.kind() != io::ErrorKind::NotFound {
                log::warn!("removing {}: {e}", dir.join(name).display());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// Interfaces with a pinned sipshield program under `root`.
pub fn pinned_interfaces(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join(LINK_PIN).exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    out.sort();
    out
}

/// The maps pinned for `iface` (for `status` while the daemon is down).
pub fn open_pinned(root: &Path, iface: &str) -> Result<ShieldMaps, BpfError> {
    ShieldMaps::from_pins(&iface_dir(root, iface))
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
