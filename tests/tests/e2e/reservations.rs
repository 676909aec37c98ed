//! Reservations through the Reservation and Inventory services: the reservation document's rules,
//! expiry, cancellation and fulfillment.

use std::time::Duration;

use fulfillment_proto::common::v1::Address;
use fulfillment_proto::reservation::v1 as pb;
use fulfillment_proto::reservation::v1::reservation_service_client::ReservationServiceClient;
use suite_tests::{Backend, Clock, RunningService, Spawn, on_every_backend};
use tonic::Code;

use crate::inventory_support::*;
use crate::support::{reason, violations};

pub(crate) type Reservations = ReservationServiceClient<suite_tests::KeyedChannel>;

/// The Inventory with one warehouse shipping everywhere and `stock` units of each item, and the
/// Reservation service in front of it.
pub(crate) async fn suite(
    backend: Backend,
    stock: &[(&str, i64)],
    settings: &[(&str, &str)],
) -> (RunningService, Inventory, RunningService, Reservations) {
    let (inventory_service, mut inventory) = Spawn::on(backend).inventory().await;
    warehouse(&mut inventory, "w", &[], 0).await;
    for (id, units) in stock {
        item(&mut inventory, id).await;
        if *units > 0 {
            receive(&mut inventory, id, "w", *units).await;
        }
    }
    let (reservation_service, reservations) =
        Spawn::on(backend).with(settings).reservation(inventory_service.address).await;
    (inventory_service, inventory, reservation_service, reservations)
}

/// The document's example request.
pub(crate) fn document_reservation(id: &str, items: &[(&str, i64)]) -> pb::Reservation {
    pb::Reservation {
        id: id.to_owned(),
        items: items
            .iter()
            .map(|(item, quantity)| pb::ReservationItem {
                inventory_item_id: (*item).into(),
                quantity: *quantity,
                allow_oversell: Some(false),
            })
            .collect(),
        ship_to: Some(pb::ShipTo {
            address: Some(Address {
                city: "Minnetonka".into(),
                postal_code: "55129".into(),
                state: "MN".into(),
                country: "US".into(),
                ..Default::default()
            }),
        }),
        shipping_choice: Some(pb::ShippingChoice { currency: "USD".into(), amount: 5.95, service_level: "SG".into() }),
        expires_in_seconds: 300,
        ..Default::default()
    }
}

pub(crate) async fn reserve(
    client: &mut Reservations,
    reservation: pb::Reservation,
) -> Result<pb::Reservation, tonic::Status> {
    Ok(client
        .create_reservation(pb::CreateReservationRequest { reservation: Some(reservation) })
        .await?
        .into_inner()
        .reservation
        .expect("reservation"))
}

pub(crate) async fn get(client: &mut Reservations, id: &str) -> Result<pb::Reservation, tonic::Status> {
    Ok(client
        .get_reservation(pb::GetReservationRequest { id: id.into() })
        .await?
        .into_inner()
        .reservation
        .expect("reservation"))
}

pub(crate) async fn fulfill(
    client: &mut Reservations,
    id: &str,
    upstream: &str,
) -> Result<pb::FulfillmentOrder, tonic::Status> {
    let request = pb::CreateFulfillmentOrderRequest {
        reservation_id: id.into(),
        upstream_id: upstream.into(),
        items: Vec::new(),
    };
    Ok(client.create_fulfillment_order(request).await?.into_inner().fulfillment_order.expect("order"))
}

async fn a_reservation_holds_its_items_and_says_where(backend: Backend) {
    let (_i, mut inventory, _r, mut reservations) = suite(backend, &[("9b32defe", 5)], &[]).await;
    let created =
        reserve(&mut reservations, document_reservation("5744204322", &[("9b32defe", 2)])).await.expect("reserved");
    assert_eq!(created.state(), pb::ReservationState::Active);
    assert_eq!(created.expires_in_seconds, 300);
    let (created_at, expires_at) = (instant(&created.created_time), instant(&created.expire_time));
    assert_eq!(expires_at.0 - created_at.0, 300, "the expiry is absolute: created time plus expiresInSeconds");
    assert_eq!(
        created.allocations.iter().map(|a| (a.warehouse_id.as_str(), a.quantity)).collect::<Vec<_>>(),
        [("w", 2)]
    );
    assert_eq!(level(&mut inventory, "9b32defe").await, (5, 2, 3, vec![("w".into(), 5, 2, 3)]), "levels show the hold");
    assert_eq!(get(&mut reservations, "5744204322").await.expect("stored"), created);
}

