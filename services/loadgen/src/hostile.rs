//! Hostile requests: for each of the worst shapes a request can take within the server's message
//! limit, the answer, the time to answer and the peak memory of the service that answered, beside a
//! normal request of the same RPC. Each shape meets a service process of its own, started fresh, so
//! that its peak memory is its own.

use std::path::Path;
use std::time::{Duration, Instant};

use fulfillment_proto::catalog::v1 as cat;
use fulfillment_proto::common::v1::Address;
use fulfillment_proto::inventory::v1 as inv;
use fulfillment_proto::reservation::v1 as res;
use prost::Message;
use prost_types::FieldMask;
use tonic::Code;

use crate::suite::Process;
use crate::workloads::Suite;

/// The servers' default `GRPC_MAX_MESSAGE_BYTES`, which every hostile request fills.
const LIMIT: usize = 1024 * 1024;

/// A service process's environment: the run's keys and settings with `pairs` added.
type Environment<'a> = &'a dyn Fn(&[(&str, &str)]) -> Vec<(String, String)>;

/// The service a shape is sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    Catalog,
    Inventory,
    Reservation,
}

/// One worst shape.
#[derive(Clone, Copy, Debug)]
enum Shape {
    LevelIds,
    ListedItemIds,
    WarehouseCountries,
    WarehouseMask,
    HoldLines,
    ItemHsCode,
    ListedSkuIds,
    SkuMetadata,
    SkuHsCode,
    SkuMask,
    ReservationItems,
    OrderItems,
}

impl Shape {
    const ALL: [Shape; 12] = [
        Shape::LevelIds,
        Shape::ListedItemIds,
        Shape::WarehouseCountries,
        Shape::WarehouseMask,
        Shape::HoldLines,
        Shape::ItemHsCode,
        Shape::ListedSkuIds,
        Shape::SkuMetadata,
        Shape::SkuHsCode,
        Shape::SkuMask,
        Shape::ReservationItems,
        Shape::OrderItems,
    ];

