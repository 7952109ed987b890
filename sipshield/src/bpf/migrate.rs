//! Copying every ban, range, allowlist and known-good entry from older pins
//! into the current maps, so an upgrade or a size change loses nothing.
//!
//! Layout 1 (sipshield before the shared maps) pinned one set of maps per
//! interface under `<root>/<iface>/`, with ranges that had no expiry and
//! allowlist values of one `u32`. Bans are merged from every interface:
//! a kernel ban made on one while the daemon was down exists only there.

use std::{
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
};

use aya::maps::{HashMap, LpmTrie, Map, MapData};
use sipshield_common::maps::{self as names, BanEntry, BanOrigin, RangeEntry};

use super::{addr, map_err, shield_maps::EntryTables, BpfError, ShieldMaps};

/// A layout-1 range value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct RangeEntryV1 {
    created_ns: u64,
    origin: u32,
    _pad: u32,
}

// SAFETY: repr(C) integers without implicit padding.
unsafe impl aya::Pod for RangeEntryV1 {}

/// Map names of layout 1 (all of them, for removal).
const V1_NAMES: [&str; 13] = [
    "ALLOW_V4",
    "ALLOW_V6",
    "BANS_V4",
    "BANS_V6",
    "RANGES_V4",
    "RANGES_V6",
    "SOURCES_V4",
    "SOURCES_V6",
    "CONFIG",
    "UA_PREFIXES",
    "COUNTERS",
    "EVENTS",
    "link",
];

/// Per-interface directories of layout 1 under `root`.
pub fn legacy_interfaces(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with("maps") && !name.starts_with("links") && p.join("BANS_V4").exists()
        })
        .collect();
    out.sort();
    out
}

pub fn remove_legacy(dir: &Path) {
    for name in V1_NAMES {
        let _ = fs::remove_file(dir.join(name));
    }
    let _ = fs::remove_dir(dir);
}

fn open(dir: &Path, name: &'static str) -> Result<Map, BpfError> {
    let data = MapData::from_pin(dir.join(name)).map_err(map_err(name))?;
    Map::from_map_data(data).map_err(map_err(name))
}

fn ban_into(maps: &mut ShieldMaps, ip: IpAddr, e: BanEntry) -> Result<(), BpfError> {
    if BanOrigin::from_u32(e.origin).is_kernel() {
        maps.kernel_bans.insert(ip, e)
    } else {
        maps.bans.insert(ip, e)
    }
}

/// Copies a layout-1 interface directory; returns the entries copied.
pub fn copy_v1(dir: &Path, maps: &mut ShieldMaps) -> Result<usize, BpfError> {
    let mut n = 0;
    let v4: HashMap<MapData, [u8; 4], BanEntry> = open(dir, names::BANS_V4)?
        .try_into()
        .map_err(map_err(names::BANS_V4))?;
    for item in v4.iter() {
        let (k, e) = item.map_err(map_err(names::BANS_V4))?;
        ban_into(maps, IpAddr::V4(Ipv4Addr::from(k)), e)?;
        n += 1;
    }
    let v6: HashMap<MapData, [u8; 16], BanEntry> = open(dir, names::BANS_V6)?
        .try_into()
        .map_err(map_err(names::BANS_V6))?;
    for item in v6.iter() {
        let (k, e) = item.map_err(map_err(names::BANS_V6))?;
        ban_into(maps, IpAddr::V6(Ipv6Addr::from(k)), e)?;
        n += 1;
    }
    let r4: LpmTrie<MapData, [u8; 4], RangeEntryV1> = open(dir, names::RANGES_V4)?
        .try_into()
        .map_err(map_err(names::RANGES_V4))?;
    let r6: LpmTrie<MapData, [u8; 16], RangeEntryV1> = open(dir, names::RANGES_V6)?
        .try_into()
        .map_err(map_err(names::RANGES_V6))?;
    let mut ranges = Vec::new();
    for item in r4.iter() {
        let (k, e) = item.map_err(map_err(names::RANGES_V4))?;
        ranges.push((addr::net_from_v4(&k), e));
    }
    for item in r6.iter() {
        let (k, e) = item.map_err(map_err(names::RANGES_V6))?;
        ranges.push((addr::net_from_v6(&k), e));
    }
    for (net, e) in ranges {
        // Layout 1 had no expiry for ranges: they were permanent.
        maps.ranges.insert(
            net,
            RangeEntry {
                created_ns: e.created_ns,
                expires_ns: 0,
                own_expires_ns: 0,
                origin: e.origin,
                // Unknown: let the allowlist be looked at.
                no_allow_inside: 0,
            },
        )?;
        n += 1;
    }
    let a4: LpmTrie<MapData, [u8; 4], u32> = open(dir, names::ALLOW_V4)?
        .try_into()
        .map_err(map_err(names::ALLOW_V4))?;
    for key in a4.keys() {
        let key = key.map_err(map_err(names::ALLOW_V4))?;
        maps.allow.insert(addr::net_from_v4(&key))?;
        n += 1;
    }
    let a6: LpmTrie<MapData, [u8; 16], u32> = open(dir, names::ALLOW_V6)?
        .try_into()
        .map_err(map_err(names::ALLOW_V6))?;
    for key in a6.keys() {
        let key = key.map_err(map_err(names::ALLOW_V6))?;
        maps.allow.insert(addr::net_from_v6(&key))?;
        n += 1;
    }
    Ok(n)
}

/// Copies the tables of pins of layout 2 and later (pinned with other
/// sizes, another layout or an unreadable version) into `maps`; returns
/// the entries copied. Only the tables that hold entries are opened: the
/// per-source counters, the config and the counters change their value
/// types between layouts and start afresh.
pub fn copy_v2(dir: &Path, maps: &mut ShieldMaps) -> Result<usize, BpfError> {
    let old = EntryTables::from_pins(dir)?;
    let mut n = 0;
    for (ip, e) in old.bans.entries()? {
        maps.bans.insert(ip, e)?;
        n += 1;
    }
    for (ip, e) in old.kernel_bans.entries()? {
        maps.kernel_bans.insert(ip, e)?;
        n += 1;
    }
    for (net, e) in old.ranges.entries()? {
        maps.ranges.insert(net, e)?;
        n += 1;
    }
    for a in old.allow.capped_entries()? {
        maps.allow.insert_capped(a.net, a.cap)?;
        n += 1;
    }
    for (ip, e) in old.known.entries()? {
        maps.known.insert(ip, e.expires_ns)?;
        n += 1;
    }
    Ok(n)
}
