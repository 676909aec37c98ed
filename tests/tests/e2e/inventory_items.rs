//! Inventory items through the gRPC client: the document's attributes, rules, wording, and the
//! ownership guard.

use fulfillment_proto::inventory::v1 as pb;
use suite_tests::{Backend, Spawn, on_every_backend};
use tonic::Code;
use tonic_types::StatusExt;

use crate::inventory_support::*;
use crate::support::{assert_invalid, reason};

fn document_item(id: &str) -> pb::InventoryItem {
    pb::InventoryItem {
        id: id.to_owned(),
        manufacturer_id: "20013".into(),
        part_number: "DEMOPARTNUMBER2".into(),
        eccn: "EAR99".into(),
        hs_code: "6404.20".into(),
        country_of_origin: "DK".into(),
        allow_oversell: Some(false),
        ..Default::default()
    }
}

async fn create(client: &mut Inventory, item: pb::InventoryItem) -> Result<pb::InventoryItem, tonic::Status> {
    let response = client.create_inventory_item(pb::CreateInventoryItemRequest { inventory_item: Some(item) }).await?;
    Ok(response.into_inner().inventory_item.expect("item"))
}

use suite_tests::as_catalog;

async fn the_documents_item_is_created_and_read_back(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    let created = create(&mut client, document_item("8d7b212f-2a19-4530-84b9-aa76e8dad4eb")).await.expect("created");
    assert_eq!(created.allow_oversell, Some(false));
    assert_eq!(created.created_time, created.updated_time);
    let fetched = client.get_inventory_item(pb::GetInventoryItemRequest { id: created.id.clone() }).await.expect("get");
    assert_eq!(fetched.into_inner().inventory_item, Some(created));
    let generated =
        create(&mut client, pb::InventoryItem { id: String::new(), ..document_item("") }).await.expect("created");
    assert!(generated.id.starts_with("item_"), "{}", generated.id);
}

async fn the_documents_errors_keep_their_wording(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    let status = create(&mut client, pb::InventoryItem { country_of_origin: "KP".into(), ..document_item("a") })
        .await
        .expect_err("KP");
    assert_invalid(&status, "countryOfOrigin", "'KP' is not a valid Country of Origin.");
    let status = create(&mut client, pb::InventoryItem { hs_code: "1234.56.YW".into(), ..document_item("a") })
        .await
        .expect_err("HS");
    assert_invalid(&status, "hsCode", "'1234.56.YW' is not a valid HS code.");
    let status = client.get_inventory_item(pb::GetInventoryItemRequest { id: "x".into() }).await.expect_err("absent");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "InventoryItem 'x' not found.");
    let status = create(&mut client, document_item("a b")).await.expect_err("bad id");
    assert_invalid(&status, "id", "'a b' is not a valid inventory item ID.");
}

async fn creating_again_is_idempotent_only_with_identical_attributes(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    let first = create(&mut client, document_item("same")).await.expect("created");
    assert_eq!(create(&mut client, document_item("same")).await.expect("identical"), first);
    let status = create(&mut client, pb::InventoryItem { part_number: "OTHER".into(), ..document_item("same") })
        .await
        .expect_err("differs");
    assert_eq!(status.code(), Code::AlreadyExists);
}

async fn update_changes_the_masked_attributes(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    create(&mut client, document_item("u")).await.expect("created");
    let request = pb::UpdateInventoryItemRequest {
        inventory_item: Some(pb::InventoryItem {
            id: "u".into(),
            country_of_origin: "US".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["country_of_origin".into(), "hs_code".into()] }),
    };
    let updated =
        client.update_inventory_item(request).await.expect("update").into_inner().inventory_item.expect("item");
    assert_eq!(
        (updated.country_of_origin.as_str(), updated.hs_code.as_str(), updated.part_number.as_str()),
        ("US", "", "DEMOPARTNUMBER2")
    );
    let bad = pb::UpdateInventoryItemRequest {
        inventory_item: Some(pb::InventoryItem {
            id: "u".into(),
            country_of_origin: "KP".into(),
            ..Default::default()
        }),
        update_mask: None,
    };
    let status = client.update_inventory_item(bad).await.expect_err("KP");
    assert_invalid(&status, "countryOfOrigin", "'KP' is not a valid Country of Origin.");
}

