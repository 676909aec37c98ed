//! The SKU operations that succeed: what they store and answer.

use fulfillment_proto::catalog::v1 as pb;
use suite_tests::{Backend, Spawn, on_every_backend};
use tonic::Code;

use crate::support::*;

async fn create_answers_the_documents_sku(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let id = "3170de75-68f8-4d54-9176-211f0e680136";
    let sku = create(&mut client, example_sku(id)).await.expect("created");
    assert_eq!(sku.id, id);
    assert_eq!(sku.name, "Test Product");
    assert!(sku.physical, "4323.310_A is physical software");
    assert_eq!(sku.allow_oversell, Some(true));
    assert!(!sku.fulfill);
    assert!(sku.live_mode, "made with a live key");
    assert!(sku.created_time.is_some());
    assert_eq!(sku.created_time, sku.updated_time);
    assert_eq!(get(&mut client, id).await.expect("stored"), sku, "get answers what create answered");
}

async fn create_generates_an_id_when_none_is_given(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let first = create(&mut client, example_sku("")).await.expect("created");
    let second = create(&mut client, example_sku("")).await.expect("created");
    assert!(first.id.starts_with("sku_"), "{}", first.id);
    assert_ne!(first.id, second.id);
    assert_eq!(get(&mut client, &first.id).await.expect("stored").id, first.id);
}

async fn a_digital_sku_is_not_physical(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let sku = pb::Sku { tax_code: "81112106".into(), part_number: String::new(), ..example_sku("word-editor") };
    let sku = create(&mut client, sku).await.expect("created");
    assert!(!sku.physical);
    assert_eq!(sku.allow_oversell, None);
}

async fn every_attribute_round_trips(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let sent = pb::Sku {
        description: "A product".into(),
        hs_code: "1006.20.4025".into(),
        sku_group_id: "group-1".into(),
        manufacturer_id: "20013".into(),
        image: "https://imageurl.com".into(),
        url: "https://producturl.com".into(),
        weight: Some(8.88),
        weight_unit: "kg".into(),
        allow_oversell: Some(false),
        fulfill: true,
        item_breadcrumb: "Home > Tools".into(),
        metadata: [("coupon".to_owned(), "iOS".to_owned())].into(),
        ..example_sku("full")
    };
    let stored = create(&mut client, sent.clone()).await.expect("created");
    let fetched = get(&mut client, "full").await.expect("stored");
    assert_eq!(fetched, stored);
    assert!(fetched.live_mode, "made with a live key");
    let without_outputs =
        pb::Sku { physical: false, live_mode: false, created_time: None, updated_time: None, ..fetched };
    assert_eq!(without_outputs, sent);
}

async fn creating_again_with_the_same_attributes_answers_the_stored_sku(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let first = create(&mut client, example_sku("retry-me")).await.expect("created");
    let again = create(&mut client, example_sku("retry-me")).await.expect("a retry succeeds");
    assert_eq!(again, first, "the stored SKU, timestamps included");
}

async fn a_new_weight_without_a_unit_is_in_ounces_again(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    create(&mut client, pb::Sku { weight: Some(2.0), weight_unit: "kg".into(), ..example_sku("w") })
        .await
        .expect("created");
    let sku = pb::Sku { id: "w".into(), weight: Some(3.0), ..Default::default() };
    let updated = client.update_sku(pb::UpdateSkuRequest { sku: Some(sku), update_mask: None }).await.expect("update");
    let updated = updated.into_inner().sku.expect("sku");
    assert_eq!((updated.weight, updated.weight_unit.as_str()), (Some(3.0), "oz"));
    let sku = pb::Sku { id: "w".into(), name: "renamed".into(), ..Default::default() };
    let renamed = client.update_sku(pb::UpdateSkuRequest { sku: Some(sku), update_mask: None }).await.expect("update");
    assert_eq!(renamed.into_inner().sku.expect("sku").weight_unit, "oz", "an update without a weight keeps the unit");
}

