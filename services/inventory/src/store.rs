//! Queries and row locks that more than one of the Inventory's operations needs: finding an item
//! or a warehouse, the warehouses that ship to a country, locking and saving stock levels, reading
//! a hold back. Every lock here is taken in the database's own order (docs/architecture.md,
//! "Stock and holds").

use std::collections::BTreeMap;

use fulfillment_errors::FieldViolation;
use fulfillment_reference::is_valid_id;
use sea_orm::sea_query::{Query, UnionType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use crate::InventoryError;
use crate::domain::{Hold, HoldLine, InventoryItem, StockLevel, Warehouse};
use crate::entity::{hold, hold_allocation, inventory_item, stock_level, warehouse, warehouse_ship_to};

/// How a read locks the rows it finds until the transaction ends (on PostgreSQL; SQLite's writers
/// already take turns, and sea-query leaves the clause out there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RowLock {
    /// A plain read.
    None,
    /// Others may read and share-lock, not change or delete.
    Shared,
    /// Nobody else may lock, change or delete.
    Exclusive,
}

impl RowLock {
    pub(crate) fn apply<E: sea_orm::EntityTrait>(self, query: sea_orm::Select<E>) -> sea_orm::Select<E> {
        use sea_orm::QuerySelect;
        match self {
            RowLock::None => query,
            RowLock::Shared => query.lock_shared(),
            RowLock::Exclusive => query.lock_exclusive(),
        }
    }
}

/// Reads an item, optionally locking it for the transaction.
pub(crate) async fn find_item(
    db: &impl ConnectionTrait,
    id: &str,
    lock: RowLock,
) -> Result<InventoryItem, InventoryError> {
    lock.apply(inventory_item::Entity::find_by_id(id.to_owned()))
        .one(db)
        .await?
        .ok_or_else(|| InventoryError::ItemNotFound(id.to_owned()))
}

/// Reads a warehouse, optionally locking it for the transaction.
pub(crate) async fn find_warehouse(
    db: &impl ConnectionTrait,
    id: &str,
    lock: RowLock,
) -> Result<Warehouse, InventoryError> {
    if !is_valid_id(id) {
        return Err(InventoryError::invalid(FieldViolation::not_valid("warehouseId", id, "warehouse ID")));
    }
    lock.apply(warehouse::Entity::find_by_id(id.to_owned()))
        .one(db)
        .await?
        .ok_or_else(|| InventoryError::WarehouseNotFound(id.to_owned()))
}

/// The warehouses that ship to any of `countries`, in id order, found through the country index:
/// the warehouses that ship elsewhere are never read.
pub(crate) fn shipping_to<'a>(countries: impl IntoIterator<Item = &'a str>) -> Select<warehouse::Entity> {
    let listed = Query::select()
        .column(warehouse_ship_to::Column::WarehouseId)
        .from(warehouse_ship_to::Entity)
        .and_where(warehouse_ship_to::Column::Country.is_in(countries.into_iter().map(str::to_owned)))
        .union(
            UnionType::Distinct,
            Query::select()
                .column(warehouse::Column::Id)
                .from(warehouse::Entity)
                .and_where(warehouse::Column::ShipsEverywhere.eq(true))
                .to_owned(),
        )
        .to_owned();
    warehouse::Entity::find().filter(warehouse::Column::Id.in_subquery(listed)).order_by_asc(warehouse::Column::Id)
}

/// Writes a level's quantities back.
pub(crate) async fn save_level(db: &impl ConnectionTrait, level: &StockLevel) -> Result<(), DbErr> {
    level.clone().into_active_model().reset_all().update(db).await.map(drop)
}

/// Locks the stock levels of `items` in `warehouses` for the transaction, in one query in the
/// database's own order: the order every hold, batch and close takes them in.
pub(crate) async fn lock_levels(
    txn: &impl ConnectionTrait,
    items: impl IntoIterator<Item = String>,
    warehouses: impl IntoIterator<Item = String>,
) -> Result<BTreeMap<(String, String), stock_level::Model>, DbErr> {
    Ok(stock_level::Entity::find()
        .filter(stock_level::Column::InventoryItemId.is_in(items))
        .filter(stock_level::Column::WarehouseId.is_in(warehouses))
        .order_by_asc(stock_level::Column::InventoryItemId)
        .order_by_asc(stock_level::Column::WarehouseId)
        .lock_exclusive()
        .all(txn)
        .await?
        .into_iter()
        .map(|level| ((level.inventory_item_id.clone(), level.warehouse_id.clone()), level))
        .collect())
}

/// A stored hold with its allocations.
pub(crate) async fn load_hold(db: &impl ConnectionTrait, row: hold::Model) -> Result<Hold, DbErr> {
    let allocations = hold_allocation::Entity::find()
        .filter(hold_allocation::Column::HoldId.eq(row.id.clone()))
        .order_by_asc(hold_allocation::Column::InventoryItemId)
        .order_by_asc(hold_allocation::Column::WarehouseId)
        .all(db)
        .await?;
    let lines: Vec<HoldLine> = serde_json::from_str(&row.lines).map_err(|e| DbErr::Json(e.to_string()))?;
    Ok(Hold {
        state: row.state,
        id: row.id,
        ship_to_country: row.ship_to_country,
        lines,
        allocations,
        placed_by: row.placed_by,
        expire_time: row.expire_time,
        created_time: row.created_time,
        updated_time: row.updated_time,
    })
}
