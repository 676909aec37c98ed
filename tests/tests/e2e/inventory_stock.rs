//! Warehouses, stock changes with their ledger, and inventory levels.

use fulfillment_proto::inventory::v1 as pb;
use suite_tests::{Backend, Spawn, on_every_backend};
use tonic::Code;

use crate::inventory_support::*;
use crate::support::{assert_invalid, reason};

fn change(item: &str, warehouse: &str, kind: pb::StockChangeKind, quantity: i64, key: &str) -> pb::AdjustStockRequest {
    pb::AdjustStockRequest {
        inventory_item_id: item.into(),
        warehouse_id: warehouse.into(),
        kind: kind.into(),
        quantity,
        reason: "count".into(),
        idempotency_key: key.into(),
    }
}

async fn warehouses_are_managed_and_refuse_deletion_while_stocked(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    warehouse(&mut client, "w1", &["US", "CA"], 2).await;
    let fetched = client
        .get_warehouse(pb::GetWarehouseRequest { id: "w1".into() })
        .await
        .expect("get")
        .into_inner()
        .warehouse
        .expect("w");
    assert_eq!(
        (fetched.ship_to_countries.clone(), fetched.priority, fetched.ships_everywhere),
        (vec!["CA".to_owned(), "US".to_owned()], 2, false)
    );
    let update = pb::UpdateWarehouseRequest {
        warehouse: Some(pb::Warehouse { id: "w1".into(), ships_everywhere: true, ..Default::default() }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["ships_everywhere".into(), "ship_to_countries".into()],
        }),
    };
    let updated = client.update_warehouse(update).await.expect("update").into_inner().warehouse.expect("w");
    assert!(updated.ships_everywhere && updated.ship_to_countries.is_empty());
    let bad = pb::Warehouse { id: "w2".into(), name: "x".into(), country: "XX".into(), ..Default::default() };
    let status = client.create_warehouse(pb::CreateWarehouseRequest { warehouse: Some(bad) }).await.expect_err("XX");
    assert_invalid(&status, "country", "'XX' is not a valid country.");

    item(&mut client, "i").await;
    receive(&mut client, "i", "w1", 3).await;
    let status = client.delete_warehouse(pb::DeleteWarehouseRequest { id: "w1".into() }).await.expect_err("stocked");
    assert_eq!(reason(&status), "warehouse_in_use");
    client.adjust_stock(change("i", "w1", pb::StockChangeKind::Set, 0, "empty-it")).await.expect("emptied");
    client.delete_warehouse(pb::DeleteWarehouseRequest { id: "w1".into() }).await.expect("deleted");
    let listed = client.list_warehouses(pb::ListWarehousesRequest::default()).await.expect("list").into_inner();
    assert!(listed.warehouses.is_empty());
}

async fn receive_adjust_and_set_write_the_ledger(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    item(&mut client, "i").await;
    warehouse(&mut client, "w", &[], 0).await;
    let received = client
        .adjust_stock(change("i", "w", pb::StockChangeKind::Receive, 10, "k1"))
        .await
        .expect("receive")
        .into_inner();
    assert_eq!(received.level.as_ref().map(|l| l.on_hand), Some(10));
    let adjusted = client
        .adjust_stock(change("i", "w", pb::StockChangeKind::Adjust, -3, "k2"))
        .await
        .expect("adjust")
        .into_inner();
    assert_eq!(adjusted.level.as_ref().map(|l| l.on_hand), Some(7));
    let set = client.adjust_stock(change("i", "w", pb::StockChangeKind::Set, 4, "k3")).await.expect("set").into_inner();
    assert_eq!(set.movement.as_ref().map(|m| m.delta), Some(-3));

    let ledger = client
        .list_stock_movements(pb::ListStockMovementsRequest { inventory_item_id: "i".into(), ..Default::default() })
        .await
        .expect("ledger")
        .into_inner()
        .movements;
    let rows: Vec<_> = ledger.iter().map(|m| (m.delta, m.on_hand_after, m.idempotency_key.as_str())).collect();
    assert_eq!(rows, [(10, 10, "k1"), (-3, 7, "k2"), (-3, 4, "k3")]);
}

async fn a_retried_stock_change_applies_once(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    item(&mut client, "i").await;
    warehouse(&mut client, "w", &[], 0).await;
    let first = client
        .adjust_stock(change("i", "w", pb::StockChangeKind::Receive, 5, "once"))
        .await
        .expect("first")
        .into_inner();
    let again = client
        .adjust_stock(change("i", "w", pb::StockChangeKind::Receive, 5, "once"))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(first.movement, again.movement);
    assert_eq!(level(&mut client, "i").await.0, 5, "applied once");
    let status =
        client.adjust_stock(change("i", "w", pb::StockChangeKind::Receive, 6, "once")).await.expect_err("other change");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(reason(&status), "idempotency_key_reused");
}

async fn stock_changes_are_checked(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    item(&mut client, "i").await;
    warehouse(&mut client, "w", &[], 0).await;
    let status = client.adjust_stock(change("i", "w", pb::StockChangeKind::Receive, 0, "z")).await.expect_err("zero");
    assert_invalid(&status, "quantity", "'0' is not a valid quantity to receive.");
    let mut missing_reason = change("i", "w", pb::StockChangeKind::Receive, 1, "r");
    missing_reason.reason.clear();
    assert_invalid(
        &client.adjust_stock(missing_reason).await.expect_err("no reason"),
        "reason",
        "The reason is missing.",
    );
    let status =
        client.adjust_stock(change("nope", "w", pb::StockChangeKind::Receive, 1, "n")).await.expect_err("unknown item");
    assert_eq!(status.message(), "InventoryItem 'nope' not found.");
    let status = client
        .adjust_stock(change("i", "nope", pb::StockChangeKind::Receive, 1, "n2"))
        .await
        .expect_err("unknown warehouse");
    assert_eq!(status.code(), Code::NotFound);

    receive(&mut client, "i", "w", 3).await;
    place(&mut client, hold_request("h", vec![line("i", 2)], "US")).await.expect("held");
    let status =
        client.adjust_stock(change("i", "w", pb::StockChangeKind::Set, 1, "below")).await.expect_err("below held");
    assert_eq!(reason(&status), "stock_below_held");
    assert_eq!(level(&mut client, "i").await, (3, 2, 1, vec![("w".to_owned(), 3, 2, 1)]));
}

