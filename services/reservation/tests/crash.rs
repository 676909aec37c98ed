//! The Reservation process killed with SIGKILL in the middle of a stream of reservations, then
//! restarted: afterwards no hold exists without a live reservation, and no active reservation
//! without its hold.

use std::time::Duration;

use fulfillment_proto::common::v1::Address;
use fulfillment_proto::inventory::v1 as inventory;
use fulfillment_proto::reservation::v1 as pb;
use fulfillment_proto::reservation::v1::reservation_service_client::ReservationServiceClient;
use fulfillment_storage::Backend;
use fulfillment_storage::testing::TestDatabase;
use suite_tests::{Spawn, on_every_backend, start_process};
use tokio::process::Child;

/// Starts the reservation binary and waits for the address it listens on.
async fn start(database_url: &str, inventory: std::net::SocketAddr) -> (Child, String) {
    start_with(database_url, inventory, None).await
}

/// Starts the reservation binary, optionally set to abort at a fault point.
async fn start_with(database_url: &str, inventory: std::net::SocketAddr, fault_point: Option<&str>) -> (Child, String) {
    let inventory_url = format!("http://{inventory}");
    let mut settings = vec![
        ("RESERVATION_LISTEN_ADDR", "127.0.0.1:0"),
        ("RESERVATION_DATABASE_URL", database_url),
        ("RESERVATION_INVENTORY_URL", inventory_url.as_str()),
        ("RESERVATION_CLAIM_LEASE_MS", "300"),
        ("RESERVATION_SWEEP_MS", "100"),
    ];
    if let Some(point) = fault_point {
        settings.push(("RESERVATION_FAULT_POINT", point));
    }
    start_process(env!("CARGO_BIN_EXE_reservation"), &settings).await
}

fn reservation(id: &str) -> pb::Reservation {
    pb::Reservation {
        id: id.to_owned(),
        items: vec![pb::ReservationItem { inventory_item_id: "a".into(), quantity: 1, allow_oversell: None }],
        ship_to: Some(pb::ShipTo { address: Some(Address { country: "US".into(), ..Default::default() }) }),
        expires_in_seconds: 600,
        ..Default::default()
    }
}

