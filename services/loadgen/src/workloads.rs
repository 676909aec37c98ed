//! The workloads, each a loop of one kind of operation through the suite's gRPC clients, and the
//! driver that runs a loop on many workers for a while.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fulfillment_proto::catalog::v1 as cat;
use fulfillment_proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use fulfillment_proto::common::v1::Address;
use fulfillment_proto::inventory::v1 as inv;
use fulfillment_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use fulfillment_proto::reservation::v1 as res;
use fulfillment_proto::reservation::v1::reservation_service_client::ReservationServiceClient;
use tonic::Code;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::stats::{Run, Worker};

/// A channel whose calls carry the API key.
pub type Keyed = InterceptedService<Channel, Bearer>;

/// Adds `authorization: Bearer <key>` to every call.
#[derive(Clone, Debug)]
pub struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// Items the spread workloads choose from.
pub const SPREAD_ITEMS: usize = 200;
/// Units of every item: more than any run takes.
const UNITS: i64 = 1_000_000_000;

/// Which workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// (a) Reservations spread over many items.
    Spread,
    /// (b) Every client reserving the same hot item.
    Hot,
    /// (c) Managed SKU creation, through the saga.
    Sku,
    /// (d) A reservation, then its fulfillment order.
    Fulfill,
    /// (e) Inventory levels of 100 items per call.
    Levels,
    /// (f) Holds on the same item, placed at the Inventory directly.
    HotHold,
}

impl Workload {
    /// All of them, in the report's order.
    pub const ALL: [Workload; 6] =
        [Workload::Spread, Workload::Hot, Workload::Sku, Workload::Fulfill, Workload::Levels, Workload::HotHold];

    /// What one operation is.
    pub fn describe(self) -> &'static str {
        match self {
            Workload::Spread => "(a) CreateReservation, 1 unit of one of 200 items",
            Workload::Hot => "(b) CreateReservation, 1 unit of the same item",
            Workload::Sku => "(c) CreateSku, managed: SKU and inventory item through the saga",
            Workload::Fulfill => "(d) CreateReservation then CreateFulfillmentOrder",
            Workload::Levels => "(e) GetInventoryLevels for 100 items",
            Workload::HotHold => "(f) PlaceHold at the Inventory, 1 unit of the same item",
        }
    }
}

/// Clients of a running suite.
#[derive(Clone, Debug)]
pub struct Suite {
    /// The Catalog.
    pub catalog: CatalogServiceClient<Keyed>,
    /// The Inventory.
    pub inventory: InventoryServiceClient<Keyed>,
    /// The Reservation service.
    pub reservation: ReservationServiceClient<Keyed>,
}

impl Suite {
    /// Connects to the three services, calling with the API key `key`.
    pub async fn connect(
        catalog: &str,
        inventory: &str,
        reservation: &str,
        key: &str,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let bearer = Bearer(format!("Bearer {key}").parse()?);
        let channel = |url: &str| {
            Channel::from_shared(url.to_owned()).map(|e| InterceptedService::new(e.connect_lazy(), bearer.clone()))
        };
        Ok(Self {
            catalog: CatalogServiceClient::new(channel(catalog)?),
            inventory: InventoryServiceClient::new(channel(inventory)?),
            reservation: ReservationServiceClient::new(channel(reservation)?),
        })
    }

    /// A warehouse, the hot item and the spread items, each with plenty of stock, and the
    /// manufacturer part managed SKUs use. Safe to run twice.
    pub async fn prepare(&self) -> Result<(), tonic::Status> {
        let mut inventory = self.inventory.clone();
        let warehouse = inv::Warehouse {
            id: "bench-w".into(),
            name: "bench".into(),
            country: "US".into(),
            ships_everywhere: true,
            ..Default::default()
        };
        ignore_exists(inventory.create_warehouse(inv::CreateWarehouseRequest { warehouse: Some(warehouse) }).await)?;
        for id in std::iter::once("hot".to_owned()).chain((0..SPREAD_ITEMS).map(spread_item)) {
            let item = inv::InventoryItem { id: id.clone(), allow_oversell: Some(false), ..Default::default() };
            ignore_exists(
                inventory.create_inventory_item(inv::CreateInventoryItemRequest { inventory_item: Some(item) }).await,
            )?;
            let receive = inv::AdjustStockRequest {
                inventory_item_id: id.clone(),
                warehouse_id: "bench-w".into(),
                kind: inv::StockChangeKind::Receive.into(),
                quantity: UNITS,
                reason: "benchmark stock".into(),
                idempotency_key: format!("bench-stock-{id}"),
            };
            inventory.adjust_stock(receive).await?;
        }
        let part =
            cat::RegisterManufacturerPartRequest { manufacturer_id: "20013".into(), part_number: "BENCHPART".into() };
        ignore_exists(self.catalog.clone().register_manufacturer_part(part).await)?;
        Ok(())
    }

