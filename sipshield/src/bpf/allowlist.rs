//! The kernel allowlist (`ALLOW_V4`, `ALLOW_V6`): CIDRs that always PASS.

use std::net::IpAddr;

use aya::maps::{lpm_trie::Key, LpmTrie, MapData, MapError};
use ipnet::IpNet;
use sipshield_common::maps::{ALLOW_V4, ALLOW_V6};

use super::{addr, ban_table::not_found_is_false, map_err, BpfError};

pub struct Allowlist {
    v4: LpmTrie<MapData, [u8; 4], u32>,
    v6: LpmTrie<MapData, [u8; 16], u32>,
}

impl Allowlist {
    pub(crate) fn new(
        v4: LpmTrie<MapData, [u8; 4], u32>,
        v6: LpmTrie<MapData, [u8; 16], u32>,
    ) -> Self {
        Allowlist { v4, v6 }
    }

    pub fn insert(&mut self, net: IpNet) -> Result<(), BpfError> {
        match addr::canonical_net(net) {
            IpNet::V4(n) => self
                .v4
                .insert(&addr::lpm_v4(n), 1, 0)
                .map_err(map_err(ALLOW_V4)),
            IpNet::V6(n) => self
                .v6
                .insert(&addr::lpm_v6(n), 1, 0)
                .map_err(map_err(ALLOW_V6)),
        }
    }

    pub fn remove(&mut self, net: IpNet) -> Result<bool, BpfError> {
        let result = match addr::canonical_net(net) {
            IpNet::V4(n) => self.v4.remove(&addr::lpm_v4(n)).map_err(|e| (ALLOW_V4, e)),
            IpNet::V6(n) => self.v6.remove(&addr::lpm_v6(n)).map_err(|e| (ALLOW_V6, e)),
        };
        not_found_is_false(result)
    }

    /// True when `ip` falls inside an allowlisted prefix (as the kernel sees it).
    pub fn contains(&self, ip: IpAddr) -> Result<bool, BpfError> {
        let result = match addr::canonical(ip) {
            IpAddr::V4(a) => self
                .v4
                .get(&Key::new(32, a.octets()), 0)
                .map_err(|e| (ALLOW_V4, e)),
            IpAddr::V6(a) => self
                .v6
                .get(&Key::new(128, a.octets()), 0)
                .map_err(|e| (ALLOW_V6, e)),
        };
        match result {
            Ok(_) => Ok(true),
            Err((_, MapError::KeyNotFound)) => Ok(false),
            Err((name, source)) => Err(BpfError::Map { name, source }),
        }
    }

    pub fn entries(&self) -> Result<Vec<IpNet>, BpfError> {
        let mut out = Vec::new();
        for key in self.v4.keys() {
            out.push(addr::net_from_v4(&key.map_err(map_err(ALLOW_V4))?));
        }
        for key in self.v6.keys() {
            out.push(addr::net_from_v6(&key.map_err(map_err(ALLOW_V6))?));
        }
        Ok(out)
    }

    /// Makes the kernel allowlist exactly `wanted` (adds missing, removes stale).
    pub fn replace_all(&mut self, wanted: &[IpNet]) -> Result<(), BpfError> {
        let wanted: Vec<IpNet> = wanted.iter().map(|n| addr::canonical_net(*n)).collect();
        for net in &wanted {
            self.insert(*net)?;
        }
        for net in self.entries()? {
            if !wanted.contains(&net) {
                self.remove(net)?;
            }
        }
        Ok(())
    }
}
