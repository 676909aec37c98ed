//! Holds: stock set aside for a reservation, all lines or none, until it is committed, released
//! or expires.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use fulfillment_errors::{FieldViolation, Violations};
use fulfillment_storage::paging::now;
use fulfillment_storage::{Database, TransactionError};
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};

use crate::allocation::{Candidate, Need, allocate};
use crate::entity::{hold, hold_allocation, inventory_item, stock_level, stock_movement, warehouse};
use crate::inventory::{Caller, Inventory, check};
use crate::items::validate_item_id;
use crate::metrics::HoldOutcome;
use crate::stock::{COMMIT_KIND, MAX_QUANTITY, save_level};
use crate::warehouses::{shipping_to, ships_to};
use crate::{InventoryError, retry_lost_insert};

/// The most lines one hold may have.
pub const MAX_HOLD_LINES: usize = 100;

/// Where a hold is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldState {
    /// Stock is set aside.
    Held,
    /// The stock shipped: on hand and reserved both fell.
    Committed,
    /// The reservation was cancelled.
    Released,
    /// The hold lapsed and the Inventory released it.
    Expired,
}

impl HoldState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Held => "held",
            HoldState::Committed => "committed",
            HoldState::Released => "released",
            HoldState::Expired => "expired",
        }
    }

    fn parse(value: &str) -> Result<Self, DbErr> {
        match value {
            "held" => Ok(HoldState::Held),
            "committed" => Ok(HoldState::Committed),
            "released" => Ok(HoldState::Released),
            "expired" => Ok(HoldState::Expired),
            other => Err(DbErr::Type(format!("unknown hold state '{other}'"))),
        }
    }
}

/// A line of a hold request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldLine {
    /// The inventory item.
    pub inventory_item_id: String,
    /// Units wanted.
    pub quantity: i64,
    /// Overrides the item's own setting when given.
    pub allow_oversell: Option<bool>,
}

/// A hold as a caller asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldRequest {
    /// The reservation's id.
    pub hold_id: String,
    #[allow(missing_docs)]
    pub lines: Vec<HoldLine>,
    /// Only warehouses shipping here are used.
    pub ship_to_country: String,
    /// When the hold lapses; `None` is refused.
    pub expire_time: Option<DateTime<Utc>>,
    /// Who asks: the hold is theirs to close.
    pub placed_by: Caller,
}

/// A stored hold with where its units are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    #[allow(missing_docs)]
    pub id: String,
    #[allow(missing_docs)]
    pub state: HoldState,
    #[allow(missing_docs)]
    pub ship_to_country: String,
    /// The request's lines, merged per item.
    pub lines: Vec<HoldLine>,
    /// Where each line's units are set aside.
    pub allocations: Vec<hold_allocation::Model>,
    /// Who placed it; `None` for holds placed before that was recorded.
    pub placed_by: Option<Caller>,
    #[allow(missing_docs)]
    pub expire_time: DateTime<Utc>,
    #[allow(missing_docs)]
    pub created_time: DateTime<Utc>,
    #[allow(missing_docs)]
    pub updated_time: DateTime<Utc>,
}

fn validate_hold_id(id: &str) -> Result<(), FieldViolation> {
    if fulfillment_reference::is_valid_id(id) {
        Ok(())
    } else {
        Err(FieldViolation::not_valid("holdId", id, "hold ID"))
    }
}

