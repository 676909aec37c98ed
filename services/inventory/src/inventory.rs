//! The Inventory service's state: a database, the reference lists, its metrics and the hold lanes.
//! Its operations are methods split by subject: `items`, `warehouses`, `stock`, `holds`.

use std::sync::Arc;

use fulfillment_reference::ReferenceData;
use fulfillment_storage::{Clock, Database};

use crate::hold_batches::HoldBatches;
use crate::metrics::InventoryMetrics;

/// The Inventory: items, warehouses, stock levels, the ledger and holds over one database.
///
/// Cloning is cheap: transaction bodies own a clone, since they may run more than once.
#[derive(Clone, Debug)]
pub struct Inventory {
    pub(crate) db: Database,
    pub(crate) reference: Arc<ReferenceData>,
    pub(crate) metrics: InventoryMetrics,
    pub(crate) batches: HoldBatches,
    /// Whether this is the live store (or the test store) of its service.
    pub(crate) live_mode: bool,
    /// Where every operation reads the time.
    pub(crate) clock: Clock,
}

impl Inventory {
    /// An Inventory over a migrated database, counting what it does in `metrics`. Starts the
    /// lanes that place holds, so it must be called inside a tokio runtime.
    pub fn new(db: Database, reference: ReferenceData, metrics: InventoryMetrics) -> Self {
        let batches = HoldBatches::start(db.clone(), metrics.batch_sizes(), crate::config::DEFAULT_HOLD_BATCH_MAX);
        Self { db, reference: Arc::new(reference), metrics, batches, live_mode: true, clock: Clock::system() }
    }

    /// The same Inventory as the store of test-mode objects: what it makes says `live_mode` false.
    pub fn for_test_mode(mut self) -> Self {
        self.live_mode = false;
        self.metrics = self.metrics.in_mode(false);
        self
    }

    /// The same Inventory placing at most `max` holds per transaction (1: each its own).
    pub fn with_hold_batch_max(mut self, max: usize) -> Self {
        self.batches = HoldBatches::start(self.db.clone(), self.metrics.batch_sizes(), max);
        self
    }

    /// The same Inventory reading the time from `clock` (a test's, which it moves forward).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The database, for consistency checks.
    pub fn database(&self) -> &Database {
        &self.db
    }
}