async fn the_same_id_and_content_is_the_same_reservation(backend: Backend) {
    let (_i, mut inventory, _r, mut reservations) = suite(backend, &[("a", 5)], &[]).await;
    let first = reserve(&mut reservations, document_reservation("checkout-1", &[("a", 2)])).await.expect("reserved");
    let again = reserve(&mut reservations, document_reservation("checkout-1", &[("a", 2)])).await.expect("a retry");
    assert_eq!(again, first);
    assert_eq!(level(&mut inventory, "a").await.1, 2, "held once");
    let status =
        reserve(&mut reservations, document_reservation("checkout-1", &[("a", 3)])).await.expect_err("other content");
    assert_eq!(status.code(), Code::AlreadyExists);
    let generated = reserve(&mut reservations, document_reservation("", &[("a", 1)])).await.expect("reserved");
    assert!(generated.id.starts_with("res_"), "{}", generated.id);
}

async fn all_or_nothing_reports_every_short_item_and_holds_nothing(backend: Backend) {
    let (_i, mut inventory, _r, mut reservations) = suite(backend, &[("a", 5), ("b", 1), ("c", 0)], &[]).await;
    let status = reserve(&mut reservations, document_reservation("r", &[("a", 1), ("b", 2), ("c", 1)]))
        .await
        .expect_err("short");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "insufficient_inventory");
    assert_eq!(
        precondition_violations(&status),
        [
            ("b".to_owned(), "requested 2, available 1".to_owned()),
            ("c".to_owned(), "requested 1, available 0".to_owned())
        ]
    );
    assert_eq!(level(&mut inventory, "a").await.1, 0, "nothing held");
    assert_eq!(get(&mut reservations, "r").await.expect_err("nothing kept").code(), Code::NotFound);
    // allowOversell on the short lines is the document's remedy.
    let mut oversold = document_reservation("r", &[("a", 1), ("b", 2), ("c", 1)]);
    for item in &mut oversold.items {
        item.allow_oversell = Some(true);
    }
    let held = reserve(&mut reservations, oversold).await.expect("oversold");
    let c = held.allocations.iter().find(|a| a.inventory_item_id == "c").expect("c allocated");
    assert_eq!((c.quantity, c.oversold_quantity), (0, 1));
}

async fn bad_input_names_the_documents_parameters(backend: Backend) {
    let (_i, _inventory, _r, mut reservations) = suite(backend, &[("a", 5)], &[]).await;
    let mut request = document_reservation("r", &[("a", 0)]);
    request.ship_to = None;
    request.expires_in_seconds = -1;
    request.shipping_choice =
        Some(pb::ShippingChoice { currency: "DOLLARS".into(), amount: -1.0, service_level: "SG".into() });
    let status = reserve(&mut reservations, request).await.expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = violations(&status).into_iter().map(|(field, _)| field).collect();
    assert_eq!(
        fields,
        [
            "items[0].quantity",
            "shipTo.address.country",
            "shippingChoice.currency",
            "shippingChoice.amount",
            "expiresInSeconds"
        ]
    );
    let mut empty = document_reservation("r", &[]);
    empty.expires_in_seconds = 0;
    let status = reserve(&mut reservations, empty).await.expect_err("no items");
    assert_eq!(violations(&status), [("items".to_owned(), "The items is missing.".to_owned())]);
}

