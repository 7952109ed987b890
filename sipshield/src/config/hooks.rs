//! `[hooks]`: programs run on a ban or an unban.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::{
    duration::human,
    error::{KeyPath, Problems},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HooksSection {
    /// Run as `on_ban ADDRESS CLASS DURATION REASON` ("" = none).
    pub on_ban: PathBuf,
    /// Run as `on_unban ADDRESS CLASS DURATION REASON` ("" = none).
    pub on_unban: PathBuf,
    /// A hook still running after this is killed.
    #[serde(with = "human")]
    pub timeout: Duration,
}

impl Default for HooksSection {
    fn default() -> Self {
        HooksSection {
            on_ban: PathBuf::new(),
            on_unban: PathBuf::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl HooksSection {
    pub fn to_hook_config(&self) -> crate::daemon::events::HookConfig {
        let some = |p: &PathBuf| (!p.as_os_str().is_empty()).then(|| p.clone());
        crate::daemon::events::HookConfig {
            on_ban: some(&self.on_ban),
            on_unban: some(&self.on_unban),
            timeout: self.timeout,
        }
    }

    pub(crate) fn validate(&self, problems: &mut Problems) {
        let section = KeyPath::new("hooks");
        for (key, path) in [("on_ban", &self.on_ban), ("on_unban", &self.on_unban)] {
            if !path.as_os_str().is_empty() && !path.is_absolute() {
                // No shell and no PATH search: say which program runs.
                problems.push(section.key(key), "must be an absolute path");
            }
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(300) {
            problems.push(section.key("timeout"), "must be from 1s to 5m");
        }
    }
}
