use sea_orm::entity::prelude::*;

/// An open saga keeping a SKU and its inventory item in step: at most one per SKU.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sku_saga")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub sku_id: String,
    /// The SKU before the change, as JSON; none for a create.
    #[sea_orm(column_type = "Text", nullable)]
    pub previous: Option<String>,
    /// The SKU after the change, as JSON; none for a delete.
    #[sea_orm(column_type = "Text", nullable)]
    pub desired: Option<String>,
    /// Who is driving the saga, and until when.
    pub claim_token: String,
    pub claimed_until: DateTimeUtc,
    pub created_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
