use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "reservation")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub state: State,
    /// The items as requested, as JSON.
    #[sea_orm(column_type = "Text")]
    pub items: String,
    /// The ship-to address, as JSON.
    #[sea_orm(column_type = "Text")]
    pub ship_to: String,
    pub ship_to_country: String,
    pub shipping_currency: Option<String>,
    pub shipping_amount: Option<f64>,
    pub shipping_service_level: Option<String>,
    pub expires_in_seconds: i64,
    pub expire_time: DateTimeUtc,
    /// Where the hold placed each line, as JSON; empty until the hold is placed.
    #[sea_orm(column_type = "Text")]
    pub allocations: String,
    /// Until when the replica changing the reservation owns the change.
    pub claimed_until: Option<DateTimeUtc>,
    /// Who owns the change: only the holder of the token may record its end.
    pub claim_token: Option<String>,
    pub live_mode: bool,
    pub created_time: DateTimeUtc,
    pub updated_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Where a reservation is in its life, stored by name (the names rows have always had). The `…ing`
/// states are changes under way: the replica that claimed the reservation finishes them, or another
/// does once its claim lapses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum State {
    /// The hold is being placed.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// The stock is held.
    #[sea_orm(string_value = "active")]
    Active,
    /// A cancellation is releasing the hold.
    #[sea_orm(string_value = "releasing")]
    Releasing,
    /// Cancelled; the hold is released.
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
    /// A fulfillment order is committing the hold.
    #[sea_orm(string_value = "committing")]
    Committing,
    /// A fulfillment order committed the hold.
    #[sea_orm(string_value = "fulfilled")]
    Fulfilled,
    /// Past its expiry: the hold is being released and the reservation deleted.
    #[sea_orm(string_value = "expiring")]
    Expiring,
}
