use std::time::Duration;

use fulfillment_server::calls::Credentials;
use fulfillment_server::config::{ConfigError, Env, Secret};

use crate::RateLimit;

/// How a service checks keys, from the environment.
#[derive(Clone, Debug)]
pub struct AccessSettings {
    /// `API_KEY_RATE_LIMIT` (calls per second per key, 0 for none; default 100) and
    /// `API_KEY_RATE_BURST` (default twice the rate).
    pub rate: Option<RateLimit>,
    /// `API_KEY_MAX_CONCURRENT_CALLS`: the most calls one key has in flight on a replica (0 for no
    /// cap; default 64).
    pub calls_per_key: usize,
    /// `API_KEY_FAILURE_LIMIT` (failed authentications per second per caller address, 0 for none;
    /// default 10) and `API_KEY_FAILURE_BURST` (default twice the rate).
    pub failures: Option<RateLimit>,
    /// `API_KEY_CACHE_MS`: how long a service that asks another about keys remembers an answer
    /// (default 2000): a revoked key stops working there within this time.
    pub cache: Duration,
    /// `API_KEY_STALE_MS`: how long an earlier answer is used while the service that checks keys is
    /// unreachable (default 60000, a minute).
    pub stale: Duration,
    /// `<PREFIX>_SERVICE_KEY`: the service key this service calls the others with.
    pub service_key: Option<Secret>,
    /// The prefix of this service's variables.
    prefix: String,
}

impl AccessSettings {
    /// Reads the settings of the service whose variables start with `prefix`.
    pub fn from_env(env: &Env, prefix: &str) -> Result<Self, ConfigError> {
        let per_second: u32 = env.parse_or("API_KEY_RATE_LIMIT", 100)?;
        let burst: u32 = env.parse_or("API_KEY_RATE_BURST", per_second.saturating_mul(2))?;
        let failures_per_second: u32 = env.parse_or("API_KEY_FAILURE_LIMIT", 10)?;
        let failure_burst: u32 = env.parse_or("API_KEY_FAILURE_BURST", failures_per_second.saturating_mul(2))?;
        Ok(Self {
            rate: (per_second > 0).then_some(RateLimit { per_second, burst: burst.max(1) }),
            calls_per_key: env.parse_or("API_KEY_MAX_CONCURRENT_CALLS", 64)?,
            failures: (failures_per_second > 0)
                .then_some(RateLimit { per_second: failures_per_second, burst: failure_burst.max(1) }),
            cache: env.millis_or("API_KEY_CACHE_MS", Duration::from_secs(2))?,
            stale: env.millis_or("API_KEY_STALE_MS", Duration::from_secs(60))?,
            service_key: env.get(&format!("{prefix}_SERVICE_KEY")).map(Secret::new),
            prefix: prefix.to_owned(),
        })
    }

    /// What this service sends to call another in `live_mode`: its service key, which it must have.
    pub fn credentials(&self, live_mode: bool) -> Result<Credentials, ConfigError> {
        let variable = format!("{}_SERVICE_KEY", self.prefix);
        let key = self.service_key.as_ref().ok_or_else(|| ConfigError {
            variable: variable.clone(),
            value: String::new(),
            reason: "required: the service key this service calls the Inventory with (give the Inventory \
                     the same secret as INVENTORY_<SERVICE>_SERVICE_KEY; service keys come only \
                     from the deployment)"
                .to_owned(),
        })?;
        Credentials::new(key.expose(), live_mode).map_err(|e| ConfigError {
            variable,
            value: "***".to_owned(),
            reason: e.to_string(),
        })
    }

    /// What the gate limits.
    pub fn limits(&self) -> crate::GateLimits {
        crate::GateLimits { rate: self.rate, calls_per_key: Some(self.calls_per_key), failures: self.failures }
    }

    /// The gate of a service that asks the Inventory about keys on `channel` (with `calls`, as
    /// this service), letting calls through as `policy` says and counting refusals in `metrics`.
    pub fn remote_gate(
        &self,
        channel: tonic::transport::Channel,
        calls: fulfillment_server::calls::CallPolicy,
        policy: crate::Policy,
        metrics: &fulfillment_server::Metrics,
    ) -> Result<std::sync::Arc<crate::KeyGate>, ConfigError> {
        let keys = crate::RemoteKeys::new(channel, calls, self.credentials(true)?, self.cache, self.stale);
        Ok(crate::KeyGate::new(crate::Keys::Remote(Box::new(keys)), policy, self.limits(), metrics))
    }
}
