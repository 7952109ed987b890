//! The kernel allowlist (`ALLOW_V4`, `ALLOW_V6`): CIDRs that always PASS,
//! each with an optional rate cap (excess dropped and counted, never banned).

use std::net::IpAddr;

use aya::maps::{lpm_trie::Key, LpmTrie, MapData, MapError};
use ipnet::IpNet;
use sipshield_common::{
    config::RateLimit,
    maps::{AllowEntry, ALLOW_V4, ALLOW_V6},
};

use super::{addr, ban_table::not_found_is_false, map_err, BpfError};

pub struct Allowlist {
    v4: LpmTrie<MapData, [u8; 4], AllowEntry>,
    v6: LpmTrie<MapData, [u8; 16], AllowEntry>,
}

/// One allowlist entry as the kernel should hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelAllow {
    pub net: IpNet,
    /// `None`: uncapped.
    pub cap: Option<RateLimit>,
}

impl KernelAllow {
    pub fn uncapped(net: IpNet) -> KernelAllow {
        KernelAllow { net, cap: None }
    }
}

impl Allowlist {
    pub(crate) fn new(
        v4: LpmTrie<MapData, [u8; 4], AllowEntry>,
        v6: LpmTrie<MapData, [u8; 16], AllowEntry>,
    ) -> Self {
        Allowlist { v4, v6 }
    }

    pub fn insert(&mut self, net: IpNet) -> Result<(), BpfError> {
        self.insert_capped(net, None)
    }

    /// Adds or replaces `net`, capped at `cap` when given.
    pub fn insert_capped(&mut self, net: IpNet, cap: Option<RateLimit>) -> Result<(), BpfError> {
        let entry = AllowEntry {
            cap: cap.unwrap_or_default(),
            tat_ns: 0,
        };
        match addr::canonical_net(net) {
            IpNet::V4(n) => self
                .v4
                .insert(&addr::lpm_v4(n), entry, 0)
                .map_err(map_err(ALLOW_V4)),
            IpNet::V6(n) => self
                .v6
                .insert(&addr::lpm_v6(n), entry, 0)
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

    /// True when any address of `net` is allowlisted.
    pub fn overlaps(&self, net: IpNet) -> Result<bool, BpfError> {
        let net = addr::canonical_net(net);
        Ok(self.entries()?.iter().any(|a| addr::overlap(*a, net)))
    }

    pub fn entries(&self) -> Result<Vec<IpNet>, BpfError> {
        Ok(self.capped_entries()?.into_iter().map(|a| a.net).collect())
    }

    /// Every entry with its cap.
    pub fn capped_entries(&self) -> Result<Vec<KernelAllow>, BpfError> {
        let cap = |e: AllowEntry| (e.cap.interval_ns != 0).then_some(e.cap);
        let mut out = Vec::new();
        for item in self.v4.iter() {
            let (k, v) = item.map_err(map_err(ALLOW_V4))?;
            out.push(KernelAllow {
                net: addr::net_from_v4(&k),
                cap: cap(v),
            });
        }
        for item in self.v6.iter() {
            let (k, v) = item.map_err(map_err(ALLOW_V6))?;
            out.push(KernelAllow {
                net: addr::net_from_v6(&k),
                cap: cap(v),
            });
        }
        Ok(out)
    }

    /// Makes the kernel allowlist exactly `wanted` (uncapped entries).
    pub fn replace_all(&mut self, wanted: &[IpNet]) -> Result<(), BpfError> {
        let wanted: Vec<KernelAllow> = wanted.iter().map(|n| KernelAllow::uncapped(*n)).collect();
        self.replace_all_capped(&wanted)
    }

    /// Makes the kernel allowlist exactly `wanted`. Stale entries go first,
    /// so a full map never freezes; entries whose cap is unchanged keep
    /// their bucket state.
    pub fn replace_all_capped(&mut self, wanted: &[KernelAllow]) -> Result<(), BpfError> {
        let wanted: Vec<KernelAllow> = wanted
            .iter()
            .map(|a| KernelAllow {
                net: addr::canonical_net(a.net),
                cap: a.cap,
            })
            .collect();
        let current = self.capped_entries()?;
        for have in &current {
            if !wanted.iter().any(|w| w.net == have.net) {
                self.remove(have.net)?;
            }
        }
        for w in &wanted {
            if current.contains(w) {
                continue;
            }
            self.insert_capped(w.net, w.cap)?;
        }
        Ok(())
    }
}
