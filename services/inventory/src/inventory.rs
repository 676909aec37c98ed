//! The Inventory service's state: a database and the reference lists. Its operations are split by
//! subject: `items`, `warehouses`, `stock`, `holds`.

use std::sync::Arc;

use fulfillment_reference::ReferenceData;
use fulfillment_storage::Database;

/// Who is calling: the Catalog may change the items its SKUs own, nobody else may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The Catalog service, keeping a SKU's item in step.
    Catalog,
    /// Anyone else.
    Client,
}

/// The Inventory: items, warehouses, stock levels, the ledger and holds over one database.
///
/// Cloning is cheap: transaction bodies own a clone, since they may run more than once.
#[derive(Clone, Debug)]
pub struct Inventory {
    pub(crate) db: Database,
    pub(crate) reference: Arc<ReferenceData>,
}

impl Inventory {
    /// An Inventory over a migrated database.
    pub fn new(db: Database, reference: ReferenceData) -> Self {
        Self { db, reference: Arc::new(reference) }
    }

    /// The database, for consistency checks.
    pub fn database(&self) -> &Database {
        &self.db
    }
}

/// Collects violations and turns them into one error.
pub(crate) fn check(violations: Vec<fulfillment_errors::FieldViolation>) -> Result<(), crate::InventoryError> {
    if violations.is_empty() { Ok(()) } else { Err(crate::InventoryError::InvalidRequest(violations)) }
}
