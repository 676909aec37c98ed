//! Every documented SKU error, through the gRPC client, with its code and details.

use fulfillment_proto::catalog::v1 as pb;
use suite_tests::{Backend, Spawn, on_every_backend};
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::*;

async fn whitespace_in_an_id_is_the_documents_bad_request(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let status = create(&mut client, example_sku("UGG BB PUR 06")).await.expect_err("spaces are refused");
    assert_invalid(&status, "id", "'UGG BB PUR 06' is not a valid SKU ID.");
    assert_eq!(reason(&status), "invalid_parameter");
}

async fn special_characters_are_invalid_argument_never_internal(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    for c in ['/', '[', ']', '{', '}', '<', '>', '^'] {
        let id = format!("sku{c}1");
        let status = create(&mut client, example_sku(&id)).await.expect_err("refused");
        assert_invalid(&status, "id", &format!("'{id}' is not a valid SKU ID."));
    }
}

async fn the_four_required_fields_are_missing_parameters(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let status = create(&mut client, pb::Sku { id: "s1".into(), ..Default::default() }).await.expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason(&status), "missing_parameter");
    assert_eq!(
        violations(&status),
        vec![
            ("eccn".to_owned(), "The eccn is missing.".to_owned()),
            ("taxCode".to_owned(), "The taxCode is missing.".to_owned()),
            ("name".to_owned(), "The name is missing.".to_owned()),
            ("countryOfOrigin".to_owned(), "The countryOfOrigin is missing.".to_owned()),
        ]
    );
    // Nothing was written.
    assert_eq!(get(&mut client, "s1").await.expect_err("absent").code(), Code::NotFound);
}

async fn upsert_requires_the_create_fields_too(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let sku = pb::Sku { id: "s1".into(), name: "only a name".into(), ..Default::default() };
    let status = client.upsert_sku(pb::UpsertSkuRequest { sku: Some(sku) }).await.expect_err("refused");
    let fields: Vec<String> = violations(&status).into_iter().map(|(field, _)| field).collect();
    assert_eq!(fields, ["eccn", "taxCode", "countryOfOrigin"]);
}

async fn an_embargoed_country_of_origin_is_the_documents_bad_request(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let sku = pb::Sku { country_of_origin: "KP".into(), ..example_sku("s1") };
    let status = create(&mut client, sku).await.expect_err("KP is refused");
    assert_invalid(&status, "countryOfOrigin", "'KP' is not a valid Country of Origin.");
}

async fn an_unknown_country_code_is_refused(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let sku = pb::Sku { country_of_origin: "XX".into(), ..example_sku("s1") };
    let status = create(&mut client, sku).await.expect_err("XX is refused");
    assert_invalid(&status, "countryOfOrigin", "'XX' is not a valid Country of Origin.");
}

async fn a_malformed_hs_code_is_the_documents_bad_request(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let sku = pb::Sku { hs_code: "1234.56.YW".into(), ..example_sku("s1") };
    let status = create(&mut client, sku).await.expect_err("refused");
    assert_invalid(&status, "hsCode", "'1234.56.YW' is not a valid HS code.");
    for (n, good) in ["1006.20.4025", "1006.20.40.25", "6404.20"].into_iter().enumerate() {
        let sku = pb::Sku { hs_code: good.into(), ..example_sku(&format!("hs{n}")) };
        assert_eq!(create(&mut client, sku).await.expect("valid HS code").hs_code, good);
    }
}

async fn an_eccn_off_the_approved_list_is_refused(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let sku = pb::Sku { eccn: "5A002.a.1".into(), ..example_sku("s1") };
    let status = create(&mut client, sku).await.expect_err("refused");
    assert_invalid(&status, "eccn", "'5A002.a.1' is not a valid ECCN.");
}

async fn an_unlisted_tax_code_is_refused(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let sku = pb::Sku { tax_code: "1234".into(), ..example_sku("s1") };
    let status = create(&mut client, sku).await.expect_err("refused");
    assert_invalid(&status, "taxCode", "'1234' is not a valid tax code.");
}

async fn weight_must_be_positive_and_its_unit_known(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let status = create(&mut client, pb::Sku { weight: Some(0.0), ..example_sku("s1") }).await.expect_err("zero");
    assert_invalid(&status, "weight", "'0' is not a valid weight.");
    let sku = pb::Sku { weight: Some(1.5), weight_unit: "stone".into(), ..example_sku("s1") };
    let status = create(&mut client, sku).await.expect_err("unknown unit");
    assert_invalid(&status, "weightUnit", "'stone' is not a valid weight unit.");
}

async fn several_mistakes_are_reported_at_once(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let sku = pb::Sku { country_of_origin: "KP".into(), hs_code: "12".into(), ..example_sku("s1") };
    let status = create(&mut client, sku).await.expect_err("refused");
    let fields: Vec<String> = violations(&status).into_iter().map(|(field, _)| field).collect();
    assert_eq!(fields, ["countryOfOrigin", "hsCode"]);
}

async fn managed_fulfillment_must_be_the_supported_value(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    register_part(&mut client, "20013", "DEMOPARTNUMBER2").await;
    let sku = pb::Sku { managed_fulfillment: "DRGlobalFulfillment^&%^".into(), ..managed_sku("s1") };
    let status = create(&mut client, sku).await.expect_err("refused");
    assert_invalid(&status, "managedFulfillment", "'DRGlobalFulfillment^&%^' is not a valid item type.");
}

