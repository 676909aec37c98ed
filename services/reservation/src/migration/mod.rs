//! The Reservation service's schema, one concern per migration, applied at start-up.

// sea-orm-migration's async-trait signatures elide the SchemaManager lifetime; naming it does not match.
#![allow(elided_lifetimes_in_paths)]

use sea_orm_migration::prelude::*;

mod m20261123_000001_create_reservation;
mod m20261123_000002_create_fulfillment_order;

/// Applies the Reservation service's migrations in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_reservation::Migration),
            Box::new(m20261123_000002_create_fulfillment_order::Migration),
        ]
    }
}
