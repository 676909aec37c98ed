//! The Catalog process killed between the steps of a saga (at a test-only fault point), then
//! restarted: recovery leaves every pair consistent, forward where the item is as desired and
//! compensated otherwise.

use std::time::Duration;

use fulfillment_proto::catalog::v1 as pb;
use fulfillment_proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use fulfillment_proto::inventory::v1 as inv;
use fulfillment_storage::Backend;
use fulfillment_storage::testing::TestDatabase;
use suite_tests::{Spawn, on_every_backend, run_inventory_at, start_process};
use tonic::Code;

type Catalog = CatalogServiceClient<suite_tests::KeyedChannel>;

async fn start(
    database_url: &str,
    inventory: std::net::SocketAddr,
    fault_point: Option<&str>,
) -> (tokio::process::Child, Catalog) {
    let inventory_url = format!("http://{inventory}");
    let mut settings = vec![
        ("CATALOG_LISTEN_ADDR", "127.0.0.1:0"),
        ("CATALOG_DATABASE_URL", database_url),
        ("CATALOG_INVENTORY_URL", inventory_url.as_str()),
        ("CATALOG_SAGA_LEASE_MS", "300"),
        // Short calls keep the lease floor (twelve timeouts plus three seconds) short.
        ("CATALOG_INVENTORY_TIMEOUT_MS", "100"),
        ("CATALOG_SAGA_RECOVERY_MS", "100"),
    ];
    if let Some(point) = fault_point {
        settings.push(("CATALOG_FAULT_POINT", point));
    }
    let (child, url) = start_process(env!("CARGO_BIN_EXE_catalog"), &settings).await;
    let client = suite_tests::connect_keyed(url).await.map(CatalogServiceClient::new).expect("connect");
    (child, client)
}

fn managed_sku(id: &str) -> pb::Sku {
    pb::Sku {
        id: id.to_owned(),
        name: "Demo".into(),
        eccn: "EAR99".into(),
        tax_code: "4323.310_A".into(),
        country_of_origin: "DE".into(),
        part_number: "DEMOPARTNUMBER2".into(),
        manufacturer_id: "20013".into(),
        managed_fulfillment: "DRGlobalFulfillment".into(),
        ..Default::default()
    }
}

