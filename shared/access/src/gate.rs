//! The key check every call passes: who is calling (the `authorization: Bearer` key), in which mode,
//! whether the key's scopes allow the method, and whether the key is within its rate.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fulfillment_errors::{ApiError, ErrorCode};
use fulfillment_proto::access::v1 as pb;
use fulfillment_proto::access::v1::access_service_client::AccessServiceClient;
use fulfillment_server::calls::{CallPolicy, Credentials, MODE_METADATA, Outcome};
use fulfillment_server::gate::{Gate, GateFuture};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
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

    async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>, tonic::Status> {
        // A secret without the shape of a key is nobody's: no need to ask.
        if crate::key::prefix_of(secret).is_none() {
            return Ok(None);
        }
        let hash = crate::key::hash(secret);
        if let Some(unknown) = &self.unknown
            && unknown.contains_key(&hash)
        {
            return Ok(None);
        }
        let known = match &self.cache {
            Some(cache) => cache.get(&hash).await,
            None => None,
        };
        if let Some(known) = known.as_ref().filter(|known| known.at.elapsed() < self.fresh) {
            return Ok(known.key.clone());
        }
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

/// The suite's [`Gate`]: see the module documentation.
#[derive(Debug)]
pub struct KeyGate {
    keys: Keys,
    policy: Policy,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl KeyGate {
    /// Checks keys in `keys` against `policy`, limiting each key to `rate` when given.
    pub fn new(keys: Keys, policy: Policy, rate: Option<RateLimit>) -> Arc<Self> {
        let limiter = rate.and_then(|rate| {
            let quota = Quota::per_second(NonZeroU32::new(rate.per_second)?)
                .allow_burst(NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN));
            Some(DefaultKeyedRateLimiter::keyed(quota))
        });
        Arc::new(Self { keys, policy, limiter })
    }

    async fn admit(&self, path: &str, headers: &http::HeaderMap) -> Result<Principal, tonic::Status> {
        let secret = bearer(headers)
            .ok_or_else(|| unauthenticated("An API key is required: send it as 'authorization: Bearer <key>'."))?;
        let key = self
            .keys
            .authenticate(secret)
            .await?
            .ok_or_else(|| unauthenticated("The API key is not valid, or it was revoked."))?;
        let live_mode = match key.kind {
            KeyKind::Live => true,
            KeyKind::Test => false,
            KeyKind::Service => match headers.get(MODE_METADATA).map(|v| v.as_bytes()) {
                Some(b"live") => true,
                Some(b"test") => false,
                _ => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidArgument,
                        format!("A service key names the mode it acts in: '{MODE_METADATA}: live' or 'test'."),
                    )
                    .into_status(DOMAIN));
                }
            },
        };
        let need = self.policy.need(path);
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
            return Err(ApiError::new(ErrorCode::PermissionDenied, format!("This call needs {need}."))
                .with_reason("permission_denied")
                .with_metadata("key", key.prefix.clone())
                .into_status(DOMAIN));
        }
        if let (Some(limiter), false) = (&self.limiter, key.kind == KeyKind::Service)
            && let Err(not_until) = limiter.check_key(&key.id)
        {
            {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                return Err(tonic::Status::with_error_details(
                    tonic::Code::ResourceExhausted,
                    "This API key is over its rate limit; retry after the delay given.",
                    ErrorDetails::with_retry_info(Some(wait.max(Duration::from_millis(1)))),
                ));
            }
        }
        Ok(Principal { key, live_mode })
    }
}

impl Gate for KeyGate {
    fn check<'a>(&'a self, path: &'a str, headers: &'a http::HeaderMap) -> GateFuture<'a> {
        Box::pin(async move {
            let principal = self.admit(path, headers).await?;
            let mut extensions = http::Extensions::new();
            extensions.insert(principal);
            Ok(extensions)
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
