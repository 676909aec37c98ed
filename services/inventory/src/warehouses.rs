//! Warehouses: where stock is, and which countries each ships to.

use std::collections::BTreeSet;

use fulfillment_errors::{FieldViolation, Violations};
use fulfillment_reference::{MAX_SHORT_TEXT, generate_id, is_valid_id, validate_text};
use fulfillment_storage::paging::{Cursor, Page};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use crate::domain::{HoldState, Warehouse, check, ship_to_countries};
use crate::entity::{hold, hold_allocation, stock_level, warehouse, warehouse_ship_to};
use crate::inventory::Inventory;
use crate::store::{RowLock, find_warehouse};
use crate::{InventoryError, retry_lost_insert};

/// The attributes a caller sets on a warehouse; `None` means not given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WarehouseFields {
    pub name: Option<String>,
    /// Where the warehouse is (ISO 3166-1 alpha-2).
    pub country: Option<String>,
    /// The countries it ships to.
    pub ship_to_countries: Option<Vec<String>>,
    /// Whether it ships to every country.
    pub ships_everywhere: Option<bool>,
    /// Lower is preferred.
    pub priority: Option<i32>,
}

/// An attribute an update may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WarehouseField {
    Name,
    Country,
    ShipToCountries,
    ShipsEverywhere,
    Priority,
}

impl WarehouseField {
    /// The field a mask path names, in snake_case or camelCase.
    pub fn from_path(path: &str) -> Option<Self> {
        match path {
            "name" => Some(WarehouseField::Name),
            "country" => Some(WarehouseField::Country),
            "ship_to_countries" | "shipToCountries" => Some(WarehouseField::ShipToCountries),
            "ships_everywhere" | "shipsEverywhere" => Some(WarehouseField::ShipsEverywhere),
            "priority" => Some(WarehouseField::Priority),
            _ => None,
        }
    }
}

impl WarehouseFields {
    /// The fields that are set.
    pub fn present_fields(&self) -> Vec<WarehouseField> {
        [
            (WarehouseField::Name, self.name.is_some()),
            (WarehouseField::Country, self.country.is_some()),
            (WarehouseField::ShipToCountries, self.ship_to_countries.is_some()),
            (WarehouseField::ShipsEverywhere, self.ships_everywhere.is_some()),
            (WarehouseField::Priority, self.priority.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(field, _)| field)
        .collect()
    }

    fn apply_to(&self, warehouse: &mut Warehouse, fields: &[WarehouseField]) {
        for field in fields {
            match field {
                WarehouseField::Name => warehouse.name = self.name.clone().unwrap_or_default(),
                WarehouseField::Country => warehouse.country = self.country.clone().unwrap_or_default(),
                WarehouseField::ShipToCountries => {
                    warehouse.ship_to_countries = join_countries(self.ship_to_countries.as_deref().unwrap_or_default())
                }
                WarehouseField::ShipsEverywhere => warehouse.ships_everywhere = self.ships_everywhere.unwrap_or(false),
                WarehouseField::Priority => warehouse.priority = self.priority.unwrap_or(0),
            }
        }
    }
}

/// The countries a warehouse ships to, stored sorted and comma-separated.
fn join_countries(countries: &[String]) -> String {
    countries.iter().map(String::as_str).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>().join(",")
}

/// The most countries a warehouse's list may name: there are 249 ISO 3166-1 codes.
pub const MAX_SHIP_TO_COUNTRIES: usize = 250;

impl Inventory {
    /// Checks the countries a caller sent before anything is built from them: their count first,
    /// then each one as given (so `"US,DE"` is one bad code, not two countries).
    fn validate_ship_to(&self, fields: &WarehouseFields) -> Result<(), InventoryError> {
        let Some(countries) = &fields.ship_to_countries else { return Ok(()) };
        if countries.len() > MAX_SHIP_TO_COUNTRIES {
            let message = format!("At most {MAX_SHIP_TO_COUNTRIES} countries may be given.");
            return Err(InventoryError::invalid(FieldViolation::invalid("shipToCountries", message)));
        }
        let mut violations = Violations::new();
        for country in countries {
            violations.extend(self.reference.countries.validate_country("shipToCountries", country).err());
        }
        check(violations)
    }

    fn validate_warehouse(&self, warehouse: &Warehouse) -> Result<(), InventoryError> {
        let mut violations = Violations::new();
        if warehouse.name.is_empty() {
            violations.push(FieldViolation::missing("name"));
        }
        violations.extend(validate_text("name", &warehouse.name, MAX_SHORT_TEXT).err());
        if warehouse.country.is_empty() {
            violations.push(FieldViolation::missing("country"));
        } else {
            violations.extend(self.reference.countries.validate_country("country", &warehouse.country).err());
        }
        for country in ship_to_countries(warehouse) {
            violations.extend(self.reference.countries.validate_country("shipToCountries", &country).err());
        }
        check(violations)
    }

