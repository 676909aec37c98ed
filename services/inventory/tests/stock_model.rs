//! Random sequences of receive / adjust / set / place / release / commit / expire against the real
//! Inventory (on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set), compared after every step
//! with a simple in-memory model of the levels. Holds are placed and closed by the Reservation
//! service or by a client: only whoever placed a hold may close it.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use fulfillment_reference::ReferenceData;
use fulfillment_storage::testing::TestDatabase;
use fulfillment_storage::{Backend, Database, PoolConfig};
use inventory::domain::{HoldLine, HoldRequest, HoldState, StockChange};
use inventory::holds::open_hold_units;
use inventory::items::ItemFields;
use inventory::stock::StockChangeRequest;
use inventory::warehouses::WarehouseFields;
use inventory::{Caller, Inventory, InventoryError, InventoryMetrics, Migrator};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const ITEMS: [&str; 2] = ["i0", "i1"];
const WAREHOUSES: [&str; 2] = ["w0", "w1"];

#[derive(Clone, Debug)]
enum Op {
    Receive {
        item: usize,
        warehouse: usize,
        quantity: i64,
    },
    Adjust {
        item: usize,
        warehouse: usize,
        delta: i64,
    },
    Set {
        item: usize,
        warehouse: usize,
        on_hand: i64,
    },
    Place {
        lines: Vec<(usize, i64)>,
        oversell: [bool; 2],
        by: Caller,
    },
    Release {
        pick: usize,
        by: Caller,
    },
    Commit {
        pick: usize,
        by: Caller,
    },
    /// Sends an earlier hold's request again.
    Repeat {
        pick: usize,
        by: Caller,
    },
    ExpireAll,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, 0..2usize, 1..6i64).prop_map(|(item, warehouse, quantity)| Op::Receive { item, warehouse, quantity }),
        1 => (0..2usize, 0..2usize, prop_oneof![-4..0i64, 1..4i64]).prop_map(|(item, warehouse, delta)| Op::Adjust { item, warehouse, delta }),
        1 => (0..2usize, 0..2usize, 0..7i64).prop_map(|(item, warehouse, on_hand)| Op::Set { item, warehouse, on_hand }),
        4 => (proptest::collection::vec((0..2usize, 1..5i64), 1..4), any::<[bool; 2]>(), caller()).prop_map(|(lines, oversell, by)| Op::Place { lines, oversell, by }),
        2 => (0..8usize, caller()).prop_map(|(pick, by)| Op::Release { pick, by }),
        2 => (0..8usize, caller()).prop_map(|(pick, by)| Op::Commit { pick, by }),
        1 => (0..8usize, caller()).prop_map(|(pick, by)| Op::Repeat { pick, by }),
        1 => Just(Op::ExpireAll),
    ]
}

/// Mostly the Reservation service, as in production; sometimes a client.
fn caller() -> impl Strategy<Value = Caller> {
    prop_oneof![3 => Just(Caller::Reservation), 1 => Just(Caller::Client)]
}

/// Units of (item, warehouse) a hold set aside.
type ModelAllocation = (usize, usize, i64);

#[derive(Debug, Default)]
struct Model {
    on_hand: BTreeMap<(usize, usize), i64>,
    reserved: BTreeMap<(usize, usize), i64>,
    holds: Vec<(String, HoldState, Vec<ModelAllocation>, Caller)>,
    /// The request each hold of `holds` was placed with.
    requests: Vec<HoldRequest>,
}

impl Model {
    fn available(&self, item: usize, warehouse: usize) -> i64 {
        self.on_hand.get(&(item, warehouse)).copied().unwrap_or(0)
            - self.reserved.get(&(item, warehouse)).copied().unwrap_or(0)
    }

    fn close(&mut self, index: usize, state: HoldState) {
        let (_, current, allocations, _) = &mut self.holds[index];
        *current = state;
        for (item, warehouse, quantity) in allocations.clone() {
            *self.reserved.entry((item, warehouse)).or_default() -= quantity;
            if state == HoldState::Committed {
                *self.on_hand.entry((item, warehouse)).or_default() -= quantity;
            }
        }
    }
}

async fn setup(backend: Backend) -> (TestDatabase, Inventory) {
    let database = TestDatabase::create(backend).await.expect("a test database");
    let db = Database::connect(database.url(), PoolConfig::default()).await.expect("connect");
    fulfillment_storage::migrate::<Migrator>(&db).await.expect("migrate");
    let metrics = InventoryMetrics::new(&fulfillment_server::Metrics::new("inventory", None));
    let inventory = Inventory::new(db, ReferenceData::default(), metrics);
    for item in ITEMS {
        inventory.create_item(Some(item.into()), ItemFields::default(), None, Caller::Client).await.expect("item");
    }
    for (priority, warehouse) in WAREHOUSES.iter().enumerate() {
        let fields = WarehouseFields {
            name: Some((*warehouse).into()),
            country: Some("US".into()),
            ships_everywhere: Some(true),
            priority: Some(priority as i32),
            ..Default::default()
        };
        inventory.create_warehouse(Some((*warehouse).into()), fields).await.expect("warehouse");
    }
    (database, inventory)
}

