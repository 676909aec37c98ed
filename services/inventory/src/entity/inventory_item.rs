use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "inventory_item")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub manufacturer_id: Option<String>,
    pub part_number: Option<String>,
    pub eccn: Option<String>,
    pub hs_code: Option<String>,
    pub country_of_origin: Option<String>,
    pub allow_oversell: bool,
    /// The SKU that owns the item, when the Catalog created it.
    pub owner_sku_id: Option<String>,
    pub live_mode: bool,
    pub created_time: DateTimeUtc,
    pub updated_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
