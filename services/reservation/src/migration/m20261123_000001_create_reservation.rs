use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("reservation")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("state"))
                    .col(text("items"))
                    .col(text("ship_to"))
                    .col(string("ship_to_country"))
                    .col(string_null("shipping_currency"))
                    .col(double_null("shipping_amount"))
                    .col(string_null("shipping_service_level"))
                    .col(big_integer("expires_in_seconds"))
                    .col(timestamp_with_time_zone("expire_time"))
                    .col(text("allocations"))
                    .col(timestamp_with_time_zone_null("claimed_until"))
                    .col(string_null("claim_token"))
                    .col(boolean("live_mode"))
                    .col(timestamp_with_time_zone("created_time"))
                    .col(timestamp_with_time_zone("updated_time"))
                    .to_owned(),
            )
            .await?;
        // The sweeper finds due reservations by state and time; lists page by creation.
        for (name, columns) in [
            ("idx_reservation_state_expire_time", ["state", "expire_time"]),
            ("idx_reservation_state_claimed_until", ["state", "claimed_until"]),
            ("idx_reservation_created_time_id", ["created_time", "id"]),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table("reservation")
                        .col(Alias::new(columns[0]))
                        .col(Alias::new(columns[1]))
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("reservation").to_owned()).await
    }
}
