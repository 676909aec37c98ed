//! Fuzzing of every RPC (issue 9): arbitrary bytes and arbitrary well-formed requests, generated
//! from the descriptor set, go to every method of every service. No input may be answered INTERNAL
//! or UNKNOWN, every answer must decode, the services must stay up, and a rejected request must leave
//! the suite's observable state as it was.
//!
//! Services are found in the descriptor set and their hosts by health check, so a new RPC or
//! service is fuzzed without a change here. Well-formed requests are built from the message
//! descriptors, half of them plausible (valid-looking values and the ids of records the test
//! creates) so that they reach the checks behind the first ones. "Nothing written" is checked
//! against snapshots of everything a client can read (every page of every List RPC, levels, stock
//! ledgers, holds, the consistency report), taken between batches of calls: a batch whose calls were
//! all rejected must leave the snapshot as it was. Writes no client can read (an idempotency key
//! remembered, say) are out of its sight.
//!
//! `FUZZ_CASES` sets the cases per method and kind (bytes, messages); `FUZZ_SEED` replays a run
//! (`random` draws one).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fulfillment_proto::catalog::v1 as catalog;
use fulfillment_proto::inventory::v1 as inventory;
use fulfillment_proto::reservation::v1 as reservation;
use futures::future::join_all;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::Union;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use prost::Message;
use prost::bytes::{Buf, BufMut, Bytes};
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, MethodDescriptor, ReflectMessage,
    ServiceDescriptor, Value,
};
use suite_tests::{Backend, RunningService};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Cases per method and kind unless `FUZZ_CASES` says otherwise: the binary stays well under a
/// minute in a debug build on two cores.
const DEFAULT_CASES: u32 = 32;
/// The seed unless `FUZZ_SEED` says otherwise.
const DEFAULT_SEED: u64 = 20261123;
/// The longest a call may take before it counts as a hang.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How deep generated messages nest; deeper message fields are left empty.
const MAX_DEPTH: usize = 4;
/// The most calls between two snapshots of the state; fewer after a batch that changed it.
const MAX_BATCH: usize = 64;
/// The most hold ids whose holds each snapshot reads (holds have no List RPC).
const MAX_TRACKED_HOLDS: usize = 64;
/// How many more runs of a method and kind follow one that found a failure.
const RUNS_AFTER_A_FAILURE: u32 = 4;
/// The services that must be in the contracts; any other `fulfillment.*` service is fuzzed too,
/// on whichever started server serves it.
const SERVICES: [&str; 3] = [
    "fulfillment.catalog.v1.CatalogService",
    "fulfillment.inventory.v1.InventoryService",
    "fulfillment.reservation.v1.ReservationService",
];

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_survives_arbitrary_input() {
    let started = Instant::now();
    let cases = std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_CASES);
    // A fixed seed by default, so that CI is repeatable; `FUZZ_SEED=random` explores.
    let seed = match std::env::var("FUZZ_SEED").ok().as_deref() {
        Some("random") => SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or_default(),
        Some(value) => value.parse().unwrap_or(DEFAULT_SEED),
        None => DEFAULT_SEED,
    };
    eprintln!("fuzz: seed {seed} (FUZZ_SEED={seed} replays this run), {cases} cases per method and kind");

    let pool = DescriptorPool::decode(fulfillment_proto::FILE_DESCRIPTOR_SET).expect("the descriptor set decodes");
    let services: Vec<ServiceDescriptor> =
        pool.services().filter(|s| s.package_name().starts_with("fulfillment.")).collect();
    for expected in SERVICES {
        assert!(services.iter().any(|s| s.full_name() == expected), "{expected} is missing from the contracts");
    }
    let mut suite = Suite::start().await;
    let mut ledger = Ledger::default();
    let mut targets = Vec::new();
    for service in &services {
        match suite.host_of(service).await {
            Some(host) => targets.extend(service.methods().map(|method| Target::new(&method, host))),
            None => ledger.findings.push(format!(
                "{}: no started server serves it, so its {} methods are not exercised",
                service.full_name(),
                service.methods().len()
            )),
        }
    }
    suite.listings = targets.iter().filter(|t| t.method.name().starts_with("List")).cloned().collect();

    let ledger = RefCell::new(ledger);
    tokio::task::block_in_place(|| {
        for (round, target) in targets.iter().enumerate() {
            fuzz_method(&suite, &ledger, target, round, cases, seed);
        }
    });

    let mut ledger = ledger.into_inner();
    for service in &services {
        for method in service.methods() {
            let name = format!("{}/{}", service.name(), method.name());
            let stats = ledger.stats.get(&name).cloned().unwrap_or_default();
            eprintln!("fuzz: {name}: {stats}");
            if stats.sent == 0 {
                ledger.findings.push(format!("{name}: never exercised"));
            } else if stats.rejected.get("Unauthenticated") == Some(&stats.sent) {
                ledger.findings.push(format!("{name}: every request was refused as unauthenticated (see `authorize`)"));
            }
        }
    }
    for failure in std::mem::take(&mut ledger.known).into_values() {
        let methods: Vec<String> = failure.methods.into_iter().collect();
        ledger.findings.push(format!(
            "{}\n  minimal input, sent to {}: {}\n  met in {} methods: {}",
            failure.reason,
            failure.first,
            failure.minimal,
            methods.len(),
            methods.join(", ")
        ));
    }
    suite.check_still_serving(&mut ledger.findings).await;
    let sent: u32 = ledger.stats.values().map(|s| s.sent).sum();
    let methods: usize = services.iter().map(|s| s.methods().len()).sum();
    let (snapshots, snapshot_time) = suite.snapshots.get();
    eprintln!(
        "fuzz: {sent} requests over {methods} methods in {:.1?}; {} rejections checked against a snapshot, {} in \
         batches that also changed the state; {snapshots} snapshots took {snapshot_time:.1?}",
        started.elapsed(),
        ledger.checked,
        ledger.unchecked,
    );
    assert!(
        ledger.findings.is_empty(),
        "{} findings (FUZZ_SEED={seed}):\n\n{}",
        ledger.findings.len(),
        ledger.findings.join("\n\n")
    );
}

