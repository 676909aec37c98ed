use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "manufacturer_part")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub manufacturer_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub part_number: String,
    pub created_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
