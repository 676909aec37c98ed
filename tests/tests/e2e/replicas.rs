//! Two replicas of every service on one PostgreSQL database each, under load from clients that
//! switch replicas between the steps of a reservation. Migrations race at start-up, both sweepers
//! and both saga recoveries run, and at the end the levels, the holds, the reservations and the
//! counters of both replicas together say that everything happened exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use fulfillment_proto::catalog::v1 as cat;
use fulfillment_proto::common::v1::Address;
use fulfillment_proto::inventory::v1 as inv;
use fulfillment_proto::reservation::v1 as pb;
use fulfillment_storage::testing::TestDatabase;
use suite_tests::{Backend, RunningService, Spawn, Store};
use tokio::task::JoinSet;
use tonic::Code;

use crate::inventory_support::{item, receive, warehouse};
use crate::metrics::Figures;
use crate::support::{managed_sku, register_part};

const ITEMS: [&str; 4] = ["i0", "i1", "i2", "i3"];
const UNITS: i64 = 40;
const CLIENTS: usize = 8;
const RESERVATIONS_PER_CLIENT: usize = 20;
const SKU_WRITERS: usize = 2;
const SKUS_PER_WRITER: usize = 8;

/// What a client asked for, and what the suite answered.
struct Attempt {
    id: String,
    item: &'static str,
    quantity: i64,
    created: bool,
}

/// The sum of a counter over both replicas.
async fn total(replicas: &[RunningService], name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut sum = 0.0;
    for replica in replicas {
        sum += Figures::of(replica).await.get(name, labels).unwrap_or(0.0);
    }
    sum
}

fn reservation(id: &str, item: &str, quantity: i64, expires_in_seconds: i64) -> pb::Reservation {
    pb::Reservation {
        id: id.to_owned(),
        items: vec![pb::ReservationItem { inventory_item_id: item.into(), quantity, allow_oversell: Some(false) }],
        ship_to: Some(pb::ShipTo { address: Some(Address { country: "US".into(), ..Default::default() }) }),
        expires_in_seconds,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(postgres_tests), ignore = "TEST_DATABASE_URL is not set")]