/// Sends `cases` arbitrary byte strings and `cases` well-formed requests to one method, each kind
/// from its own proptest run, and settles the state checks at the end.
fn fuzz_method(suite: &Suite, ledger: &RefCell<Ledger>, target: &Target, round: usize, cases: u32, seed: u64) {
    assert!(
        !target.method.is_client_streaming() && !target.method.is_server_streaming(),
        "{}: streaming RPCs need a streaming call here",
        target.name
    );
    let runtime = tokio::runtime::Handle::current();
    let fixtures = runtime.block_on(suite.ensure_fixtures(round));
    {
        let mut ledger = ledger.borrow_mut();
        ledger.holds = BTreeSet::from([fixtures.hold.clone()]);
        ledger.baseline = runtime.block_on(suite.snapshot(&ledger.holds));
        ledger.pending.clear();
    }
    let names = field_names(&target.method.input());
    let shape = |plausible| Shape { plausible, field_names: &names, fixtures: &fixtures };
    let arbitrary = message_strategy(target.method.input(), 0, shape(false));
    let plausible = message_strategy(target.method.input(), 0, shape(true));
    let message = prop_oneof![arbitrary, plausible].boxed();
    let bytes = prop_oneof![proptest::collection::vec(any::<u8>(), 0..64), mutated(message.clone()), Just(Vec::new()),]
        .prop_map(Body::Bytes)
        .boxed();
    let kinds = [("bytes", bytes), ("messages", message.prop_map(Body::Message).boxed())];
    for (kind, strategy) in kinds {
        // Bytes and messages write at different rates: each kind starts with small batches.
        {
            let mut ledger = ledger.borrow_mut();
            runtime.block_on(ledger.settle(suite));
            ledger.batch = 4;
            ledger.settled = (0, 0);
        }
        // A failure ends a run; the next run (another seed) goes on past the failures already
        // found, so that one broken path does not hide the rest of the method.
        for attempt in 0..=RUNS_AFTER_A_FAILURE {
            let config = Config {
                cases,
                failure_persistence: None,
                max_shrink_iters: 128,
                rng_seed: RngSeed::Fixed(seed ^ fnv1a(&format!("{}/{kind}/{attempt}", target.name))),
                ..Config::default()
            };
            let outcome = TestRunner::new(config).run(&strategy, |body| {
                let mut ledger = ledger.borrow_mut();
                runtime.block_on(ledger.exercise(suite, target, body))
            });
            let mut ledger = ledger.borrow_mut();
            match outcome {
                Ok(()) => break,
                Err(TestError::Fail(reason, minimal)) => {
                    let signature = ledger.last_failure.take().unwrap_or_else(|| reason.to_string());
                    let failure = ledger.known.entry(signature).or_insert_with(|| Failure {
                        reason: reason.to_string(),
                        minimal: format!("{minimal:?}"),
                        first: format!("{} ({kind})", target.name),
                        methods: BTreeSet::new(),
                    });
                    failure.methods.insert(target.name.clone());
                }
                Err(TestError::Abort(reason)) => {
                    ledger.findings.push(format!("{} ({kind}): aborted: {reason}", target.name));
                    break;
                }
            }
        }
    }
    runtime.block_on(ledger.borrow_mut().settle(suite));
}