    fn describe(self) -> &'static str {
        match self {
            Shape::LevelIds => "GetInventoryLevels: empty item ids",
            Shape::ListedItemIds => "ListInventoryItems: empty ids",
            Shape::WarehouseCountries => "CreateWarehouse: ship-to countries `US,DE`",
            Shape::WarehouseMask => "UpdateWarehouse: one mask path repeated",
            Shape::HoldLines => "PlaceHold: empty lines",
            Shape::ItemHsCode => "CreateInventoryItem: an HS code of dots",
            Shape::ListedSkuIds => "ListSkus: empty ids",
            Shape::SkuMetadata => "CreateSku: metadata entries",
            Shape::SkuHsCode => "CreateSku: an HS code of dots",
            Shape::SkuMask => "UpdateSku: one mask path repeated",
            Shape::ReservationItems => "CreateReservation: empty items",
            Shape::OrderItems => "CreateFulfillmentOrder: empty items",
        }
    }

    fn service(self) -> Service {
        match self {
            Shape::LevelIds
            | Shape::ListedItemIds
            | Shape::WarehouseCountries
            | Shape::WarehouseMask
            | Shape::HoldLines
            | Shape::ItemHsCode => Service::Inventory,
            Shape::ListedSkuIds | Shape::SkuMetadata | Shape::SkuHsCode | Shape::SkuMask => Service::Catalog,
            Shape::ReservationItems | Shape::OrderItems => Service::Reservation,
        }
    }

    /// Sends the shape's normal request, or its worst one, answering the code, the bytes sent and
    /// the time from sending to the answer (the request is built before the clock starts).
    async fn send(self, suite: &Suite, worst: bool) -> (Code, usize, Duration) {
        let n = usize::from(worst);
        let (mut catalog, mut inventory, mut reservation) =
            (suite.catalog.clone(), suite.inventory.clone(), suite.reservation.clone());
        macro_rules! send {
            ($client:ident . $method:ident, $make:expr) => {{
                let make = $make;
                let request = if worst { largest(make) } else { make(n) };
                let bytes = request.encoded_len();
                let started = Instant::now();
                let answer = code($client.$method(request).await);
                (answer, bytes, started.elapsed())
            }};
        }
        match self {
            Shape::LevelIds => send!(inventory.get_inventory_levels, |n: usize| inv::GetInventoryLevelsRequest {
                inventory_item_ids: if n == 0 { vec!["bench-item".into()] } else { vec![String::new(); n] },
                ..Default::default()
            }),
            Shape::ListedItemIds => send!(inventory.list_inventory_items, |n: usize| inv::ListInventoryItemsRequest {
                ids: if n == 0 { vec!["bench-item".into()] } else { vec![String::new(); n] },
                ..Default::default()
            }),
            Shape::WarehouseCountries => send!(inventory.create_warehouse, |n: usize| inv::CreateWarehouseRequest {
                warehouse: Some(warehouse(if n == 0 { vec!["US".into()] } else { vec!["US,DE".into(); n] })),
            }),
            Shape::WarehouseMask => send!(inventory.update_warehouse, |n: usize| inv::UpdateWarehouseRequest {
                warehouse: Some(inv::Warehouse { name: "renamed".into(), ..warehouse(Vec::new()) }),
                update_mask: Some(FieldMask { paths: vec!["name".into(); n.max(1)] }),
            }),
            Shape::HoldLines => send!(inventory.place_hold, |n: usize| inv::PlaceHoldRequest {
                hold_id: "bench-hold".into(),
                lines: if n == 0 {
                    vec![inv::HoldRequestLine {
                        inventory_item_id: "bench-item".into(),
                        quantity: 1,
                        allow_oversell: None,
                    }]
                } else {
                    vec![inv::HoldRequestLine::default(); n]
                },
                ship_to_country: "US".into(),
                expire_time: Some(prost_types::Timestamp { seconds: chrono::Utc::now().timestamp() + 300, nanos: 0 }),
            }),
            Shape::ItemHsCode => send!(inventory.create_inventory_item, |n: usize| inv::CreateInventoryItemRequest {
                inventory_item: Some(inv::InventoryItem {
                    id: "bench-dots".into(),
                    hs_code: if n == 0 { "1006.20.4025".into() } else { ".".repeat(n) },
                    ..Default::default()
                }),
            }),
            Shape::ListedSkuIds => send!(catalog.list_skus, |n: usize| cat::ListSkusRequest {
                ids: if n == 0 { vec!["bench-sku".into()] } else { vec![String::new(); n] },
                ..Default::default()
            }),
            Shape::SkuMetadata => send!(catalog.create_sku, |n: usize| cat::CreateSkuRequest {
                sku: Some(cat::Sku {
                    metadata: (0..n.max(1)).map(|k| (format!("{k:x}"), String::new())).collect(),
                    ..sku()
                }),
            }),
            Shape::SkuHsCode => send!(catalog.create_sku, |n: usize| cat::CreateSkuRequest {
                sku: Some(cat::Sku { hs_code: if n == 0 { "1006.20.4025".into() } else { ".".repeat(n) }, ..sku() }),
            }),
            Shape::SkuMask => send!(catalog.update_sku, |n: usize| cat::UpdateSkuRequest {
                sku: Some(cat::Sku { name: "renamed".into(), ..sku() }),
                update_mask: Some(FieldMask { paths: vec!["name".into(); n.max(1)] }),
            }),
            Shape::ReservationItems => {
                send!(reservation.create_reservation, |n: usize| res::CreateReservationRequest {
                    reservation: Some(res::Reservation {
                        id: "bench-reservation".into(),
                        items: if n == 0 {
                            vec![res::ReservationItem {
                                inventory_item_id: "bench-item".into(),
                                quantity: 1,
                                allow_oversell: None,
                            }]
                        } else {
                            vec![res::ReservationItem::default(); n]
                        },
                        ship_to: Some(res::ShipTo {
                            address: Some(Address { country: "US".into(), ..Default::default() })
                        }),
                        ..Default::default()
                    }),
                })
            }
            Shape::OrderItems => {
                send!(reservation.create_fulfillment_order, |n: usize| res::CreateFulfillmentOrderRequest {
                    reservation_id: "bench-reservation".into(),
                    upstream_id: "bench-order".into(),
                    items: vec![res::ReservationItem::default(); n],
                })
            }
        }
    }
}

/// A call's answer as its code.
fn code<T>(result: Result<T, tonic::Status>) -> Code {
    result.map_or_else(|status| status.code(), |_| Code::Ok)
}

