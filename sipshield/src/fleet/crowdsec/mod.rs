//! CrowdSec's Local API (LAPI): the decision stream and its puller (the
//! bouncer), and the alerts sipshield sends (the watcher).

pub mod bouncer;
pub mod stream;
pub mod watcher;

use serde_json::{json, Value};

use crate::offence::OffenceClass;

/// The scenarios sipshield reports under (`sipshield/<class>`).
pub const SCENARIOS: [&str; 8] = [
    "sipshield/sip-auth",
    "sipshield/sip-probe",
    "sipshield/ami-bf",
    "sipshield/iax-auth",
    "sipshield/ssh-bf",
    "sipshield/sip-flood",
    "sipshield/sip-scanner",
    "sipshield/manual",
];

/// Origin of the decisions sipshield sends: how they are told apart when
/// they come back through the stream.
pub const ORIGIN: &str = "sipshield";

pub fn scenario(class: OffenceClass) -> &'static str {
    match class {
        OffenceClass::SipAuth => SCENARIOS[0],
        OffenceClass::SipProbe => SCENARIOS[1],
        OffenceClass::Ami => SCENARIOS[2],
        OffenceClass::Iax => SCENARIOS[3],
        OffenceClass::Ssh => SCENARIOS[4],
        OffenceClass::RateGuard => SCENARIOS[5],
        OffenceClass::Scanner => SCENARIOS[6],
        OffenceClass::Manual => SCENARIOS[7],
    }
}

/// What a pushed ban says.
pub struct AlertFacts<'a> {
    pub target: crate::state::BanTarget,
    pub class: OffenceClass,
    /// Offences that made it (the class's threshold; 1 for an operator).
    pub events: u32,
    pub reason: &'a str,
    /// Ban start, unix seconds.
    pub at: u64,
    /// Ban length; `None`: permanent (sent as a year: LAPI needs one).
    pub length_s: Option<u64>,
    pub host: &'a str,
}

/// A LAPI alert with its ban decision (the fields LAPI requires, in the
/// form cscli sends; scope exactly `Ip`/`Range`, duration in Go's units).
pub fn alert(f: &AlertFacts) -> Value {
    let (scope, value) = match f.target {
        crate::state::BanTarget::Addr(ip) => ("Ip", ip.to_string()),
        crate::state::BanTarget::Net(n) => ("Range", n.to_string()),
    };
    let scenario = scenario(f.class);
    let now = crate::state::unix_secs(std::time::SystemTime::now());
    let seconds = f.length_s.unwrap_or(365 * 86_400).max(1);
    let mut source = json!({"scope": scope, "value": value});
    if scope == "Ip" {
        source["ip"] = json!(value);
    } else {
        source["range"] = json!(value);
    }
    json!({
        "scenario": scenario,
        "scenario_hash": "",
        "scenario_version": env!("CARGO_PKG_VERSION"),
        "message": format!("sipshield on {}: {value} banned for {seconds}s: {}", f.host, f.reason),
        "events_count": f.events.max(1),
        "start_at": watcher::unix_to_rfc3339(f.at.min(now)),
        "stop_at": watcher::unix_to_rfc3339(now),
        "capacity": 0,
        "leakspeed": "0",
        "simulated": false,
        "remediation": true,
        "events": [],
        "source": source,
        "decisions": [{
            "duration": format!("{seconds}s"),
            "origin": ORIGIN,
            "scenario": scenario,
            "scope": scope,
            "type": "ban",
            "value": value,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_carries_what_lapi_requires() {
        let a = alert(&AlertFacts {
            target: "198.51.100.7".parse().unwrap(),
            class: OffenceClass::SipAuth,
            events: 5,
            reason: "5 sip-auth failures",
            at: 1_796_000_000,
            length_s: Some(3600),
            host: "pbx1",
        });
        for key in [
            "capacity",
            "events",
            "events_count",
            "leakspeed",
            "message",
            "scenario",
            "scenario_hash",
            "scenario_version",
            "simulated",
            "source",
            "start_at",
            "stop_at",
        ] {
            assert!(!a[key].is_null(), "{key} missing: {a}");
        }
        assert_eq!(a["events"], json!([]));
        let d = &a["decisions"][0];
        assert_eq!(d["scope"], "Ip");
        assert_eq!(d["duration"], "3600s");
        assert_eq!(d["origin"], ORIGIN);
        assert_eq!(d["scenario"], "sipshield/sip-auth");
        let r = alert(&AlertFacts {
            target: "203.0.113.0/24".parse().unwrap(),
            class: OffenceClass::Manual,
            events: 1,
            reason: "manual ban",
            at: 1_796_000_000,
            length_s: None,
            host: "pbx1",
        });
        assert_eq!(r["source"]["range"], "203.0.113.0/24");
        assert_eq!(r["decisions"][0]["scope"], "Range");
        assert_eq!(r["decisions"][0]["duration"], "31536000s");
    }
}
