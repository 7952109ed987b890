//! Userspace's side of the ban filter (`BAN_FILTER`): one bit per hash
//! slot in front of the exact ban tables. Every ban is marked before it is
//! written, so the program, which skips the table when the bit is clear,
//! never misses one. Bits are never cleared (a lifted ban's bit costs a
//! lookup, nothing else): a layout migration starts a filter afresh.
//!
//! The map is mapped into memory and marked with atomic ORs: the daemon
//! and a CLI writing with the daemon down can never lose each other's bits,
//! and a million bans are marked without a syscall each.

use std::{
    net::IpAddr,
    os::fd::{AsFd, AsRawFd},
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

use aya::maps::{Map, MapData};
use sipshield_common::maps::{
    ban_filter_slot_v4, ban_filter_slot_v6, BAN_FILTER, BAN_FILTER_WORDS,
};

use super::{addr, BpfError};

pub struct BanFilter {
    /// Keeps the map (and so the mapping's object) open.
    _map: MapData,
    words: NonNull<AtomicU64>,
    bytes: usize,
}

// SAFETY: the mapping is only reached through atomics, and lives as long
// as the value.
unsafe impl Send for BanFilter {}
unsafe impl Sync for BanFilter {}

impl BanFilter {
    pub fn new(map: Map) -> Result<BanFilter, BpfError> {
        let Map::Array(data) = map else {
            return Err(BpfError::Invalid(format!("{BAN_FILTER}: not an array map")));
        };
        let info = data.info().map_err(|source| BpfError::Map {
            name: BAN_FILTER,
            source,
        })?;
        if info.max_entries() != BAN_FILTER_WORDS || info.value_size() != 8 {
            return Err(BpfError::Invalid(format!(
                "{BAN_FILTER}: {} entries of {} bytes, {BAN_FILTER_WORDS} of 8 expected",
                info.max_entries(),
                info.value_size()
            )));
        }
        let bytes = BAN_FILTER_WORDS as usize * 8;
        let fd = data.fd().as_fd().as_raw_fd();
        // SAFETY: a shared read-write mapping of the map's values (the map
        // was made BPF_F_MMAPABLE, else this fails and nothing is mapped).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(BpfError::Invalid(format!(
                "{BAN_FILTER}: mapping it: {}",
                std::io::Error::last_os_error()
            )));
        }
        let words = NonNull::new(ptr.cast::<AtomicU64>())
            .ok_or_else(|| BpfError::Invalid(format!("{BAN_FILTER}: mapped at null")))?;
        Ok(BanFilter {
            _map: data,
            words,
            bytes,
        })
    }

    fn words(&self) -> &[AtomicU64] {
        // SAFETY: `bytes` of 8-aligned (page-aligned) mapped memory.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr(), self.bytes / 8) }
    }

    fn slot(ip: IpAddr) -> (usize, u64) {
        let (word, mask) = match addr::canonical(ip) {
            IpAddr::V4(a) => ban_filter_slot_v4(&addr::v4_key(a)),
            IpAddr::V6(a) => ban_filter_slot_v6(&addr::v6_key(a)),
        };
        (word as usize, mask)
    }

    /// Marks `ip` (before its ban is written).
    pub fn mark(&self, ip: IpAddr) {
        let (word, mask) = Self::slot(ip);
        if let Some(w) = self.words().get(word) {
            // SeqCst: the mark is visible before the ban write that follows.
            w.fetch_or(mask, Ordering::SeqCst);
        }
    }

    pub fn is_marked(&self, ip: IpAddr) -> bool {
        let (word, mask) = Self::slot(ip);
        self.words()
            .get(word)
            .is_some_and(|w| w.load(Ordering::SeqCst) & mask != 0)
    }

    /// The share of bits set (what share of unbanned sources still pay
    /// for a table lookup).
    pub fn fill(&self) -> f64 {
        let set: u64 = self
            .words()
            .iter()
            .map(|w| u64::from(w.load(Ordering::Relaxed).count_ones()))
            .sum();
        set as f64 / (self.bytes as f64 * 8.0)
    }
}

impl Drop for BanFilter {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe {
            libc::munmap(self.words.as_ptr().cast(), self.bytes);
        }
    }
}
