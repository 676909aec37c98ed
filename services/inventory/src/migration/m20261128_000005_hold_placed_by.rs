use sea_orm_migration::{prelude::*, schema::*};

/// Holds record who placed them, so that only the Reservation service closes its reservations'
/// holds. Rows from before stay NULL: anyone with a write key may close them, as before.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table("hold").add_column(string_null("placed_by")).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table("hold").drop_column("placed_by").to_owned()).await
    }
}
