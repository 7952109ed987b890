//! The `META` map: which layout and which program build the maps belong to.

use aya::maps::{Array, MapData};
use sipshield_common::maps::{Meta, META};

use super::{map_err, BpfError};

pub struct MetaMap {
    map: Array<MapData, Meta>,
}

impl MetaMap {
    pub(crate) fn new(map: Array<MapData, Meta>) -> Self {
        MetaMap { map }
    }

    /// The `META` map pinned under `dir`, opened alone: it tells an older
    /// layout even where the other maps no longer open as this one.
    pub fn from_pins(dir: &std::path::Path) -> Result<Self, BpfError> {
        let data = MapData::from_pin(dir.join(META)).map_err(map_err(META))?;
        let map = aya::maps::Map::Array(data);
        Ok(MetaMap {
            map: map.try_into().map_err(map_err(META))?,
        })
    }

    pub fn read(&self) -> Result<Meta, BpfError> {
        self.map.get(&0, 0).map_err(map_err(META))
    }

    pub fn write(&mut self, meta: Meta) -> Result<(), BpfError> {
        self.map.set(0, meta, 0).map_err(map_err(META))
    }
}
