//! Overload: past `GRPC_MAX_CONCURRENT_CALLS` a call is refused at once with RESOURCE_EXHAUSTED and
//! a hint of when to retry, health checks still answer, and the next call after the rush is served;
//! a request over `GRPC_MAX_MESSAGE_BYTES` is refused unread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fulfillment_proto::common::v1::Address;
use fulfillment_proto::reservation::v1 as pb;
use suite_tests::{Backend, Spawn, on_every_backend, slow_proxy};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

use crate::inventory_support::{item, warehouse};
use crate::metrics::{Figures, eventually};

async fn a_call_past_the_concurrency_limit_is_shed_at_once(backend: Backend) {
    let (inventory_service, mut inventory) = Spawn::on(backend).inventory().await;
    warehouse(&mut inventory, "w", &[], 0).await;
    item(&mut inventory, "a").await;
    let slow = Arc::new(AtomicBool::new(true));
    let proxy = slow_proxy(inventory_service.address, slow.clone()).await;
    let (reservation_service, reservations) =
        Spawn::on(backend).with(&[("GRPC_MAX_CONCURRENT_CALLS", "1")]).reservation(proxy).await;

    // One call holds the only slot while the Inventory behind it is slow.
    let reservation = pb::Reservation {
        id: "slow".into(),
        items: vec![pb::ReservationItem { inventory_item_id: "a".into(), quantity: 1, allow_oversell: Some(true) }],
        ship_to: Some(pb::ShipTo { address: Some(Address { country: "US".into(), ..Default::default() }) }),
        ..Default::default()
    };
    let mut first = reservations.clone();
    let busy = tokio::spawn(async move {
        first.create_reservation(pb::CreateReservationRequest { reservation: Some(reservation) }).await
    });
    let in_flight = |f: &Figures| {
        f.get("rpc_server_active_requests", &[("rpc_service", "fulfillment.reservation.v1.ReservationService")])
            == Some(1.0)
    };
    eventually(&reservation_service, in_flight).await;

    let mut second = reservations.clone();
    let status = second.get_reservation(pb::GetReservationRequest { id: "slow".into() }).await.expect_err("shed");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let retry = status.get_details_retry_info().and_then(|info| info.retry_delay).expect("when to retry");
    assert!(retry > Duration::ZERO);
    let mut health = HealthClient::new(reservation_service.channel().await);
    let serving = health.check(HealthCheckRequest { service: String::new() }).await.expect("health is always admitted");
    assert_eq!(serving.into_inner().status, 1, "SERVING");

    slow.store(false, Ordering::Relaxed);
    busy.await.expect("the first call's task").expect("the first call is served");
    second
        .get_reservation(pb::GetReservationRequest { id: "slow".into() })
        .await
        .expect("served once the slot is free");
    let figures = Figures::of(&reservation_service).await;
    assert_eq!(figures.calls("GetReservation", Code::ResourceExhausted), 1.0, "shed calls are counted");
}

on_every_backend!(a_call_past_the_concurrency_limit_is_shed_at_once);

async fn a_request_over_the_message_limit_is_refused_unread(backend: Backend) {
    let (_inventory, mut inventory) = Spawn::on(backend).with(&[("GRPC_MAX_MESSAGE_BYTES", "4096")]).inventory().await;
    let oversized = fulfillment_proto::inventory::v1::Warehouse {
        id: "big".into(),
        name: "x".repeat(8192),
        country: "US".into(),
        ships_everywhere: true,
        ..Default::default()
    };
    let request = fulfillment_proto::inventory::v1::CreateWarehouseRequest { warehouse: Some(oversized) };
    let status = inventory.create_warehouse(request).await.expect_err("too large");
    assert_eq!(status.code(), Code::OutOfRange, "tonic's answer to an oversized message: {status:?}");
    let lookup = fulfillment_proto::inventory::v1::GetWarehouseRequest { id: "big".into() };
    assert_eq!(inventory.get_warehouse(lookup).await.expect_err("nothing written").code(), Code::NotFound);
    warehouse(&mut inventory, "small", &[], 0).await;
}

on_every_backend!(a_request_over_the_message_limit_is_refused_unread);

async fn a_call_past_the_request_bytes_in_flight_is_shed_at_once(backend: Backend) {
    let (inventory_service, mut inventory) = Spawn::on(backend).inventory().await;
    warehouse(&mut inventory, "w", &[], 0).await;
    let slow = Arc::new(AtomicBool::new(false));
    let proxy = slow_proxy(inventory_service.address, slow.clone()).await;
    let budget = [("GRPC_MAX_MESSAGE_BYTES", "8192"), ("GRPC_MAX_INFLIGHT_BYTES", "8192")];
    let (reservation_service, mut reservations) = Spawn::on(backend).with(&budget).reservation(proxy).await;
    // The key known to the Reservation service before the Inventory slows down, so that both
    // calls below pass the gate at once and read their bodies in the order they are sent.
    let warm = reservations.get_reservation(pb::GetReservationRequest { id: "none".into() }).await;
    assert_eq!(warm.expect_err("none yet").code(), Code::NotFound);
    slow.store(true, Ordering::Relaxed);
    // About 5 KB each: fifty items with ids of a hundred characters.
    let large = |id: &str| pb::CreateReservationRequest {
        reservation: Some(pb::Reservation {
            id: id.into(),
            items: (0..50)
                .map(|n| pb::ReservationItem {
                    inventory_item_id: format!("{n:0>100}"),
                    quantity: 1,
                    allow_oversell: Some(true),
                })
                .collect(),
            ship_to: Some(pb::ShipTo { address: Some(Address { country: "US".into(), ..Default::default() }) }),
            ..Default::default()
        }),
    };
    assert!(prost::Message::encoded_len(&large("x")) > 4096);

    let mut first = reservations.clone();
    let request = large("first");
    let busy = tokio::spawn(async move { first.create_reservation(request).await });
    let in_flight = |f: &Figures| {
        f.get("rpc_server_active_requests", &[("rpc_service", "fulfillment.reservation.v1.ReservationService")])
            == Some(1.0)
    };
    eventually(&reservation_service, in_flight).await;
    // In flight, the first call has read its body within moments and waits on the Inventory.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut second = reservations.clone();
    let status = second.create_reservation(large("second")).await.expect_err("its bytes do not fit beside the first's");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.get_details_retry_info().and_then(|info| info.retry_delay).is_some(), "says when to retry");
    let small = second.get_reservation(pb::GetReservationRequest { id: "none".into() }).await.expect_err("unknown");
    assert_eq!(small.code(), Code::NotFound, "a small call still fits: {small:?}");

    slow.store(false, Ordering::Relaxed);
    let _ = busy.await.expect("the first call's task");
    let after = second.create_reservation(large("third")).await;
    assert_ne!(after.map(drop).err().map(|s| s.code()), Some(Code::ResourceExhausted), "the bytes are given back");
    let figures = Figures::of(&reservation_service).await;
    assert_eq!(figures.calls("CreateReservation", Code::ResourceExhausted), 1.0, "shed calls are counted");
}

on_every_backend!(a_call_past_the_request_bytes_in_flight_is_shed_at_once);
