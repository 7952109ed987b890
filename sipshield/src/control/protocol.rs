//! Requests and responses on the control socket.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    Status,
    BansList,
    /// `target`: address or CIDR; `duration`: "10m", "1h"...; none = permanent.
    BanAdd {
        target: String,
        duration: Option<String>,
        reason: Option<String>,
    },
    BanDel {
        target: String,
    },
    AllowList,
    AllowAdd {
        target: String,
        note: Option<String>,
    },
    AllowDel {
        target: String,
    },
    Top {
        n: usize,
    },
    Reload,
    /// Recent ban events; with `follow`, then every new one as a line of
    /// its own, for as long as the client reads.
    Events {
        #[serde(default)]
        follow: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Response {
    pub fn ok(data: serde_json::Value) -> Response {
        Response {
            ok: true,
            error: None,
            data,
        }
    }

    pub fn error(message: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(message.into()),
            data: serde_json::Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_tagged_json() {
        let r = Request::BanAdd {
            target: "192.0.2.1".into(),
            duration: Some("1h".into()),
            reason: None,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(r#""cmd":"ban-add""#), "{text}");
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), r);
    }

    #[test]
    fn unknown_commands_and_fields_are_rejected() {
        assert!(
            serde_json::from_str::<Request>(r#"{"cmd":"ban-del","target":"x","y":1}"#).is_err()
        );
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"rm-rf"}"#).is_err());
    }
}
