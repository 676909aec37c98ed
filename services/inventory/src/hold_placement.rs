//! Placing holds in one transaction: every lock first, then each hold decided on its own against
//! the stock the ones before it left, then a few bulk writes. A single hold is a batch of one; the
//! lanes in `hold_batches` gather the batches.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use fulfillment_errors::FieldViolation;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};

use crate::InventoryError;
use crate::allocation::{Candidate, Need, allocate};
use crate::domain::{Hold, HoldLine, HoldRequest, HoldState, same_lines, ships_to};
use crate::entity::{hold, hold_allocation, inventory_item, stock_level, warehouse};
use crate::store::{load_hold, lock_levels, save_level, shipping_to};

/// Rows per insert statement.
const INSERT_CHUNK: usize = 1000;

/// What one hold decided in a transaction: the hold and whether it is new, or why not.
pub(crate) type Placed = Result<(Hold, bool), InventoryError>;

/// Places `requests` in order inside `txn`, each decided on its own against the stock the ones
/// before it left, and answers each. A repeated request (here or in an earlier transaction) finds
/// its hold again. All reads and locks come first and all writes last, a few statements whatever
/// the number of holds; the outer error is the transaction's own failure.
pub(crate) async fn place_holds(
    txn: &impl ConnectionTrait,
    requests: &[(HoldRequest, Vec<HoldLine>)],
    time: DateTime<Utc>,
) -> Result<Vec<Placed>, InventoryError> {
    let ids: Vec<String> = requests.iter().map(|(request, _)| request.hold_id.clone()).collect();
    let mut known: BTreeMap<String, Hold> = BTreeMap::new();
    for row in hold::Entity::find().filter(hold::Column::Id.is_in(ids)).all(txn).await? {
        known.insert(row.id.clone(), load_hold(txn, row).await?);
    }
    // Only holds still to be decided lock anything: a repeat or a late request answers at once.
    let undecided = requests.iter().filter(|(request, _)| {
        !known.contains_key(&request.hold_id) && request.expire_time.is_some_and(|expiry| expiry > time)
    });
    let mut items = BTreeSet::new();
    let mut countries = BTreeSet::new();
    for (request, lines) in undecided {
        items.extend(lines.iter().map(|line| line.inventory_item_id.clone()));
        countries.insert(request.ship_to_country.clone());
    }
    let mut stock = LockedStock::lock(txn, items, &countries).await?;

    let (mut rows, mut allocation_rows, mut answers) = (Vec::new(), Vec::new(), Vec::with_capacity(requests.len()));
    for (request, lines) in requests {
        if let Some(existing) = known.get(&request.hold_id) {
            // Another's hold is never answered as the caller's, even with the same lines.
            let same = same_lines(&existing.lines, lines)
                && existing.ship_to_country == request.ship_to_country
                && existing.placed_by.is_none_or(|owner| owner == request.placed_by);
            answers.push(if same {
                Ok((existing.clone(), false))
            } else {
                Err(InventoryError::HoldExists(request.hold_id.clone()))
            });
            continue;
        }
        let expire_time = request.expire_time.unwrap_or_default();
        if expire_time <= time {
            let error = FieldViolation::invalid("expireTime", "The expiry time has already passed.");
            answers.push(Err(InventoryError::invalid(error)));
            continue;
        }
        let mut allocations = match stock.reserve(&request.hold_id, lines, &request.ship_to_country, time) {
            Ok(allocations) => allocations,
            Err(error @ InventoryError::Database(_)) => return Err(error),
            Err(error) => {
                answers.push(Err(error));
                continue;
            }
        };
        rows.push(hold::Model {
            id: request.hold_id.clone(),
            state: HoldState::Held,
            ship_to_country: request.ship_to_country.clone(),
            lines: serde_json::to_string(lines).map_err(|e| DbErr::Json(e.to_string()))?,
            expire_time,
            created_time: time,
            updated_time: time,
            placed_by: Some(request.placed_by),
        });
        // In the order a stored hold is read back in.
        allocations
            .sort_by(|a, b| (&a.inventory_item_id, &a.warehouse_id).cmp(&(&b.inventory_item_id, &b.warehouse_id)));
        allocation_rows.extend(allocations.iter().cloned());
        let hold = Hold {
            id: request.hold_id.clone(),
            state: HoldState::Held,
            ship_to_country: request.ship_to_country.clone(),
            lines: lines.clone(),
            allocations,
            placed_by: Some(request.placed_by),
            expire_time,
            created_time: time,
            updated_time: time,
        };
        known.insert(hold.id.clone(), hold.clone());
        answers.push(Ok((hold, true)));
    }

    stock.save(txn).await?;
    // In chunks, well within both databases' limits on bound values per statement.
    for chunk in rows.chunks(INSERT_CHUNK) {
        hold::Entity::insert_many(chunk.iter().cloned().map(IntoActiveModel::into_active_model))
            .exec_without_returning(txn)
            .await?;
    }
    for chunk in allocation_rows.chunks(INSERT_CHUNK) {
        hold_allocation::Entity::insert_many(chunk.iter().cloned().map(IntoActiveModel::into_active_model))
            .exec_without_returning(txn)
            .await?;
    }
    Ok(answers)
}

