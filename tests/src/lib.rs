//! The harness of the end-to-end tests: each service starts on a pre-bound `127.0.0.1:0` listener
//! over a database of its own, and the test talks to it through the generated client.

use std::future::Future;
use std::net::SocketAddr;

use fulfillment_proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use fulfillment_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use fulfillment_proto::reservation::v1::reservation_service_client::ReservationServiceClient;
use fulfillment_server::config::Env;
use fulfillment_server::{Listeners, Port, ServeError};
pub use fulfillment_storage::Backend;
pub use fulfillment_storage::Clock;
use fulfillment_storage::testing::TestDatabase;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The keys every Inventory the harness starts knows, and the services it starts call with.
pub mod keys {
    /// A live key with every scope: what the harness's clients send.
    pub const LIVE: &str = "fk_live_DNxril3RavGD5MfvJ7NScUykT8C8UBkkpdhiG37L";
    /// A test key with every scope.
    pub const TEST: &str = "fk_test_eXSyYV4g6snRoUYA4fXr6nzrvZcmT4a4Ad5y2Fib";
    /// The Catalog's service key.
    pub const CATALOG: &str = "fk_svc_pBV62h9MahWLm52mva5fiI6bGfKFI6mAezmOWfSL";
    /// The Reservation service's service key.
    pub const RESERVATION: &str = "fk_svc_jl8MU9cdrJRM2jVrVKch3Tz85pkNGcVx2RHLKXSf";
}

/// Stores the harness's [`keys`] in the Inventory database at `database_url`, which is migrated.
pub async fn provision_keys(database_url: &str) {
    use fulfillment_access::{KeyKind, NewKey, Registry, Scope};
    let db = fulfillment_storage::Database::connect(database_url, fulfillment_storage::PoolConfig::default())
        .await
        .expect("the Inventory database");
    let registry = Registry::open(db.clone()).await.expect("the key table");
    let every = vec![Scope::Read, Scope::Write, Scope::Admin];
    let provisioned = [
        (keys::LIVE, KeyKind::Live, every.clone(), None),
        (keys::TEST, KeyKind::Test, every, None),
        (keys::CATALOG, KeyKind::Service, Vec::new(), Some("catalog")),
        (keys::RESERVATION, KeyKind::Service, Vec::new(), Some("reservation")),
    ];
    for (secret, kind, scopes, service) in provisioned {
        let new = NewKey { name: format!("harness {kind:?}"), kind, scopes, service: service.map(str::to_owned) };
        registry.import(new, secret).await.expect("the harness key is stored");
    }
    db.close().await.expect("closed");
}

/// A channel whose calls carry an API key.
pub type KeyedChannel = InterceptedService<Channel, Bearer>;

/// Sends `authorization: Bearer <key>` with every call.
#[derive(Clone, Debug)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    /// Sends `key`.
    pub fn new(key: &str) -> Self {
        Self(format!("Bearer {key}").parse().expect("a key fits in a header"))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        // A call that names its own key keeps it.
        if !request.metadata().contains_key("authorization") {
            request.metadata_mut().insert("authorization", self.0.clone());
        }
        Ok(request)
    }
}

/// Connects to the service at `url` with the harness's live key.
pub async fn connect_keyed(url: String) -> Result<KeyedChannel, tonic::transport::Error> {
    let channel = tonic::transport::Endpoint::try_from(url)?.connect().await?;
    Ok(InterceptedService::new(channel, Bearer::new(keys::LIVE)))
}

/// Every finding of the Catalog's consistency check, read page by page of `page_size`, and how
/// many calls that took.
pub async fn consistency(
    catalog: &mut CatalogServiceClient<KeyedChannel>,
    page_size: i32,
) -> Result<(Vec<fulfillment_proto::catalog::v1::Inconsistency>, usize), tonic::Status> {
    let (mut found, mut calls, mut page_token) = (Vec::new(), 0, String::new());
    loop {
        let request = fulfillment_proto::catalog::v1::CheckConsistencyRequest { page_size, page_token };
        let page = catalog.check_consistency(request).await?.into_inner();
        calls += 1;
        found.extend(page.inconsistencies);
        if page.next_page_token.is_empty() {
            return Ok((found, calls));
        }
        page_token = page.next_page_token;
    }
}

