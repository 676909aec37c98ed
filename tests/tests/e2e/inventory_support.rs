//! Helpers for the Inventory tests: items, warehouses, stock and holds in one call each.

use fulfillment_proto::inventory::v1 as pb;
use fulfillment_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use tonic_types::StatusExt;

pub type Inventory = InventoryServiceClient<suite_tests::KeyedChannel>;

pub async fn item(client: &mut Inventory, id: &str) -> pb::InventoryItem {
    let item = pb::InventoryItem { id: id.to_owned(), country_of_origin: "DK".into(), ..Default::default() };
    client
        .create_inventory_item(pb::CreateInventoryItemRequest { inventory_item: Some(item) })
        .await
        .expect("item created")
        .into_inner()
        .inventory_item
        .expect("item")
}

/// A warehouse in `country` shipping to `ships_to` (everywhere when empty), with `priority`.
pub async fn warehouse(client: &mut Inventory, id: &str, ships_to: &[&str], priority: i32) {
    let warehouse = pb::Warehouse {
        id: id.to_owned(),
        name: format!("Warehouse {id}"),
        country: "US".into(),
        ship_to_countries: ships_to.iter().map(|c| (*c).to_owned()).collect(),
        ships_everywhere: ships_to.is_empty(),
        priority,
        ..Default::default()
    };
    client
        .create_warehouse(pb::CreateWarehouseRequest { warehouse: Some(warehouse) })
        .await
        .expect("warehouse created");
}

pub async fn receive(client: &mut Inventory, item: &str, warehouse: &str, quantity: i64) -> pb::AdjustStockResponse {
    client
        .adjust_stock(pb::AdjustStockRequest {
            inventory_item_id: item.to_owned(),
            warehouse_id: warehouse.to_owned(),
            kind: pb::StockChangeKind::Receive.into(),
            quantity,
            reason: "received".into(),
            idempotency_key: format!("receive-{item}-{warehouse}-{quantity}-{}", uuid_like()),
        })
        .await
        .expect("stock received")
        .into_inner()
}

fn uuid_like() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    u128::from(NEXT.fetch_add(1, Ordering::Relaxed))
}

pub fn line(item: &str, quantity: i64) -> pb::HoldRequestLine {
    pb::HoldRequestLine { inventory_item_id: item.to_owned(), quantity, allow_oversell: None }
}

pub fn hold_request(id: &str, lines: Vec<pb::HoldRequestLine>, country: &str) -> pb::PlaceHoldRequest {
    let expire = std::time::SystemTime::now() + std::time::Duration::from_secs(600);
    pb::PlaceHoldRequest {
        hold_id: id.to_owned(),
        lines,
        ship_to_country: country.to_owned(),
        expire_time: Some(prost_types::Timestamp::from(expire)),
    }
}

pub async fn place(client: &mut Inventory, request: pb::PlaceHoldRequest) -> Result<pb::Hold, tonic::Status> {
    Ok(client.place_hold(request).await?.into_inner().hold.expect("hold"))
}

/// The level of `item`, in total and per warehouse as (warehouse, on hand, reserved, available).
pub async fn level(client: &mut Inventory, item: &str) -> (i64, i64, i64, Vec<(String, i64, i64, i64)>) {
    let levels = client
        .get_inventory_levels(pb::GetInventoryLevelsRequest {
            inventory_item_ids: vec![item.to_owned()],
            ..Default::default()
        })
        .await
        .expect("levels")
        .into_inner()
        .levels;
    let level = levels.into_iter().next().expect("one level");
    let warehouses =
        level.warehouses.into_iter().map(|w| (w.warehouse_id, w.on_hand, w.reserved, w.available)).collect();
    (level.on_hand, level.reserved, level.available, warehouses)
}

/// The held units per warehouse of a hold, as (item, warehouse, quantity, oversold).
pub fn allocations(hold: &pb::Hold) -> Vec<(String, String, i64, i64)> {
    hold.allocations
        .iter()
        .map(|a| (a.inventory_item_id.clone(), a.warehouse_id.clone(), a.quantity, a.oversold_quantity))
        .collect()
}

/// The (subject, description) of each PreconditionFailure violation.
pub fn precondition_violations(status: &tonic::Status) -> Vec<(String, String)> {
    status
        .get_details_precondition_failure()
        .map(|f| f.violations.into_iter().map(|v| (v.subject, v.description)).collect())
        .unwrap_or_default()
}
