//! The suite under test: its three services started on SQLite, the records the generated ids name,
//! calls with raw bodies, and snapshots of everything a client can read.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fulfillment_proto::catalog::v1 as catalog;
use fulfillment_proto::inventory::v1 as inventory;
use fulfillment_proto::reservation::v1 as reservation;
use futures::future::join_all;
use prost::Message;
use prost::bytes::{Buf, BufMut};
use prost_reflect::{DynamicMessage, ServiceDescriptor, Value};
use suite_tests::{Backend, RunningService};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::requests::{Fixtures, now_seconds, render, strings_named};
use crate::{CALL_TIMEOUT, Target};

/// Adds the metadata every request carries.
/// Every call carries the harness's live key, which every service the harness starts accepts.
fn authorize<T>(request: &mut tonic::Request<T>, _service: &suite_tests::RunningService) {
    let value = format!("Bearer {}", suite_tests::keys::LIVE).parse().expect("a header value");
    request.metadata_mut().insert("authorization", value);
}

fn authorized<T>(message: T, service: &RunningService) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    authorize(&mut request, service);
    request
}

/// The Catalog, the Inventory and the Reservation service, in that order, the last two using the
/// Inventory.
pub(crate) struct Suite {
    hosts: [RunningService; 3],
    channels: [Channel; 3],
    /// The List RPCs, whose every page goes into each snapshot.
    pub(crate) listings: Vec<Target>,
    /// How many snapshots were taken, and the time they took.
    pub(crate) snapshots: Cell<(u32, Duration)>,
}

const CATALOG: usize = 0;
const INVENTORY: usize = 1;
const RESERVATION: usize = 2;

/// Everything a client can read of the suite's state, one rendered answer per read.
pub(crate) type Snapshot = BTreeMap<String, String>;

impl Suite {
    pub(crate) async fn start() -> Self {
        let (inventory, _) = suite_tests::Spawn::on(Backend::Sqlite).inventory().await;
        let (catalog, _) = suite_tests::Spawn::on(Backend::Sqlite).catalog(inventory.address).await;
        // A reservation that asks for no expiry gets the default one, which must not lapse during
        // the run either (see `integer_strategy`).
        let settings = [("RESERVATION_DEFAULT_EXPIRES_IN_SECONDS", "86400")];
        let (reservation, _) =
            suite_tests::Spawn::on(Backend::Sqlite).with(&settings).reservation(inventory.address).await;
        let channels = [catalog.channel().await, inventory.channel().await, reservation.channel().await];
        Self { hosts: [catalog, inventory, reservation], channels, listings: Vec::new(), snapshots: Cell::default() }
    }

    /// The server whose health service reports `service` as serving.
    pub(crate) async fn host_of(&self, service: &ServiceDescriptor) -> Option<usize> {
        for (host, running) in self.hosts.iter().enumerate() {
            let mut health = HealthClient::new(self.channels[host].clone());
            let request = authorized(HealthCheckRequest { service: service.full_name().to_owned() }, running);
            if let Ok(answer) = health.check(request).await
                && answer.into_inner().status() == ServingStatus::Serving
            {
                return Some(host);
            }
        }
        None
    }

    fn catalog(&self) -> catalog::catalog_service_client::CatalogServiceClient<Channel> {
        catalog::catalog_service_client::CatalogServiceClient::new(self.channels[CATALOG].clone())
    }

    fn inventory(&self) -> inventory::inventory_service_client::InventoryServiceClient<Channel> {
        inventory::inventory_service_client::InventoryServiceClient::new(self.channels[INVENTORY].clone())
    }

    fn reservation(&self) -> reservation::reservation_service_client::ReservationServiceClient<Channel> {
        reservation::reservation_service_client::ReservationServiceClient::new(self.channels[RESERVATION].clone())
    }

