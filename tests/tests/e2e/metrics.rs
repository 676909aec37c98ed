//! The metrics endpoints, scraped after a scenario: every counter says what happened.

use std::time::Duration;

use fulfillment_proto::catalog::v1 as cat;
use fulfillment_proto::common::v1::Address;
use fulfillment_proto::inventory::v1 as inv;
use fulfillment_proto::reservation::v1 as pb;
use prometheus_parse::{Scrape, Value};
use suite_tests::{Backend, RunningService, Spawn, on_every_backend};
use tonic::Code;

use crate::inventory_support::*;
use crate::support::{create, managed_sku, register_part};

/// A scraped endpoint.
pub struct Figures(Scrape);

impl Figures {
    pub async fn of(service: &RunningService) -> Self {
        let text = service.scrape().await;
        Self(Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).expect("the Prometheus text format"))
    }

    /// The value of the series `name` with these labels (others may be present), if it exists.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let sample = self.0.samples.iter().find(|sample| {
            sample.metric == name && labels.iter().all(|(key, value)| sample.labels.get(key) == Some(*value))
        })?;
        Some(match &sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            // A histogram's value here is how many it recorded.
            Value::Histogram(buckets) => buckets.iter().find(|b| b.less_than.is_infinite()).map_or(0.0, |b| b.count),
            Value::Summary(_) => f64::NAN,
        })
    }

    /// The value of a counter that must exist.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or_else(|| panic!("no series {name}{labels:?}"))
    }

    pub fn calls(&self, method: &str, code: Code) -> f64 {
        let code = (code as i32).to_string();
        self.get("rpc_server_requests_total", &[("rpc_method", method), ("rpc_grpc_status_code", &code)]).unwrap_or(0.0)
    }
}

fn reservation(id: &str, quantity: i64, expires_in_seconds: i64) -> pb::Reservation {
    pb::Reservation {
        id: id.to_owned(),
        items: vec![pb::ReservationItem { inventory_item_id: "a".into(), quantity, allow_oversell: Some(false) }],
        ship_to: Some(pb::ShipTo { address: Some(Address { country: "US".into(), ..Default::default() }) }),
        expires_in_seconds,
        ..Default::default()
    }
}