/// One method under test, and which of the suite's servers serves it.
#[derive(Clone)]
struct Target {
    path: String,
    name: String,
    method: MethodDescriptor,
    host: usize,
}

impl Target {
    fn new(method: &MethodDescriptor, host: usize) -> Self {
        let service = method.parent_service();
        Self {
            path: format!("/{}/{}", service.full_name(), method.name()),
            name: format!("{}/{}", service.name(), method.name()),
            method: method.clone(),
            host,
        }
    }
}

/// A request body: bytes as they come, or a well-formed message of the method's input type.
#[derive(Clone)]
enum Body {
    Bytes(Vec<u8>),
    Message(DynamicMessage),
}

impl Body {
    fn encode(&self) -> Vec<u8> {
        match self {
            Body::Bytes(bytes) => bytes.clone(),
            Body::Message(message) => message.encode_to_vec(),
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.encode();
        if let Body::Message(message) = self {
            write!(f, "{} ", render(message))?;
        }
        write!(f, "({} bytes: {})", bytes.len(), hex(&bytes))
    }
}

// ---------------------------------------------------------------------------------------------
// The suite and its state

/// The Catalog, the Inventory and the Reservation service, in that order, the last two using the
/// Inventory.
struct Suite {
    hosts: [RunningService; 3],
    channels: [Channel; 3],
    /// The List RPCs, whose every page goes into each snapshot.
    listings: Vec<Target>,
    /// How many snapshots were taken, and the time they took.
    snapshots: Cell<(u32, Duration)>,
}

const CATALOG: usize = 0;
const INVENTORY: usize = 1;
const RESERVATION: usize = 2;

/// Everything a client can read of the suite's state, one rendered answer per read.
type Snapshot = BTreeMap<String, String>;

impl Suite {
    async fn start() -> Self {
        let (inventory, _) = suite_tests::spawn_inventory(Backend::Sqlite).await;
        let (catalog, _) = suite_tests::spawn_catalog_with(Backend::Sqlite, inventory.address, &[]).await;
        // A reservation that asks for no expiry gets the default one, which must not lapse during
        // the run either (see `integer_strategy`).
        let settings = [("RESERVATION_DEFAULT_EXPIRES_IN_SECONDS", "86400")];
        let (reservation, _) = suite_tests::spawn_reservation(Backend::Sqlite, inventory.address, &settings).await;
        let channels = [catalog.channel().await, inventory.channel().await, reservation.channel().await];
        Self { hosts: [catalog, inventory, reservation], channels, listings: Vec::new(), snapshots: Cell::default() }
    }