async fn a_managed_sku_needs_a_physical_tax_code(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    register_part(&mut client, "20013", "DEMOPARTNUMBER2").await;
    let sku = pb::Sku { tax_code: "4512.100".into(), ..managed_sku("s1") };
    let status = create(&mut client, sku).await.expect_err("refused");
    assert_invalid(&status, "taxCode", "'4512.100' is not a valid parameter.");
}

async fn a_managed_sku_needs_a_part_number(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let sku = pb::Sku { part_number: String::new(), ..managed_sku("s1") };
    let status = create(&mut client, sku).await.expect_err("refused");
    assert_invalid(&status, "partNumber", "'null' is not a valid parameter.");
}

async fn an_unregistered_manufacturer_part_is_the_documents_conflict(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    register_part(&mut client, "99999", "DEMOPARTNUMBER2").await;
    let status = create(&mut client, managed_sku("s1")).await.expect_err("20013 is not registered");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        status.message(),
        "Invalid manufacturer ID. The manufacturer ID and manufacturer part # combination could not be found."
    );
    let info = status.get_details_error_info().expect("error info");
    assert_eq!(info.metadata.get("parameter").map(String::as_str), Some("manufacturerId"));
    let failure = status.get_details_precondition_failure().expect("precondition failure");
    assert_eq!(failure.violations[0].subject, "20013/DEMOPARTNUMBER2");
    assert_eq!(get(&mut client, "s1").await.expect_err("nothing written").code(), Code::NotFound);
}

async fn a_duplicate_id_on_create_is_already_exists(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    create(&mut client, example_sku("dup")).await.expect("first create");
    let status = create(&mut client, pb::Sku { name: "other".into(), ..example_sku("dup") }).await.expect_err("taken");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(status.message(), "SKU 'dup' already exists.");
    let resource = status.get_details_resource_info().expect("resource info");
    assert_eq!((resource.resource_type.as_str(), resource.resource_name.as_str()), ("SKU", "dup"));
    assert_eq!(get(&mut client, "dup").await.expect("kept").name, "Test Product", "the first SKU is untouched");
}

async fn an_unknown_sku_is_not_found_on_get_update_and_delete(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let status = get(&mut client, "nope").await.expect_err("absent");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "SKU 'nope' not found.");
    assert_eq!(status.get_details_resource_info().map(|r| r.resource_name), Some("nope".to_owned()));
    let update = pb::UpdateSkuRequest {
        sku: Some(pb::Sku { id: "nope".into(), name: "x".into(), ..Default::default() }),
        update_mask: None,
    };
    assert_eq!(client.update_sku(update).await.expect_err("absent").code(), Code::NotFound);
    let delete = pb::DeleteSkuRequest { id: "nope".into() };
    assert_eq!(client.delete_sku(delete).await.expect_err("absent").code(), Code::NotFound);
}

async fn an_update_that_breaks_a_rule_changes_nothing(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    create(&mut client, example_sku("s1")).await.expect("created");
    let sku = pb::Sku { id: "s1".into(), country_of_origin: "KP".into(), name: "renamed".into(), ..Default::default() };
    let status = client.update_sku(pb::UpdateSkuRequest { sku: Some(sku), update_mask: None }).await.expect_err("KP");
    assert_invalid(&status, "countryOfOrigin", "'KP' is not a valid Country of Origin.");
    let stored = get(&mut client, "s1").await.expect("still there");
    assert_eq!((stored.country_of_origin.as_str(), stored.name.as_str()), ("US", "Test Product"));
}

async fn a_required_field_cannot_be_cleared(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    create(&mut client, example_sku("s1")).await.expect("created");
    let request = pb::UpdateSkuRequest {
        sku: Some(pb::Sku { id: "s1".into(), ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["eccn".into()] }),
    };
    let status = client.update_sku(request).await.expect_err("eccn is required");
    assert_invalid(&status, "eccn", "The eccn is missing.");
}

async fn an_unknown_mask_path_is_invalid(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    create(&mut client, example_sku("s1")).await.expect("created");
    let request = pb::UpdateSkuRequest {
        sku: Some(pb::Sku { id: "s1".into(), ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["physical".into()] }),
    };
    let status = client.update_sku(request).await.expect_err("output only");
    assert_invalid(&status, "updateMask", "'physical' is not a valid field.");
}

on_every_backend!(
    whitespace_in_an_id_is_the_documents_bad_request,
    special_characters_are_invalid_argument_never_internal,
    the_four_required_fields_are_missing_parameters,
    upsert_requires_the_create_fields_too,
    an_embargoed_country_of_origin_is_the_documents_bad_request,
    an_unknown_country_code_is_refused,
    a_malformed_hs_code_is_the_documents_bad_request,
    an_eccn_off_the_approved_list_is_refused,
    an_unlisted_tax_code_is_refused,
    weight_must_be_positive_and_its_unit_known,
    several_mistakes_are_reported_at_once,
    managed_fulfillment_must_be_the_supported_value,
    a_managed_sku_needs_a_physical_tax_code,
    a_managed_sku_needs_a_part_number,
    an_unregistered_manufacturer_part_is_the_documents_conflict,
    a_duplicate_id_on_create_is_already_exists,
    an_unknown_sku_is_not_found_on_get_update_and_delete,
    an_update_that_breaks_a_rule_changes_nothing,
    a_required_field_cannot_be_cleared,
    an_unknown_mask_path_is_invalid
);
