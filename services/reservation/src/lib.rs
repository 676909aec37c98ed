//! The Reservation service: reservations with an expiry, placed as holds in the Inventory, and the
//! fulfillment orders that commit them (the reservation document, ARCHITECTURE.md "Reservations").
//!
//! [`run`] serves it on a bound listener until a shutdown signal; a sweeper releases expired
//! reservations and finishes changes a crash interrupted.

pub mod config;
mod entity;
mod error;
pub mod fulfillment;
mod grpc;
mod inventory_client;
pub mod metrics;
mod migration;
pub mod reservation;
mod reservations;
mod sweeper;

use std::future::Future;

use fulfillment_proto::reservation::v1::reservation_service_server::{ReservationServiceServer, SERVICE_NAME};
use fulfillment_server::{GrpcServer, Listeners, Metrics, ServeError};
use fulfillment_storage::Database;
use tokio::sync::watch;
use tonic::service::Routes;

pub use crate::config::ReservationConfig;
pub use crate::error::ReservationError;
pub use crate::grpc::ReservationGrpc;
pub use crate::inventory_client::InventoryClient;
pub use crate::metrics::ReservationMetrics;
pub use crate::migration::Migrator;
pub use crate::reservations::{Reservations, Timing};

/// Connects to the database, applies migrations, and serves the Reservation service on `listeners`
/// until `shutdown` resolves, sweeping meanwhile.
pub async fn run(
    config: ReservationConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let db = Database::connect(config.service.database_url.expose(), config.service.pool).await?;
    fulfillment_storage::migrate::<Migrator>(&db).await?;
    let metrics = Metrics::new("reservation", config.service.otlp_endpoint.as_deref());
    let inventory = InventoryClient::new(&config.inventory_url, config.inventory_timeout, &metrics)?;
    let timing = Timing {
        default_expires_in: config.default_expires_in,
        max_expires_in: config.max_expires_in,
        claim_lease: config.claim_lease,
    };
    let reservations =
        Reservations::new(db.clone(), inventory, config.reference, timing, ReservationMetrics::new(&metrics));

    let (stop_tx, stop_rx) = watch::channel(false);
    let sweeper = tokio::spawn(reservations.clone().run_sweeper(config.sweep_interval, stop_rx));
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let server = ReservationServiceServer::new(ReservationGrpc::new(reservations))
        .max_decoding_message_size(config.service.server.max_message_bytes);
    let routes = Routes::new(server);
    listeners.log_serving("reservation");
    let served = GrpcServer::new(config.service.server, routes, vec![SERVICE_NAME], metrics.clone())
        .serve(listeners, shutdown)
        .await;
    let _ = sweeper.await;
    metrics.shutdown().await;
    db.close().await?;
    Ok(served?)
}
