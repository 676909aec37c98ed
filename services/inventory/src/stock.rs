//! Stock: on-hand quantities per item and warehouse, every change a row in the ledger, and the
//! levels a caller reads.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use fulfillment_errors::{FieldViolation, Violations};
use fulfillment_reference::{MAX_SHORT_TEXT, generate_id, validate_text};
use fulfillment_storage::paging::{Cursor, Page};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use crate::domain::{MAX_QUANTITY, StockChange, StockLevel, StockMovement, check, validate_item_id};
use crate::entity::{inventory_item, stock_level, stock_movement, warehouse};
use crate::inventory::Inventory;
use crate::store::{RowLock, find_item, find_warehouse, save_level, shipping_to};
use crate::{InventoryError, retry_lost_insert};

/// The most items one levels call may ask about.
pub const MAX_LEVEL_ITEMS: usize = 500;

/// A stock change as a caller asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockChangeRequest {
    pub inventory_item_id: String,
    pub warehouse_id: String,
    pub change: StockChange,
    /// Units received, the delta, or the new on-hand value.
    pub quantity: i64,
    /// Why, for the ledger.
    pub reason: String,
    /// A retried call with the same key applies once.
    pub idempotency_key: String,
}

/// One item's quantities, per warehouse and in total.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemLevel {
    /// The item.
    pub inventory_item_id: String,
    /// Its stock in each counted warehouse.
    pub warehouses: Vec<StockLevel>,
    /// Sums over the counted warehouses.
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

impl StockChangeRequest {
    fn validate(&self) -> Result<(), InventoryError> {
        let mut violations = Violations::new();
        violations.extend(validate_item_id("inventoryItemId", &self.inventory_item_id).err());
        let quantity_ok = match self.change {
            StockChange::Receive => self.quantity > 0,
            StockChange::Adjust => self.quantity != 0,
            StockChange::Set => self.quantity >= 0,
        };
        if !quantity_ok || !(-MAX_QUANTITY..=MAX_QUANTITY).contains(&self.quantity) {
            let what = match self.change {
                StockChange::Receive => "quantity to receive",
                StockChange::Adjust => "adjustment",
                StockChange::Set => "on-hand quantity",
            };
            violations.push(FieldViolation::not_valid("quantity", &self.quantity.to_string(), what));
        }
        for (parameter, value) in [("reason", &self.reason), ("idempotencyKey", &self.idempotency_key)] {
            if value.is_empty() {
                violations.push(FieldViolation::missing(parameter));
            } else {
                violations.extend(validate_text(parameter, value, MAX_SHORT_TEXT).err());
            }
        }
        check(violations)
    }
}

impl Inventory {
    /// How many stock levels have fewer than `threshold` units available.
    pub async fn count_low_levels(&self, threshold: i64) -> Result<u64, InventoryError> {
        let available = Expr::col(stock_level::Column::OnHand).sub(Expr::col(stock_level::Column::Reserved));
        Ok(stock_level::Entity::find().filter(available.lt(threshold)).count(self.db.connection()).await?)
    }

    /// Receives, adjusts or sets the on-hand quantity of an item in a warehouse, writing a ledger
    /// row. A retried call with the same idempotency key changes nothing and answers as the first
    /// did; the key reused for another change is ALREADY_EXISTS.
    pub async fn change_stock(
        &self,
        request: StockChangeRequest,
    ) -> Result<(StockLevel, StockMovement), InventoryError> {
        request.validate()?;
        let time = self.clock.now();
        retry_lost_insert(|| {
            self.db.write(|txn| {
                let request = request.clone();
                Box::pin(async move {
                    if let Some(movement) = stock_movement::Entity::find()
                        .filter(stock_movement::Column::IdempotencyKey.eq(request.idempotency_key.clone()))
                        .one(txn)
                        .await?
                    {
                        let same = (
                            &movement.inventory_item_id,
                            &movement.warehouse_id,
                            movement.kind.as_str(),
                            movement.requested_quantity,
                        ) == (
                            &request.inventory_item_id,
                            &request.warehouse_id,
                            request.change.as_str(),
                            request.quantity,
                        );
                        if !same {
                            return Err(InventoryError::IdempotencyKeyReused(request.idempotency_key));
                        }
                        let key = (movement.inventory_item_id.clone(), movement.warehouse_id.clone());
                        let level = stock_level::Entity::find_by_id(key)
                            .one(txn)
                            .await?
                            .unwrap_or_else(|| empty_level(&movement.inventory_item_id, &movement.warehouse_id, time));
                        return Ok((level, movement));
                    }
                    // Shared locks keep the item and the warehouse from being deleted under the change.
                    find_item(txn, &request.inventory_item_id, RowLock::Shared).await?;
                    find_warehouse(txn, &request.warehouse_id, RowLock::Shared).await?;
                    let mut level = lock_level(txn, &request.inventory_item_id, &request.warehouse_id, time).await?;
                    let on_hand = match request.change {
                        StockChange::Receive | StockChange::Adjust => level.on_hand + request.quantity,
                        StockChange::Set => request.quantity,
                    };
                    if on_hand < level.reserved || !(0..=MAX_QUANTITY).contains(&on_hand) {
                        return Err(InventoryError::StockBelowHeld {
                            item: request.inventory_item_id,
                            warehouse: request.warehouse_id,
                            on_hand,
                            reserved: level.reserved,
                        });
                    }
                    let movement = StockMovement {
                        id: generate_id("mov"),
                        inventory_item_id: request.inventory_item_id.clone(),
                        warehouse_id: request.warehouse_id.clone(),
                        kind: request.change.as_str().to_owned(),
                        requested_quantity: request.quantity,
                        delta: on_hand - level.on_hand,
                        on_hand_after: on_hand,
                        reason: request.reason.clone(),
                        idempotency_key: Some(request.idempotency_key.clone()),
                        hold_id: None,
                        created_time: time,
                    };
                    level.on_hand = on_hand;
                    level.updated_time = time;
                    save_level(txn, &level).await?;
                    stock_movement::Entity::insert(movement.clone().into_active_model())
                        .exec_without_returning(txn)
                        .await?;
                    Ok((level, movement))
                })
            })
        })
        .await
    }

