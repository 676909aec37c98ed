use fulfillment_reference::ReferenceData;
use fulfillment_server::config::{ConfigError, Env};
use fulfillment_server::{ServiceSettings, reference_data};

/// Where the Catalog listens unless `CATALOG_LISTEN_ADDR` says otherwise.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50051";
/// The embedded default database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/catalog.db";

/// The Catalog's configuration.
#[derive(Clone, Debug)]
pub struct CatalogConfig {
    /// Listen address, database, pool and server settings.
    pub service: ServiceSettings,
    /// Countries, ECCNs and tax codes the SKUs are checked against.
    pub reference: ReferenceData,
}

impl CatalogConfig {
    /// Reads the configuration from `env`, defaulting every setting.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            service: ServiceSettings::from_env(env, "CATALOG", DEFAULT_LISTEN_ADDR, DEFAULT_DATABASE_URL)?,
            reference: reference_data(env),
        })
    }
}
