//! The Inventory's own figures, beside the per-call ones every server records.

use fulfillment_server::Metrics;
use fulfillment_server::metrics::Level;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};

/// What happened to a hold, as counted by `inventory.holds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldOutcome {
    /// A new hold took stock (repeats of a placed hold are not counted again).
    Placed,
    /// A new hold was refused: not enough stock to fill every line.
    Refused,
    /// Its units were given back on request.
    Released,
    /// The Inventory's own safety net gave its units back after its expiry and grace.
    Expired,
    /// Its units shipped.
    Committed,
}

impl HoldOutcome {
    fn as_str(self) -> &'static str {
        match self {
            HoldOutcome::Placed => "placed",
            HoldOutcome::Refused => "refused",
            HoldOutcome::Released => "released",
            HoldOutcome::Expired => "expired",
            HoldOutcome::Committed => "committed",
        }
    }
}

/// The Inventory's instruments.
#[derive(Clone, Debug)]
pub struct InventoryMetrics {
    holds: Counter<u64>,
    batch_sizes: Histogram<u64>,
    low_levels: Level,
}

impl InventoryMetrics {
    /// Creates the instruments in `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        let meter = metrics.meter();
        let low_levels = metrics.level(
            "inventory.stock.low_levels",
            "Stock levels (item and warehouse) with fewer units available than the low-stock threshold",
        );
        Self {
            holds: meter.u64_counter("inventory.holds").with_description("Holds by what happened to them").build(),
            batch_sizes: meter
                .u64_histogram("inventory.hold.batch_size")
                .with_description("Holds placed together in one transaction")
                .with_boundaries(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
                .build(),
            low_levels,
        }
    }

    /// The same instruments, setting the gauges of the live store or of the test store.
    pub fn in_mode(&self, live_mode: bool) -> Self {
        Self { low_levels: self.low_levels.in_mode(live_mode), ..self.clone() }
    }

    /// Counts one hold outcome.
    pub fn hold(&self, outcome: HoldOutcome) {
        self.holds.add(1, &[KeyValue::new("outcome", outcome.as_str())]);
    }

    /// The histogram of hold batch sizes.
    pub(crate) fn batch_sizes(&self) -> Histogram<u64> {
        self.batch_sizes.clone()
    }

    /// Sets how many stock levels are low now.
    pub fn set_low_levels(&self, count: u64) {
        self.low_levels.set(count);
    }
}