async fn run(backend: Backend) {
    let (inventory_service, mut inventory_client) = Spawn::on(backend).stocked_inventory(10_000).await;

    let database = TestDatabase::create(backend).await.expect("a database");
    let (mut child, url) = start(database.url(), inventory_service.address).await;

    // Four clients stream reservations; the process dies under them.
    let attempts = 4 * 40;
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let url = url.clone();
            tokio::spawn(async move {
                let Ok(mut client) = suite_tests::connect_keyed(url).await.map(ReservationServiceClient::new) else {
                    return;
                };
                for n in 0..40 {
                    let request =
                        pb::CreateReservationRequest { reservation: Some(reservation(&format!("crash-{writer}-{n}"))) };
                    if client.create_reservation(request).await.is_err() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("the process ended");
    for writer in writers {
        let _ = writer.await;
    }

    let (mut restarted, url) = start(database.url(), inventory_service.address).await;
    let mut client = suite_tests::connect_keyed(url).await.map(ReservationServiceClient::new).expect("connect");
    // The sweeper finishes what the crash left once the claims lapse.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let pending = client
            .list_reservations(pb::ListReservationsRequest {
                state: pb::ReservationState::Pending.into(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner()
            .reservations;
        if pending.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} reservations stayed pending", pending.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut held = 0;
    for writer in 0..4 {
        for n in 0..attempts / 4 {
            let id = format!("crash-{writer}-{n}");
            let reservation = client.get_reservation(pb::GetReservationRequest { id: id.clone() }).await;
            let hold = inventory_client.get_hold(inventory::GetHoldRequest { hold_id: id.clone() }).await;
            let reservation_active = reservation.as_ref().is_ok_and(|r| {
                r.get_ref().reservation.as_ref().is_some_and(|r| r.state() == pb::ReservationState::Active)
            });
            let hold_held = hold
                .as_ref()
                .is_ok_and(|h| h.get_ref().hold.as_ref().is_some_and(|h| h.state() == inventory::HoldState::Held));
            assert_eq!(reservation_active, hold_held, "{id}: reservation {reservation:?}, hold {hold:?}");
            held += i64::from(hold_held);
        }
    }
    let levels = inventory_client
        .get_inventory_levels(inventory::GetInventoryLevelsRequest {
            inventory_item_ids: vec!["a".into()],
            ..Default::default()
        })
        .await
        .expect("levels")
        .into_inner()
        .levels;
    assert_eq!(levels[0].reserved, held, "reserved is exactly the live reservations' holds");
    assert!(held > 0, "some reservations went through before the crash");
    eprintln!("{backend:?}: {held} of {attempts} reservations held after the crash and restart");
    restarted.start_kill().expect("stop");
    let _ = restarted.wait().await;
}

/// The state stored for a reservation, read straight from the service's database.
async fn stored_state(database_url: &str, id: &str) -> Option<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(database_url).await.expect("connect");
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "SELECT state FROM reservation WHERE id = $1",
        _ => "SELECT state FROM reservation WHERE id = ?",
    };
    let row = db.query_one_raw(Statement::from_sql_and_values(backend, sql, [id.into()])).await.expect("query");
    let state = row.map(|row| row.try_get_by_index::<String>(0).expect("state"));
    db.close().await.expect("close");
    state
}

/// Crashes the service at `fault_point` during one reservation, restarts it after `pause`, and
/// waits until the reservation has settled.
async fn crash_at(
    backend: Backend,
    fault_point: &str,
    expires_in_seconds: i64,
    pause: Duration,
) -> (Option<pb::ReservationState>, Option<inventory::HoldState>, Option<String>) {
    let (inventory_service, mut inventory_client) = Spawn::on(backend).stocked_inventory(100).await;
    let database = TestDatabase::create(backend).await.expect("a database");
    let (mut child, url) = start_with(database.url(), inventory_service.address, Some(fault_point)).await;
    let mut client = suite_tests::connect_keyed(url).await.map(ReservationServiceClient::new).expect("connect");
    let request = pb::Reservation { expires_in_seconds, ..reservation("crashed") };
    let answer = client.create_reservation(pb::CreateReservationRequest { reservation: Some(request) }).await;
    assert!(answer.is_err(), "the process aborted before answering");
    let status = child.wait().await.expect("the process ended");
    assert!(!status.success(), "it crashed");
    let at_crash = stored_state(database.url(), "crashed").await;

    tokio::time::sleep(pause).await;
    let (mut restarted, url) = start(database.url(), inventory_service.address).await;
    let mut client = suite_tests::connect_keyed(url).await.map(ReservationServiceClient::new).expect("connect");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let reservation = loop {
        let found = client.get_reservation(pb::GetReservationRequest { id: "crashed".into() }).await;
        let state = found.ok().and_then(|r| r.into_inner().reservation).map(|r| r.state());
        if state != Some(pb::ReservationState::Pending) {
            break state;
        }
        assert!(tokio::time::Instant::now() < deadline, "the reservation stayed pending");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let hold = inventory_client.get_hold(inventory::GetHoldRequest { hold_id: "crashed".into() }).await;
    let hold = hold.ok().and_then(|h| h.into_inner().hold).map(|h| h.state());
    restarted.start_kill().expect("stop");
    let _ = restarted.wait().await;
    (reservation, hold, at_crash)
}

async fn a_crash_after_recording_a_reservation_is_finished_forward_on_restart(backend: Backend) {
    let (reservation, hold, at_crash) = crash_at(backend, "after_pending", 600, Duration::ZERO).await;
    assert_eq!(at_crash.as_deref(), Some("pending"), "{backend:?}: the crash left a pending reservation");
    assert_eq!(reservation, Some(pb::ReservationState::Active), "{backend:?}");
    assert_eq!(hold, Some(inventory::HoldState::Held), "{backend:?}");
}

on_every_backend!(a_crash_after_recording_a_reservation_is_finished_forward_on_restart);

async fn a_hold_placed_before_a_crash_is_released_when_its_reservation_expired_meanwhile(backend: Backend) {
    let (reservation, hold, at_crash) = crash_at(backend, "after_hold", 1, Duration::from_millis(1500)).await;
    assert_eq!(at_crash.as_deref(), Some("pending"), "{backend:?}");
    assert_eq!(reservation, None, "{backend:?}: the expired reservation is gone");
    assert_eq!(hold, Some(inventory::HoldState::Released), "{backend:?}: and so is its hold");
}

on_every_backend!(a_hold_placed_before_a_crash_is_released_when_its_reservation_expired_meanwhile);

async fn a_killed_reservation_service_leaves_no_hold_without_a_live_reservation(backend: Backend) {
    run(backend).await;
}

on_every_backend!(a_killed_reservation_service_leaves_no_hold_without_a_live_reservation);
