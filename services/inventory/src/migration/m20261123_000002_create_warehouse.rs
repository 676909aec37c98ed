use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("warehouse")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("name"))
                    .col(string("country"))
                    .col(text("ship_to_countries"))
                    .col(boolean("ships_everywhere"))
                    .col(integer("priority"))
                    .col(timestamp_with_time_zone("created_time"))
                    .col(timestamp_with_time_zone("updated_time"))
                    .to_owned(),
            )
            .await?;
        super::index(manager, "idx_warehouse_created_time_id", "warehouse", &["created_time", "id"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("warehouse").to_owned()).await
    }
}
