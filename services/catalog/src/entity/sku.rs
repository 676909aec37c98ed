use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sku")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub eccn: String,
    pub tax_code: String,
    pub country_of_origin: String,
    pub hs_code: Option<String>,
    pub sku_group_id: Option<String>,
    pub manufacturer_id: Option<String>,
    pub part_number: Option<String>,
    pub image: Option<String>,
    pub url: Option<String>,
    pub weight: Option<f64>,
    pub weight_unit: Option<String>,
    pub allow_oversell: Option<bool>,
    pub fulfill: bool,
    pub managed_fulfillment: Option<String>,
    pub item_breadcrumb: Option<String>,
    /// A JSON object of strings.
    #[sea_orm(column_type = "Text")]
    pub metadata: String,
    pub physical: bool,
    pub live_mode: bool,
    pub created_time: DateTimeUtc,
    pub updated_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