async fn a_weight_without_a_unit_is_in_ounces(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let sku = create(&mut client, pb::Sku { weight: Some(8.88), ..example_sku("w") }).await.expect("created");
    assert_eq!((sku.weight, sku.weight_unit.as_str()), (Some(8.88), "oz"));
}

async fn a_managed_sku_with_a_registered_part_is_created(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    register_part(&mut client, "20013", "DEMOPARTNUMBER2").await;
    let sku = create(&mut client, managed_sku("sku_demo_1617140947939")).await.expect("created");
    assert_eq!(sku.managed_fulfillment, "DRGlobalFulfillment");
    assert!(sku.physical);
    assert_eq!(sku.metadata.get("application").map(String::as_str), Some("iOS-LLL"));
}

async fn a_managed_sku_naming_only_a_part_takes_its_manufacturer_from_the_registry(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    register_part(&mut client, "20013", "DEMOPARTNUMBER2").await;
    let sku =
        create(&mut client, pb::Sku { manufacturer_id: String::new(), ..managed_sku("s1") }).await.expect("created");
    assert_eq!(sku.manufacturer_id, "20013");
    // With two manufacturers for the part, the SKU must say which.
    register_part(&mut client, "30000", "DEMOPARTNUMBER2").await;
    let status = create(&mut client, pb::Sku { manufacturer_id: String::new(), ..managed_sku("s2") })
        .await
        .expect_err("ambiguous");
    assert_eq!(status.code(), Code::FailedPrecondition);
}

async fn upsert_says_whether_it_created_or_updated(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let sku =
        pb::Sku { tax_code: "81112106".into(), name: "Wiser Word Editor".into(), ..example_sku("sku_5823595932") };
    let first = client.upsert_sku(pb::UpsertSkuRequest { sku: Some(sku.clone()) }).await.expect("upsert").into_inner();
    assert!(first.created);
    let created = first.sku.expect("sku");
    assert_eq!(created.created_time, created.updated_time, "a created SKU's times are identical");

    let changed = pb::Sku { description: "Wiser Word Editor".into(), ..sku };
    let second = client.upsert_sku(pb::UpsertSkuRequest { sku: Some(changed) }).await.expect("upsert").into_inner();
    assert!(!second.created);
    let updated = second.sku.expect("sku");
    assert_eq!(updated.description, "Wiser Word Editor");
    assert_eq!(updated.created_time, created.created_time);
    assert!(instant(&updated.updated_time) > instant(&updated.created_time), "an updated SKU's updated time is later");
}

async fn upsert_keeps_attributes_it_does_not_name(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    create(&mut client, pb::Sku { description: "kept".into(), ..example_sku("s1") }).await.expect("created");
    let upsert = pb::Sku { tax_code: "81112106".into(), ..example_sku("s1") };
    let sku = client
        .upsert_sku(pb::UpsertSkuRequest { sku: Some(upsert) })
        .await
        .expect("upsert")
        .into_inner()
        .sku
        .expect("sku");
    assert_eq!(sku.description, "kept");
    assert_eq!(sku.tax_code, "81112106");
    assert!(!sku.physical, "physical follows the new tax code");
}

async fn concurrent_upserts_of_a_new_id_create_it_once(backend: Backend) {
    let (_catalog, client) = Spawn::on(backend).catalog_and_inventory().await;
    let calls =
        (0..8).map(|n| {
            let mut client = client.clone();
            let sku = pb::Sku { description: format!("writer {n}"), ..example_sku("raced") };
            async move {
                client.upsert_sku(pb::UpsertSkuRequest { sku: Some(sku) }).await.expect("upsert").into_inner().created
            }
        });
    let created = futures::future::join_all(calls).await;
    assert_eq!(created.iter().filter(|c| **c).count(), 1, "{created:?}");
}

