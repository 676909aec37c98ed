//! The Inventory's background work: the safety net that releases holds lapsed past their grace (the
//! Reservation service normally releases first), and the low-stock gauge. Replicas share the sweep
//! by claiming each hold with `FOR UPDATE SKIP LOCKED` (docs/architecture.md, "Background work").

use std::time::Duration;

use fulfillment_server::background::every;
use tokio::sync::watch;

use crate::inventory::Inventory;

/// How many lapsed holds one sweep may fail to expire before it waits for the next tick.
const EXPIRY_MAX_FAILURES: usize = 100;

/// The background sweep's settings.
#[derive(Clone, Copy)]
pub(crate) struct Sweep {
    pub(crate) interval: Duration,
    pub(crate) grace: Duration,
    pub(crate) low_stock_threshold: i64,
}

/// Releases holds that lapsed more than the grace ago, and counts the low stock levels, every
/// interval until told to stop.
pub(crate) async fn sweep_expired_holds(inventory: Inventory, sweep: Sweep, stop: watch::Receiver<bool>) {
    let grace = chrono::Duration::from_std(sweep.grace).unwrap_or(chrono::Duration::MAX);
    every(sweep.interval, stop, || async {
        let cutoff = inventory.clock.now().checked_sub_signed(grace).unwrap_or_default();
        match inventory.expire_holds(cutoff, EXPIRY_MAX_FAILURES).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "released lapsed holds"),
            Err(error) => tracing::warn!(%error, "expiry sweep failed; retrying at the next tick"),
        }
        match inventory.count_low_levels(sweep.low_stock_threshold).await {
            Ok(low) => inventory.metrics.set_low_levels(low),
            Err(error) => tracing::warn!(%error, "cannot count the low stock levels"),
        }
    })
    .await
}
