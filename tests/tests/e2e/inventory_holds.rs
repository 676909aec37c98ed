//! Holds: allocation, all or nothing, oversell, idempotency, release, commit, expiry, and the race
//! for the last units.

use std::collections::BTreeMap;
use std::time::Duration;

use fulfillment_proto::inventory::v1 as pb;
use suite_tests::{Backend, Clock, Spawn, on_every_backend};
use tonic::Code;

use crate::inventory_support::*;
use crate::support::reason;

async fn stocked(client: &mut Inventory, stock: &[(&str, &str, i64)]) {
    for (item_id, warehouse_id, quantity) in stock {
        if client.get_inventory_item(pb::GetInventoryItemRequest { id: (*item_id).into() }).await.is_err() {
            item(client, item_id).await;
        }
        if *quantity > 0 {
            receive(client, item_id, warehouse_id, *quantity).await;
        }
    }
}

async fn a_hold_reserves_and_release_gives_back(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    warehouse(&mut client, "w", &[], 0).await;
    stocked(&mut client, &[("a", "w", 5)]).await;
    let hold = place(&mut client, hold_request("res-1", vec![line("a", 2)], "US")).await.expect("held");
    assert_eq!(hold.state(), pb::HoldState::Held);
    assert_eq!(allocations(&hold), [("a".into(), "w".into(), 2, 0)]);
    assert_eq!(level(&mut client, "a").await, (5, 2, 3, vec![("w".into(), 5, 2, 3)]));
    let released = client
        .release_hold(pb::ReleaseHoldRequest { hold_id: "res-1".into() })
        .await
        .expect("released")
        .into_inner()
        .hold
        .expect("hold");
    assert_eq!(released.state(), pb::HoldState::Released);
    assert_eq!(level(&mut client, "a").await, (5, 0, 5, vec![("w".into(), 5, 0, 5)]));
    let status = client.release_hold(pb::ReleaseHoldRequest { hold_id: "res-1".into() }).await.expect_err("closed");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "hold_closed");
    assert_eq!(status.message(), "Hold 'res-1' is already released.");
    let status = client.commit_hold(pb::CommitHoldRequest { hold_id: "res-1".into() }).await.expect_err("closed");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let status = client.release_hold(pb::ReleaseHoldRequest { hold_id: "nope".into() }).await.expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
}

async fn commit_ships_the_units_and_writes_the_ledger(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    warehouse(&mut client, "w", &[], 0).await;
    stocked(&mut client, &[("a", "w", 5)]).await;
    place(&mut client, hold_request("res-1", vec![line("a", 2)], "US")).await.expect("held");
    let committed = client
        .commit_hold(pb::CommitHoldRequest { hold_id: "res-1".into() })
        .await
        .expect("committed")
        .into_inner()
        .hold
        .expect("hold");
    assert_eq!(committed.state(), pb::HoldState::Committed);
    assert_eq!(level(&mut client, "a").await, (3, 0, 3, vec![("w".into(), 3, 0, 3)]));
    let ledger = client
        .list_stock_movements(pb::ListStockMovementsRequest { inventory_item_id: "a".into(), ..Default::default() })
        .await
        .expect("ledger")
        .into_inner()
        .movements;
    let last = ledger.last().expect("a commit row");
    assert_eq!((last.kind(), last.delta, last.hold_id.as_str()), (pb::StockChangeKind::Commit, -2, "res-1"));
}

async fn a_hold_is_found_again_after_its_expiry_time(backend: Backend) {
    let clock = Clock::adjustable();
    let (_inventory, mut client) = Spawn::on(backend).clock(&clock).inventory().await;
    warehouse(&mut client, "w", &[], 0).await;
    stocked(&mut client, &[("a", "w", 5)]).await;
    let mut request = hold_request("brief", vec![line("a", 1)], "US");
    request.expire_time = Some(prost_types::Timestamp::from(std::time::SystemTime::now() + Duration::from_millis(300)));
    let placed = place(&mut client, request.clone()).await.expect("held");
    clock.advance(Duration::from_secs(3600));
    // A new hold whose expiry the Inventory's clock has passed is refused, while a retry of the
    // placed one still finds it.
    let mut late = hold_request("late", vec![line("a", 1)], "US");
    late.expire_time = Some(prost_types::Timestamp::from(std::time::SystemTime::now() + Duration::from_secs(60)));
    let refused = place(&mut client, late).await.expect_err("an expiry the Inventory's clock has passed");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let again = place(&mut client, request).await.expect("a retry after the expiry finds the hold");
    assert_eq!(again.created_time, placed.created_time);
}

