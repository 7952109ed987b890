//! The decision stream of CrowdSec's Local API
//! (`GET /v1/decisions/stream`): `{"new": [...], "deleted": [...]}`, either
//! list `null` when empty.
//!
//! LAPI is trusted with what it bans (the operator pointed sipshield at
//! it), not with well-formed input: a decision that does not parse is
//! skipped and counted, never a reason to drop the rest or ban forever.

use std::sync::Arc;

use serde::Deserialize;

use crate::{fleet::go_duration, state::BanTarget};

#[derive(Debug, Deserialize)]
struct RawStream {
    #[serde(default)]
    new: Option<Vec<RawDecision>>,
    #[serde(default)]
    deleted: Option<Vec<RawDecision>>,
}

/// A decision as LAPI sends it (only the fields sipshield uses; unknown
/// ones are ignored, so newer LAPIs work).
#[derive(Debug, Deserialize)]
struct RawDecision {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    origin: Option<String>,
    #[serde(default)]
    scenario: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

/// One `ban` decision on an address or a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDecision {
    pub id: String,
    pub target: BanTarget,
    /// Time left when LAPI answered; `None` for a deleted one already over.
    pub left: Option<std::time::Duration>,
    pub origin: Arc<str>,
    pub scenario: Arc<str>,
}

/// What one pull brought.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StreamDelta {
    pub new: Vec<StreamDecision>,
    pub deleted: Vec<StreamDecision>,
    /// Decisions of another type (captcha, throttle) or scope (Country,
    /// AS, Username): not sipshield's to enforce.
    pub ignored: u64,
    /// Decisions that did not parse (bad value, duration, missing id).
    pub malformed: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("the decision stream is not the JSON LAPI sends: {0}")]
