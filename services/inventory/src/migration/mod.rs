//! The Inventory's schema, one concern per migration, applied at start-up.

// sea-orm-migration's async-trait signatures elide the SchemaManager lifetime; naming it does not match.
#![allow(elided_lifetimes_in_paths)]

use sea_orm_migration::prelude::*;

mod m20261123_000001_create_inventory_item;
mod m20261123_000002_create_warehouse;
mod m20261123_000003_create_stock;
mod m20261123_000004_create_hold;
mod m20261128_000005_hold_placed_by;
mod m20261206_000006_create_warehouse_ship_to;

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
            Box::new(m20261206_000006_create_warehouse_ship_to::Migration),
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

#[cfg(test)]
mod tests {
    use fulfillment_storage::testing::TestDatabase;
    use fulfillment_storage::{Backend, Database, PoolConfig};
    use sea_orm::{ConnectionTrait, Statement};

    use super::*;

    #[tokio::test]
    async fn the_ship_to_index_is_filled_from_the_warehouses_before_it_on_sqlite() {
        the_ship_to_index_is_filled_from_the_warehouses_before_it(Backend::Sqlite).await
    }

    #[tokio::test]
    #[cfg_attr(not(postgres_tests), ignore = "TEST_DATABASE_URL is not set")]
    async fn the_ship_to_index_is_filled_from_the_warehouses_before_it_on_postgres() {
        the_ship_to_index_is_filled_from_the_warehouses_before_it(Backend::Postgres).await
    }

    async fn the_ship_to_index_is_filled_from_the_warehouses_before_it(backend: Backend) {
        let database = TestDatabase::create(backend).await.expect("a test database");
        let db = Database::connect(database.url(), PoolConfig::default()).await.expect("connect");
        let connection = db.connection();
        Migrator::up(connection, Some(5)).await.expect("the migrations before the index");
        let insert = Query::insert()
            .into_table("warehouse")
            .columns([
                "id",
                "name",
                "country",
                "ship_to_countries",
                "ships_everywhere",
                "priority",
                "created_time",
                "updated_time",
            ])
            .values_panic([
                "w1".into(),
                "W1".into(),
                "US".into(),
                "CA,DE,US".into(),
                false.into(),
                0.into(),
                chrono::Utc::now().into(),
                chrono::Utc::now().into(),
            ])
            .values_panic([
                "w2".into(),
                "W2".into(),
                "US".into(),
                "".into(),
                true.into(),
                0.into(),
                chrono::Utc::now().into(),
                chrono::Utc::now().into(),
            ])
            .to_owned();
        connection.execute(&insert).await.expect("warehouses from before");
        Migrator::up(connection, None).await.expect("the index");
        let rows = connection
            .query_all_raw(Statement::from_string(
                connection.get_database_backend(),
                "SELECT country, warehouse_id FROM warehouse_ship_to ORDER BY country, warehouse_id",
            ))
            .await
            .expect("the index");
        let rows: Vec<(String, String)> = rows
            .iter()
            .map(|row| (row.try_get("", "country").expect("country"), row.try_get("", "warehouse_id").expect("id")))
            .collect();
        let expected = [("CA", "w1"), ("DE", "w1"), ("US", "w1")].map(|(c, w)| (c.to_owned(), w.to_owned()));
        assert_eq!(rows, expected, "{backend:?}");
    }
}
