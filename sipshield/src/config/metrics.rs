//! `[metrics]`: the Prometheus endpoint.

use serde::{Deserialize, Serialize};

use super::error::{KeyPath, Problems};

/// The default port: Prometheus' exporter range (9100-9999) is all
/// allocated, and none of the exporters found on PBX hosts use 9794
/// (node_exporter 9100, fail2ban's exporter 9191, mysqld_exporter 9104,
/// CrowdSec 6060 and its bouncers 60601/60602; Asterisk itself uses 5038,
/// 5060/5061 and 8088/8089).
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9794";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// `address:port` serving `/metrics`; "" turns it off.
    pub listen: String,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            listen: DEFAULT_METRICS_LISTEN.to_string(),
        }
    }
}

impl MetricsSection {
    /// Where to listen, or `None` when off.
    pub fn address(&self) -> Option<std::net::SocketAddr> {
        self.listen.parse().ok()
    }

    pub(crate) fn validate(&self, problems: &mut Problems) {
        if !self.listen.is_empty() && self.address().is_none() {
            problems.push(
                KeyPath::new("metrics").key("listen"),
                format!(
                    "{:?} is no address:port (e.g. {DEFAULT_METRICS_LISTEN}; \"\" turns metrics off)",
                    self.listen
                ),
            );
        }
    }
}
