//! The Inventory's schema, one concern per migration, applied at start-up.

// sea-orm-migration's async-trait signatures elide the SchemaManager lifetime; naming it does not match.
#![allow(elided_lifetimes_in_paths)]

use sea_orm_migration::prelude::*;

mod m20261123_000001_create_inventory_item;
mod m20261123_000002_create_warehouse;
mod m20261123_000003_create_stock;
mod m20261123_000004_create_hold;
mod m20261128_000005_hold_placed_by;

/// Applies the Inventory's migrations in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_inventory_item::Migration),
            Box::new(m20261123_000002_create_warehouse::Migration),
            Box::new(m20261123_000003_create_stock::Migration),
            Box::new(m20261123_000004_create_hold::Migration),
            Box::new(m20261128_000005_hold_placed_by::Migration),
        ]
    }
}

/// Creates a plain index on `columns` of `table`.
async fn index(manager: &SchemaManager<'_>, name: &str, table: &str, columns: &[&str]) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(Alias::new(table)).if_not_exists();
    for column in columns {
        index.col(Alias::new(*column));
    }
    manager.create_index(index.to_owned()).await
}
