//! Metrics. Each service owns one [`Metrics`]: its instruments are read on a Prometheus text
//! endpoint (`GET /metrics`) and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, pushed over OTLP too.
//! A meter provider per service rather than the global one keeps apart the services that share a
//! process (the launcher's three, a test's several).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use fulfillment_storage::Database;
use http_body::{Body, Frame, SizeHint};
use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider as _, UpDownCounter};
use opentelemetry::{KeyValue, StringValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::Code;
use tower::{Layer, Service};

/// How often metrics are pushed to an OTLP collector.
const OTLP_INTERVAL: Duration = Duration::from_secs(15);

/// Latency buckets in seconds, from a cached read to a call that times out.
const LATENCY_BUCKETS: [f64; 15] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// One service's meter, its Prometheus registry and, if configured, its OTLP push.
#[derive(Clone, Debug)]
pub struct Metrics {
    provider: SdkMeterProvider,
    registry: prometheus::Registry,
    meter: Meter,
}

impl Metrics {
    /// The metrics of `service`, pushed to `otlp_endpoint` as well when one is given.
    pub fn new(service: &'static str, otlp_endpoint: Option<&str>) -> Self {
        let registry = prometheus::Registry::new();
        let mut provider =
            SdkMeterProvider::builder().with_resource(Resource::builder().with_service_name(service).build());
        match opentelemetry_prometheus::exporter().with_registry(registry.clone()).scope_info_enabled(false).build() {
            Ok(exporter) => provider = provider.with_reader(exporter),
            Err(error) => tracing::error!(%error, "the metrics endpoint stays empty"),
        }
        if let Some(endpoint) = otlp_endpoint {
            match opentelemetry_otlp::MetricExporter::builder().with_tonic().with_endpoint(endpoint).build() {
                Ok(exporter) => {
                    provider =
                        provider.with_reader(PeriodicReader::builder(exporter).with_interval(OTLP_INTERVAL).build())
                }
                Err(error) => tracing::error!(%error, "metrics are not pushed over OTLP"),
            }
        }
        let provider = provider.build();
        let meter = provider.meter(service);
        Self { provider, registry, meter }
    }

    /// The meter a service creates its own instruments from.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Every instrument in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut text) {
            tracing::error!(%error, "cannot encode the metrics");
        }
        text
    }

    /// Serves `GET /metrics` on `listener` until `stop` resolves, and beside it the plaintext
    /// probes a kubelet can use when the gRPC port speaks TLS (its gRPC probe cannot): `/livez`
    /// answers 200 while `probes.live` says the process is whole, `/readyz` only while
    /// `probes.ready` says the server takes calls.
    pub async fn serve(self, listener: TcpListener, probes: Probes, stop: impl Future<Output = ()> + Send + 'static) {
        let Probes { ready, live } = probes;
        let app = axum::Router::new()
            .route(
                "/metrics",
                axum::routing::get(move || {
                    let metrics = self.clone();
                    async move { ([(http::header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], metrics.render()) }
                }),
            )
            .route("/livez", probe(live, "live", "background work stopped"))
            .route("/readyz", probe(ready, "serving", "not serving"));
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
            tracing::error!(%error, "the metrics endpoint failed");
        }
    }

    /// Pushes what is not yet exported and stops the exporters.
    pub async fn shutdown(self) {
        // The final push blocks until it is done; keep it off the async workers.
        let _ = tokio::task::spawn_blocking(move || self.provider.shutdown()).await;
    }

    /// A gauge whose value the service sets now and then (a count it takes in the background),
    /// read at each scrape or push.
    ///
    /// The live store's count and the test store's are two series, labelled `live_mode`; the level
    /// answered sets the live one, [`Level::in_mode`] the other.
    pub fn level(&self, name: &'static str, description: &'static str) -> Level {
        let level = Level { values: Arc::new([AtomicU64::new(0), AtomicU64::new(0)]), live_mode: true };
        let observed = level.values.clone();
        // The meter provider keeps the callback alive.
        self.meter
            .u64_observable_gauge(name)
            .with_description(description)
            .with_callback(move |observer| {
                for (index, live_mode) in [(0, true), (1, false)] {
                    observer.observe(observed[index].load(Ordering::Relaxed), &[KeyValue::new("live_mode", live_mode)]);
                }
            })
            .build();
        level
    }

    /// Counts, as `db_transaction_retries_total` by `live_mode`, the writes to the live and the
    /// test store that lost a race (serialization failure, deadlock, busy) and were tried again.
    pub fn count_retries(&self, live: &Database, test: &Database) {
        let stores = [(live.clone(), true), (test.clone(), false)];
        // The meter provider keeps the callback alive.
        self.meter
            .u64_observable_counter("db.transaction.retries")
            .with_description("Writes tried again after losing a race to another transaction")
            .with_callback(move |observer| {
                for (db, live_mode) in &stores {
                    observer.observe(db.retries(), &[KeyValue::new("live_mode", *live_mode)]);
                }
            })
            .build();
    }

    /// A histogram of durations in seconds with buckets from half a millisecond to 30 s.
    pub fn latency_histogram(&self, name: &'static str, description: &'static str) -> Histogram<f64> {
        self.meter
            .f64_histogram(name)
            .with_unit("s")
            .with_description(description)
            .with_boundaries(LATENCY_BUCKETS.to_vec())
            .build()
    }
}