fn warehouse(ship_to_countries: Vec<String>) -> inv::Warehouse {
    inv::Warehouse {
        id: "bench-w".into(),
        name: "bench".into(),
        country: "US".into(),
        ship_to_countries,
        ..Default::default()
    }
}

fn sku() -> cat::Sku {
    cat::Sku {
        id: "bench-sku".into(),
        name: "bench".into(),
        eccn: "EAR99".into(),
        tax_code: "4323.310_A".into(),
        country_of_origin: "DE".into(),
        ..Default::default()
    }
}

/// `make(n)` with the largest `n` whose encoding fits [`LIMIT`].
fn largest<M: Message>(make: impl Fn(usize) -> M) -> M {
    let (empty, sample) = (make(0).encoded_len(), make(1_000).encoded_len());
    let per_element = (sample.saturating_sub(empty) as f64 / 1_000.0).max(0.001);
    // A few bytes spare: a request that takes the time at each call may encode longer the next time.
    let limit = LIMIT - 16;
    let mut n = (limit.saturating_sub(empty) as f64 / per_element) as usize;
    while n > 0 && make(n).encoded_len() > limit {
        n -= n / 100 + 1;
    }
    make(n)
}

/// Starts the service `shape` is for, fresh, with `env`; the others of `suite` stay as they are.
async fn fresh(
    shape: Shape,
    binaries: &Path,
    env: Environment<'_>,
    database: &str,
    inventory_url: &str,
) -> std::io::Result<Process> {
    match shape.service() {
        Service::Inventory => {
            Process::start(&binaries.join("inventory"), "INVENTORY", &env(&[("INVENTORY_DATABASE_URL", database)]))
                .await
        }
        Service::Catalog => {
            let pairs = [("CATALOG_DATABASE_URL", database), ("CATALOG_INVENTORY_URL", inventory_url)];
            Process::start(&binaries.join("catalog"), "CATALOG", &env(&pairs)).await
        }
        Service::Reservation => {
            let pairs = [("RESERVATION_DATABASE_URL", database), ("RESERVATION_INVENTORY_URL", inventory_url)];
            Process::start(&binaries.join("reservation"), "RESERVATION", &env(&pairs)).await
        }
    }
}

/// Measures every shape against fresh processes whose databases are SQLite files in `directory`,
/// the Catalog and the Reservation service checking keys at the Inventory at `inventory_url`,
/// and answers the report's section.
pub async fn measure(
    binaries: &Path,
    env: Environment<'_>,
    directory: &Path,
    inventory_url: &str,
    key: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut text = String::from(
        "\n## Hostile requests\n\nEach worst shape filled to the default `GRPC_MAX_MESSAGE_BYTES` (1 MiB), sent to a fresh \
         process of the service after one normal request of the same RPC; SQLite. Peak memory is the process's \
         VmHWM after the normal request and after the hostile one.\n\n\
         | shape | normal: answer, ms | hostile: bytes, answer, ms | peak MiB: normal → hostile |\n\
         | --- | --- | --- | --- |\n",
    );
    for (index, shape) in Shape::ALL.into_iter().enumerate() {
        let database = format!("sqlite://{}/hostile-{index}.db", directory.display());
        let process = fresh(shape, binaries, env, &database, inventory_url).await?;
        let (catalog, inventory, reservation) = match shape.service() {
            Service::Catalog => (process.url.as_str(), inventory_url, inventory_url),
            Service::Inventory => (inventory_url, process.url.as_str(), inventory_url),
            Service::Reservation => (inventory_url, inventory_url, process.url.as_str()),
        };
        let suite = Suite::connect(catalog, inventory, reservation, key).await?;
        let (normal, _, normal_took) = shape.send(&suite, false).await;
        let before = process.peak_memory_mib();
        let (hostile, bytes, hostile_took) = shape.send(&suite, true).await;
        let after = process.peak_memory_mib();
        process.stop().await;
        let ms = |took: Duration| took.as_secs_f64() * 1000.0;
        let mib = |value: Option<f64>| value.map_or("n/a".to_owned(), |m| format!("{m:.1}"));
        text.push_str(&format!(
            "| {} | {normal:?}, {:.2} | {bytes}, {hostile:?}, {:.2} | {} → {} |\n",
            shape.describe(),
            ms(normal_took),
            ms(hostile_took),
            mib(before),
            mib(after),
        ));
    }
    eprint!("{text}");
    Ok(text)
}
