//! Fulfillment orders: created with a reservation's id, they commit its hold (docs/architecture.md,
//! "Reservations"). A commit is claimed like any change to a reservation (`store.rs`), so a crash
//! between the commit and its record is finished by the sweeper.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use fulfillment_errors::{FieldViolation, Violations};
use fulfillment_reference::{MAX_SHORT_TEXT, generate_id, is_valid_id, validate_text};
use fulfillment_storage::paging::{Cursor, Page};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};

use crate::domain::{Reservation, ReservationItem, State};
use crate::entity::fulfillment_order as row;
use crate::error::ReservationError;
use crate::inventory_client::{ClosedHold, Outcome, RefusalKind};
use crate::store::{Decision, Reservations, find};

/// A line of a fulfillment order: what ships from where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub inventory_item_id: String,
    /// Empty for oversold units no warehouse carries yet.
    pub warehouse_id: String,
    /// Units held plus units promised beyond the stock.
    pub quantity: i64,
}

/// An order to ship what a reservation held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FulfillmentOrder {
    pub id: String,
    pub reservation_id: String,
    /// The order's id in the caller's system.
    pub upstream_id: Option<String>,
    /// Empty until the hold is committed.
    pub lines: Vec<OrderLine>,
    pub live_mode: bool,
    pub created_time: DateTime<Utc>,
}

impl FulfillmentOrder {
    fn from_row(row: row::Model) -> Result<Self, DbErr> {
        Ok(Self {
            lines: serde_json::from_str(&row.lines).map_err(|e| DbErr::Json(e.to_string()))?,
            id: row.id,
            reservation_id: row.reservation_id,
            upstream_id: row.upstream_id,
            live_mode: row.live_mode,
            created_time: row.created_time,
        })
    }

    fn to_row(&self) -> Result<row::Model, DbErr> {
        Ok(row::Model {
            id: self.id.clone(),
            reservation_id: self.reservation_id.clone(),
            upstream_id: self.upstream_id.clone(),
            lines: serde_json::to_string(&self.lines).map_err(|e| DbErr::Json(e.to_string()))?,
            live_mode: self.live_mode,
            created_time: self.created_time,
        })
    }
}

/// Quantities per item, for comparing an order's items with its reservation's.
fn quantities(items: &[ReservationItem]) -> BTreeMap<&str, i64> {
    let mut totals = BTreeMap::new();
    for item in items {
        let total = totals.entry(item.inventory_item_id.as_str()).or_insert(0i64);
        *total = total.saturating_add(item.quantity);
    }
    totals
}

