//! The key check every call passes: who is calling (the `authorization: Bearer` key), in which mode,
//! whether the key's scopes allow the method, and whether the key is within its rate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use fulfillment_errors::{ApiError, ErrorCode};
use fulfillment_proto::access::v1 as pb;
use fulfillment_proto::access::v1::access_service_client::AccessServiceClient;
use fulfillment_server::Metrics;
use fulfillment_server::calls::{CallPolicy, Credentials, MODE_METADATA, Outcome};
use fulfillment_server::gate::{Admitted, Call, Gate, GateFuture};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;
use tonic::transport::Channel;
use tonic_types::{ErrorDetails, StatusExt};

use crate::key::{KeyKind, Scope};
use crate::registry::{ApiKey, Registry};
use crate::{DOMAIN, Principal};

/// What a method needs of the key that calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The read scope.
    Read,
    /// The write scope.
    Write,
    /// The admin scope.
    Admin,
    /// A service key of the suite's.
    Service,
}

/// What each method of a server needs: `(method, need)` per gRPC service. A method not listed
/// needs a valid key and no scope (the server then answers UNIMPLEMENTED).
#[derive(Clone, Debug, Default)]
pub struct Policy {
    needs: std::collections::HashMap<String, Need>,
}

impl Policy {
    /// Adds the methods of the gRPC service `service` (its full name).
    pub fn service(mut self, service: &str, methods: &[(&str, Need)]) -> Self {
        self.needs.extend(methods.iter().map(|(method, need)| (format!("/{service}/{method}"), *need)));
        self
    }

    fn need(&self, path: &str) -> Option<Need> {
        self.needs.get(path).copied()
    }
}

/// How many calls a key may make: `per_second` on average, `burst` at once. Service keys are not
/// limited: their calls are made on behalf of callers already counted.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    /// The sustained rate.
    pub per_second: u32,
    /// The most calls at once after a quiet spell.
    pub burst: u32,
}

/// Where a gate finds keys: in the registry it serves, or by asking the service that serves it.
#[derive(Debug)]
pub enum Keys {
    /// The registry in this service's own database.
    Local(Registry),
    /// The access RPCs of another service, remembered for a while.
    Remote(Box<RemoteKeys>),
}

impl Keys {
    /// What is already known of `secret` without asking anyone: `None` when a lookup is needed.
    async fn remembered(&self, secret: &str) -> Option<Option<ApiKey>> {
        if crate::key::prefix_of(secret).is_none() {
            return Some(None);
        }
        match self {
            Keys::Local(registry) => registry.remembered(secret).await,
            Keys::Remote(remote) => remote.remembered(secret).await,
        }
    }

    async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>, tonic::Status> {
        match self {
            Keys::Local(registry) => {
                registry.authenticate(secret).await.map_err(|e| ApiError::from(e).into_status(DOMAIN))
            }
            Keys::Remote(remote) => remote.authenticate(secret).await,
        }
    }
}

/// Keys checked by another service's `AuthenticateApiKey`. Each answer (a key, or none) is used for
/// a while without asking again, so a revoked key stops working here within that while. While the
/// other service cannot be reached, an older answer is used, up to a limit, so that an Inventory
/// outage does not lock every caller out of the services that could still answer them.
#[derive(Debug)]
pub struct RemoteKeys {
    client: AccessServiceClient<Channel>,
    calls: CallPolicy,
    fresh: Duration,
    cache: Option<moka::future::Cache<Vec<u8>, Arc<Answer>>>,
    /// Secrets the access service said it does not know, kept apart so that a flood of made-up
    /// keys cannot push the real ones out.
    unknown: Option<moka::future::Cache<Vec<u8>, ()>>,
}

/// What the access service said of a key, and when.
#[derive(Debug)]
struct Answer {
    key: Option<ApiKey>,
    at: Instant,
}

/// Why a key could not be checked.
enum Unchecked {
    /// The access service could not be reached.
    Unreachable(String),
    /// It refused to answer (this service's own key is wrong), was busy, or the time ran out.
    Refused(String),
}

impl RemoteKeys {
    /// Asks the access service on `channel`, as the service whose key `credentials` carry. An answer
    /// is used for `fresh` (every call asks when zero), and for up to `stale` while the access
    /// service is unreachable.
    pub fn new(
        channel: Channel,
        calls: CallPolicy,
        credentials: Credentials,
        fresh: Duration,
        stale: Duration,
    ) -> Self {
        let cache = (!fresh.is_zero())
            .then(|| moka::future::Cache::builder().max_capacity(10_000).time_to_live(stale.max(fresh)).build());
        let unknown =
            (!fresh.is_zero()).then(|| moka::future::Cache::builder().max_capacity(10_000).time_to_live(fresh).build());
        Self {
            client: AccessServiceClient::new(channel),
            calls: calls.with_credentials(credentials),
            fresh,
            cache,
            unknown,
        }
    }

