//! Logs and traces. Every binary calls [`init`] once: it installs the log subscriber, the W3C
//! trace-context propagator, and a tracer whose spans go to an OTLP collector when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and nowhere otherwise).

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, global};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines, for people.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("expected text or json, got '{other}'")),
        }
    }
}

/// The installed tracer; [`Telemetry::shutdown`] flushes the spans not yet exported.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what is buffered and stops the exporter.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            // The flush blocks until the exporter is done; keep it off the async workers.
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

/// Installs logging (filtered by `RUST_LOG`, default `info`) and tracing for `service`; spans are
/// exported over OTLP/gRPC to `otlp_endpoint` when given. Must run inside a tokio runtime. A second
/// call, as the launcher's three services would make, keeps the first installation.
pub fn init(service: &'static str, format: LogFormat, otlp_endpoint: Option<&str>) -> Telemetry {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let mut provider =
        SdkTracerProvider::builder().with_resource(Resource::builder().with_service_name(service).build());
    if let Some(endpoint) = otlp_endpoint {
        match opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint).build() {
            Ok(exporter) => provider = provider.with_batch_exporter(exporter),
            Err(error) => eprintln!("traces are not exported: {error}"),
        }
    }
    let provider = provider.build();
    let tracing_layer = tracing_opentelemetry::layer().with_tracer(provider.tracer(service));
    let log_layer: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => fmt::layer().with_target(false).boxed(),
        LogFormat::Json => fmt::layer().json().flatten_event(true).with_current_span(true).boxed(),
    };
    // The exporter's own transport must not trace itself.
    let mut filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive("h2=off".parse().expect("a valid directive"))
        .add_directive("hyper=off".parse().expect("a valid directive"))
        .add_directive("tower=off".parse().expect("a valid directive"));
    if otlp_endpoint.is_none() && !std::env::var("RUST_LOG").is_ok_and(|filter| filter.contains("sea_orm")) {
        // A span per statement shows only in exported traces; unexported, it cost a sixth of a
        // reservation's CPU in the services (BENCHMARKS.md). Its warnings still log.
        filter = filter.add_directive("sea_orm=warn".parse().expect("a valid directive"));
    }
    let installed = tracing_subscriber::registry().with(log_layer).with(tracing_layer).with(filter).try_init();
    if installed.is_ok() {
        global::set_tracer_provider(provider.clone());
        Telemetry { provider: Some(provider) }
    } else {
        Telemetry { provider: None }
    }
}

/// The span of one incoming call: named after the RPC, continuing the caller's trace when the
/// request carries a W3C `traceparent`, and recording the trace id so that log lines carry it.
pub fn server_span(request: &http::Request<()>) -> tracing::Span {
    let parent = global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(request.headers())));
    let span = tracing::info_span!(
        "grpc",
        otel.name = %request.uri().path(),
        otel.kind = "server",
        rpc.system = "grpc",
        trace_id = tracing::field::Empty,
    );
    // Fails only when no tracer is installed, and then there is no trace to continue.
    let _ = span.set_parent(parent);
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", span_context.trace_id().to_string());
    }
    span
}

/// Adds the current span's trace context to an outgoing request, so the callee continues the trace.
pub fn inject_context(metadata: &mut MetadataMap) {
    let context: Context = tracing::Span::current().context();
    global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut MetadataInjector(metadata)));
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (MetadataKey::from_bytes(key.as_bytes()), MetadataValue::try_from(&value)) {
            self.0.insert(key, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|key| key.as_str()).collect()
    }
}
