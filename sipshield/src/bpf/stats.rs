//! Global per-CPU packet counters (`COUNTERS`), summed over CPUs.

use aya::maps::{MapData, PerCpuArray};
use serde::Serialize;
use sipshield_common::counters::{
    counter_index, method_index, verdict_index, Action, Counter, Reason, COUNTERS_LEN,
};
use sipshield_common::maps::COUNTERS;

use super::{map_err, BpfError};

pub struct Stats {
    counters: PerCpuArray<MapData, u64>,
}

/// Counter values at one moment, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    values: Vec<u64>,
}

impl Stats {
    pub(crate) fn new(counters: PerCpuArray<MapData, u64>) -> Self {
        Stats { counters }
    }

    pub fn snapshot(&self) -> Result<StatsSnapshot, BpfError> {
        let mut values = Vec::with_capacity(COUNTERS_LEN as usize);
        let first_method = method_index(0);
        for i in 0..COUNTERS_LEN {
            match self.counters.get(&i, 0) {
                Ok(per_cpu) => values.push(per_cpu.iter().sum()),
                // Maps of a layout before the per-method counters: none.
                Err(_) if i >= first_method => values.push(0),
                Err(e) => return Err(map_err(COUNTERS)(e)),
            }
        }
        Ok(StatsSnapshot { values })
    }
}

impl StatsSnapshot {
    fn at(&self, index: u32) -> u64 {
        self.values.get(index as usize).copied().unwrap_or(0)
    }

    pub fn verdict(&self, action: Action, reason: Reason) -> u64 {
        self.at(verdict_index(action, reason))
    }

    pub fn counter(&self, counter: Counter) -> u64 {
        self.at(counter_index(counter))
    }

    /// SIP messages of `method` seen on SIP ports.
    pub fn messages(&self, method: sipshield_common::sip::Method) -> u64 {
        self.at(method_index(method as u8))
    }

    pub fn total(&self, action: Action) -> u64 {
        Reason::ALL.iter().map(|r| self.verdict(action, *r)).sum()
    }

    pub fn packets(&self) -> u64 {
        Action::ALL.iter().map(|a| self.total(*a)).sum()
    }

    /// What happened since `earlier` (counters only grow while attached).
    pub fn since(&self, earlier: &StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot {
            values: self
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| v.saturating_sub(earlier.values.get(i).copied().unwrap_or(0)))
                .collect(),
        }
    }

    /// Counter-wise sum (several interfaces).
    pub fn plus(&self, other: &StatsSnapshot) -> StatsSnapshot {
        let n = self.values.len().max(other.values.len());
        StatsSnapshot {
            values: (0..n)
                .map(|i| {
                    self.values.get(i).copied().unwrap_or(0)
                        + other.values.get(i).copied().unwrap_or(0)
                })
                .collect(),
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
