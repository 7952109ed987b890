//! Prometheus metrics: families from the official `prometheus-client`
//! crate, updated by the engine (counters by the deltas it sees, gauges
//! set), served by a `tiny_http` thread at `/metrics`.
//!
//! A scrape only encodes what is held: it costs the same with a million
//! bans as with none. No label carries a source address.

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::{Registry, Unit},
};
use sipshield_common::counters::{Action, Counter as KernelCounter, Reason};

use super::status::LogStatus;
use crate::{bpf::StatsSnapshot, offence::OffenceClass, policy::BanCounts};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    interface: String,
    action: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HeldLabels {
    origin: String,
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShareLabels {
    origin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LogLabels {
    log: String,
    kind: String,
}

/// Every family, for the engine to update.
pub struct Metrics {
    registry: Arc<Registry>,
    packets: Family<VerdictLabels, Counter>,
    kernel_events: Family<EventLabels, Counter>,
    sip_messages: Family<MethodLabels, Counter>,
    bans: Family<HeldLabels, Gauge>,
    bans_made: Family<ClassLabels, Counter>,
    bans_lifted: Family<ClassLabels, Counter>,
    would_bans: Family<ClassLabels, Counter>,
    log_lines: Family<LogLabels, Counter>,
    log_failures: Family<LogLabels, Counter>,
    log_unmatched: Family<LogLabels, Counter>,
    log_nobody: Family<LogLabels, Counter>,
    ban_latency: Histogram,
    tracked_sources: Gauge,
    known_good: Gauge,
    share_used: Family<ShareLabels, Gauge>,
    share_refused: Counter,
    not_enforced: Gauge,
    fleet_bans: Family<ShareLabels, Gauge>,
    crowdsec_up: Gauge,
    alerts_waiting: Gauge,
    alerts_sent: Counter,
    /// Cumulative values already counted, to add only what is new.
    seen: HashMap<String, u64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let up: Gauge = Gauge::default();
        up.set(1);
        r.register("sipshield_up", "1 while the daemon runs", up);
        // The classic `_info` gauge (value 1, the facts as labels): tools
        // that read the Prometheus text format know no `info` type.
        let build: Family<VersionLabels, Gauge> = Family::default();
        build
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        r.register("sipshield_build_info", "The running sipshield", build);
        let m = Metrics {
            registry: Arc::new(Registry::default()),
            packets: Family::default(),
            kernel_events: Family::default(),
            sip_messages: Family::default(),
            bans: Family::default(),
            bans_made: Family::default(),
            bans_lifted: Family::default(),
            would_bans: Family::default(),
            log_lines: Family::default(),
            log_failures: Family::default(),
            log_unmatched: Family::default(),
            log_nobody: Family::default(),
            ban_latency: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            tracked_sources: Gauge::default(),
            known_good: Gauge::default(),
            share_used: Family::default(),
            share_refused: Counter::default(),
            not_enforced: Gauge::default(),
            fleet_bans: Family::default(),
            crowdsec_up: Gauge::default(),
            alerts_waiting: Gauge::default(),
            alerts_sent: Counter::default(),
            seen: HashMap::new(),
        };
        r.register(
            "sipshield_packets",
            "Packets on the guarded interfaces by interface, verdict and reason (interface \"other\": one without a counter slot)",
            m.packets.clone(),
        );
        r.register(
            "sipshield_kernel_events",
            "Data-plane events: kernel bans, full tables, scanner hits, lost events",
            m.kernel_events.clone(),
        );
        r.register(
            "sipshield_sip_messages",
            "SIP messages seen on the SIP ports, by method, whatever their verdict",
            m.sip_messages.clone(),
        );
        r.register(
            "sipshield_bans",
            "Bans held, by origin and class",
            m.bans.clone(),
        );
        r.register(
            "sipshield_bans_made",
            "Bans made or renewed, by class",
            m.bans_made.clone(),
        );
        r.register(
            "sipshield_bans_lifted",
            "Bans lifted (expired, unbanned, allowlisted), by class",
            m.bans_lifted.clone(),
        );
        r.register(
            "sipshield_would_bans",
            "Bans not made: observe mode or an allowlisted source, by class",
            m.would_bans.clone(),
        );
        r.register(
            "sipshield_log_lines",
            "Lines read per followed log",
            m.log_lines.clone(),
        );
        r.register(
            "sipshield_log_failures",
            "Failure lines matched per followed log",
            m.log_failures.clone(),
        );
        r.register(
            "sipshield_log_unmatched",
            "Failure-looking lines no parser matched (the drift alarm), per log",
            m.log_unmatched.clone(),
        );
        r.register(
            "sipshield_log_charged_nobody",
            "Failure lines whose sender could not be told, per log",
            m.log_nobody.clone(),
        );
        r.register_with_unit(
            "sipshield_ban_latency",
            "From reading the line that decided a ban to the ban in the kernel",
            Unit::Seconds,
            m.ban_latency.clone(),
        );
        r.register(
            "sipshield_tracked_sources",
            "Open failure windows (source and class) held in memory",
            m.tracked_sources.clone(),
        );
        r.register(
            "sipshield_known_good_sources",
            "SIP sources known good (authenticated lately)",
            m.known_good.clone(),
        );
        r.register(
            "sipshield_ban_share_entries",
            "Entries each origin uses of the exact ban table (both families)",
            m.share_used.clone(),
        );
        r.register(
            "sipshield_ban_share_refused",
            "Bans refused because their origin's share was full",
            m.share_refused.clone(),
        );
        r.register(
            "sipshield_bans_not_enforced",
            "Bans kept but not in the kernel yet (its share is full), retried",
            m.not_enforced.clone(),
        );
        r.register(
            "sipshield_fleet_bans",
            "Targets banned by the fleet alone, by origin (crowdsec, feed:<name>)",
            m.fleet_bans.clone(),
        );
        r.register(
            "sipshield_crowdsec_up",
            "1 while the last pull of CrowdSec's decision stream worked",
            m.crowdsec_up.clone(),
        );
        r.register(
            "sipshield_crowdsec_alerts_waiting",
            "Alerts for CrowdSec not acknowledged yet (kept in the state database)",
            m.alerts_waiting.clone(),
        );
        r.register(
            "sipshield_crowdsec_alerts_sent",
            "Alerts CrowdSec's LAPI acknowledged",
            m.alerts_sent.clone(),
        );
        // Every class from the start, at 0: `rate()` needs the series before
        // the first ban, and dashboards should not show gaps.
        for class in OffenceClass::ALL {
            let labels = class_labels(class);
            drop(m.bans_made.get_or_create(&labels));
            drop(m.bans_lifted.get_or_create(&labels));
            drop(m.would_bans.get_or_create(&labels));
        }
        Metrics {
            registry: Arc::new(r),
            ..m
        }
    }

    /// The text a scrape gets (OpenMetrics).
    pub fn encode(&self) -> String {
        render(&self.registry)
    }

    /// Adds what grew since the last call to the counter for `key`.
    fn add(&mut self, key: String, counter: &Counter, now: u64) {
        let last = self.seen.entry(key).or_insert(0);
        // A new program starts its counters at 0 again: count from there.
        let delta = if now >= *last { now - *last } else { now };
        *last = now;
        counter.inc_by(delta);
    }

    /// The kernel's counters (read once a second): verdicts per interface
    /// from `interfaces` (the global ones when there are none), the rest
    /// from `stats`.
    pub fn kernel(&mut self, stats: &StatsSnapshot, interfaces: &[(String, StatsSnapshot)]) {
        if interfaces.is_empty() {
            self.verdicts("all", stats);
        }
        for (name, snapshot) in interfaces {
            self.verdicts(name, snapshot);
        }
        for method in sipshield_common::sip::Method::ALL {
            let c = self
                .sip_messages
                .get_or_create(&MethodLabels {
                    method: method.name().into(),
                })
                .clone();
            self.add(
                format!("method {}", method.name()),
                &c,
                stats.messages(method),
            );
        }
        for counter in KernelCounter::ALL {
            let c = self
                .kernel_events
                .get_or_create(&EventLabels {
                    event: counter.name().into(),
                })
                .clone();
            self.add(
                format!("event {}", counter.name()),
                &c,
                stats.counter(counter),
            );
        }
    }

    fn verdicts(&mut self, interface: &str, stats: &StatsSnapshot) {
        for action in Action::ALL {
            for reason in Reason::ALL {
                let n = stats.verdict(action, reason);
                let key = verdict_key(interface, action, reason);
                if n == 0 && !self.seen.contains_key(&key) {
                    continue;
                }
                let c = self
                    .packets
                    .get_or_create(&VerdictLabels {
                        interface: interface.into(),
                        action: action.name().into(),
                        reason: reason.name().into(),
                    })
                    .clone();
                self.add(key, &c, n);
            }
        }
    }

    /// Bans held, from the counts policy keeps as it goes.
    pub fn bans_held(&self, counts: &BanCounts) {
        for (o, origin) in BanCounts::ORIGINS.iter().enumerate() {
            for (c, class) in OffenceClass::ALL.iter().enumerate() {
                let n = counts.held[o][c];
                let labels = HeldLabels {
                    origin: (*origin).into(),
                    class: class.as_str().into(),
                };
                if n > 0 || self.bans.get(&labels).is_some() {
                    self.bans
                        .get_or_create(&labels)
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
            }
        }
    }

    pub fn ban_made(&self, class: OffenceClass) {
        self.bans_made.get_or_create(&class_labels(class)).inc();
    }

    pub fn ban_lifted(&self, class: OffenceClass) {
        self.bans_lifted.get_or_create(&class_labels(class)).inc();
    }

    pub fn would_ban(&self, class: OffenceClass) {
        self.would_bans.get_or_create(&class_labels(class)).inc();
    }

    pub fn ban_latency(&self, latency: Duration) {
        self.ban_latency.observe(latency.as_secs_f64());
    }

    /// The table shares, known-good sources and waiting bans.
    pub fn tables(
        &mut self,
        shares: &super::shield::Shares,
        known_good: usize,
        not_enforced: usize,
    ) {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.known_good.set(gauge(known_good as u64));
        self.not_enforced.set(gauge(not_enforced as u64));
        for (origin, used) in [
            ("log", shares.log[0] + shares.log[1]),
            ("operator", shares.operator[0] + shares.operator[1]),
            ("crowdsec", shares.crowdsec[0] + shares.crowdsec[1]),
            ("feed", shares.feed[0] + shares.feed[1]),
        ] {
            self.share_used
                .get_or_create(&ShareLabels {
                    origin: origin.into(),
                })
                .set(gauge(u64::from(used)));
        }
        let refused = self.share_refused.clone();
        self.add("share refused".into(), &refused, shares.refused);
    }

    /// The fleet: targets by origin, the bouncer's state, the alerts.
    pub fn fleet(
        &mut self,
        by_source: &std::collections::BTreeMap<String, u64>,
        crowdsec_up: bool,
        alerts_waiting: usize,
        alerts_sent: u64,
    ) {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for (source, n) in by_source {
            self.fleet_bans
                .get_or_create(&ShareLabels {
                    origin: source.clone(),
                })
                .set(gauge(*n));
        }
        // Origins gone since (a feed removed, a resync): back to 0.
        let keys: Vec<String> = self
            .seen
            .keys()
            .filter_map(|k| k.strip_prefix("fleet ").map(String::from))
            .collect();
        for k in keys {
            if !by_source.contains_key(&k) {
                self.fleet_bans
                    .get_or_create(&ShareLabels { origin: k })
                    .set(0);
            }
        }
        for k in by_source.keys() {
            self.seen.entry(format!("fleet {k}")).or_insert(0);
        }
        self.crowdsec_up.set(i64::from(crowdsec_up));
        self.alerts_waiting.set(gauge(alerts_waiting as u64));
        let sent = self.alerts_sent.clone();
        self.add("alerts sent".into(), &sent, alerts_sent);
    }

    pub fn tracked_sources(&self, n: usize) {
        self.tracked_sources
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// One followed log's counts (cumulative, from its status).
    pub fn log(&mut self, s: &LogStatus) {
        let labels = LogLabels {
            log: s.path.clone(),
            kind: s.kind.to_string(),
        };
        let key = |what: &str| format!("{what} {} {}", s.kind, s.path);
        let lines = self.log_lines.get_or_create(&labels).clone();
        self.add(key("lines"), &lines, s.lines);
        let failures = self.log_failures.get_or_create(&labels).clone();
        self.add(key("failures"), &failures, s.failures);
        let unmatched = self.log_unmatched.get_or_create(&labels).clone();
        self.add(key("unmatched"), &unmatched, s.unmatched_failures);
        let nobody = self.log_nobody.get_or_create(&labels).clone();
        self.add(key("nobody"), &nobody, s.charged_nobody);
    }

    /// Serves `/metrics` at `addr` from a thread of its own.
    pub fn serve(&self, addr: SocketAddr) -> std::io::Result<()> {
        let server = tiny_http::Server::http(addr).map_err(std::io::Error::other)?;
        let registry = self.registry.clone();
        std::thread::Builder::new()
            .name("sipshield-metrics".into())
            .spawn(move || {
                for request in server.incoming_requests() {
                    let response = if request.url() == "/metrics" {
                        let open_metrics = request.headers().iter().any(|h| {
                            h.field.equiv("Accept")
                                && h.value.as_str().contains("application/openmetrics-text")
                        });
                        let (body, kind): (String, &[u8]) = if open_metrics {
                            (
                                render(&registry),
                                b"application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )
                        } else {
                            (
                                as_text_format(&render(&registry)),
                                b"text/plain; version=0.0.4; charset=utf-8",
                            )
                        };
                        let mut r = tiny_http::Response::from_string(body);
                        if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], kind) {
                            r.add_header(h);
                        }
                        r
                    } else {
                        tiny_http::Response::from_string("sipshield: metrics are at /metrics\n")
                            .with_status_code(404)
                    };
                    let _ = request.respond(response);
                }
            })?;
        Ok(())
    }
}

fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}

/// The encoder's OpenMetrics text as Prometheus' text format 0.0.4, for
/// scrapers that do not ask for OpenMetrics (curl, `promtool check
/// metrics`): a counter's HELP and TYPE name its `_total` samples, and the
/// `# UNIT` and `# EOF` lines go. The samples are the encoder's, unchanged.
pub fn as_text_format(open_metrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = open_metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|rest| ("# HELP ", rest))
            .or_else(|| line.strip_prefix("# TYPE ").map(|rest| ("# TYPE ", rest)));
        match meta {
            Some((tag, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let name = if counters.contains(name) {
                    format!("{name}_total")
                } else {
                    name.to_string()
                };
                out.push_str(&format!("{tag}{name} {tail}\n"));
            }
            None => {
                // OpenMetrics' counter `_created` samples have no place there.
                let sample_name = line.split(['{', ' ']).next().unwrap_or("");
                if sample_name.strip_suffix("_created").is_some_and(|base| {
                    counters.contains(base.strip_suffix("_total").unwrap_or(base))
                }) {
                    continue;
                }
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

fn verdict_key(interface: &str, action: Action, reason: Reason) -> String {
    format!("packets {interface} {} {}", action.name(), reason.name())
}

fn class_labels(class: OffenceClass) -> ClassLabels {
    ClassLabels {
        class: class.as_str().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the official encoder writes, as the text format 0.0.4 reads it.
    #[test]
    fn the_text_format_names_counters_by_their_samples_and_keeps_every_sample() {
        let metrics = Metrics::new();
        let open = metrics.encode();
        assert!(open.ends_with("# EOF\n"), "{open}");
        let text = as_text_format(&open);
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT "),
            "{text}"
        );
        assert!(
            text.contains("# TYPE sipshield_bans_made_total counter"),
            "{text}"
        );
        assert!(!text.contains("_created"), "{text}");
        // Every sample line of the OpenMetrics body is there, unchanged.
        for line in open.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            if name.ends_with("_created") {
                continue;
            }
            assert!(text.lines().any(|l| l == line), "{line} lost:\n{text}");
        }
        // Gauges and histograms keep their names.
        assert!(text.contains("# TYPE sipshield_up gauge"), "{text}");
        assert!(
            text.contains("# TYPE sipshield_ban_latency_seconds histogram"),
            "{text}"
        );
    }
}
