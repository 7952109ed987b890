//! Tables keyed by one address, a pair of hash maps (IPv4, IPv6) with an
//! expiring value: the exact ban tables, `BANS_V4`/`BANS_V6` (log and
//! operator bans, written only by userspace) and `KBANS_V4`/`KBANS_V6` (the
//! kernel's own share, an LRU), and the known-good sources (`known.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aya::maps::{HashMap, IterableMap, MapData, MapError};
use sipshield_common::maps::{BanEntry, KnownEntry};

use super::{addr, ban_filter::BanFilter, map_err, BpfError};

/// A value that stops applying at some monotonic time.
pub trait Expiring: aya::Pod + Sync + Default {
    fn is_active(&self, now_ns: u64) -> bool;
}

impl Expiring for BanEntry {
    fn is_active(&self, now_ns: u64) -> bool {
        BanEntry::is_active(self, now_ns)
    }
}

impl Expiring for KnownEntry {
    fn is_active(&self, now_ns: u64) -> bool {
        KnownEntry::is_active(self, now_ns)
    }
}

/// One value per address, IPv4 and IPv6.
pub struct AddrTable<V: Expiring> {
    v4: HashMap<MapData, [u8; 4], V>,
    v6: HashMap<MapData, [u8; 16], V>,
    names: (&'static str, &'static str),
    /// The exact ban tables' filter: marked before every write.
    filter: Option<BanFilter>,
}

/// The exact ban tables.
pub type BanTable = AddrTable<BanEntry>;

impl<V: Expiring> AddrTable<V> {
    pub(crate) fn new(
        v4: HashMap<MapData, [u8; 4], V>,
        v6: HashMap<MapData, [u8; 16], V>,
        names: (&'static str, &'static str),
    ) -> Self {
        AddrTable {
            v4,
            v6,
            names,
            filter: None,
        }
    }

    /// The table with the filter the program looks at before it.
    pub(crate) fn with_filter(mut self, filter: BanFilter) -> Self {
        self.filter = Some(filter);
        self
    }

    pub fn filter(&self) -> Option<&BanFilter> {
        self.filter.as_ref()
    }

    /// Adds or replaces the entry of `ip`. Fails (never evicts) when a
    /// plain hash is full.
    pub fn insert(&mut self, ip: IpAddr, entry: V) -> Result<(), BpfError> {
        let (v4_name, v6_name) = self.names;
        if let Some(f) = &self.filter {
            f.mark(ip);
        }
        match addr::canonical(ip) {
            IpAddr::V4(a) => self
                .v4
                .insert(addr::v4_key(a), entry, 0)
                .map_err(map_err(v4_name)),
            IpAddr::V6(a) => self
                .v6
                .insert(addr::v6_key(a), entry, 0)
                .map_err(map_err(v6_name)),
        }
    }

    /// Adds or replaces many entries with batched writes. Returns the
    /// entries that were not written (the table filled), in order.
    pub fn insert_many(&mut self, items: &[(IpAddr, V)]) -> Vec<(IpAddr, V)> {
        let (v4_name, v6_name) = self.names;
        let mut v4 = Family::<4, V>::default();
        let mut v6 = Family::<16, V>::default();
        if let Some(f) = &self.filter {
            for (ip, _) in items {
                f.mark(*ip);
            }
        }
        for (ip, value) in items {
            match addr::canonical(*ip) {
                IpAddr::V4(a) => v4.push(addr::v4_key(a), *ip, *value),
                IpAddr::V6(a) => v6.push(addr::v6_key(a), *ip, *value),
            }
        }
        let mut refused = Vec::new();
        for s in super::batch::update_split(self.v4.map(), &v4.keys, &v4.values) {
            log::warn!(
                "{v4_name}: batch write stopped at {} of {}: {}",
                s.written,
                v4.keys.len(),
                s.error
            );
            refused.extend_from_slice(&v4.items[s.written..s.end]);
        }
        for s in super::batch::update_split(self.v6.map(), &v6.keys, &v6.values) {
            log::warn!(
                "{v6_name}: batch write stopped at {} of {}: {}",
                s.written,
                v6.keys.len(),
                s.error
            );
            refused.extend_from_slice(&v6.items[s.written..s.end]);
        }
        refused
    }

