//! SKU and inventory item pairs kept in step by the saga, through the Catalog and the Inventory,
//! with the consistency check as the oracle after every step.

use fulfillment_proto::catalog::v1 as pb;
use fulfillment_proto::inventory::v1 as inv;
use fulfillment_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use suite_tests::{Backend, Clock, RunningService, Spawn, on_every_backend};
use tonic::Code;

use crate::metrics::{Figures, eventually};
use crate::support::*;

type Inventory = InventoryServiceClient<suite_tests::KeyedChannel>;

async fn suite(backend: Backend) -> (RunningService, Inventory, RunningService, Client) {
    let (inventory_service, inventory) = Spawn::on(backend).inventory().await;
    let (catalog_service, mut catalog) = Spawn::on(backend).catalog(inventory_service.address).await;
    register_part(&mut catalog, "20013", "DEMOPARTNUMBER2").await;
    (inventory_service, inventory, catalog_service, catalog)
}

async fn item(inventory: &mut Inventory, id: &str) -> Result<inv::InventoryItem, tonic::Status> {
    Ok(inventory
        .get_inventory_item(inv::GetInventoryItemRequest { id: id.into() })
        .await?
        .into_inner()
        .inventory_item
        .expect("item"))
}

async fn assert_consistent(catalog: &mut Client) {
    let (found, _) = suite_tests::consistency(catalog, 0).await.expect("check");
    assert!(found.is_empty(), "{found:?}");
}

async fn update(catalog: &mut Client, sku: pb::Sku, paths: &[&str]) -> Result<pb::Sku, tonic::Status> {
    let mask =
        (!paths.is_empty()).then(|| prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() });
    Ok(catalog
        .update_sku(pb::UpdateSkuRequest { sku: Some(sku), update_mask: mask })
        .await?
        .into_inner()
        .sku
        .expect("sku"))
}

async fn the_documents_pair_is_kept_in_step_through_its_life(backend: Backend) {
    let (_i, mut inventory, _c, mut catalog) = suite(backend).await;
    let id = "sku_demo_1617140947939";
    // Create: the item appears with the shared attributes.
    let mut sku = managed_sku(id);
    sku.manufacturer_id.clear();
    create(&mut catalog, sku).await.expect("created");
    let created = item(&mut inventory, id).await.expect("the item exists");
    assert_eq!(
        (
            created.manufacturer_id.as_str(),
            created.part_number.as_str(),
            created.eccn.as_str(),
            created.country_of_origin.as_str(),
            created.allow_oversell,
            created.owner_sku_id.as_str()
        ),
        ("20013", "DEMOPARTNUMBER2", "EAR99", "DE", Some(true), id)
    );
    assert_consistent(&mut catalog).await;

    // Update: a shared attribute follows.
    update(&mut catalog, pb::Sku { id: id.into(), country_of_origin: "US".into(), ..Default::default() }, &[])
        .await
        .expect("updated");
    assert_eq!(item(&mut inventory, id).await.expect("item").country_of_origin, "US");
    assert_consistent(&mut catalog).await;

    // Clearing managed fulfillment deletes the item.
    update(&mut catalog, pb::Sku { id: id.into(), ..Default::default() }, &["managed_fulfillment"])
        .await
        .expect("cleared");
    let status = item(&mut inventory, id).await.expect_err("gone");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), format!("InventoryItem '{id}' not found."));
    assert_consistent(&mut catalog).await;

    // Setting it again creates it.
    update(
        &mut catalog,
        pb::Sku { id: id.into(), managed_fulfillment: "DRGlobalFulfillment".into(), ..Default::default() },
        &[],
    )
    .await
    .expect("set");
    assert_eq!(item(&mut inventory, id).await.expect("back").country_of_origin, "US");
    assert_consistent(&mut catalog).await;

    // Deleting the SKU deletes both.
    catalog.delete_sku(pb::DeleteSkuRequest { id: id.into() }).await.expect("deleted");
    assert_eq!(item(&mut inventory, id).await.expect_err("gone").code(), Code::NotFound);
    assert_eq!(get(&mut catalog, id).await.expect_err("gone").code(), Code::NotFound);
    assert_consistent(&mut catalog).await;
}

