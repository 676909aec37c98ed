use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
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
#[derive(Debug)]
pub struct GrpcServer {
    options: ServerOptions,
    routes: Routes,
    service_names: Vec<&'static str>,
    metrics: Metrics,
    gate: Option<GateLayer>,
}

impl GrpcServer {
    /// A server for `routes`, whose services are named in `service_names` for health reporting
    /// and metrics.
    pub fn new(options: ServerOptions, routes: Routes, service_names: Vec<&'static str>, metrics: Metrics) -> Self {
        Self { options, routes, service_names, metrics, gate: None }
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
        let metrics_endpoint = listeners.metrics.map(|listener| {
            tokio::spawn(self.metrics.clone().serve(listener, async move {
                let _ = metrics_stopped.await;
            }))
        });
        let mut measured = self.service_names.clone();
        measured.extend([
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]);
        let rpc_metrics = RpcMetricsLayer::new(&self.metrics, measured);

        let (health, health_service) = tonic_health::server::health_reporter();
        let mut routes = self.routes.add_service(health_service);
        if self.options.reflection {
            routes = add_reflection(routes);
        }
        set_status(&health, &self.service_names, ServingStatus::Serving).await;

        let drain_delay = self.options.drain_delay;
        let service_names = self.service_names.clone();
        let stopping = async move {
            shutdown.await;
            set_status(&health, &service_names, ServingStatus::NotServing).await;
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
}
