//! Admission: at most `GRPC_MAX_CONCURRENT_CALLS` calls run at once. One more is refused at once
//! with RESOURCE_EXHAUSTED and a hint of when to retry, rather than queued without bound, so
//! overload shows as answers, not as ever longer waits. Health checks are always admitted: a busy
//! server is not a dead one. An admitted call's handler runs under its deadline (the client's
//! `grpc-timeout` or the server's bound, whichever is sooner), which bounds the calls it makes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tonic::body::Body;
use tonic_types::{ErrorDetails, StatusExt};
use tower::{Layer, Service};

/// How long a refused client is told to wait before it tries again.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct AdmissionLayer {
    permits: Arc<Semaphore>,
    request_timeout: Duration,
}

impl AdmissionLayer {
    /// Admits at most `max_calls` calls at once, each bound by `request_timeout` at the most.
    pub fn new(max_calls: usize, request_timeout: Duration) -> Self {
        Self { permits: Arc::new(Semaphore::new(max_calls.max(1))), request_timeout }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Admission { inner, permits: self.permits.clone(), request_timeout: self.request_timeout }
    }
}

/// See [`AdmissionLayer`].
#[derive(Clone, Debug)]
pub struct Admission<S> {
    inner: S,
    permits: Arc<Semaphore>,
    request_timeout: Duration,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Admission<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let permit = if request.uri().path().starts_with("/grpc.health.v1.Health/") {
            None
        } else {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => return Box::pin(std::future::ready(Ok(overloaded()))),
            }
        };
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| crate::calls::grpc_timeout(value.to_str().ok()?))
            .map_or(self.request_timeout, |timeout| timeout.min(self.request_timeout));
        let response = crate::calls::with_deadline(Instant::now() + timeout, self.inner.call(request));
        Box::pin(async move {
            let response = response.await?;
            drop(permit);
            Ok(response.map(Body::new))
        })
    }
}

fn overloaded() -> http::Response<Body> {
    let details = ErrorDetails::with_retry_info(Some(RETRY_AFTER));
    tonic::Status::with_error_details(
        tonic::Code::ResourceExhausted,
        "The server is at its limit of concurrent calls; retry shortly.",
        details,
    )
    .into_http()
}