async fn an_inventory_refusal_leaves_no_sku_behind(backend: Backend) {
    let (_i, mut inventory, _c, mut catalog) = suite(backend).await;
    // Someone created an item with the SKU's id directly: the Inventory will refuse the pair.
    let squatter = inv::InventoryItem { id: "taken".into(), part_number: "OTHER".into(), ..Default::default() };
    inventory
        .create_inventory_item(inv::CreateInventoryItemRequest { inventory_item: Some(squatter) })
        .await
        .expect("squatter");
    let status = create(&mut catalog, managed_sku("taken")).await.expect_err("refused");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(status.message(), "InventoryItem 'taken' already exists.", "the Inventory's own answer");
    assert_eq!(get(&mut catalog, "taken").await.expect_err("compensated").code(), Code::NotFound);
    assert_eq!(item(&mut inventory, "taken").await.expect("untouched").part_number, "OTHER");
    assert_consistent(&mut catalog).await;
}

async fn a_clients_item_with_the_skus_id_is_never_touched(backend: Backend) {
    let (_i, mut inventory, _c, mut catalog) = suite(backend).await;
    let theirs = inv::InventoryItem { id: "shared-id".into(), part_number: "THEIRS".into(), ..Default::default() };
    inventory
        .create_inventory_item(inv::CreateInventoryItemRequest { inventory_item: Some(theirs) })
        .await
        .expect("a client's item");
    create(&mut catalog, pb::Sku { part_number: "DEMOPARTNUMBER2".into(), ..example_sku("shared-id") })
        .await
        .expect("unmanaged");
    let status = update(
        &mut catalog,
        pb::Sku {
            id: "shared-id".into(),
            managed_fulfillment: "DRGlobalFulfillment".into(),
            manufacturer_id: "20013".into(),
            ..Default::default()
        },
        &[],
    )
    .await
    .expect_err("the id is taken in the Inventory");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(get(&mut catalog, "shared-id").await.expect("kept").managed_fulfillment, "", "put back");
    catalog.delete_sku(pb::DeleteSkuRequest { id: "shared-id".into() }).await.expect("deleted");
    assert_eq!(item(&mut inventory, "shared-id").await.expect("untouched").part_number, "THEIRS");
    // Even speaking as the Catalog, nobody deletes an item no SKU owns.
    let request = suite_tests::as_catalog(inv::DeleteInventoryItemRequest { id: "shared-id".into() });
    let status = inventory.delete_inventory_item(request).await.expect_err("not owned");
    assert_eq!(reason(&status), "not_owned");
    assert_consistent(&mut catalog).await;
}

async fn a_managed_sku_with_open_holds_is_not_deleted(backend: Backend) {
    let (_i, mut inventory, _c, mut catalog) = suite(backend).await;
    create(&mut catalog, managed_sku("held")).await.expect("created");
    crate::inventory_support::warehouse(&mut inventory, "w", &[], 0).await;
    crate::inventory_support::receive(&mut inventory, "held", "w", 3).await;
    crate::inventory_support::place(
        &mut inventory,
        crate::inventory_support::hold_request("h", vec![crate::inventory_support::line("held", 1)], "US"),
    )
    .await
    .expect("held");
    let status = catalog.delete_sku(pb::DeleteSkuRequest { id: "held".into() }).await.expect_err("open holds");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "open_holds");
    get(&mut catalog, "held").await.expect("the SKU stays");
    item(&mut inventory, "held").await.expect("the item stays");
    assert_consistent(&mut catalog).await;
}

