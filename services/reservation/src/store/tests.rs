//! The store's tests, and the fixtures the operations' tests share: the service over a fresh
//! database, and reservations left as a worker leaves them.

use fulfillment_server::calls::Credentials;
use fulfillment_storage::Backend;
use fulfillment_storage::PoolConfig;
use fulfillment_storage::testing::TestDatabase;
use suite_tests::on_every_backend;
use tonic::transport::Channel;

use super::*;
use crate::domain::{Address, ReservationItem};
use crate::migration::Migrator;
use fulfillment_storage::paging::now;

/// The service over a fresh database, with an Inventory that is never called.
pub(crate) async fn service(database: &TestDatabase) -> Reservations {
    let channel = Channel::from_static("http://127.0.0.1:9").connect_lazy();
    service_calling(database, channel, "fk_svc_unused").await
}

/// The service over a fresh database, calling the Inventory on `channel` with `key`.
pub(crate) async fn service_calling(database: &TestDatabase, channel: Channel, key: &str) -> Reservations {
    let db = Database::connect(database.url(), PoolConfig::default()).await.expect("connect");
    fulfillment_storage::migrate::<Migrator>(&db).await.expect("migrate");
    let metrics = fulfillment_server::Metrics::new("reservation", None);
    let credentials = Credentials::new(key, true).expect("a header value");
    let inventory = InventoryClient::new(channel, Duration::from_secs(1), &metrics, credentials);
    let timing = Timing {
        default_expires_in: Duration::from_secs(60),
        max_expires_in: Duration::from_secs(600),
        claim_lease: Duration::from_secs(30),
    };
    Reservations::new(db, inventory, ReferenceData::default(), timing, ReservationMetrics::new(&metrics))
}

/// The reservation as stored, its claim included.
pub(crate) async fn stored(reservations: &Reservations, id: &str) -> Reservation {
    let row = row::Entity::find_by_id(id.to_owned()).one(reservations.db.connection()).await.expect("read");
    Reservation::from_row(row.expect("stored")).expect("a reservation")
}

/// An active reservation, as its placed hold left it.
pub(crate) async fn active(reservations: &Reservations, id: &str) -> Reservation {
    let time = now() - chrono::Duration::seconds(5);
    let reservation = Reservation {
        id: id.to_owned(),
        state: State::Active,
        items: vec![ReservationItem { inventory_item_id: "a".into(), quantity: 1, allow_oversell: None }],
        ship_to: Address { country: "US".into(), ..Default::default() },
        shipping_choice: None,
        expires_in_seconds: 300,
        expire_time: time + chrono::Duration::seconds(300),
        allocations: Vec::new(),
        live_mode: true,
        created_time: time,
        updated_time: time,
        claim: None,
    };
    row::Entity::insert(reservation.to_row().expect("a row").into_active_model())
        .exec_without_returning(reservations.db.connection())
        .await
        .expect("inserted");
    reservation
}

/// Claims `reservation` for a change to `state` as a worker would, in a transaction.
pub(crate) async fn claim(reservations: &Reservations, reservation: Reservation, state: State) -> Reservation {
    let decision = reservations
        .db
        .write(|txn| {
            let (this, reservation) = (reservations.clone(), reservation.clone());
            Box::pin(async move { this.claim::<()>(txn, reservation, state).await })
        })
        .await
        .expect("claimed");
    match decision {
        Decision::Claimed(reservation) => *reservation,
        Decision::Settled(()) => panic!("a claim always claims"),
    }
}

// The claim-token rule: once another worker has taken a change over, the first one's settle,
// restore and remove write nothing, and the second one's still work.
async fn a_worker_whose_claim_was_taken_over_writes_nothing(backend: Backend) {
    let database = TestDatabase::create(backend).await.expect("a database");
    let reservations = service(&database).await;
    let original = active(&reservations, "r").await;
    let first = claim(&reservations, original.clone(), State::Releasing).await;
    // The first worker's lease lapsed; a second takes the cancellation over.
    let second = claim(&reservations, stored(&reservations, "r").await, State::Releasing).await;
    assert_ne!(first.claim, second.claim);

    let settled = reservations.settle(&first, State::Releasing, |r| r.state = State::Cancelled).await;
    assert_eq!(settled.expect("answers the stored row"), second, "{backend:?}: the late worker sees the row as it is");
    reservations.restore(&first, State::Releasing).await.expect("restore");
    assert!(!reservations.remove(&first, State::Releasing).await.expect("remove"));
    assert_eq!(stored(&reservations, "r").await, second, "{backend:?}: the first worker wrote nothing");

    // The worker holding the claim restores it to exactly what it was before either claim.
    reservations.restore(&second, State::Releasing).await.expect("restore");
    assert_eq!(stored(&reservations, "r").await, original, "{backend:?}: nothing left of the claims");
    let again = claim(&reservations, original, State::Releasing).await;
    let cancelled = reservations.settle(&again, State::Releasing, |r| r.state = State::Cancelled).await;
    assert_eq!(cancelled.expect("settled").state, State::Cancelled);
    assert_eq!(stored(&reservations, "r").await.state, State::Cancelled);
}

on_every_backend!(a_worker_whose_claim_was_taken_over_writes_nothing);

// A refused fulfillment undone by a worker that lost its claim takes nothing away: the order
// stays for the worker that holds the claim, whose own undo removes it.
async fn a_stale_undo_of_a_fulfillment_leaves_its_order(backend: Backend) {
    use sea_orm::PaginatorTrait;

    use crate::entity::fulfillment_order as order;

    let database = TestDatabase::create(backend).await.expect("a database");
    let reservations = service(&database).await;
    let original = active(&reservations, "r").await;
    let placed = order::Model {
        id: "fo-1".into(),
        reservation_id: "r".into(),
        upstream_id: None,
        lines: "[]".into(),
        live_mode: true,
        created_time: now(),
    };
    order::Entity::insert(placed.into_active_model())
        .exec_without_returning(reservations.db.connection())
        .await
        .expect("an order");
    let first = claim(&reservations, original.clone(), State::Committing).await;
    let second = claim(&reservations, stored(&reservations, "r").await, State::Committing).await;
    let orders = || order::Entity::find().count(reservations.db.connection());

    reservations.restore(&first, State::Committing).await.expect("restore");
    assert_eq!(orders().await.expect("count"), 1, "{backend:?}: the stale undo removed the order");
    assert_eq!(stored(&reservations, "r").await, second);
    reservations.restore(&second, State::Committing).await.expect("restore");
    assert_eq!(orders().await.expect("count"), 0, "{backend:?}: the claim holder's undo keeps it");
    assert_eq!(stored(&reservations, "r").await, original);
}

on_every_backend!(a_stale_undo_of_a_fulfillment_leaves_its_order);
