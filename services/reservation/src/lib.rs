//! The Reservation service: holds with an expiry, cancellation, and fulfillment orders.
//!
//! Not built yet: this binary connects to its database and serves `grpc.health.v1` and reflection
//! on its own port, so the suite's shape is complete; the `ReservationService` RPCs answer
//! UNIMPLEMENTED until the Reservation issue lands.

pub mod config;

use std::future::Future;

use fulfillment_server::{GrpcServer, ServeError};
use fulfillment_storage::Database;
use tokio::net::TcpListener;
use tonic::service::Routes;

pub use crate::config::ReservationConfig;

/// Connects to the database and serves health and reflection on `listener` until `shutdown`.
pub async fn run(
    config: ReservationConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let db = Database::connect(config.service.database_url.expose(), config.service.pool).await?;
    tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "reservation serving");
    let served = GrpcServer::new(config.service.server, Routes::default(), Vec::new()).serve(listener, shutdown).await;
    db.close().await?;
    Ok(served?)
}
