//! The worst request of each shape that still fits `GRPC_MAX_MESSAGE_BYTES`: a repeated field of
//! millions of empty elements, a mask naming one path a million times, a string of dots. Each is
//! refused with a capped answer naming the field, and writes nothing.

use fulfillment_errors::MAX_VIOLATIONS;
use fulfillment_proto::catalog::v1 as cat;
use fulfillment_proto::common::v1::Address;
use fulfillment_proto::inventory::v1 as inv;
use fulfillment_proto::reservation::v1 as res;
use prost::Message;
use prost_types::FieldMask;
use suite_tests::{Backend, Spawn, on_every_backend};
use tonic::Code;
use tonic_types::StatusExt;

use crate::inventory_support::{hold_request, item, warehouse};
use crate::support::{create, example_sku, get};

/// The servers' default `GRPC_MAX_MESSAGE_BYTES`.
fn limit() -> usize {
    fulfillment_server::ServerOptions::default().max_message_bytes
}

/// `make(n)` with the largest `n` whose encoding fits the [`limit`], less a few bytes: a request that
/// takes the time at each call (an expiry) may encode a byte or two longer the next time.
fn largest<M: Message>(make: impl Fn(usize) -> M) -> M {
    let limit = limit() - 16;
    let (empty, sample) = (make(0).encoded_len(), make(1_000).encoded_len());
    let per_element = (sample - empty) as f64 / 1_000.0;
    let mut n = ((limit - empty) as f64 / per_element) as usize;
    while make(n).encoded_len() > limit {
        n -= n / 100 + 1;
    }
    let message = make(n);
    assert!(message.encoded_len() > limit * 9 / 10, "the request is as large as a server takes");
    message
}

/// Asserts a refusal of bad input naming `field`, with no more details than the cap.
fn assert_refused(result: Result<impl std::fmt::Debug, tonic::Status>, field: &str) {
    let status = result.expect_err("the worst shape is refused");
    assert!(matches!(status.code(), Code::InvalidArgument | Code::OutOfRange), "{field}: {:?}", status.code());
    let violations = status.get_details_bad_request().map(|b| b.field_violations).unwrap_or_default();
    assert!(violations.len() <= MAX_VIOLATIONS, "{field}: {} violations", violations.len());
    assert!(violations.iter().any(|v| v.field.starts_with(field)), "{field}: {violations:?} {status:?}");
    assert!(status.message().len() < 2_000, "{field}: a message of {} bytes", status.message().len());
}

fn mask(n: usize) -> Option<FieldMask> {
    Some(FieldMask { paths: vec!["name".to_owned(); n] })
}

async fn the_catalogs_worst_shapes_are_refused_and_write_nothing(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let before = create(&mut client, example_sku("kept")).await.expect("created");

    let ids = largest(|n| cat::ListSkusRequest { ids: vec![String::new(); n], ..Default::default() });
    assert_refused(client.list_skus(ids).await, "ids");

    let metadata = |n: usize| (0..n).map(|k| (format!("{k:x}"), String::new())).collect();
    let request =
        largest(|n| cat::CreateSkuRequest { sku: Some(cat::Sku { metadata: metadata(n), ..example_sku("meta") }) });
    assert_refused(client.create_sku(request).await, "metadata");
    let request =
        largest(|n| cat::CreateSkuRequest { sku: Some(cat::Sku { hs_code: ".".repeat(n), ..example_sku("dots") }) });
    assert_refused(client.create_sku(request).await, "hsCode");
    for id in ["meta", "dots"] {
        assert_eq!(get(&mut client, id).await.expect_err("not created").code(), Code::NotFound, "{id}");
    }

    let renamed = cat::Sku { name: "renamed".into(), ..before.clone() };
    let request = largest(|n| cat::UpdateSkuRequest { sku: Some(renamed.clone()), update_mask: mask(n) });
    assert_refused(client.update_sku(request).await, "updateMask");
    assert_eq!(get(&mut client, "kept").await.expect("kept").name, before.name, "nothing was changed");
}

