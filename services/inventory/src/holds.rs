//! Holds: stock set aside for a reservation, all lines or none, until it is committed, released
//! or expires. Placing goes through the lanes of `hold_batches` and the one transaction of
//! `hold_placement`; closing and expiring are here.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use fulfillment_errors::{FieldViolation, Violations};
use fulfillment_storage::{Database, TransactionError};
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::domain::{
    COMMIT_KIND, Caller, Hold, HoldLine, HoldRequest, HoldState, MAX_HOLD_LINES, MAX_QUANTITY, check, guard_closer,
    merge_lines, validate_hold_id, validate_item_id,
};
use crate::entity::{hold, hold_allocation, stock_movement};
use crate::hold_placement::{Placed, place_holds};
use crate::inventory::Inventory;
use crate::metrics::HoldOutcome;
use crate::store::{load_hold, lock_levels, save_level};
use crate::{InventoryError, retry_lost_insert};

impl HoldRequest {
    fn validate(&self, inventory: &Inventory) -> Result<Vec<HoldLine>, InventoryError> {
        let mut violations = Violations::new();
        violations.extend(validate_hold_id(&self.hold_id).err());
        if self.lines.is_empty() {
            violations.push(FieldViolation::missing("lines"));
        }
        if self.lines.len() > MAX_HOLD_LINES {
            // Checking each of a huge list would only build a huge error.
            return Err(InventoryError::invalid(FieldViolation::invalid(
                "lines",
                format!("At most {MAX_HOLD_LINES} lines may be held at once."),
            )));
        }
        for (n, line) in self.lines.iter().enumerate() {
            violations.extend(validate_item_id(&format!("lines[{n}].inventoryItemId"), &line.inventory_item_id).err());
            if line.quantity <= 0 || line.quantity > MAX_QUANTITY {
                violations.push(FieldViolation::not_valid(
                    format!("lines[{n}].quantity"),
                    &line.quantity.to_string(),
                    "quantity",
                ));
            }
        }
        if self.ship_to_country.is_empty() {
            violations.push(FieldViolation::missing("shipToCountry"));
        } else {
            violations
                .extend(inventory.reference.countries.validate_country("shipToCountry", &self.ship_to_country).err());
        }
        // A time already past is refused when placing, not when finding the hold again: a retry
        // after the expiry must still find the hold it placed.
        if self.expire_time.is_none() {
            violations.push(FieldViolation::missing("expireTime"));
        }
        check(violations)?;
        merge_lines(&self.lines).map_err(InventoryError::InvalidRequest)
    }
}

impl Inventory {
    /// Places a hold: every line or none. Repeating a request with the same id and lines answers
    /// the hold as it is now; the same id with other lines is ALREADY_EXISTS. Concurrent holds
    /// share transactions (see `hold_batches`).
    pub async fn place_hold(&self, request: HoldRequest) -> Result<Hold, InventoryError> {
        let lines = request.validate(self)?;
        let time = self.clock.now();
        let placed = match self.batches.place(request.clone(), lines.clone(), time).await {
            Some(placed) => placed,
            // The lane was full or gone, or the batch failed as a whole: a transaction of its own.
            None => place_alone(&self.db, &request, &lines, time).await,
        };
        match &placed {
            Ok((_, true)) => self.metrics.hold(HoldOutcome::Placed),
            Err(InventoryError::InsufficientInventory(_)) => self.metrics.hold(HoldOutcome::Refused),
            _ => {}
        }
        placed.map(|(hold, _)| hold)
    }

    /// Returns a hold.
    pub async fn get_hold(&self, id: &str) -> Result<Hold, InventoryError> {
        validate_hold_id(id).map_err(InventoryError::invalid)?;
        let row = hold::Entity::find_by_id(id.to_owned())
            .one(self.db.connection())
            .await?
            .ok_or_else(|| InventoryError::HoldNotFound(id.to_owned()))?;
        Ok(load_hold(self.db.connection(), row).await?)
    }

