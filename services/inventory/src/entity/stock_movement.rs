use sea_orm::entity::prelude::*;

/// One row of the stock ledger: every change to an on-hand quantity.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stock_movement")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub inventory_item_id: String,
    pub warehouse_id: String,
    /// receive, adjust, set or commit.
    pub kind: String,
    /// What the caller asked for: the quantity received, the delta, or the new on-hand value.
    pub requested_quantity: i64,
    pub delta: i64,
    pub on_hand_after: i64,
    pub reason: String,
    /// The caller's key; none on the rows a hold's commit or an item's deletion writes.
    #[sea_orm(unique)]
    pub idempotency_key: Option<String>,
    pub hold_id: Option<String>,
    pub created_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