    /// The server whose health service reports `service` as serving.
    async fn host_of(&self, service: &ServiceDescriptor) -> Option<usize> {
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
    async fn ensure_fixtures(&self, round: usize) -> Fixtures {
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
    async fn snapshot(&self, holds: &BTreeSet<String>) -> Snapshot {
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
            let request = authorized(catalog::CheckConsistencyRequest {}, &self.hosts[CATALOG]);
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
    async fn hold(&self, id: &str) -> Option<(String, String)> {
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
    async fn call(&self, target: &Target, body: Vec<u8>) -> Result<Vec<u8>, Status> {
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
    async fn check_still_serving(&self, findings: &mut Vec<String>) {
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
fn difference(before: &Snapshot, after: &Snapshot) -> String {
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

// ---------------------------------------------------------------------------------------------
// What was sent and what came of it

/// What was sent and what came of it: the answers, the failures, and the state checks.
#[derive(Default)]
struct Ledger {
    /// The state after the last settled batch.
    baseline: Snapshot,
    /// The calls since then.
    pending: Vec<Sent>,
    /// Calls per batch for the method being fuzzed: one after a batch that changed the state, then
    /// doubling while it stays as it was, up to about half the calls per change seen so far, so
    /// that few rejections share a batch with a write.
    batch: usize,
    /// The method's calls settled so far, and the batches among them that changed the state.
    settled: (usize, usize),
    /// The round's hold and the hold ids named in the method's requests, read in every snapshot.
    holds: BTreeSet<String>,
    stats: BTreeMap<String, Stats>,
    findings: Vec<String>,
    /// Rejections in batches whose state was compared and found unchanged.
    checked: u32,
    /// Rejections in batches where some call was accepted and the state changed: not attributable.
    unchecked: u32,
    /// Failures found, by signature (see [`Ledger::exercise`]): met again, they no longer fail a
    /// case, so that one cause is shrunk once and the runs go on to find others.
    known: BTreeMap<String, Failure>,
    /// The signature of the failure the last failing case met.
    last_failure: Option<String>,
}

/// An answer no input may get.
struct Failure {
    reason: String,
    /// The smallest input found that gets it, and where it was sent.
    minimal: String,
    first: String,
    /// Every method that gave it.
    methods: BTreeSet<String>,
}

struct Sent {
    target: Target,
    body: Body,
    /// The refusal's code and message, or `None` when the call was accepted.
    rejected: Option<(Code, String)>,
}

#[derive(Clone, Default)]
struct Stats {
    sent: u32,
    accepted: u32,
    rejected: BTreeMap<String, u32>,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} sent, {} accepted", self.sent, self.accepted)?;
        for (code, count) in &self.rejected {
            write!(f, ", {count} {code}")?;
        }
        Ok(())
    }
}

impl Ledger {
    /// Sends one case, records it, and fails the case on an answer no input may get.
    async fn exercise(&mut self, suite: &Suite, target: &Target, body: Body) -> Result<(), TestCaseError> {
        if self.pending.len() >= self.batch.max(1) {
            self.settle(suite).await;
        }
        self.track_holds(suite, target, &body).await;
        let answer = suite.call(target, body.encode()).await;
        let stats = self.stats.entry(target.name.clone()).or_default();
        stats.sent += 1;
        let rejected = match &answer {
            Ok(_) => {
                stats.accepted += 1;
                None
            }
            Err(status) => {
                *stats.rejected.entry(format!("{:?}", status.code())).or_default() += 1;
                Some((status.code(), status.message().to_owned()))
            }
        };
        self.pending.push(Sent { target: target.clone(), body, rejected });
        let failure = match answer {
            Ok(bytes) => match DynamicMessage::decode(target.method.output(), bytes.as_slice()) {
                Ok(_) => return Ok(()),
                Err(error) => ("an answer that does not decode".to_owned(), error.to_string()),
            },
            Err(status) => match status.code() {
                Code::Internal | Code::Unknown | Code::Unimplemented | Code::DataLoss | Code::DeadlineExceeded => {
                    (format!("{:?}", status.code()), status.message().to_owned())
                }
                _ => return Ok(()),
            },
        };
        // The message up to its first ':' tells one cause from another ("failed to decode Protobuf
        // message: ..." is one cause, whatever the bytes). A body that does not decode fails
        // before any handler runs, so that cause is the same in every method; any other is taken
        // to be the method's own.
        let cause = failure.1.split(':').next().unwrap_or_default().chars().take(80).collect::<String>();
        let scope = if cause.starts_with("failed to decode") { "every method" } else { target.name.as_str() };
        let signature = format!("{scope}: {} {cause}", failure.0);
        if let Some(known) = self.known.get_mut(&signature) {
            known.methods.insert(target.name.clone());
            return Ok(());
        }
        self.last_failure = Some(signature);
        Err(TestCaseError::fail(format!("answered {}: {}", failure.0, failure.1)))
    }

    /// Compares the state after the pending calls with the baseline: unchanged state checks every
    /// rejection among them; a change with no call accepted is a finding, which replaying the calls
    /// one by one narrows down.
    async fn settle(&mut self, suite: &Suite) {
        if self.pending.is_empty() {
            return;
        }
        let mut after = suite.snapshot(&self.holds).await;
        let rejected = self.pending.iter().filter(|s| s.rejected.is_some()).count() as u32;
        let (calls, changes) = self.settled;
        self.settled = (calls + self.pending.len(), changes + usize::from(after != self.baseline));
        if after == self.baseline {
            self.checked += rejected;
            let limit = if changes == 0 { MAX_BATCH } else { calls / (2 * changes) };
            self.batch = (self.batch * 2).min(limit).clamp(1, MAX_BATCH);
        } else if self.pending.iter().any(|s| s.rejected.is_none()) {
            self.unchecked += rejected;
            self.batch = 1;
        } else {
            let mut finding = format!(
                "the state changed over {} calls that were all rejected:\n{}\n  the calls:",
                self.pending.len(),
                difference(&self.baseline, &after)
            );
            for sent in &self.pending {
                let answer = match &sent.rejected {
                    Some((code, message)) => format!("{code:?} \"{message}\""),
                    None => "accepted".to_owned(),
                };
                finding.push_str(&format!("\n    {} {answer}: {:?}", sent.target.name, sent.body));
            }
            finding.push_str(&self.replay(suite).await);
            self.findings.push(finding);
            self.batch = 1;
            after = suite.snapshot(&self.holds).await;
        }
        self.pending.clear();
        self.baseline = after;
    }

    /// Sends each pending rejected call again between two snapshots; answers the ones that are
    /// rejected again and still change the state.
    async fn replay(&self, suite: &Suite) -> String {
        let mut found = String::new();
        for sent in self.pending.iter().filter(|s| s.rejected.is_some()) {
            let before = suite.snapshot(&self.holds).await;
            let answer = suite.call(&sent.target, sent.body.encode()).await;
            let after = suite.snapshot(&self.holds).await;
            if let (Err(status), false) = (&answer, before == after) {
                found.push_str(&format!(
                    "\n  replayed alone, {} {:?} still writes: {:?}\n{}",
                    sent.target.name,
                    status.code(),
                    sent.body,
                    difference(&before, &after)
                ));
            }
        }
        if found.is_empty() { "\n  (no single call reproduces it when replayed alone)".to_owned() } else { found }
    }

    /// Remembers the hold ids a request names, so that snapshots read those holds, and adds the
    /// holds as they are before the request to the baseline.
    async fn track_holds(&mut self, suite: &Suite, target: &Target, body: &Body) {
        let message = match body {
            Body::Message(message) => Some(message.clone()),
            Body::Bytes(bytes) => DynamicMessage::decode(target.method.input(), bytes.as_slice()).ok(),
        };
        let mut ids = Vec::new();
        if let Some(message) = message {
            strings_named(&message, "hold_id", &mut ids);
        }
        for id in ids {
            if self.holds.len() < MAX_TRACKED_HOLDS && id.len() <= 255 && !self.holds.contains(&id) {
                self.baseline.extend(suite.hold(&id).await);
                self.holds.insert(id);
            }
        }
    }
}

/// Every string value of a field called `name`, anywhere in `message`.
fn strings_named(message: &DynamicMessage, name: &str, out: &mut Vec<String>) {
    fn visit(value: &Value, named: bool, name: &str, out: &mut Vec<String>) {
        match value {
            Value::String(s) if named => out.push(s.clone()),
            Value::Message(m) => strings_named(m, name, out),
            Value::List(values) => values.iter().for_each(|v| visit(v, named, name, out)),
            Value::Map(entries) => entries.values().for_each(|v| visit(v, false, name, out)),
            _ => {}
        }
    }
    for (field, value) in message.fields() {
        visit(value, field.name() == name, name, out);
    }
}

// ---------------------------------------------------------------------------------------------
// Generation, driven by the descriptors

/// How a request is generated: `plausible` requests draw every value from valid-looking ones, so
/// that they pass the first checks and reach the deeper ones; arbitrary requests mix in near misses,
/// hostile text, limits and random values.
#[derive(Clone, Copy)]
struct Shape<'a> {
    plausible: bool,
    /// Every field name of the request, the values of field-mask paths.
    field_names: &'a [String],
    fixtures: &'a Fixtures,
}

/// The ids of the round's reservation and hold (see [`Suite::ensure_fixtures`]), and of the first
/// round's reservation, which every method may change, so that methods meet what others did to it.
struct Fixtures {
    reservation: String,
    lasting_reservation: String,
    hold: String,
}

/// Valid values, then near misses, for fields of these names (matched as the whole name, a
/// `_`-separated prefix or suffix). The ids are those of [`Suite::ensure_fixtures`], and new ones.
const DOMAIN_VALUES: &[(&str, &[&str], &[&str])] = &[
    ("country", &["US", "DE"], &["KP", "ZZ", "us", "USA"]),
    ("eccn", &["EAR99", "5A992.c"], &["9Z999", "ear99"]),
    ("tax_code", &["4323.310_A", "4512.100"], &["0000"]),
    ("hs_code", &["1006.20.4025", "1006.20"], &["10.06"]),
    ("weight_unit", &["oz", "kg"], &["stone"]),
    ("managed_fulfillment", &["DRGlobalFulfillment"], &["Other"]),
    ("manufacturer_id", &["20013"], &["99999"]),
    ("part_number", &["DEMOPARTNUMBER2", "100-440-0.750-3434-A"], &[]),
    ("currency", &["USD", "EUR"], &["XXX", "usd"]),
    ("warehouse_id", &["w"], &["w2"]),
    ("inventory_item_id", &["a", "sku-m"], &["b"]),
    ("hold_id", &[], &["h2"]),
    ("reservation_id", &[], &["r2"]),
    ("image", &["https://example.com/p.png"], &["not a url", "javascript:alert(1)"]),
    ("url", &["https://example.com/p"], &["ftp://x", "http://"]),
    ("page_token", &[""], &["bm9wZQ", "!!!", "0"]),
    ("service", &["catalog", "reservation"], &["inventory"]),
    ("id", &["new-1", "new-2"], &["a", "w", "sku-1", "sku-m"]),
];

/// Ids of the fixtures and codes that are valid somewhere, for any string field.
const COMMON_VALUES: &[&str] = &["a", "w", "sku-1", "sku-m", "US", "EAR99", "x"];

/// Text that has broken services: NUL, control characters, non-ASCII, text beyond every limit.
fn hostile_values() -> Vec<String> {
    let mut values: Vec<String> = [
        "a\0b",
        "\0",
        "tab\there",
        "new\nline",
        "\u{7f}\u{1b}[2J",
        "ünïcødé-☃",
        "🦀",
        "\u{202e}rtl",
        " ",
        " a ",
        "a/b",
        "../..",
        "'; DROP TABLE skus; --",
        "%s%n{}",
        "KP",
        "ZZ",
    ]
    .map(str::to_owned)
    .into();
    values.extend(["x".repeat(256), "x".repeat(5000), "é".repeat(300)]);
    values
}

/// The valid values and the near misses for the field `name` of the message `parent`. An `id`
/// names a record of the kind its message is about (`GetWarehouseRequest.id` a warehouse). The
/// reservations' ids are also near misses for a hold: closing a reservation's hold behind the
/// Reservation service's back.
fn domain_values(name: &str, parent: &str, fixtures: &Fixtures) -> (Vec<String>, Vec<String>) {
    let singular = match name.strip_suffix("_ids") {
        Some(prefix) => format!("{prefix}_id"),
        None if name == "ids" => "id".to_owned(),
        None => name.to_owned(),
    };
    let names = |key: &str| {
        singular == key || singular.ends_with(&format!("_{key}")) || singular.starts_with(&format!("{key}_"))
    };
    let owned = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>();
    let (mut valid, mut near) = DOMAIN_VALUES
        .iter()
        .find(|(key, _, _)| names(key))
        .map(|(_, valid, near)| (owned(valid), owned(near)))
        .unwrap_or_default();
    if singular == "id" {
        let records = [
            ("FulfillmentOrder", owned(&[])),
            ("Reservation", vec![fixtures.reservation.clone(), fixtures.lasting_reservation.clone()]),
            ("Hold", vec![fixtures.hold.clone()]),
            ("Warehouse", owned(&["w"])),
            ("InventoryItem", owned(&["a", "sku-m"])),
            ("Sku", owned(&["sku-1", "sku-m"])),
        ];
        if let Some((_, ids)) = records.into_iter().find(|(record, _)| parent.contains(record)) {
            // The record's existing ids, and new ones for creating.
            valid.extend(ids);
        }
    }
    if names("reservation_id") {
        valid.extend([fixtures.reservation.clone(), fixtures.lasting_reservation.clone()]);
    }
    if names("hold_id") {
        valid.push(fixtures.hold.clone());
        near.extend([fixtures.reservation.clone(), fixtures.lasting_reservation.clone()]);
    }
    (valid, near)
}

/// The names of every field reachable from `message`, as written in the contracts and in JSON.
fn field_names(message: &MessageDescriptor) -> Vec<String> {
    fn visit(message: &MessageDescriptor, seen: &mut BTreeSet<String>, names: &mut BTreeSet<String>) {
        if !seen.insert(message.full_name().to_owned()) {
            return;
        }
        for field in message.fields() {
            names.insert(field.name().to_owned());
            names.insert(field.json_name().to_owned());
            if let Kind::Message(inner) = field.kind() {
                visit(&inner, seen, names);
            }
        }
    }
    let mut names = BTreeSet::new();
    visit(message, &mut BTreeSet::new(), &mut names);
    names.into_iter().collect()
}

fn string_strategy(name: &str, parent: &str, shape: Shape<'_>) -> BoxedStrategy<String> {
    let (mut valid, near) = domain_values(name, parent, shape.fixtures);
    if name == "paths" {
        valid = shape.field_names.to_vec();
    }
    let mut common: Vec<String> = COMMON_VALUES.iter().map(|v| (*v).to_owned()).collect();
    let fixtures = shape.fixtures;
    common.extend([&fixtures.reservation, &fixtures.lasting_reservation, &fixtures.hold].map(String::clone));
    if shape.plausible {
        return select(if valid.is_empty() { common } else { valid }).boxed();
    }
    let mut arms: Vec<(u32, BoxedStrategy<String>)> = vec![(1, Just(String::new()).boxed())];
    if !valid.is_empty() {
        arms.push((6, select(valid).boxed()));
    }
    if !near.is_empty() {
        arms.push((2, select(near).boxed()));
    }
    if name == "paths" {
        arms.push((1, select(vec!["nonexistent".to_owned(), "*".to_owned(), "sku.name".to_owned()]).boxed()));
    }
    arms.push((2, select(common).boxed()));
    arms.push((2, select(hostile_values()).boxed()));
    arms.push((1, "[A-Za-z0-9_-]{1,12}".boxed()));
    arms.push((1, "(?s).{0,16}".boxed()));
    Union::new_weighted(arms).boxed()
}

/// Integers for a field: small ones, limits, and anything. Fields about expiry get none that lapse
/// during the run (nothing from 1 to 3,599 seconds), since a reservation or hold that expires
/// changes the state by itself.
fn integer_strategy(name: &str, shape: Shape<'_>, min: i64, max: i64) -> BoxedStrategy<i64> {
    let expiry = name.starts_with("expire");
    let small: Vec<i64> = if expiry { vec![0, 3 * 3600, 86_400] } else { vec![0, 1, 2, 3, 5, 10] };
    if shape.plausible {
        return select(small[1..].to_vec()).boxed();
    }
    let mut odd = vec![-1, -100, 101, 500, 604_800, 604_801, min, max, i64::from(i32::MAX) + 1, 1 << 53];
    odd.retain(|v| (min..=max).contains(v) && !(expiry && (1..3600).contains(v)));
    let any = (min..=max)
        .prop_filter("a value that does not lapse during the run", move |v| !(expiry && (1..3600).contains(v)));
    prop_oneof![4 => select(small), 2 => select(odd), 1 => any].boxed()
}

fn f64_strategy(shape: Shape<'_>) -> BoxedStrategy<f64> {
    let usual = vec![0.0, 1.5, 5.95, 8.88, 100.0];
    if shape.plausible {
        return select(usual).boxed();
    }
    prop_oneof![
        3 => select(usual),
        1 => select(vec![-1.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, f64::MIN_POSITIVE, 1e-320]),
        1 => any::<f64>(),
    ]
    .boxed()
}

/// Timestamps: valid ones later than anything this run can reach (see [`integer_strategy`]), and
/// unless plausible, past ones and ones out of range (before the year 1, after 9999, nanos outside
/// 0 to 999,999,999).
fn timestamp_strategy(message: MessageDescriptor, shape: Shape<'_>) -> BoxedStrategy<DynamicMessage> {
    let now = now_seconds();
    let future = now + 3 * 3600..now + 30 * 86_400;
    let (seconds, nanos) = if shape.plausible {
        (future.boxed(), (0..1_000_000_000i32).boxed())
    } else {
        (
            prop_oneof![
                3 => future,
                1 => now - 365 * 86_400..now - 3600,
                1 => select(vec![0, -1, i64::MAX, i64::MIN, -62_135_596_801, 253_402_300_800]),
            ]
            .boxed(),
            prop_oneof![3 => 0..1_000_000_000i32, 1 => select(vec![-1, 1_000_000_000, i32::MAX, i32::MIN])].boxed(),
        )
    };
    (seconds, nanos)
        .prop_map(move |(seconds, nanos)| {
            let mut timestamp = DynamicMessage::new(message.clone());
            timestamp.set_field_by_name("seconds", Value::I64(seconds));
            timestamp.set_field_by_name("nanos", Value::I32(nanos));
            timestamp
        })
        .boxed()
}

/// A message of type `message` with each field set or not, to a value of its kind.
fn message_strategy(message: MessageDescriptor, depth: usize, shape: Shape<'_>) -> BoxedStrategy<DynamicMessage> {
    if message.full_name() == "google.protobuf.Timestamp" {
        return timestamp_strategy(message, shape);
    }
    if depth >= MAX_DEPTH {
        return Just(DynamicMessage::new(message)).boxed();
    }
    let fields: Vec<BoxedStrategy<Option<(FieldDescriptor, Value)>>> = message
        .fields()
        .map(|field| {
            let key = field.clone();
            // A plausible request sets every field but leaves an explicitly optional one unset as
            // often as not.
            let optional = field.supports_presence() && !matches!(field.kind(), Kind::Message(_));
            let value = field_strategy(&field, depth, shape);
            let value = match (shape.plausible, optional) {
                (true, false) => value.prop_map(Some).boxed(),
                (true, true) => proptest::option::weighted(0.5, value).boxed(),
                (false, _) => proptest::option::weighted(0.6, value).boxed(),
            };
            value.prop_map(move |value| value.map(|value| (key.clone(), value))).boxed()
        })
        .collect();
    fields
        .prop_map(move |values| {
            let mut generated = DynamicMessage::new(message.clone());
            for (field, value) in values.into_iter().flatten() {
                generated.set_field(&field, value);
            }
            generated
        })
        .boxed()
}

fn field_strategy(field: &FieldDescriptor, depth: usize, shape: Shape<'_>) -> BoxedStrategy<Value> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else { unreachable!("a map field's kind is its entry message") };
        let (key, value) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        let keys = single_value(&key, depth, shape).prop_filter_map("a map key", |key| match key {
            Value::String(s) => Some(MapKey::String(s)),
            Value::I32(n) => Some(MapKey::I32(n)),
            Value::I64(n) => Some(MapKey::I64(n)),
            Value::U32(n) => Some(MapKey::U32(n)),
            Value::U64(n) => Some(MapKey::U64(n)),
            Value::Bool(b) => Some(MapKey::Bool(b)),
            _ => None,
        });
        return proptest::collection::hash_map(keys, single_value(&value, depth, shape), 0..4)
            .prop_map(Value::Map)
            .boxed();
    }
    if field.is_list() {
        return proptest::collection::vec(single_value(field, depth, shape), 0..4).prop_map(Value::List).boxed();
    }
    single_value(field, depth, shape)
}

fn single_value(field: &FieldDescriptor, depth: usize, shape: Shape<'_>) -> BoxedStrategy<Value> {
    let name = field.name();
    let (min32, max32) = (i64::from(i32::MIN), i64::from(i32::MAX));
    match field.kind() {
        Kind::Double => f64_strategy(shape).prop_map(Value::F64).boxed(),
        Kind::Float => f64_strategy(shape).prop_map(|v| Value::F32(v as f32)).boxed(),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            integer_strategy(name, shape, min32, max32).prop_map(|v| Value::I32(v as i32)).boxed()
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            integer_strategy(name, shape, i64::MIN, i64::MAX).prop_map(Value::I64).boxed()
        }
        Kind::Uint32 | Kind::Fixed32 => {
            integer_strategy(name, shape, 0, i64::from(u32::MAX)).prop_map(|v| Value::U32(v as u32)).boxed()
        }
        Kind::Uint64 | Kind::Fixed64 => {
            integer_strategy(name, shape, 0, i64::MAX).prop_map(|v| Value::U64(v as u64)).boxed()
        }
        Kind::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Kind::String => string_strategy(name, field.parent_message().name(), shape).prop_map(Value::String).boxed(),
        Kind::Bytes => proptest::collection::vec(any::<u8>(), 0..16).prop_map(|b| Value::Bytes(Bytes::from(b))).boxed(),
        Kind::Enum(enumeration) => {
            let known: Vec<i32> = enumeration.values().map(|v| v.number()).collect();
            if shape.plausible {
                return select(known).prop_map(Value::EnumNumber).boxed();
            }
            prop_oneof![4 => select(known), 1 => select(vec![-1, 99, i32::MAX, i32::MIN])]
                .prop_map(Value::EnumNumber)
                .boxed()
        }
        Kind::Message(message) => message_strategy(message, depth + 1, shape).prop_map(Value::Message).boxed(),
    }
}

/// The encoding of a well-formed message, damaged: cut short, a byte flipped, noise inserted or
/// appended (unknown fields, wrong wire types, broken lengths, invalid UTF-8).
fn mutated(message: BoxedStrategy<DynamicMessage>) -> impl Strategy<Value = Vec<u8>> {
    let noise = proptest::collection::vec(any::<u8>(), 1..8);
    (message, 0u8..4, any::<Index>(), noise).prop_map(|(message, how, at, noise)| {
        let mut bytes = message.encode_to_vec();
        let at = at.index(bytes.len() + 1);
        match how {
            0 => bytes.truncate(at),
            1 if at < bytes.len() => bytes[at] ^= noise[0] | 1,
            2 => {
                bytes.splice(at..at, noise);
            }
            _ => bytes.extend(noise),
        }
        bytes
    })
}

// ---------------------------------------------------------------------------------------------
// Small helpers

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

/// A message in a text form close to protobuf's, every string escaped and in full.
fn render(message: &DynamicMessage) -> String {
    fn value(v: &Value) -> String {
        match v {
            Value::String(s) => format!("{s:?}"),
            Value::Bytes(b) => format!("0x{}", hex(b)),
            Value::Message(m) => render(m),
            Value::List(items) => format!("[{}]", items.iter().map(value).collect::<Vec<_>>().join(", ")),
            Value::Map(entries) => {
                let mut rendered: Vec<String> = entries.iter().map(|(k, v)| format!("{k:?}: {}", value(v))).collect();
                rendered.sort();
                format!("{{{}}}", rendered.join(", "))
            }
            other => format!("{other:?}"),
        }
    }
    let fields: Vec<String> = message.fields().map(|(field, v)| format!("{}: {}", field.name(), value(v))).collect();
    format!("{} {{{}}}", message.descriptor().name(), fields.join(", "))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

fn now_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}