async fn two_replicas_of_every_service_share_one_postgresql_database_each() {
    suite_tests::require_postgres();
    let databases = [
        TestDatabase::create(Backend::Postgres).await.expect("inventory database"),
        TestDatabase::create(Backend::Postgres).await.expect("reservation database"),
        TestDatabase::create(Backend::Postgres).await.expect("catalog database"),
    ];
    let [inventory_db, reservation_db, catalog_db] = databases.each_ref().map(|d| d.url());

    // Both replicas start at once, so their migrations race for the lock.
    let ((inventory_a, mut stock), (inventory_b, _)) = tokio::join!(
        Spawn::in_store(Store::Shared(inventory_db)).with(&[("INVENTORY_EXPIRY_SWEEP_MS", "50")]).inventory(),
        Spawn::in_store(Store::Shared(inventory_db)).with(&[("INVENTORY_EXPIRY_SWEEP_MS", "50")]).inventory(),
    );
    let sweep = [("RESERVATION_SWEEP_MS", "50")];
    let ((reservation_a, client_a), (reservation_b, client_b)) = tokio::join!(
        Spawn::in_store(Store::Shared(reservation_db)).with(&sweep).reservation(inventory_a.address),
        Spawn::in_store(Store::Shared(reservation_db)).with(&sweep).reservation(inventory_b.address),
    );
    let recovery = [("CATALOG_SAGA_RECOVERY_MS", "50")];
    let ((catalog_a, mut catalog_client_a), (catalog_b, catalog_client_b)) = tokio::join!(
        Spawn::in_store(Store::Shared(catalog_db)).with(&recovery).catalog(inventory_a.address),
        Spawn::in_store(Store::Shared(catalog_db)).with(&recovery).catalog(inventory_b.address),
    );

    warehouse(&mut stock, "w", &[], 0).await;
    for id in ITEMS {
        item(&mut stock, id).await;
        receive(&mut stock, id, "w", UNITS).await;
    }
    register_part(&mut catalog_client_a, "20013", "DEMOPARTNUMBER2").await;

    // Reservation clients: each step of a reservation goes to the other replica than the last.
    let mut clients = JoinSet::new();
    for client in 0..CLIENTS {
        let replicas = [client_a.clone(), client_b.clone()];
        clients.spawn(async move {
            let mut attempts = Vec::new();
            for n in 0..RESERVATIONS_PER_CLIENT {
                let id = format!("r{client}-{n}");
                let item = ITEMS[(client + n) % ITEMS.len()];
                let quantity = (n % 3) as i64 + 1;
                // Every third reservation is short-lived and left to expire.
                let expires_in = if n % 3 == 0 { 1 } else { 300 };
                let mut first = replicas[n % 2].clone();
                let mut other = replicas[(n + 1) % 2].clone();
                let request =
                    pb::CreateReservationRequest { reservation: Some(reservation(&id, item, quantity, expires_in)) };
                let created = match first.create_reservation(request).await {
                    Ok(_) => true,
                    Err(status) if status.code() == Code::FailedPrecondition => false,
                    Err(status) => panic!("{id}: {status:?}"),
                };
                if created && expires_in > 1 {
                    if n % 3 == 1 {
                        other
                            .cancel_reservation(pb::CancelReservationRequest { id: id.clone() })
                            .await
                            .expect("cancelled");
                    } else if n % 6 == 2 {
                        let order = pb::CreateFulfillmentOrderRequest {
                            reservation_id: id.clone(),
                            upstream_id: format!("order-{id}"),
                            items: Vec::new(),
                        };
                        other.create_fulfillment_order(order).await.expect("fulfilled");
                    }
                }
                attempts.push(Attempt { id, item, quantity, created });
            }
            attempts
        });
    }
    // SKU writers: create a managed SKU on one Catalog, change its item through the other, and
    // delete every other one through the first again.
    let mut writers = JoinSet::new();
    for writer in 0..SKU_WRITERS {
        let catalogs = [catalog_client_a.clone(), catalog_client_b.clone()];
        writers.spawn(async move {
            let mut sagas = 0;
            for n in 0..SKUS_PER_WRITER {
                let id = format!("sku{writer}-{n}");
                let (mut first, mut other) = (catalogs[n % 2].clone(), catalogs[(n + 1) % 2].clone());
                first.create_sku(cat::CreateSkuRequest { sku: Some(managed_sku(&id)) }).await.expect("created");
                let mut changed = managed_sku(&id);
                changed.allow_oversell = Some(false);
                let mask = prost_types::FieldMask { paths: vec!["allow_oversell".into()] };
                other
                    .update_sku(cat::UpdateSkuRequest { sku: Some(changed), update_mask: Some(mask) })
                    .await
                    .expect("updated");
                sagas += 2;
                if n % 2 == 0 {
                    first.delete_sku(cat::DeleteSkuRequest { id }).await.expect("deleted");
                    sagas += 1;
                }
            }
            sagas
        });
    }
    let attempts: Vec<Attempt> = clients.join_all().await.into_iter().flatten().collect();
    let sagas: usize = writers.join_all().await.into_iter().sum();

    // Where every created reservation ended, as the service tells it once the short ones expired.
    let reservation_replicas = [reservation_a, reservation_b];
    let short_lived = attempts.iter().filter(|a| a.created && is_short(&a.id)).count();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while total(&reservation_replicas, "reservation_reservations_total", &[("outcome", "expired")]).await
        < short_lived as f64
    {
        assert!(tokio::time::Instant::now() < deadline, "the short reservations outlived their expiry");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut reader = client_a.clone();
    let mut holds = stock.clone();
    let mut ended: BTreeMap<&str, usize> = BTreeMap::new();
    let mut reserved: BTreeMap<&str, i64> = BTreeMap::new();
    let mut shipped: BTreeMap<&str, i64> = BTreeMap::new();
    for attempt in attempts.iter().filter(|a| a.created) {
        let state = match reader.get_reservation(pb::GetReservationRequest { id: attempt.id.clone() }).await {
            Ok(found) => found.into_inner().reservation.expect("reservation").state(),
            Err(status) if status.code() == Code::NotFound => pb::ReservationState::Unspecified,
            Err(status) => panic!("{status:?}"),
        };
        let hold = holds
            .get_hold(inv::GetHoldRequest { hold_id: attempt.id.clone() })
            .await
            .expect("every reservation placed a hold");
        let hold_state = hold.into_inner().hold.expect("hold").state();
        let (outcome, expected_hold) = match state {
            pb::ReservationState::Active => ("active", inv::HoldState::Held),
            pb::ReservationState::Cancelled => ("cancelled", inv::HoldState::Released),
            pb::ReservationState::Fulfilled => ("fulfilled", inv::HoldState::Committed),
            pb::ReservationState::Unspecified => ("expired", inv::HoldState::Released),
            other => panic!("{} left in {other:?}", attempt.id),
        };
        assert_eq!(hold_state, expected_hold, "{}: the hold matches the reservation", attempt.id);
        *ended.entry(outcome).or_default() += 1;
        match outcome {
            "active" => *reserved.entry(attempt.item).or_default() += attempt.quantity,
            "fulfilled" => *shipped.entry(attempt.item).or_default() += attempt.quantity,
            _ => {}
        }
    }
    assert_eq!(ended.get("expired").copied().unwrap_or(0), short_lived, "every short reservation expired, no other");

    // The levels are exactly what the live reservations hold and the orders shipped.
    let request =
        inv::GetInventoryLevelsRequest { inventory_item_ids: ITEMS.map(str::to_owned).to_vec(), ..Default::default() };
    let levels = stock.get_inventory_levels(request).await.expect("levels").into_inner();
    for level in levels.levels {
        let id = level.inventory_item_id.as_str();
        assert_eq!(
            level.reserved,
            reserved.get(id).copied().unwrap_or(0),
            "{id}: reserved is the sum of the open holds"
        );
        assert_eq!(level.on_hand, UNITS - shipped.get(id).copied().unwrap_or(0), "{id}: on hand fell by what shipped");
    }

    // Both replicas' counters together: each change counted once, by whichever replica made it.
    let created = attempts.iter().filter(|a| a.created).count() as f64;
    let refused = attempts.iter().filter(|a| !a.created).count() as f64;
    let count = |outcome: &str| ended.get(outcome).copied().unwrap_or(0) as f64;
    let reservations = "reservation_reservations_total";
    assert_eq!(total(&reservation_replicas, reservations, &[("outcome", "created")]).await, created);
    assert_eq!(total(&reservation_replicas, reservations, &[("outcome", "refused")]).await, refused);
    assert_eq!(total(&reservation_replicas, reservations, &[("outcome", "cancelled")]).await, count("cancelled"));
    assert_eq!(total(&reservation_replicas, reservations, &[("outcome", "fulfilled")]).await, count("fulfilled"));
    assert_eq!(total(&reservation_replicas, reservations, &[("outcome", "expired")]).await, count("expired"));
    let inventory_replicas = [inventory_a, inventory_b];
    let holds_total = "inventory_holds_total";
    assert_eq!(total(&inventory_replicas, holds_total, &[("outcome", "placed")]).await, created);
    assert_eq!(total(&inventory_replicas, holds_total, &[("outcome", "refused")]).await, refused);
    assert_eq!(
        total(&inventory_replicas, holds_total, &[("outcome", "released")]).await,
        count("cancelled") + count("expired")
    );
    assert_eq!(total(&inventory_replicas, holds_total, &[("outcome", "committed")]).await, count("fulfilled"));

    // The Catalog: every pair consistent, seen from either replica, and each saga closed once.
    let catalog_replicas = [catalog_a, catalog_b];
    for mut catalog in [catalog_client_a, catalog_client_b] {
        let check =
            catalog.check_consistency(cat::CheckConsistencyRequest::default()).await.expect("checked").into_inner();
        assert!(check.inconsistencies.is_empty(), "{:?}", check.inconsistencies);
    }
    let outcomes = "catalog_saga_outcomes_total";
    assert_eq!(total(&catalog_replicas, outcomes, &[("outcome", "completed")]).await, sagas as f64);
    assert_eq!(total(&catalog_replicas, outcomes, &[("outcome", "compensated")]).await, 0.0);
    drop(databases);
}

/// Whether the client made this reservation short-lived (see the client loop).
fn is_short(id: &str) -> bool {
    id.rsplit('-').next().and_then(|n| n.parse::<usize>().ok()).is_some_and(|n| n % 3 == 0)
}