    async fn remembered(&self, secret: &str) -> Option<Option<ApiKey>> {
        let hash = crate::key::hash(secret);
        if let Some(unknown) = &self.unknown
            && unknown.contains_key(&hash)
        {
            return Some(None);
        }
        let known = self.cache.as_ref()?.get(&hash).await?;
        (known.at.elapsed() < self.fresh).then(|| known.key.clone())
    }

    async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>, tonic::Status> {
        // A secret without the shape of a key is nobody's: no need to ask.
        if crate::key::prefix_of(secret).is_none() {
            return Ok(None);
        }
        if let Some(answer) = self.remembered(secret).await {
            return Ok(answer);
        }
        let hash = crate::key::hash(secret);
        // An answer too old to trust, kept for when the access service cannot be reached.
        let known = match &self.cache {
            Some(cache) => cache.get(&hash).await,
            None => None,
        };
        match self.ask(secret).await {
            Ok(None) => {
                if let Some(cache) = &self.cache {
                    cache.invalidate(&hash).await;
                }
                if let Some(unknown) = &self.unknown {
                    unknown.insert(hash, ()).await;
                }
                Ok(None)
            }
            Ok(Some(key)) => {
                if let Some(cache) = &self.cache {
                    cache.insert(hash, Arc::new(Answer { key: Some(key.clone()), at: Instant::now() })).await;
                }
                Ok(Some(key))
            }
            Err(Unchecked::Unreachable(reason)) if known.is_some() => {
                tracing::warn!(%reason, "the access service is unreachable; using an earlier answer about a key");
                Ok(known.and_then(|known| known.key.clone()))
            }
            Err(Unchecked::Unreachable(reason) | Unchecked::Refused(reason)) => {
                tracing::warn!(%reason, "cannot check an API key");
                Err(ApiError::new(ErrorCode::Unavailable, "API keys cannot be checked right now; retry shortly.")
                    .into_status(DOMAIN))
            }
        }
    }

    async fn ask(&self, secret: &str) -> Result<Option<ApiKey>, Unchecked> {
        let message = pb::AuthenticateApiKeyRequest { secret: secret.to_owned() };
        let outcome = self
            .calls
            .call(message, |request| {
                let mut client = self.client.clone();
                async move { client.authenticate_api_key(request).await.map(|r| r.into_inner().api_key) }
            })
            .await;
        match outcome {
            Outcome::Done(key) => {
                key.map(crate::grpc::key_from_proto).transpose().map_err(|e| Unchecked::Refused(e.to_string()))
            }
            // Only a connection that fails lets an earlier answer stand in: not a busy Inventory
            // (RESOURCE_EXHAUSTED), nor a caller's deadline, which the caller chooses.
            Outcome::NotSent(status) | Outcome::Unknown(status) if status.code() == tonic::Code::Unavailable => {
                Err(Unchecked::Unreachable(status.message().to_owned()))
            }
            Outcome::Refused(status) | Outcome::NotSent(status) | Outcome::Unknown(status) => {
                Err(Unchecked::Refused(status.message().to_owned()))
            }
        }
    }
}

/// What a gate limits, per key and per caller. Service keys are limited by none of them: their
/// calls are made on behalf of callers already counted.
#[derive(Clone, Copy, Debug, Default)]
pub struct GateLimits {
    /// Calls per key over time.
    pub rate: Option<RateLimit>,
    /// The most calls one key has in flight at once, so that one key, test or live, cannot take
    /// every call slot of a server with slow requests.
    pub calls_per_key: Option<usize>,
    /// Failed authentications per caller address. Past them, a call from that address whose key is
    /// not already known is refused without a lookup until the rate lets one through again.
    pub failures: Option<RateLimit>,
}

/// Why the gate refused a call, as its refusal counter labels it.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    MissingKey,
    UnknownKey,
    FailuresLimited,
    ModeMissing,
    PermissionDenied,
    RateLimited,
    ConcurrencyLimited,
}

impl Refusal {
    const ALL: [Refusal; 7] = [
        Refusal::MissingKey,
        Refusal::UnknownKey,
        Refusal::FailuresLimited,
        Refusal::ModeMissing,
        Refusal::PermissionDenied,
        Refusal::RateLimited,
        Refusal::ConcurrencyLimited,
    ];

