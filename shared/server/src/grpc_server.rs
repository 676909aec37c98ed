use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use std::sync::Arc;

use crate::admission::AdmissionLayer;
use crate::gate::{Gate, GateLayer};
use crate::metrics::{Metrics, RpcMetricsLayer};
use crate::tls::ServerTls;
use crate::{ServeError, ServiceSettings};

/// Settings shared by every service's gRPC server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Upper bound on any one call; a caller's shorter `grpc-timeout` wins.
    pub request_timeout: Duration,
    /// How long health says NOT_SERVING before the server stops accepting calls, so that load
    /// balancers take the instance out first.
    pub drain_delay: Duration,
    /// Whether gRPC server reflection is offered.
    pub reflection: bool,
    /// The most calls served at once; more are refused with RESOURCE_EXHAUSTED.
    pub max_concurrent_calls: usize,
    /// The largest request message a service decodes; a larger one is refused unread.
    pub max_message_bytes: usize,
    /// TLS, and mutual TLS when a client CA is given; plaintext when `None`.
    pub tls: Option<ServerTls>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
            reflection: true,
            max_concurrent_calls: 1024,
            max_message_bytes: 4 * 1024 * 1024,
            tls: None,
        }
    }
}

/// Work a service runs beside its server (sweeps, recovery), handed the signal that turns true
/// when the server starts to drain.
type BackgroundWork = Box<dyn FnOnce(watch::Receiver<bool>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// How long the metrics endpoint may take to finish its scrapes at shutdown.
const METRICS_SHUTDOWN: Duration = Duration::from_secs(5);

/// Where a service listens: gRPC, and the Prometheus endpoint unless it is turned off.
#[derive(Debug)]
pub struct Listeners {
    /// The gRPC server's.
    pub grpc: TcpListener,
    /// The metrics endpoint's.
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    /// Binds the addresses `settings` name.
    pub async fn bind(settings: &ServiceSettings) -> Result<Self, ServeError> {
        let bind = |address: SocketAddr| async move {
            TcpListener::bind(address).await.map_err(|source| ServeError::Listen { address, source })
        };
        let grpc = bind(settings.listen_addr).await?;
        let metrics = match settings.metrics_addr {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        Ok(Self { grpc, metrics })
    }

    /// Logs that `service` serves, with its addresses; tests that start a binary wait for this line.
    pub fn log_serving(&self, service: &str) {
        let address = |listener: &TcpListener| listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let metrics = self.metrics.as_ref().map(address).unwrap_or_else(|| "off".to_owned());
        tracing::info!(address = %address(&self.grpc), metrics_address = %metrics, "{service} serving");
    }
}

/// A service's gRPC server: its routes plus `grpc.health.v1` and server reflection, its calls
/// measured, and its metrics endpoint beside it.
pub struct GrpcServer {
    options: ServerOptions,
    routes: Routes,
    service_names: Vec<&'static str>,
    metrics: Metrics,
    gate: Option<GateLayer>,
    background: Vec<BackgroundWork>,
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("options", &self.options)
            .field("service_names", &self.service_names)
            .field("background", &self.background.len())
            .finish_non_exhaustive()
    }
}

impl GrpcServer {
    /// A server for `routes`, whose services are named in `service_names` for health reporting
    /// and metrics.
    pub fn new(options: ServerOptions, routes: Routes, service_names: Vec<&'static str>, metrics: Metrics) -> Self {
        Self { options, routes, service_names, metrics, gate: None, background: Vec::new() }
    }

    /// Runs `work` beside the server from the start: it is told to stop (its signal turns true) as
    /// soon as shutdown begins, and `serve` returns only once it has.
    pub fn with_background<Fut>(mut self, work: impl FnOnce(watch::Receiver<bool>) -> Fut + Send + 'static) -> Self
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.background.push(Box::new(move |stop| Box::pin(work(stop))));
        self
    }

    /// Checks every call but health and reflection with `gate` before it is served.
    pub fn with_gate(mut self, gate: Arc<dyn Gate>) -> Self {
        self.gate = Some(GateLayer::new(gate));
        self
    }

    /// Serves on `listeners` until `shutdown` resolves; then reports NOT_SERVING, waits the drain
    /// delay, stops accepting, and lets calls in flight finish. The metrics endpoint answers until
    /// the last call is done.
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let mut builder = Server::builder();
        if let Some(tls) = &self.options.tls {
            let config = tls.config()?;
            builder = builder.tls_config(config)?;
        }
        let (stop_metrics, metrics_stopped) = oneshot::channel::<()>();
        let (ready, readiness) = watch::channel(false);
        let metrics_endpoint = listeners.metrics.map(|listener| {
            tokio::spawn(self.metrics.clone().serve(listener, readiness, async move {
                let _ = metrics_stopped.await;
            }))
        });
        let mut measured = self.service_names.clone();
        measured.extend([
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]);
        let rpc_metrics = RpcMetricsLayer::new(&self.metrics, &measured, &DESCRIPTOR_SETS);

        let (health, health_service) = tonic_health::server::health_reporter();
        let mut routes = self.routes.add_service(health_service);
        if self.options.reflection {
            routes = add_reflection(routes);
        }
        set_status(&health, &self.service_names, ServingStatus::Serving).await;
        let _ = ready.send(true);

        let (stop_background, background_stop) = watch::channel(false);
        let background: Vec<_> =
            self.background.into_iter().map(|work| tokio::spawn(work(background_stop.clone()))).collect();
        let drain_delay = self.options.drain_delay;
        let service_names = self.service_names.clone();
        let stopping = async move {
            shutdown.await;
            let _ = stop_background.send(true);
            set_status(&health, &service_names, ServingStatus::NotServing).await;
            let _ = ready.send(false);
            tokio::time::sleep(drain_delay).await;
        };
        let incoming = TcpIncoming::from(listeners.grpc).with_nodelay(Some(true));
        let served = builder
            .timeout(self.options.request_timeout)
            .trace_fn(crate::telemetry::server_span)
            .layer(rpc_metrics)
            .layer(AdmissionLayer::new(self.options.max_concurrent_calls, self.options.request_timeout))
            .layer(tower::util::option_layer(self.gate))
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, stopping)
            .await;
        for work in background {
            let _ = work.await;
        }
        let _ = stop_metrics.send(());
        if let Some(mut endpoint) = metrics_endpoint {
            // A scraper that never finishes its request must not hold the shutdown up.
            if tokio::time::timeout(METRICS_SHUTDOWN, &mut endpoint).await.is_err() {
                endpoint.abort();
            }
        }
        Ok(served?)
    }
}

