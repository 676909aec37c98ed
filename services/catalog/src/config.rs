use std::time::Duration;

use fulfillment_access::AccessSettings;
use fulfillment_reference::ReferenceData;
use fulfillment_server::config::{ConfigError, Env};
use fulfillment_server::tls::ClientTls;
use fulfillment_server::{ServiceSettings, reference_data};
use fulfillment_storage::Clock;

/// Where the Catalog listens unless `CATALOG_LISTEN_ADDR` says otherwise.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50051";
/// Where its Prometheus endpoint listens unless `CATALOG_METRICS_ADDR` says otherwise.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9101";
/// The embedded default database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/catalog.db";

/// Where the Inventory is unless `CATALOG_INVENTORY_URL` says otherwise.
pub const DEFAULT_INVENTORY_URL: &str = "http://127.0.0.1:50052";

/// The Catalog's configuration.
#[derive(Clone, Debug)]
pub struct CatalogConfig {
    /// Listen address, database, pool and server settings.
    pub service: ServiceSettings,
    /// Countries, ECCNs and tax codes the SKUs are checked against.
    pub reference: ReferenceData,
    /// `CATALOG_INVENTORY_URL`: the Inventory that keeps managed SKUs' items.
    pub inventory_url: String,
    /// `CATALOG_INVENTORY_TIMEOUT_MS`: the deadline of each call to the Inventory.
    pub inventory_timeout: Duration,
    /// `CATALOG_INVENTORY_TLS_CA` and `_TLS_DOMAIN` for an `https://` Inventory, with this service's
    /// own certificate (`CATALOG_TLS_CERT`, `_TLS_KEY`) as its client identity for mutual TLS.
    pub inventory_tls: ClientTls,
    /// `CATALOG_SAGA_RECOVERY_MS`: how often unfinished sagas are looked for.
    pub saga_recovery_interval: Duration,
    /// `CATALOG_SAGA_LEASE_MS`: how long a saga's driver owns it before recovery may take over; at
    /// least twelve Inventory timeouts plus three seconds, whatever is configured.
    pub saga_lease: Duration,
    /// `CATALOG_SERVICE_KEY` (required), the key cache and the per-key rate limits.
    pub access: AccessSettings,
    /// Where the service reads the time: the system's, unless a test hands in its own.
    pub clock: Clock,
}

impl CatalogConfig {
    /// Reads the configuration from `env`, defaulting every setting.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            service: ServiceSettings::from_env(
                env,
                "CATALOG",
                DEFAULT_LISTEN_ADDR,
                DEFAULT_METRICS_ADDR,
                DEFAULT_DATABASE_URL,
            )?,
            reference: reference_data(env),
            inventory_url: env.string_or("CATALOG_INVENTORY_URL", DEFAULT_INVENTORY_URL),
            inventory_timeout: env.interval_or("CATALOG_INVENTORY_TIMEOUT_MS", Duration::from_secs(5))?,
            inventory_tls: ClientTls::from_env(env, "CATALOG", "INVENTORY")?,
            saga_recovery_interval: env.interval_or("CATALOG_SAGA_RECOVERY_MS", Duration::from_secs(1))?,
            saga_lease: env.interval_or("CATALOG_SAGA_LEASE_MS", Duration::from_secs(30))?,
            access: AccessSettings::from_env(env, "CATALOG")?,
            clock: Clock::system(),
        })
        .map(|mut config: Self| {
            // A saga's driver must finish its calls before its claim lapses: a recovery makes up to
            // four calls of three attempts each, so the lease never falls below that.
            config.saga_lease = config.saga_lease.max(config.inventory_timeout * 12 + Duration::from_secs(3));
            config
        })
    }
}