async fn repeating_a_hold_returns_it_and_other_lines_conflict(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    warehouse(&mut client, "w", &[], 0).await;
    stocked(&mut client, &[("a", "w", 5)]).await;
    let first = place(&mut client, hold_request("res-1", vec![line("a", 2)], "US")).await.expect("held");
    let again = place(&mut client, hold_request("res-1", vec![line("a", 2)], "US")).await.expect("same hold");
    assert_eq!(again.allocations, first.allocations);
    assert_eq!(again.created_time, first.created_time);
    assert_eq!(level(&mut client, "a").await.1, 2, "held once");
    let status = place(&mut client, hold_request("res-1", vec![line("a", 3)], "US")).await.expect_err("other lines");
    assert_eq!(status.code(), Code::AlreadyExists);
}

async fn all_or_nothing_names_every_short_line(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    warehouse(&mut client, "w", &[], 0).await;
    stocked(&mut client, &[("a", "w", 5), ("b", "w", 1), ("c", "w", 0)]).await;
    let request = hold_request("res-1", vec![line("a", 2), line("b", 3), line("c", 1)], "US");
    let status = place(&mut client, request).await.expect_err("short");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "insufficient_inventory");
    assert_eq!(
        precondition_violations(&status),
        [
            ("b".to_owned(), "requested 3, available 1".to_owned()),
            ("c".to_owned(), "requested 1, available 0".to_owned())
        ]
    );
    assert_eq!(level(&mut client, "a").await.1, 0, "nothing held");
    let status = client.get_hold(pb::GetHoldRequest { hold_id: "res-1".into() }).await.expect_err("no hold");
    assert_eq!(status.code(), Code::NotFound);
}

async fn lines_for_the_same_item_are_summed_before_checking(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    warehouse(&mut client, "w", &[], 0).await;
    stocked(&mut client, &[("a", "w", 3)]).await;
    let status =
        place(&mut client, hold_request("r", vec![line("a", 2), line("a", 2)], "US")).await.expect_err("4 > 3");
    assert_eq!(precondition_violations(&status), [("a".to_owned(), "requested 4, available 3".to_owned())]);
}

async fn an_oversold_line_holds_what_exists_and_records_the_shortfall(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    warehouse(&mut client, "w", &[], 0).await;
    stocked(&mut client, &[("a", "w", 2)]).await;
    let oversell = pb::HoldRequestLine { allow_oversell: Some(true), ..line("a", 5) };
    let hold = place(&mut client, hold_request("r", vec![oversell], "US")).await.expect("oversold");
    assert_eq!(allocations(&hold), [("a".into(), "w".into(), 2, 3)]);
    assert_eq!(level(&mut client, "a").await, (2, 2, 0, vec![("w".into(), 2, 2, 0)]));
}

async fn one_warehouse_for_the_whole_hold_where_possible_then_by_priority(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    warehouse(&mut client, "near", &[], 0).await;
    warehouse(&mut client, "far", &[], 5).await;
    warehouse(&mut client, "farther", &[], 9).await;
    stocked(
        &mut client,
        &[("a", "near", 5), ("a", "far", 5), ("b", "far", 5), ("a", "farther", 5), ("b", "farther", 5)],
    )
    .await;
    let hold = place(&mut client, hold_request("r1", vec![line("a", 1), line("b", 1)], "US")).await.expect("held");
    assert_eq!(allocations(&hold), [("a".into(), "far".into(), 1, 0), ("b".into(), "far".into(), 1, 0)]);
    let hold = place(&mut client, hold_request("r2", vec![line("a", 1)], "US")).await.expect("held");
    assert_eq!(allocations(&hold), [("a".into(), "near".into(), 1, 0)]);
    let hold = place(&mut client, hold_request("r3", vec![line("a", 12)], "US")).await.expect("split");
    let used: BTreeMap<String, i64> = allocations(&hold).into_iter().map(|(_, w, q, _)| (w, q)).collect();
    assert_eq!(used.values().sum::<i64>(), 12);
    assert_eq!(used.len(), 3, "no two warehouses have 12 left");
}