async fn run_case(backend: Backend, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let (_database, inventory) = setup(backend).await;
    let mut model = Model::default();
    for (step, op) in ops.into_iter().enumerate() {
        let key = format!("step-{step}");
        match op {
            Op::Receive { item, warehouse, quantity } | Op::Adjust { item, warehouse, delta: quantity }
                if quantity != 0 =>
            {
                let change = if matches!(op, Op::Receive { .. }) { StockChange::Receive } else { StockChange::Adjust };
                let after = model.on_hand.get(&(item, warehouse)).copied().unwrap_or(0) + quantity;
                let result = inventory.change_stock(request(item, warehouse, change, quantity, &key)).await;
                expect_stock_change(&mut model, item, warehouse, after, result.map(drop))?;
            }
            Op::Receive { .. } | Op::Adjust { .. } => {}
            Op::Set { item, warehouse, on_hand } => {
                let result = inventory.change_stock(request(item, warehouse, StockChange::Set, on_hand, &key)).await;
                expect_stock_change(&mut model, item, warehouse, on_hand, result.map(drop))?;
            }
            Op::Place { lines, oversell, by } => {
                let mut wanted = [0i64; 2];
                for (item, quantity) in &lines {
                    wanted[*item] += quantity;
                }
                // Shortages are named in the order the items first appear in the lines.
                let mut first_seen: Vec<usize> = Vec::new();
                for (item, _) in &lines {
                    if !first_seen.contains(item) {
                        first_seen.push(*item);
                    }
                }
                let short: Vec<String> = first_seen
                    .into_iter()
                    .filter(|&item| !oversell[item])
                    .filter(|&item| (0..2).map(|w| model.available(item, w)).sum::<i64>() < wanted[item])
                    .map(|item| ITEMS[item].to_owned())
                    .collect();
                let request = HoldRequest {
                    hold_id: key.clone(),
                    lines: lines
                        .iter()
                        .map(|(item, quantity)| HoldLine {
                            inventory_item_id: ITEMS[*item].into(),
                            quantity: *quantity,
                            allow_oversell: Some(oversell[*item]),
                        })
                        .collect(),
                    ship_to_country: "US".into(),
                    expire_time: Some(Utc::now() + Duration::hours(1)),
                    placed_by: by,
                };
                match inventory.place_hold(request.clone()).await {
                    Ok(hold) => {
                        prop_assert!(short.is_empty(), "step {step}: held although {short:?} were short");
                        let mut allocations = Vec::new();
                        for item in 0..2 {
                            let total_available: i64 = (0..2).map(|w| model.available(item, w)).sum();
                            let lines: Vec<_> =
                                hold.allocations.iter().filter(|a| a.inventory_item_id == ITEMS[item]).collect();
                            let held: i64 = lines.iter().map(|a| a.quantity).sum();
                            let oversold: i64 = lines.iter().map(|a| a.oversold_quantity).sum();
                            prop_assert_eq!(held, wanted[item].min(total_available), "step {}: held what exists", step);
                            prop_assert_eq!(held + oversold, wanted[item]);
                            for line in lines.iter().filter(|a| a.quantity > 0) {
                                let warehouse =
                                    WAREHOUSES.iter().position(|w| *w == line.warehouse_id).expect("known warehouse");
                                prop_assert!(
                                    line.quantity <= model.available(item, warehouse),
                                    "step {step}: took more than available"
                                );
                                allocations.push((item, warehouse, line.quantity));
                            }
                        }
                        for (item, warehouse, quantity) in &allocations {
                            *model.reserved.entry((*item, *warehouse)).or_default() += quantity;
                        }
                        model.holds.push((key, HoldState::Held, allocations, by));
                        model.requests.push(request);
                    }
                    Err(InventoryError::InsufficientInventory(shortages)) => {
                        let named: Vec<String> = shortages.into_iter().map(|s| s.item).collect();
                        prop_assert_eq!(named, short, "step {}", step);
                    }
                    Err(other) => return Err(TestCaseError::fail(format!("step {step}: {other}"))),
                }
            }
            Op::Release { pick, by } | Op::Commit { pick, by } if !model.holds.is_empty() => {
                let index = pick % model.holds.len();
                let (id, state, _, placed_by) = model.holds[index].clone();
                let commit = matches!(op, Op::Commit { .. });
                let result =
                    if commit { inventory.commit_hold(&id, by).await } else { inventory.release_hold(&id, by).await };
                match (state, result) {
                    // Another's hold: refused whatever its state, and nothing changes.
                    (_, Err(InventoryError::HoldOfReservation(_)))
                        if placed_by == Caller::Reservation && by == Caller::Client => {}
                    (_, Err(InventoryError::HoldNotOwned(_)))
                        if placed_by == Caller::Client && by == Caller::Reservation => {}
                    (_, result) if placed_by != by => {
                        return Err(TestCaseError::fail(format!(
                            "step {step}: {by:?} closing a hold {placed_by:?} placed gave {result:?}"
                        )));
                    }
                    (HoldState::Held, Ok(_)) => {
                        model.close(index, if commit { HoldState::Committed } else { HoldState::Released })
                    }
                    (HoldState::Held, Err(error)) => return Err(TestCaseError::fail(format!("step {step}: {error}"))),
                    (_, Err(InventoryError::HoldClosed { .. })) => {}
                    (state, other) => {
                        return Err(TestCaseError::fail(format!(
                            "step {step}: closing a {state:?} hold gave {other:?}"
                        )));
                    }
                }
            }
            Op::Release { .. } | Op::Commit { .. } => {}
            Op::Repeat { pick, by } if !model.holds.is_empty() => {
                let index = pick % model.holds.len();
                let (id, state, _, placed_by) = model.holds[index].clone();
                let request = HoldRequest { placed_by: by, ..model.requests[index].clone() };
                match inventory.place_hold(request).await {
                    // The same placer finds its hold as it is now, and nothing changes.
                    Ok(hold) if by == placed_by => prop_assert_eq!((hold.id, hold.state), (id, state), "step {}", step),
                    // Another's hold is never answered as the caller's.
                    Err(InventoryError::HoldExists(_)) if by != placed_by => {}
                    other => {
                        return Err(TestCaseError::fail(format!(
                            "step {step}: {by:?} repeating a hold {placed_by:?} placed gave {other:?}"
                        )));
                    }
                }
            }
            Op::Repeat { .. } => {}
            Op::ExpireAll => {
                let open: Vec<usize> =
                    (0..model.holds.len()).filter(|&i| model.holds[i].1 == HoldState::Held).collect();
                let expired = inventory
                    .expire_holds(Utc::now() + Duration::days(1), 3)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(expired, open.len());
                for index in open {
                    model.close(index, HoldState::Expired);
                }
            }
        }
        compare(&inventory, &model, step).await?;
    }
    Ok(())
}