    /// Creates, again where an earlier method removed them, the records the generated ids name: a
    /// warehouse `w` shipping everywhere with 100 of item `a`, a SKU `sku-1`, a managed SKU `sku-m`
    /// with its registered part; and a new reservation and hold for this round, since an earlier
    /// method may have closed the last ones for good. Their answers do not matter: most are
    /// ALREADY_EXISTS.
    pub(crate) async fn ensure_fixtures(&self, round: usize) -> Fixtures {
        let fixtures = Fixtures {
            reservation: format!("res-{round}"),
            lasting_reservation: "res-0".to_owned(),
            hold: format!("hold-{round}"),
        };
        let [catalog_service, inventory_service, reservation_service] = &self.hosts;
        let (mut inventory, mut catalog, mut reservation) = (self.inventory(), self.catalog(), self.reservation());
        let warehouse = inventory::Warehouse {
            id: "w".into(),
            name: "w".into(),
            country: "US".into(),
            ships_everywhere: true,
            ..Default::default()
        };
        let request = inventory::CreateWarehouseRequest { warehouse: Some(warehouse) };
        let _ = inventory.create_warehouse(authorized(request, inventory_service)).await;
        let item = inventory::InventoryItem { id: "a".into(), ..Default::default() };
        let request = inventory::CreateInventoryItemRequest { inventory_item: Some(item) };
        let _ = inventory.create_inventory_item(authorized(request, inventory_service)).await;
        let stock = inventory::AdjustStockRequest {
            inventory_item_id: "a".into(),
            warehouse_id: "w".into(),
            kind: inventory::StockChangeKind::Set.into(),
            quantity: 100,
            reason: "fixture".into(),
            idempotency_key: format!(
                "fixture-{}",
                SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos()
            ),
        };
        let _ = inventory.adjust_stock(authorized(stock, inventory_service)).await;
        let hold = inventory::PlaceHoldRequest {
            hold_id: fixtures.hold.clone(),
            lines: vec![inventory::HoldRequestLine {
                inventory_item_id: "a".into(),
                quantity: 1,
                allow_oversell: None,
            }],
            ship_to_country: "US".into(),
            expire_time: Some(prost_types::Timestamp { seconds: now_seconds() + 3 * 3600, nanos: 0 }),
        };
        let _ = inventory.place_hold(authorized(hold, inventory_service)).await;

        let part = catalog::RegisterManufacturerPartRequest {
            manufacturer_id: "20013".into(),
            part_number: "DEMOPARTNUMBER2".into(),
        };
        let _ = catalog.register_manufacturer_part(authorized(part, catalog_service)).await;
        let sku = catalog::Sku {
            id: "sku-1".into(),
            name: "Test Product".into(),
            eccn: "EAR99".into(),
            country_of_origin: "US".into(),
            tax_code: "4323.310_A".into(),
            part_number: "100-440-0.750-3434-A".into(),
            ..Default::default()
        };
        let _ = catalog.create_sku(authorized(catalog::CreateSkuRequest { sku: Some(sku) }, catalog_service)).await;
        let managed = catalog::Sku {
            id: "sku-m".into(),
            name: "Managed".into(),
            eccn: "EAR99".into(),
            country_of_origin: "DE".into(),
            tax_code: "4323.310_A".into(),
            manufacturer_id: "20013".into(),
            part_number: "DEMOPARTNUMBER2".into(),
            managed_fulfillment: "DRGlobalFulfillment".into(),
            ..Default::default()
        };
        let _ = catalog.create_sku(authorized(catalog::CreateSkuRequest { sku: Some(managed) }, catalog_service)).await;

        let address = fulfillment_proto::common::v1::Address { country: "US".into(), ..Default::default() };
        let fixture = reservation::Reservation {
            id: fixtures.reservation.clone(),
            items: vec![reservation::ReservationItem {
                inventory_item_id: "a".into(),
                quantity: 1,
                allow_oversell: None,
            }],
            ship_to: Some(reservation::ShipTo { address: Some(address) }),
            expires_in_seconds: 3 * 3600,
            ..Default::default()
        };
        let request = reservation::CreateReservationRequest { reservation: Some(fixture) };
        let _ = reservation.create_reservation(authorized(request, reservation_service)).await;
        fixtures
    }

