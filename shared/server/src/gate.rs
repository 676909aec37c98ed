//! The gate every call passes before its handler: it decides who is calling and whether they may,
//! and attaches what it learned to the call. The suite's gate checks API keys (the access crate);
//! this module only runs it. Health checks and reflection pass without a key, as load balancers and
//! tools call them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tower::{Layer, Service};

/// What a gate answers for one call: extensions to attach to it, or the refusal to send instead.
pub type GateFuture<'a> = Pin<Box<dyn Future<Output = Result<http::Extensions, tonic::Status>> + Send + 'a>>;

/// Decides whether a call may proceed, from its path (`/package.Service/Method`) and headers.
pub trait Gate: Send + Sync + 'static {
    /// Checks one call.
    fn check<'a>(&'a self, path: &'a str, headers: &'a http::HeaderMap) -> GateFuture<'a>;
}

/// Whether `path` is a call that never needs a key.
fn is_open(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

/// Runs a [`Gate`] before the inner service.
#[derive(Clone)]
pub struct GateLayer {
    gate: Arc<dyn Gate>,
}

impl GateLayer {
    /// Checks every call with `gate`.
    pub fn new(gate: Arc<dyn Gate>) -> Self {
        Self { gate }
    }
}

impl std::fmt::Debug for GateLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GateLayer")
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = Gated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Gated { inner, gate: self.gate.clone() }
    }
}

/// See [`GateLayer`].
#[derive(Clone)]
pub struct Gated<S> {
    inner: S,
    gate: Arc<dyn Gate>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Gated<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The ready service answers this call; a fresh clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if is_open(request.uri().path()) {
            return Box::pin(async move { Ok(inner.call(request).await?.map(Body::new)) });
        }
        let gate = self.gate.clone();
        Box::pin(async move {
            let checked = gate.check(request.uri().path(), request.headers()).await;
            match checked {
                Ok(extensions) => {
                    request.extensions_mut().extend(extensions);
                    Ok(inner.call(request).await?.map(Body::new))
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}
