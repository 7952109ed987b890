//! The program's configuration maps (`CONFIG`, `UA_PREFIXES`).

use aya::maps::{Array, MapData};
use sipshield_common::{
    config::{UaPrefix, XdpConfig, MAX_UA_PREFIXES},
    maps::{CONFIG, UA_PREFIXES},
};

use super::{map_err, BpfError};

pub struct ConfigMap {
    config: Array<MapData, XdpConfig>,
    prefixes: Array<MapData, UaPrefix>,
}

impl ConfigMap {
    pub(crate) fn new(
        config: Array<MapData, XdpConfig>,
        prefixes: Array<MapData, UaPrefix>,
    ) -> Self {
        ConfigMap { config, prefixes }
    }

    /// Writes the scanner prefixes first, then the config that enables them,
    /// so the program never reads a count larger than what is written.
    pub fn write(&mut self, config: &XdpConfig, prefixes: &[UaPrefix]) -> Result<(), BpfError> {
        if prefixes.len() > MAX_UA_PREFIXES as usize {
            return Err(BpfError::Invalid(format!(
                "{} scanner User-Agent prefixes configured, at most {MAX_UA_PREFIXES} fit",
                prefixes.len()
            )));
        }
        for (i, p) in prefixes.iter().enumerate() {
            self.prefixes
                .set(i as u32, *p, 0)
                .map_err(map_err(UA_PREFIXES))?;
        }
        let mut config = *config;
        config.ua_prefix_count = prefixes.len() as u32;
        if config.seen_seed == 0 {
            // Keep the running key (a new one forgets who was seen once).
            config.seen_seed = match self.read() {
                Ok(c) if c.seen_seed != 0 => c.seen_seed,
                _ => rand::random::<u64>() | 1,
            };
        }
        self.config.set(0, config, 0).map_err(map_err(CONFIG))
    }

    pub fn read(&self) -> Result<XdpConfig, BpfError> {
        self.config.get(&0, 0).map_err(map_err(CONFIG))
    }

    pub fn prefixes(&self) -> Result<Vec<UaPrefix>, BpfError> {
        let n = self.read()?.ua_prefix_count.min(MAX_UA_PREFIXES);
        (0..n)
            .map(|i| self.prefixes.get(&i, 0).map_err(map_err(UA_PREFIXES)))
            .collect()
    }
}
