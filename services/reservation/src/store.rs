//! The Reservation service's type, and what its operations share: a reservation's row, and the
//! claim by which a change that calls the Inventory is recorded before it is made and written back
//! only by the worker that still owns it (docs/architecture.md, "Reservations"). The type lives
//! here, beneath the subjects, so that `reservations.rs`, `fulfillment.rs` and `sweeper.rs` each
//! add operations to it without importing one another.

use std::sync::Arc;
use std::time::Duration;

use fulfillment_reference::{ReferenceData, generate_id};
use fulfillment_storage::{Clock, Database, Grouped, GroupedWrite, TransactionFuture};
use sea_orm::sea_query::{LockBehavior, LockType, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};

use crate::domain::{Claim, Limits, Reservation, ShippingChoice, State};
use crate::entity::reservation as row;
use crate::error::ReservationError;
use crate::inventory_client::InventoryClient;
use crate::metrics::ReservationMetrics;

/// Timing rules of the service.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// The expiry when a request gives none.
    pub default_expires_in: Duration,
    /// The longest expiry a request may ask for.
    pub max_expires_in: Duration,
    /// How long a claim on a reservation lasts.
    pub claim_lease: Duration,
}

/// The Reservation service: reservations and fulfillment orders over one database, holds in the
/// Inventory. Cloning is cheap.
#[derive(Clone, Debug)]
pub struct Reservations {
    pub(crate) db: Database,
    pub(crate) inventory: InventoryClient,
    pub(crate) reference: Arc<ReferenceData>,
    pub(crate) timing: Timing,
    pub(crate) metrics: ReservationMetrics,
    pub(crate) limits: Limits,
    pub(crate) live_mode: bool,
    /// Where every operation reads the time.
    pub(crate) clock: Clock,
    /// The hot path's single-row writes, committed in groups.
    pub(crate) writes: Grouped<RowWrite>,
}

/// What a transaction decided to do with a reservation.
pub(crate) enum Decision<T> {
    /// Nothing more to do: answer this.
    Settled(T),
    /// The caller now owns the change and must finish it.
    Claimed(Box<Reservation>),
}

impl Reservations {
    /// A service over a migrated database and an Inventory client, counting what it does in
    /// `metrics`.
    pub fn new(
        db: Database,
        inventory: InventoryClient,
        reference: ReferenceData,
        timing: Timing,
        metrics: ReservationMetrics,
    ) -> Self {
        Self {
            writes: Grouped::new(db.clone(), crate::config::DEFAULT_WRITE_BATCH_MAX),
            db,
            inventory,
            reference: Arc::new(reference),
            timing,
            metrics,
            limits: Limits::default(),
            live_mode: true,
            clock: Clock::system(),
        }
    }

    /// The same service reading the time from `clock` (a test's, which it moves forward).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same service committing up to `max` of its hot path's writes together (1: each alone).
    pub fn with_write_batch_max(mut self, max: usize) -> Self {
        self.writes = Grouped::new(self.db.clone(), max);
        self
    }

    /// The same service with other bounds on a reservation's size.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The same service as the store of test-mode reservations: what it makes says `live_mode` false.
    pub fn for_test_mode(mut self) -> Self {
        self.live_mode = false;
        self
    }

    /// Whether a reservation's claim has run out, so another may take the change over.
    pub(crate) fn lapsed(&self, reservation: &Reservation) -> bool {
        reservation.claim.as_ref().is_none_or(|claim| claim.until <= self.clock.now())
    }

    /// A fresh claim: a token of its own, lasting the lease.
    pub(crate) fn new_claim(&self) -> Claim {
        let lease = chrono::Duration::from_std(self.timing.claim_lease).unwrap_or(chrono::Duration::seconds(30));
        Claim { token: generate_id("claim"), until: self.clock.now() + lease }
    }

    /// Moves a reservation to `state` under a fresh claim. Every write to a reservation row changes
    /// or clears its claim token: `settle` relies on that to write its claimed copy back whole. A
    /// claim alone changes nothing a client sees (a change under way shows as where it started),
    /// so `updated_time` waits for the change to be made, and `restore` can undo it without trace.
    pub(crate) async fn claim<T>(
        &self,
        txn: &impl ConnectionTrait,
        mut reservation: Reservation,
        state: State,
    ) -> Result<Decision<T>, ReservationError> {
        reservation.state = state;
        reservation.claim = Some(self.new_claim());
        reservation.to_row()?.into_active_model().reset_all().update(txn).await?;
        Ok(Decision::Claimed(Box::new(reservation)))
    }