/// A probe that answers 200 and `up` while `state` is true, else 503 and `down`.
fn probe(state: watch::Receiver<bool>, up: &'static str, down: &'static str) -> axum::routing::MethodRouter {
    axum::routing::get(move || {
        let healthy = *state.borrow();
        async move { if healthy { (http::StatusCode::OK, up) } else { (http::StatusCode::SERVICE_UNAVAILABLE, down) } }
    })
}

/// What the HTTP probes report: whether the server takes calls, and whether the process is whole
/// (its background work still runs).
#[derive(Clone, Debug)]
pub struct Probes {
    /// Read by `/readyz`.
    pub ready: watch::Receiver<bool>,
    /// Read by `/livez`.
    pub live: watch::Receiver<bool>,
}

/// A gauge set by the service; see [`Metrics::level`].
#[derive(Clone, Debug)]
pub struct Level {
    values: Arc<[AtomicU64; 2]>,
    live_mode: bool,
}

impl Level {
    /// Sets the value the next scrape or push reads.
    pub fn set(&self, value: u64) {
        self.values[usize::from(!self.live_mode)].store(value, Ordering::Relaxed);
    }

    /// The same gauge, setting the series of the live store or of the test store.
    pub fn in_mode(&self, live_mode: bool) -> Level {
        Level { values: self.values.clone(), live_mode }
    }
}

/// The instruments every gRPC server records, following the OpenTelemetry RPC conventions.
#[derive(Debug)]
struct RpcInstruments {
    requests: Counter<u64>,
    duration: Histogram<f64>,
    active: UpDownCounter<i64>,
    /// The methods this server serves, by path: only their names become labels, so a client
    /// cannot grow the label set by calling made-up paths, with a key or without.
    methods: HashMap<String, (Arc<str>, Arc<str>)>,
}

/// A tower layer that counts the calls to a gRPC server by method and status code, times them,
/// and counts those in flight.
#[derive(Clone, Debug)]
pub struct RpcMetricsLayer {
    instruments: Arc<RpcInstruments>,
}