    /// `count` more warehouses that ship only to Germany, none of the workloads' country: a hold
    /// for the United States should not notice them.
    pub async fn add_foreign_warehouses(&self, count: usize) -> Result<(), tonic::Status> {
        let mut inventory = self.inventory.clone();
        for n in 0..count {
            let warehouse = inv::Warehouse {
                id: format!("bench-de-{n}"),
                name: "bench, Germany only".into(),
                country: "DE".into(),
                ship_to_countries: vec!["DE".into()],
                ..Default::default()
            };
            ignore_exists(
                inventory.create_warehouse(inv::CreateWarehouseRequest { warehouse: Some(warehouse) }).await,
            )?;
        }
        Ok(())
    }

    /// One operation of `workload`; `key` makes its ids unique.
    pub async fn operate(&mut self, workload: Workload, key: &str, n: u64) -> Result<(), Code> {
        self.operate_status(workload, key, n).await.map_err(|status| status.code())
    }

    /// One operation of `workload`, answering the whole status of a failure.
    pub async fn operate_status(&mut self, workload: Workload, key: &str, n: u64) -> Result<(), tonic::Status> {
        let code = |status: tonic::Status| status;
        match workload {
            Workload::Spread => {
                let item = spread_item((n as usize).wrapping_mul(7919) % SPREAD_ITEMS);
                self.reserve(key, &item).await.map(drop)
            }
            Workload::Hot => self.reserve(key, "hot").await.map(drop),
            Workload::Sku => {
                let sku = cat::Sku {
                    id: key.to_owned(),
                    name: "Benchmark SKU".into(),
                    eccn: "EAR99".into(),
                    tax_code: "4323.310_A".into(),
                    country_of_origin: "DE".into(),
                    part_number: "BENCHPART".into(),
                    manufacturer_id: "20013".into(),
                    managed_fulfillment: "DRGlobalFulfillment".into(),
                    ..Default::default()
                };
                self.catalog.create_sku(cat::CreateSkuRequest { sku: Some(sku) }).await.map(drop).map_err(code)
            }
            Workload::Fulfill => {
                let item = spread_item((n as usize).wrapping_mul(7919) % SPREAD_ITEMS);
                self.reserve(key, &item).await?;
                let order = res::CreateFulfillmentOrderRequest {
                    reservation_id: key.to_owned(),
                    upstream_id: format!("order-{key}"),
                    items: Vec::new(),
                };
                self.reservation.create_fulfillment_order(order).await.map(drop).map_err(code)
            }
            Workload::Levels => {
                let first = (n as usize) % SPREAD_ITEMS;
                let ids = (0..100).map(|i| spread_item((first + i) % SPREAD_ITEMS)).collect();
                let request = inv::GetInventoryLevelsRequest { inventory_item_ids: ids, ..Default::default() };
                self.inventory.get_inventory_levels(request).await.map(drop).map_err(code)
            }
            Workload::HotHold => {
                let expire = std::time::SystemTime::now() + Duration::from_secs(3600);
                let request = inv::PlaceHoldRequest {
                    hold_id: key.to_owned(),
                    lines: vec![inv::HoldRequestLine {
                        inventory_item_id: "hot".into(),
                        quantity: 1,
                        allow_oversell: None,
                    }],
                    ship_to_country: "US".into(),
                    expire_time: Some(expire.into()),
                };
                self.inventory.place_hold(request).await.map(drop).map_err(code)
            }
        }
    }

    async fn reserve(&mut self, id: &str, item: &str) -> Result<(), tonic::Status> {
        let reservation = res::Reservation {
            id: id.to_owned(),
            items: vec![res::ReservationItem { inventory_item_id: item.to_owned(), quantity: 1, allow_oversell: None }],
            ship_to: Some(res::ShipTo { address: Some(Address { country: "US".into(), ..Default::default() }) }),
            expires_in_seconds: 3600,
            ..Default::default()
        };
        let request = res::CreateReservationRequest { reservation: Some(reservation) };
        self.reservation.create_reservation(request).await.map(drop)
    }
}

/// The id of a spread item.
pub fn spread_item(n: usize) -> String {
    format!("item-{n:04}")
}

