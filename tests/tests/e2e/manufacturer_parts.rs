//! The manufacturer-parts registry.

use fulfillment_proto::catalog::v1 as pb;
use suite_tests::{Backend, Spawn, on_every_backend};
use tonic::Code;

use crate::support::*;

async fn list_parts(client: &mut Client, request: pb::ListManufacturerPartsRequest) -> Vec<(String, String)> {
    let mut parts = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_manufacturer_parts(pb::ListManufacturerPartsRequest { page_token: token, ..request.clone() })
            .await
            .expect("a page")
            .into_inner();
        parts.extend(page.manufacturer_parts.into_iter().map(|p| (p.manufacturer_id, p.part_number)));
        if page.next_page_token.is_empty() {
            return parts;
        }
        token = page.next_page_token;
    }
}

fn pair(manufacturer_id: &str, part_number: &str) -> (String, String) {
    (manufacturer_id.to_owned(), part_number.to_owned())
}

async fn registering_twice_keeps_one_registration(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let request = pb::RegisterManufacturerPartRequest { manufacturer_id: "20013".into(), part_number: "P1".into() };
    let first = client.register_manufacturer_part(request.clone()).await.expect("registered").into_inner();
    let again = client.register_manufacturer_part(request).await.expect("registered again").into_inner();
    assert_eq!(first, again, "the first registration is returned");
    assert_eq!(list_parts(&mut client, Default::default()).await, [pair("20013", "P1")]);
}

async fn parts_list_in_pages_and_by_filter(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    for (manufacturer, part) in [("m2", "p1"), ("m1", "p2"), ("m1", "p1"), ("m3", "p1")] {
        register_part(&mut client, manufacturer, part).await;
    }
    let all = list_parts(&mut client, pb::ListManufacturerPartsRequest { page_size: 1, ..Default::default() }).await;
    assert_eq!(all, [pair("m1", "p1"), pair("m1", "p2"), pair("m2", "p1"), pair("m3", "p1")]);
    let of_m1 = list_parts(
        &mut client,
        pb::ListManufacturerPartsRequest { manufacturer_id: "m1".into(), ..Default::default() },
    )
    .await;
    assert_eq!(of_m1, [pair("m1", "p1"), pair("m1", "p2")]);
    let of_p1 =
        list_parts(&mut client, pb::ListManufacturerPartsRequest { part_number: "p1".into(), ..Default::default() })
            .await;
    assert_eq!(of_p1.len(), 3);
}

async fn registration_needs_both_halves(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let status = client
        .register_manufacturer_part(pb::RegisterManufacturerPartRequest {
            manufacturer_id: String::new(),
            part_number: "P1".into(),
        })
        .await
        .expect_err("no manufacturer");
    assert_invalid(&status, "manufacturerId", "The manufacturerId is missing.");
}

async fn a_part_in_use_by_a_managed_sku_cannot_be_removed(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    register_part(&mut client, "20013", "DEMOPARTNUMBER2").await;
    create(&mut client, managed_sku("s1")).await.expect("created");
    let delete =
        pb::DeleteManufacturerPartRequest { manufacturer_id: "20013".into(), part_number: "DEMOPARTNUMBER2".into() };
    let status = client.delete_manufacturer_part(delete.clone()).await.expect_err("in use");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "manufacturer_part_in_use");
    client.delete_sku(pb::DeleteSkuRequest { id: "s1".into() }).await.expect("deleted");
    client.delete_manufacturer_part(delete.clone()).await.expect("no longer in use");
    assert!(list_parts(&mut client, Default::default()).await.is_empty());
    let status = client.delete_manufacturer_part(delete).await.expect_err("already gone");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "ManufacturerPart '20013/DEMOPARTNUMBER2' not found.");
}

on_every_backend!(
    registering_twice_keeps_one_registration,
    parts_list_in_pages_and_by_filter,
    registration_needs_both_halves,
    a_part_in_use_by_a_managed_sku_cannot_be_removed
);

async fn removing_a_part_never_strands_a_managed_sku(backend: Backend) {
    let (_catalog, client) = Spawn::on(backend).catalog_and_inventory().await;
    for round in 0..20 {
        let part = format!("RACE-{round}");
        let mut setup = client.clone();
        register_part(&mut setup, "20013", &part).await;
        let mut creator = client.clone();
        let mut remover = client.clone();
        let sku = pb::Sku { part_number: part.clone(), ..managed_sku(&format!("race-{round}")) };
        let delete = pb::DeleteManufacturerPartRequest { manufacturer_id: "20013".into(), part_number: part.clone() };
        let (created, removed) = tokio::join!(create(&mut creator, sku), remover.delete_manufacturer_part(delete));
        // One of them wins; never both.
        assert!(created.is_ok() != removed.is_ok(), "round {round}: created {created:?}, removed {removed:?}");
        if created.is_ok() {
            let parts = list_parts(
                &mut setup,
                pb::ListManufacturerPartsRequest { part_number: part.clone(), ..Default::default() },
            )
            .await;
            assert_eq!(parts, [pair("20013", &part)], "the managed SKU's part is still registered");
        }
    }
}

on_every_backend!(removing_a_part_never_strands_a_managed_sku);
