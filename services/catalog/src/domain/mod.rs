//! The Catalog's types and pure rules: the SKU, its attributes and their changes, the filters of a
//! listing, what the consistency check reports, and the SKU document's checks. No database and no
//! tonic here, so the rules are read and tested on their own (docs/architecture.md, "Reference
//! data and validation").

mod sku;
mod validation;

pub use self::sku::{MANAGED_FULFILLMENT, Sku, SkuAttributes, SkuChanges, SkuField, SkuFilter};
pub use self::validation::{metadata_count, validate, validate_part_key};

/// What the consistency check found wrong with a pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inconsistency {
    /// A managed SKU has no inventory item.
    MissingItem(String),
    /// A managed SKU's item differs in a shared attribute.
    ItemDiffers(String),
    /// An item owned by a SKU that is gone or no longer managed.
    OrphanItem(String),
    /// A saga that has not finished (only a problem if it stays).
    OpenSaga(String),
}