fn ignore_exists<T>(result: Result<T, tonic::Status>) -> Result<(), tonic::Status> {
    match result {
        Ok(_) => Ok(()),
        Err(status) if status.code() == Code::AlreadyExists => Ok(()),
        Err(status) => Err(status),
    }
}

/// Runs `operation` on `concurrency` workers for `duration`: each worker calls it again as soon as
/// the last call returns. The operation gets the worker's number and a counter.
pub async fn drive<Op, Fut>(concurrency: usize, duration: Duration, operation: Op) -> Run
where
    Op: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Code>> + Send,
{
    let operation = Arc::new(operation);
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let operation = operation.clone();
            tokio::spawn(async move {
                let mut recorded = Worker::default();
                let mut n = 0;
                while Instant::now() < deadline {
                    let began = Instant::now();
                    let outcome = operation(worker, n).await;
                    recorded.record(began.elapsed(), outcome);
                    n += 1;
                }
                recorded
            })
        })
        .collect();
    let mut recorded = Vec::with_capacity(workers.len());
    for worker in workers {
        if let Ok(worker) = worker.await {
            recorded.push(worker);
        }
    }
    Run::collect(started.elapsed(), recorded)
}

/// Runs `workload` against `suite`; ids start with `run` so runs never collide.
pub async fn run_workload(suite: &Suite, workload: Workload, concurrency: usize, duration: Duration, run: &str) -> Run {
    run_spread_over(std::slice::from_ref(suite), workload, concurrency, duration, run).await
}

/// Runs `workload` with the workers spread over `suites` (replicas of the services), worker `w`
/// calling `suites[w % len]`.
pub async fn run_spread_over(
    suites: &[Suite],
    workload: Workload,
    concurrency: usize,
    duration: Duration,
    run: &str,
) -> Run {
    let (suites, run) = (suites.to_vec(), run.to_owned());
    drive(concurrency, duration, move |worker, n| {
        let mut suite = suites[worker % suites.len().max(1)].clone();
        let key = format!("{run}-{worker}-{n}");
        async move { suite.operate(workload, &key, n).await }
    })
    .await
}

/// What an open-loop run measured: calls start on schedule whatever the answers, so a slow answer
/// cannot hold the next call back (no coordinated omission). Latencies count from the scheduled
/// start.
#[derive(Debug, Default)]
pub struct OpenRun {
    /// Successes, their latencies, and the errors by code.
    pub run: Run,
    /// The latency of every RESOURCE_EXHAUSTED answer, in microseconds, sorted.
    pub refusals: Vec<u64>,
    /// How many RESOURCE_EXHAUSTED answers carried a RetryInfo.
    pub refusals_with_retry_info: usize,
}

impl OpenRun {
    /// The refusals' latency at quantile `q`, in milliseconds.
    pub fn refusal_percentile(&self, q: f64) -> f64 {
        if self.refusals.is_empty() {
            return 0.0;
        }
        let rank = ((self.refusals.len() - 1) as f64 * q).round() as usize;
        self.refusals[rank] as f64 / 1000.0
    }
}

/// Connections the open-loop driver spreads its calls over, so that a connection's stream limit
/// does not queue calls on the client instead of the server refusing them.
pub const OPEN_LOOP_CONNECTIONS: usize = 8;

/// Runs `workload` open-loop at `rate` calls per second for `duration`.
pub async fn run_open_loop(suites: &[Suite], workload: Workload, rate: f64, duration: Duration, run: &str) -> OpenRun {
    use tonic_types::StatusExt;

    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let started = tokio::time::Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    let mut n: u64 = 0;
    loop {
        let scheduled = started + interval.mul_f64(n as f64);
        if scheduled >= started + duration {
            break;
        }
        tokio::time::sleep_until(scheduled).await;
        let mut suite = suites[n as usize % suites.len().max(1)].clone();
        let key = format!("{run}-{n}");
        calls.spawn(async move {
            let outcome = suite.operate_status(workload, &key, n).await;
            (scheduled.elapsed(), outcome)
        });
        n += 1;
    }
    let mut recorded = Worker::default();
    let mut open = OpenRun::default();
    while let Some(finished) = calls.join_next().await {
        let Ok((took, outcome)) = finished else { continue };
        if let Err(status) = &outcome
            && status.code() == Code::ResourceExhausted
        {
            open.refusals.push(took.as_micros() as u64);
            open.refusals_with_retry_info += usize::from(status.get_details_retry_info().is_some());
        }
        recorded.record(took, outcome.map_err(|status| status.code()));
    }
    open.refusals.sort_unstable();
    open.run = Run::collect(started.elapsed(), vec![recorded]);
    open
}
