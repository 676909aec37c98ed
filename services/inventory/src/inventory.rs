//! The Inventory service's state: a database and the reference lists. Its operations are split by
//! subject: `items`, `warehouses`, `stock`, `holds`.

use std::sync::Arc;

use fulfillment_reference::ReferenceData;
use fulfillment_storage::Database;

use crate::hold_batches::HoldBatches;
use crate::metrics::InventoryMetrics;

/// Who is calling, known by service key: the Catalog may change the items its SKUs own and the
/// Reservation service may close the holds it placed; nobody else may do either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The Catalog service, keeping a SKU's item in step.
    Catalog,
    /// The Reservation service, placing and closing its reservations' holds.
    Reservation,
    /// Anyone else.
    Client,
}

impl Caller {
    const ALL: [Caller; 3] = [Caller::Catalog, Caller::Reservation, Caller::Client];

    /// The name a hold records of who placed it.
    pub fn as_str(self) -> &'static str {
        match self {
            Caller::Catalog => "catalog",
            Caller::Reservation => "reservation",
            Caller::Client => "client",
        }
    }

    /// The caller a stored name stands for.
    pub(crate) fn parse(value: &str) -> Result<Self, sea_orm::DbErr> {
        Self::ALL
            .into_iter()
            .find(|caller| caller.as_str() == value)
            .ok_or_else(|| sea_orm::DbErr::Type(format!("unknown caller '{value}'")))
    }
}

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
}

impl Inventory {
    /// An Inventory over a migrated database, counting what it does in `metrics`. Starts the
    /// lanes that place holds, so it must be called inside a tokio runtime.
    pub fn new(db: Database, reference: ReferenceData, metrics: InventoryMetrics) -> Self {
        let batches = HoldBatches::start(db.clone(), metrics.batch_sizes(), crate::config::DEFAULT_HOLD_BATCH_MAX);
        Self { db, reference: Arc::new(reference), metrics, batches, live_mode: true }
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

    /// The database, for consistency checks.
    pub fn database(&self) -> &Database {
        &self.db
    }
}

/// How a read locks the rows it finds until the transaction ends (on PostgreSQL; SQLite's writers
/// already take turns, and sea-query leaves the clause out there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RowLock {
    /// A plain read.
    None,
    /// Others may read and share-lock, not change or delete.
    Shared,
    /// Nobody else may lock, change or delete.
    Exclusive,
}

impl RowLock {
    pub(crate) fn apply<E: sea_orm::EntityTrait>(self, query: sea_orm::Select<E>) -> sea_orm::Select<E> {
        use sea_orm::QuerySelect;
        match self {
            RowLock::None => query,
            RowLock::Shared => query.lock_shared(),
            RowLock::Exclusive => query.lock_exclusive(),
        }
    }
}

/// Collects violations and turns them into one error.
pub(crate) fn check(violations: fulfillment_errors::Violations) -> Result<(), crate::InventoryError> {
    if violations.is_empty() { Ok(()) } else { Err(crate::InventoryError::InvalidRequest(violations)) }
}