impl Reservations {
    /// Creates the fulfillment order of a reservation: commits its hold (on hand and reserved both
    /// fall), closes the reservation, and answers the order with each line's warehouse. Repeating
    /// the call with the same upstream id answers the same order.
    pub async fn create_order(
        &self,
        reservation_id: &str,
        upstream_id: Option<String>,
        items: Vec<ReservationItem>,
    ) -> Result<FulfillmentOrder, ReservationError> {
        let limits = self.limits;
        // The count first: a longer list is refused before any of its items is looked at.
        if items.len() > limits.max_items {
            let message = format!("At most {} items may be given.", limits.max_items);
            return Err(ReservationError::invalid(FieldViolation::invalid("items", message)));
        }
        let mut violations = Violations::new();
        if reservation_id.is_empty() {
            violations.push(FieldViolation::missing("reservationId"));
        } else if !is_valid_id(reservation_id) {
            violations.push(FieldViolation::not_valid("reservationId", reservation_id, "reservation ID"));
        }
        if let Some(upstream) = &upstream_id {
            violations.extend(validate_text("upstreamId", upstream, MAX_SHORT_TEXT).err());
        }
        for (n, item) in items.iter().enumerate() {
            if !is_valid_id(&item.inventory_item_id) {
                let parameter = format!("items[{n}].inventoryItemId");
                violations.push(FieldViolation::not_valid(parameter, &item.inventory_item_id, "inventory item ID"));
            }
            if !(1..=limits.max_quantity).contains(&item.quantity) {
                let parameter = format!("items[{n}].quantity");
                violations.push(FieldViolation::not_valid(parameter, &item.quantity.to_string(), "quantity"));
            }
        }
        if !violations.is_empty() {
            return Err(ReservationError::InvalidRequest(violations));
        }
        let decision = self
            .db
            .write(|txn| {
                let (this, id, upstream_id, items) =
                    (self.clone(), reservation_id.to_owned(), upstream_id.clone(), items.clone());
                Box::pin(async move {
                    let reservation = find(txn, &id).await?.ok_or_else(|| ReservationError::NotFound(id.clone()))?;
                    match reservation.state {
                        State::Expiring => return Err(ReservationError::NotFound(id)),
                        State::Active if reservation.expire_time <= this.clock.now() => {
                            return Err(ReservationError::Closed { id, state: "expired" });
                        }
                        State::Cancelled => return Err(ReservationError::Closed { id, state: "cancelled" }),
                        State::Fulfilled => {
                            let order = order_of(txn, &id).await?;
                            return match order {
                                Some(order) if order.upstream_id == upstream_id => Ok(Decision::Settled(order)),
                                _ => Err(ReservationError::Closed { id, state: "fulfilled" }),
                            };
                        }
                        State::Committing if this.lapsed(&reservation) => {
                            // Finish the order under way, but only for the call that started it.
                            return match order_of(txn, &id).await? {
                                Some(order) if order.upstream_id == upstream_id => {
                                    this.claim(txn, reservation, State::Committing).await
                                }
                                // Another order's, still to be finished (or undone) by the sweeper.
                                _ => Err(ReservationError::Busy(id)),
                            };
                        }
                        State::Pending | State::Committing | State::Releasing => {
                            return Err(ReservationError::Busy(id));
                        }
                        State::Active => {}
                    }
                    if !items.is_empty() && quantities(&items) != quantities(&reservation.items) {
                        return Err(ReservationError::ItemsDiffer(id));
                    }
                    let order = FulfillmentOrder {
                        id: generate_id("fo"),
                        reservation_id: id.clone(),
                        upstream_id,
                        lines: Vec::new(),
                        live_mode: reservation.live_mode,
                        created_time: this.clock.now(),
                    };
                    row::Entity::insert(order.to_row()?.into_active_model()).exec_without_returning(txn).await?;
                    this.claim(txn, reservation, State::Committing).await
                })
            })
            .await?;
        match decision {
            Decision::Settled(order) => Ok(order),
            Decision::Claimed(reservation) => self.finish_commit(*reservation).await,
        }
    }

    /// Commits the hold of a claimed fulfillment and records the order's lines.
    pub(crate) async fn finish_commit(&self, reservation: Reservation) -> Result<FulfillmentOrder, ReservationError> {
        let hold = match self.inventory.commit(&reservation.id).await {
            Outcome::Done(hold) => hold,
            Outcome::Unknown(status) | Outcome::NotSent(status) => {
                return Err(ReservationError::InventoryUnavailable(status));
            }
            Outcome::Refused(refusal) => match refusal.kind {
                // An earlier attempt committed it: read where the units went.
                RefusalKind::Closed(ClosedHold::Committed) => match self.inventory.get(&reservation.id).await {
                    Outcome::Done(hold) => hold,
                    Outcome::Refused(refusal) => return Err(refusal.into_unavailable()),
                    Outcome::Unknown(status) | Outcome::NotSent(status) => {
                        return Err(ReservationError::InventoryUnavailable(status));
                    }
                },
                // The Inventory's safety net released it: the reservation has expired.
                RefusalKind::Closed(ClosedHold::Released | ClosedHold::Expired) | RefusalKind::NotFound => {
                    return self.abandon_commit(&reservation, "expired").await;
                }
                _ => {
                    self.restore(&reservation, State::Committing).await?;
                    return Err(refusal.into());
                }
            },
        };
        let allocations = hold.allocations;
        let lines: Vec<OrderLine> = allocations
            .iter()
            .map(|a| OrderLine {
                inventory_item_id: a.inventory_item_id.clone(),
                warehouse_id: a.warehouse_id.clone(),
                quantity: a.quantity + a.oversold_quantity,
            })
            .collect();
        let id = reservation.id.clone();
        let token = reservation.claim.as_ref().map(|c| c.token.clone());
        let time = self.clock.now();
        let (order, fulfilled) = self
            .db
            .write(|txn| {
                let (id, lines, allocations, token) = (id.clone(), lines.clone(), allocations.clone(), token.clone());
                Box::pin(async move {
                    let mut order = order_of(txn, &id).await?.ok_or_else(|| ReservationError::NotFound(id.clone()))?;
                    if let Some(mut reservation) = find(txn, &id).await?
                        && reservation.state == State::Committing
                        && reservation.claim.as_ref().map(|c| &c.token) == token.as_ref()
                    {
                        reservation.state = State::Fulfilled;
                        reservation.allocations = allocations;
                        reservation.updated_time = time;
                        reservation.claim = None;
                        reservation.to_row()?.into_active_model().reset_all().update(txn).await?;
                        order.lines = lines;
                        order.to_row()?.into_active_model().reset_all().update(txn).await?;
                        return Ok((order, true));
                    }
                    Ok::<_, ReservationError>((order, false))
                })
            })
            .await?;
        if fulfilled {
            self.metrics.reached(State::Fulfilled);
        }
        Ok(order)
    }

