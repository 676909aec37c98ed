use std::time::Duration;

use fulfillment_access::AccessSettings;
use fulfillment_reference::ReferenceData;
use fulfillment_storage::Clock;

use crate::domain::Limits;
use fulfillment_server::config::{ConfigError, Env};
use fulfillment_server::tls::ClientTls;
use fulfillment_server::{ServiceSettings, reference_data};

/// Where the Reservation service listens unless `RESERVATION_LISTEN_ADDR` says otherwise.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50053";
/// Where its Prometheus endpoint listens unless `RESERVATION_METRICS_ADDR` says otherwise.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9103";
/// The embedded default database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/reservation.db";
/// The most writes committed together unless `RESERVATION_WRITE_BATCH_MAX` says otherwise.
pub const DEFAULT_WRITE_BATCH_MAX: usize = 64;
/// The largest `RESERVATION_WRITE_BATCH_MAX`: the writes of a batch are rows of as many reservations.
pub const MAX_WRITE_BATCH: usize = 256;
/// Where the Inventory service is unless `RESERVATION_INVENTORY_URL` says otherwise.
pub const DEFAULT_INVENTORY_URL: &str = "http://127.0.0.1:50052";

/// The Reservation service's configuration.
#[derive(Clone, Debug)]
pub struct ReservationConfig {
    /// Listen address, database, pool and server settings.
    pub service: ServiceSettings,
    /// Countries the ship-to address is checked against.
    pub reference: ReferenceData,
    /// `RESERVATION_INVENTORY_URL`: the Inventory service.
    pub inventory_url: String,
    /// `RESERVATION_INVENTORY_TIMEOUT_MS`: the deadline of each call to the Inventory.
    pub inventory_timeout: Duration,
    /// `RESERVATION_INVENTORY_TLS_CA` and `_TLS_DOMAIN` for an `https://` Inventory, with this service's
    /// own certificate (`RESERVATION_TLS_CERT`, `_TLS_KEY`) as its client identity for mutual TLS.
    pub inventory_tls: ClientTls,
    /// `RESERVATION_DEFAULT_EXPIRES_IN_SECONDS`: the expiry when a request gives none.
    pub default_expires_in: Duration,
    /// `RESERVATION_MAX_EXPIRES_IN_SECONDS`: the longest expiry a request may ask for.
    pub max_expires_in: Duration,
    /// `RESERVATION_SWEEP_MS`: how often expired reservations and unfinished changes are looked for;
    /// the bound on how late an expired reservation is released.
    pub sweep_interval: Duration,
    /// `RESERVATION_CLAIM_LEASE_MS`: how long a replica owns a reservation it is changing before
    /// another may take the change over (after a crash).
    pub claim_lease: Duration,
    /// `RESERVATION_MAX_ITEMS` (default 100) and `RESERVATION_MAX_QUANTITY` (default 10⁹): how
    /// large one reservation may be.
    pub limits: Limits,
    /// `RESERVATION_SERVICE_KEY` (required), the key cache and the per-key rate limits.
    pub access: AccessSettings,
    /// `RESERVATION_WRITE_BATCH_MAX`: the most of the hot path's writes (a new reservation's row,
    /// a change recorded as done) committed in one transaction; 1 commits each alone.
    pub write_batch_max: usize,
    /// Where the service reads the time: the system's, unless a test hands in its own.
    pub clock: Clock,
}

impl ReservationConfig {
    /// Reads the configuration from `env`, defaulting every setting.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            service: ServiceSettings::from_env(
                env,
                "RESERVATION",
                DEFAULT_LISTEN_ADDR,
                DEFAULT_METRICS_ADDR,
                DEFAULT_DATABASE_URL,
            )?,
            reference: reference_data(env),
            inventory_url: env.string_or("RESERVATION_INVENTORY_URL", DEFAULT_INVENTORY_URL),
            inventory_timeout: env.interval_or("RESERVATION_INVENTORY_TIMEOUT_MS", Duration::from_secs(5))?,
            inventory_tls: ClientTls::from_env(env, "RESERVATION", "INVENTORY")?,
            default_expires_in: Duration::from_secs(env.parse_or("RESERVATION_DEFAULT_EXPIRES_IN_SECONDS", 900)?),
            max_expires_in: Duration::from_secs(env.parse_or("RESERVATION_MAX_EXPIRES_IN_SECONDS", 7 * 24 * 3600)?),
            sweep_interval: env.interval_or("RESERVATION_SWEEP_MS", Duration::from_secs(1))?,
            claim_lease: env.interval_or("RESERVATION_CLAIM_LEASE_MS", Duration::from_secs(30))?,
            limits: Limits {
                // The Inventory holds at most 100 lines at once (its contract's PlaceHold limit).
                max_items: env.parse_within("RESERVATION_MAX_ITEMS", Limits::default().max_items, 1..=100)?,
                max_quantity: env.parse_or("RESERVATION_MAX_QUANTITY", Limits::default().max_quantity)?,
            },
            access: AccessSettings::from_env(env, "RESERVATION")?,
            write_batch_max: env.parse_within(
                "RESERVATION_WRITE_BATCH_MAX",
                DEFAULT_WRITE_BATCH_MAX,
                1..=MAX_WRITE_BATCH,
            )?,
            clock: Clock::system(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_write_batch_size_is_bounded() {
        let key = format!("fk_svc_{}", "a1".repeat(20));
        let batch = |value: Option<&str>| {
            let mut pairs = vec![("RESERVATION_SERVICE_KEY", key.as_str())];
            pairs.extend(value.map(|value| ("RESERVATION_WRITE_BATCH_MAX", value)));
            ReservationConfig::from_env(&Env::from_pairs(pairs))
        };
        assert_eq!(batch(None).expect("defaults").write_batch_max, DEFAULT_WRITE_BATCH_MAX);
        assert_eq!(batch(Some("1")).expect("each alone").write_batch_max, 1);
        assert_eq!(batch(Some("256")).expect("the most").write_batch_max, MAX_WRITE_BATCH);
        for refused in ["0", "257", "many"] {
            assert!(batch(Some(refused)).is_err(), "{refused}");
        }
    }
}
