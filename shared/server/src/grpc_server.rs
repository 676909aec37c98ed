use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

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
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self { request_timeout: Duration::from_secs(30), drain_delay: Duration::ZERO, reflection: true }
    }
}

/// A service's gRPC server: its routes plus `grpc.health.v1` and server reflection.
#[derive(Debug)]
pub struct GrpcServer {
    options: ServerOptions,
    routes: Routes,
    service_names: Vec<&'static str>,
}

impl GrpcServer {
    /// A server for `routes`, whose services are named in `service_names` for health reporting.
    pub fn new(options: ServerOptions, routes: Routes, service_names: Vec<&'static str>) -> Self {
        Self { options, routes, service_names }
    }

    /// Serves on `listener` until `shutdown` resolves; then reports NOT_SERVING, waits the drain
    /// delay, stops accepting, and lets calls in flight finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
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
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        Server::builder()
            .timeout(self.options.request_timeout)
            .trace_fn(crate::telemetry::server_span)
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, stopping)
            .await
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