async fn items_list_in_pages_and_by_filter(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    for n in 0..5 {
        let part = if n % 2 == 0 { "EVEN" } else { "ODD" };
        create(&mut client, pb::InventoryItem { part_number: part.into(), ..document_item(&format!("i{n}")) })
            .await
            .expect("created");
    }
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_inventory_items(pb::ListInventoryItemsRequest {
                page_size: 2,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        ids.extend(page.inventory_items.into_iter().map(|i| i.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(ids, ["i0", "i1", "i2", "i3", "i4"]);
    let odd = client
        .list_inventory_items(pb::ListInventoryItemsRequest {
            part_number: "ODD".into(),
            manufacturer_id: "20013".into(),
            ..Default::default()
        })
        .await
        .expect("filtered")
        .into_inner();
    assert_eq!(odd.inventory_items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["i1", "i3"]);
    let some = client
        .list_inventory_items(pb::ListInventoryItemsRequest {
            ids: vec!["i4".into(), "i0".into()],
            ..Default::default()
        })
        .await
        .expect("by id")
        .into_inner();
    assert_eq!(some.inventory_items.len(), 2);
}

async fn an_item_owned_by_a_sku_changes_only_through_the_catalog(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    let owned = pb::InventoryItem { owner_sku_id: "sku_1".into(), ..document_item("sku_1") };
    let status = create(&mut client, owned.clone()).await.expect_err("only the catalog names an owner");
    assert_eq!(status.code(), Code::PermissionDenied);
    let created = client
        .create_inventory_item(as_catalog(pb::CreateInventoryItemRequest { inventory_item: Some(owned) }))
        .await
        .expect("the catalog creates it")
        .into_inner()
        .inventory_item
        .expect("item");
    assert_eq!(created.owner_sku_id, "sku_1");

    let update = pb::UpdateInventoryItemRequest {
        inventory_item: Some(pb::InventoryItem { id: "sku_1".into(), part_number: "X".into(), ..Default::default() }),
        update_mask: None,
    };
    let status = client.update_inventory_item(update.clone()).await.expect_err("owned");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "owned_by_sku");
    assert!(status.message().contains("SKU 'sku_1'"), "{}", status.message());
    assert_eq!(status.get_details_resource_info().map(|r| r.resource_name), Some("sku_1".to_owned()));
    let status =
        client.delete_inventory_item(pb::DeleteInventoryItemRequest { id: "sku_1".into() }).await.expect_err("owned");
    assert_eq!(status.code(), Code::FailedPrecondition);

    client.update_inventory_item(as_catalog(update)).await.expect("the catalog may update it");
    client
        .delete_inventory_item(as_catalog(pb::DeleteInventoryItemRequest { id: "sku_1".into() }))
        .await
        .expect("the catalog may delete it");
    let status = client.get_inventory_item(pb::GetInventoryItemRequest { id: "sku_1".into() }).await.expect_err("gone");
    assert_eq!(status.message(), "InventoryItem 'sku_1' not found.");
}

async fn an_item_with_open_holds_cannot_be_deleted(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    item(&mut client, "held").await;
    warehouse(&mut client, "w", &[], 0).await;
    receive(&mut client, "held", "w", 5).await;
    place(&mut client, hold_request("h1", vec![line("held", 2)], "US")).await.expect("held");
    let status = client
        .delete_inventory_item(pb::DeleteInventoryItemRequest { id: "held".into() })
        .await
        .expect_err("open hold");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "open_holds");
    client.release_hold(pb::ReleaseHoldRequest { hold_id: "h1".into() }).await.expect("released");
    client
        .delete_inventory_item(pb::DeleteInventoryItemRequest { id: "held".into() })
        .await
        .expect("deleted once released");
}

on_every_backend!(
    the_documents_item_is_created_and_read_back,
    the_documents_errors_keep_their_wording,
    creating_again_is_idempotent_only_with_identical_attributes,
    update_changes_the_masked_attributes,
    items_list_in_pages_and_by_filter,
    an_item_owned_by_a_sku_changes_only_through_the_catalog,
    an_item_with_open_holds_cannot_be_deleted
);
