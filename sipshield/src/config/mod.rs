//! The configuration file (`/etc/sipshield/sipshield.toml`).
//!
//! Every section has a `Default`; a key left out takes its default, an
//! unknown key is an error, and so is a value that parses but makes no sense
//! (reported with the key and, when the file spells it out, its line).
//! Command-line overrides are applied by the daemon to the loaded struct.

mod allow;
mod crowdsec;
mod daemon;
mod duration;
mod error;
mod feeds;
mod hooks;
mod logs;
mod metrics;
mod policy;
mod restart;
mod xdp;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sipshield_common::config::{UaPrefix, XdpConfig};

pub use allow::{AllowSection, Cidr};
pub use crowdsec::CrowdSecSection;
pub use daemon::{default_route_interfaces, DaemonSection, AUTO_INTERFACES};
pub use duration::{format_duration, parse_duration, BanLength, DurationError};
pub use error::{ConfigError, KeyPath, Location, Problem};
pub use feeds::{FeedKind, FeedSection};
pub use hooks::HooksSection;
pub use logs::{AsteriskLog, LogsSection, AUTO_ASTERISK_LOGS};
pub use metrics::{MetricsSection, DEFAULT_METRICS_LISTEN};
pub use policy::{ClassThreshold, PolicySection};
pub use restart::{keep_running_values, restart_only_changes};
pub use xdp::{Protocol, ScannerMode, ShieldMode, SipPortSection, XdpSection};

pub(crate) use allow::canonical_net;

/// Where the daemon and `sipshield config check` look by default.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/sipshield/sipshield.toml";

/// The default configuration, every key written out with a comment. Parses to
/// exactly `Config::default()`.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default.toml");

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub daemon: DaemonSection,
    pub xdp: XdpSection,
    pub logs: LogsSection,
    pub policy: PolicySection,
    pub allow: AllowSection,
    pub metrics: MetricsSection,
    pub hooks: HooksSection,
    pub crowdsec: CrowdSecSection,
    /// `[[feeds]]`: blocklists fetched over HTTP.
    pub feeds: Vec<FeedSection>,
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Parses and validates `text`; `path` only names it in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: path.to_path_buf(),
            location: err.span().map(|span| Location::of_offset(text, span.start)),
            message: err.message().trim_end().to_string(),
        })?;
        let problems = config.problems();
        if problems.is_empty() {
            return Ok(config);
        }
        Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            problems: problems
                .into_iter()
                .map(|(key, message)| Problem {
                    location: error::locate(text, &key),
                    key: key.to_string(),
                    message,
                })
                .collect(),
        })
    }

    /// Checks a config built or changed in code (e.g. after command-line
    /// overrides); problems carry no location.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems = self.problems();
        if problems.is_empty() {
            return Ok(());
        }
        Err(ConfigError::Invalid {
            path: PathBuf::from("(configuration)"),
            problems: problems
                .into_iter()
                .map(|(key, message)| Problem {
                    key: key.to_string(),
                    location: None,
                    message,
                })
                .collect(),
        })
    }

    fn problems(&self) -> Vec<(KeyPath, String)> {
        let mut problems = error::Problems::default();
        self.daemon.validate(&mut problems);
        self.xdp.validate(&mut problems);
        self.logs.validate(&mut problems);
        self.policy.validate(&mut problems);
        self.allow.validate(self.xdp.max_allow, &mut problems);
        self.metrics.validate(&mut problems);
        self.hooks.validate(&mut problems);
        self.crowdsec.validate(&mut problems);
        feeds::validate_all(&self.feeds, &mut problems);
        problems.0
    }

    /// The XDP program's config record.
    pub fn to_xdp_config(&self) -> XdpConfig {
        self.xdp.to_xdp_config()
    }

    /// The scanner User-Agent prefixes for the `UA_PREFIXES` map.
    pub fn ua_prefixes(&self) -> Vec<UaPrefix> {
        self.xdp.ua_prefixes()
    }

    /// The path of the state database in `daemon.state_dir`.
    pub fn state_db(&self) -> PathBuf {
        self.daemon.state_dir.join(crate::state::db::DB_FILE_NAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(parse("").ok(), Some(Config::default()));
    }

    #[test]
    fn default_is_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn a_partial_section_keeps_the_other_defaults() {
        let config = parse("[policy.ssh]\nmaxretry = 3\n").ok();
        let mut expected = Config::default();
        expected.policy.ssh.maxretry = 3;
        assert_eq!(config, Some(expected));
    }

    #[test]
    fn default_config_matches_the_kernels_default() {
        let xdp = Config::default().to_xdp_config();
        let expected = XdpConfig {
            ua_prefix_count: sipshield_common::config::DEFAULT_UA_PREFIXES.len() as u32,
            ..XdpConfig::default()
        };
        assert_eq!(xdp, expected);
    }

    #[test]
    fn observe_mode_and_count_action_reach_the_kernel_record() {
        let config = parse(
            "[xdp]\nmode = \"observe\"\nscanner_action = \"count\"\nrate_ban = \"permanent\"\n",
        )
        .ok()
        .map(|c| c.to_xdp_config());
        let xdp = config.unwrap_or_default();
        assert_eq!(xdp.mode, sipshield_common::Mode::Observe as u32);
        assert_eq!(
            xdp.scanner_action,
            sipshield_common::ScannerAction::Count as u32
        );
        assert_eq!(xdp.rate_ban_ns, 0);
    }

    #[test]
    fn the_state_database_is_in_the_state_dir() {
        assert_eq!(
            Config::default().state_db(),
            Path::new("/var/lib/sipshield/state.db")
        );
    }
}