    /// The ledger of an item, oldest first.
    pub async fn list_movements(
        &self,
        item: &str,
        page_size: u64,
        page_token: &str,
    ) -> Result<Page<StockMovement>, InventoryError> {
        validate_item_id("inventoryItemId", item).map_err(InventoryError::invalid)?;
        let cursor = Cursor::decode(page_token).map_err(InventoryError::invalid)?;
        find_item(self.db.connection(), item, RowLock::None).await?;
        let mut condition = Condition::all().add(stock_movement::Column::InventoryItemId.eq(item));
        if let Some(cursor) = &cursor {
            condition =
                condition.add(cursor.condition(stock_movement::Column::CreatedTime, stock_movement::Column::Id));
        }
        let rows = stock_movement::Entity::find()
            .filter(condition)
            .order_by_asc(stock_movement::Column::CreatedTime)
            .order_by_asc(stock_movement::Column::Id)
            .limit(page_size + 1)
            .all(self.db.connection())
            .await?;
        Ok(Page::from_rows(rows, page_size, |m| Cursor::after(m.created_time, &m.id)))
    }

    /// The levels of many items: per warehouse and in total, counting only warehouses that ship to
    /// `ship_to_country` when given, and only items with at least `min_available` when given.
    pub async fn levels(
        &self,
        item_ids: &[String],
        ship_to_country: Option<&str>,
        min_available: Option<i64>,
    ) -> Result<Vec<ItemLevel>, InventoryError> {
        // The count first: a longer list is refused before any of its ids is looked at.
        if item_ids.len() > MAX_LEVEL_ITEMS {
            let message = format!("At most {MAX_LEVEL_ITEMS} items may be asked for at once.");
            return Err(InventoryError::invalid(FieldViolation::invalid("inventoryItemIds", message)));
        }
        let mut violations = Violations::new();
        if item_ids.is_empty() {
            violations.push(FieldViolation::missing("inventoryItemIds"));
        }
        violations.extend(item_ids.iter().filter_map(|id| validate_item_id("inventoryItemIds", id).err()));
        if let Some(country) = ship_to_country {
            violations.extend(self.reference.countries.validate_country("shipToCountry", country).err());
        }
        check(violations)?;

        let db = self.db.connection();
        let wanted: Vec<String> = item_ids.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
        let known: BTreeSet<String> = inventory_item::Entity::find()
            .select_only()
            .column(inventory_item::Column::Id)
            .filter(inventory_item::Column::Id.is_in(wanted.clone()))
            .into_tuple::<String>()
            .all(db)
            .await?
            .into_iter()
            .collect();
        if let Some(missing) = item_ids.iter().find(|id| !known.contains(*id)) {
            return Err(InventoryError::ItemNotFound(missing.clone()));
        }
        // Without a country every level counts, and no warehouse needs to be read.
        let counted: Option<BTreeSet<String>> = match ship_to_country {
            Some(country) => Some(
                shipping_to([country])
                    .select_only()
                    .column(warehouse::Column::Id)
                    .into_tuple::<String>()
                    .all(db)
                    .await?
                    .into_iter()
                    .collect(),
            ),
            None => None,
        };
        let mut by_item: BTreeMap<String, Vec<StockLevel>> = BTreeMap::new();
        let rows = stock_level::Entity::find()
            .filter(stock_level::Column::InventoryItemId.is_in(wanted))
            .order_by_asc(stock_level::Column::WarehouseId)
            .all(db)
            .await?;
        for row in rows.into_iter().filter(|row| counted.as_ref().is_none_or(|c| c.contains(&row.warehouse_id))) {
            by_item.entry(row.inventory_item_id.clone()).or_default().push(row);
        }
        let mut seen = BTreeSet::new();
        let levels = item_ids
            .iter()
            .filter(|id| seen.insert((*id).clone()))
            .map(|id| {
                let warehouses = by_item.remove(id).unwrap_or_default();
                let on_hand = warehouses.iter().map(|l| l.on_hand).sum();
                let reserved = warehouses.iter().map(|l| l.reserved).sum();
                ItemLevel {
                    inventory_item_id: id.clone(),
                    warehouses,
                    on_hand,
                    reserved,
                    available: on_hand - reserved,
                }
            })
            .filter(|level| min_available.is_none_or(|min| level.available >= min))
            .collect();
        Ok(levels)
    }
}

/// Reads the level of an item in a warehouse, creating an empty one first if there is none, and
/// locks it for the transaction.
pub(crate) async fn lock_level(
    db: &impl ConnectionTrait,
    item: &str,
    warehouse: &str,
    time: DateTime<Utc>,
) -> Result<StockLevel, DbErr> {
    stock_level::Entity::insert(empty_level(item, warehouse, time).into_active_model())
        .on_conflict(
            OnConflict::columns([stock_level::Column::InventoryItemId, stock_level::Column::WarehouseId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    stock_level::Entity::find_by_id((item.to_owned(), warehouse.to_owned()))
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("stock level {item}/{warehouse}")))
}

/// A level with nothing on hand or held.
fn empty_level(item: &str, warehouse: &str, time: DateTime<Utc>) -> StockLevel {
    StockLevel {
        inventory_item_id: item.to_owned(),
        warehouse_id: warehouse.to_owned(),
        on_hand: 0,
        reserved: 0,
        updated_time: time,
    }
}
