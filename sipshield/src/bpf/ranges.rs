//! Banned ranges (`RANGES_V4`, `RANGES_V6`): CIDR prefixes in LPM tries.
//!
//! Each range carries its own expiry, and the trie holds an *effective*
//! expiry: the latest of the range's own and those of every range that
//! contains it. The kernel sees only the longest matching prefix, so
//! without that an expired /32 inside an active /24 would let the /32
//! through. Every insert and removal keeps the effective expiries right.

use aya::maps::{LpmTrie, MapData};
use ipnet::IpNet;
use sipshield_common::maps::{RangeEntry, RANGES_V4, RANGES_V6};

use super::{addr, ban_table::not_found_is_false, map_err, BpfError};

pub struct BanRanges {
    v4: LpmTrie<MapData, [u8; 4], RangeEntry>,
    v6: LpmTrie<MapData, [u8; 16], RangeEntry>,
}

/// The later of two expiries, 0 meaning never.
fn later(a: u64, b: u64) -> u64 {
    if a == 0 || b == 0 {
        0
    } else {
        a.max(b)
    }
}

impl BanRanges {
    pub(crate) fn new(
        v4: LpmTrie<MapData, [u8; 4], RangeEntry>,
        v6: LpmTrie<MapData, [u8; 16], RangeEntry>,
    ) -> Self {
        BanRanges { v4, v6 }
    }

    fn put(&mut self, net: IpNet, entry: RangeEntry) -> Result<(), BpfError> {
        match net {
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

    /// Rewrites the value of a range already there (its flags), keeping
    /// the effective expiry as it is.
    pub fn set(&mut self, net: IpNet, entry: RangeEntry) -> Result<(), BpfError> {
        self.put(addr::canonical_net(net), entry)
    }

    /// Adds or replaces `net`, until `entry.own_expires_ns` (0 = permanent).
    pub fn insert(&mut self, net: IpNet, entry: RangeEntry) -> Result<(), BpfError> {
        let net = addr::canonical_net(net);
        let all = self.entries()?;
        let mut entry = entry;
        entry.expires_ns = all
            .iter()
            .filter(|(n, _)| *n != net && n.contains(&net))
            .fold(entry.own_expires_ns, |acc, (_, e)| {
                later(acc, e.own_expires_ns)
            });
        self.put(net, entry)?;
        // Narrower ranges live at least as long as this one now.
        for (n, mut e) in all {
            if n != net && net.contains(&n) {
                let eff = later(e.expires_ns, entry.own_expires_ns);
                if eff != e.expires_ns {
                    e.expires_ns = eff;
                    self.put(n, e)?;
                }
            }
        }
        Ok(())
    }

    /// Removes exactly this prefix; `Ok(false)` if it was not there.
    pub fn remove(&mut self, net: IpNet) -> Result<bool, BpfError> {
        let net = addr::canonical_net(net);
        let result = match net {
            IpNet::V4(n) => self.v4.remove(&addr::lpm_v4(n)).map_err(|e| (RANGES_V4, e)),
            IpNet::V6(n) => self.v6.remove(&addr::lpm_v6(n)).map_err(|e| (RANGES_V6, e)),
        };
        let removed = not_found_is_false(result)?;
        if removed {
            // Narrower ranges lose what this one lent them.
            let all = self.entries()?;
            for (n, mut e) in all.iter().copied() {
                if !net.contains(&n) {
                    continue;
                }
                let eff = all
                    .iter()
                    .filter(|(m, _)| *m != n && m.contains(&n))
                    .fold(e.own_expires_ns, |acc, (_, o)| later(acc, o.own_expires_ns));
                if eff != e.expires_ns {
                    e.expires_ns = eff;
                    self.put(n, e)?;
                }
            }
        }
        Ok(removed)
    }

    /// Removes ranges whose own expiry has passed; returns how many.
    pub fn prune_expired(&mut self, now_ns: u64) -> Result<usize, BpfError> {
        let expired: Vec<IpNet> = self
            .entries()?
            .into_iter()
            .filter(|(_, e)| e.own_expires_ns != 0 && e.own_expires_ns <= now_ns)
            .map(|(n, _)| n)
            .collect();
        for n in &expired {
            self.remove(*n)?;
        }
        Ok(expired.len())
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