async fn cancelling_releases_the_whole_hold(backend: Backend) {
    let (_i, mut inventory, _r, mut reservations) = suite(backend, &[("a", 5), ("b", 5)], &[]).await;
    reserve(&mut reservations, document_reservation("r", &[("a", 2), ("b", 1)])).await.expect("reserved");
    let cancelled = reservations
        .cancel_reservation(pb::CancelReservationRequest { id: "r".into() })
        .await
        .expect("cancelled")
        .into_inner()
        .reservation
        .expect("r");
    assert_eq!(cancelled.state(), pb::ReservationState::Cancelled);
    assert_eq!(level(&mut inventory, "a").await, (5, 0, 5, vec![("w".into(), 5, 0, 5)]));
    assert_eq!(level(&mut inventory, "b").await.1, 0);
    let again =
        reservations.cancel_reservation(pb::CancelReservationRequest { id: "r".into() }).await.expect("idempotent");
    assert_eq!(again.into_inner().reservation.expect("r").state(), pb::ReservationState::Cancelled);
    let status = fulfill(&mut reservations, "r", "order-1").await.expect_err("cancelled");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "reservation_cancelled");
    let status =
        reservations.cancel_reservation(pb::CancelReservationRequest { id: "nope".into() }).await.expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "Reservation 'nope' not found.");
}

async fn an_expired_reservation_disappears_and_its_stock_returns(backend: Backend) {
    let (_i, mut inventory, _r, mut reservations) =
        suite(backend, &[("a", 3)], &[("RESERVATION_SWEEP_MS", "50")]).await;
    let mut request = document_reservation("brief", &[("a", 2)]);
    request.expires_in_seconds = 1;
    reserve(&mut reservations, request).await.expect("reserved");
    assert_eq!(level(&mut inventory, "a").await.1, 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while get(&mut reservations, "brief").await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "the reservation outlived its expiry");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(level(&mut inventory, "a").await, (3, 0, 3, vec![("w".into(), 3, 0, 3)]));
    let status = reservations
        .cancel_reservation(pb::CancelReservationRequest { id: "brief".into() })
        .await
        .expect_err("expired");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(fulfill(&mut reservations, "brief", "o").await.expect_err("expired").code(), Code::NotFound);
}