pub struct StreamError(#[from] serde_json::Error);

/// Text limits: a value or scenario longer than this is not a decision.
const MAX_FIELD: usize = 256;

pub fn parse(body: &[u8]) -> Result<StreamDelta, StreamError> {
    let raw: RawStream = serde_json::from_slice(body)?;
    let mut out = StreamDelta::default();
    let mut origins: Vec<Arc<str>> = Vec::new();
    let mut scenarios: Vec<Arc<str>> = Vec::new();
    for (list, deleted) in [(raw.new, false), (raw.deleted, true)] {
        for d in list.into_iter().flatten() {
            match decision(d, deleted, &mut origins, &mut scenarios) {
                Verdict::Ban(s) if deleted => out.deleted.push(s),
                Verdict::Ban(s) => out.new.push(s),
                Verdict::Ignored => out.ignored += 1,
                Verdict::Malformed => out.malformed += 1,
            }
        }
    }
    Ok(out)
}

enum Verdict {
    Ban(StreamDecision),
    Ignored,
    Malformed,
}

/// One copy of each text: 100k decisions share a handful of scenarios.
fn intern(pool: &mut Vec<Arc<str>>, text: &str) -> Arc<str> {
    if let Some(a) = pool.iter().find(|a| &***a == text) {
        return a.clone();
    }
    let a: Arc<str> = text.into();
    if pool.len() < 64 {
        pool.push(a.clone());
    }
    a
}

fn decision(
    d: RawDecision,
    deleted: bool,
    origins: &mut Vec<Arc<str>>,
    scenarios: &mut Vec<Arc<str>>,
) -> Verdict {
    let kind = d.kind.as_deref().unwrap_or("");
    if !kind.eq_ignore_ascii_case("ban") {
        return Verdict::Ignored;
    }
    let scope = d.scope.as_deref().unwrap_or("");
    let range = if scope.eq_ignore_ascii_case("ip") {
        false
    } else if scope.eq_ignore_ascii_case("range") {
        true
    } else {
        return Verdict::Ignored;
    };
    let Some(value) = d.value.filter(|v| v.len() <= MAX_FIELD) else {
        return Verdict::Malformed;
    };
    let target = if range {
        match value.trim().parse::<ipnet::IpNet>() {
            Ok(net) => BanTarget::from_net(net),
            Err(_) => return Verdict::Malformed,
        }
    } else {
        // An Ip decision is one address, never a network in disguise.
        match value.trim().parse::<std::net::IpAddr>() {
            Ok(ip) => BanTarget::addr(ip),
            Err(_) => return Verdict::Malformed,
        }
    };
    let id = match (d.id, d.uuid) {
        (Some(id), _) => id.to_string(),
        (None, Some(u)) if !u.is_empty() && u.len() <= MAX_FIELD => u,
        _ => return Verdict::Malformed,
    };
    let left = match d.duration.as_deref().map(go_duration::parse) {
        Some(Ok(go_duration::Left::Remaining(left))) => Some(left),
        Some(Ok(go_duration::Left::Expired)) => None,
        // A deletion needs no duration; a new ban without one is not a ban.
        Some(Err(_)) | None if deleted => None,
        Some(Err(_)) | None => return Verdict::Malformed,
    };
    if left.is_none() && !deleted {
        // Already over: nothing to enforce.
        return Verdict::Ignored;
    }
    let text = |t: Option<String>| {
        t.unwrap_or_default()
            .chars()
            .take(MAX_FIELD)
            .collect::<String>()
    };
    Verdict::Ban(StreamDecision {
        id,
        target,
        left,
        origin: intern(origins, &text(d.origin)),
        scenario: intern(scenarios, &text(d.scenario)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_startup_answer_with_ips_ranges_and_other_kinds() {
        let body = br#"{"deleted":null,"new":[
            {"duration":"3h59m55.7s","id":1,"origin":"cscli","scenario":"manual 'ban' from 'localhost'","scope":"Ip","type":"ban","value":"192.0.2.7"},
            {"duration":"1h","id":2,"origin":"crowdsec","scenario":"crowdsecurity/ssh-bf","scope":"Range","type":"ban","value":"198.51.100.0/24"},
            {"duration":"1h","id":3,"origin":"crowdsec","scenario":"x","scope":"Ip","type":"captcha","value":"192.0.2.8"},
            {"duration":"1h","id":4,"origin":"crowdsec","scenario":"x","scope":"Country","type":"ban","value":"FR"},
            {"duration":"1h","id":5,"origin":"crowdsec","scenario":"x","scope":"ip","type":"ban","value":"2001:db8::/64"},
            {"duration":"forever","id":6,"origin":"crowdsec","scenario":"x","scope":"Ip","type":"ban","value":"192.0.2.9"},
            {"duration":"1h","id":7,"origin":"crowdsec","scenario":"x","scope":"Range","type":"ban","value":"192.0.2.10/32"}
        ]}"#;
        let d = parse(body).unwrap();
        assert_eq!(d.new.len(), 3, "{d:?}");
        assert_eq!(d.new[0].target.to_string(), "192.0.2.7");
        assert_eq!(d.new[0].id, "1");
        assert_eq!(&*d.new[0].origin, "cscli");
        assert_eq!(d.new[1].target.to_string(), "198.51.100.0/24");
        // A /32 range is the address.
        assert_eq!(d.new[2].target.to_string(), "192.0.2.10");
        assert_eq!(d.ignored, 2);
        // An Ip decision holding a network, and a bad duration.
        assert_eq!(d.malformed, 2);
        assert!(d.deleted.is_empty());
    }

    #[test]
    fn deletions_need_no_duration_left() {
        let body = br#"{"new":null,"deleted":[
            {"duration":"-2m1.5s","id":1,"origin":"cscli","scenario":"s","scope":"Ip","type":"ban","value":"192.0.2.7"},
            {"id":2,"origin":"cscli","scenario":"s","scope":"Ip","type":"ban","value":"192.0.2.8"}
        ]}"#;
        let d = parse(body).unwrap();
        assert_eq!(d.deleted.len(), 2);
        assert_eq!(d.deleted[0].left, None);
    }

    #[test]
    fn garbage_is_an_error_and_odd_fields_are_skipped() {
        assert!(parse(b"<html>502 Bad Gateway</html>").is_err());
        assert!(parse(b"").is_err());
        let d = parse(br#"{"new":[{"id":1},{"type":"ban","scope":"Ip","value":"x","id":2,"duration":"1h"},7],"deleted":null}"#);
        // A non-object in the list: the whole answer is refused, the
        // previous decisions stay.
        assert!(d.is_err());
        let d = parse(
            br#"{"new":[{"id":1},{"type":"ban","scope":"Ip","value":"x","id":2,"duration":"1h"}]}"#,
        )
        .unwrap();
        assert_eq!((d.ignored, d.malformed), (1, 1));
        assert_eq!(parse(b"{}").unwrap(), StreamDelta::default());
    }
}
