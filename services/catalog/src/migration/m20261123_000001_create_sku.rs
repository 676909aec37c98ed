use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

// The identifiers are the column names, so `SkuGroupId` keeps its prefix.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Sku {
    Table,
    Id,
    Name,
    Description,
    Eccn,
    TaxCode,
    CountryOfOrigin,
    HsCode,
    SkuGroupId,
    ManufacturerId,
    PartNumber,
    Image,
    Url,
    Weight,
    WeightUnit,
    AllowOversell,
    Fulfill,
    ManagedFulfillment,
    ItemBreadcrumb,
    Metadata,
    Physical,
    LiveMode,
    CreatedTime,
    UpdatedTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sku::Table)
                    .if_not_exists()
                    .col(string(Sku::Id).primary_key())
                    .col(string(Sku::Name))
                    .col(text_null(Sku::Description))
                    .col(string(Sku::Eccn))
                    .col(string(Sku::TaxCode))
                    .col(string(Sku::CountryOfOrigin))
                    .col(string_null(Sku::HsCode))
                    .col(string_null(Sku::SkuGroupId))
                    .col(string_null(Sku::ManufacturerId))
                    .col(string_null(Sku::PartNumber))
                    .col(text_null(Sku::Image))
                    .col(text_null(Sku::Url))
                    .col(double_null(Sku::Weight))
                    .col(string_null(Sku::WeightUnit))
                    .col(boolean_null(Sku::AllowOversell))
                    .col(boolean(Sku::Fulfill))
                    .col(string_null(Sku::ManagedFulfillment))
                    .col(text_null(Sku::ItemBreadcrumb))
                    .col(text(Sku::Metadata))
                    .col(boolean(Sku::Physical))
                    .col(boolean(Sku::LiveMode))
                    .col(timestamp_with_time_zone(Sku::CreatedTime))
                    .col(timestamp_with_time_zone(Sku::UpdatedTime))
                    .to_owned(),
            )
            .await?;
        // Listing pages through (created_time, id); the filters each have an index.
        let indexes: [(&str, Vec<Sku>); 7] = [
            ("idx_sku_created_time_id", vec![Sku::CreatedTime, Sku::Id]),
            ("idx_sku_updated_time", vec![Sku::UpdatedTime]),
            ("idx_sku_eccn", vec![Sku::Eccn]),
            ("idx_sku_tax_code", vec![Sku::TaxCode]),
            ("idx_sku_hs_code", vec![Sku::HsCode]),
            ("idx_sku_sku_group_id", vec![Sku::SkuGroupId]),
            ("idx_sku_part_number_manufacturer_id", vec![Sku::PartNumber, Sku::ManufacturerId]),
        ];
        for (name, columns) in indexes {
            let mut index = Index::create();
            index.name(name).table(Sku::Table).if_not_exists();
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Sku::Table).to_owned()).await
    }
}
