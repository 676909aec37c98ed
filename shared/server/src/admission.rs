//! Admission: at most `GRPC_MAX_CONCURRENT_CALLS` calls run at once, and the request bytes of all
//! the calls in flight stay within `GRPC_MAX_INFLIGHT_BYTES`. A call past either is refused at once
//! with RESOURCE_EXHAUSTED and a hint of when to retry, rather than queued without bound, so
//! overload shows as answers, not as ever longer waits, and memory stays within what a deployment
//! gives a pod (the README's limits section has the arithmetic). Health checks are always admitted:
//! a busy server is not a dead one. An admitted call's handler runs under its deadline (the
//! client's `grpc-timeout` or the server's bound, whichever is sooner), which bounds the calls it
//! makes.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic_types::{ErrorDetails, StatusExt};
use tower::{Layer, Service};

/// How long a refused client is told to wait before it tries again.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct AdmissionLayer {
    permits: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    request_timeout: Duration,
}

impl AdmissionLayer {
    /// Admits at most `max_calls` calls at once, whose requests hold at most `max_bytes` in all,
    /// each bound by `request_timeout` at the most.
    pub fn new(max_calls: usize, max_bytes: usize, request_timeout: Duration) -> Self {
        let max_bytes = max_bytes.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(max_calls.max(1))),
            bytes: Arc::new(Semaphore::new(max_bytes)),
            request_timeout,
        }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Admission {
            inner,
            permits: self.permits.clone(),
            bytes: self.bytes.clone(),
            request_timeout: self.request_timeout,
        }
    }
}

/// See [`AdmissionLayer`].
#[derive(Clone, Debug)]
pub struct Admission<S> {
    inner: S,
    permits: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    request_timeout: Duration,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Admission<S>
where
    S: Service<http::Request<Body>, Response = http::Response<ResBody>>,
    ReqBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
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
        let health = request.uri().path().starts_with("/grpc.health.v1.Health/");
        let permit = if health {
            None
        } else {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => return Box::pin(std::future::ready(Ok(overloaded()))),
            }
        };
        // The bytes a call reads stay counted until it is answered: its decoded message lives as
        // long as its handler.
        let held = Arc::new(Mutex::new(None));
        let budget = (!health).then(|| self.bytes.clone());
        let request = request.map(|inner| Body::new(Budgeted { inner, budget, held: held.clone() }));
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| crate::calls::grpc_timeout(value.to_str().ok()?))
            .map_or(self.request_timeout, |timeout| timeout.min(self.request_timeout));
        let response = crate::calls::with_deadline(Instant::now() + timeout, self.inner.call(request));
        Box::pin(async move {
            let response = response.await?;
            drop(permit);
            drop(held);
            Ok(response.map(Body::new))
        })
    }
}

pin_project_lite::pin_project! {
    /// A request body whose bytes are taken from the server's budget as they arrive.
    struct Budgeted<B> {
        #[pin]
        inner: B,
        budget: Option<Arc<Semaphore>>,
        held: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
    }
}

impl<B> http_body::Body for Budgeted<B>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(tonic::Status::from_error(error.into())))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let (Some(budget), Some(data)) = (this.budget.as_ref(), frame.data_ref()) {
            let taken = u32::try_from(data.len()).ok().and_then(|n| budget.clone().try_acquire_many_owned(n).ok());
            let Some(taken) = taken else { return Poll::Ready(Some(Err(over_budget()))) };
            let mut held = this.held.lock().unwrap_or_else(PoisonError::into_inner);
            match held.as_mut() {
                Some(permits) => permits.merge(taken),
                None => *held = Some(taken),
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn over_budget() -> tonic::Status {
    tonic::Status::with_error_details(
        tonic::Code::ResourceExhausted,
        "The server is at its limit of request bytes in flight; retry shortly.",
        ErrorDetails::with_retry_info(Some(RETRY_AFTER)),
    )
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
