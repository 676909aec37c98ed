//! The gate every call passes before its handler: it decides who is calling and whether they may,
//! and attaches what it learned to the call. The suite's gate checks API keys (the access crate);
//! this module only runs it. Health checks and reflection pass without a key, as load balancers and
//! tools call them.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tower::{Layer, Service};

/// What a gate answers for one call: what to attach to it, or the refusal to send instead.
pub type GateFuture<'a> = Pin<Box<dyn Future<Output = Result<Admitted, tonic::Status>> + Send + 'a>>;

/// A call the gate let through.
#[derive(Default)]
pub struct Admitted {
    /// Attached to the call, for its handler.
    pub extensions: http::Extensions,
    /// Kept until the call is answered, then dropped: a slot the call holds while it runs.
    pub guard: Option<Box<dyn Send>>,
}

/// What a gate knows of one call.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// `/package.Service/Method`.
    pub path: &'a str,
    /// Its headers (metadata).
    pub headers: &'a http::HeaderMap,
    /// The address it came from, when the transport knows it.
    pub peer: Option<IpAddr>,
}

/// Decides whether a call may proceed, from its path, headers and peer.
pub trait Gate: Send + Sync + 'static {
    /// Checks one call.
    fn check<'a>(&'a self, call: Call<'a>) -> GateFuture<'a>;
}

/// The address a call came from, over plain TCP or TLS.
fn peer(extensions: &http::Extensions) -> Option<IpAddr> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let tcp = extensions
        .get::<TcpConnectInfo>()
        .or_else(|| extensions.get::<TlsConnectInfo<TcpConnectInfo>>().map(TlsConnectInfo::get_ref))?;
    tcp.remote_addr().map(|address| address.ip())
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
            let peer = peer(request.extensions());
            let checked = gate.check(Call { path: request.uri().path(), headers: request.headers(), peer }).await;
            match checked {
                Ok(admitted) => {
                    request.extensions_mut().extend(admitted.extensions);
                    let answered = inner.call(request).await?.map(Body::new);
                    drop(admitted.guard);
                    Ok(answered)
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}