async fn update_without_a_mask_changes_only_what_is_given(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    create(&mut client, pb::Sku { description: "kept".into(), ..example_sku("sku_demo2") }).await.expect("created");
    let sku = pb::Sku {
        id: "sku_demo2".into(),
        country_of_origin: "US".into(),
        name: "renamed".into(),
        ..Default::default()
    };
    let updated = client.update_sku(pb::UpdateSkuRequest { sku: Some(sku), update_mask: None }).await.expect("update");
    let updated = updated.into_inner().sku.expect("sku");
    assert_eq!(
        (updated.name.as_str(), updated.description.as_str(), updated.eccn.as_str()),
        ("renamed", "kept", "EAR99")
    );
    assert!(instant(&updated.updated_time) > instant(&updated.created_time));
}

async fn update_with_a_mask_clears_managed_fulfillment(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    register_part(&mut client, "20013", "DEMOPARTNUMBER2").await;
    create(&mut client, managed_sku("sku_demo_1617153057380")).await.expect("created");
    let request = pb::UpdateSkuRequest {
        sku: Some(pb::Sku { id: "sku_demo_1617153057380".into(), ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["managed_fulfillment".into()] }),
    };
    let sku = client.update_sku(request).await.expect("update").into_inner().sku.expect("sku");
    assert_eq!(sku.managed_fulfillment, "");
    assert!(sku.physical);
    assert_eq!(get(&mut client, &sku.id).await.expect("stored").managed_fulfillment, "");
    // And set again, through the JSON spelling of the path.
    let request = pb::UpdateSkuRequest {
        sku: Some(pb::Sku {
            id: sku.id.clone(),
            managed_fulfillment: "DRGlobalFulfillment".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["managedFulfillment".into()] }),
    };
    let sku = client.update_sku(request).await.expect("update").into_inner().sku.expect("sku");
    assert_eq!(sku.managed_fulfillment, "DRGlobalFulfillment");
}

async fn making_a_sku_managed_checks_the_requirements(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    create(&mut client, pb::Sku { part_number: String::new(), ..example_sku("s1") }).await.expect("created");
    let request = pb::UpdateSkuRequest {
        sku: Some(pb::Sku { id: "s1".into(), managed_fulfillment: "DRGlobalFulfillment".into(), ..Default::default() }),
        update_mask: None,
    };
    let status = client.update_sku(request).await.expect_err("no part number");
    assert_invalid(&status, "partNumber", "'null' is not a valid parameter.");
    assert_eq!(get(&mut client, "s1").await.expect("kept").managed_fulfillment, "");
}

async fn delete_removes_the_sku(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    create(&mut client, example_sku("gone")).await.expect("created");
    client.delete_sku(pb::DeleteSkuRequest { id: "gone".into() }).await.expect("deleted");
    assert_eq!(get(&mut client, "gone").await.expect_err("deleted").code(), Code::NotFound);
    // The id may be used again.
    create(&mut client, example_sku("gone")).await.expect("created again");
}

on_every_backend!(
    create_answers_the_documents_sku,
    create_generates_an_id_when_none_is_given,
    a_digital_sku_is_not_physical,
    every_attribute_round_trips,
    creating_again_with_the_same_attributes_answers_the_stored_sku,
    a_new_weight_without_a_unit_is_in_ounces_again,
    a_weight_without_a_unit_is_in_ounces,
    a_managed_sku_with_a_registered_part_is_created,
    a_managed_sku_naming_only_a_part_takes_its_manufacturer_from_the_registry,
    upsert_says_whether_it_created_or_updated,
    upsert_keeps_attributes_it_does_not_name,
    concurrent_upserts_of_a_new_id_create_it_once,
    update_without_a_mask_changes_only_what_is_given,
    update_with_a_mask_clears_managed_fulfillment,
    making_a_sku_managed_checks_the_requirements,
    delete_removes_the_sku
);
