//! Interface slots (`IFACE_SLOTS`): which block of `VERDICTS` counts the
//! packets of which guarded interface.
//!
//! The program looks the ingress ifindex up (slot 0: any interface without
//! one). Slots are handed out by name at start: an interface keeps the
//! slot it had, so its counters go on from where they were across restarts
//! and upgrades.

use aya::maps::{Array, MapData};
use sipshield_common::{
    counters::{IFINDEX_LIMIT, MAX_IFACE_SLOTS},
    maps::IFACE_SLOTS,
};

use super::{map_err, BpfError, Stats};

/// The slot of interface `name` (0: not counted apart).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceSlot {
    pub name: String,
    pub ifindex: u32,
    pub slot: u32,
}

/// Name of the slot-0 series: packets of interfaces without a slot.
pub const OTHER_INTERFACES: &str = "other";

pub struct IfaceSlots {
    slots: Array<MapData, u32>,
}

impl IfaceSlots {
    pub(crate) fn new(slots: Array<MapData, u32>) -> Self {
        IfaceSlots { slots }
    }

    /// Gives each of `ifaces` (name, ifindex) a slot, keeping the ones they
    /// hold; frees the slots of ifindexes no longer guarded. A slot handed
    /// to a new interface starts from zero (in `stats`). Past
    /// `MAX_IFACE_SLOTS` interfaces, or past `IFINDEX_LIMIT`, an interface
    /// counts as "other".
    pub fn assign(
        &mut self,
        ifaces: &[(String, u32)],
        stats: &mut Stats,
    ) -> Result<Vec<IfaceSlot>, BpfError> {
        let mut held = vec![0u32; IFINDEX_LIMIT as usize];
        for (i, h) in held.iter_mut().enumerate() {
            *h = self
                .slots
                .get(&(i as u32), 0)
                .map_err(map_err(IFACE_SLOTS))?;
        }
        let mut out: Vec<IfaceSlot> = Vec::new();
        let mut taken = [false; MAX_IFACE_SLOTS as usize + 1];
        taken[0] = true;
        // Keep what is held (once per slot: two names cannot share one).
        for (name, ifindex) in ifaces {
            let slot = held.get(*ifindex as usize).copied().unwrap_or(0);
            let keep = slot != 0 && slot <= MAX_IFACE_SLOTS && !taken[slot as usize];
            if keep {
                taken[slot as usize] = true;
            }
            out.push(IfaceSlot {
                name: name.clone(),
                ifindex: *ifindex,
                slot: if keep { slot } else { 0 },
            });
        }
        for entry in out.iter_mut().filter(|e| e.slot == 0) {
            if entry.ifindex >= IFINDEX_LIMIT {
                continue;
            }
            let Some(free) = (1..=MAX_IFACE_SLOTS).find(|s| !taken[*s as usize]) else {
                break;
            };
            taken[free as usize] = true;
            entry.slot = free;
            stats.zero_slot(free)?;
        }
        // Write the table: ours set, every other ifindex cleared.
        let mut wanted = vec![0u32; IFINDEX_LIMIT as usize];
        for e in &out {
            if let Some(w) = wanted.get_mut(e.ifindex as usize) {
                *w = e.slot;
            }
        }
        for (i, (now, want)) in held.iter().zip(&wanted).enumerate() {
            if now != want {
                self.slots
                    .set(i as u32, want, 0)
                    .map_err(map_err(IFACE_SLOTS))?;
            }
        }
        Ok(out)
    }

    /// The slots `names` hold now, changing nothing (for the CLI while the
    /// daemon is down).
    pub fn held(&self, names: &[String]) -> Vec<IfaceSlot> {
        names
            .iter()
            .filter_map(|name| {
                let ifindex = ifindex(name)?;
                let slot = self.slots.get(&ifindex, 0).ok()?;
                Some(IfaceSlot {
                    name: name.clone(),
                    ifindex,
                    slot,
                })
            })
            .collect()
    }
}

/// The kernel's index of interface `name`, if it exists here.
pub fn ifindex(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: a valid C string; the call only reads it.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}
