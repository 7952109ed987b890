//! Per-source SIP accounting (`SOURCES_V4`, `SOURCES_V6`, LRU hashes).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aya::maps::{HashMap, MapData, MapError};
use sipshield_common::maps::{SourceStats, SOURCES_V4, SOURCES_V6};

use super::{addr, map_err, BpfError};

pub struct SourceCounters {
    v4: HashMap<MapData, [u8; 4], SourceStats>,
    v6: HashMap<MapData, [u8; 16], SourceStats>,
}

impl SourceCounters {
    pub(crate) fn new(
        v4: HashMap<MapData, [u8; 4], SourceStats>,
        v6: HashMap<MapData, [u8; 16], SourceStats>,
    ) -> Self {
        SourceCounters { v4, v6 }
    }

    pub fn get(&self, ip: IpAddr) -> Result<Option<SourceStats>, BpfError> {
        let result = match addr::canonical(ip) {
            IpAddr::V4(a) => self.v4.get(&a.octets(), 0).map_err(|e| (SOURCES_V4, e)),
            IpAddr::V6(a) => self.v6.get(&a.octets(), 0).map_err(|e| (SOURCES_V6, e)),
        };
        match result {
            Ok(s) => Ok(Some(s)),
            Err((_, MapError::KeyNotFound)) => Ok(None),
            Err((name, source)) => Err(BpfError::Map { name, source }),
        }
    }

    pub fn entries(&self) -> Result<Vec<(IpAddr, SourceStats)>, BpfError> {
        let mut out = Vec::new();
        for item in self.v4.iter() {
            let (k, v) = item.map_err(map_err(SOURCES_V4))?;
            out.push((IpAddr::V4(Ipv4Addr::from(k)), v));
        }
        for item in self.v6.iter() {
            let (k, v) = item.map_err(map_err(SOURCES_V6))?;
            out.push((IpAddr::V6(Ipv6Addr::from(k)), v));
        }
        Ok(out)
    }

    /// The `n` sources with the most SIP messages, busiest first.
    pub fn top(&self, n: usize) -> Result<Vec<(IpAddr, SourceStats)>, BpfError> {
        let mut all = self.entries()?;
        all.sort_by_key(|(ip, s)| (std::cmp::Reverse(s.total_messages()), *ip));
        all.truncate(n);
        Ok(all)
    }

    /// (IPv4 entries, IPv6 entries).
    pub fn len(&self) -> (usize, usize) {
        (self.v4.keys().count(), self.v6.keys().count())
    }
}
