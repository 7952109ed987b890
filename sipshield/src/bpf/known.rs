//! Known-good SIP sources (`KNOWN_V4`, `KNOWN_V6`): addresses that proved
//! themselves (an authenticated registration, per the trust table), each
//! with an expiry. The program polices them but never bans them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aya::maps::{HashMap, MapData, MapError};
use sipshield_common::maps::{KnownEntry, KNOWN_V4, KNOWN_V6};

use super::{addr, ban_table::not_found_is_false, map_err, BpfError};

pub struct KnownSources {
    v4: HashMap<MapData, [u8; 4], KnownEntry>,
    v6: HashMap<MapData, [u8; 16], KnownEntry>,
}

impl KnownSources {
    pub(crate) fn new(
        v4: HashMap<MapData, [u8; 4], KnownEntry>,
        v6: HashMap<MapData, [u8; 16], KnownEntry>,
    ) -> Self {
        KnownSources { v4, v6 }
    }

    /// Marks `ip` known good until monotonic `expires_ns` (0 = no expiry).
    pub fn insert(&mut self, ip: IpAddr, expires_ns: u64) -> Result<(), BpfError> {
        let entry = KnownEntry { expires_ns };
        match addr::canonical(ip) {
            IpAddr::V4(a) => self
                .v4
                .insert(a.octets(), entry, 0)
                .map_err(map_err(KNOWN_V4)),
            IpAddr::V6(a) => self
                .v6
                .insert(a.octets(), entry, 0)
                .map_err(map_err(KNOWN_V6)),
        }
    }

    pub fn remove(&mut self, ip: IpAddr) -> Result<bool, BpfError> {
        let result = match addr::canonical(ip) {
            IpAddr::V4(a) => self.v4.remove(&a.octets()).map_err(|e| (KNOWN_V4, e)),
            IpAddr::V6(a) => self.v6.remove(&a.octets()).map_err(|e| (KNOWN_V6, e)),
        };
        not_found_is_false(result)
    }

    pub fn get(&self, ip: IpAddr) -> Result<Option<KnownEntry>, BpfError> {
        let result = match addr::canonical(ip) {
            IpAddr::V4(a) => self.v4.get(&a.octets(), 0).map_err(|e| (KNOWN_V4, e)),
            IpAddr::V6(a) => self.v6.get(&a.octets(), 0).map_err(|e| (KNOWN_V6, e)),
        };
        match result {
            Ok(e) => Ok(Some(e)),
            Err((_, MapError::KeyNotFound)) => Ok(None),
            Err((name, source)) => Err(BpfError::Map { name, source }),
        }
    }

    pub fn entries(&self) -> Result<Vec<(IpAddr, KnownEntry)>, BpfError> {
        let mut out = Vec::new();
        for item in self.v4.iter() {
            let (k, v) = item.map_err(map_err(KNOWN_V4))?;
            out.push((IpAddr::V4(Ipv4Addr::from(k)), v));
        }
        for item in self.v6.iter() {
            let (k, v) = item.map_err(map_err(KNOWN_V6))?;
            out.push((IpAddr::V6(Ipv6Addr::from(k)), v));
        }
        Ok(out)
    }

    /// Drops entries whose expiry has passed; returns how many.
    pub fn prune_expired(&mut self, now_ns: u64) -> Result<usize, BpfError> {
        let expired: Vec<IpAddr> = self
            .entries()?
            .into_iter()
            .filter(|(_, e)| !e.is_active(now_ns))
            .map(|(ip, _)| ip)
            .collect();
        for ip in &expired {
            self.remove(*ip)?;
        }
        Ok(expired.len())
    }
}