    fn label(self) -> &'static str {
        match self {
            Refusal::MissingKey => "missing_key",
            Refusal::UnknownKey => "unknown_key",
            Refusal::FailuresLimited => "failures_limited",
            Refusal::ModeMissing => "mode_missing",
            Refusal::PermissionDenied => "permission_denied",
            Refusal::RateLimited => "rate_limited",
            Refusal::ConcurrencyLimited => "concurrency_limited",
        }
    }
}

/// How many callers' failures a gate remembers before it forgets the quiet ones.
const FAILING_PEERS: usize = 10_000;

/// The suite's [`Gate`]: see the module documentation.
pub struct KeyGate {
    keys: Keys,
    policy: Policy,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    calls_per_key: Option<usize>,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Caller addresses past their failures, and until when.
    barred: moka::future::Cache<IpAddr, Instant>,
    refusals: Counter<u64>,
}

impl std::fmt::Debug for KeyGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyGate")
            .field("keys", &self.keys)
            .field("calls_per_key", &self.calls_per_key)
            .finish_non_exhaustive()
    }
}

fn keyed_limiter<K: std::hash::Hash + Eq + Clone>(rate: RateLimit) -> Option<DefaultKeyedRateLimiter<K>> {
    let quota = Quota::per_second(NonZeroU32::new(rate.per_second)?)
        .allow_burst(NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN));
    Some(DefaultKeyedRateLimiter::keyed(quota))
}

impl KeyGate {
    /// Checks keys in `keys` against `policy` within `limits`, counting refusals in `metrics`.
    pub fn new(keys: Keys, policy: Policy, limits: GateLimits, metrics: &Metrics) -> Arc<Self> {
        let refusals = metrics
            .meter()
            .u64_counter("access.refusals")
            .with_description("Calls the key gate refused, by reason")
            .build();
        for refusal in Refusal::ALL {
            refusals.add(0, &[KeyValue::new("reason", refusal.label())]);
        }
        Arc::new(Self {
            keys,
            policy,
            limiter: limits.rate.and_then(keyed_limiter),
            calls_per_key: limits.calls_per_key.filter(|max| *max > 0),
            in_flight: Arc::default(),
            failures: limits.failures.and_then(keyed_limiter),
            barred: moka::future::Cache::builder()
                .max_capacity(FAILING_PEERS as u64)
                .time_to_live(Duration::from_secs(60))
                .build(),
            refusals,
        })
    }

    fn refuse(&self, refusal: Refusal, status: tonic::Status) -> tonic::Status {
        self.refusals.add(1, &[KeyValue::new("reason", refusal.label())]);
        status
    }

