use fulfillment_server::ServiceSettings;
use fulfillment_server::config::{ConfigError, Env};

/// Where the Reservation service listens unless `RESERVATION_LISTEN_ADDR` says otherwise.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50053";
/// The embedded default database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/reservation.db";

/// The Reservation service's configuration.
#[derive(Clone, Debug)]
pub struct ReservationConfig {
    /// Listen address, database, pool and server settings.
    pub service: ServiceSettings,
}

impl ReservationConfig {
    /// Reads the configuration from `env`, defaulting every setting.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { service: ServiceSettings::from_env(env, "RESERVATION", DEFAULT_LISTEN_ADDR, DEFAULT_DATABASE_URL)? })
    }
}
