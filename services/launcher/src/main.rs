//! Runs the Catalog, Inventory and Reservation services in one process, each on its own port and
//! its own SQLite file under `./data` unless the environment says otherwise. Ctrl-c stops all three.

use std::future::Future;

use fulfillment_server::config::Env;
use fulfillment_server::telemetry::{self, LogFormat};
use fulfillment_server::{Listeners, ServeError, shutdown_signal};
use tokio::sync::watch;
use tokio::task::JoinSet;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = Env::from_process();
    let telemetry = telemetry::init(
        "fulfillment-suite",
        env.parse_or("LOG_FORMAT", LogFormat::Text)?,
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
    );
    let mut catalog_config = catalog::CatalogConfig::from_env(&env)?;
    let inventory_config = inventory::InventoryConfig::from_env(&env)?;
    let mut reservation_config = reservation::ReservationConfig::from_env(&env)?;

    let catalog_listeners = Listeners::bind(&catalog_config.service).await?;
    let inventory_listeners = Listeners::bind(&inventory_config.service).await?;
    let reservation_listeners = Listeners::bind(&reservation_config.service).await?;
    // In one process the Catalog and the Reservation service call the Inventory wherever it listens.
    let inventory_url = format!("http://{}", inventory_listeners.grpc.local_addr()?);
    if env.get("CATALOG_INVENTORY_URL").is_none() {
        catalog_config.inventory_url = inventory_url.clone();
    }
    if env.get("RESERVATION_INVENTORY_URL").is_none() {
        reservation_config.inventory_url = inventory_url;
    }
    for (name, listeners) in
        [("catalog", &catalog_listeners), ("inventory", &inventory_listeners), ("reservation", &reservation_listeners)]
    {
        let metrics = match &listeners.metrics {
            Some(metrics) => format!("http://{}/metrics", metrics.local_addr()?),
            None => "off".to_owned(),
        };
        println!("{name:<12} listening on {}, metrics {metrics}", listeners.grpc.local_addr()?);
    }
    println!("press ctrl-c to stop");

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut stop_rx = stop_rx.clone();
        async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        }
    };
    let mut services: JoinSet<(&str, Result<(), ServeError>)> = JoinSet::new();
    spawn(&mut services, "catalog", catalog::run(catalog_config, catalog_listeners, stopped()));
    spawn(&mut services, "inventory", inventory::run(inventory_config, inventory_listeners, stopped()));
    spawn(&mut services, "reservation", reservation::run(reservation_config, reservation_listeners, stopped()));

    // Stop everything at ctrl-c or SIGTERM, or as soon as one service ends on its own.
    let mut failed = false;
    tokio::select! {
        () = shutdown_signal() => {}
        Some(first) = services.join_next() => failed |= report(first),
    }
    let _ = stop_tx.send(true);
    while let Some(result) = services.join_next().await {
        failed |= report(result);
    }
    telemetry.shutdown().await;
    if failed { Err("a service failed; see the log above".into()) } else { Ok(()) }
}

fn spawn(
    services: &mut JoinSet<(&'static str, Result<(), ServeError>)>,
    name: &'static str,
    service: impl Future<Output = Result<(), ServeError>> + Send + 'static,
) {
    services.spawn(async move { (name, service.await) });
}

/// Logs how a service ended and tells whether it failed.
fn report(result: Result<(&str, Result<(), ServeError>), tokio::task::JoinError>) -> bool {
    match result {
        Ok((name, Ok(()))) => {
            tracing::info!(service = name, "stopped");
            false
        }
        Ok((name, Err(error))) => {
            tracing::error!(service = name, %error, "failed");
            true
        }
        Err(error) => {
            tracing::error!(%error, "a service task panicked");
            true
        }
    }
}
