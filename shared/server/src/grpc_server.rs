use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use opentelemetry::metrics::Counter;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use std::sync::Arc;

use crate::admission::AdmissionLayer;
use crate::gate::{Gate, GateLayer};
use crate::metrics::{Metrics, Probes, RpcMetricsLayer};
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
    /// The most request bytes all the calls in flight hold together; a call that would pass it is
    /// refused.
    pub max_inflight_bytes: usize,
    /// TLS, and mutual TLS when a client CA is given; plaintext when `None`.
    pub tls: Option<ServerTls>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
            reflection: true,
            max_concurrent_calls: 256,
            max_message_bytes: 1024 * 1024,
            max_inflight_bytes: 4 * 1024 * 1024,
            tls: None,
        }
    }
}

/// Work a service runs beside its server (sweeps, recovery), handed the signal that turns true
/// when the server starts to drain.
type BackgroundWork = Box<dyn FnOnce(watch::Receiver<bool>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// How long the metrics endpoint may take to finish its scrapes at shutdown.
const METRICS_SHUTDOWN: Duration = Duration::from_secs(5);

/// A port taken for the gRPC server but not yet listening: until the service has connected to its
/// database and migrated it, a client's connection is refused at once (and reads as "not sent"),
/// rather than accepted and left unanswered.
#[derive(Debug)]
pub struct Port(TcpSocket);

impl Port {
    /// Takes `address` (port 0 picks a free one).
    pub fn bind(address: SocketAddr) -> Result<Self, ServeError> {
        let taken = || {
            let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            // As a listener does: a restart need not wait for the old connections' TIME_WAIT.
            socket.set_reuseaddr(true)?;
            socket.bind(address)?;
            Ok(socket)
        };
        taken().map(Self).map_err(|source| ServeError::Listen { address, source })
    }

    /// The address taken.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }

    /// Starts accepting connections.
    fn listen(self) -> Result<TcpListener, ServeError> {
        let address = self.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        self.0.listen(LISTEN_BACKLOG).map_err(|source| ServeError::Listen { address, source })
    }
}

/// Connections the kernel queues before the server accepts them.
const LISTEN_BACKLOG: u32 = 1024;

/// Where a service listens: gRPC, and the Prometheus endpoint unless it is turned off.
#[derive(Debug)]
pub struct Listeners {
    /// The gRPC server's port, listening only once the server serves.
    pub grpc: Port,
    /// The metrics endpoint's; it answers from the start, its `/readyz` saying not ready.
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    /// Binds the addresses `settings` name.
    pub async fn bind(settings: &ServiceSettings) -> Result<Self, ServeError> {
        let grpc = Port::bind(settings.listen_addr)?;
        let metrics = match settings.metrics_addr {
            Some(address) => {
                Some(TcpListener::bind(address).await.map_err(|source| ServeError::Listen { address, source })?)
            }
            None => None,
        };
        Ok(Self { grpc, metrics })
    }

    /// Logs that `service` serves, with its addresses; tests that start a binary wait for this line.
    pub fn log_serving(&self, service: &str) {
        let grpc = self.grpc.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let metrics = self.metrics.as_ref().and_then(|l| l.local_addr().ok());
        let metrics = metrics.map_or_else(|| "off".to_owned(), |a| a.to_string());
        tracing::info!(address = %grpc, metrics_address = %metrics, "{service} serving");
    }
}

/// A service's gRPC server: its routes plus `grpc.health.v1` and server reflection, its calls
/// measured, and its metrics endpoint beside it.
pub struct GrpcServer {
    name: &'static str,
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
    /// The server of the service `name` for `routes`, whose gRPC services are named in
    /// `service_names` for health reporting and metrics.
    pub fn new(
        name: &'static str,
        options: ServerOptions,
        routes: Routes,
        service_names: Vec<&'static str>,
        metrics: Metrics,
    ) -> Self {
        Self { name, options, routes, service_names, metrics, gate: None, background: Vec::new() }
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
        let grpc = listeners.grpc.listen()?;
        let address = grpc.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let metrics_address = listeners.metrics.as_ref().and_then(|l| l.local_addr().ok());
        let metrics_address = metrics_address.map_or_else(|| "off".to_owned(), |a| a.to_string());
        // Tests that start a binary wait for this line.
        tracing::info!(%address, %metrics_address, "{} serving", self.name);
        let mut builder = Server::builder();
        if let Some(tls) = &self.options.tls {
            let config = tls.config()?;
            builder = builder.tls_config(config)?;
        }
        let (stop_metrics, metrics_stopped) = oneshot::channel::<()>();
        let (ready, readiness) = watch::channel(false);
        let (live, liveness) = watch::channel(true);
        let probes = Probes { ready: readiness, live: liveness };
        let metrics_endpoint = listeners.metrics.map(|listener| {
            tokio::spawn(self.metrics.clone().serve(listener, probes, async move {
                let _ = metrics_stopped.await;
            }))
        });
        let ready = Arc::new(ready);
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
        let mut background = JoinSet::new();
        for work in self.background {
            background.spawn(work(background_stop.clone()));
        }
        let unwell =
            Unwell { health: health.clone(), service_names: self.service_names.clone(), ready: ready.clone(), live };
        let stopped = self
            .metrics
            .meter()
            .u64_counter("server.background.stopped")
            .with_description(
                "Background tasks (sweeps, recovery) that ended before shutdown; the server then reports NOT_SERVING",
            )
            .build();
        let background = tokio::spawn(watch_background(background, background_stop, unwell, stopped));
        let drain_delay = self.options.drain_delay;
        let service_names = self.service_names.clone();
        let stopping = async move {
            shutdown.await;
            let _ = stop_background.send(true);
            set_status(&health, &service_names, ServingStatus::NotServing).await;
            ready.send_replace(false);
            tokio::time::sleep(drain_delay).await;
        };
        let incoming = TcpIncoming::from(grpc).with_nodelay(Some(true));
        let served = builder
            .timeout(self.options.request_timeout)
            .trace_fn(crate::telemetry::server_span)
            .layer(rpc_metrics)
            .layer(AdmissionLayer::new(
                self.options.max_concurrent_calls,
                self.options.max_inflight_bytes,
                self.options.request_timeout,
            ))
            .layer(tower::util::option_layer(self.gate))
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, stopping)
            .await;
        let _ = background.await;
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

/// What a server reports when its background work stops before shutdown.
struct Unwell {
    health: HealthReporter,
    service_names: Vec<&'static str>,
    ready: Arc<watch::Sender<bool>>,
    live: watch::Sender<bool>,
}

/// Waits for the background work to end. Work that ends (or panics) before `stop` says so leaves
/// the service unable to expire holds or finish sagas: it is logged and counted, and the server
/// reports NOT_SERVING on every probe, so that it leaves the load balancer and its liveness probe
/// restarts it.
async fn watch_background(mut work: JoinSet<()>, stop: watch::Receiver<bool>, unwell: Unwell, stopped: Counter<u64>) {
    stopped.add(0, &[]);
    while let Some(ended) = work.join_next().await {
        if *stop.borrow() {
            continue;
        }
        match ended {
            Err(error) if error.is_panic() => tracing::error!("background work panicked; reporting NOT_SERVING"),
            _ => tracing::error!("background work ended before shutdown; reporting NOT_SERVING"),
        }
        stopped.add(1, &[]);
        unwell.live.send_replace(false);
        unwell.ready.send_replace(false);
        set_status(&unwell.health, &unwell.service_names, ServingStatus::NotServing).await;
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

    /// A channel to the server at `address`, once it listens.
    async fn connect(address: SocketAddr) -> tonic::transport::Channel {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}")).expect("a URL");
        for _ in 0..500 {
            if let Ok(channel) = endpoint.connect().await {
                return channel;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the server never listened at {address}");
    }

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

        let grpc = Port::bind(([127, 0, 0, 1], 0).into()).expect("bind");
        let metrics = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (grpc_address, metrics_address) = (grpc.local_addr().expect("bound"), metrics.local_addr().expect("bound"));
        let options = ServerOptions { drain_delay: Duration::from_millis(500), ..ServerOptions::default() };
        let server = GrpcServer::new("test", options, Routes::default(), vec![], Metrics::new("test", None));
        let (shutdown_tx, shutdown) = oneshot::channel::<()>();
        let serving =
            tokio::spawn(server.serve(Listeners { grpc, metrics: Some(metrics) }, async move { drop(shutdown.await) }));
        let mut health = HealthClient::new(connect(grpc_address).await);
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
    async fn a_taken_port_refuses_connections_until_the_server_serves() {
        let port = Port::bind(([127, 0, 0, 1], 0).into()).expect("bind");
        let address = port.local_addr().expect("bound");
        let refused = tokio::net::TcpStream::connect(address).await.expect_err("not listening yet");
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

        let server =
            GrpcServer::new("test", ServerOptions::default(), Routes::default(), vec![], Metrics::new("test", None));
        let (shutdown_tx, shutdown) = oneshot::channel::<()>();
        let serving =
            tokio::spawn(server.serve(Listeners { grpc: port, metrics: None }, async move { drop(shutdown.await) }));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::net::TcpStream::connect(address).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "the server never listened");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let taken = Port::bind(address).expect_err("the port is the server's");
        assert!(taken.to_string().contains(&address.to_string()), "{taken}");
        shutdown_tx.send(()).expect("the server listens for shutdown");
        serving.await.expect("no panic").expect("served");
    }

    #[tokio::test]
    async fn background_work_that_stops_early_makes_the_server_not_serving() {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;

        for panics in [false, true] {
            let grpc = Port::bind(([127, 0, 0, 1], 0).into()).expect("bind");
            let metrics_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let (grpc_address, metrics_address) =
                (grpc.local_addr().expect("bound"), metrics_listener.local_addr().expect("bound"));
            let metrics = Metrics::new("test", None);
            let server = GrpcServer::new("test", ServerOptions::default(), Routes::default(), vec![], metrics.clone())
                .with_background(|mut stop| async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .with_background(move |_stop| async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    assert!(!panics, "a sweep that panics");
                });
            let (shutdown_tx, shutdown) = oneshot::channel::<()>();
            let listeners = Listeners { grpc, metrics: Some(metrics_listener) };
            let serving = tokio::spawn(server.serve(listeners, async move { drop(shutdown.await) }));
            let mut health = HealthClient::new(connect(grpc_address).await);
            let status = || HealthCheckRequest { service: String::new() };
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while health.check(status()).await.expect("health").into_inner().status() == ServingStatus::Serving {
                assert!(tokio::time::Instant::now() < deadline, "still serving without its background work");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(get(metrics_address, "/livez").await.0, "HTTP/1.1 503 Service Unavailable");
            assert_eq!(get(metrics_address, "/readyz").await.0, "HTTP/1.1 503 Service Unavailable");
            assert!(metrics.render().contains("server_background_stopped_total 1"), "{}", metrics.render());
            shutdown_tx.send(()).expect("the server listens for shutdown");
            serving.await.expect("no panic").expect("served");
        }
    }

    #[tokio::test]
    async fn background_work_runs_until_shutdown_and_serve_waits_for_it() {
        use std::sync::atomic::{AtomicBool, Ordering};

        let listeners = Listeners { grpc: Port::bind(([127, 0, 0, 1], 0).into()).expect("bind"), metrics: None };
        let (started_tx, started) = oneshot::channel();
        let finished = Arc::new(AtomicBool::new(false));
        let (shutdown_tx, shutdown) = oneshot::channel::<()>();
        let done = finished.clone();
        let server =
            GrpcServer::new("test", ServerOptions::default(), Routes::default(), vec![], Metrics::new("test", None))
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
