use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "hold")]
pub struct Model {
    /// The reservation's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub state: HoldState,
    pub ship_to_country: String,
    /// The request's lines, merged per item, as JSON: what a repeated request is compared with.
    #[sea_orm(column_type = "Text")]
    pub lines: String,
    pub expire_time: DateTimeUtc,
    pub created_time: DateTimeUtc,
    pub updated_time: DateTimeUtc,
    /// Who placed it; NULL for holds from before it was recorded.
    pub placed_by: Option<Caller>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Where a hold is in its life, stored by name (the names are those rows have always had).
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum HoldState {
    /// Stock is set aside.
    #[sea_orm(string_value = "held")]
    Held,
    /// The stock shipped: on hand and reserved both fell.
    #[sea_orm(string_value = "committed")]
    Committed,
    /// The reservation was cancelled.
    #[sea_orm(string_value = "released")]
    Released,
    /// The hold lapsed and the Inventory released it.
    #[sea_orm(string_value = "expired")]
    Expired,
}

/// Who is calling, known by service key: the Catalog may change the items its SKUs own and the
/// Reservation service may close the holds it placed; nobody else may do either. A hold stores who
/// placed it by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum Caller {
    /// The Catalog service, keeping a SKU's item in step.
    #[sea_orm(string_value = "catalog")]
    Catalog,
    /// The Reservation service, placing and closing its reservations' holds.
    #[sea_orm(string_value = "reservation")]
    Reservation,
    /// Anyone else.
    #[sea_orm(string_value = "client")]
    Client,
}