    /// Reads every page of every List RPC, then what no List RPC shows: the levels of every item,
    /// the stock ledger of every item with stock somewhere, the holds in `holds`, and the Catalog's
    /// consistency report. Other holds show in the levels as reserved units, and a reservation's
    /// hold also in its reservation.
    pub(crate) async fn snapshot(&self, holds: &BTreeSet<String>) -> Snapshot {
        let started = Instant::now();
        // The stock ledger is listed per item, below.
        let listings = self.listings.iter().filter(|t| t.method.name() != "ListStockMovements");
        let listed = join_all(listings.map(|listing| async move {
            let pages = self.every_page(listing, &[]).await;
            let mut ids = Vec::new();
            pages.iter().flatten().for_each(|page| strings_named(page, "id", &mut ids));
            (listing, ids, describe(pages.map(|pages| pages.iter().map(render).collect::<Vec<_>>())))
        }));
        let holds = join_all(holds.iter().map(|id| self.hold(id)));
        let consistency = async {
            let request = authorized(catalog::CheckConsistencyRequest::default(), &self.hosts[CATALOG]);
            let consistency = self.catalog().check_consistency(request).await;
            ("catalog consistency".to_owned(), describe(consistency.map(|r| r.into_inner().inconsistencies)))
        };
        let (listed, holds, consistency) = tokio::join!(listed, holds, consistency);
        let mut snapshot: Snapshot = holds.into_iter().flatten().chain([consistency]).collect();
        let mut item_ids: Vec<String> = Vec::new();
        for (listing, ids, pages) in listed {
            if listing.method.name() == "ListInventoryItems" {
                item_ids.extend(ids);
            }
            snapshot.insert(listing.name.clone(), pages);
        }

        let mut stocked = Vec::new();
        for (chunk, ids) in item_ids.chunks(500).enumerate() {
            let request =
                inventory::GetInventoryLevelsRequest { inventory_item_ids: ids.to_vec(), ..Default::default() };
            let levels = self.inventory().get_inventory_levels(authorized(request, &self.hosts[INVENTORY])).await;
            let levels = levels.map(|r| r.into_inner().levels);
            let with_stock = levels.iter().flatten().filter(|level| !level.warehouses.is_empty());
            stocked.extend(with_stock.map(|level| level.inventory_item_id.clone()));
            snapshot.insert(format!("inventory levels {chunk}"), describe(levels));
        }
        if let Some(listing) = self.listings.iter().find(|t| t.method.name() == "ListStockMovements") {
            let movements = join_all(stocked.iter().map(|id| async move {
                let pages = self.every_page(listing, &[("inventory_item_id", id)]).await;
                let pages = describe(pages.map(|pages| pages.iter().map(render).collect::<Vec<_>>()));
                (format!("{} of {id:?}", listing.name), pages)
            }));
            snapshot.extend(movements.await);
        }

        let (count, time) = self.snapshots.get();
        self.snapshots.set((count + 1, time + started.elapsed()));
        snapshot
    }

    /// The snapshot's entry for the hold `id`: none when there is no such hold.
    pub(crate) async fn hold(&self, id: &str) -> Option<(String, String)> {
        let request = inventory::GetHoldRequest { hold_id: id.to_owned() };
        let hold = self.inventory().get_hold(authorized(request, &self.hosts[INVENTORY])).await;
        match hold {
            Err(status) if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => None,
            hold => Some((format!("inventory hold {id:?}"), describe(hold.map(|r| r.into_inner().hold)))),
        }
    }

