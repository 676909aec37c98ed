//! Holds belong to whoever placed them: a reservation's hold closes only through the Reservation
//! service, which in turn never takes or closes a client's hold.

use fulfillment_proto::inventory::v1 as inv;
use fulfillment_proto::reservation::v1 as pb;
use fulfillment_storage::testing::TestDatabase;
use fulfillment_storage::{Database, PoolConfig};
use sea_orm::ConnectionTrait;
use suite_tests::{Backend, Spawn, Store, on_every_backend};
use tonic::Code;
use tonic_types::StatusExt;

use crate::inventory_support::*;
use crate::reservations::{document_reservation, get, reserve, suite};
use crate::support::reason;

fn cancel(id: &str) -> pb::CancelReservationRequest {
    pb::CancelReservationRequest { id: id.to_owned() }
}

async fn hold(inventory: &mut Inventory, id: &str) -> inv::Hold {
    let request = inv::GetHoldRequest { hold_id: id.to_owned() };
    inventory.get_hold(request).await.expect("the hold").into_inner().hold.expect("hold")
}

async fn a_reservations_hold_closes_only_through_the_reservation(backend: Backend) {
    let (_i, mut inventory, _r, mut reservations) = suite(backend, &[("a", 5)], &[]).await;
    reserve(&mut reservations, document_reservation("r", &[("a", 2)])).await.expect("reserved");

    // A client with a write key may not close it, nor pass for its owner by placing it again.
    let release = inventory.release_hold(inv::ReleaseHoldRequest { hold_id: "r".into() }).await;
    let commit = inventory.commit_hold(inv::CommitHoldRequest { hold_id: "r".into() }).await;
    for status in [release.expect_err("release"), commit.expect_err("commit")] {
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert_eq!(reason(&status), "owned_by_reservation");
        let resource = status.get_details_resource_info().expect("the reservation named");
        assert_eq!((resource.resource_type.as_str(), resource.resource_name.as_str()), ("Reservation", "r"));
    }
    // Line for line what the Reservation service asked for.
    let lines = vec![inv::HoldRequestLine { allow_oversell: Some(false), ..line("a", 2) }];
    let again = place(&mut inventory, hold_request("r", lines, "US")).await.expect_err("not the client's");
    assert_eq!(again.code(), Code::AlreadyExists);
    let held = hold(&mut inventory, "r").await;
    assert_eq!((held.state(), held.placed_by()), (inv::HoldState::Held, inv::HoldPlacer::Reservation));
    assert_eq!(level(&mut inventory, "a").await.1, 2, "still reserved");

    // Its reservation closes it.
    let cancelled = reservations.cancel_reservation(cancel("r")).await.expect("cancelled").into_inner();
    assert_eq!(cancelled.reservation.expect("r").state(), pb::ReservationState::Cancelled);
    assert_eq!(hold(&mut inventory, "r").await.state(), inv::HoldState::Released);
    assert_eq!(level(&mut inventory, "a").await.1, 0);
}

async fn a_clients_hold_is_never_a_reservations(backend: Backend) {
    let (_i, mut inventory, _r, mut reservations) = suite(backend, &[("a", 5)], &[]).await;
    // Line for line what the Reservation service asks for "c".
    let lines = vec![inv::HoldRequestLine { allow_oversell: Some(false), ..line("a", 1) }];
    place(&mut inventory, hold_request("c", lines, "US")).await.expect("the client's hold");

    // The same id and lines: the Reservation service does not take the client's hold as its own.
    let status = reserve(&mut reservations, document_reservation("c", &[("a", 1)])).await.expect_err("taken");
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert_eq!(get(&mut reservations, "c").await.expect_err("nothing kept").code(), Code::NotFound);
    let held = hold(&mut inventory, "c").await;
    assert_eq!((held.state(), held.placed_by()), (inv::HoldState::Held, inv::HoldPlacer::Client));
    assert_eq!(level(&mut inventory, "a").await.1, 1);

    // The client closes its own.
    inventory.release_hold(inv::ReleaseHoldRequest { hold_id: "c".into() }).await.expect("released");
    assert_eq!(level(&mut inventory, "a").await.1, 0);
}

async fn a_cancel_the_inventory_refuses_leaves_the_reservation_as_it_was(backend: Backend) {
    // A hold from before holds recorded who placed them may be closed by any writer: here a
    // client commits it behind the reservation's back, so the Inventory refuses the release.
    let database = TestDatabase::create(backend).await.expect("inventory database");
    let (inventory_service, mut inventory) = Spawn::in_store(Store::Shared(database.url())).inventory().await;
    warehouse(&mut inventory, "w", &[], 0).await;
    item(&mut inventory, "a").await;
    receive(&mut inventory, "a", "w", 5).await;
    let sweep = [("RESERVATION_SWEEP_MS", "100")];
    let (_r, mut reservations) = Spawn::on(backend).with(&sweep).reservation(inventory_service.address).await;
    // Long enough for the cancels below, short enough to watch it expire.
    let expiring = pb::Reservation { expires_in_seconds: 4, ..document_reservation("r", &[("a", 2)]) };
    reserve(&mut reservations, expiring).await.expect("reserved");
    let db = Database::connect(database.url(), PoolConfig::default()).await.expect("connect");
    db.connection().execute_unprepared("UPDATE hold SET placed_by = NULL WHERE id = 'r'").await.expect("an old hold");
    assert_eq!(hold(&mut inventory, "r").await.placed_by(), inv::HoldPlacer::Unspecified);
    inventory.commit_hold(inv::CommitHoldRequest { hold_id: "r".into() }).await.expect("an old hold is anyone's");
    let before = get(&mut reservations, "r").await.expect("r");

    // Two at once, as the fuzz target found: neither may leave a trace.
    let (mut first, mut second) = (reservations.clone(), reservations.clone());
    let (a, b) = tokio::join!(first.cancel_reservation(cancel("r")), second.cancel_reservation(cancel("r")));
    for outcome in [a, b] {
        let status = outcome.expect_err("refused");
        assert!(matches!(status.code(), Code::FailedPrecondition | Code::Aborted), "{status:?}");
    }
    assert_eq!(get(&mut reservations, "r").await.expect("r"), before);
    // Nothing is left claimed: the next cancel is refused by the Inventory again, not as busy.
    let status = reservations.cancel_reservation(cancel("r")).await.expect_err("refused");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::FailedPrecondition, "hold_closed"));
    let listed = reservations
        .list_reservations(pb::ListReservationsRequest {
            state: pb::ReservationState::Cancelled.into(),
            ..Default::default()
        })
        .await
        .expect("listed")
        .into_inner();
    assert!(listed.reservations.is_empty(), "{listed:?}");

    // Its hold holds nothing any more, so at its expiry it goes like any other.
    let gone = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        while get(&mut reservations, "r").await.is_ok() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    gone.await.expect("swept after its expiry");
    assert_eq!(get(&mut reservations, "r").await.expect_err("gone").code(), Code::NotFound);
}

on_every_backend!(
    a_reservations_hold_closes_only_through_the_reservation,
    a_clients_hold_is_never_a_reservations,
    a_cancel_the_inventory_refuses_leaves_the_reservation_as_it_was
);