/// The items, warehouses and stock levels holds are decided on, locked until the transaction ends:
/// the items and every warehouse shared (a concurrent delete cannot strand a hold), the items' levels
/// exclusively; each set in the database's own order, the order every hold, batch and delete takes,
/// so that none waits on another in a circle.
struct LockedStock {
    items: BTreeMap<String, inventory_item::Model>,
    warehouses: Vec<warehouse::Model>,
    levels: BTreeMap<(String, String), stock_level::Model>,
    changed: BTreeSet<(String, String)>,
}

impl LockedStock {
    /// Locks `items`, the warehouses shipping to any of `countries`, and the items' levels in them;
    /// nothing when there are no items.
    async fn lock(
        txn: &impl ConnectionTrait,
        items: BTreeSet<String>,
        countries: &BTreeSet<String>,
    ) -> Result<Self, DbErr> {
        if items.is_empty() {
            return Ok(Self {
                items: BTreeMap::new(),
                warehouses: Vec::new(),
                levels: BTreeMap::new(),
                changed: BTreeSet::new(),
            });
        }
        let ids: Vec<String> = items.into_iter().collect();
        let items = inventory_item::Entity::find()
            .filter(inventory_item::Column::Id.is_in(ids.clone()))
            .order_by_asc(inventory_item::Column::Id)
            .lock_shared()
            .all(txn)
            .await?
            .into_iter()
            .map(|item| (item.id.clone(), item))
            .collect();
        // Only the warehouses that ship to one of the countries are read and locked: how many others
        // there are costs a hold nothing.
        let warehouses = shipping_to(countries.iter().map(String::as_str)).lock_shared().all(txn).await?;
        let levels = lock_levels(txn, ids, warehouses.iter().map(|w| w.id.clone())).await?;
        Ok(Self { items, warehouses, levels, changed: BTreeSet::new() })
    }

    /// Allocates `lines` from the warehouses shipping to `country` and adds the allocated units to
    /// their `reserved`; changes nothing when the hold is refused.
    fn reserve(
        &mut self,
        hold_id: &str,
        lines: &[HoldLine],
        country: &str,
        time: DateTime<Utc>,
    ) -> Result<Vec<hold_allocation::Model>, InventoryError> {
        if let Some(missing) = lines.iter().find(|line| !self.items.contains_key(&line.inventory_item_id)) {
            return Err(InventoryError::ItemNotFound(missing.inventory_item_id.clone()));
        }
        let candidates: Vec<Candidate> = self
            .warehouses
            .iter()
            .filter(|w| ships_to(w, country))
            .map(|w| Candidate {
                warehouse: w.id.clone(),
                priority: w.priority,
                available: lines
                    .iter()
                    .filter_map(|line| {
                        let level = self.levels.get(&(line.inventory_item_id.clone(), w.id.clone()))?;
                        Some((line.inventory_item_id.clone(), level.on_hand - level.reserved))
                    })
                    .collect(),
            })
            .collect();
        let needs: Vec<Need> = lines
            .iter()
            .map(|line| Need {
                item: line.inventory_item_id.clone(),
                quantity: line.quantity,
                oversell: line.allow_oversell.unwrap_or(self.items[&line.inventory_item_id].allow_oversell),
            })
            .collect();
        let allocations = allocate(&needs, &candidates).map_err(InventoryError::InsufficientInventory)?;
        // Every level is checked before any changes, so a refusal never leaves half a hold behind.
        if let Some(missing) = allocations
            .iter()
            .find(|a| a.quantity > 0 && !self.levels.contains_key(&(a.item.clone(), a.warehouse.clone())))
        {
            let key = (missing.item.clone(), missing.warehouse.clone());
            return Err(DbErr::RecordNotFound(format!("stock level {key:?}")).into());
        }
        for allocation in allocations.iter().filter(|a| a.quantity > 0) {
            let key = (allocation.item.clone(), allocation.warehouse.clone());
            let Some(level) = self.levels.get_mut(&key) else { continue };
            level.reserved += allocation.quantity;
            level.updated_time = time;
            self.changed.insert(key);
        }
        Ok(allocations
            .into_iter()
            .map(|a| hold_allocation::Model {
                hold_id: hold_id.to_owned(),
                inventory_item_id: a.item,
                warehouse_id: a.warehouse,
                quantity: a.quantity,
                oversold_quantity: a.oversold,
            })
            .collect())
    }

    /// Writes the levels that changed.
    async fn save(self, txn: &impl ConnectionTrait) -> Result<(), DbErr> {
        for key in &self.changed {
            if let Some(level) = self.levels.get(key) {
                save_level(txn, level).await?;
            }
        }
        Ok(())
    }
}