async fn levels_sum_warehouses_and_filter_by_country_and_availability(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    item(&mut client, "a").await;
    item(&mut client, "b").await;
    warehouse(&mut client, "us", &["US"], 0).await;
    warehouse(&mut client, "eu", &["DE", "FR"], 0).await;
    receive(&mut client, "a", "us", 4).await;
    receive(&mut client, "a", "eu", 6).await;
    receive(&mut client, "b", "eu", 1).await;
    assert_eq!(level(&mut client, "a").await, (10, 0, 10, vec![("eu".into(), 6, 0, 6), ("us".into(), 4, 0, 4)]));

    let request = |country: &str, min: Option<i64>| pb::GetInventoryLevelsRequest {
        inventory_item_ids: vec!["a".into(), "b".into()],
        ship_to_country: country.into(),
        min_available: min,
    };
    let us = client.get_inventory_levels(request("US", None)).await.expect("levels").into_inner().levels;
    assert_eq!(
        us.iter().map(|l| (l.inventory_item_id.as_str(), l.available)).collect::<Vec<_>>(),
        [("a", 4), ("b", 0)]
    );
    let plenty = client.get_inventory_levels(request("", Some(2))).await.expect("levels").into_inner().levels;
    assert_eq!(plenty.iter().map(|l| l.inventory_item_id.as_str()).collect::<Vec<_>>(), ["a"]);

    let unknown =
        pb::GetInventoryLevelsRequest { inventory_item_ids: vec!["a".into(), "zz".into()], ..Default::default() };
    let status = client.get_inventory_levels(unknown).await.expect_err("unknown item");
    assert_eq!(status.message(), "InventoryItem 'zz' not found.");
}

async fn a_warehouse_with_an_open_hold_cannot_be_deleted(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    item(&mut client, "i").await;
    warehouse(&mut client, "w", &[], 0).await;
    receive(&mut client, "i", "w", 2).await;
    place(&mut client, hold_request("h", vec![line("i", 2)], "US")).await.expect("held");
    let status = client.delete_warehouse(pb::DeleteWarehouseRequest { id: "w".into() }).await.expect_err("open hold");
    assert_eq!(reason(&status), "warehouse_in_use");
}

async fn deleting_an_item_writes_its_stock_off_in_the_ledger(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    item(&mut client, "i").await;
    warehouse(&mut client, "w", &[], 0).await;
    receive(&mut client, "i", "w", 4).await;
    client.delete_inventory_item(pb::DeleteInventoryItemRequest { id: "i".into() }).await.expect("deleted");
    item(&mut client, "i").await;
    let ledger = client
        .list_stock_movements(pb::ListStockMovementsRequest { inventory_item_id: "i".into(), ..Default::default() })
        .await
        .expect("ledger")
        .into_inner()
        .movements;
    let rows: Vec<_> = ledger.iter().map(|m| (m.delta, m.on_hand_after, m.reason.as_str())).collect();
    assert_eq!(rows, [(4, 4, "received"), (-4, 0, "inventory item deleted")]);
    assert_eq!(level(&mut client, "i").await.0, 0, "the new item starts empty");
}

async fn client_keys_cannot_block_a_commit(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    item(&mut client, "a").await;
    warehouse(&mut client, "w", &[], 0).await;
    client
        .adjust_stock(change("a", "w", pb::StockChangeKind::Receive, 5, "commit:h1:a:w"))
        .await
        .expect("a key like a system one");
    place(&mut client, hold_request("h1", vec![line("a", 2)], "US")).await.expect("held");
    client.commit_hold(pb::CommitHoldRequest { hold_id: "h1".into() }).await.expect("committed");
    assert_eq!(level(&mut client, "a").await.0, 3);
}

async fn extreme_quantities_are_invalid_not_crashes(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    item(&mut client, "a").await;
    warehouse(&mut client, "w", &[], 0).await;
    for quantity in [i64::MIN, i64::MAX, -1_000_000_001] {
        let status = client
            .adjust_stock(change("a", "w", pb::StockChangeKind::Adjust, quantity, &format!("q{quantity}")))
            .await
            .expect_err("extreme");
        assert_eq!(status.code(), Code::InvalidArgument, "{quantity}");
    }
    let lines = (0..100_000).map(|_| line("a", 1)).collect();
    let status = place(&mut client, hold_request("huge", lines, "US")).await.expect_err("too many lines");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().len() < 200);
}

on_every_backend!(
    warehouses_are_managed_and_refuse_deletion_while_stocked,
    receive_adjust_and_set_write_the_ledger,
    a_retried_stock_change_applies_once,
    stock_changes_are_checked,
    levels_sum_warehouses_and_filter_by_country_and_availability,
    a_warehouse_with_an_open_hold_cannot_be_deleted,
    deleting_an_item_writes_its_stock_off_in_the_ledger,
    client_keys_cannot_block_a_commit,
    extreme_quantities_are_invalid_not_crashes
);
