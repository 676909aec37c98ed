//! The Inventory service: inventory items, warehouses, stock levels with their ledger, and the
//! holds that reservations place (docs/architecture.md, "Stock and holds").
//!
//! [`run`] serves it on a bound listener until a shutdown signal, and sweeps lapsed holds in the
//! background so stock is never stuck if the Reservation service is gone.

pub mod allocation;
pub mod config;
pub mod domain;
mod entity;
mod error;
mod grpc;
mod hold_batches;
mod hold_placement;
pub mod holds;
mod inventory;
pub mod items;
pub mod metrics;
mod migration;
pub mod stock;
mod store;
mod sweeper;
pub mod warehouses;

use std::future::Future;

use fulfillment_access::{AccessGrpc, ByMode, KeyGate, Keys, Policy, Registry};
use fulfillment_proto::access::v1::access_service_server::{AccessServiceServer, SERVICE_NAME as ACCESS_SERVICE_NAME};
use fulfillment_proto::inventory::v1::inventory_service_server::{InventoryServiceServer, SERVICE_NAME};
use fulfillment_server::config::ConfigError;
use fulfillment_server::{GrpcServer, Listeners, Metrics, ServeError};
use fulfillment_storage::Database;
use tonic::service::Routes;

use crate::sweeper::{Sweep, sweep_expired_holds};

pub use crate::config::InventoryConfig;
pub use crate::domain::Caller;
pub use crate::error::InventoryError;
pub use crate::grpc::InventoryGrpc;
pub use crate::inventory::Inventory;
pub use crate::metrics::InventoryMetrics;
pub use crate::migration::Migrator;
pub(crate) use fulfillment_storage::retry_lost_insert;

/// Connects to the live and the test store, applies migrations, and serves the Inventory and the
/// access RPCs on `listeners` until `shutdown` resolves, sweeping lapsed holds meanwhile.
pub async fn run(
    config: InventoryConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let stores = fulfillment_access::connect_stores::<Migrator>(&config.service).await?;
    let registry = Registry::open(stores.live.clone()).await?.remembering(config.access.cache);
    for (key, secret) in &config.provisioned_keys {
        let name = key.name.clone();
        registry.import(key.clone(), secret.expose()).await.map_err(|error| ConfigError {
            variable: name,
            value: "***".to_owned(),
            reason: error.to_string(),
        })?;
    }
    let metrics = Metrics::new("inventory", config.service.otlp_endpoint.as_deref());
    metrics.count_retries(&stores.live, &stores.test);
    let inventory_metrics = InventoryMetrics::new(&metrics);
    let inventory = |db: &Database| {
        Inventory::new(db.clone(), config.reference.clone(), inventory_metrics.clone())
            .with_hold_batch_max(config.hold_batch_max)
            .with_clock(config.clock.clone())
    };
    let inventories = ByMode { live: inventory(&stores.live), test: inventory(&stores.test).for_test_mode() };

    let sweep = Sweep {
        interval: config.expiry_sweep_interval,
        grace: config.hold_grace,
        low_stock_threshold: config.low_stock_threshold,
    };
    let (live, test) = (inventories.live.clone(), inventories.test.clone());

    let max_message_bytes = config.service.server.max_message_bytes;
    let server =
        InventoryServiceServer::new(InventoryGrpc::new(inventories)).max_decoding_message_size(max_message_bytes);
    let access =
        AccessServiceServer::new(AccessGrpc::new(registry.clone())).max_decoding_message_size(max_message_bytes);
    let routes = Routes::new(server).add_service(access);
    let policy = AccessGrpc::policy(InventoryGrpc::policy(Policy::default()));
    let gate = KeyGate::new(Keys::Local(registry), policy, config.access.limits(), &metrics);
    let served = GrpcServer::new(
        "inventory",
        config.service.server,
        routes,
        vec![SERVICE_NAME, ACCESS_SERVICE_NAME],
        metrics.clone(),
    )
    .with_gate(gate)
    .with_background(move |stop| sweep_expired_holds(live, sweep, stop))
    .with_background(move |stop| sweep_expired_holds(test, sweep, stop))
    .serve(listeners, shutdown)
    .await;
    metrics.shutdown().await;
    stores.close().await?;
    served
}

/// The key registry in the Inventory's live database, for provisioning keys outside the RPCs
/// (`inventory create-key`, the launcher's first start).
pub async fn open_registry(config: &InventoryConfig) -> Result<Registry, sea_orm::DbErr> {
    let db = Database::connect(config.service.database_url.expose(), config.service.pool).await?;
    Registry::open(db).await
}
