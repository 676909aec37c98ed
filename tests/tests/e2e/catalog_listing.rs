//! ListSkus: filters, page sizes, tokens, and pages that stay right while SKUs are added.

use std::collections::HashSet;

use fulfillment_proto::catalog::v1 as pb;
use fulfillment_proto::common::v1::TimeRange;
use suite_tests::{Backend, Spawn, on_every_backend};
use tonic::Code;

use crate::support::*;

async fn list(client: &mut Client, request: pb::ListSkusRequest) -> Result<pb::ListSkusResponse, tonic::Status> {
    Ok(client.list_skus(request).await?.into_inner())
}

/// Every id, following the tokens to the end.
async fn list_all(client: &mut Client, request: pb::ListSkusRequest) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(client, pb::ListSkusRequest { page_token: token, ..request.clone() }).await.expect("a page");
        ids.extend(page.skus.into_iter().map(|sku| sku.id));
        if page.next_page_token.is_empty() {
            return ids;
        }
        token = page.next_page_token;
    }
}

async fn pages_default_to_ten_and_follow_creation_order(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let mut created = Vec::new();
    for n in 0..23 {
        created.push(create(&mut client, example_sku(&format!("sku-{n:02}"))).await.expect("created").id);
    }
    let first = list(&mut client, pb::ListSkusRequest::default()).await.expect("page");
    assert_eq!(first.skus.len(), 10);
    assert!(!first.next_page_token.is_empty());
    assert_eq!(list_all(&mut client, pb::ListSkusRequest { page_size: 7, ..Default::default() }).await, created);
    let last = list(&mut client, pb::ListSkusRequest { page_size: 100, ..Default::default() }).await.expect("page");
    assert_eq!(last.skus.len(), 23);
    assert!(last.next_page_token.is_empty());
}

async fn page_size_and_token_are_checked(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    for page_size in [-1, 101] {
        let status =
            list(&mut client, pb::ListSkusRequest { page_size, ..Default::default() }).await.expect_err("out of range");
        assert_invalid(
            &status,
            "pageSize",
            &format!("'{page_size}' is not a valid page size. It must be between 1 and 100."),
        );
    }
    let status = list(&mut client, pb::ListSkusRequest { page_token: "garbage!".into(), ..Default::default() })
        .await
        .expect_err("bad token");
    assert_invalid(&status, "pageToken", "'garbage!' is not a valid page token.");
}

async fn filters_select_matching_skus(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    create(&mut client, pb::Sku { hs_code: "6404.20".into(), sku_group_id: "g1".into(), ..example_sku("a") })
        .await
        .expect("a");
    create(&mut client, pb::Sku { eccn: "5D992.c".into(), part_number: "P-2".into(), ..example_sku("b") })
        .await
        .expect("b");
    create(&mut client, pb::Sku { tax_code: "81112106".into(), part_number: String::new(), ..example_sku("c") })
        .await
        .expect("c");
    let cases = [
        (pb::ListSkusRequest { ids: vec!["a".into(), "c".into(), "zz".into()], ..Default::default() }, vec!["a", "c"]),
        (pb::ListSkusRequest { eccn: "5D992.c".into(), ..Default::default() }, vec!["b"]),
        (pb::ListSkusRequest { part_number: "P-2".into(), ..Default::default() }, vec!["b"]),
        (pb::ListSkusRequest { hs_code: "6404.20".into(), ..Default::default() }, vec!["a"]),
        (pb::ListSkusRequest { tax_code: "81112106".into(), ..Default::default() }, vec!["c"]),
        (pb::ListSkusRequest { sku_group_id: "g1".into(), ..Default::default() }, vec!["a"]),
        (pb::ListSkusRequest { eccn: "EAR99".into(), tax_code: "4323.310_A".into(), ..Default::default() }, vec!["a"]),
    ];
    for (request, expected) in cases {
        assert_eq!(list_all(&mut client, request.clone()).await, expected, "{request:?}");
    }
}

async fn time_ranges_are_half_open(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let a = create(&mut client, example_sku("a")).await.expect("a");
    let b = create(&mut client, example_sku("b")).await.expect("b");
    let from_b = TimeRange { start: b.created_time, end: None };
    assert_eq!(
        list_all(&mut client, pb::ListSkusRequest { created_time: Some(from_b), ..Default::default() }).await,
        ["b"]
    );
    let before_b = TimeRange { start: None, end: b.created_time };
    assert_eq!(
        list_all(&mut client, pb::ListSkusRequest { created_time: Some(before_b), ..Default::default() }).await,
        ["a"]
    );
    let updated_from_a = TimeRange { start: a.updated_time, end: None };
    assert_eq!(
        list_all(&mut client, pb::ListSkusRequest { updated_time: Some(updated_from_a), ..Default::default() }).await,
        ["a", "b"]
    );
    for (seconds, nanos) in [(0, -5), (-300_000_000_000, 0), (300_000_000_000, 0)] {
        let malformed = TimeRange { start: Some(prost_types::Timestamp { seconds, nanos }), end: None };
        let status = list(&mut client, pb::ListSkusRequest { created_time: Some(malformed), ..Default::default() })
            .await
            .expect_err("bad time");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(violations(&status)[0].0, "createdTime");
    }
}

async fn pages_stay_correct_while_skus_are_added_and_deleted(backend: Backend) {
    let (_catalog, mut client) = Spawn::on(backend).catalog_and_inventory().await;
    let mut before = HashSet::new();
    for n in 0..30 {
        before.insert(create(&mut client, example_sku(&format!("old-{n:02}"))).await.expect("created").id);
    }
    // A writer adds SKUs, some with ids that sort before the cursor, while the reader pages.
    let mut writer = client.clone();
    let writing = tokio::spawn(async move {
        for n in 0..30 {
            let id = if n % 2 == 0 { format!("aaa-new-{n:02}") } else { format!("zzz-new-{n:02}") };
            create(&mut writer, example_sku(&id)).await.expect("created while paging");
        }
    });
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(&mut client, pb::ListSkusRequest { page_size: 4, page_token: token, ..Default::default() })
            .await
            .expect("page");
        // Deleting what was read shifts every later row down: offset paging would skip some.
        for sku in &page.skus {
            if sku.id.starts_with("old-") {
                client.delete_sku(pb::DeleteSkuRequest { id: sku.id.clone() }).await.expect("deleted");
            }
        }
        seen.extend(page.skus.into_iter().map(|sku| sku.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    writing.await.expect("writer finished");
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no SKU appears twice");
    assert!(before.is_subset(&unique), "every SKU that existed before paging began is listed");
    let old_positions: Vec<_> = seen.iter().filter(|id| id.starts_with("old-")).cloned().collect();
    let mut sorted = old_positions.clone();
    sorted.sort();
    assert_eq!(old_positions, sorted, "pages keep creation order");
}

on_every_backend!(
    pages_default_to_ten_and_follow_creation_order,
    page_size_and_token_are_checked,
    filters_select_matching_skus,
    time_ranges_are_half_open,
    pages_stay_correct_while_skus_are_added_and_deleted
);
