//! Calls from one service to another: a deadline on each, never later than the deadline of the call
//! being served, retries while the outcome is unknown (the suite only retries idempotent calls), and
//! an answer classified for the caller.

use std::future::Future;
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;
use tonic::metadata::errors::InvalidMetadataValue;
use tonic::metadata::{Ascii, MetadataMap, MetadataValue};
use tonic::{Code, Request, Status};

use crate::Metrics;

/// How a call to another service ended; a peer client may read the refusal into a type of its own.
#[derive(Debug)]
pub enum Outcome<T, R = Status> {
    /// The peer did it.
    Done(T),
    /// The peer refused: its answer is final.
    Refused(R),
    /// The call never reached the peer (the connection was refused), so nothing happened.
    NotSent(Status),
    /// Nobody knows whether it happened: the call timed out, or the connection broke mid-call.
    Unknown(Status),
}

impl<T, R> Outcome<T, R> {
    /// The same outcome with what was done turned by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U, R> {
        match self {
            Outcome::Done(value) => Outcome::Done(f(value)),
            Outcome::Refused(refusal) => Outcome::Refused(refusal),
            Outcome::NotSent(status) => Outcome::NotSent(status),
            Outcome::Unknown(status) => Outcome::Unknown(status),
        }
    }

    /// The same outcome with the refusal turned by `f`.
    pub fn map_refused<S>(self, f: impl FnOnce(R) -> S) -> Outcome<T, S> {
        match self {
            Outcome::Done(value) => Outcome::Done(value),
            Outcome::Refused(refusal) => Outcome::Refused(f(refusal)),
            Outcome::NotSent(status) => Outcome::NotSent(status),
            Outcome::Unknown(status) => Outcome::Unknown(status),
        }
    }
}

tokio::task_local! {
    /// When the call being served must be answered by.
    static DEADLINE: Instant;
}

/// Runs `future` (a call's handler) with `deadline` as the bound of every call it makes.
pub async fn with_deadline<F: Future>(deadline: Instant, future: F) -> F::Output {
    DEADLINE.scope(deadline, future).await
}

/// How long is left of the served call's deadline, if a call is being served.
fn remaining() -> Option<Duration> {
    DEADLINE.try_with(|deadline| deadline.saturating_duration_since(Instant::now())).ok()
}

