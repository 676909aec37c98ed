use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "hold")]
pub struct Model {
    /// The reservation's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// held, committed, released or expired.
    pub state: String,
    pub ship_to_country: String,
    /// The request's lines, merged per item, as JSON: what a repeated request is compared with.
    #[sea_orm(column_type = "Text")]
    pub lines: String,
    pub expire_time: DateTimeUtc,
    pub created_time: DateTimeUtc,
    pub updated_time: DateTimeUtc,
    /// Who placed it: `reservation`, `catalog` or `client`; NULL for holds from before it was
    /// recorded.
    pub placed_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
