//! All of the program's maps, as typed handles.

use std::path::Path;

use aya::{
    maps::{Map, MapData},
    Ebpf,
};
use sipshield_common::maps as names;

use super::{
    ban_filter::BanFilter, ban_table::AddrTable, iface_stats::IfaceSlots, known::KnownSources,
    map_err, meta::MetaMap, Allowlist, BanRanges, BanTable, BpfError, ConfigMap, EventStream,
    SourceCounters, Stats,
};

/// Every map the program uses. Built from a loaded program or from the pins
/// a running (or crashed) daemon left in bpffs.
pub struct ShieldMaps {
    /// Log and operator bans (userspace keeps each origin in its share).
    pub bans: BanTable,
    /// The kernel's own bans (rate guard, scanner): an LRU share.
    pub kernel_bans: BanTable,
    pub ranges: BanRanges,
    pub allow: Allowlist,
    pub known: KnownSources,
    pub sources: SourceCounters,
    /// Verdicts (per interface slot) and event counters.
    pub stats: Stats,
    /// Interface slots (`None`: pins of a layout before them).
    pub interfaces: Option<IfaceSlots>,
    pub config: ConfigMap,
    pub events: EventStream,
    pub meta: MetaMap,
}

/// Names of the maps `ShieldMaps` holds (and pins).
pub const MAP_NAMES: [&str; 20] = [
    names::BAN_FILTER,
    names::ALLOW_V4,
    names::ALLOW_V6,
    names::BANS_V4,
    names::BANS_V6,
    names::KBANS_V4,
    names::KBANS_V6,
    names::RANGES_V4,
    names::RANGES_V6,
    names::KNOWN_V4,
    names::KNOWN_V6,
    names::SOURCES_V4,
    names::SOURCES_V6,
    names::CONFIG,
    names::UA_PREFIXES,
    names::COUNTERS,
    names::IFACE_SLOTS,
    names::VERDICTS,
    names::EVENTS,
    names::META,
];

impl ShieldMaps {
    /// Takes the maps out of a loaded program.
    pub fn take_from(ebpf: &mut Ebpf) -> Result<ShieldMaps, BpfError> {
        Self::build(|name| ebpf.take_map(name).ok_or(BpfError::MissingMap(name)))
    }

    /// Opens the maps pinned under `dir` (one file per map name).
    pub fn from_pins(dir: &Path) -> Result<ShieldMaps, BpfError> {
        Self::build(|name| {
            let data = MapData::from_pin(dir.join(name)).map_err(map_err(name))?;
            Map::from_map_data(data).map_err(map_err(name))
        })
    }

    fn build(
        mut get: impl FnMut(&'static str) -> Result<Map, BpfError>,
    ) -> Result<ShieldMaps, BpfError> {
        let EntryTables {
            bans,
            kernel_bans,
            ranges,
            allow,
            known,
        } = EntryTables::build(&mut get, true)?;
        macro_rules! typed {
            ($name:expr) => {
                get($name)?.try_into().map_err(map_err($name))?
            };
        }
        Ok(ShieldMaps {
            bans,
            kernel_bans,
            ranges,
            allow,
            known,
            sources: SourceCounters::new(typed!(names::SOURCES_V4), typed!(names::SOURCES_V6)),
            stats: Stats::new(
                typed!(names::COUNTERS),
                match get(names::VERDICTS) {
                    Ok(m) => Some(m.try_into().map_err(map_err(names::VERDICTS))?),
                    Err(_) => None,
                },
            ),
            interfaces: match get(names::IFACE_SLOTS) {
                Ok(m) => Some(IfaceSlots::new(
                    m.try_into().map_err(map_err(names::IFACE_SLOTS))?,
                )),
                Err(_) => None,
            },
            config: ConfigMap::new(typed!(names::CONFIG), typed!(names::UA_PREFIXES)),
            events: EventStream::new(typed!(names::EVENTS)),
            meta: MetaMap::new(typed!(names::META)),
        })
    }
}

/// The maps that hold entries (bans, ranges, allowlist, known-good): their
/// key and value types have not changed since layout 2, so a migration
/// opens them alone from older pins, whose counters and config differ.
pub struct EntryTables {
    pub bans: BanTable,
    pub kernel_bans: BanTable,
    pub ranges: BanRanges,
    pub allow: Allowlist,
    pub known: KnownSources,
}

impl EntryTables {
    /// Opens them from the pins under `dir`, to be read (pins of an older
    /// layout may have no ban filter: writing their ban table is not safe).
    pub fn from_pins(dir: &Path) -> Result<EntryTables, BpfError> {
        Self::build(
            &mut |name| {
                let data = MapData::from_pin(dir.join(name)).map_err(map_err(name))?;
                Map::from_map_data(data).map_err(map_err(name))
            },
            false,
        )
    }

    /// `with_filter`: the ban filter must be there (every table that is
    /// written has one, or the program would skip bans it holds).
    fn build(
        get: &mut impl FnMut(&'static str) -> Result<Map, BpfError>,
        with_filter: bool,
    ) -> Result<EntryTables, BpfError> {
        macro_rules! typed {
            ($name:expr) => {
                get($name)?.try_into().map_err(map_err($name))?
            };
        }
        let mut bans = BanTable::new(
            typed!(names::BANS_V4),
            typed!(names::BANS_V6),
            (names::BANS_V4, names::BANS_V6),
        );
        if with_filter {
            bans = bans.with_filter(BanFilter::new(get(names::BAN_FILTER)?)?);
        }
        Ok(EntryTables {
            bans,
            kernel_bans: BanTable::new(
                typed!(names::KBANS_V4),
                typed!(names::KBANS_V6),
                (names::KBANS_V4, names::KBANS_V6),
            ),
            ranges: BanRanges::new(typed!(names::RANGES_V4), typed!(names::RANGES_V6)),
            allow: Allowlist::new(typed!(names::ALLOW_V4), typed!(names::ALLOW_V6)),
            known: KnownSources::new(AddrTable::new(
                typed!(names::KNOWN_V4),
                typed!(names::KNOWN_V6),
                (names::KNOWN_V4, names::KNOWN_V6),
            )),
        })
    }
}

impl ShieldMaps {
    /// The exact ban of `ip` in either table (log/operator first, as the
    /// program looks them up).
    pub fn ban_of(
        &self,
        ip: std::net::IpAddr,
    ) -> Result<Option<sipshield_common::maps::BanEntry>, BpfError> {
        match self.bans.get(ip)? {
            Some(e) => Ok(Some(e)),
            None => self.kernel_bans.get(ip),
        }
    }

    /// Every exact ban of both tables.
    pub fn all_bans(
        &self,
    ) -> Result<Vec<(std::net::IpAddr, sipshield_common::maps::BanEntry)>, BpfError> {
        let mut out = self.bans.entries()?;
        out.extend(self.kernel_bans.entries()?);
        Ok(out)
    }
}