/// The deadline a `grpc-timeout` header gives: an amount and a unit (hours, minutes, seconds,
/// milli-, micro-, nanoseconds).
pub fn grpc_timeout(value: &str) -> Option<Duration> {
    let unit = value.chars().last()?;
    let amount: u64 = value[..value.len() - unit.len_utf8()].parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(amount.saturating_mul(3600)),
        'M' => Duration::from_secs(amount.saturating_mul(60)),
        'S' => Duration::from_secs(amount),
        'm' => Duration::from_millis(amount),
        'u' => Duration::from_micros(amount),
        'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// How the calls to one peer are made: each attempt with a deadline, retried while the outcome
/// stays unknown, and every retry counted in `rpc.client.retries` by method.
#[derive(Clone, Debug)]
pub struct CallPolicy {
    timeout: Duration,
    attempts: u32,
    retries: Counter<u64>,
    credentials: Option<Credentials>,
}

/// What a service sends to say who it is and in which mode it calls: its own service key, and the
/// mode (live or test) of the call it serves.
#[derive(Clone)]
pub struct Credentials {
    authorization: MetadataValue<Ascii>,
    mode: MetadataValue<Ascii>,
}

/// The metadata key that carries the mode a service key acts in.
pub const MODE_METADATA: &str = "x-fulfillment-mode";

impl Credentials {
    /// `key` sent as a bearer key, acting in live mode or in test mode. A key that cannot be sent in
    /// a header is refused.
    pub fn new(key: &str, live_mode: bool) -> Result<Self, InvalidMetadataValue> {
        Ok(Self {
            authorization: format!("Bearer {key}").parse()?,
            mode: MetadataValue::from_static(if live_mode { "live" } else { "test" }),
        })
    }

    /// Adds them to an outgoing call.
    pub fn apply(&self, metadata: &mut MetadataMap) {
        metadata.insert("authorization", self.authorization.clone());
        metadata.insert(MODE_METADATA, self.mode.clone());
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("mode", &self.mode).finish_non_exhaustive()
    }
}

impl CallPolicy {
    /// Up to `attempts` attempts per call, each with `timeout` as its deadline.
    pub fn new(timeout: Duration, attempts: u32, metrics: &Metrics) -> Self {
        let retries = metrics
            .meter()
            .u64_counter("rpc.client.retries")
            .with_description("Calls to another service sent again because the outcome of the last attempt was unknown")
            .build();
        Self { timeout, attempts: attempts.max(1), retries, credentials: None }
    }

    /// Sends `credentials` with every call.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Sends `message` with `send` until the peer answers or the attempts run out.
    pub async fn call<Req, T, F, Fut>(&self, message: Req, send: F) -> Outcome<T>
    where
        Req: Clone,
        F: Fn(Request<Req>) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut last = None;
        // Once an attempt may have landed, a later refused connection proves nothing.
        let mut maybe_applied = false;
        for attempt in 0..self.attempts {
            if attempt > 0 {
                self.retries.add(1, &[KeyValue::new("rpc.method", method_name::<Req>())]);
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(4))).await;
            }
            let timeout = match remaining() {
                // The caller has given up: nothing more is sent on its behalf.
                Some(left) if left.is_zero() => break,
                Some(left) => self.timeout.min(left),
                None => self.timeout,
            };
            let mut request = Request::new(message.clone());
            request.set_timeout(timeout);
            crate::telemetry::inject_context(request.metadata_mut());
            if let Some(credentials) = &self.credentials {
                credentials.apply(request.metadata_mut());
            }
            match send(request).await {
                Ok(value) => return Outcome::Done(value),
                Err(status) if not_sent(&status) && !maybe_applied => last = Some(Outcome::NotSent(status)),
                Err(status) if not_sent(&status) || outcome_unknown(&status) => {
                    maybe_applied = true;
                    last = Some(Outcome::Unknown(status));
                }
                // A refusal of a retry says nothing of the attempt before it, which may have
                // landed: the outcome stays unknown, to be settled by reading what is there.
                Err(status) if maybe_applied => return Outcome::Unknown(status),
                Err(status) => return Outcome::Refused(status),
            }
        }
        last.unwrap_or_else(|| {
            Outcome::NotSent(Status::deadline_exceeded("the deadline passed before the call was sent"))
        })
    }
}

/// The RPC a request message is for, from its generated type: `PlaceHoldRequest` is `PlaceHold`.
fn method_name<Req>() -> &'static str {
    let name = std::any::type_name::<Req>();
    let name = name.rsplit("::").next().unwrap_or(name);
    name.strip_suffix("Request").unwrap_or(name)
}

/// Whether a failed call may or may not have taken effect.
fn outcome_unknown(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Unknown
            | Code::Aborted
            | Code::ResourceExhausted
    )
}