async fn the_inventorys_worst_shapes_are_refused_and_write_nothing(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    warehouse(&mut client, "w", &["US"], 0).await;
    let kept = item(&mut client, "kept").await;

    let ids = largest(|n| inv::GetInventoryLevelsRequest {
        inventory_item_ids: vec![String::new(); n],
        ..Default::default()
    });
    assert_refused(client.get_inventory_levels(ids).await, "inventoryItemIds");
    let ids = largest(|n| inv::ListInventoryItemsRequest { ids: vec![String::new(); n], ..Default::default() });
    assert_refused(client.list_inventory_items(ids).await, "ids");

    let countries = |n: usize| inv::Warehouse {
        id: "many".into(),
        name: "Many".into(),
        country: "US".into(),
        ship_to_countries: vec!["US,DE".into(); n],
        ..Default::default()
    };
    let request = largest(|n| inv::CreateWarehouseRequest { warehouse: Some(countries(n)) });
    assert_refused(client.create_warehouse(request).await, "shipToCountries");
    let request = largest(|n| inv::UpdateWarehouseRequest {
        warehouse: Some(inv::Warehouse { id: "w".into(), ..countries(n) }),
        update_mask: None,
    });
    assert_refused(client.update_warehouse(request).await, "shipToCountries");
    let request = largest(|n| inv::UpdateWarehouseRequest {
        warehouse: Some(inv::Warehouse { id: "w".into(), name: "renamed".into(), ..Default::default() }),
        update_mask: mask(n),
    });
    assert_refused(client.update_warehouse(request).await, "updateMask");
    // Two countries in one element are one bad code, not two countries.
    let request = inv::CreateWarehouseRequest { warehouse: Some(countries(1)) };
    assert_refused(client.create_warehouse(request).await, "shipToCountries");
    let warehouses = client.list_warehouses(inv::ListWarehousesRequest::default()).await.expect("listed").into_inner();
    let warehouses: Vec<_> =
        warehouses.warehouses.iter().map(|w| (w.id.as_str(), w.name.as_str(), w.ship_to_countries.clone())).collect();
    assert_eq!(warehouses, [("w", "Warehouse w", vec!["US".to_owned()])], "nothing was written");

    let request = largest(|n| inv::UpdateInventoryItemRequest {
        inventory_item: Some(inv::InventoryItem { id: "kept".into(), ..Default::default() }),
        update_mask: Some(FieldMask { paths: vec!["eccn".into(); n] }),
    });
    assert_refused(client.update_inventory_item(request).await, "updateMask");
    let request = largest(|n| inv::CreateInventoryItemRequest {
        inventory_item: Some(inv::InventoryItem { id: "dots".into(), hs_code: ".".repeat(n), ..Default::default() }),
    });
    assert_refused(client.create_inventory_item(request).await, "hsCode");
    let items =
        client.list_inventory_items(inv::ListInventoryItemsRequest::default()).await.expect("listed").into_inner();
    assert_eq!(items.inventory_items, [kept], "nothing was written");

    let request = largest(|n| hold_request("h", vec![inv::HoldRequestLine::default(); n], "US"));
    assert_refused(client.place_hold(request).await, "lines");
    let status = client.get_hold(inv::GetHoldRequest { hold_id: "h".into() }).await.expect_err("no hold");
    assert_eq!(status.code(), Code::NotFound);
}

async fn the_reservation_services_worst_shapes_are_refused_and_write_nothing(backend: Backend) {
    let (inventory_service, _inventory) = Spawn::on(backend).inventory().await;
    let (_reservations, mut client) = Spawn::on(backend).reservation(inventory_service.address).await;
    let reservation = |n: usize| res::Reservation {
        id: "r".into(),
        items: vec![res::ReservationItem::default(); n],
        ship_to: Some(res::ShipTo { address: Some(Address { country: "US".into(), ..Default::default() }) }),
        ..Default::default()
    };
    let request = largest(|n| res::CreateReservationRequest { reservation: Some(reservation(n)) });
    assert_refused(client.create_reservation(request).await, "items");
    let request = largest(|n| res::CreateFulfillmentOrderRequest {
        reservation_id: "r".into(),
        upstream_id: "o".into(),
        items: vec![res::ReservationItem::default(); n],
    });
    assert_refused(client.create_fulfillment_order(request).await, "items");
    let status = client.get_reservation(res::GetReservationRequest { id: "r".into() }).await.expect_err("none");
    assert_eq!(status.code(), Code::NotFound);
    let listed = client.list_reservations(res::ListReservationsRequest::default()).await.expect("listed").into_inner();
    assert!(listed.reservations.is_empty(), "nothing was written");
}

on_every_backend!(
    the_catalogs_worst_shapes_are_refused_and_write_nothing,
    the_inventorys_worst_shapes_are_refused_and_write_nothing,
    the_reservation_services_worst_shapes_are_refused_and_write_nothing
);
