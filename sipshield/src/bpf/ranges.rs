//! Banned ranges (`RANGES_V4`, `RANGES_V6`): CIDR prefixes in LPM tries.

use aya::maps::{LpmTrie, MapData};
use ipnet::IpNet;
use sipshield_common::maps::{RangeEntry, RANGES_V4, RANGES_V6};

use super::{addr, ban_table::not_found_is_false, map_err, BpfError};

pub struct BanRanges {
    v4: LpmTrie<MapData, [u8; 4], RangeEntry>,
    v6: LpmTrie<MapData, [u8; 16], RangeEntry>,
}

impl BanRanges {
    pub(crate) fn new(
        v4: LpmTrie<MapData, [u8; 4], RangeEntry>,
        v6: LpmTrie<MapData, [u8; 16], RangeEntry>,
    ) -> Self {
        BanRanges { v4, v6 }
    }

    pub fn insert(&mut self, net: IpNet, entry: RangeEntry) -> Result<(), BpfError> {
        match addr::canonical_net(net) {
            IpNet::V4(n) => self
                .v4
                .insert(&addr::lpm_v4(n), entry, 0)
                .map_err(map_err(RANGES_V4)),
            IpNet::V6(n) => self
                .v6
                .insert(&addr::lpm_v6(n), entry, 0)
                .map_err(map_err(RANGES_V6)),
        }
    }

    /// Removes exactly this prefix; `Ok(false)` if it was not there.
    pub fn remove(&mut self, net: IpNet) -> Result<bool, BpfError> {
        let result = match addr::canonical_net(net) {
            IpNet::V4(n) => self.v4.remove(&addr::lpm_v4(n)).map_err(|e| (RANGES_V4, e)),
            IpNet::V6(n) => self.v6.remove(&addr::lpm_v6(n)).map_err(|e| (RANGES_V6, e)),
        };
        not_found_is_false(result)
    }

    pub fn entries(&self) -> Result<Vec<(IpNet, RangeEntry)>, BpfError> {
        let mut out = Vec::new();
        for item in self.v4.iter() {
            let (k, v) = item.map_err(map_err(RANGES_V4))?;
            out.push((addr::net_from_v4(&k), v));
        }
        for item in self.v6.iter() {
            let (k, v) = item.map_err(map_err(RANGES_V6))?;
            out.push((addr::net_from_v6(&k), v));
        }
        Ok(out)
    }
}
