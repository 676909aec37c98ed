//! The Catalog service: SKUs with every attribute, rule and error of the SKU document, and the
//! registry of manufacturer parts that managed fulfillment checks.
//!
//! [`run`] serves it on a bound listener until a shutdown signal; `main.rs` only reads the
//! configuration and calls it. The modules follow CONTRIBUTING.md, "The module convention": the
//! domain, the store, one file per subject (`skus`, `manufacturer_parts`, `consistency`), the saga's
//! driver, the Inventory client, the gRPC adapter and the sweeper.

mod catalog;
pub mod config;
mod consistency;
mod domain;
mod entity;
mod error;
mod grpc;
mod inventory_client;
mod manufacturer_parts;
pub mod metrics;
mod migration;
mod saga;
mod skus;
mod store;
mod sweeper;

use std::future::Future;

use fulfillment_access::{ByMode, Policy};
use fulfillment_proto::catalog::v1::catalog_service_server::{CatalogServiceServer, SERVICE_NAME};
use fulfillment_server::calls::CallPolicy;
use fulfillment_server::tls;
use fulfillment_server::{GrpcServer, Listeners, Metrics, ServeError};
use fulfillment_storage::Database;
use tonic::service::Routes;

pub use crate::catalog::Catalog;
pub use crate::config::CatalogConfig;
pub use crate::domain::Inconsistency;
pub use crate::error::CatalogError;
pub use crate::grpc::CatalogGrpc;
pub use crate::inventory_client::InventoryItems;
pub use crate::metrics::CatalogMetrics;
pub use crate::migration::Migrator;

/// Connects to the live and the test store, applies migrations, and serves the Catalog on
/// `listeners` until `shutdown` resolves. Keys are checked by the Inventory's access RPCs.
pub async fn run(
    config: CatalogConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (live_credentials, test_credentials) = (config.access.credentials(true)?, config.access.credentials(false)?);
    let stores = fulfillment_access::connect_stores::<Migrator>(&config.service).await?;
    let metrics = Metrics::new("catalog", config.service.otlp_endpoint.as_deref());
    metrics.count_retries(&stores.live, &stores.test);
    let timeout = config.inventory_timeout;
    let inventory =
        tls::endpoint(&config.inventory_url, &config.inventory_tls)?.connect_timeout(timeout).connect_lazy();
    let catalog_metrics = CatalogMetrics::new(&metrics);
    let catalog = |db: &Database, credentials| {
        let items = InventoryItems::new(inventory.clone(), timeout, &metrics, credentials);
        Catalog::new(db.clone(), config.reference.clone(), items, config.saga_lease, catalog_metrics.clone())
            .with_clock(config.clock.clone())
    };
    let catalogs = ByMode {
        live: catalog(&stores.live, live_credentials),
        test: catalog(&stores.test, test_credentials).for_test_mode(),
    };
    let policy = CatalogGrpc::policy(Policy::default());
    let gate = config.access.remote_gate(inventory.clone(), CallPolicy::new(timeout, 2, &metrics), policy, &metrics)?;

    let (live, test) = (catalogs.live.clone(), catalogs.test.clone());
    let interval = config.saga_recovery_interval;
    let server = CatalogServiceServer::new(CatalogGrpc::new(catalogs))
        .max_decoding_message_size(config.service.server.max_message_bytes);
    let routes = Routes::new(server);
    let served = GrpcServer::new("catalog", config.service.server, routes, vec![SERVICE_NAME], metrics.clone())
        .with_gate(gate)
        .with_background(move |stop| live.run_saga_recovery(interval, stop))
        .with_background(move |stop| test.run_saga_recovery(interval, stop))
        .serve(listeners, shutdown)
        .await;
    metrics.shutdown().await;
    stores.close().await?;
    served
}