    /// Creates a warehouse, generating its id when none is given.
    pub async fn create_warehouse(
        &self,
        id: Option<String>,
        fields: WarehouseFields,
    ) -> Result<Warehouse, InventoryError> {
        let id = match id {
            Some(id) if is_valid_id(&id) => id,
            Some(id) => return Err(InventoryError::invalid(FieldViolation::not_valid("id", &id, "warehouse ID"))),
            None => generate_id("wh"),
        };
        self.validate_ship_to(&fields)?;
        let time = self.clock.now();
        let mut warehouse = Warehouse {
            id,
            name: String::new(),
            country: String::new(),
            ship_to_countries: String::new(),
            ships_everywhere: false,
            priority: 0,
            created_time: time,
            updated_time: time,
        };
        fields.apply_to(&mut warehouse, &fields.present_fields());
        self.validate_warehouse(&warehouse)?;
        retry_lost_insert(|| {
            self.db.write(|txn| {
                let warehouse = warehouse.clone();
                Box::pin(async move {
                    if warehouse::Entity::find_by_id(warehouse.id.clone()).one(txn).await?.is_some() {
                        return Err(InventoryError::WarehouseExists(warehouse.id));
                    }
                    warehouse::Entity::insert(warehouse.clone().into_active_model())
                        .exec_without_returning(txn)
                        .await?;
                    index_ship_to(txn, &warehouse).await?;
                    Ok(warehouse)
                })
            })
        })
        .await
    }

    /// Changes the named attributes of a warehouse.
    pub async fn update_warehouse(
        &self,
        id: &str,
        fields: WarehouseFields,
        mask: Vec<WarehouseField>,
    ) -> Result<Warehouse, InventoryError> {
        self.validate_ship_to(&fields)?;
        let this = self.clone();
        self.db
            .write(|txn| {
                let (this, id, fields, mask) = (this.clone(), id.to_owned(), fields.clone(), mask.clone());
                Box::pin(async move {
                    let mut warehouse = find_warehouse(txn, &id, RowLock::Exclusive).await?;
                    let countries_before = warehouse.ship_to_countries.clone();
                    fields.apply_to(&mut warehouse, &mask);
                    this.validate_warehouse(&warehouse)?;
                    warehouse.updated_time = Ord::max(this.clock.now(), warehouse.created_time);
                    warehouse.clone().into_active_model().reset_all().update(txn).await?;
                    if warehouse.ship_to_countries != countries_before {
                        unindex_ship_to(txn, &warehouse.id).await?;
                        index_ship_to(txn, &warehouse).await?;
                    }
                    Ok(warehouse)
                })
            })
            .await
    }

    /// Returns a warehouse.
    pub async fn get_warehouse(&self, id: &str) -> Result<Warehouse, InventoryError> {
        find_warehouse(self.db.connection(), id, RowLock::None).await
    }

    /// Lists warehouses, oldest first.
    pub async fn list_warehouses(&self, page_size: u64, page_token: &str) -> Result<Page<Warehouse>, InventoryError> {
        let cursor = Cursor::decode(page_token).map_err(InventoryError::invalid)?;
        let mut condition = Condition::all();
        if let Some(cursor) = &cursor {
            condition = condition.add(cursor.condition(warehouse::Column::CreatedTime, warehouse::Column::Id));
        }
        let rows = warehouse::Entity::find()
            .filter(condition)
            .order_by_asc(warehouse::Column::CreatedTime)
            .order_by_asc(warehouse::Column::Id)
            .limit(page_size + 1)
            .all(self.db.connection())
            .await?;
        Ok(Page::from_rows(rows, page_size, |w| Cursor::after(w.created_time, &w.id)))
    }

    /// Deletes a warehouse that holds no stock and no open holds, with its empty stock rows.
    pub async fn delete_warehouse(&self, id: &str) -> Result<(), InventoryError> {
        self.db
            .write(|txn| {
                let id = id.to_owned();
                Box::pin(async move {
                    find_warehouse(txn, &id, RowLock::Exclusive).await?;
                    let stocked = stock_level::Entity::find()
                        .filter(stock_level::Column::WarehouseId.eq(id.clone()))
                        .filter(
                            Expr::col(stock_level::Column::OnHand)
                                .ne(0)
                                .or(Expr::col(stock_level::Column::Reserved).ne(0)),
                        )
                        .count(txn)
                        .await?;
                    let holds_here = Query::select()
                        .column(hold_allocation::Column::HoldId)
                        .from(hold_allocation::Entity)
                        .and_where(hold_allocation::Column::WarehouseId.eq(id.clone()))
                        .to_owned();
                    let open = hold::Entity::find()
                        .filter(hold::Column::Id.in_subquery(holds_here))
                        .filter(hold::Column::State.eq(HoldState::Held))
                        .count(txn)
                        .await?;
                    if stocked > 0 || open > 0 {
                        return Err(InventoryError::WarehouseInUse(id));
                    }
                    stock_level::Entity::delete_many()
                        .filter(stock_level::Column::WarehouseId.eq(id.clone()))
                        .exec(txn)
                        .await?;
                    unindex_ship_to(txn, &id).await?;
                    warehouse::Entity::delete_by_id(id).exec(txn).await?;
                    Ok(())
                })
            })
            .await
    }
}

/// Records the countries `warehouse` ships to in the index holds find warehouses by.
async fn index_ship_to(txn: &impl ConnectionTrait, warehouse: &Warehouse) -> Result<(), DbErr> {
    let rows: Vec<warehouse_ship_to::ActiveModel> = ship_to_countries(warehouse)
        .into_iter()
        .map(|country| warehouse_ship_to::Model { country, warehouse_id: warehouse.id.clone() }.into_active_model())
        .collect();
    if !rows.is_empty() {
        warehouse_ship_to::Entity::insert_many(rows).exec_without_returning(txn).await?;
    }
    Ok(())
}

/// Removes a warehouse's countries from the index.
async fn unindex_ship_to(txn: &impl ConnectionTrait, warehouse_id: &str) -> Result<(), DbErr> {
    warehouse_ship_to::Entity::delete_many()
        .filter(warehouse_ship_to::Column::WarehouseId.eq(warehouse_id))
        .exec(txn)
        .await?;
    Ok(())
}