/// Scrapes `service` until `ready` holds for what it shows, for figures a background task updates.
pub async fn eventually(service: &RunningService, ready: impl Fn(&Figures) -> bool) -> Figures {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let figures = Figures::of(service).await;
        if ready(&figures) || tokio::time::Instant::now() > deadline {
            return figures;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn reservation_and_inventory_figures_match_the_scenario(backend: Backend) {
    let settings = [("INVENTORY_LOW_STOCK_THRESHOLD", "3"), ("INVENTORY_EXPIRY_SWEEP_MS", "50")];
    let (inventory_service, mut inventory) = Spawn::on(backend).with(&settings).inventory().await;
    warehouse(&mut inventory, "w", &[], 0).await;
    item(&mut inventory, "a").await;
    receive(&mut inventory, "a", "w", 3).await;
    let (reservation_service, mut reservations) =
        Spawn::on(backend).with(&[("RESERVATION_SWEEP_MS", "50")]).reservation(inventory_service.address).await;

    // Three reservations take the three units; a fourth asks for more than there is.
    for (id, expires_in) in [("kept", 300), ("brief", 1), ("dropped", 300)] {
        let request = pb::CreateReservationRequest { reservation: Some(reservation(id, 1, expires_in)) };
        reservations.create_reservation(request).await.expect("reserved");
    }
    let short = pb::CreateReservationRequest { reservation: Some(reservation("short", 5, 300)) };
    assert_eq!(reservations.create_reservation(short).await.expect_err("short").code(), Code::FailedPrecondition);
    reservations.cancel_reservation(pb::CancelReservationRequest { id: "dropped".into() }).await.expect("cancelled");
    let order = pb::CreateFulfillmentOrderRequest {
        reservation_id: "kept".into(),
        upstream_id: "o-1".into(),
        items: Vec::new(),
    };
    reservations.create_fulfillment_order(order).await.expect("fulfilled");
    // "brief" expires and the sweeper releases it.
    let expired = |f: &Figures| f.get("reservation_reservations_total", &[("outcome", "expired")]) == Some(1.0);
    let figures = eventually(&reservation_service, expired).await;

    for (outcome, count) in
        [("created", 3.0), ("refused", 1.0), ("cancelled", 1.0), ("fulfilled", 1.0), ("expired", 1.0)]
    {
        assert_eq!(figures.value("reservation_reservations_total", &[("outcome", outcome)]), count, "{outcome}");
    }
    assert_eq!(figures.value("reservation_expiry_lag_seconds", &[]), 1.0, "one expiry's lag recorded");
    assert_eq!(figures.calls("CreateReservation", Code::Ok), 3.0);
    assert_eq!(figures.calls("CreateReservation", Code::FailedPrecondition), 1.0);
    assert_eq!(figures.calls("CancelReservation", Code::Ok), 1.0);
    let timed = [("rpc_method", "CreateReservation"), ("rpc_grpc_status_code", "0")];
    assert_eq!(figures.value("rpc_server_call_duration_seconds", &timed), 3.0, "every call timed");
    let service = [("rpc_service", "fulfillment.reservation.v1.ReservationService")];
    assert_eq!(figures.value("rpc_server_active_requests", &service), 0.0, "nothing in flight");
    for live_mode in ["true", "false"] {
        let retries = figures.get("db_transaction_retries_total", &[("live_mode", live_mode)]);
        assert!(retries.is_some_and(|n| n >= 0.0), "lost races are counted for each store");
    }

    // The Inventory saw the same from its side, and the committed unit leaves 2 < 3 available.
    let low = |f: &Figures| f.get("inventory_stock_low_levels", &[("live_mode", "true")]) == Some(1.0);
    let figures = eventually(&inventory_service, low).await;
    for (outcome, count) in [("placed", 3.0), ("refused", 1.0), ("released", 2.0), ("committed", 1.0)] {
        assert_eq!(figures.value("inventory_holds_total", &[("outcome", outcome)]), count, "{outcome}");
    }
    assert_eq!(
        figures.get("inventory_holds_total", &[("outcome", "expired")]),
        None,
        "the safety net had nothing to do"
    );
    assert_eq!(figures.value("inventory_stock_low_levels", &[("live_mode", "true")]), 1.0);
    assert_eq!(figures.calls("PlaceHold", Code::Ok), 3.0);
    assert_eq!(figures.calls("PlaceHold", Code::FailedPrecondition), 1.0);
    assert_eq!(figures.calls("ReleaseHold", Code::Ok), 2.0);
    assert_eq!(figures.calls("CommitHold", Code::Ok), 1.0);

    // Restocked above the threshold, the level is no longer low.
    receive(&mut inventory, "a", "w", 5).await;
    let restocked = |f: &Figures| f.get("inventory_stock_low_levels", &[("live_mode", "true")]) == Some(0.0);
    assert!(restocked(&eventually(&inventory_service, restocked).await), "the gauge follows the levels");
}

async fn a_call_cut_off_by_its_deadline_is_counted_and_not_left_in_flight(backend: Backend) {
    let (inventory_service, mut inventory) = Spawn::on(backend).inventory().await;
    warehouse(&mut inventory, "w", &[], 0).await;
    item(&mut inventory, "a").await;
    let slow = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let proxy = suite_tests::slow_proxy(inventory_service.address, slow).await;
    let (reservation_service, mut reservations) = Spawn::on(backend).reservation(proxy).await;
    let mut request =
        tonic::Request::new(pb::CreateReservationRequest { reservation: Some(reservation("late", 1, 300)) });
    request.set_timeout(Duration::from_millis(300));
    reservations.create_reservation(request).await.expect_err("past the deadline");
    let counted = |f: &Figures| f.calls("CreateReservation", Code::Cancelled) == 1.0;
    let figures = eventually(&reservation_service, counted).await;
    assert_eq!(figures.calls("CreateReservation", Code::Cancelled), 1.0, "ended without an answer");
    let service = [("rpc_service", "fulfillment.reservation.v1.ReservationService")];
    assert_eq!(figures.value("rpc_server_active_requests", &service), 0.0, "nothing left in flight");
}

async fn saga_figures_count_completed_and_compensated_sagas(backend: Backend) {
    let (inventory_service, mut inventory) = Spawn::on(backend).inventory().await;
    let (catalog_service, mut catalog) =
        Spawn::on(backend).with(&[("CATALOG_SAGA_RECOVERY_MS", "50")]).catalog(inventory_service.address).await;
    register_part(&mut catalog, "20013", "DEMOPARTNUMBER2").await;
    create(&mut catalog, managed_sku("paired")).await.expect("created with its item");
    // An item a client made with the SKU's id: the Inventory refuses, the SKU is compensated.
    let squatter = inv::InventoryItem { id: "taken".into(), ..Default::default() };
    inventory
        .create_inventory_item(inv::CreateInventoryItemRequest { inventory_item: Some(squatter) })
        .await
        .expect("squatter");
    create(&mut catalog, managed_sku("taken")).await.expect_err("refused");
    let missing = catalog.get_sku(cat::GetSkuRequest { id: "nope".into() }).await.expect_err("unknown");
    assert_eq!(missing.code(), Code::NotFound);

    // The open-saga gauge is recounted by recovery, which may have last looked mid-saga.
    let closed = |f: &Figures| f.get("catalog_sagas_open", &[("live_mode", "true")]) == Some(0.0);
    let figures = eventually(&catalog_service, closed).await;
    assert_eq!(figures.value("catalog_saga_outcomes_total", &[("outcome", "completed")]), 1.0);
    assert_eq!(figures.value("catalog_saga_outcomes_total", &[("outcome", "compensated")]), 1.0);
    assert_eq!(figures.get("catalog_saga_outcomes_total", &[("outcome", "unresolved")]), None);
    assert_eq!(figures.value("catalog_sagas_open", &[("live_mode", "true")]), 0.0);
    assert_eq!(figures.calls("CreateSku", Code::Ok), 1.0);
    assert_eq!(figures.calls("CreateSku", Code::AlreadyExists), 1.0);
    assert_eq!(figures.calls("GetSku", Code::NotFound), 1.0);
    assert_eq!(figures.get("rpc_client_retries_total", &[]), None, "nothing needed a retry");
}

async fn made_up_methods_do_not_become_labels(backend: Backend) {
    let (inventory_service, _inventory) = Spawn::on(backend).inventory().await;
    let made_up = |n: usize| format!("/fulfillment.inventory.v1.InventoryService/MadeUp{n}{}", "Z".repeat(2_000));
    let call = |channel: suite_tests::KeyedChannel, path: String| async move {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.expect("ready");
        let path = http::uri::PathAndQuery::try_from(path).expect("a path");
        let codec = tonic_prost::ProstCodec::<inv::GetHoldRequest, inv::Hold>::default();
        grpc.unary(tonic::Request::new(inv::GetHoldRequest::default()), path, codec).await.expect_err("no such method")
    };
    let keyed = inventory_service.keyed(suite_tests::keys::LIVE).await;
    assert_eq!(call(keyed, made_up(0)).await.code(), Code::Unimplemented);
    // Without a key the gate refuses them before routing: still no label of their own.
    let bare = inventory_service.keyed("").await;
    for n in 1..=10 {
        assert_eq!(call(bare.clone(), made_up(n)).await.code(), Code::Unauthenticated);
    }
    let lines = inventory_service.scrape().await.lines().count();
    for n in 11..=60 {
        assert_eq!(call(bare.clone(), made_up(n)).await.code(), Code::Unauthenticated);
    }
    let text = inventory_service.scrape().await;
    assert!(!text.contains("MadeUp"), "{text}");
    assert_eq!(text.lines().count(), lines, "the scrape grew with made-up methods");
    let figures = Figures::of(&inventory_service).await;
    assert_eq!(figures.calls("unknown", Code::Unimplemented), 1.0);
    assert_eq!(figures.calls("unknown", Code::Unauthenticated), 60.0);
}

on_every_backend!(
    reservation_and_inventory_figures_match_the_scenario,
    a_call_cut_off_by_its_deadline_is_counted_and_not_left_in_flight,
    saga_figures_count_completed_and_compensated_sagas,
    made_up_methods_do_not_become_labels
);
