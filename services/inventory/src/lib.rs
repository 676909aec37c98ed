//! The Inventory service: inventory items, warehouses, stock levels with their ledger, and the
//! holds that reservations place (ARCHITECTURE.md, "Stock and holds").
//!
//! [`run`] serves it on a bound listener until a shutdown signal, and sweeps lapsed holds in the
//! background so stock is never stuck if the Reservation service is gone.

pub mod allocation;
pub mod config;
mod entity;
mod error;
mod grpc;
pub mod holds;
mod inventory;
pub mod items;
mod migration;
pub mod stock;
pub mod warehouses;

use std::future::Future;
use std::time::Duration;

use fulfillment_proto::inventory::v1::inventory_service_server::{InventoryServiceServer, SERVICE_NAME};
use fulfillment_server::{GrpcServer, ServeError};
use fulfillment_storage::Database;
use fulfillment_storage::paging::now;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::Routes;

pub use crate::config::InventoryConfig;
pub use crate::error::InventoryError;
pub use crate::grpc::{CALLER_METADATA, InventoryGrpc};
pub use crate::inventory::{Caller, Inventory};
pub use crate::migration::Migrator;
pub(crate) use fulfillment_storage::retry_lost_insert;

/// How many lapsed holds one sweep transaction releases.
const EXPIRY_BATCH: u64 = 100;

/// Connects to the database, applies migrations, and serves the Inventory on `listener` until
/// `shutdown` resolves, sweeping lapsed holds meanwhile.
pub async fn run(
    config: InventoryConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let db = Database::connect(config.service.database_url.expose(), config.service.pool).await?;
    fulfillment_storage::migrate::<Migrator>(&db).await?;
    let inventory = Inventory::new(db.clone(), config.reference);

    let (stop_tx, stop_rx) = watch::channel(false);
    let sweeper =
        tokio::spawn(sweep_expired_holds(inventory.clone(), config.expiry_sweep_interval, config.hold_grace, stop_rx));
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };

    let routes = Routes::new(InventoryServiceServer::new(InventoryGrpc::new(inventory)));
    tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "inventory serving");
    let served = GrpcServer::new(config.service.server, routes, vec![SERVICE_NAME]).serve(listener, shutdown).await;
    let _ = sweeper.await;
    db.close().await?;
    Ok(served?)
}

/// Releases holds that lapsed more than `grace` ago, every `interval`, until told to stop.
async fn sweep_expired_holds(
    inventory: Inventory,
    interval: Duration,
    grace: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        let cutoff = now().checked_sub_signed(grace).unwrap_or_default();
        match inventory.expire_holds(cutoff, EXPIRY_BATCH).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "released lapsed holds"),
            Err(error) => tracing::warn!(%error, "expiry sweep failed; retrying at the next tick"),
        }
    }
}