/// Whether the call failed before reaching the peer: tonic reports a refused connection as
/// UNAVAILABLE with a transport error naming the connect.
fn not_sent(status: &Status) -> bool {
    status.code() == Code::Unavailable && status.message().contains("tcp connect error")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(attempts: u32) -> CallPolicy {
        CallPolicy::new(Duration::from_secs(1), attempts, &Metrics::new("test", None))
    }

    #[tokio::test]
    async fn a_refusal_is_final_and_an_unknown_outcome_is_retried() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let outcome: Outcome<()> = policy(3)
            .call((), |_| {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                async { Err(Status::failed_precondition("no")) }
            })
            .await;
        assert!(matches!(outcome, Outcome::Refused(_)));
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 1);

        let calls = std::sync::atomic::AtomicU32::new(0);
        let outcome: Outcome<()> = policy(3)
            .call((), |_| {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                async { Err(Status::deadline_exceeded("slow")) }
            })
            .await;
        assert!(matches!(outcome, Outcome::Unknown(_)));
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_call_never_outlives_the_deadline_of_the_call_being_served() {
        let sent = std::sync::Mutex::new(Vec::new());
        let deadline = Instant::now() + Duration::from_millis(200);
        let outcome: Outcome<()> = with_deadline(deadline, async {
            policy(1)
                .call((), |request| {
                    let timeout =
                        request.metadata().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(grpc_timeout);
                    sent.lock().expect("lock").push(timeout);
                    async { Ok(()) }
                })
                .await
        })
        .await;
        assert!(matches!(outcome, Outcome::Done(())));
        let timeout = sent.lock().expect("lock")[0].expect("a grpc-timeout");
        assert!(timeout <= Duration::from_millis(200), "{timeout:?}, not the policy's second");

        let passed = Instant::now();
        let outcome: Outcome<()> = with_deadline(passed, async {
            policy(3).call((), |_| async { panic!("nothing is sent past the deadline") }).await
        })
        .await;
        assert!(matches!(outcome, Outcome::NotSent(status) if status.code() == Code::DeadlineExceeded));
    }

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_nonsense_does_not() {
        assert_eq!(grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(grpc_timeout("9n"), Some(Duration::from_nanos(9)));
        for nonsense in ["", "S", "5", "5s", "-5S", "5.0S", "99999999999999999999S"] {
            assert_eq!(grpc_timeout(nonsense), None, "{nonsense}");
        }
    }

    #[tokio::test]
    async fn retries_are_counted_by_method() {
        let metrics = Metrics::new("test", None);
        let policy = CallPolicy::new(Duration::from_secs(1), 3, &metrics);
        let request = fulfillment_proto::inventory::v1::GetHoldRequest { hold_id: "x".into() };
        let _: Outcome<()> = policy.call(request, |_| async { Err(Status::unavailable("reset")) }).await;
        let text = metrics.render();
        assert!(text.contains("rpc_client_retries_total{rpc_method=\"GetHold\"} 2"), "{text}");
    }

    #[tokio::test]
    async fn a_refused_connection_means_nothing_was_sent() {
        let outcome: Outcome<()> =
            policy(2).call((), |_| async { Err(Status::unavailable("tcp connect error: Connection refused")) }).await;
        assert!(matches!(outcome, Outcome::NotSent(_)));
    }

    /// A call of `attempts` attempts whose first times out and every later one fails with `then`:
    /// its outcome, and how many attempts were made.
    async fn timed_out_then(attempts: u32, then: fn() -> Status) -> (Outcome<()>, u32) {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let outcome = policy(attempts)
            .call((), |_| {
                let first = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0;
                async move { Err(if first { Status::deadline_exceeded("slow") } else { then() }) }
            })
            .await;
        (outcome, calls.load(std::sync::atomic::Ordering::Relaxed))
    }

    #[tokio::test]
    async fn a_timeout_followed_by_a_refused_connection_stays_unknown() {
        let (outcome, _) = timed_out_then(2, || Status::unavailable("tcp connect error: Connection refused")).await;
        assert!(matches!(outcome, Outcome::Unknown(_)), "{outcome:?}");
    }

    #[tokio::test]
    async fn a_timeout_followed_by_a_refusal_stays_unknown() {
        let (outcome, calls) = timed_out_then(3, || Status::failed_precondition("insufficient_inventory")).await;
        assert!(
            matches!(&outcome, Outcome::Unknown(status) if status.code() == Code::FailedPrecondition),
            "{outcome:?}"
        );
        assert_eq!(calls, 2, "a refusal ends the retries");
    }

    #[tokio::test]
    async fn a_real_refused_connection_is_recognised() {
        use fulfillment_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}")).expect("uri").connect_lazy();
        let client = InventoryServiceClient::new(channel);
        let outcome = policy(1)
            .call(fulfillment_proto::inventory::v1::GetHoldRequest { hold_id: "x".into() }, |request| {
                let mut client = client.clone();
                async move { client.get_hold(request).await }
            })
            .await;
        assert!(matches!(outcome, Outcome::NotSent(_)), "{outcome:?}");
    }
}
