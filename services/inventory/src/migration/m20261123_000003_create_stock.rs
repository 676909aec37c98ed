use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("stock_level")
                    .if_not_exists()
                    .col(string("inventory_item_id"))
                    .col(string("warehouse_id"))
                    .col(big_integer("on_hand"))
                    .col(big_integer("reserved"))
                    .col(timestamp_with_time_zone("updated_time"))
                    .primary_key(Index::create().col("inventory_item_id").col("warehouse_id"))
                    // The invariants, so that a bug fails loudly instead of drifting.
                    .check(Expr::col("reserved").gte(0))
                    .check(Expr::col("reserved").lte(Expr::col("on_hand")))
                    .to_owned(),
            )
            .await?;
        super::index(manager, "idx_stock_level_warehouse", "stock_level", &["warehouse_id"]).await?;
        manager
            .create_table(
                Table::create()
                    .table("stock_movement")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("inventory_item_id"))
                    .col(string("warehouse_id"))
                    .col(string("kind"))
                    .col(big_integer("requested_quantity"))
                    .col(big_integer("delta"))
                    .col(big_integer("on_hand_after"))
                    .col(string("reason"))
                    .col(string_null("idempotency_key").unique_key())
                    .col(string_null("hold_id"))
                    .col(timestamp_with_time_zone("created_time"))
                    .to_owned(),
            )
            .await?;
        super::index(
            manager,
            "idx_stock_movement_item_time",
            "stock_movement",
            &["inventory_item_id", "created_time", "id"],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("stock_movement").to_owned()).await?;
        manager.drop_table(Table::drop().table("stock_level").to_owned()).await
    }
}