    /// Counts a failed authentication from `peer`, barring it once past its failures.
    async fn failed(&self, peer: Option<IpAddr>) {
        let (Some(limiter), Some(peer)) = (&self.failures, peer) else { return };
        if limiter.len() > FAILING_PEERS {
            limiter.retain_recent();
        }
        if let Err(not_until) = limiter.check_key(&peer) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            self.barred.insert(peer, Instant::now() + wait).await;
        }
    }

    /// How long `peer` is still barred, if it is.
    async fn barred_for(&self, peer: Option<IpAddr>) -> Option<Duration> {
        let until = self.barred.get(&peer?).await?;
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    async fn admit(&self, call: Call<'_>) -> Result<(Principal, Option<KeyCall>), tonic::Status> {
        let headers = call.headers;
        let Some(secret) = bearer(headers) else {
            self.failed(call.peer).await;
            let message = "An API key is required: send it as 'authorization: Bearer <key>'.";
            return Err(self.refuse(Refusal::MissingKey, unauthenticated(message)));
        };
        let key = match self.keys.remembered(secret).await {
            Some(known) => known,
            None => {
                // A caller past its failures gets no lookup for a key nobody knows yet.
                if let Some(wait) = self.barred_for(call.peer).await {
                    let status = tonic::Status::with_error_details(
                        tonic::Code::ResourceExhausted,
                        "Too many failed authentications from this address; retry after the delay given.",
                        ErrorDetails::with_retry_info(Some(wait.max(Duration::from_millis(1)))),
                    );
                    return Err(self.refuse(Refusal::FailuresLimited, status));
                }
                self.keys.authenticate(secret).await?
            }
        };
        let Some(key) = key else {
            self.failed(call.peer).await;
            let message = "The API key is not valid, or it was revoked.";
            return Err(self.refuse(Refusal::UnknownKey, unauthenticated(message)));
        };
        let live_mode = match key.kind {
            KeyKind::Live => true,
            KeyKind::Test => false,
            KeyKind::Service => match headers.get(MODE_METADATA).map(|v| v.as_bytes()) {
                Some(b"live") => true,
                Some(b"test") => false,
                _ => {
                    let status = ApiError::new(
                        ErrorCode::InvalidArgument,
                        format!("A service key names the mode it acts in: '{MODE_METADATA}: live' or 'test'."),
                    )
                    .into_status(DOMAIN);
                    return Err(self.refuse(Refusal::ModeMissing, status));
                }
            },
        };
        let need = self.policy.need(call.path);
        let allowed = match need {
            None => true,
            Some(Need::Service) => key.kind == KeyKind::Service,
            Some(Need::Read) => key.has(Scope::Read),
            Some(Need::Write) => key.has(Scope::Write),
            Some(Need::Admin) => key.has(Scope::Admin),
        };
        if !allowed {
            let need = match need {
                Some(Need::Read) => "the read scope",
                Some(Need::Write) => "the write scope",
                Some(Need::Admin) => "the admin scope",
                _ => "a service key of the suite's",
            };
            let status = ApiError::new(ErrorCode::PermissionDenied, format!("This call needs {need}."))
                .with_reason("permission_denied")
                .with_metadata("key", key.prefix.clone())
                .into_status(DOMAIN);
            return Err(self.refuse(Refusal::PermissionDenied, status));
        }
        if key.kind == KeyKind::Service {
            return Ok((Principal { key, live_mode }, None));
        }
        if let Some(limiter) = &self.limiter
            && let Err(not_until) = limiter.check_key(&key.id)
        {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let status = tonic::Status::with_error_details(
                tonic::Code::ResourceExhausted,
                "This API key is over its rate limit; retry after the delay given.",
                ErrorDetails::with_retry_info(Some(wait.max(Duration::from_millis(1)))),
            );
            return Err(self.refuse(Refusal::RateLimited, status));
        }
        let slot = match self.calls_per_key {
            None => None,
            Some(max) => match KeyCall::take(&self.in_flight, &key.id, max) {
                Some(slot) => Some(slot),
                None => {
                    let status = tonic::Status::with_error_details(
                        tonic::Code::ResourceExhausted,
                        format!("This API key has {max} calls in flight, its limit; retry shortly."),
                        ErrorDetails::with_retry_info(Some(KEY_BUSY_RETRY)),
                    );
                    return Err(self.refuse(Refusal::ConcurrencyLimited, status));
                }
            },
        };
        Ok((Principal { key, live_mode }, slot))
    }
}

/// How long a key at its limit of calls in flight is told to wait.
const KEY_BUSY_RETRY: Duration = Duration::from_millis(50);

/// One call in flight of a key's, counted until it is answered.
struct KeyCall {
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl KeyCall {
    /// A slot for one more call of `key`, unless it has `max` in flight.
    fn take(in_flight: &Arc<Mutex<HashMap<String, usize>>>, key: &str, max: usize) -> Option<Self> {
        let mut counts = in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(key.to_owned()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Self { in_flight: in_flight.clone(), key: key.to_owned() })
    }
}

impl Drop for KeyCall {
    fn drop(&mut self) {
        let mut counts = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

impl Gate for KeyGate {
    fn check<'a>(&'a self, call: Call<'a>) -> GateFuture<'a> {
        Box::pin(async move {
            let (principal, slot) = self.admit(call).await?;
            let mut admitted = Admitted::default();
            admitted.extensions.insert(principal);
            admitted.guard = slot.map(|slot| Box::new(slot) as Box<dyn Send>);
            Ok(admitted)
        })
    }
}

/// The secret of an `authorization: Bearer <secret>` header.
fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, secret) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim()).filter(|s| !s.is_empty())
}

fn unauthenticated(message: &str) -> tonic::Status {
    ApiError::new(ErrorCode::Unauthenticated, message).with_reason("unauthenticated").into_status(DOMAIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_read_whatever_its_case() {
        let headers = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::AUTHORIZATION, value.parse().expect("a header value"));
            headers
        };
        assert_eq!(bearer(&headers("Bearer fk_x")), Some("fk_x"));
        assert_eq!(bearer(&headers("bearer  fk_x ")), Some("fk_x"));
        assert_eq!(bearer(&headers("Basic fk_x")), None);
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&http::HeaderMap::new()), None);
    }
}
