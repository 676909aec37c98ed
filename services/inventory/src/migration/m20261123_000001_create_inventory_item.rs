use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("inventory_item")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string_null("manufacturer_id"))
                    .col(string_null("part_number"))
                    .col(string_null("eccn"))
                    .col(string_null("hs_code"))
                    .col(string_null("country_of_origin"))
                    .col(boolean("allow_oversell"))
                    .col(string_null("owner_sku_id"))
                    .col(boolean("live_mode"))
                    .col(timestamp_with_time_zone("created_time"))
                    .col(timestamp_with_time_zone("updated_time"))
                    .to_owned(),
            )
            .await?;
        super::index(manager, "idx_inventory_item_created_time_id", "inventory_item", &["created_time", "id"]).await?;
        super::index(manager, "idx_inventory_item_updated_time", "inventory_item", &["updated_time"]).await?;
        super::index(
            manager,
            "idx_inventory_item_manufacturer_part",
            "inventory_item",
            &["manufacturer_id", "part_number"],
        )
        .await?;
        super::index(manager, "idx_inventory_item_part_number", "inventory_item", &["part_number"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("inventory_item").to_owned()).await
    }
}
