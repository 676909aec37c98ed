use sea_orm::entity::prelude::*;

/// The part of a hold placed on one item in one warehouse.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "hold_allocation")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub hold_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub inventory_item_id: String,
    /// Empty for an oversold line that no warehouse shipping to the country carries.
    #[sea_orm(primary_key, auto_increment = false)]
    pub warehouse_id: String,
    /// Units set aside from stock (counted in the level's `reserved`).
    pub quantity: i64,
    /// Units promised beyond the stock (oversold lines only).
    pub oversold_quantity: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
