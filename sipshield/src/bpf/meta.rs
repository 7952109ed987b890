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

    pub fn read(&self) -> Result<Meta, BpfError> {
        self.map.get(&0, 0).map_err(map_err(META))
    }

    pub fn write(&mut self, meta: Meta) -> Result<(), BpfError> {
        self.map.set(0, meta, 0).map_err(map_err(META))
    }
}
