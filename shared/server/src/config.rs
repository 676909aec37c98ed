//! Reading typed settings from environment variables.
//!
//! Loaders take an [`Env`] rather than reading the process environment, so tests pass their own.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use fulfillment_reference::{Countries, Eccns, ReferenceData};
use fulfillment_storage::PoolConfig;

use crate::ServerOptions;

/// The longest interval or lease a setting may name: a day, in milliseconds.
const MAX_INTERVAL_MS: u64 = 24 * 3600 * 1000;

/// A setting that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: cannot parse '{value}': {reason}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: String,
    /// The value found.
    pub value: String,
    /// Why it was refused.
    pub reason: String,
}

/// A snapshot of environment variables.
#[derive(Clone, Debug, Default)]
pub struct Env(HashMap<String, String>);

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    /// Variables given explicitly, for tests.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }

    /// These variables with `pairs` added or replacing them.
    pub fn with<'a>(mut self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        self.0.extend(pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
        self
    }

    /// The raw value of `variable`, if set and not blank.
    pub fn get(&self, variable: &str) -> Option<&str> {
        self.0.get(variable).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    /// `variable` parsed as `T`, or `default` when unset.
    pub fn parse_or<T>(&self, variable: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.get(variable) {
            None => Ok(default),
            Some(value) => value.trim().parse().map_err(|e: T::Err| ConfigError {
                variable: variable.to_owned(),
                value: value.to_owned(),
                reason: e.to_string(),
            }),
        }
    }

    /// `variable` as a string, or `default` when unset.
    pub fn string_or(&self, variable: &str, default: &str) -> String {
        self.get(variable).unwrap_or(default).to_owned()
    }

    /// `variable` as a socket address, or `default` when unset.
    pub fn addr_or(&self, variable: &str, default: &str) -> Result<SocketAddr, ConfigError> {
        let default = default.parse().map_err(|e: std::net::AddrParseError| ConfigError {
            variable: variable.to_owned(),
            value: default.to_owned(),
            reason: e.to_string(),
        })?;
        self.parse_or(variable, default)
    }

    /// `variable` as a whole number of milliseconds, or `default` when unset.
    pub fn millis_or(&self, variable: &str, default: Duration) -> Result<Duration, ConfigError> {
        let millis = self.parse_or(variable, default.as_millis() as u64)?;
        Ok(Duration::from_millis(millis))
    }

    /// `variable` as a whole number of milliseconds that paces background work or bounds a lease:
    /// zero, which would spin or lapse at once, is refused, as is more than a day.
    pub fn interval_or(&self, variable: &str, default: Duration) -> Result<Duration, ConfigError> {
        let millis = self.parse_within(variable, default.as_millis() as u64, 1..=MAX_INTERVAL_MS)?;
        Ok(Duration::from_millis(millis))
    }

    /// `variable` parsed as `T` and within `range`, or `default` when unset.
    pub fn parse_within<T>(&self, variable: &str, default: T, range: RangeInclusive<T>) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + fmt::Display,
        T::Err: fmt::Display,
    {
        let value = self.parse_or(variable, default)?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError {
                variable: variable.to_owned(),
                value: value.to_string(),
                reason: format!("it must be from {} to {}", range.start(), range.end()),
            })
        }
    }

    /// `variable` as a comma-separated list, or `None` when unset.
    pub fn list(&self, variable: &str) -> Option<Vec<String>> {
        self.get(variable).map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
    }
}

/// The settings every service reads under its own prefix (`CATALOG_`, `INVENTORY_`, ...), plus the
/// suite-wide ones.
#[derive(Clone, Debug)]
pub struct ServiceSettings {
    /// `<PREFIX>_LISTEN_ADDR`: where the gRPC server listens.
    pub listen_addr: SocketAddr,
    /// `<PREFIX>_DATABASE_URL`: the service's own database.
    pub database_url: Secret,
    /// `<PREFIX>_TEST_DATABASE_URL`: where test-mode objects are kept; by default beside the live
    /// ones (a sibling SQLite file, or the `test_mode` schema of the same PostgreSQL database).
    pub test_database_url: Option<Secret>,
    /// `<PREFIX>_DB_MAX_CONNECTIONS` and `DB_ACQUIRE_TIMEOUT_MS`.
    pub pool: PoolConfig,
    /// `GRPC_REQUEST_TIMEOUT_MS`, `GRPC_DRAIN_DELAY_MS`, `GRPC_REFLECTION`, `GRPC_MAX_CONCURRENT_CALLS`,
    /// `GRPC_MAX_MESSAGE_BYTES`, and `<PREFIX>_TLS_CERT`, `_TLS_KEY`, `_TLS_CLIENT_CA`.
    pub server: ServerOptions,
    /// `<PREFIX>_METRICS_ADDR`: where the Prometheus endpoint listens; `off` turns it off.
    pub metrics_addr: Option<SocketAddr>,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector that receives traces and metrics, if any.
    pub otlp_endpoint: Option<String>,
}

