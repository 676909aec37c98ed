use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum ManufacturerPart {
    Table,
    ManufacturerId,
    PartNumber,
    CreatedTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ManufacturerPart::Table)
                    .if_not_exists()
                    .col(string(ManufacturerPart::ManufacturerId))
                    .col(string(ManufacturerPart::PartNumber))
                    .col(timestamp_with_time_zone(ManufacturerPart::CreatedTime))
                    .primary_key(
                        Index::create().col(ManufacturerPart::ManufacturerId).col(ManufacturerPart::PartNumber),
                    )
                    .to_owned(),
            )
            .await?;
        // Managed SKUs that name only a part number look the manufacturer up by part.
        manager
            .create_index(
                Index::create()
                    .name("idx_manufacturer_part_part_number")
                    .table(ManufacturerPart::Table)
                    .col(ManufacturerPart::PartNumber)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ManufacturerPart::Table).to_owned()).await
    }
}
