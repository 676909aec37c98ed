use sea_orm_migration::{prelude::*, schema::*};

/// A warehouse's ship-to countries as rows indexed by country, so that a hold reads only the
/// warehouses that ship where it goes, however many others there are. Filled from the comma lists
/// of the warehouses that exist.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("warehouse_ship_to")
                    .if_not_exists()
                    .col(string("country"))
                    .col(string("warehouse_id"))
                    .primary_key(Index::create().col("country").col("warehouse_id"))
                    .to_owned(),
            )
            .await?;
        super::index(manager, "idx_warehouse_ship_to_warehouse", "warehouse_ship_to", &["warehouse_id"]).await?;
        super::index(manager, "idx_warehouse_ships_everywhere", "warehouse", &["ships_everywhere"]).await?;

        let db = manager.get_connection();
        let listed = Query::select()
            .columns(["id", "ship_to_countries"])
            .from("warehouse")
            .and_where(Expr::col("ship_to_countries").ne(""))
            .to_owned();
        let mut rows = Vec::new();
        for row in db.query_all(&listed).await? {
            let id: String = row.try_get("", "id")?;
            let countries: String = row.try_get("", "ship_to_countries")?;
            rows.extend(countries.split(',').filter(|c| !c.is_empty()).map(|c| (c.to_owned(), id.clone())));
        }
        // A few hundred rows per statement keeps every insert far below the databases' bind limits.
        for chunk in rows.chunks(500) {
            let mut insert = Query::insert();
            insert.into_table("warehouse_ship_to").columns(["country", "warehouse_id"]);
            for (country, id) in chunk {
                insert
                    .values([country.clone().into(), id.clone().into()])
                    .map_err(|error| DbErr::Custom(error.to_string()))?;
            }
            db.execute(&insert).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("idx_warehouse_ships_everywhere").table("warehouse").to_owned()).await?;
        manager.drop_table(Table::drop().table("warehouse_ship_to").to_owned()).await
    }
}
