//! The Catalog service's state: a database, the reference lists, the Inventory client, the saga
//! driver and its metrics. Its operations are methods split by subject: `skus`,
//! `manufacturer_parts`, `consistency`, and the background work in `sweeper`.

use std::sync::Arc;
use std::time::Duration;

use fulfillment_reference::ReferenceData;
use fulfillment_storage::{Clock, Database};

use crate::inventory_client::InventoryItems;
use crate::metrics::CatalogMetrics;
use crate::saga::Sagas;

/// The Catalog: SKUs and the manufacturer-parts registry over one database.
///
/// Cloning is cheap: transaction bodies own a clone, since they may run more than once.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub(crate) db: Database,
    pub(crate) reference: Arc<ReferenceData>,
    pub(crate) items: InventoryItems,
    /// Opens and settles the sagas that keep managed SKUs and their items in step.
    pub(crate) sagas: Sagas,
    pub(crate) metrics: CatalogMetrics,
    /// Whether this is the live store (or the test store) of its service.
    pub(crate) live_mode: bool,
    /// Where every operation reads the time.
    pub(crate) clock: Clock,
}

impl Catalog {
    /// A Catalog over a migrated database, keeping managed SKUs' items in the Inventory behind
    /// `items`; `saga_lease` is how long a saga's driver owns it before recovery may take over.
    pub fn new(
        db: Database,
        reference: ReferenceData,
        items: InventoryItems,
        saga_lease: Duration,
        metrics: CatalogMetrics,
    ) -> Self {
        let sagas = Sagas::new(db.clone(), items.clone(), saga_lease, metrics.clone());
        Self { db, reference: Arc::new(reference), items, sagas, metrics, live_mode: true, clock: Clock::system() }
    }

    /// The same Catalog reading the time from `clock` (a test's, which it moves forward).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.sagas = self.sagas.with_clock(clock.clone());
        self.clock = clock;
        self
    }

    /// The same Catalog as the store of test-mode SKUs: what it makes says `live_mode` false.
    pub fn for_test_mode(mut self) -> Self {
        self.live_mode = false;
        self.metrics = self.metrics.in_mode(false);
        self.sagas = self.sagas.for_test_mode();
        self
    }
}