    /// Records the end of a change: applies `change` if the reservation is still in `from` under
    /// this worker's claim, and drops the claim. A worker whose claim was taken over changes
    /// nothing. Answers the reservation as stored. While the token is ours nobody else has written
    /// the row (see `claim`), so our claimed copy is the row.
    pub(crate) async fn settle(
        &self,
        claimed: &Reservation,
        from: State,
        change: impl FnOnce(&mut Reservation),
    ) -> Result<Reservation, ReservationError> {
        let mut changed = claimed.clone();
        change(&mut changed);
        changed.updated_time = self.clock.now();
        changed.claim = None;
        // One statement on the hot path, committed with other callers'; a worker that lost its
        // claim then reads what is stored.
        let applied = self.writes.write(RowWrite::write_back(claimed, from, &changed)?).await?;
        let reservation = if applied {
            changed
        } else {
            let stored = row::Entity::find_by_id(changed.id.clone()).one(self.db.connection()).await?;
            Reservation::from_row(stored.ok_or_else(|| ReservationError::NotFound(changed.id.clone()))?)?
        };
        if applied {
            self.metrics.reached(reservation.state);
        }
        Ok(reservation)
    }

    /// Gives up a claimed cancellation or fulfillment that the Inventory refused: the reservation
    /// is active again, as it was before the claim, and a fulfillment's order is gone. So a refused
    /// call leaves nothing behind.
    pub(crate) async fn restore(&self, claimed: &Reservation, from: State) -> Result<(), ReservationError> {
        self.db
            .write(|txn| {
                let (claimed, mut active) = (claimed.clone(), claimed.clone());
                active.state = State::Active;
                Box::pin(async move {
                    if write_back(txn, &claimed, from, &active).await? && from == State::Committing {
                        crate::entity::fulfillment_order::Entity::delete_many()
                            .filter(crate::entity::fulfillment_order::Column::ReservationId.eq(active.id.clone()))
                            .exec(txn)
                            .await?;
                    }
                    Ok::<_, ReservationError>(())
                })
            })
            .await
    }

    /// Deletes a reservation if it is still in `from` under this worker's claim; tells whether it
    /// did.
    pub(crate) async fn remove(&self, claimed: &Reservation, from: State) -> Result<bool, ReservationError> {
        let token = claimed.claim.as_ref().map(|c| c.token.clone());
        let deleted = self
            .db
            .write(|txn| {
                let (id, token) = (claimed.id.clone(), token.clone());
                Box::pin(async move {
                    let deleted = row::Entity::delete_many()
                        .filter(row::Column::Id.eq(id))
                        .filter(row::Column::State.eq(from))
                        .filter(row::Column::ClaimToken.eq(token))
                        .exec(txn)
                        .await?;
                    Ok::<_, ReservationError>(deleted.rows_affected)
                })
            })
            .await?;
        Ok(deleted > 0)
    }

    /// Claims up to `limit` reservations matching `condition` that no other replica is working on,
    /// moving each to `state` (or keeping its state when `None`).
    pub(crate) async fn claim_batch(
        &self,
        condition: Condition,
        state: Option<State>,
        limit: u64,
    ) -> Result<Vec<Reservation>, ReservationError> {
        self.db
            .write(|txn| {
                let (this, condition) = (self.clone(), condition.clone());
                Box::pin(async move {
                    let rows = row::Entity::find()
                        .filter(condition)
                        .order_by_asc(row::Column::ExpireTime)
                        .limit(limit)
                        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                        .all(txn)
                        .await?;
                    let mut claimed = Vec::new();
                    for row in rows {
                        let reservation = Reservation::from_row(row)?;
                        let target = state.unwrap_or(reservation.state);
                        if let Decision::Claimed(reservation) = this.claim::<()>(txn, reservation, target).await? {
                            claimed.push(*reservation);
                        }
                    }
                    Ok(claimed)
                })
            })
            .await
    }
}

/// Writes `changed`, unclaimed, over the reservation `claimed` if it is still in `from` under the
/// same claim; tells whether it did.
async fn write_back(
    txn: &impl ConnectionTrait,
    claimed: &Reservation,
    from: State,
    changed: &Reservation,
) -> Result<bool, ReservationError> {
    Ok(RowWrite::write_back(claimed, from, changed)?.run(txn).await?)
}