impl ServiceSettings {
    /// Reads the settings of the service whose variables start with `prefix`.
    pub fn from_env(
        env: &Env,
        prefix: &str,
        default_addr: &str,
        default_metrics_addr: &str,
        default_database: &str,
    ) -> Result<Self, ConfigError> {
        let defaults = PoolConfig::default();
        let metrics_variable = format!("{prefix}_METRICS_ADDR");
        let metrics_addr = match env.get(&metrics_variable) {
            Some(value) if value.trim().eq_ignore_ascii_case("off") => None,
            _ => Some(env.addr_or(&metrics_variable, default_metrics_addr)?),
        };
        let server_defaults = ServerOptions::default();
        let max_message_bytes: usize =
            env.parse_within("GRPC_MAX_MESSAGE_BYTES", server_defaults.max_message_bytes, 1024..=64 << 20)?;
        // One message of the largest size must fit, or no such call could ever be served.
        let max_inflight_bytes = env.parse_within(
            "GRPC_MAX_INFLIGHT_BYTES",
            server_defaults.max_inflight_bytes.max(max_message_bytes),
            max_message_bytes..=1 << 40,
        )?;
        Ok(Self {
            listen_addr: env.addr_or(&format!("{prefix}_LISTEN_ADDR"), default_addr)?,
            database_url: Secret::new(env.string_or(&format!("{prefix}_DATABASE_URL"), default_database)),
            test_database_url: env.get(&format!("{prefix}_TEST_DATABASE_URL")).map(Secret::new),
            pool: PoolConfig {
                max_connections: env.parse_or(&format!("{prefix}_DB_MAX_CONNECTIONS"), defaults.max_connections)?,
                acquire_timeout: env.interval_or("DB_ACQUIRE_TIMEOUT_MS", defaults.acquire_timeout)?,
            },
            server: ServerOptions {
                request_timeout: env.interval_or("GRPC_REQUEST_TIMEOUT_MS", server_defaults.request_timeout)?,
                drain_delay: env.millis_or("GRPC_DRAIN_DELAY_MS", server_defaults.drain_delay)?,
                reflection: env.parse_or("GRPC_REFLECTION", server_defaults.reflection)?,
                max_concurrent_calls: env
                    .parse_or("GRPC_MAX_CONCURRENT_CALLS", server_defaults.max_concurrent_calls)?
                    .max(1),
                max_message_bytes,
                max_inflight_bytes,
                tls: crate::tls::ServerTls::from_env(env, prefix)?,
            },
            metrics_addr,
            otlp_endpoint: env.get("OTEL_EXPORTER_OTLP_ENDPOINT").map(str::to_owned),
        })
    }
}

/// The reference lists, from `EMBARGOED_COUNTRIES` and `APPROVED_ECCNS` (comma-separated) or the
/// built-in defaults.
pub fn reference_data(env: &Env) -> ReferenceData {
    let mut reference = ReferenceData::default();
    if let Some(codes) = env.list("EMBARGOED_COUNTRIES") {
        reference.countries = Countries::with_embargo(codes.iter().map(String::as_str));
    }
    if let Some(eccns) = env.list("APPROVED_ECCNS") {
        reference.eccns = Eccns::approving(eccns.iter().map(String::as_str));
    }
    reference
}

