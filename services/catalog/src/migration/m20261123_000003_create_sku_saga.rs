use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("sku_saga")
                    .if_not_exists()
                    .col(string("sku_id").primary_key())
                    .col(text_null("previous"))
                    .col(text_null("desired"))
                    .col(string("claim_token"))
                    .col(timestamp_with_time_zone("claimed_until"))
                    .col(timestamp_with_time_zone("created_time"))
                    .to_owned(),
            )
            .await?;
        // Recovery looks for sagas whose claim lapsed.
        manager
            .create_index(
                Index::create()
                    .name("idx_sku_saga_claimed_until")
                    .table("sku_saga")
                    .col("claimed_until")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("sku_saga").to_owned()).await
    }
}
