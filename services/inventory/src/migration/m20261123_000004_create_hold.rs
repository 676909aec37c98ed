use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("hold")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("state"))
                    .col(string("ship_to_country"))
                    .col(text("lines"))
                    .col(timestamp_with_time_zone("expire_time"))
                    .col(timestamp_with_time_zone("created_time"))
                    .col(timestamp_with_time_zone("updated_time"))
                    .to_owned(),
            )
            .await?;
        // The expiry sweep looks for held holds by expiry time.
        super::index(manager, "idx_hold_state_expire_time", "hold", &["state", "expire_time"]).await?;
        manager
            .create_table(
                Table::create()
                    .table("hold_allocation")
                    .if_not_exists()
                    .col(string("hold_id"))
                    .col(string("inventory_item_id"))
                    .col(string("warehouse_id"))
                    .col(big_integer("quantity"))
                    .col(big_integer("oversold_quantity"))
                    .primary_key(Index::create().col("hold_id").col("inventory_item_id").col("warehouse_id"))
                    .to_owned(),
            )
            .await?;
        super::index(manager, "idx_hold_allocation_item", "hold_allocation", &["inventory_item_id"]).await?;
        super::index(manager, "idx_hold_allocation_warehouse", "hold_allocation", &["warehouse_id"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("hold_allocation").to_owned()).await?;
        manager.drop_table(Table::drop().table("hold").to_owned()).await
    }
}