async fn only_warehouses_shipping_to_the_country_count(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    warehouse(&mut client, "eu", &["DE"], 0).await;
    stocked(&mut client, &[("a", "eu", 5)]).await;
    let status =
        place(&mut client, hold_request("r", vec![line("a", 1)], "US")).await.expect_err("nothing ships to US");
    assert_eq!(precondition_violations(&status), [("a".to_owned(), "requested 1, available 0".to_owned())]);
    place(&mut client, hold_request("r", vec![line("a", 1)], "DE")).await.expect("ships to DE");
}

async fn a_warehouse_serves_the_countries_it_was_last_given(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    warehouse(&mut client, "w", &["DE", "FR"], 0).await;
    stocked(&mut client, &[("a", "w", 5)]).await;
    place(&mut client, hold_request("r1", vec![line("a", 1)], "FR")).await.expect("ships to FR");
    let update = pb::UpdateWarehouseRequest {
        warehouse: Some(pb::Warehouse {
            id: "w".into(),
            ship_to_countries: vec!["US".into(), "DE".into()],
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["ship_to_countries".into()] }),
    };
    client.update_warehouse(update).await.expect("updated");
    place(&mut client, hold_request("r2", vec![line("a", 1)], "FR")).await.expect_err("no longer ships to FR");
    place(&mut client, hold_request("r3", vec![line("a", 1)], "US")).await.expect("now ships to US");
    place(&mut client, hold_request("r4", vec![line("a", 1)], "DE")).await.expect("still ships to DE");
    let levels = |country: &str| pb::GetInventoryLevelsRequest {
        inventory_item_ids: vec!["a".into()],
        ship_to_country: country.into(),
        min_available: None,
    };
    let counted = |response: pb::GetInventoryLevelsResponse| response.levels[0].warehouses.len();
    assert_eq!(counted(client.get_inventory_levels(levels("US")).await.expect("levels").into_inner()), 1);
    assert_eq!(counted(client.get_inventory_levels(levels("FR")).await.expect("levels").into_inner()), 0);

    // Shipping everywhere reaches countries never listed; a deleted warehouse serves none.
    let everywhere = pb::UpdateWarehouseRequest {
        warehouse: Some(pb::Warehouse { id: "w".into(), ships_everywhere: true, ..Default::default() }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["ships_everywhere".into(), "ship_to_countries".into()],
        }),
    };
    client.update_warehouse(everywhere).await.expect("updated");
    place(&mut client, hold_request("r5", vec![line("a", 1)], "JP")).await.expect("ships everywhere");
    for id in ["r1", "r3", "r4", "r5"] {
        client.release_hold(pb::ReleaseHoldRequest { hold_id: id.into() }).await.expect("released");
    }
    client
        .adjust_stock(pb::AdjustStockRequest {
            inventory_item_id: "a".into(),
            warehouse_id: "w".into(),
            kind: pb::StockChangeKind::Set.into(),
            quantity: 0,
            reason: "emptied".into(),
            idempotency_key: "empty-w".into(),
        })
        .await
        .expect("emptied");
    client.delete_warehouse(pb::DeleteWarehouseRequest { id: "w".into() }).await.expect("deleted");
    warehouse(&mut client, "w2", &["FR"], 0).await;
    stocked(&mut client, &[("a", "w2", 1)]).await;
    let hold = place(&mut client, hold_request("r6", vec![line("a", 1)], "FR")).await.expect("w2 ships to FR");
    assert_eq!(allocations(&hold), [("a".into(), "w2".into(), 1, 0)]);
}

async fn a_hold_request_is_checked(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    let mut request = hold_request("r", vec![line("a", 0)], "QQ");
    request.expire_time = None;
    let status = place(&mut client, request).await.expect_err("bad request");
    let fields: Vec<String> = crate::support::violations(&status).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["lines[0].quantity", "shipToCountry", "expireTime"]);
    warehouse(&mut client, "w", &[], 0).await;
    stocked(&mut client, &[("a", "w", 2)]).await;
    let mut late = hold_request("late", vec![line("a", 1)], "US");
    late.expire_time = Some(prost_types::Timestamp { seconds: 1, nanos: 0 });
    let status = place(&mut client, late).await.expect_err("already expired");
    assert_eq!(
        crate::support::violations(&status),
        [("expireTime".to_owned(), "The expiry time has already passed.".to_owned())]
    );
    let status = place(&mut client, hold_request("r", vec![line("ghost", 1)], "US")).await.expect_err("unknown item");
    assert_eq!(status.message(), "InventoryItem 'ghost' not found.");
}

