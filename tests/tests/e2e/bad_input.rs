//! Hostile strings in every field of every Catalog RPC: always a clear answer, never INTERNAL,
//! never a retryable code, and nothing written.

use fulfillment_proto::catalog::v1 as pb;
use suite_tests::{Backend, Spawn, on_every_backend};
use tonic::Code;

use crate::support::*;

/// Values that have broken services: a NUL (PostgreSQL refuses it), text far beyond any column and
/// header limit, control characters, and non-ASCII.
fn hostile_values() -> Vec<String> {
    vec!["a\0b".into(), "x".repeat(20_000), "tab\there".into(), "ünïcødé-☃".into(), " ".into()]
}

fn assert_clear_answer(result: Result<(), tonic::Status>, what: &str) {
    if let Err(status) = result {
        assert!(
            matches!(
                status.code(),
                Code::InvalidArgument | Code::NotFound | Code::AlreadyExists | Code::FailedPrecondition
            ),
            "{what}: {:?} {}",
            status.code(),
            status.message().chars().take(200).collect::<String>()
        );
    }
}

/// Every string field of a SKU set, one at a time, to `value`.
fn skus_with(value: &str) -> Vec<(String, pb::Sku)> {
    let base = example_sku("hostile");
    let mut variants: Vec<(String, pb::Sku)> = Vec::new();
    let mut push = |field: &str, sku: pb::Sku| variants.push((field.to_owned(), sku));
    let v = value.to_owned();
    push("id", pb::Sku { id: v.clone(), ..base.clone() });
    push("name", pb::Sku { name: v.clone(), ..base.clone() });
    push("description", pb::Sku { description: v.clone(), ..base.clone() });
    push("eccn", pb::Sku { eccn: v.clone(), ..base.clone() });
    push("tax_code", pb::Sku { tax_code: v.clone(), ..base.clone() });
    push("country_of_origin", pb::Sku { country_of_origin: v.clone(), ..base.clone() });
    push("hs_code", pb::Sku { hs_code: v.clone(), ..base.clone() });
    push("sku_group_id", pb::Sku { sku_group_id: v.clone(), ..base.clone() });
    push("manufacturer_id", pb::Sku { manufacturer_id: v.clone(), ..base.clone() });
    push("part_number", pb::Sku { part_number: v.clone(), ..base.clone() });
    push("image", pb::Sku { image: v.clone(), ..base.clone() });
    push("url", pb::Sku { url: v.clone(), ..base.clone() });
    push("weight_unit", pb::Sku { weight: Some(1.0), weight_unit: v.clone(), ..base.clone() });
    push("managed_fulfillment", pb::Sku { managed_fulfillment: v.clone(), ..base.clone() });
    push("item_breadcrumb", pb::Sku { item_breadcrumb: v.clone(), ..base.clone() });
    push("metadata key", pb::Sku { metadata: [(v.clone(), "v".to_owned())].into(), ..base.clone() });
    push("metadata value", pb::Sku { metadata: [("k".to_owned(), v.clone())].into(), ..base.clone() });
    variants
}