fn request(item: usize, warehouse: usize, change: StockChange, quantity: i64, key: &str) -> StockChangeRequest {
    StockChangeRequest {
        inventory_item_id: ITEMS[item].into(),
        warehouse_id: WAREHOUSES[warehouse].into(),
        change,
        quantity,
        reason: "model".into(),
        idempotency_key: key.into(),
    }
}

fn expect_stock_change(
    model: &mut Model,
    item: usize,
    warehouse: usize,
    after: i64,
    result: Result<(), InventoryError>,
) -> Result<(), TestCaseError> {
    let allowed = after >= 0 && after >= model.reserved.get(&(item, warehouse)).copied().unwrap_or(0);
    match result {
        Ok(()) if allowed => {
            model.on_hand.insert((item, warehouse), after);
            Ok(())
        }
        Err(InventoryError::StockBelowHeld { .. }) if !allowed => Ok(()),
        other => Err(TestCaseError::fail(format!("stock change to {after}: allowed {allowed}, got {other:?}"))),
    }
}

async fn compare(inventory: &Inventory, model: &Model, step: usize) -> Result<(), TestCaseError> {
    let ids: Vec<String> = ITEMS.iter().map(|i| (*i).to_owned()).collect();
    let levels = inventory.levels(&ids, None, None).await.map_err(|e| TestCaseError::fail(e.to_string()))?;
    for (item, level) in levels.iter().enumerate() {
        for (warehouse, name) in WAREHOUSES.iter().enumerate() {
            let actual = level
                .warehouses
                .iter()
                .find(|l| l.warehouse_id == *name)
                .map(|l| (l.on_hand, l.reserved))
                .unwrap_or((0, 0));
            let expected = (
                model.on_hand.get(&(item, warehouse)).copied().unwrap_or(0),
                model.reserved.get(&(item, warehouse)).copied().unwrap_or(0),
            );
            prop_assert_eq!(actual, expected, "step {}: {} in {}", step, ITEMS[item], name);
            prop_assert!(actual.0 - actual.1 >= 0, "step {step}: available below zero");
        }
    }
    let open =
        open_hold_units(inventory_connection(inventory)).await.map_err(|e| TestCaseError::fail(e.to_string()))?;
    for (item, level) in levels.iter().enumerate() {
        for warehouse_level in &level.warehouses {
            let held = open.get(&(ITEMS[item].to_owned(), warehouse_level.warehouse_id.clone())).copied().unwrap_or(0);
            prop_assert_eq!(warehouse_level.reserved, held, "step {}: reserved equals the open hold lines", step);
        }
    }
    Ok(())
}

fn inventory_connection(inventory: &Inventory) -> &sea_orm::DatabaseConnection {
    inventory.database().connection()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn levels_follow_the_model_on_sqlite(ops in proptest::collection::vec(op(), 1..40)) {
        runtime().block_on(run_case(Backend::Sqlite, ops))?;
    }

    #[test]
    #[cfg_attr(not(postgres_tests), ignore = "TEST_DATABASE_URL is not set")]
    fn levels_follow_the_model_on_postgres(ops in proptest::collection::vec(op(), 1..40)) {
        runtime().block_on(run_case(Backend::Postgres, ops))?;
    }
}
