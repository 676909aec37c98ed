//! The Catalog's tables, one file each.

pub(crate) mod manufacturer_part;
pub(crate) mod sku;
pub(crate) mod sku_saga;
