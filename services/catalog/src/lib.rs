//! The Catalog service: SKUs with every attribute, rule and error of the SKU document, and the
//! registry of manufacturer parts that managed fulfillment checks.
//!
//! [`run`] serves it on a bound listener until a shutdown signal; `main.rs` only reads the
//! configuration and calls it.

mod catalog;
pub mod config;
mod entity;
mod error;
mod grpc;
mod inventory_items;
pub mod metrics;
mod migration;
mod repository;
mod saga;
mod sku;
mod validation;

use std::future::Future;

use fulfillment_proto::catalog::v1::catalog_service_server::{CatalogServiceServer, SERVICE_NAME};
use fulfillment_server::{GrpcServer, Listeners, Metrics, ServeError};
use fulfillment_storage::Database;
use tokio::sync::watch;
use tonic::service::Routes;

pub use crate::catalog::Catalog;
pub use crate::config::CatalogConfig;
pub use crate::error::CatalogError;
pub use crate::grpc::CatalogGrpc;
pub use crate::inventory_items::InventoryItems;
pub use crate::metrics::CatalogMetrics;
pub use crate::migration::Migrator;
pub use crate::saga::Inconsistency;

/// Connects to the database, applies migrations, and serves the Catalog on `listeners` until
/// `shutdown` resolves.
pub async fn run(
    config: CatalogConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let db = Database::connect(config.service.database_url.expose(), config.service.pool).await?;
    fulfillment_storage::migrate::<Migrator>(&db).await?;
    let metrics = Metrics::new("catalog", config.service.otlp_endpoint.as_deref());
    let items = InventoryItems::new(&config.inventory_url, config.inventory_timeout, &metrics)?;
    let catalog = Catalog::new(db.clone(), config.reference, items, config.saga_lease, CatalogMetrics::new(&metrics));

    let (stop_tx, stop_rx) = watch::channel(false);
    let recovery = tokio::spawn(catalog.clone().run_saga_recovery(config.saga_recovery_interval, stop_rx));
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let server = CatalogServiceServer::new(CatalogGrpc::new(catalog))
        .max_decoding_message_size(config.service.server.max_message_bytes);
    let routes = Routes::new(server);
    listeners.log_serving("catalog");
    let served = GrpcServer::new(config.service.server, routes, vec![SERVICE_NAME], metrics.clone())
        .serve(listeners, shutdown)
        .await;
    let _ = recovery.await;
    metrics.shutdown().await;
    db.close().await?;
    Ok(served?)
}