/// `message` sent as the Catalog sends it: with its service key, in live mode.
pub fn as_catalog<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let credentials = fulfillment_server::calls::Credentials::new(keys::CATALOG, true).expect("a valid key");
    credentials.apply(request.metadata_mut());
    request
}

/// Generates, for each named `async fn name(backend: Backend)` of the module, a module `name` with
/// one test per backend: `name::sqlite` always runs; `name::postgres` runs where the tests were
/// built with `TEST_DATABASE_URL` (or `REQUIRE_POSTGRES`) set, as CI builds them, and is reported
/// as ignored otherwise, never as passed. The bodies stay ordinary functions a formatter reaches.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(postgres_tests), ignore = "TEST_DATABASE_URL is not set")]
                async fn postgres() {
                    $crate::require_postgres();
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )*
    };
}

/// Fails a PostgreSQL test that was built to run but has no `TEST_DATABASE_URL` to run with (the
/// binary was started by hand without it): it must not pass without running.
pub fn require_postgres() {
    assert!(
        postgres_available(),
        "TEST_DATABASE_URL is not set: this PostgreSQL test cannot run (without it, rebuild and it is ignored)"
    );
}

/// Whether the PostgreSQL variants can run.
pub fn postgres_available() -> bool {
    fulfillment_storage::testing::postgres_url().is_some()
}

/// A service running in the test's process, stopped when dropped.
#[derive(Debug)]
pub struct RunningService {
    /// Where it listens.
    pub address: SocketAddr,
    /// Where its Prometheus endpoint listens.
    pub metrics_address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
    _database: Option<TestDatabase>,
    /// Services this one calls, kept running as long as it does.
    pub peers: Vec<RunningService>,
}

impl RunningService {
    /// A channel to the service whose calls carry `key`.
    pub async fn keyed(&self, key: &str) -> KeyedChannel {
        InterceptedService::new(self.channel().await, Bearer::new(key))
    }