async fn a_managed_item_changes_only_through_its_sku(backend: Backend) {
    let (_i, mut inventory, _c, mut catalog) = suite(backend).await;
    create(&mut catalog, managed_sku("owned")).await.expect("created");
    let change = inv::UpdateInventoryItemRequest {
        inventory_item: Some(inv::InventoryItem {
            id: "owned".into(),
            hs_code: "6404.20".into(),
            ..Default::default()
        }),
        update_mask: None,
    };
    let status = inventory.update_inventory_item(change).await.expect_err("owned");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("SKU 'owned'"), "{}", status.message());
    let status = inventory
        .delete_inventory_item(inv::DeleteInventoryItemRequest { id: "owned".into() })
        .await
        .expect_err("owned");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_consistent(&mut catalog).await;
}

async fn with_the_inventory_stopped_a_managed_create_is_unavailable_and_leaves_nothing(backend: Backend) {
    let (inventory, _client) = Spawn::on(backend).inventory().await;
    let (_c, mut catalog) = Spawn::on(backend).catalog(inventory.address).await;
    register_part(&mut catalog, "20013", "DEMOPARTNUMBER2").await;
    // The key was checked while the Inventory ran; the Catalog keeps trusting its answer.
    inventory.stop().await.expect("stopped");
    let status = create(&mut catalog, managed_sku("s1")).await.expect_err("inventory stopped");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(get(&mut catalog, "s1").await.expect_err("nothing kept").code(), Code::NotFound);
    // An unmanaged SKU needs no Inventory at all.
    create(&mut catalog, example_sku("plain")).await.expect("created");
}

on_every_backend!(
    the_documents_pair_is_kept_in_step_through_its_life,
    an_inventory_refusal_leaves_no_sku_behind,
    a_clients_item_with_the_skus_id_is_never_touched,
    a_managed_sku_with_open_holds_is_not_deleted,
    a_managed_item_changes_only_through_its_sku,
    with_the_inventory_stopped_a_managed_create_is_unavailable_and_leaves_nothing
);

