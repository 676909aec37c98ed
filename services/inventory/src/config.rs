use fulfillment_server::ServiceSettings;
use fulfillment_server::config::{ConfigError, Env};

/// Where the Inventory service listens unless `INVENTORY_LISTEN_ADDR` says otherwise.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50052";
/// The embedded default database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/inventory.db";

/// The Inventory service's configuration.
#[derive(Clone, Debug)]
pub struct InventoryConfig {
    /// Listen address, database, pool and server settings.
    pub service: ServiceSettings,
}

impl InventoryConfig {
    /// Reads the configuration from `env`, defaulting every setting.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { service: ServiceSettings::from_env(env, "INVENTORY", DEFAULT_LISTEN_ADDR, DEFAULT_DATABASE_URL)? })
    }
}