async fn set_status(health: &HealthReporter, service_names: &[&str], status: ServingStatus) {
    health.set_service_status("", status).await;
    for name in service_names {
        health.set_service_status(*name, status).await;
    }
}

/// The descriptors of every service a server may offer: the suite's, health and reflection.
const DESCRIPTOR_SETS: [&[u8]; 4] = [
    fulfillment_proto::FILE_DESCRIPTOR_SET,
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
];

fn add_reflection(routes: Routes) -> Routes {
    let v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(fulfillment_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1();
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(fulfillment_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha();
    match (v1, v1alpha) {
        (Ok(v1), Ok(v1alpha)) => routes.add_service(v1).add_service(v1alpha),
        (Err(error), _) | (_, Err(error)) => {
            // The descriptors are compiled in, so this is a build defect; serve without reflection.
            tracing::error!(%error, "reflection disabled: descriptor set rejected");
            routes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;
    use crate::testing::http_get as get;

    #[tokio::test]
    async fn a_taken_port_names_its_address() {
        let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = taken.local_addr().expect("address").to_string();
        let env = Env::from_pairs([("INVENTORY_METRICS_ADDR", address.as_str())]);
        let settings =
            ServiceSettings::from_env(&env, "INVENTORY", "127.0.0.1:0", "127.0.0.1:0", "sqlite://x").expect("valid");
        let error = Listeners::bind(&settings).await.expect_err("the metrics port is taken");
        assert!(error.to_string().contains(&address), "{error}");
    }

    #[tokio::test]
    async fn the_http_probes_follow_the_grpc_health_through_a_drain() {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;

        let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let metrics = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (grpc_address, metrics_address) = (grpc.local_addr().expect("bound"), metrics.local_addr().expect("bound"));
        let options = ServerOptions { drain_delay: Duration::from_millis(500), ..ServerOptions::default() };
        let server = GrpcServer::new(options, Routes::default(), vec![], Metrics::new("test", None));
        let (shutdown_tx, shutdown) = oneshot::channel::<()>();
        let serving =
            tokio::spawn(server.serve(Listeners { grpc, metrics: Some(metrics) }, async move { drop(shutdown.await) }));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc_address}")).expect("a URL");
        let mut health = HealthClient::new(channel.connect().await.expect("connected"));
        let status = || HealthCheckRequest { service: String::new() };
        assert_eq!(health.check(status()).await.expect("health").into_inner().status(), ServingStatus::Serving);
        assert_eq!(get(metrics_address, "/readyz").await, ("HTTP/1.1 200 OK".to_owned(), "serving".to_owned()));
        assert_eq!(get(metrics_address, "/livez").await.0, "HTTP/1.1 200 OK");

        // Draining: both say not serving while the process still lives and answers.
        shutdown_tx.send(()).expect("the server listens for shutdown");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(health.check(status()).await.expect("health").into_inner().status(), ServingStatus::NotServing);
        let (line, body) = get(metrics_address, "/readyz").await;
        assert_eq!((line.as_str(), body.as_str()), ("HTTP/1.1 503 Service Unavailable", "not serving"));
        assert_eq!(get(metrics_address, "/livez").await.0, "HTTP/1.1 200 OK");
        serving.await.expect("no panic").expect("served");
    }

    #[tokio::test]
    async fn background_work_runs_until_shutdown_and_serve_waits_for_it() {
        use std::sync::atomic::{AtomicBool, Ordering};

        let listeners = Listeners { grpc: TcpListener::bind("127.0.0.1:0").await.expect("bind"), metrics: None };
        let (started_tx, started) = oneshot::channel();
        let finished = Arc::new(AtomicBool::new(false));
        let (shutdown_tx, shutdown) = oneshot::channel::<()>();
        let done = finished.clone();
        let server = GrpcServer::new(ServerOptions::default(), Routes::default(), vec![], Metrics::new("test", None))
            .with_background(move |mut stop| async move {
                let _ = started_tx.send(*stop.borrow());
                let _ = stop.wait_for(|stopped| *stopped).await;
                // Slower than the server's own shutdown: `serve` must still wait.
                tokio::time::sleep(Duration::from_millis(100)).await;
                done.store(true, Ordering::SeqCst);
            });
        let serving = tokio::spawn(server.serve(listeners, async move { drop(shutdown.await) }));
        assert_eq!(started.await, Ok(false), "the work starts with the server, not yet told to stop");
        assert!(!finished.load(Ordering::SeqCst));
        shutdown_tx.send(()).expect("the server listens for shutdown");
        serving.await.expect("no panic").expect("served");
        assert!(finished.load(Ordering::SeqCst), "serve returned before its background work ended");
    }
}