/// The single-row writes of the hot path, committed in groups of concurrent callers'
/// (`RESERVATION_WRITE_BATCH_MAX`). Each is one statement whose rows are built before it is queued,
/// so it fails only as the database does.
pub(crate) enum RowWrite {
    /// A new reservation's row, unless its id is taken: whether it went in.
    Insert(row::Model),
    /// A claimed reservation's row replaced by `changed`, unclaimed, if it is still in `from` under
    /// the claim `token`: whether it was. The row is still ours exactly when it is still in `from`
    /// under our token, and then it is what we claimed.
    WriteBack { id: String, from: State, token: Option<String>, changed: row::Model },
}

impl RowWrite {
    fn write_back(claimed: &Reservation, from: State, changed: &Reservation) -> Result<Self, DbErr> {
        let mut changed = changed.clone();
        changed.claim = None;
        Ok(RowWrite::WriteBack {
            id: claimed.id.clone(),
            from,
            token: claimed.claim.as_ref().map(|claim| claim.token.clone()),
            changed: changed.to_row()?,
        })
    }
}

impl GroupedWrite for RowWrite {
    type Output = bool;

    fn run<'c, C: ConnectionTrait + Sync>(&'c self, db: &'c C) -> TransactionFuture<'c, bool, DbErr> {
        Box::pin(async move {
            match self {
                RowWrite::Insert(model) => {
                    let inserted = row::Entity::insert(model.clone().into_active_model())
                        .on_conflict(OnConflict::column(row::Column::Id).do_nothing().to_owned())
                        .exec_without_returning(db)
                        .await?;
                    Ok(inserted > 0)
                }
                RowWrite::WriteBack { id, from, token, changed } => {
                    let updated = row::Entity::update_many()
                        .set(changed.clone().into_active_model().reset_all())
                        .filter(row::Column::Id.eq(id.clone()))
                        .filter(row::Column::State.eq(*from))
                        .filter(match token {
                            Some(token) => row::Column::ClaimToken.eq(token.clone()),
                            None => row::Column::ClaimToken.is_null(),
                        })
                        .exec(db)
                        .await?;
                    Ok(updated.rows_affected > 0)
                }
            }
        })
    }
}

/// A reservation with its claim, locked for the transaction that reads it.
pub(crate) async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<Reservation>, DbErr> {
    row::Entity::find_by_id(id.to_owned()).lock_exclusive().one(db).await?.map(Reservation::from_row).transpose()
}

/// A reservation's row: the reservation as stored, its claim included.
impl Reservation {
    pub(crate) fn from_row(row: row::Model) -> Result<Self, DbErr> {
        let json = |e: serde_json::Error| DbErr::Json(format!("reservation '{}': {e}", row.id));
        let shipping_choice = row.shipping_currency.clone().map(|currency| ShippingChoice {
            currency,
            amount: row.shipping_amount.unwrap_or_default(),
            service_level: row.shipping_service_level.clone().unwrap_or_default(),
        });
        Ok(Self {
            state: row.state,
            items: serde_json::from_str(&row.items).map_err(json)?,
            ship_to: serde_json::from_str(&row.ship_to).map_err(json)?,
            allocations: serde_json::from_str(&row.allocations).map_err(json)?,
            shipping_choice,
            id: row.id,
            expires_in_seconds: row.expires_in_seconds,
            expire_time: row.expire_time,
            live_mode: row.live_mode,
            created_time: row.created_time,
            updated_time: row.updated_time,
            claim: match (row.claim_token, row.claimed_until) {
                (Some(token), Some(until)) => Some(Claim { token, until }),
                _ => None,
            },
        })
    }

    pub(crate) fn to_row(&self) -> Result<row::Model, DbErr> {
        let json = |e: serde_json::Error| DbErr::Json(e.to_string());
        Ok(row::Model {
            id: self.id.clone(),
            state: self.state,
            items: serde_json::to_string(&self.items).map_err(json)?,
            ship_to: serde_json::to_string(&self.ship_to).map_err(json)?,
            ship_to_country: self.ship_to.country.clone(),
            shipping_currency: self.shipping_choice.as_ref().map(|c| c.currency.clone()),
            shipping_amount: self.shipping_choice.as_ref().map(|c| c.amount),
            shipping_service_level: self.shipping_choice.as_ref().map(|c| c.service_level.clone()),
            expires_in_seconds: self.expires_in_seconds,
            expire_time: self.expire_time,
            allocations: serde_json::to_string(&self.allocations).map_err(json)?,
            claimed_until: self.claim.as_ref().map(|c| c.until),
            claim_token: self.claim.as_ref().map(|c| c.token.clone()),
            live_mode: self.live_mode,
            created_time: self.created_time,
            updated_time: self.updated_time,
        })
    }
}

// In a file of its own: its fixtures serve the tests of `reservations.rs` too.
#[cfg(test)]
pub(crate) mod tests;
