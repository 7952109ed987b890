//! The program's per-CPU counters, summed over CPUs: verdicts (`VERDICTS`,
//! a block per interface slot) and events and SIP methods (`COUNTERS`).

use aya::maps::{MapData, PerCpuArray, PerCpuValues};
use serde::Serialize;
use sipshield_common::counters::{
    counter_index, method_index, slot_verdict_index, verdict_index, Action, Counter, Reason,
    COUNTERS_LEN, MAX_IFACE_SLOTS, VERDICTS_LEN,
};
use sipshield_common::maps::{COUNTERS, VERDICTS};

use super::{map_err, BpfError};

pub struct Stats {
    counters: PerCpuArray<MapData, u64>,
    /// `None`: pins of layout 3 or older, whose verdicts lead `COUNTERS`.
    verdicts: Option<PerCpuArray<MapData, u64>>,
}

/// Counter values at one moment, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// By `verdict_index`.
    verdicts: Vec<u64>,
    /// By `counter_index` and `method_index`.
    counters: Vec<u64>,
}

fn sum(map: &PerCpuArray<MapData, u64>, index: u32, name: &'static str) -> Result<u64, BpfError> {
    Ok(map.get(&index, 0).map_err(map_err(name))?.iter().sum())
}

impl Stats {
    pub(crate) fn new(
        counters: PerCpuArray<MapData, u64>,
        verdicts: Option<PerCpuArray<MapData, u64>>,
    ) -> Self {
        Stats { counters, verdicts }
    }

    /// Every interface together, with the event and method counters.
    pub fn snapshot(&self) -> Result<StatsSnapshot, BpfError> {
        let Some(verdicts) = &self.verdicts else {
            return self.snapshot_layout3();
        };
        let mut out = StatsSnapshot {
            verdicts: vec![0; VERDICTS_LEN as usize],
            counters: Vec::with_capacity(COUNTERS_LEN as usize),
        };
        for slot in 0..=MAX_IFACE_SLOTS {
            for (v, total) in out.verdicts.iter_mut().enumerate() {
                *total += sum(verdicts, slot_verdict_index(slot, v as u32), VERDICTS)?;
            }
        }
        for i in 0..COUNTERS_LEN {
            out.counters.push(sum(&self.counters, i, COUNTERS)?);
        }
        Ok(out)
    }

    /// The verdicts of one interface slot (event counters zero).
    pub fn slot(&self, slot: u32) -> Result<StatsSnapshot, BpfError> {
        let Some(verdicts) = &self.verdicts else {
            return Ok(StatsSnapshot::default());
        };
        let mut out = StatsSnapshot::default();
        for v in 0..VERDICTS_LEN {
            out.verdicts
                .push(sum(verdicts, slot_verdict_index(slot, v), VERDICTS)?);
        }
        Ok(out)
    }

    /// Starts a slot handed to another interface from zero.
    pub fn zero_slot(&mut self, slot: u32) -> Result<(), BpfError> {
        let Some(verdicts) = &mut self.verdicts else {
            return Ok(());
        };
        let cpus = aya::util::nr_cpus()
            .map_err(|(_, e)| BpfError::Invalid(format!("counting CPUs: {e}")))?;
        for v in 0..VERDICTS_LEN {
            let zeros = PerCpuValues::try_from(vec![0u64; cpus])
                .map_err(|e| BpfError::Invalid(format!("per-CPU zeros: {e}")))?;
            verdicts
                .set(slot_verdict_index(slot, v), zeros, 0)
                .map_err(map_err(VERDICTS))?;
        }
        Ok(())
    }

    /// Layout 3 and older (the CLI before the daemon migrates them): the
    /// verdicts, then the events, then (layout 3) the methods in `COUNTERS`.
    fn snapshot_layout3(&self) -> Result<StatsSnapshot, BpfError> {
        let mut out = StatsSnapshot::default();
        for i in 0..VERDICTS_LEN {
            out.verdicts.push(sum(&self.counters, i, COUNTERS)?);
        }
        for i in 0..COUNTERS_LEN {
            // Layout 2 had no method counters: none.
            out.counters
                .push(sum(&self.counters, VERDICTS_LEN + i, COUNTERS).unwrap_or(0));
        }
        Ok(out)
    }
}

fn at(values: &[u64], index: u32) -> u64 {
    values.get(index as usize).copied().unwrap_or(0)
}

impl StatsSnapshot {
    pub fn verdict(&self, action: Action, reason: Reason) -> u64 {
        at(&self.verdicts, verdict_index(action, reason))
    }

    pub fn counter(&self, counter: Counter) -> u64 {
        at(&self.counters, counter_index(counter))
    }

    /// SIP messages of `method` seen on SIP ports.
    pub fn messages(&self, method: sipshield_common::sip::Method) -> u64 {
        at(&self.counters, method_index(method as u8))
    }

    pub fn total(&self, action: Action) -> u64 {
        Reason::ALL.iter().map(|r| self.verdict(action, *r)).sum()
    }

    pub fn packets(&self) -> u64 {
        Action::ALL.iter().map(|a| self.total(*a)).sum()
    }

    /// What happened since `earlier` (counters only grow while attached).
    pub fn since(&self, earlier: &StatsSnapshot) -> StatsSnapshot {
        let minus = |now: &[u64], then: &[u64]| -> Vec<u64> {
            now.iter()
                .enumerate()
                .map(|(i, v)| v.saturating_sub(then.get(i).copied().unwrap_or(0)))
                .collect()
        };
        StatsSnapshot {
            verdicts: minus(&self.verdicts, &earlier.verdicts),
            counters: minus(&self.counters, &earlier.counters),
        }
    }

    /// Counter-wise sum (several interfaces).
    pub fn plus(&self, other: &StatsSnapshot) -> StatsSnapshot {
        let add = |a: &[u64], b: &[u64]| -> Vec<u64> {
            (0..a.len().max(b.len()))
                .map(|i| a.get(i).copied().unwrap_or(0) + b.get(i).copied().unwrap_or(0))
                .collect()
        };
        StatsSnapshot {
            verdicts: add(&self.verdicts, &other.verdicts),
            counters: add(&self.counters, &other.counters),
        }
    }

    /// Non-zero verdict counters as (action, reason, packets).
    pub fn nonzero(&self) -> Vec<(Action, Reason, u64)> {
        let mut out = Vec::new();
        for a in Action::ALL {
            for r in Reason::ALL {
                let n = self.verdict(a, r);
                if n > 0 {
                    out.push((a, r, n));
                }
            }
        }
        out
    }

    /// A JSON object `{ "pass": {"allowlisted": n, ...}, ..., "events": {...} }`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut root = serde_json::Map::new();
        for a in Action::ALL {
            let mut m = serde_json::Map::new();
            for r in Reason::ALL {
                m.insert(r.name().into(), self.verdict(a, r).into());
            }
            root.insert(a.name().into(), m.into());
        }
        let mut events = serde_json::Map::new();
        for c in Counter::ALL {
            events.insert(c.name().into(), self.counter(c).into());
        }
        root.insert("events".into(), events.into());
        root.into()
    }
}