    /// Releases a held hold: its units become available again. Only whoever placed it may.
    pub async fn release_hold(&self, id: &str, caller: Caller) -> Result<Hold, InventoryError> {
        self.close(id, HoldState::Released, Some(caller)).await
    }

    /// Commits a held hold: its units ship, so on hand and reserved both fall, each change a
    /// ledger row. Only whoever placed it may.
    pub async fn commit_hold(&self, id: &str, caller: Caller) -> Result<Hold, InventoryError> {
        self.close(id, HoldState::Committed, Some(caller)).await
    }

    /// Expires every held hold whose expiry time is before `cutoff`, oldest first, each in a
    /// transaction of its own that claims it with `FOR UPDATE SKIP LOCKED` on PostgreSQL: replicas
    /// sweeping together pass over each other's holds instead of queueing on them. A hold that
    /// cannot be expired is left for a later sweep, up to `max_failures` of them. Returns how many
    /// it expired.
    pub async fn expire_holds(&self, cutoff: DateTime<Utc>, max_failures: usize) -> Result<usize, InventoryError> {
        let mut expired = 0;
        let mut failed: Vec<String> = Vec::new();
        loop {
            let time = self.clock.now();
            let closed = self
                .db
                .write(|txn| {
                    let failed = failed.clone();
                    Box::pin(async move {
                        let due: Option<String> = hold::Entity::find()
                            .select_only()
                            .column(hold::Column::Id)
                            .filter(hold::Column::State.eq(HoldState::Held))
                            .filter(hold::Column::ExpireTime.lt(cutoff))
                            .filter(hold::Column::Id.is_not_in(failed))
                            .order_by_asc(hold::Column::ExpireTime)
                            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                            .into_tuple()
                            .one(txn)
                            .await?;
                        match due {
                            None => Ok(None),
                            Some(id) => match close_hold(txn, &id, HoldState::Expired, None, time).await {
                                Ok(hold) => Ok(Some(hold)),
                                // Rolled back, whatever part of it was written.
                                Err(error) => Err(ExpiryFailure(id, Box::new(error))),
                            },
                        }
                    })
                })
                .await;
            match closed {
                Ok(None) => return Ok(expired),
                Ok(Some(_)) => {
                    expired += 1;
                    self.metrics.hold(HoldOutcome::Expired);
                }
                // A failure before any hold was found (the query itself): the next tick tries again.
                Err(ExpiryFailure(id, error)) if id.is_empty() => return Err(*error),
                Err(ExpiryFailure(id, error)) => {
                    tracing::warn!(hold = %id, %error, "cannot expire hold; left for a later sweep");
                    failed.push(id);
                }
            }
            if failed.len() >= max_failures.max(1) {
                return Ok(expired);
            }
        }
    }

    /// Closes a hold for `caller`, or for the Inventory itself when `None`.
    async fn close(&self, id: &str, state: HoldState, caller: Option<Caller>) -> Result<Hold, InventoryError> {
        validate_hold_id(id).map_err(InventoryError::invalid)?;
        let time = self.clock.now();
        let closed = self
            .db
            .write(|txn| {
                let id = id.to_owned();
                Box::pin(async move { close_hold(txn, &id, state, caller, time).await })
            })
            .await?;
        let outcome = match state {
            HoldState::Released => Some(HoldOutcome::Released),
            HoldState::Expired => Some(HoldOutcome::Expired),
            HoldState::Committed => Some(HoldOutcome::Committed),
            HoldState::Held => None,
        };
        if let Some(outcome) = outcome {
            self.metrics.hold(outcome);
        }
        Ok(closed)
    }
}

/// A hold the sweep could not expire, and why.
struct ExpiryFailure(String, Box<InventoryError>);

impl From<DbErr> for ExpiryFailure {
    fn from(error: DbErr) -> Self {
        ExpiryFailure(String::new(), Box::new(error.into()))
    }
}

/// Retried as the failure inside is: a lost serialization race is tried again.
impl TransactionError for ExpiryFailure {
    fn as_db_err(&self) -> Option<&DbErr> {
        self.1.as_db_err()
    }
}

