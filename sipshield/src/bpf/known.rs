//! Known-good SIP sources (`KNOWN_V4`, `KNOWN_V6`): addresses that proved
//! themselves (an authenticated registration, per the trust table), each
//! with an expiry. The program polices them but never bans them.

use std::net::IpAddr;

use sipshield_common::maps::KnownEntry;

use super::{ban_table::AddrTable, BpfError};

pub struct KnownSources(AddrTable<KnownEntry>);

impl KnownSources {
    pub(crate) fn new(table: AddrTable<KnownEntry>) -> Self {
        KnownSources(table)
    }

    /// Marks `ip` known good until monotonic `expires_ns` (0 = no expiry).
    pub fn insert(&mut self, ip: IpAddr, expires_ns: u64) -> Result<(), BpfError> {
        self.0.insert(ip, KnownEntry { expires_ns })
    }

    pub fn remove(&mut self, ip: IpAddr) -> Result<bool, BpfError> {
        self.0.remove(ip)
    }

    pub fn get(&self, ip: IpAddr) -> Result<Option<KnownEntry>, BpfError> {
        self.0.get(ip)
    }

    pub fn entries(&self) -> Result<Vec<(IpAddr, KnownEntry)>, BpfError> {
        self.0.entries()
    }

    /// Drops entries whose expiry has passed; returns how many.
    pub fn prune_expired(&mut self, now_ns: u64) -> Result<usize, BpfError> {
        self.0.prune_expired(now_ns)
    }
}