/// A secret setting (a database URL with a password, a key) that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_and_blank_variables_take_the_default() {
        let env = Env::from_pairs([("BLANK", "  ")]);
        assert_eq!(env.parse_or("MISSING", 7u32).ok(), Some(7));
        assert_eq!(env.parse_or("BLANK", 7u32).ok(), Some(7));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let env = Env::from_pairs([("PORT", "eighty")]);
        let error = env.parse_or("PORT", 80u16).expect_err("not a number");
        assert_eq!(error.variable, "PORT");
        assert!(error.to_string().contains("eighty"));
    }

    #[test]
    fn addresses_durations_and_lists_parse() {
        let env = Env::from_pairs([("ADDR", "127.0.0.1:9"), ("WAIT_MS", "250"), ("LIST", "KP, CU,,IR")]);
        assert_eq!(env.addr_or("ADDR", "0.0.0.0:1").ok(), Some("127.0.0.1:9".parse().expect("addr")));
        assert_eq!(env.millis_or("WAIT_MS", Duration::ZERO).ok(), Some(Duration::from_millis(250)));
        assert_eq!(env.list("LIST"), Some(vec!["KP".to_owned(), "CU".to_owned(), "IR".to_owned()]));
        for zero in ["0", "00"] {
            let error = Env::from_pairs([("SWEEP_MS", zero)]).interval_or("SWEEP_MS", Duration::from_secs(1));
            let error = error.expect_err("a zero interval would spin");
            assert!(error.to_string().starts_with("SWEEP_MS: cannot parse '0'"), "{error}");
            assert!(error.to_string().contains("from 1 to 86400000"), "{error}");
        }
        assert_eq!(Env::default().interval_or("SWEEP_MS", Duration::from_secs(1)).ok(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn the_bytes_in_flight_hold_at_least_one_message_of_the_largest_size() {
        let settings = |pairs: &[(&str, &str)]| {
            ServiceSettings::from_env(
                &Env::from_pairs(pairs.iter().copied()),
                "CATALOG",
                "127.0.0.1:1",
                "127.0.0.1:2",
                "x",
            )
        };
        let defaults = settings(&[]).expect("the defaults fit").server;
        assert!(defaults.max_inflight_bytes >= defaults.max_message_bytes);
        let raised = settings(&[("GRPC_MAX_MESSAGE_BYTES", "8388608")]).expect("valid").server;
        assert_eq!(raised.max_inflight_bytes, 8388608, "the default budget grows to one message");
        let error = settings(&[("GRPC_MAX_MESSAGE_BYTES", "2097152"), ("GRPC_MAX_INFLIGHT_BYTES", "1048576")])
            .expect_err("no message of the largest size could be served");
        assert_eq!(error.variable, "GRPC_MAX_INFLIGHT_BYTES");
    }

    #[test]
    fn service_settings_read_the_prefix_and_the_shared_variables() {
        let env = Env::from_pairs([
            ("CATALOG_LISTEN_ADDR", "0.0.0.0:7000"),
            ("CATALOG_DATABASE_URL", "postgres://u:pw@db/catalog"),
            ("INVENTORY_DATABASE_URL", "postgres://other"),
            ("GRPC_DRAIN_DELAY_MS", "5000"),
            ("GRPC_REFLECTION", "false"),
        ]);
        let settings = ServiceSettings::from_env(&env, "CATALOG", "127.0.0.1:50051", "127.0.0.1:9101", "sqlite://x")
            .expect("valid");
        assert_eq!(settings.listen_addr.port(), 7000);
        assert_eq!(settings.database_url.expose(), "postgres://u:pw@db/catalog");
        assert_eq!(settings.server.drain_delay, Duration::from_secs(5));
        assert!(!settings.server.reflection);
        assert_eq!(settings.metrics_addr, Some("127.0.0.1:9101".parse().expect("addr")), "the default");
        assert!(!format!("{settings:?}").contains("pw"), "the database URL never prints");
    }

    #[test]
    fn the_metrics_endpoint_can_be_moved_or_turned_off() {
        let settings = |value: &str| {
            let env = Env::from_pairs([("INVENTORY_METRICS_ADDR", value)]);
            ServiceSettings::from_env(&env, "INVENTORY", "127.0.0.1:1", "127.0.0.1:2", "sqlite://x")
        };
        assert_eq!(settings("0.0.0.0:9464").expect("valid").metrics_addr, Some("0.0.0.0:9464".parse().expect("addr")));
        assert_eq!(settings("OFF").expect("valid").metrics_addr, None);
        assert!(settings("nine").is_err(), "a bad address is refused, not ignored");
    }

    #[test]
    fn reference_lists_come_from_the_environment() {
        let env = Env::from_pairs([("EMBARGOED_COUNTRIES", "RU"), ("APPROVED_ECCNS", "EAR99")]);
        let reference = reference_data(&env);
        assert!(reference.validate_country_of_origin("KP").is_ok());
        assert!(reference.validate_country_of_origin("RU").is_err());
        assert!(reference.validate_eccn("5D992.c").is_err());
        assert!(reference_data(&Env::default()).validate_eccn("5D992.c").is_ok());
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("postgres://u:pw@h/db");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(secret.expose(), "postgres://u:pw@h/db");
    }
}
