//! Runs the Catalog, Inventory and Reservation services in one process, each on its own port and
//! its own SQLite file under `./data` unless the environment says otherwise. Ctrl-c stops all three.

use std::future::Future;

use fulfillment_access::{KeyKind, NewKey, Scope};
use fulfillment_server::config::{Env, Secret};
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

    let test_key = provision_keys(&env, &inventory_config, &mut catalog_config, &mut reservation_config).await?;

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
    let mut addresses = Vec::new();
    for (name, listeners) in
        [("catalog", &catalog_listeners), ("inventory", &inventory_listeners), ("reservation", &reservation_listeners)]
    {
        let metrics = match &listeners.metrics {
            Some(metrics) => format!("http://{}/metrics", metrics.local_addr()?),
            None => "off".to_owned(),
        };
        addresses.push((name, listeners.grpc.local_addr()?, metrics));
    }

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
    // Each service listens once its database is ready: say where only then, so that the first
    // command a newcomer types finds the suite up.
    for (name, address, metrics) in &addresses {
        wait_listening(*address).await;
        println!("{name:<12} listening on {address}, metrics {metrics}");
    }
    if let Some(test_key) = test_key {
        println!("test API key   {} (read, write, admin; kept in {KEY_FILE})", test_key.secret);
        println!("               export FULFILLMENT_API_KEY={}", test_key.secret);
    }
    println!("press ctrl-c to stop");

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

/// Waits until `address` accepts connections, for a minute at most (a service that cannot start
/// says why in the log, and the launcher stops).
async fn wait_listening(address: std::net::SocketAddr) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while tokio::net::TcpStream::connect(address).await.is_err() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Where the launcher keeps the test key it made, so that every start can print it again.
const KEY_FILE: &str = "data/test-api-key";

/// A key to show the newcomer.
struct ShownKey {
    secret: String,
}

/// Gives the Catalog and the Reservation service fresh service keys unless the environment names
/// theirs (the ones a previous start made are revoked), and makes a test key on the first start.
/// The test key is kept in [`KEY_FILE`] (readable by its owner only), for a local suite only.
async fn provision_keys(
    env: &Env,
    inventory: &inventory::InventoryConfig,
    catalog: &mut catalog::CatalogConfig,
    reservation: &mut reservation::ReservationConfig,
) -> Result<Option<ShownKey>, Box<dyn std::error::Error>> {
    let registry = inventory::open_registry(inventory).await?;
    let live_keys = registry.list(true, false).await?;
    for (service, access) in [("catalog", &mut catalog.access), ("reservation", &mut reservation.access)] {
        if access.service_key.is_some() {
            continue;
        }
        let name = format!("launcher: {service}");
        for old in live_keys.iter().filter(|key| key.name == name) {
            registry.revoke(&old.id, true).await?;
        }
        let new = NewKey { name, kind: KeyKind::Service, scopes: Vec::new(), service: Some(service.to_owned()) };
        let (_, secret) = registry.create(new).await?;
        access.service_key = Some(Secret::new(secret));
    }
    if env.get("LAUNCHER_TEST_KEY").is_some_and(|v| v.eq_ignore_ascii_case("off")) {
        return Ok(None);
    }
    if let Ok(secret) = std::fs::read_to_string(KEY_FILE) {
        let secret = secret.trim().to_owned();
        if registry.authenticate(&secret).await?.is_some() {
            return Ok(Some(ShownKey { secret }));
        }
    }
    let new = NewKey {
        name: "launcher: local test key".to_owned(),
        kind: KeyKind::Test,
        scopes: vec![Scope::Read, Scope::Write, Scope::Admin],
        service: None,
    };
    let (_, secret) = registry.create(new).await?;
    write_private(KEY_FILE, &secret)?;
    Ok(Some(ShownKey { secret }))
}

/// Writes `contents` to `path`, readable and writable by its owner only.
fn write_private(path: &str, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(format!("{contents}\n").as_bytes())
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
