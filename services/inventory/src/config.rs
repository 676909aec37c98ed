use std::time::Duration;

use fulfillment_access::{AccessSettings, KeyKind, NewKey, Scope};
use fulfillment_reference::ReferenceData;
use fulfillment_server::config::{ConfigError, Env, Secret};
use fulfillment_server::{ServiceSettings, reference_data};
use fulfillment_storage::Clock;

/// Where the Inventory service listens unless `INVENTORY_LISTEN_ADDR` says otherwise.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50052";
/// Where its Prometheus endpoint listens unless `INVENTORY_METRICS_ADDR` says otherwise.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9102";
/// The most holds one transaction places unless `INVENTORY_HOLD_BATCH_MAX` says otherwise.
pub const DEFAULT_HOLD_BATCH_MAX: usize = 64;
/// The largest `INVENTORY_HOLD_BATCH_MAX`: the statements of a batch stay within the databases'
/// limits on bound values.
pub const MAX_HOLD_BATCH: usize = 256;
/// The embedded default database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/inventory.db";

/// The Inventory service's configuration.
#[derive(Clone, Debug)]
pub struct InventoryConfig {
    /// Listen address, database, pool and server settings.
    pub service: ServiceSettings,
    /// Countries and ECCNs items are checked against.
    pub reference: ReferenceData,
    /// `INVENTORY_EXPIRY_SWEEP_MS`: how often lapsed holds are looked for.
    pub expiry_sweep_interval: Duration,
    /// `INVENTORY_HOLD_GRACE_MS`: how long past its expiry a hold is kept before the Inventory
    /// releases it itself; the Reservation service normally releases it first.
    pub hold_grace: Duration,
    /// `INVENTORY_LOW_STOCK_THRESHOLD`: a stock level with fewer units available counts as low.
    pub low_stock_threshold: i64,
    /// `INVENTORY_HOLD_BATCH_MAX`: the most holds placed in one transaction (1: one each).
    pub hold_batch_max: usize,
    /// Per-key rate limits.
    pub access: AccessSettings,
    /// `INVENTORY_ADMIN_KEY`, `INVENTORY_CATALOG_SERVICE_KEY`, `INVENTORY_RESERVATION_SERVICE_KEY`:
    /// keys stored at start-up (a live admin key, the services' keys), so a deployment provisions
    /// them from its secrets. Revoke one with fulfillctl; removing the variable does not.
    pub provisioned_keys: Vec<(NewKey, Secret)>,
    /// Where the service reads the time: the system's, unless a test hands in its own.
    pub clock: Clock,
}

impl InventoryConfig {
    /// Reads the configuration from `env`, defaulting every setting.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            service: ServiceSettings::from_env(
                env,
                "INVENTORY",
                DEFAULT_LISTEN_ADDR,
                DEFAULT_METRICS_ADDR,
                DEFAULT_DATABASE_URL,
            )?,
            reference: reference_data(env),
            expiry_sweep_interval: env.interval_or("INVENTORY_EXPIRY_SWEEP_MS", Duration::from_secs(5))?,
            hold_grace: env.millis_or("INVENTORY_HOLD_GRACE_MS", Duration::from_secs(60))?,
            low_stock_threshold: env.parse_or("INVENTORY_LOW_STOCK_THRESHOLD", 10)?,
            access: AccessSettings::from_env(env, "INVENTORY")?,
            provisioned_keys: provisioned_keys(env),
            clock: Clock::system(),
            hold_batch_max: match env.parse_or("INVENTORY_HOLD_BATCH_MAX", DEFAULT_HOLD_BATCH_MAX)? {
                max @ 1..=MAX_HOLD_BATCH => max,
                other => {
                    return Err(ConfigError {
                        variable: "INVENTORY_HOLD_BATCH_MAX".to_owned(),
                        value: other.to_string(),
                        reason: format!("from 1 to {MAX_HOLD_BATCH} holds go in a transaction"),
                    });
                }
            },
        })
    }
}

fn provisioned_keys(env: &Env) -> Vec<(NewKey, Secret)> {
    let admin = NewKey {
        name: "provisioned: admin".to_owned(),
        kind: KeyKind::Live,
        scopes: vec![Scope::Read, Scope::Write, Scope::Admin],
        service: None,
    };
    let service = |name: &str| NewKey {
        name: format!("provisioned: {name}"),
        kind: KeyKind::Service,
        scopes: Vec::new(),
        service: Some(name.to_owned()),
    };
    [
        ("INVENTORY_ADMIN_KEY", admin),
        ("INVENTORY_CATALOG_SERVICE_KEY", service("catalog")),
        ("INVENTORY_RESERVATION_SERVICE_KEY", service("reservation")),
    ]
    .into_iter()
    .filter_map(|(variable, key)| Some((key, Secret::new(env.get(variable)?.trim()))))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hold_batch_size_is_bounded() {
        let batch = |value: &str| InventoryConfig::from_env(&Env::from_pairs([("INVENTORY_HOLD_BATCH_MAX", value)]));
        assert_eq!(
            InventoryConfig::from_env(&Env::default()).expect("defaults").hold_batch_max,
            DEFAULT_HOLD_BATCH_MAX
        );
        assert_eq!(batch("1").expect("one each").hold_batch_max, 1);
        assert_eq!(batch("256").expect("the most").hold_batch_max, MAX_HOLD_BATCH);
        for refused in ["0", "257", "many"] {
            assert!(batch(refused).is_err(), "{refused}");
        }
    }
}
