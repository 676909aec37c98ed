use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("fulfillment_order")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string_uniq("reservation_id"))
                    .col(string_null("upstream_id"))
                    .col(text("lines"))
                    .col(boolean("live_mode"))
                    .col(timestamp_with_time_zone("created_time"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_fulfillment_order_created_time_id")
                    .table("fulfillment_order")
                    .col("created_time")
                    .col("id")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("fulfillment_order").to_owned()).await
    }
}
