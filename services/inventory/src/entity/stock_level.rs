use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stock_level")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub inventory_item_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub warehouse_id: String,
    pub on_hand: i64,
    /// The sum of the quantities of open hold allocations here.
    pub reserved: i64,
    pub updated_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