async fn a_fulfillment_order_commits_the_hold(backend: Backend) {
    let (_i, mut inventory, _r, mut reservations) = suite(backend, &[("a", 5)], &[]).await;
    reserve(&mut reservations, document_reservation("checkout-9", &[("a", 2)])).await.expect("reserved");
    let order = fulfill(&mut reservations, "checkout-9", "upstream-77").await.expect("fulfilled");
    assert_eq!((order.reservation_id.as_str(), order.upstream_id.as_str()), ("checkout-9", "upstream-77"));
    assert_eq!(
        order
            .lines
            .iter()
            .map(|l| (l.inventory_item_id.as_str(), l.warehouse_id.as_str(), l.quantity))
            .collect::<Vec<_>>(),
        [("a", "w", 2)]
    );
    assert_eq!(
        level(&mut inventory, "a").await,
        (3, 0, 3, vec![("w".into(), 3, 0, 3)]),
        "on hand and reserved both fell"
    );
    assert_eq!(get(&mut reservations, "checkout-9").await.expect("kept").state(), pb::ReservationState::Fulfilled);

    let fetched =
        reservations.get_fulfillment_order(pb::GetFulfillmentOrderRequest { id: order.id.clone() }).await.expect("get");
    assert_eq!(fetched.into_inner().fulfillment_order, Some(order.clone()));
    let listed = reservations
        .list_fulfillment_orders(pb::ListFulfillmentOrdersRequest {
            reservation_id: "checkout-9".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.fulfillment_orders, std::slice::from_ref(&order));
    assert_eq!(fulfill(&mut reservations, "checkout-9", "upstream-77").await.expect("a retry"), order);
    let status = fulfill(&mut reservations, "checkout-9", "another-order").await.expect_err("already fulfilled");
    assert_eq!(reason(&status), "reservation_fulfilled");
    assert_eq!(level(&mut inventory, "a").await.0, 3, "stock untouched by the refused order");
    let status = reservations
        .cancel_reservation(pb::CancelReservationRequest { id: "checkout-9".into() })
        .await
        .expect_err("fulfilled");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(fulfill(&mut reservations, "unknown", "o").await.expect_err("unknown").code(), Code::NotFound);
}

async fn an_order_must_carry_the_reservations_items(backend: Backend) {
    let (_i, mut inventory, _r, mut reservations) = suite(backend, &[("a", 5)], &[]).await;
    reserve(&mut reservations, document_reservation("r", &[("a", 2)])).await.expect("reserved");
    let request = pb::CreateFulfillmentOrderRequest {
        reservation_id: "r".into(),
        upstream_id: "o".into(),
        items: vec![pb::ReservationItem { inventory_item_id: "a".into(), quantity: 3, allow_oversell: None }],
    };
    let status = reservations.create_fulfillment_order(request).await.expect_err("differs");
    assert_eq!(reason(&status), "items_differ");
    assert_eq!(level(&mut inventory, "a").await, (5, 2, 3, vec![("w".into(), 5, 2, 3)]), "stock untouched");
}

async fn a_lapsed_reservation_reads_as_expired_before_the_sweep(backend: Backend) {
    let (inventory_service, mut inventory) = Spawn::on(backend).inventory().await;
    warehouse(&mut inventory, "w", &[], 0).await;
    item(&mut inventory, "a").await;
    receive(&mut inventory, "a", "w", 5).await;
    let clock = Clock::adjustable();
    let (_r, mut reservations) = Spawn::on(backend)
        .with(&[("RESERVATION_SWEEP_MS", "600000")])
        .clock(&clock)
        .reservation(inventory_service.address)
        .await;
    let mut request = document_reservation("lapsed", &[("a", 1)]);
    request.expires_in_seconds = 60;
    reserve(&mut reservations, request).await.expect("reserved");
    assert_eq!(get(&mut reservations, "lapsed").await.expect("active").state(), pb::ReservationState::Active);
    clock.advance(Duration::from_secs(61));
    assert_eq!(get(&mut reservations, "lapsed").await.expect("not swept yet").state(), pb::ReservationState::Expired);
    let list = |state: pb::ReservationState| pb::ListReservationsRequest { state: state.into(), ..Default::default() };
    let active = reservations.list_reservations(list(pb::ReservationState::Active)).await.expect("list").into_inner();
    assert!(active.reservations.is_empty());
    let expired = reservations.list_reservations(list(pb::ReservationState::Expired)).await.expect("list").into_inner();
    assert_eq!(expired.reservations.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["lapsed"]);
    let status = fulfill(&mut reservations, "lapsed", "o").await.expect_err("expired");
    assert_eq!(reason(&status), "reservation_expired");
    assert_eq!(level(&mut inventory, "a").await.0, 5, "stock untouched");
}

async fn items_of_one_product_must_agree_on_oversell(backend: Backend) {
    let (_i, _inventory, _r, mut reservations) = suite(backend, &[("a", 5)], &[]).await;
    let mut request = document_reservation("r", &[("a", 1), ("a", 1)]);
    request.items[1].allow_oversell = Some(true);
    let status = reserve(&mut reservations, request).await.expect_err("disagree");
    assert_eq!(violations(&status)[0].0, "items[1].allowOversell");
}

async fn with_the_inventory_down_a_reservation_is_unavailable_and_nothing_is_kept(backend: Backend) {
    let (inventory, _client) = Spawn::on(backend).stocked_inventory(5).await;
    let (_r, mut reservations) = Spawn::on(backend).reservation(inventory.address).await;
    assert_eq!(get(&mut reservations, "r").await.expect_err("none yet").code(), Code::NotFound);
    // The key was checked while the Inventory ran; the service keeps trusting that answer.
    inventory.stop().await.expect("stopped");
    let status = reserve(&mut reservations, document_reservation("r", &[("a", 1)])).await.expect_err("down");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(!status.message().contains("API keys"), "the hold failed, not the key check: {status:?}");
    assert_eq!(get(&mut reservations, "r").await.expect_err("nothing kept").code(), Code::NotFound);
}

async fn reservations_list_by_state(backend: Backend) {
    let (_i, _inventory, _r, mut reservations) = suite(backend, &[("a", 5)], &[]).await;
    for id in ["r1", "r2", "r3"] {
        reserve(&mut reservations, document_reservation(id, &[("a", 1)])).await.expect("reserved");
    }
    reservations.cancel_reservation(pb::CancelReservationRequest { id: "r2".into() }).await.expect("cancelled");
    let active = reservations
        .list_reservations(pb::ListReservationsRequest {
            state: pb::ReservationState::Active.into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(active.reservations.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r1", "r3"]);
    let all = reservations
        .list_reservations(pb::ListReservationsRequest { page_size: 2, ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(all.reservations.len(), 2);
    assert!(!all.next_page_token.is_empty());
}

async fn concurrent_reservations_for_scarce_stock_end_exact(backend: Backend) {
    let (_i, mut inventory, _r, reservations) = suite(backend, &[("hot", 5)], &[]).await;
    let racers = (0..60).map(|n| {
        let mut client = reservations.clone();
        async move { reserve(&mut client, document_reservation(&format!("c-{n}"), &[("hot", 1)])).await }
    });
    let results = futures::future::join_all(racers).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 5);
    assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|s| reason(s) == "insufficient_inventory"));
    assert_eq!(level(&mut inventory, "hot").await, (5, 5, 0, vec![("w".into(), 5, 5, 0)]));
}

on_every_backend!(
    a_reservation_holds_its_items_and_says_where,
    the_same_id_and_content_is_the_same_reservation,
    all_or_nothing_reports_every_short_item_and_holds_nothing,
    bad_input_names_the_documents_parameters,
    cancelling_releases_the_whole_hold,
    an_expired_reservation_disappears_and_its_stock_returns,
    a_fulfillment_order_commits_the_hold,
    an_order_must_carry_the_reservations_items,
    a_lapsed_reservation_reads_as_expired_before_the_sweep,
    items_of_one_product_must_agree_on_oversell,
    with_the_inventory_down_a_reservation_is_unavailable_and_nothing_is_kept,
    reservations_list_by_state,
    concurrent_reservations_for_scarce_stock_end_exact
);

fn instant(timestamp: &Option<prost_types::Timestamp>) -> (i64, i32) {
    crate::support::instant(timestamp)
}

async fn a_reservation_that_expires_while_the_inventory_is_paused_is_not_found(backend: Backend) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let (inventory_service, mut inventory) = Spawn::on(backend).inventory().await;
    warehouse(&mut inventory, "w", &[], 0).await;
    item(&mut inventory, "a").await;
    receive(&mut inventory, "a", "w", 5).await;
    let pause = Arc::new(AtomicU64::new(0));
    let proxy = suite_tests::delayed_proxy(inventory_service.address, pause.clone()).await;
    let (_reservation_service, mut reservations) = Spawn::on(backend).reservation(proxy).await;
    reserve(&mut reservations, document_reservation("warm", &[("a", 1)])).await.expect("reserved");

    // Each chunk to the Inventory now waits longer than the reservation lives.
    pause.store(1_500, Ordering::Relaxed);
    let late = pb::Reservation { expires_in_seconds: 1, ..document_reservation("late", &[("a", 1)]) };
    let status = reserve(&mut reservations, late).await.expect_err("expired on the way");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(status.message(), "Reservation 'late' not found.");
    assert!(violations(&status).iter().all(|(field, _)| field != "expireTime"), "{status:?}");
    pause.store(0, Ordering::Relaxed);

    assert_eq!(get(&mut reservations, "late").await.expect_err("gone").code(), Code::NotFound);
    let (_, reserved, _, _) = level(&mut inventory, "a").await;
    assert_eq!(reserved, 1, "only the first reservation holds stock");
}

on_every_backend!(a_reservation_that_expires_while_the_inventory_is_paused_is_not_found);
