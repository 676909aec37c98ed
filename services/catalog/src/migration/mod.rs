//! The Catalog's schema, one concern per migration, applied at start-up.

// sea-orm-migration's async-trait signatures elide the SchemaManager lifetime; naming it does not match.
#![allow(elided_lifetimes_in_paths)]

use sea_orm_migration::prelude::*;

mod m20261123_000001_create_sku;
mod m20261123_000002_create_manufacturer_part;
mod m20261123_000003_create_sku_saga;

/// Applies the Catalog's migrations in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_sku::Migration),
            Box::new(m20261123_000002_create_manufacturer_part::Migration),
            Box::new(m20261123_000003_create_sku_saga::Migration),
        ]
    }
}