/// Merges the lines of the same item (quantities summed) in the order items first appear.
fn merge_lines(lines: &[HoldLine]) -> Result<Vec<HoldLine>, Violations> {
    let mut merged: Vec<HoldLine> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(lines.len());
    let mut violations = Violations::new();
    for (n, line) in lines.iter().enumerate() {
        match index.get(line.inventory_item_id.as_str()) {
            None => {
                index.insert(&line.inventory_item_id, merged.len());
                merged.push(line.clone());
            }
            Some(&at) => {
                let existing = &mut merged[at];
                existing.quantity = existing.quantity.saturating_add(line.quantity);
                match (existing.allow_oversell, line.allow_oversell) {
                    (Some(a), Some(b)) if a != b => violations.push(FieldViolation::invalid(
                        format!("lines[{n}].allowOversell"),
                        format!("The lines for '{}' disagree on allowOversell.", line.inventory_item_id),
                    )),
                    (None, Some(b)) => existing.allow_oversell = Some(b),
                    _ => {}
                }
            }
        }
    }
    for line in &merged {
        if line.quantity > MAX_QUANTITY {
            violations.push(FieldViolation::invalid(
                "lines",
                format!("The quantity of '{}' is more than {MAX_QUANTITY}.", line.inventory_item_id),
            ));
        }
    }
    if violations.is_empty() { Ok(merged) } else { Err(violations) }
}

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
        let placed = match self.batches.place(request.clone(), lines.clone()).await {
            Some(placed) => placed,
            // The lane was full or gone, or the batch failed as a whole: a transaction of its own.
            None => place_alone(&self.db, &request, &lines).await,
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
            let closed = self
                .db
                .write(|txn| {
                    let failed = failed.clone();
                    Box::pin(async move {
                        let due: Option<String> = hold::Entity::find()
                            .select_only()
                            .column(hold::Column::Id)
                            .filter(hold::Column::State.eq(HoldState::Held.as_str()))
                            .filter(hold::Column::ExpireTime.lt(cutoff))
                            .filter(hold::Column::Id.is_not_in(failed))
                            .order_by_asc(hold::Column::ExpireTime)
                            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                            .into_tuple()
                            .one(txn)
                            .await?;
                        match due {
                            None => Ok(None),
                            Some(id) => match close_hold(txn, &id, HoldState::Expired, None).await {
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
        let closed = self
            .db
            .write(|txn| {
                let id = id.to_owned();
                Box::pin(async move { close_hold(txn, &id, state, caller).await })
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
) -> Result<Vec<Placed>, InventoryError> {
    let ids: Vec<String> = requests.iter().map(|(request, _)| request.hold_id.clone()).collect();
    let mut known: BTreeMap<String, Hold> = BTreeMap::new();
    for row in hold::Entity::find().filter(hold::Column::Id.is_in(ids)).all(txn).await? {
        known.insert(row.id.clone(), load_hold(txn, row).await?);
    }
    let time = now();
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
            state: HoldState::Held.as_str().to_owned(),
            ship_to_country: request.ship_to_country.clone(),
            lines: serde_json::to_string(lines).map_err(|e| DbErr::Json(e.to_string()))?,
            expire_time,
            created_time: time,
            updated_time: time,
            placed_by: Some(request.placed_by.as_str().to_owned()),
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

/// Places a hold in a transaction of its own, retried if it lost a race to insert the same id;
/// says whether it is new.
pub(crate) async fn place_alone(db: &Database, request: &HoldRequest, lines: &[HoldLine]) -> Placed {
    retry_lost_insert(|| {
        db.write(|txn| {
            let requests = [(request.clone(), lines.to_vec())];
            Box::pin(async move {
                let mut answers = place_holds(txn, &requests).await?;
                answers.pop().unwrap_or_else(|| Err(DbErr::Custom("no answer for the hold".to_owned()).into()))
            })
        })
    })
    .await
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
        let eligible: Vec<String> =
            warehouses.iter().filter(|w| countries.iter().any(|c| ships_to(w, c))).map(|w| w.id.clone()).collect();
        let levels = lock_levels(txn, ids, eligible).await?;
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

/// Locks the stock levels of `items` in `warehouses` for the transaction, in one query in the
/// database's own order: the order every hold, batch and close takes them in.
async fn lock_levels(
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

/// Moves a held hold to `state`, giving its units back (released, expired) or shipping them
/// (committed): for `caller` if it placed the hold, or for the Inventory itself when `None`.
async fn close_hold(
    txn: &impl ConnectionTrait,
    id: &str,
    state: HoldState,
    caller: Option<Caller>,
) -> Result<Hold, InventoryError> {
    let row = hold::Entity::find_by_id(id.to_owned())
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| InventoryError::HoldNotFound(id.to_owned()))?;
    if let Some(caller) = caller {
        let placed_by = row.placed_by.as_deref().map(Caller::parse).transpose()?;
        guard_closer(id, placed_by, caller)?;
    }
    let current = HoldState::parse(&row.state)?;
    if current != HoldState::Held {
        return Err(InventoryError::HoldClosed { id: id.to_owned(), state: current.as_str().to_owned() });
    }
    let mut hold = load_hold(txn, row.clone()).await?;
    let time = now();
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
    active.state = sea_orm::ActiveValue::Set(state.as_str().to_owned());
    active.updated_time = sea_orm::ActiveValue::Set(time);
    active.update(txn).await?;
    hold.state = state;
    hold.updated_time = time;
    Ok(hold)
}

/// A hold is closed by whoever placed it: a reservation's hold only through the Reservation
/// service, which in turn closes no hold of anyone else's. A hold placed before holds recorded
/// who placed them is anyone's with a write key.
fn guard_closer(id: &str, placed_by: Option<Caller>, caller: Caller) -> Result<(), InventoryError> {
    match placed_by {
        None => Ok(()),
        Some(owner) if owner == caller => Ok(()),
        Some(Caller::Reservation) => Err(InventoryError::HoldOfReservation(id.to_owned())),
        Some(_) => Err(InventoryError::HoldNotOwned(id.to_owned())),
    }
}

/// Whether two sets of merged lines ask for the same, in whatever order.
fn same_lines(a: &[HoldLine], b: &[HoldLine]) -> bool {
    let sorted = |lines: &[HoldLine]| {
        let mut lines = lines.to_vec();
        lines.sort_by(|x, y| x.inventory_item_id.cmp(&y.inventory_item_id));
        lines
    };
    sorted(a) == sorted(b)
}

/// A stored hold with its allocations.
async fn load_hold(db: &impl ConnectionTrait, row: hold::Model) -> Result<Hold, DbErr> {
    let allocations = hold_allocation::Entity::find()
        .filter(hold_allocation::Column::HoldId.eq(row.id.clone()))
        .order_by_asc(hold_allocation::Column::InventoryItemId)
        .order_by_asc(hold_allocation::Column::WarehouseId)
        .all(db)
        .await?;
    let lines: Vec<HoldLine> = serde_json::from_str(&row.lines).map_err(|e| DbErr::Json(e.to_string()))?;
    Ok(Hold {
        state: HoldState::parse(&row.state)?,
        id: row.id,
        ship_to_country: row.ship_to_country,
        lines,
        allocations,
        placed_by: row.placed_by.as_deref().map(Caller::parse).transpose()?,
        expire_time: row.expire_time,
        created_time: row.created_time,
        updated_time: row.updated_time,
    })
}

/// The units of every open hold per (item, warehouse): what `reserved` must equal.
pub async fn open_hold_units(db: &impl ConnectionTrait) -> Result<BTreeMap<(String, String), i64>, DbErr> {
    let open: BTreeSet<String> = hold::Entity::find()
        .select_only()
        .column(hold::Column::Id)
        .filter(hold::Column::State.eq(HoldState::Held.as_str()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn line(item: &str, quantity: i64, allow_oversell: Option<bool>) -> HoldLine {
        HoldLine { inventory_item_id: item.into(), quantity, allow_oversell }
    }

    #[test]
    fn lines_of_the_same_item_are_summed_in_first_seen_order() {
        let merged = merge_lines(&[line("b", 1, None), line("a", 2, None), line("b", 3, Some(true))]).expect("merged");
        assert_eq!(merged, [line("b", 4, Some(true)), line("a", 2, None)]);
    }

    #[test]
    fn lines_disagreeing_on_oversell_are_refused() {
        let violations = merge_lines(&[line("a", 1, Some(true)), line("a", 1, Some(false))]).expect_err("disagree");
        assert_eq!(violations[0].parameter, "lines[1].allowOversell");
    }
}