async fn hundreds_of_holds_racing_for_the_last_units_leave_exact_counts(backend: Backend) {
    let (_inventory, mut client) = Spawn::on(backend).inventory().await;
    warehouse(&mut client, "w1", &[], 0).await;
    warehouse(&mut client, "w2", &[], 1).await;
    stocked(&mut client, &[("hot", "w1", 4), ("hot", "w2", 3)]).await;
    let racers = (0..200).map(|n| {
        let mut client = client.clone();
        async move { place(&mut client, hold_request(&format!("race-{n}"), vec![line("hot", 1)], "US")).await }
    });
    let results = futures::future::join_all(racers).await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 7, "exactly the units in stock");
    for result in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(reason(result), "insufficient_inventory", "{result:?}");
    }
    let (on_hand, reserved, available, warehouses) = level(&mut client, "hot").await;
    assert_eq!((on_hand, reserved, available), (7, 7, 0));
    assert!(warehouses.iter().all(|(_, _, _, available)| *available == 0), "{warehouses:?}");
    let held: i64 =
        results.iter().filter_map(|r| r.as_ref().ok()).flat_map(|h| h.allocations.iter().map(|a| a.quantity)).sum();
    assert_eq!(held, reserved, "reserved equals the sum of open hold lines");
}

async fn holds_placed_together_in_one_transaction_are_each_decided_exactly(backend: Backend) {
    let (inventory, mut client) = Spawn::on(backend).inventory().await;
    warehouse(&mut client, "w", &[], 0).await;
    stocked(&mut client, &[("hot", "w", 30), ("cold", "w", 20)]).await;
    // Single-item and two-item holds on the same rows, all at once, so they share transactions;
    // among them the same hold asked twice (one answer for both), and holds of an item that
    // does not exist.
    let lines_of = |n: usize| match n % 5 {
        0 | 3 => vec![line("hot", 1)],
        1 => vec![line("hot", 2), line("cold", 1)],
        2 => vec![line("cold", 2)],
        _ => vec![line("ghost", 1), line("hot", 1)],
    };
    let id_of = |n: usize| if n % 5 == 3 { format!("batch-{}", n - 3) } else { format!("batch-{n}") };
    let racers = (0..150).map(|n| {
        let mut client = client.clone();
        async move { (n, place(&mut client, hold_request(&id_of(n), lines_of(n), "US")).await) }
    });
    let results = futures::future::join_all(racers).await;
    let mut held: BTreeMap<String, i64> = BTreeMap::new();
    let mut counted = std::collections::BTreeSet::new();
    for (n, result) in &results {
        match (n % 5, result) {
            (4, Err(status)) => assert_eq!(status.code(), Code::NotFound, "{status:?}"),
            (_, Ok(hold)) => {
                assert_eq!(hold.id, id_of(*n), "each caller gets its own hold");
                assert_eq!(
                    hold.lines.iter().map(|l| l.quantity).sum::<i64>(),
                    lines_of(*n).iter().map(|l| l.quantity).sum::<i64>()
                );
                if counted.insert(hold.id.clone()) {
                    for allocation in &hold.allocations {
                        assert_eq!(allocation.oversold_quantity, 0);
                        *held.entry(allocation.inventory_item_id.clone()).or_default() += allocation.quantity;
                    }
                }
            }
            (_, Err(status)) => assert_eq!(reason(status), "insufficient_inventory", "{status:?}"),
        }
    }
    let mut available = BTreeMap::new();
    for (item, stock) in [("hot", 30), ("cold", 20)] {
        let (on_hand, reserved, left, _) = level(&mut client, item).await;
        assert_eq!(on_hand, stock);
        assert_eq!(reserved, held.get(item).copied().unwrap_or(0), "{item}: reserved is the sum of the holds");
        assert!(reserved <= on_hand, "{item}: never oversold");
        available.insert(item, left);
    }
    // Stock only fell during the race, so each refusal asked for more of some item than is
    // left even now.
    for (n, result) in &results {
        if let Err(status) = result
            && reason(status) == "insufficient_inventory"
        {
            let short = lines_of(*n).iter().any(|l| l.quantity > available[l.inventory_item_id.as_str()]);
            assert!(short, "hold {n} was refused while its stock was there: {available:?}");
        }
    }
    // And they were batched: on average at least two holds per transaction.
    let figures = crate::metrics::Figures::of(&inventory).await;
    let batches = figures.value("inventory_hold_batch_size", &[]);
    assert!(batches * 2.0 <= 150.0, "{batches} transactions for 150 holds");
}