async fn an_inventory_slower_than_the_deadline_is_unavailable_then_settled(backend: Backend) {
    let (inventory_service, mut inventory) = Spawn::on(backend).inventory().await;
    let slow = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let proxy = suite_tests::slow_proxy(inventory_service.address, slow.clone()).await;
    // The lease lapses when the test moves the Catalog's clock, not after a wait.
    let settings = [
        ("CATALOG_INVENTORY_TIMEOUT_MS", "200"),
        ("CATALOG_SAGA_LEASE_MS", "60000"),
        ("CATALOG_SAGA_RECOVERY_MS", "100"),
    ];
    let clock = Clock::adjustable();
    let (catalog_service, mut catalog) = Spawn::on(backend).with(&settings).clock(&clock).catalog(proxy).await;
    register_part(&mut catalog, "20013", "DEMOPARTNUMBER2").await;
    assert_consistent(&mut catalog).await;

    slow.store(true, std::sync::atomic::Ordering::Relaxed);
    let status = create(&mut catalog, managed_sku("late")).await.expect_err("past the deadline");
    assert_eq!(status.code(), Code::Unavailable);
    // The metrics say so: the call was retried, the saga left to recovery and still open.
    let figures = Figures::of(&catalog_service).await;
    assert_eq!(figures.value("rpc_client_retries_total", &[("rpc_method", "CreateInventoryItem")]), 2.0, "3 attempts");
    assert_eq!(figures.value("catalog_saga_outcomes_total", &[("outcome", "unresolved")]), 1.0);
    let open = |f: &Figures| f.get("catalog_sagas_open", &[("live_mode", "true")]) == Some(1.0);
    assert!(open(&eventually(&catalog_service, open).await), "recovery counts the open saga");
    slow.store(false, std::sync::atomic::Ordering::Relaxed);

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // Two leases pass on the Catalog's clock at every look: a recovery attempt that found the
        // Inventory still slow lapses too, and the next one takes the saga again.
        clock.advance(std::time::Duration::from_secs(120));
        let found = catalog
            .check_consistency(pb::CheckConsistencyRequest::default())
            .await
            .map(|r| r.into_inner().inconsistencies);
        if matches!(&found, Ok(found) if found.is_empty()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never settled: {found:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Settled one way or the other, never half: both there or both gone.
    let sku = get(&mut catalog, "late").await.is_ok();
    let item = item(&mut inventory, "late").await.is_ok();
    assert_eq!(sku, item, "sku {sku}, item {item}");
    // Ended once, by recovery, and no saga is left open.
    let closed = |f: &Figures| f.get("catalog_sagas_open", &[("live_mode", "true")]) == Some(0.0);
    let figures = eventually(&catalog_service, closed).await;
    assert_eq!(figures.value("catalog_sagas_open", &[("live_mode", "true")]), 0.0);
    let ended = ["completed", "compensated"]
        .map(|o| figures.get("catalog_saga_outcomes_total", &[("outcome", o)]).unwrap_or(0.0));
    assert_eq!(ended.iter().sum::<f64>(), 1.0, "{ended:?}");
}

on_every_backend!(an_inventory_slower_than_the_deadline_is_unavailable_then_settled);

async fn the_consistency_check_pages_and_finds_the_same_at_any_page_size(backend: Backend) {
    let (_i, mut inventory, _c, mut catalog) = suite(backend).await;
    for id in ["m0", "m1", "m2", "m3", "m4", "gone", "differs"] {
        create(&mut catalog, managed_sku(id)).await.expect("managed");
    }
    // Broken behind the Catalog's back, with its own key: an item gone, one changed, one orphan.
    inventory
        .delete_inventory_item(suite_tests::as_catalog(inv::DeleteInventoryItemRequest { id: "gone".into() }))
        .await
        .expect("deleted");
    let changed = inv::InventoryItem { id: "differs".into(), part_number: "OTHER".into(), ..Default::default() };
    let mask = prost_types::FieldMask { paths: vec!["part_number".into()] };
    inventory
        .update_inventory_item(suite_tests::as_catalog(inv::UpdateInventoryItemRequest {
            inventory_item: Some(changed),
            update_mask: Some(mask),
        }))
        .await
        .expect("changed");
    let ghost = inv::InventoryItem { id: "ghost".into(), owner_sku_id: "ghost".into(), ..Default::default() };
    inventory
        .create_inventory_item(suite_tests::as_catalog(inv::CreateInventoryItemRequest { inventory_item: Some(ghost) }))
        .await
        .expect("an orphan");

    let findings = |found: Vec<pb::Inconsistency>| {
        let mut found: Vec<(String, pb::InconsistencyKind)> =
            found.into_iter().map(|f| (f.sku_id.clone(), f.kind())).collect();
        found.sort();
        found
    };
    let expected = vec![
        ("differs".to_owned(), pb::InconsistencyKind::ItemDiffers),
        ("ghost".to_owned(), pb::InconsistencyKind::OrphanItem),
        ("gone".to_owned(), pb::InconsistencyKind::MissingItem),
    ];
    let (whole, calls) = suite_tests::consistency(&mut catalog, 0).await.expect("checked");
    assert_eq!((findings(whole), calls), (expected.clone(), 1), "a small catalog in one call");
    let (paged, calls) = suite_tests::consistency(&mut catalog, 2).await.expect("checked");
    assert_eq!(findings(paged), expected, "the same, two SKUs or items at a time");
    assert!(calls >= 7, "seven SKUs and seven items two at a time: {calls} calls");
    let status = catalog
        .check_consistency(pb::CheckConsistencyRequest { page_size: 2, page_token: "x:1".into() })
        .await
        .expect_err("a made-up token");
    assert_eq!(status.code(), Code::InvalidArgument);
}

on_every_backend!(the_consistency_check_pages_and_finds_the_same_at_any_page_size);