async fn hostile_strings_never_reach_internal(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    create(&mut client, example_sku("existing")).await.expect("created");
    for value in hostile_values() {
        for (field, sku) in skus_with(&value) {
            let what = format!("{field} = {:?}", value.chars().take(12).collect::<String>());
            assert_clear_answer(create(&mut client, sku.clone()).await.map(drop), &format!("create {what}"));
            let upsert = client.upsert_sku(pb::UpsertSkuRequest { sku: Some(sku.clone()) }).await;
            assert_clear_answer(upsert.map(drop), &format!("upsert {what}"));
            let update = pb::UpdateSkuRequest {
                sku: Some(pb::Sku { id: if field == "id" { sku.id.clone() } else { "existing".into() }, ..sku }),
                update_mask: None,
            };
            assert_clear_answer(client.update_sku(update).await.map(drop), &format!("update {what}"));
        }
        assert_clear_answer(get(&mut client, &value).await.map(drop), "get");
        assert_clear_answer(client.delete_sku(pb::DeleteSkuRequest { id: value.clone() }).await.map(drop), "delete");
        let filters = [
            pb::ListSkusRequest { ids: vec![value.clone()], ..Default::default() },
            pb::ListSkusRequest { eccn: value.clone(), ..Default::default() },
            pb::ListSkusRequest { part_number: value.clone(), ..Default::default() },
            pb::ListSkusRequest { hs_code: value.clone(), ..Default::default() },
            pb::ListSkusRequest { tax_code: value.clone(), ..Default::default() },
            pb::ListSkusRequest { sku_group_id: value.clone(), ..Default::default() },
            pb::ListSkusRequest { page_token: value.clone(), ..Default::default() },
        ];
        for request in filters {
            assert_clear_answer(client.list_skus(request).await.map(drop), "list");
        }
        let part = pb::RegisterManufacturerPartRequest { manufacturer_id: value.clone(), part_number: value.clone() };
        assert_clear_answer(client.register_manufacturer_part(part).await.map(drop), "register part");
        let parts = pb::ListManufacturerPartsRequest {
            manufacturer_id: value.clone(),
            part_number: value.clone(),
            page_token: value.clone(),
            ..Default::default()
        };
        assert_clear_answer(client.list_manufacturer_parts(parts).await.map(drop), "list parts");
        let delete = pb::DeleteManufacturerPartRequest { manufacturer_id: value.clone(), part_number: value.clone() };
        assert_clear_answer(client.delete_manufacturer_part(delete).await.map(drop), "delete part");
    }
    let huge_ids = pb::ListSkusRequest { ids: (0..5_000).map(|n| format!("id{n}")).collect(), ..Default::default() };
    let status = client.list_skus(huge_ids).await.expect_err("too many ids");
    assert_eq!(status.code(), Code::InvalidArgument);
    // Whatever was accepted is clean: no control characters, nothing beyond the column limits.
    let listed = client
        .list_skus(pb::ListSkusRequest { page_size: 100, ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    for sku in listed.skus {
        let texts = [
            &sku.id,
            &sku.name,
            &sku.description,
            &sku.sku_group_id,
            &sku.manufacturer_id,
            &sku.part_number,
            &sku.image,
            &sku.url,
            &sku.item_breadcrumb,
        ];
        for text in texts.into_iter().chain(sku.metadata.keys()).chain(sku.metadata.values()) {
            assert!(!text.chars().any(char::is_control) && text.chars().count() <= 4096, "{:?}", sku.id);
        }
    }
}

on_every_backend!(hostile_strings_never_reach_internal);

async fn hostile_strings_never_reach_internal_in_the_inventory_or_reservations(backend: Backend) {
    use fulfillment_proto::common::v1::Address;
    use fulfillment_proto::inventory::v1 as inv;
    use fulfillment_proto::reservation::v1 as res;

    let (inventory_service, mut inventory) = suite_tests::Spawn::on(backend).inventory().await;
    let (_reservation_service, mut reservations) =
        suite_tests::Spawn::on(backend).reservation(inventory_service.address).await;
    crate::inventory_support::warehouse(&mut inventory, "w", &[], 0).await;
    crate::inventory_support::item(&mut inventory, "a").await;
    for value in hostile_values() {
        let v = || value.clone();
        let item = inv::InventoryItem {
            id: v(),
            manufacturer_id: v(),
            part_number: v(),
            eccn: v(),
            hs_code: v(),
            country_of_origin: v(),
            owner_sku_id: String::new(),
            ..Default::default()
        };
        let created = inventory
            .create_inventory_item(inv::CreateInventoryItemRequest { inventory_item: Some(item.clone()) })
            .await;
        assert_clear_answer(created.map(drop), "create item");
        let update = inv::UpdateInventoryItemRequest {
            inventory_item: Some(inv::InventoryItem { id: "a".into(), ..item }),
            update_mask: None,
        };
        assert_clear_answer(inventory.update_inventory_item(update).await.map(drop), "update item");
        assert_clear_answer(
            inventory.get_inventory_item(inv::GetInventoryItemRequest { id: v() }).await.map(drop),
            "get item",
        );
        let list = inv::ListInventoryItemsRequest {
            ids: vec![v()],
            manufacturer_id: v(),
            part_number: v(),
            page_token: v(),
            ..Default::default()
        };
        assert_clear_answer(inventory.list_inventory_items(list).await.map(drop), "list items");
        let warehouse =
            inv::Warehouse { id: v(), name: v(), country: v(), ship_to_countries: vec![v()], ..Default::default() };
        assert_clear_answer(
            inventory.create_warehouse(inv::CreateWarehouseRequest { warehouse: Some(warehouse) }).await.map(drop),
            "create warehouse",
        );
        assert_clear_answer(
            inventory.get_warehouse(inv::GetWarehouseRequest { id: v() }).await.map(drop),
            "get warehouse",
        );
        assert_clear_answer(
            inventory.delete_warehouse(inv::DeleteWarehouseRequest { id: v() }).await.map(drop),
            "delete warehouse",
        );
        let stock = inv::AdjustStockRequest {
            inventory_item_id: v(),
            warehouse_id: v(),
            kind: inv::StockChangeKind::Receive.into(),
            quantity: 1,
            reason: v(),
            idempotency_key: v(),
        };
        assert_clear_answer(inventory.adjust_stock(stock).await.map(drop), "adjust stock");
        let stock = inv::AdjustStockRequest {
            inventory_item_id: "a".into(),
            warehouse_id: "w".into(),
            kind: inv::StockChangeKind::Receive.into(),
            quantity: 1,
            reason: v(),
            idempotency_key: v(),
        };
        assert_clear_answer(inventory.adjust_stock(stock).await.map(drop), "adjust stock text");
        let levels =
            inv::GetInventoryLevelsRequest { inventory_item_ids: vec![v()], ship_to_country: v(), min_available: None };
        assert_clear_answer(inventory.get_inventory_levels(levels).await.map(drop), "levels");
        let hold =
            crate::inventory_support::hold_request(&value, vec![crate::inventory_support::line(&value, 1)], &value);
        assert_clear_answer(inventory.place_hold(hold).await.map(drop), "place hold");
        assert_clear_answer(
            inventory.release_hold(inv::ReleaseHoldRequest { hold_id: v() }).await.map(drop),
            "release hold",
        );

        let reservation = res::Reservation {
            id: v(),
            items: vec![res::ReservationItem { inventory_item_id: v(), quantity: 1, allow_oversell: None }],
            ship_to: Some(res::ShipTo {
                address: Some(Address {
                    line1: v(),
                    city: v(),
                    postal_code: v(),
                    state: v(),
                    country: v(),
                    ..Default::default()
                }),
            }),
            shipping_choice: Some(res::ShippingChoice { currency: v(), amount: 1.0, service_level: v() }),
            ..Default::default()
        };
        let created =
            reservations.create_reservation(res::CreateReservationRequest { reservation: Some(reservation) }).await;
        assert_clear_answer(created.map(drop), "create reservation");
        assert_clear_answer(
            reservations.get_reservation(res::GetReservationRequest { id: v() }).await.map(drop),
            "get reservation",
        );
        assert_clear_answer(
            reservations.cancel_reservation(res::CancelReservationRequest { id: v() }).await.map(drop),
            "cancel",
        );
        let order = res::CreateFulfillmentOrderRequest { reservation_id: v(), upstream_id: v(), items: Vec::new() };
        assert_clear_answer(reservations.create_fulfillment_order(order).await.map(drop), "fulfill");
        let list = res::ListReservationsRequest { page_token: v(), ..Default::default() };
        assert_clear_answer(reservations.list_reservations(list).await.map(drop), "list reservations");
    }
}

on_every_backend!(hostile_strings_never_reach_internal_in_the_inventory_or_reservations);