    /// Every page of a List RPC, 100 items a page, with the string fields `filters` set.
    async fn every_page(&self, listing: &Target, filters: &[(&str, &str)]) -> Result<Vec<DynamicMessage>, Status> {
        let input = listing.method.input();
        let mut pages = Vec::new();
        let mut token = String::new();
        loop {
            let mut request = DynamicMessage::new(input.clone());
            if input.get_field_by_name("page_size").is_some() {
                request.set_field_by_name("page_size", Value::I32(100));
            }
            if input.get_field_by_name("page_token").is_some() {
                request.set_field_by_name("page_token", Value::String(token.clone()));
            }
            for (field, value) in filters {
                request.set_field_by_name(field, Value::String((*value).to_owned()));
            }
            let answer = self.call(listing, request.encode_to_vec()).await?;
            let page = DynamicMessage::decode(listing.method.output(), answer.as_slice())
                .map_err(|e| Status::data_loss(format!("the page does not decode: {e}")))?;
            let next = page.get_field_by_name("next_page_token").and_then(|v| v.as_str().map(str::to_owned));
            pages.push(page);
            match next {
                Some(next) if !next.is_empty() && next != token && pages.len() < 1000 => token = next,
                _ => return Ok(pages),
            }
        }
    }

    /// Sends `body` to the method as it is; answers the response's bytes or the status.
    pub(crate) async fn call(&self, target: &Target, body: Vec<u8>) -> Result<Vec<u8>, Status> {
        let mut grpc = tonic::client::Grpc::new(self.channels[target.host].clone());
        grpc.ready().await.map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
        let path = http::uri::PathAndQuery::try_from(target.path.as_str()).expect("a valid path");
        let mut request = tonic::Request::new(body);
        authorize(&mut request, &self.hosts[target.host]);
        match tokio::time::timeout(CALL_TIMEOUT, grpc.unary(request, path, RawBytes)).await {
            Ok(answer) => answer.map(|response| response.into_inner()),
            Err(_) => Err(Status::deadline_exceeded(format!("no answer within {CALL_TIMEOUT:?}: the call hangs"))),
        }
    }

    /// Checks that every server still reports itself serving and answers its List RPCs.
    pub(crate) async fn check_still_serving(&self, findings: &mut Vec<String>) {
        for (host, running) in self.hosts.iter().enumerate() {
            let mut health = HealthClient::new(self.channels[host].clone());
            let answer = health.check(authorized(HealthCheckRequest { service: String::new() }, running)).await;
            match answer.map(|r| r.into_inner().status()) {
                Ok(ServingStatus::Serving) => {}
                other => findings.push(format!("server {host} no longer serves after the run: {other:?}")),
            }
        }
        for listing in &self.listings {
            // A listing that needs a filter answers INVALID_ARGUMENT, which is an answer too.
            if let Err(status) = self.every_page(listing, &[]).await
                && !matches!(status.code(), Code::InvalidArgument)
            {
                findings.push(format!(
                    "{} fails after the run: {:?} {}",
                    listing.name,
                    status.code(),
                    status.message()
                ));
            }
        }
    }
}

/// An answer as the snapshot keeps it: the value, or the code and message of the error (never the
/// status's metadata, which carries the time).
fn describe<T: fmt::Debug>(answer: Result<T, Status>) -> String {
    match answer {
        Ok(value) => format!("{value:?}"),
        Err(status) => format!("error {:?}: {}", status.code(), status.message()),
    }
}

/// Where two snapshots differ, key by key, with some context.
pub(crate) fn difference(before: &Snapshot, after: &Snapshot) -> String {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let mut lines = Vec::new();
    for key in keys {
        let (old, new) = (before.get(key), after.get(key));
        if old == new {
            continue;
        }
        let (old, new) = (old.map(String::as_str).unwrap_or("(absent)"), new.map(String::as_str).unwrap_or("(absent)"));
        let common = old.bytes().zip(new.bytes()).take_while(|(a, b)| a == b).count();
        let start = common.saturating_sub(120);
        let excerpt = |s: &str| s.get(start..).unwrap_or(s).chars().take(400).collect::<String>();
        lines.push(format!("  {key}:\n    before: …{}\n    after:  …{}", excerpt(old), excerpt(new)));
    }
    lines.join("\n")
}

/// A codec that sends and receives message bodies as they are.
#[derive(Clone, Copy, Debug, Default)]
struct RawBytes;

impl Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> Self::Encoder {
        RawBytes
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawBytes
    }
}

impl Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}