    /// A channel to the service, carrying no key.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.address))
            .expect("a valid URI")
            .connect()
            .await
            .expect("the service accepts connections")
    }

    /// Waits until the service listens, which it does once its database is ready (it refuses
    /// connections until then), or until it stopped trying.
    async fn listening(&self) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while tokio::net::TcpStream::connect(self.address).await.is_err() {
            let ended = self.task.as_ref().is_none_or(JoinHandle::is_finished);
            if ended || tokio::time::Instant::now() > deadline {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Its metrics in the Prometheus text format, as a scraper reads them.
    pub async fn scrape(&self) -> String {
        scrape(self.metrics_address).await
    }

    /// Stops the service gracefully and waits for it to finish.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("the service task does not panic"),
            None => Ok(()),
        }
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Where a started service keeps its data.
#[derive(Clone, Copy, Debug)]
pub enum Store<'a> {
    /// A database of its own on this backend, dropped with the service.
    Fresh(Backend),
    /// The database at this URL, which other replicas may share.
    Shared(&'a str),
}

/// Starts a service with `run` on `store`; `run` receives the environment to build the service's
/// configuration from.
async fn start<Run, Fut>(store: Store<'_>, prefix: &str, run: Run) -> RunningService
where
    Run: FnOnce(Env, Listeners, oneshot::Receiver<()>) -> Fut,
    Fut: Future<Output = Result<(), ServeError>> + Send + 'static,
{
    match store {
        Store::Shared(url) => start_on(url, prefix, run).await,
        Store::Fresh(backend) => {
            let database = TestDatabase::create(backend).await.expect("a test database");
            let mut service = start_on(database.url(), prefix, run).await;
            service._database = Some(database);
            service
        }
    }
}

/// Starts a service with `run` on the database at `database_url`, which other replicas may share.
async fn start_on<Run, Fut>(database_url: &str, prefix: &str, run: Run) -> RunningService
where
    Run: FnOnce(Env, Listeners, oneshot::Receiver<()>) -> Fut,
    Fut: Future<Output = Result<(), ServeError>> + Send + 'static,
{
    let listeners = bind_local().await;
    let address = listeners.grpc.local_addr().expect("bound address");
    let metrics_address = listeners.metrics.as_ref().and_then(|l| l.local_addr().ok()).expect("bound address");
    let url_variable = format!("{prefix}_DATABASE_URL");
    let key_variable = format!("{prefix}_SERVICE_KEY");
    let service_key = match prefix {
        "CATALOG" => keys::CATALOG,
        "RESERVATION" => keys::RESERVATION,
        _ => {
            provision_keys(database_url).await;
            ""
        }
    };
    // Tests make calls faster, and more at once, than a client should; the rate limit, the cap on
    // a key's calls in flight and the limit on failed authentications have tests of their own.
    let env = Env::from_pairs([
        (url_variable.as_str(), database_url),
        (&format!("{prefix}_DB_MAX_CONNECTIONS"), "8"),
        (&key_variable, service_key),
        ("API_KEY_RATE_LIMIT", "0"),
        ("API_KEY_FAILURE_LIMIT", "0"),
        ("API_KEY_MAX_CONCURRENT_CALLS", "0"),
    ]);
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(run(env, listeners, stopped));
    let service = RunningService {
        address,
        metrics_address,
        stop: Some(stop),
        task: Some(task),
        _database: None,
        peers: Vec::new(),
    };
    service.listening().await;
    service
}

/// A gRPC and a metrics listener on free local ports.
async fn bind_local() -> Listeners {
    let grpc = Port::bind(([127, 0, 0, 1], 0).into()).expect("bind 127.0.0.1:0");
    let metrics = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    Listeners { grpc, metrics: Some(metrics) }
}

/// `GET /metrics` at `address`: the body, in the Prometheus text format.
pub async fn scrape(address: SocketAddr) -> String {
    let (status, body) = fulfillment_server::testing::http_get(address, "/metrics").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    body
}

/// Starts a service for a test: where it keeps its data and its extra settings, then which service.
///
/// `Spawn::on(backend).inventory()` starts an Inventory on a fresh database of its own;
/// `Spawn::in_store(Store::Shared(url)).with(&[("RESERVATION_SWEEP_MS", "50")]).reservation(inventory)`
/// a Reservation replica on a shared one with a fast sweep.
#[derive(Clone, Debug)]
pub struct Spawn<'a> {
    store: Store<'a>,
    settings: Vec<(String, String)>,
    clock: Clock,
}

impl<'a> Spawn<'a> {
    /// On a fresh database of its own on `backend`, dropped with the service.
    pub fn on(backend: Backend) -> Self {
        Self::in_store(Store::Fresh(backend))
    }

    /// On the database `store` names.
    pub fn in_store(store: Store<'a>) -> Self {
        Self { store, settings: Vec::new(), clock: Clock::system() }
    }

    /// Reading the time from `clock`, which the test moves forward instead of sleeping.
    pub fn clock(mut self, clock: &Clock) -> Self {
        self.clock = clock.clone();
        self
    }

    /// With extra settings, as environment variables (a fast sweep, a small limit).
    pub fn with(mut self, settings: &[(&str, &str)]) -> Self {
        self.settings.extend(settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self
    }

    /// The Inventory, and a client of it with the live key.
    pub async fn inventory(self) -> (RunningService, InventoryServiceClient<KeyedChannel>) {
        let service = self.start_inventory().await;
        let client = InventoryServiceClient::new(service.keyed(keys::LIVE).await);
        (service, client)
    }

    /// The Inventory, without connecting to it (for servers a plaintext client cannot reach).
    pub async fn start_inventory(self) -> RunningService {
        let (settings, clock) = (self.settings, self.clock);
        start(self.store, "INVENTORY", |env, listeners, stopped| async move {
            let env = env.with(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let mut config = inventory::InventoryConfig::from_env(&env).expect("valid test configuration");
            config.clock = clock;
            inventory::run(config, listeners, async move { drop(stopped.await) }).await
        })
        .await
    }

    /// The Inventory with one warehouse `w` shipping everywhere and `units` of an item `a` in it:
    /// the stock a reservation test needs.
    pub async fn stocked_inventory(self, units: i64) -> (RunningService, InventoryServiceClient<KeyedChannel>) {
        use fulfillment_proto::inventory::v1 as pb;
        let (service, mut client) = self.inventory().await;
        let warehouse = pb::Warehouse {
            id: "w".into(),
            name: "w".into(),
            country: "US".into(),
            ships_everywhere: true,
            ..Default::default()
        };
        client.create_warehouse(pb::CreateWarehouseRequest { warehouse: Some(warehouse) }).await.expect("warehouse");
        let item = pb::InventoryItem { id: "a".into(), ..Default::default() };
        client
            .create_inventory_item(pb::CreateInventoryItemRequest { inventory_item: Some(item) })
            .await
            .expect("item");
        if units > 0 {
            let receive = pb::AdjustStockRequest {
                inventory_item_id: "a".into(),
                warehouse_id: "w".into(),
                kind: pb::StockChangeKind::Receive.into(),
                quantity: units,
                reason: "stock".into(),
                idempotency_key: "stock".into(),
            };
            client.adjust_stock(receive).await.expect("stock");
        }
        (service, client)
    }

    /// The Catalog, with an Inventory of its own (on the same backend, kept running as long as the
    /// Catalog is) for managed SKUs' items.
    pub async fn catalog_and_inventory(self) -> (RunningService, CatalogServiceClient<KeyedChannel>) {
        let Store::Fresh(backend) = self.store else {
            panic!("a Catalog with an Inventory of its own needs a fresh store");
        };
        let (inventory, _client) = Spawn::on(backend).inventory().await;
        let (mut catalog, client) = self.catalog(inventory.address).await;
        catalog.peers.push(inventory);
        (catalog, client)
    }

    /// The Catalog, keeping managed SKUs' items in the Inventory at `inventory`, and a client of it
    /// with the live key.
    pub async fn catalog(self, inventory: SocketAddr) -> (RunningService, CatalogServiceClient<KeyedChannel>) {
        let service = self.start_catalog(&format!("http://{inventory}")).await;
        let client = CatalogServiceClient::new(service.keyed(keys::LIVE).await);
        (service, client)
    }

    /// The Catalog calling the Inventory at `inventory_url`, without connecting to it (for servers
    /// a plaintext client cannot reach). The test's settings may name another Inventory.
    pub async fn start_catalog(mut self, inventory_url: &str) -> RunningService {
        self.settings.insert(0, ("CATALOG_INVENTORY_URL".to_owned(), inventory_url.to_owned()));
        let (settings, clock) = (self.settings, self.clock);
        start(self.store, "CATALOG", |env, listeners, stopped| async move {
            let env = env.with(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let mut config = catalog::CatalogConfig::from_env(&env).expect("valid test configuration");
            config.clock = clock;
            catalog::run(config, listeners, async move { drop(stopped.await) }).await
        })
        .await
    }

    /// The Reservation service calling the Inventory at `inventory`, and a client of it with the
    /// live key.
    pub async fn reservation(
        mut self,
        inventory: SocketAddr,
    ) -> (RunningService, ReservationServiceClient<KeyedChannel>) {
        self.settings.push(("RESERVATION_INVENTORY_URL".to_owned(), format!("http://{inventory}")));
        let (settings, clock) = (self.settings, self.clock);
        let service = start(self.store, "RESERVATION", |env, listeners, stopped| async move {
            let env = env.with(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let mut config = reservation::ReservationConfig::from_env(&env).expect("valid test configuration");
            config.clock = clock;
            reservation::run(config, listeners, async move { drop(stopped.await) }).await
        })
        .await;
        let client = ReservationServiceClient::new(service.keyed(keys::LIVE).await);
        (service, client)
    }
}

/// Starts a service binary as a real process (for tests about crashes), with `settings` added to
/// its environment, and waits until it logs that it serves; answers the process and its URL. The
/// binary must be told to listen on `127.0.0.1:0` and to log JSON.
pub async fn start_process(binary: &str, settings: &[(&str, &str)]) -> (tokio::process::Child, String) {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let mut command = tokio::process::Command::new(binary);
    command.env("LOG_FORMAT", "json").stdout(std::process::Stdio::piped()).kill_on_drop(true);
    // Processes started side by side must not fight over the default metrics ports.
    for prefix in ["CATALOG", "INVENTORY", "RESERVATION"] {
        command.env(format!("{prefix}_METRICS_ADDR"), "127.0.0.1:0");
    }
    command.env("CATALOG_SERVICE_KEY", keys::CATALOG).env("RESERVATION_SERVICE_KEY", keys::RESERVATION);
    for (key, value) in settings {
        command.env(key, value);
        if *key == "INVENTORY_DATABASE_URL" {
            provision_keys(value).await;
        }
    }
    let mut child = command.spawn().expect("the service binary starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let address = loop {
        let line = lines.next_line().await.expect("a log line").expect("the service logs its address");
        if line.contains(" serving\"") {
            let marker = "\"address\":\"";
            let start = line.find(marker).expect("an address field") + marker.len();
            let end = start + line[start..].find('"').expect("a closing quote");
            break line[start..end].to_owned();
        }
    };
    // Keep draining the log so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://{address}"))
}

/// Runs the Inventory on `database_url` at `address` until the returned task is aborted, which
/// drops it mid-flight as a crash would (connections cut, nothing drained). Binding retries while
/// the port is still held by a previous run.
pub async fn run_inventory_at(database_url: &str, address: SocketAddr) -> JoinHandle<Result<(), ServeError>> {
    let grpc = loop {
        match Port::bind(address) {
            Ok(port) => break port,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    };
    let listeners = Listeners { grpc, metrics: None };
    provision_keys(database_url).await;
    let env = Env::from_pairs([("INVENTORY_DATABASE_URL", database_url), ("INVENTORY_DB_MAX_CONNECTIONS", "8")]);
    let config = inventory::InventoryConfig::from_env(&env).expect("valid test configuration");
    tokio::spawn(inventory::run(config, listeners, std::future::pending()))
}

/// A TCP proxy to `upstream` that holds every chunk back by 600 ms while `slow` is set: an
/// Inventory that answers after the Catalog's deadline.
pub async fn slow_proxy(
    upstream: std::net::SocketAddr,
    slow: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::net::SocketAddr {
    let slow = move || slow.load(std::sync::atomic::Ordering::Relaxed);
    proxy(upstream, move || if slow() { std::time::Duration::from_millis(600) } else { std::time::Duration::ZERO })
        .await
}

/// A TCP proxy to `upstream` that holds every chunk back by `delay_ms` milliseconds (none at 0):
/// a peer paused for as long as a test needs.
pub async fn delayed_proxy(
    upstream: std::net::SocketAddr,
    delay_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> std::net::SocketAddr {
    proxy(upstream, move || std::time::Duration::from_millis(delay_ms.load(std::sync::atomic::Ordering::Relaxed))).await
}

async fn proxy(
    upstream: std::net::SocketAddr,
    delay: impl Fn() -> std::time::Duration + Clone + Send + Sync + 'static,
) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = tokio::net::TcpStream::connect(upstream).await else { continue };
            let (in_read, in_write) = inbound.into_split();
            let (out_read, out_write) = outbound.into_split();
            for (mut from, mut to) in [
                (
                    Box::new(in_read) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
                    Box::new(out_write) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
                ),
                (Box::new(out_read), Box::new(in_write)),
            ] {
                let delay = delay.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 16 * 1024];
                    while let Ok(read) = from.read(&mut buffer).await {
                        if read == 0 {
                            break;
                        }
                        let wait = delay();
                        if !wait.is_zero() {
                            tokio::time::sleep(wait).await;
                        }
                        if to.write_all(&buffer[..read]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        }
    });
    address
}