async fn a_lapsed_hold_is_released_by_the_inventory_itself(backend: Backend) {
    let settings = [("INVENTORY_EXPIRY_SWEEP_MS", "50"), ("INVENTORY_HOLD_GRACE_MS", "0")];
    let (_inventory, mut client) = Spawn::on(backend).with(&settings).inventory().await;
    warehouse(&mut client, "w", &[], 0).await;
    stocked(&mut client, &[("a", "w", 3)]).await;
    let mut request = hold_request("short-lived", vec![line("a", 2)], "US");
    request.expire_time = Some(prost_types::Timestamp::from(std::time::SystemTime::now() + Duration::from_millis(300)));
    place(&mut client, request).await.expect("held");
    assert_eq!(level(&mut client, "a").await.1, 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let hold = client
            .get_hold(pb::GetHoldRequest { hold_id: "short-lived".into() })
            .await
            .expect("hold")
            .into_inner()
            .hold
            .expect("hold");
        if hold.state() == pb::HoldState::Expired {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the hold was not released in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(level(&mut client, "a").await, (3, 0, 3, vec![("w".into(), 3, 0, 3)]));
}

async fn deleting_an_item_never_strands_a_hold(backend: Backend) {
    let (_inventory, client) = Spawn::on(backend).inventory().await;
    let mut setup = client.clone();
    warehouse(&mut setup, "w", &[], 0).await;
    for round in 0..20 {
        let id = format!("item-{round}");
        stocked(&mut setup, &[(&id, "w", 3)]).await;
        let (mut placer, mut deleter) = (client.clone(), client.clone());
        let (placed, deleted) = tokio::join!(
            place(&mut placer, hold_request(&format!("h-{round}"), vec![line(&id, 1)], "US")),
            deleter.delete_inventory_item(pb::DeleteInventoryItemRequest { id: id.clone() }),
        );
        // One of them wins; never both.
        assert!(placed.is_ok() != deleted.is_ok(), "round {round}: placed {placed:?}, deleted {deleted:?}");
        if placed.is_ok() {
            assert_eq!(level(&mut setup, &id).await.1, 1, "the hold's stock is still there");
            setup.release_hold(pb::ReleaseHoldRequest { hold_id: format!("h-{round}") }).await.expect("released");
        }
    }
}

async fn deleting_a_warehouse_never_swallows_received_stock(backend: Backend) {
    let (_inventory, client) = Spawn::on(backend).inventory().await;
    let mut setup = client.clone();
    item(&mut setup, "a").await;
    for round in 0..20 {
        let id = format!("w-{round}");
        warehouse(&mut setup, &id, &[], 0).await;
        let (mut receiver, mut deleter) = (client.clone(), client.clone());
        let request = pb::AdjustStockRequest {
            inventory_item_id: "a".into(),
            warehouse_id: id.clone(),
            kind: pb::StockChangeKind::Receive.into(),
            quantity: 7,
            reason: "race".into(),
            idempotency_key: format!("race-{round}"),
        };
        let (received, deleted) = tokio::join!(
            receiver.adjust_stock(request),
            deleter.delete_warehouse(pb::DeleteWarehouseRequest { id: id.clone() })
        );
        assert!(received.is_ok() != deleted.is_ok(), "round {round}: received {received:?}, deleted {deleted:?}");
        let stocked_here = level(&mut setup, "a").await.3.into_iter().any(|(w, on_hand, _, _)| w == id && on_hand == 7);
        assert_eq!(stocked_here, received.is_ok(), "round {round}: the received units are where the ledger says");
    }
}

on_every_backend!(
    a_hold_reserves_and_release_gives_back,
    commit_ships_the_units_and_writes_the_ledger,
    a_hold_is_found_again_after_its_expiry_time,
    repeating_a_hold_returns_it_and_other_lines_conflict,
    all_or_nothing_names_every_short_line,
    lines_for_the_same_item_are_summed_before_checking,
    an_oversold_line_holds_what_exists_and_records_the_shortfall,
    one_warehouse_for_the_whole_hold_where_possible_then_by_priority,
    only_warehouses_shipping_to_the_country_count,
    a_warehouse_serves_the_countries_it_was_last_given,
    a_hold_request_is_checked,
    hundreds_of_holds_racing_for_the_last_units_leave_exact_counts,
    holds_placed_together_in_one_transaction_are_each_decided_exactly,
    a_lapsed_hold_is_released_by_the_inventory_itself,
    deleting_an_item_never_strands_a_hold,
    deleting_a_warehouse_never_swallows_received_stock
);
