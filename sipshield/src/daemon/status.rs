//! The status report, as one JSON document. The daemon builds it with what
//! only it knows (logs, recent bans with their reasons); the CLI builds the
//! same shape from the pinned maps alone when the daemon is down.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};
use sipshield_common::{
    counters::{Action, Reason},
    sip::Method,
};

use super::shield::{origin_name, Shield};
use crate::bpf::{clock, pins, BpfError};

/// A watched log file, for status.
#[derive(Debug, Clone, Serialize)]
pub struct LogStatus {
    pub path: String,
    pub kind: &'static str,
    pub present: bool,
    pub lines: u64,
    pub failures: u64,
    /// Unix seconds of the last failure line.
    pub last_match: Option<u64>,
    /// Failure lines whose sender could not be told (two readings of the
    /// address, or a cut line): nobody was charged.
    pub charged_nobody: u64,
    /// Lines with two readings charged to the only candidate the kernel
    /// saw send lately.
    pub charged_by_sighting: u64,
    pub charged_nobody_sample: Option<String>,
    /// Failure-looking lines of Asterisk's auth modules no parser matched.
    pub unmatched_failures: u64,
    pub unmatched_samples: Vec<String>,
    pub asterisk_version: Option<String>,
    pub previous_asterisk_version: Option<String>,
}

/// What only a running daemon knows.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonInfo {
    pub pid: u32,
    pub uptime_s: u64,
    pub config: String,
    pub observe: bool,
    pub logs: Vec<LogStatus>,
    /// Most recent first, already shaped for JSON.
    pub recent_bans: Vec<Value>,
    pub bans_total: usize,
    /// Every allowlist entry with where it came from.
    pub allowlist: Vec<Value>,
    /// Bans kept but refused by the kernel (share full), waiting for room.
    pub not_enforced: usize,
    /// Known-good SIP sources (remote agents): address and end, unix s.
    pub known_good: Vec<(String, u64)>,
    /// What the ban hooks did: ran, failed, timed out, dropped.
    pub hooks: Value,
    /// The CrowdSec bouncer (`crowdsec` of the report).
    pub crowdsec: Value,
    /// Fleet decisions held, and the targets they ban.
    pub fleet_decisions: usize,
    pub fleet_targets: usize,
    /// Targets banned by the fleet alone, by source (`crowdsec`, `feed:x`).
    pub fleet_by_source: std::collections::BTreeMap<String, u64>,
    /// The bans it holds, by kind and origin.
    pub counts: crate::policy::BanCounts,
}

pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Builds the report. `top` = how many top sources to include.
pub fn report(shield: &Shield, daemon: Option<&DaemonInfo>, top: usize) -> Result<Value, BpfError> {
    let per_iface = shield.interface_stats()?;
    let mut interfaces = Vec::new();
    for l in &shield.links {
        let (attached_id, mode) = pins::xdp_status(&l.iface).unwrap_or((0, "none"));
        let counted = per_iface.iter().find(|(name, _)| *name == l.iface);
        let mut entry = json!({
            "iface": l.iface,
            "program_id": attached_id,
            "attached": attached_id != 0 && attached_id == shield.program_id,
            "attach_mode": mode,
            "adopted": l.adopted,
        });
        if let Some((_, st)) = counted {
            entry["packets"] = json!({
                "passed": st.total(Action::Pass),
                "dropped": st.total(Action::Drop),
                "would_drop": st.total(Action::WouldDrop),
            });
        }
        interfaces.push(entry);
    }
    let mode = match sipshield_common::config::Mode::from_u32(shield.maps.config.read()?.mode) {
        sipshield_common::config::Mode::Enforce => "enforce",
        sipshield_common::config::Mode::Observe => "observe",
        sipshield_common::config::Mode::AllowlistOnly => "allowlist-only",
    };

    // The daemon counts what it holds; without it, the tables are walked.
    let census = match daemon {
        Some(d) => shield.census_counted(d.counts)?,
        None => shield.census()?,
    };
    let mut active_exact = census.active_exact;

    let stats = shield.stats()?;
    let mut by_reason = serde_json::Map::new();
    for r in Reason::ALL {
        let d = stats.verdict(Action::Drop, r);
        let w = stats.verdict(Action::WouldDrop, r);
        let p = stats.verdict(Action::Pass, r);
        if d + w + p > 0 {
            by_reason.insert(
                r.name().into(),
                json!({"pass": p, "drop": d, "would_drop": w}),
            );
        }
    }

    let top_sources = top_sources(shield, top)?;

    let recent_bans = match daemon {
        Some(d) => d.recent_bans.clone(),
        None => {
            active_exact.sort_by_key(|(_, e)| std::cmp::Reverse(e.created_ns));
            active_exact
                .iter()
                .take(10)
                .map(|(ip, e)| {
                    json!({
                        "target": ip.to_string(),
                        "origin": origin_name(e.origin),
                        "created": unix(clock::monotonic_to_wall(e.created_ns)),
                        "expires": if e.expires_ns == 0 { Value::Null } else { unix(clock::monotonic_to_wall(e.expires_ns)).into() },
                    })
                })
                .collect()
        }
    };

    Ok(json!({
        "daemon": match daemon {
            Some(d) => json!({
                "running": true, "pid": d.pid, "uptime_s": d.uptime_s,
                "config": d.config, "observe": d.observe, "bans_in_state": d.bans_total,
            }),
            None => json!({"running": false}),
        },
        "mode": mode,
        "program": {"id": shield.program_id, "pins": shield.root.display().to_string(), "start": shield.how},
        "interfaces": interfaces,
        "bans": {
            "exact_v4": census.exact_v4, "exact_v6": census.exact_v6, "ranges": census.ranges,
            "log": census.log, "operator": census.operator, "kernel_made": census.kernel,
            "fleet": daemon.map_or(census.fleet, |d| d.fleet_targets as u64),
            "fleet_decisions": daemon.map(|d| d.fleet_decisions),
            "fleet_by_source": daemon.map(|d| json!(d.fleet_by_source)),
            "expired_pending_prune": census.expired,
            "not_enforced": daemon.map(|d| d.not_enforced),
            "shares": shield.shares.to_json(),
            // Share of the ban filter's bits set: of sources not banned,
            // the share that still pays for a ban-table lookup (bits are
            // never cleared while the pins live).
            "filter_fill": shield.maps.bans.filter().map(|f| (f.fill() * 1e4).round() / 1e4),
        },
        "known_good": census.known,
        "known_good_sources": daemon
            .map(|d| {
                d.known_good
                    .iter()
                    .map(|(addr, until)| json!({"addr": addr, "until": until}))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
        "packets": {
            "passed": stats.total(Action::Pass),
            "dropped": stats.total(Action::Drop),
            "would_drop": stats.total(Action::WouldDrop),
            "by_reason": by_reason,
            "counters": stats.to_json(),
        },
        "top_sources": top_sources,
        "recent_bans": recent_bans,
        "logs": daemon.map(|d| json!(d.logs)).unwrap_or(Value::Array(vec![])),
        "crowdsec": daemon.map(|d| d.crowdsec.clone()).unwrap_or(Value::Null),
        "allowlist": daemon.map(|d| json!(d.allowlist)).unwrap_or(Value::Array(vec![])),
        "hooks": daemon.map(|d| d.hooks.clone()).unwrap_or(Value::Null),
    }))
}

/// "3m ago"-style age of a unix time, for tables.
pub fn age(unix_secs: u64) -> String {
    let now = unix(SystemTime::now());
    crate::config::format_duration(Duration::from_secs(now.saturating_sub(unix_secs)))
}

/// The `n` busiest SIP sources, shaped for JSON (`status`, `top`).
pub fn top_sources(shield: &Shield, count: usize) -> Result<Vec<Value>, BpfError> {
    let now_ns = clock::monotonic_ns();
    Ok(shield
        .top(count)?
        .into_iter()
        .map(|(ip, s)| {
            let mut methods = serde_json::Map::new();
            for m in Method::ALL {
                let n = s.methods[m as usize];
                if n > 0 {
                    methods.insert(m.name().into(), n.into());
                }
            }
            json!({
                "ip": ip.to_string(),
                "messages": s.total_messages(),
                "methods": methods,
                "bytes": s.bytes,
                "last_seen_s_ago": now_ns.saturating_sub(s.last_seen_ns) / 1_000_000_000,
                "banned": shield.maps.ban_of(ip).ok().flatten().is_some_and(|e| e.is_active(now_ns)),
            })
        })
        .collect())
}