    /// Removes the ban of `ip`; `Ok(false)` if there was none.
    pub fn remove(&mut self, ip: IpAddr) -> Result<bool, BpfError> {
        let (v4_name, v6_name) = self.names;
        let result = match addr::canonical(ip) {
            IpAddr::V4(a) => self.v4.remove(&addr::v4_key(a)).map_err(|e| (v4_name, e)),
            IpAddr::V6(a) => self.v6.remove(&addr::v6_key(a)).map_err(|e| (v6_name, e)),
        };
        not_found_is_false(result)
    }

    pub fn get(&self, ip: IpAddr) -> Result<Option<V>, BpfError> {
        let (v4_name, v6_name) = self.names;
        let result = match addr::canonical(ip) {
            IpAddr::V4(a) => self.v4.get(&addr::v4_key(a), 0).map_err(|e| (v4_name, e)),
            IpAddr::V6(a) => self.v6.get(&addr::v6_key(a), 0).map_err(|e| (v6_name, e)),
        };
        match result {
            Ok(entry) => Ok(Some(entry)),
            Err((_, MapError::KeyNotFound)) => Ok(None),
            Err((name, source)) => Err(BpfError::Map { name, source }),
        }
    }

    /// Every entry, expired ones included (the kernel ignores those).
    /// Read in batches (a million bans took two million system calls and
    /// about two seconds key by key); key by key where batches are not to
    /// be had.
    pub fn entries(&self) -> Result<Vec<(IpAddr, V)>, BpfError> {
        let v4 = super::batch::lookup_all::<[u8; 4], V>(self.v4.map());
        let v6 = super::batch::lookup_all::<[u8; 16], V>(self.v6.map());
        if let (Ok(v4), Ok(v6)) = (v4, v6) {
            let mut out = Vec::with_capacity(v4.len() + v6.len());
            out.extend(
                v4.into_iter()
                    .map(|(k, v)| (IpAddr::V4(Ipv4Addr::from(k)), v)),
            );
            out.extend(
                v6.into_iter()
                    .map(|(k, v)| (IpAddr::V6(Ipv6Addr::from(k)), v)),
            );
            return Ok(out);
        }
        self.entries_one_by_one()
    }

    fn entries_one_by_one(&self) -> Result<Vec<(IpAddr, V)>, BpfError> {
        let (v4_name, v6_name) = self.names;
        let mut out = Vec::new();
        for item in self.v4.iter() {
            let (k, v) = item.map_err(map_err(v4_name))?;
            out.push((IpAddr::V4(Ipv4Addr::from(k)), v));
        }
        for item in self.v6.iter() {
            let (k, v) = item.map_err(map_err(v6_name))?;
            out.push((IpAddr::V6(Ipv6Addr::from(k)), v));
        }
        Ok(out)
    }

    /// Removes entries whose expiry has passed; returns how many.
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

    /// (IPv4 entries, IPv6 entries).
    pub fn len(&self) -> (usize, usize) {
        (self.v4.keys().count(), self.v6.keys().count())
    }
}

/// One family's share of a batch write: keys and values side by side, as
/// the kernel takes them, and the entries they came from.
struct Family<const N: usize, V> {
    keys: Vec<[u8; N]>,
    values: Vec<V>,
    items: Vec<(IpAddr, V)>,
}

impl<const N: usize, V> Default for Family<N, V> {
    fn default() -> Self {
        Family {
            keys: Vec::new(),
            values: Vec::new(),
            items: Vec::new(),
        }
    }
}

impl<const N: usize, V: Copy> Family<N, V> {
    fn push(&mut self, key: [u8; N], ip: IpAddr, value: V) {
        self.keys.push(key);
        self.values.push(value);
        self.items.push((ip, value));
    }
}

pub(crate) fn not_found_is_false(
    result: Result<(), (&'static str, MapError)>,
) -> Result<bool, BpfError> {
    match result {
        Ok(()) => Ok(true),
        Err((_, MapError::KeyNotFound)) => Ok(false),
        Err((_, MapError::SyscallError(e))) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
            Ok(false)
        }
        Err((name, source)) => Err(BpfError::Map { name, source }),
    }
}
