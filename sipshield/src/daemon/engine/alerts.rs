//! The engine's side of the watcher: which bans go to CrowdSec as alerts
//! (only those backed by proof, per the trust table), queued in the state
//! database until LAPI takes them.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    time::{Duration, SystemTime},
};

use serde_json::{json, Value};

use super::Engine;
use crate::{
    fleet::crowdsec::{
        self,
        watcher::{Pushed, Pusher, QueuedAlert},
        AlertFacts,
    },
    offence::OffenceClass,
    policy::BanOrder,
    state::{self, db::Change, BanRecord, BanTarget},
};

/// Sources with a proof-backed failure remembered at most (a flood of
/// forged lines cannot make it grow; when full, what is older than
/// `PROOF_KEPT` goes, and a source that finds no room is not pushed).
const MAX_PROVEN: usize = 65_536;
/// How long a proof-backed failure vouches for its source.
const PROOF_KEPT: Duration = Duration::from_secs(3600);

/// What `status` says about the watcher.
#[derive(Default)]
pub struct AlertState {
    pub enabled: bool,
    /// Alerts waiting for LAPI (in the state database).
    pub waiting: HashSet<String>,
    pub sent: u64,
    pub down_since: Option<SystemTime>,
    pub last_error: Option<String>,
    /// Bans not sent: no proof the source saw a reply (forgeable UDP).
    pub unproven: u64,
    /// Kernel bans not sent (`push_kernel_bans` off).
    pub kernel: u64,
    /// Sources with a proof-backed failure, and when.
    pub proven: HashMap<IpAddr, SystemTime>,
    pub pusher: Option<Pusher>,
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: a valid buffer of its length; the result is NUL-terminated
    // or fills it (then cut at the first NUL or its end).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

impl Engine {
    /// A failure the source could not forge: it vouches for bans of it.
    pub(super) fn note_proof(&mut self, ip: IpAddr, at: SystemTime) {
        if !self.alerts.enabled {
            return;
        }
        let proven = &mut self.alerts.proven;
        if proven.len() >= MAX_PROVEN && !proven.contains_key(&ip) {
            proven.retain(|_, t| at.duration_since(*t).is_ok_and(|age| age < PROOF_KEPT));
            if proven.len() >= MAX_PROVEN {
                return;
            }
        }
        proven.insert(ip, at);
    }

    fn has_proof(&self, ip: IpAddr, now: SystemTime) -> bool {
        self.alerts
            .proven
            .get(&ip)
            .is_some_and(|t| now.duration_since(*t).map_or(true, |age| age < PROOF_KEPT))
    }

    /// A policy ban (log or kernel): sent when backed by proof.
    pub(super) fn push_order(&mut self, order: &BanOrder) {
        if !self.alerts.enabled {
            return;
        }
        match order.class {
            OffenceClass::RateGuard | OffenceClass::Scanner
                if !self.config.crowdsec.push_kernel_bans =>
            {
                self.alerts.kernel += 1;
                return;
            }
            OffenceClass::SipAuth | OffenceClass::SipProbe | OffenceClass::Iax
                if !self.has_proof(order.ip, SystemTime::now()) =>
            {
                self.alerts.unproven += 1;
                log::debug!(
                    "ban of {} not sent to CrowdSec: no failure that needs a reply",
                    order.ip
                );
                return;
            }
            _ => {}
        }
        let events = self
            .policy
            .settings()
            .threshold(order.class)
            .map_or(1, |t| t.maxretry);
        self.queue_alert(
            BanTarget::addr(order.ip),
            order.class,
            events,
            &order.reason,
            state::unix_secs(order.at),
            order.duration.map(|d| d.as_secs()),
        );
    }

    /// An operator's ban: always sent (the operator is the proof).
    pub(super) fn push_manual(&mut self, record: &BanRecord) {
        if !self.alerts.enabled {
            return;
        }
        self.queue_alert(
            record.target,
            OffenceClass::Manual,
            1,
            &record.reason,
            record.created,
            record.expires.map(|e| e.saturating_sub(record.created)),
        );
    }

    fn queue_alert(
        &mut self,
        target: BanTarget,
        class: OffenceClass,
        events: u32,
        reason: &str,
        at: u64,
        length_s: Option<u64>,
    ) {
        let key = format!("{target}@{at}@{class}");
        if self.alerts.waiting.contains(&key) {
            return;
        }
        let alert = crowdsec::alert(&AlertFacts {
            target,
            class,
            events,
            reason,
            at,
            length_s,
            host: &host_name(),
        });
        self.fleet_changes.push(Change::AlertQueued {
            key: key.clone(),
            created: at,
            alert: alert.to_string(),
        });
        self.alerts.waiting.insert(key.clone());
        if let Some(p) = &self.alerts.pusher {
            p.send(QueuedAlert { key, alert });
        }
    }

    /// Starts sending: `pusher` gets what the database still holds.
    pub fn set_pusher(&mut self, pusher: Option<Pusher>, queued: Vec<(String, String)>) {
        self.alerts.enabled = pusher.is_some();
        if let Some(p) = &pusher {
            for (key, text) in queued {
                match serde_json::from_str::<Value>(&text) {
                    Ok(alert) => {
                        self.alerts.waiting.insert(key.clone());
                        p.send(QueuedAlert { key, alert });
                    }
                    Err(e) => {
                        log::warn!("queued alert {key} does not parse ({e}): dropped");
                        self.fleet_changes.push(Change::AlertSent { key });
                    }
                }
            }
        }
        self.alerts.pusher = pusher;
    }

    pub fn on_pushed(&mut self, pushed: Pushed) {
        match pushed {
            Pushed::Acked { keys } => {
                if let Some(since) = self.alerts.down_since.take() {
                    let secs = SystemTime::now()
                        .duration_since(since)
                        .map_or(0, |d| d.as_secs());
                    log::warn!("crowdsec: alerts reach LAPI again after {secs}s");
                }
                self.alerts.last_error = None;
                self.alerts.sent += keys.len() as u64;
                log::info!("crowdsec: {} alert(s) taken by LAPI", keys.len());
                for key in keys {
                    self.alerts.waiting.remove(&key);
                    self.fleet_changes.push(Change::AlertSent { key });
                }
            }
            Pushed::Failed { error, at } => {
                if self.alerts.down_since.is_none() {
                    self.alerts.down_since = Some(at);
                    log::error!(
                        "crowdsec: {error}; {} alert(s) kept until LAPI takes them",
                        self.alerts.waiting.len()
                    );
                }
                self.alerts.last_error = Some(error);
            }
        }
    }

    /// The `alerts` part of `status`'s `crowdsec`.
    pub(super) fn alerts_json(&self) -> Value {
        let a = &self.alerts;
        json!({
            "enabled": a.enabled,
            "waiting": a.waiting.len(),
            "sent": a.sent,
            "down_since": a.down_since.map(state::unix_secs),
            "last_error": a.last_error,
            "not_sent_unproven": a.unproven,
            "not_sent_kernel": a.kernel,
        })
    }
}