/// Places a hold in a transaction of its own, retried if it lost a race to insert the same id;
/// says whether it is new.
pub(crate) async fn place_alone(
    db: &Database,
    request: &HoldRequest,
    lines: &[HoldLine],
    time: DateTime<Utc>,
) -> Placed {
    retry_lost_insert(|| {
        db.write(|txn| {
            let requests = [(request.clone(), lines.to_vec())];
            Box::pin(async move {
                let mut answers = place_holds(txn, &requests, time).await?;
                answers.pop().unwrap_or_else(|| Err(DbErr::Custom("no answer for the hold".to_owned()).into()))
            })
        })
    })
    .await
}

/// Moves a held hold to `state`, giving its units back (released, expired) or shipping them
/// (committed): for `caller` if it placed the hold, or for the Inventory itself when `None`.
async fn close_hold(
    txn: &impl ConnectionTrait,
    id: &str,
    state: HoldState,
    caller: Option<Caller>,
    time: DateTime<Utc>,
) -> Result<Hold, InventoryError> {
    let row = hold::Entity::find_by_id(id.to_owned())
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| InventoryError::HoldNotFound(id.to_owned()))?;
    if let Some(caller) = caller {
        guard_closer(id, row.placed_by, caller)?;
    }
    let current = row.state;
    if current != HoldState::Held {
        return Err(InventoryError::HoldClosed { id: id.to_owned(), state: current.as_str().to_owned() });
    }
    let mut hold = load_hold(txn, row.clone()).await?;
    let held: Vec<&hold_allocation::Model> = hold.allocations.iter().filter(|a| a.quantity > 0).collect();
    let items: BTreeSet<String> = held.iter().map(|a| a.inventory_item_id.clone()).collect();
    let warehouses: BTreeSet<String> = held.iter().map(|a| a.warehouse_id.clone()).collect();
    let mut levels = lock_levels(txn, items, warehouses).await?;
    for allocation in held {
        let key = (allocation.inventory_item_id.clone(), allocation.warehouse_id.clone());
        let mut level =
            levels.remove(&key).ok_or_else(|| DbErr::RecordNotFound(format!("stock level of hold {id}")))?;
        level.reserved -= allocation.quantity;
        level.updated_time = time;
        if state == HoldState::Committed {
            level.on_hand -= allocation.quantity;
            let movement = stock_movement::Model {
                id: fulfillment_reference::generate_id("mov"),
                inventory_item_id: allocation.inventory_item_id.clone(),
                warehouse_id: allocation.warehouse_id.clone(),
                kind: COMMIT_KIND.to_owned(),
                requested_quantity: allocation.quantity,
                delta: -allocation.quantity,
                on_hand_after: level.on_hand,
                reason: format!("hold {id} committed"),
                idempotency_key: None,
                hold_id: Some(id.to_owned()),
                created_time: time,
            };
            stock_movement::Entity::insert(movement.into_active_model()).exec_without_returning(txn).await?;
        }
        save_level(txn, &level).await?;
    }
    let mut active = row.into_active_model();
    active.state = sea_orm::ActiveValue::Set(state);
    active.updated_time = sea_orm::ActiveValue::Set(time);
    active.update(txn).await?;
    hold.state = state;
    hold.updated_time = time;
    Ok(hold)
}

/// The units of every open hold per (item, warehouse): what `reserved` must equal.
pub async fn open_hold_units(db: &impl ConnectionTrait) -> Result<BTreeMap<(String, String), i64>, DbErr> {
    let open: BTreeSet<String> = hold::Entity::find()
        .select_only()
        .column(hold::Column::Id)
        .filter(hold::Column::State.eq(HoldState::Held))
        .into_tuple::<String>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let mut units = BTreeMap::new();
    for allocation in hold_allocation::Entity::find().all(db).await? {
        if open.contains(&allocation.hold_id) && allocation.quantity > 0 {
            *units.entry((allocation.inventory_item_id, allocation.warehouse_id)).or_insert(0) += allocation.quantity;
        }
    }
    Ok(units)
}