impl RpcMetricsLayer {
    /// Records into `metrics` the calls to the methods of `services` (fully qualified gRPC service
    /// names) found in the encoded `descriptor_sets`; every other path is counted as `unknown`.
    pub fn new(metrics: &Metrics, services: &[&str], descriptor_sets: &[&[u8]]) -> Self {
        let mut methods = HashMap::new();
        for set in descriptor_sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*set) else {
                tracing::error!("a descriptor set does not decode; its methods are counted as unknown");
                continue;
            };
            for file in &set.file {
                for service in &file.service {
                    let name = match file.package() {
                        "" => service.name().to_owned(),
                        package => format!("{package}.{}", service.name()),
                    };
                    if !services.contains(&name.as_str()) {
                        continue;
                    }
                    let service_label: Arc<str> = name.as_str().into();
                    for method in &service.method {
                        let path = format!("/{name}/{}", method.name());
                        methods.insert(path, (service_label.clone(), method.name().into()));
                    }
                }
            }
        }
        let meter = metrics.meter();
        let instruments = RpcInstruments {
            requests: meter
                .u64_counter("rpc.server.requests")
                .with_description("Calls answered, by method and gRPC status code")
                .build(),
            duration: metrics
                .latency_histogram("rpc.server.call.duration", "Time from a call's arrival to its last byte"),
            active: meter.i64_up_down_counter("rpc.server.active_requests").with_description("Calls in flight").build(),
            methods,
        };
        Self { instruments: Arc::new(instruments) }
    }
}

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetricsService { inner, instruments: self.instruments.clone() }
    }
}

/// See [`RpcMetricsLayer`].
#[derive(Clone, Debug)]
pub struct RpcMetricsService<S> {
    inner: S,
    instruments: Arc<RpcInstruments>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RpcMetricsService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        // Started before the handler runs, so a call the client abandons is still counted.
        let mut call = Call::start(self.instruments.clone(), request.uri().path());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            // An error is answered with its status in the headers and no body.
            if let Some(code) = response.headers().get("grpc-status") {
                call.code = Some(Code::from_bytes(code.as_bytes()));
            }
            Ok(response.map(|body| MeteredBody { inner: body, call: Some(call) }))
        })
    }
}

/// One call being measured; recorded when dropped, which is when its response has been sent or
/// the call was abandoned.
#[derive(Debug)]
struct Call {
    instruments: Arc<RpcInstruments>,
    service: Arc<str>,
    method: Arc<str>,
    started: Instant,
    code: Option<Code>,
}

impl Call {
    fn start(instruments: Arc<RpcInstruments>, path: &str) -> Self {
        let (service, method) = match instruments.methods.get(path) {
            Some((service, method)) => (service.clone(), method.clone()),
            None => (Arc::from(UNKNOWN), Arc::from(UNKNOWN)),
        };
        instruments.active.add(1, &[KeyValue::new("rpc.service", StringValue::from(service.clone()))]);
        Self { instruments, service, method, started: Instant::now(), code: None }
    }
}

/// The label of every path a server does not serve.
const UNKNOWN: &str = "unknown";

impl Drop for Call {
    fn drop(&mut self) {
        let service = KeyValue::new("rpc.service", StringValue::from(self.service.clone()));
        self.instruments.active.add(-1, std::slice::from_ref(&service));
        // Dropped unanswered: the client hung up, or the deadline passed and tonic answered
        // CANCELLED for the handler.
        let code = self.code.unwrap_or(Code::Cancelled);
        let method = KeyValue::new("rpc.method", StringValue::from(self.method.clone()));
        let attributes = [service, method, KeyValue::new("rpc.grpc.status_code", code as i64)];
        self.instruments.requests.add(1, &attributes);
        self.instruments.duration.record(self.started.elapsed().as_secs_f64(), &attributes);
    }
}

pin_project_lite::pin_project! {
    /// A response body that finishes its call's measurement when the status trailers go out.
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }
}

impl<B: Body> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(trailers), Some(call)) = (frame.trailers_ref(), this.call.as_mut()) {
                    let code = trailers.get("grpc-status").map(|code| Code::from_bytes(code.as_bytes()));
                    call.code = code.or(call.code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = this.call.as_mut() {
                    call.code = Some(Code::Internal);
                }
            }
            Poll::Ready(None) => {
                if let Some(mut call) = this.call.take() {
                    call.code = call.code.or(Some(Code::Unknown));
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