/// Waits until the consistency check reports nothing.
async fn wait_consistent(catalog: &mut Catalog) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match suite_tests::consistency(catalog, 0).await {
            Ok((found, _)) if found.is_empty() => return,
            other => assert!(tokio::time::Instant::now() < deadline, "still inconsistent: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `step` against a Catalog set to crash at `fault_point`, restarts it, waits for recovery,
/// and answers whether the SKU and its item exist afterwards.
async fn crash_during(
    backend: Backend,
    fault_point: &str,
    prepare_managed_sku: bool,
    step: impl AsyncFnOnce(&mut Catalog),
) -> (bool, bool) {
    let (inventory_service, mut inventory) = Spawn::on(backend).inventory().await;
    let database = TestDatabase::create(backend).await.expect("a database");
    if prepare_managed_sku {
        let (mut child, mut catalog) = start(database.url(), inventory_service.address, None).await;
        let part = pb::RegisterManufacturerPartRequest {
            manufacturer_id: "20013".into(),
            part_number: "DEMOPARTNUMBER2".into(),
        };
        catalog.register_manufacturer_part(part).await.expect("part");
        catalog.create_sku(pb::CreateSkuRequest { sku: Some(managed_sku("s1")) }).await.expect("created");
        child.start_kill().expect("stop");
        let _ = child.wait().await;
    }
    let (mut child, mut catalog) = start(database.url(), inventory_service.address, Some(fault_point)).await;
    let part =
        pb::RegisterManufacturerPartRequest { manufacturer_id: "20013".into(), part_number: "DEMOPARTNUMBER2".into() };
    catalog.register_manufacturer_part(part).await.expect("part");
    step(&mut catalog).await;
    let status = child.wait().await.expect("the process ended");
    assert!(!status.success(), "the Catalog crashed at {fault_point}");

    let (mut restarted, mut catalog) = start(database.url(), inventory_service.address, None).await;
    wait_consistent(&mut catalog).await;
    let sku = catalog.get_sku(pb::GetSkuRequest { id: "s1".into() }).await;
    let item = inventory.get_inventory_item(inv::GetInventoryItemRequest { id: "s1".into() }).await;
    for result in [sku.as_ref().err(), item.as_ref().err()].into_iter().flatten() {
        assert_eq!(result.code(), Code::NotFound, "{result:?}");
    }
    restarted.start_kill().expect("stop");
    let _ = restarted.wait().await;
    (sku.is_ok(), item.is_ok())
}

async fn create(catalog: &mut Catalog) {
    let answer = catalog.create_sku(pb::CreateSkuRequest { sku: Some(managed_sku("s1")) }).await;
    assert!(answer.is_err(), "the process died before answering");
}

async fn delete(catalog: &mut Catalog) {
    let answer = catalog.delete_sku(pb::DeleteSkuRequest { id: "s1".into() }).await;
    assert!(answer.is_err(), "the process died before answering");
}

async fn a_create_killed_before_the_inventory_call_is_compensated(backend: Backend) {
    assert_eq!(crash_during(backend, "after_saga_record", false, create).await, (false, false), "{backend:?}");
}

on_every_backend!(a_create_killed_before_the_inventory_call_is_compensated);

async fn a_create_killed_after_the_item_was_made_goes_forward(backend: Backend) {
    assert_eq!(crash_during(backend, "after_item", false, create).await, (true, true), "{backend:?}");
}

on_every_backend!(a_create_killed_after_the_item_was_made_goes_forward);

async fn a_delete_killed_after_the_item_went_goes_forward(backend: Backend) {
    assert_eq!(crash_during(backend, "after_item", true, delete).await, (false, false), "{backend:?}");
}

on_every_backend!(a_delete_killed_after_the_item_went_goes_forward);

async fn a_delete_killed_before_the_inventory_call_is_compensated(backend: Backend) {
    assert_eq!(crash_during(backend, "after_saga_record", true, delete).await, (true, true), "{backend:?}");
}

on_every_backend!(a_delete_killed_before_the_inventory_call_is_compensated);

/// A small deterministic pseudo-random sequence, so a failing run can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// One random change to one of a few managed SKUs; errors are expected while the process dies.
/// Tells whether it created a managed SKU (and so its item, through the saga).
async fn random_change(catalog: &mut Catalog, random: &mut Lcg) -> bool {
    let id = format!("s{}", random.next(6));
    let other = match random.next(4) {
        0 => return catalog.create_sku(pb::CreateSkuRequest { sku: Some(managed_sku(&id)) }).await.is_ok(),
        1 => {
            let country = ["DE", "US", "FR"][random.next(3) as usize];
            let sku = pb::Sku { id: id.clone(), country_of_origin: country.into(), ..Default::default() };
            catalog.update_sku(pb::UpdateSkuRequest { sku: Some(sku), update_mask: None }).await.map(drop)
        }
        2 => {
            let managed = if random.next(2) == 0 { "" } else { "DRGlobalFulfillment" };
            let sku = pb::Sku { id: id.clone(), managed_fulfillment: managed.into(), ..Default::default() };
            let mask = prost_types::FieldMask { paths: vec!["managed_fulfillment".into()] };
            catalog.update_sku(pb::UpdateSkuRequest { sku: Some(sku), update_mask: Some(mask) }).await.map(drop)
        }
        _ => catalog.delete_sku(pb::DeleteSkuRequest { id }).await.map(drop),
    };
    drop(other);
    false
}

async fn random_changes_through_catalog_and_inventory_crashes_end_consistent(backend: Backend) {
    // The Inventory runs in this process so it can be dropped mid-flight and started again.
    let inventory_database = TestDatabase::create(backend).await.expect("a database");
    let inventory_address = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address");
    let mut inventory = run_inventory_at(inventory_database.url(), inventory_address).await;
    let database = TestDatabase::create(backend).await.expect("a database");
    let mut random = Lcg(0x5eed);
    // Managed SKUs created, items and all: the run is not all compensations. How many are
    // left at the end is chance (later deletes and unmanaging count as much as creates).
    let mut created = 0;
    for round in 0..4 {
        let (mut child, mut catalog) = start(database.url(), inventory_address, None).await;
        let part = pb::RegisterManufacturerPartRequest {
            manufacturer_id: "20013".into(),
            part_number: "DEMOPARTNUMBER2".into(),
        };
        catalog.register_manufacturer_part(part).await.expect("part");
        let writers: Vec<_> = (0..4)
            .map(|writer| {
                let mut catalog = catalog.clone();
                let mut random = Lcg(round * 100 + writer);
                tokio::spawn(async move {
                    let mut created = 0;
                    for _ in 0..200 {
                        created += usize::from(random_change(&mut catalog, &mut random).await);
                    }
                    created
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50 + random.next(150))).await;
        if round % 2 == 1 {
            // Crash the Inventory too, and bring it back while the Catalog is still writing.
            inventory.abort();
            let _ = (&mut inventory).await;
            tokio::time::sleep(Duration::from_millis(random.next(100))).await;
            inventory = run_inventory_at(inventory_database.url(), inventory_address).await;
        }
        tokio::time::sleep(Duration::from_millis(100 + random.next(150))).await;
        child.start_kill().expect("SIGKILL");
        let _ = child.wait().await;
        for writer in writers {
            created += writer.await.unwrap_or_default();
        }
    }
    let (mut restarted, mut catalog) = start(database.url(), inventory_address, None).await;
    wait_consistent(&mut catalog).await;
    let skus = catalog.list_skus(pb::ListSkusRequest { page_size: 100, ..Default::default() }).await.expect("list");
    let managed = skus.into_inner().skus.iter().filter(|s| !s.managed_fulfillment.is_empty()).count();
    eprintln!(
        "{backend:?}: {created} managed SKUs created, {managed} left after 4 Catalog and 2 Inventory crashes, all consistent"
    );
    assert!(created > 0, "some managed SKUs were made through the saga");
    inventory.abort();
    restarted.start_kill().expect("stop");
    let _ = restarted.wait().await;
}

on_every_backend!(random_changes_through_catalog_and_inventory_crashes_end_consistent);