    /// Gives up a fulfillment whose hold is gone: the order is removed and so is the reservation.
    async fn abandon_commit(
        &self,
        reservation: &Reservation,
        state: &'static str,
    ) -> Result<FulfillmentOrder, ReservationError> {
        let id = reservation.id.clone();
        let token = reservation.claim.as_ref().map(|c| c.token.clone());
        tracing::warn!(reservation = %id, "the hold of a fulfillment under way was released by the Inventory; the order is dropped");
        let removed = self
            .db
            .write(|txn| {
                let (id, token) = (id.clone(), token.clone());
                Box::pin(async move {
                    row::Entity::delete_many().filter(row::Column::ReservationId.eq(id.clone())).exec(txn).await?;
                    let deleted = crate::entity::reservation::Entity::delete_many()
                        .filter(crate::entity::reservation::Column::Id.eq(id))
                        .filter(crate::entity::reservation::Column::State.eq(State::Committing))
                        .filter(crate::entity::reservation::Column::ClaimToken.eq(token))
                        .exec(txn)
                        .await?;
                    Ok::<_, ReservationError>(deleted.rows_affected > 0)
                })
            })
            .await?;
        if removed {
            self.metrics.expired(reservation.expire_time, self.clock.now());
        }
        Err(ReservationError::Closed { id, state })
    }

    /// Returns a fulfillment order.
    pub async fn get_order(&self, id: &str) -> Result<FulfillmentOrder, ReservationError> {
        if !is_valid_id(id) {
            return Err(ReservationError::invalid(FieldViolation::not_valid("id", id, "fulfillment order ID")));
        }
        let row = row::Entity::find_by_id(id.to_owned()).one(self.db.connection()).await?;
        row.map(FulfillmentOrder::from_row).transpose()?.ok_or_else(|| ReservationError::OrderNotFound(id.to_owned()))
    }

    /// Lists fulfillment orders, oldest first, optionally of one reservation.
    pub async fn list_orders(
        &self,
        reservation_id: Option<&str>,
        page_size: u64,
        page_token: &str,
    ) -> Result<Page<FulfillmentOrder>, ReservationError> {
        let cursor = Cursor::decode(page_token).map_err(ReservationError::invalid)?;
        let mut condition = Condition::all();
        if let Some(reservation_id) = reservation_id {
            if !is_valid_id(reservation_id) {
                return Err(ReservationError::invalid(FieldViolation::not_valid(
                    "reservationId",
                    reservation_id,
                    "reservation ID",
                )));
            }
            condition = condition.add(row::Column::ReservationId.eq(reservation_id));
        }
        if let Some(cursor) = &cursor {
            condition = condition.add(cursor.condition(row::Column::CreatedTime, row::Column::Id));
        }
        let rows = row::Entity::find()
            .filter(condition)
            .order_by_asc(row::Column::CreatedTime)
            .order_by_asc(row::Column::Id)
            .limit(page_size + 1)
            .all(self.db.connection())
            .await?;
        let orders = rows.into_iter().map(FulfillmentOrder::from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(orders, page_size, |o| Cursor::after(o.created_time, &o.id)))
    }
}

async fn order_of(db: &impl ConnectionTrait, reservation_id: &str) -> Result<Option<FulfillmentOrder>, DbErr> {
    row::Entity::find()
        .filter(row::Column::ReservationId.eq(reservation_id))
        .one(db)
        .await?
        .map(FulfillmentOrder::from_row)
        .transpose()
}
