//! The Reservation service: reservations with an expiry, placed as holds in the Inventory, and the
//! fulfillment orders that commit them (docs/architecture.md, "Reservations").
//!
//! [`run`] serves it on a bound listener until a shutdown signal; a sweeper releases expired
//! reservations and finishes changes a crash interrupted.
//!
//! The modules follow CONTRIBUTING.md, "The module convention". Bottom up, each importing only
//! those below it: `domain` (types and rules), `inventory_client`, `store` (the service's type, its
//! rows and claims), the subjects `reservations` and `fulfillment`, then `grpc` and `sweeper`.

pub mod config;
pub mod domain;
mod entity;
mod error;
pub mod fulfillment;
mod grpc;
mod inventory_client;
pub mod metrics;
mod migration;
mod reservations;
mod store;
mod sweeper;

use std::future::Future;

use fulfillment_access::{ByMode, Policy};
use fulfillment_proto::reservation::v1::reservation_service_server::{ReservationServiceServer, SERVICE_NAME};
use fulfillment_server::calls::CallPolicy;
use fulfillment_server::tls;
use fulfillment_server::{GrpcServer, Listeners, Metrics, ServeError};
use fulfillment_storage::Database;
use tonic::service::Routes;

pub use crate::config::ReservationConfig;
pub use crate::error::ReservationError;
pub use crate::grpc::ReservationGrpc;
pub use crate::inventory_client::InventoryClient;
pub use crate::metrics::ReservationMetrics;
pub use crate::migration::Migrator;
pub use crate::store::{Reservations, Timing};

/// Connects to the live and the test store, applies migrations, and serves the Reservation service
/// on `listeners` until `shutdown` resolves, sweeping meanwhile. Keys are checked by the Inventory's
/// access RPCs.
pub async fn run(
    config: ReservationConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (live_credentials, test_credentials) = (config.access.credentials(true)?, config.access.credentials(false)?);
    let stores = fulfillment_access::connect_stores::<Migrator>(&config.service).await?;
    let metrics = Metrics::new("reservation", config.service.otlp_endpoint.as_deref());
    metrics.count_retries(&stores.live, &stores.test);
    let timeout = config.inventory_timeout;
    let inventory =
        tls::endpoint(&config.inventory_url, &config.inventory_tls)?.connect_timeout(timeout).connect_lazy();
    let timing = Timing {
        default_expires_in: config.default_expires_in,
        max_expires_in: config.max_expires_in,
        claim_lease: config.claim_lease,
    };
    let reservation_metrics = ReservationMetrics::new(&metrics);
    let service = |db: &Database, credentials| {
        let client = InventoryClient::new(inventory.clone(), timeout, &metrics, credentials);
        Reservations::new(db.clone(), client, config.reference.clone(), timing, reservation_metrics.clone())
            .with_limits(config.limits)
            .with_write_batch_max(config.write_batch_max)
            .with_clock(config.clock.clone())
    };
    let services = ByMode {
        live: service(&stores.live, live_credentials),
        test: service(&stores.test, test_credentials).for_test_mode(),
    };
    let policy = ReservationGrpc::policy(Policy::default());
    let gate = config.access.remote_gate(inventory.clone(), CallPolicy::new(timeout, 2, &metrics), policy, &metrics)?;

    let (live, test) = (services.live.clone(), services.test.clone());
    let interval = config.sweep_interval;
    let server = ReservationServiceServer::new(ReservationGrpc::new(services))
        .max_decoding_message_size(config.service.server.max_message_bytes);
    let routes = Routes::new(server);
    let served = GrpcServer::new("reservation", config.service.server, routes, vec![SERVICE_NAME], metrics.clone())
        .with_gate(gate)
        .with_background(move |stop| live.run_sweeper(interval, stop))
        .with_background(move |stop| test.run_sweeper(interval, stop))
        .serve(listeners, shutdown)
        .await;
    metrics.shutdown().await;
    stores.close().await?;
    served
}
