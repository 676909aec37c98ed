//! The Reservation service's operations. Every change that calls the Inventory is recorded first as
//! a claimed `…ing` state, then made, then recorded as done; whoever finds a lapsed claim (the
//! sweeper, after a crash) finishes it. So a hold never exists without its reservation, and an
//! active reservation always has its hold.

use std::sync::Arc;
use std::time::Duration;

use fulfillment_proto::inventory::v1 as inventory;
use fulfillment_proto::time::timestamp;
use fulfillment_reference::{ReferenceData, generate_id, is_valid_id};
use fulfillment_storage::paging::{Cursor, Page, TimeRange, now};
use fulfillment_storage::{Database, retry_lost_insert};
use sea_orm::sea_query::{LockBehavior, LockType, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};

use crate::entity::reservation as row;
use crate::error::ReservationError;
use crate::inventory_client::{ClosedHold, InventoryClient, Outcome, Refusal, RefusalKind};
use crate::metrics::ReservationMetrics;
use crate::reservation::{Allocation, Claim, Limits, NewReservation, Reservation, State};

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
    reference: Arc<ReferenceData>,
    pub(crate) timing: Timing,
    pub(crate) metrics: ReservationMetrics,
    pub(crate) limits: Limits,
    live_mode: bool,
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
            db,
            inventory,
            reference: Arc::new(reference),
            timing,
            metrics,
            limits: Limits::default(),
            live_mode: true,
        }
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

    /// A fresh claim: a token of its own, lasting the lease.
    pub(crate) fn new_claim(&self) -> Claim {
        let lease = chrono::Duration::from_std(self.timing.claim_lease).unwrap_or(chrono::Duration::seconds(30));
        Claim { token: generate_id("claim"), until: now() + lease }
    }

    /// Reserves every item or none. The same id with the same content answers the same
    /// reservation; other content is ALREADY_EXISTS.
    pub async fn create(&self, request: NewReservation) -> Result<Reservation, ReservationError> {
        let max = self.timing.max_expires_in.as_secs() as i64;
        request.validate(&self.reference, max, self.limits).map_err(ReservationError::InvalidRequest)?;
        let default = self.timing.default_expires_in.as_secs() as i64;
        let expires_in = if request.expires_in_seconds == 0 { default } else { request.expires_in_seconds };
        let time = now();
        let candidate = Reservation {
            id: request.id.clone().unwrap_or_else(|| generate_id("res")),
            state: State::Pending,
            items: request.items.clone(),
            ship_to: request.ship_to.clone(),
            shipping_choice: request.shipping_choice.clone(),
            expires_in_seconds: expires_in,
            expire_time: time + chrono::Duration::seconds(expires_in),
            allocations: Vec::new(),
            live_mode: self.live_mode,
            created_time: time,
            updated_time: time,
            claim: Some(self.new_claim()),
        };
        // A new id, the usual case, is one statement on its own.
        let inserted = self
            .db
            .write_statement(|db| {
                let candidate = candidate.clone();
                Box::pin(async move {
                    let inserted = row::Entity::insert(candidate.to_row()?.into_active_model())
                        .on_conflict(OnConflict::column(row::Column::Id).do_nothing().to_owned())
                        .exec_without_returning(db)
                        .await?;
                    Ok::<_, ReservationError>(inserted > 0)
                })
            })
            .await?;
        if inserted {
            fault_point("after_pending");
            return self.place(candidate, true).await;
        }
        let decision = retry_lost_insert(|| {
            self.db.write(|txn| {
                let (this, candidate, request) = (self.clone(), candidate.clone(), request.clone());
                Box::pin(async move {
                    // The id is taken, or was: a row that the insert met but that was deleted
                    // before it could be read is met no more on a second try.
                    let mut existing = None;
                    for _ in 0..2 {
                        let inserted = row::Entity::insert(candidate.to_row()?.into_active_model())
                            .on_conflict(OnConflict::column(row::Column::Id).do_nothing().to_owned())
                            .exec_without_returning(txn)
                            .await?;
                        if inserted > 0 {
                            return Ok(Decision::Claimed(Box::new(candidate)));
                        }
                        existing = find(txn, &candidate.id).await?;
                        if existing.is_some() {
                            break;
                        }
                    }
                    let Some(existing) = existing else { return Err(ReservationError::Busy(candidate.id.clone())) };
                    if !existing.same_content(&request, default) {
                        return Err(ReservationError::Exists(existing.id));
                    }
                    match existing.state {
                        State::Active | State::Fulfilled | State::Cancelled => Ok(Decision::Settled(existing)),
                        State::Pending if lapsed(&existing) => this.claim(txn, existing, State::Pending).await,
                        _ => Err(ReservationError::Busy(existing.id)),
                    }
                })
            })
        })
        .await?;
        match decision {
            Decision::Settled(reservation) => Ok(reservation),
            Decision::Claimed(reservation) => {
                fault_point("after_pending");
                // Our own insert carries the claim we made for it; a takeover carries a new one.
                let first_attempt = reservation.claim == candidate.claim;
                self.place(*reservation, first_attempt).await
            }
        }
    }

    /// Returns a reservation.
    pub async fn get(&self, id: &str) -> Result<Reservation, ReservationError> {
        check_id(id)?;
        let row = row::Entity::find_by_id(id.to_owned()).one(self.db.connection()).await?;
        row.map(Reservation::from_row).transpose()?.ok_or_else(|| ReservationError::NotFound(id.to_owned()))
    }

    /// Lists reservations, oldest first, optionally in some states, expired or not, and created in
    /// a time range.
    pub async fn list(
        &self,
        states: &[State],
        expired: Option<bool>,
        created: TimeRange,
        page_size: u64,
        page_token: &str,
    ) -> Result<Page<Reservation>, ReservationError> {
        let cursor = Cursor::decode(page_token).map_err(ReservationError::invalid)?;
        let mut condition = Condition::all().add(created.condition(row::Column::CreatedTime));
        if !states.is_empty() {
            condition = condition.add(row::Column::State.is_in(states.iter().map(|s| s.as_str())));
        }
        // An active reservation past its expiry reads as expired until the sweeper removes it.
        let lapsed_active = Condition::all()
            .add(row::Column::State.is_in([
                State::Active.as_str(),
                State::Committing.as_str(),
                State::Releasing.as_str(),
            ]))
            .add(row::Column::ExpireTime.lte(now()));
        match expired {
            Some(true) => {
                condition = condition
                    .add(Condition::any().add(lapsed_active).add(row::Column::State.eq(State::Expiring.as_str())))
            }
            Some(false) => condition = condition.add(lapsed_active.not()),
            None => {}
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
        let reservations = rows.into_iter().map(Reservation::from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(reservations, page_size, |r| Cursor::after(r.created_time, &r.id)))
    }

    /// Cancels a reservation, releasing its whole hold. Cancelling again answers the cancelled
    /// reservation; an unknown or expired one is NOT_FOUND.
    pub async fn cancel(&self, id: &str) -> Result<Reservation, ReservationError> {
        check_id(id)?;
        let decision = self
            .db
            .write(|txn| {
                let (this, id) = (self.clone(), id.to_owned());
                Box::pin(async move {
                    let reservation = find(txn, &id).await?.ok_or_else(|| ReservationError::NotFound(id.clone()))?;
                    match reservation.state {
                        State::Expiring => Err(ReservationError::NotFound(id)),
                        State::Active | State::Releasing if reservation.expire_time <= now() => {
                            Err(ReservationError::NotFound(id))
                        }
                        State::Active => this.claim(txn, reservation, State::Releasing).await,
                        State::Releasing if lapsed(&reservation) => {
                            this.claim(txn, reservation, State::Releasing).await
                        }
                        State::Cancelled => Ok(Decision::Settled(reservation)),
                        State::Fulfilled => Err(ReservationError::Closed { id, state: "fulfilled" }),
                        State::Pending | State::Releasing | State::Committing => Err(ReservationError::Busy(id)),
                    }
                })
            })
            .await?;
        match decision {
            Decision::Settled(reservation) => Ok(reservation),
            Decision::Claimed(reservation) => self.finish_release(*reservation).await,
        }
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

    /// Ends a reservation whose expiry came before its hold: too late to hold anything, so whatever
    /// an earlier attempt placed is released instead, and the reservation is not found.
    async fn expired_before_held(&self, reservation: Reservation) -> Result<Reservation, ReservationError> {
        let id = reservation.id.clone();
        self.finish_expiry(reservation).await?;
        Err(ReservationError::NotFound(id))
    }

    /// Places the hold of a claimed pending reservation and records the outcome: active with its
    /// allocations, or deleted when the Inventory refuses (its answer goes to the caller).
    /// `first_attempt` says that no earlier attempt can have placed the hold.
    pub(crate) async fn place(
        &self,
        reservation: Reservation,
        first_attempt: bool,
    ) -> Result<Reservation, ReservationError> {
        if reservation.expire_time <= now() {
            return self.expired_before_held(reservation).await;
        }
        let request = inventory::PlaceHoldRequest {
            hold_id: reservation.id.clone(),
            lines: reservation
                .items
                .iter()
                .map(|item| inventory::HoldRequestLine {
                    inventory_item_id: item.inventory_item_id.clone(),
                    quantity: item.quantity,
                    allow_oversell: item.allow_oversell,
                })
                .collect(),
            ship_to_country: reservation.ship_to.country.clone(),
            expire_time: Some(timestamp(reservation.expire_time)),
        };
        let mut insufficient = false;
        let refusal = match self.inventory.place(request).await {
            Outcome::Done(hold) if hold.state() == inventory::HoldState::Held => {
                fault_point("after_hold");
                let allocations = allocations(&hold);
                let settled = self
                    .settle(&reservation, State::Pending, move |r| {
                        r.state = State::Active;
                        r.allocations = allocations.clone();
                    })
                    .await;
                if let Err(ReservationError::NotFound(_)) = settled {
                    // The reservation went while the hold was placed: no hold may outlive it.
                    let _ = self.inventory.release(&reservation.id).await;
                }
                return settled;
            }
            // An earlier reservation with this id left a closed hold behind: the id is spent.
            Outcome::Done(_) => ReservationError::Exists(reservation.id.clone()),
            // Someone else's hold has the id (a client's, say): the id is spent.
            Outcome::Refused(Refusal { kind: RefusalKind::Exists, .. }) => {
                ReservationError::Exists(reservation.id.clone())
            }
            // The expiry passed while the Inventory came to the hold (it was slow, or paused):
            // the same answer as when this service finds the expiry itself.
            Outcome::Refused(Refusal { kind: RefusalKind::ExpiryPassed, .. }) => {
                return self.expired_before_held(reservation).await;
            }
            Outcome::Refused(refusal) => {
                insufficient = refusal.kind == RefusalKind::Insufficient;
                refusal.into()
            }
            // Nothing reached the Inventory, and no earlier attempt did: nothing is held, nothing kept.
            Outcome::NotSent(status) if first_attempt => ReservationError::InventoryUnavailable(status),
            Outcome::NotSent(status) => return Err(ReservationError::InventoryUnavailable(status)),
            Outcome::Unknown(status) => return Err(ReservationError::InventoryUnavailable(status)),
        };
        // Counted by whoever removes it, once.
        if self.remove(&reservation, State::Pending).await? && insufficient {
            self.metrics.refused();
        }
        Err(refusal)
    }

    /// Releases the hold of a claimed cancellation and records it; when the Inventory refuses, the
    /// reservation is active again, as it was.
    pub(crate) async fn finish_release(&self, reservation: Reservation) -> Result<Reservation, ReservationError> {
        match self.release_hold(&reservation.id).await? {
            Ok(()) => {
                let mut settled = self.settle(&reservation, State::Releasing, |r| r.state = State::Cancelled).await?;
                if settled.state == State::Releasing {
                    // Our claim lapsed and another worker took the cancellation over; the hold is
                    // released, so all it can record is what we answer.
                    settled.state = State::Cancelled;
                }
                Ok(settled)
            }
            Err(refusal) => {
                self.restore(&reservation, State::Releasing).await?;
                Err(refusal.into())
            }
        }
    }

    /// Releases the hold of a claimed expired reservation and deletes the reservation. A hold
    /// already committed holds nothing either: the reservation goes all the same.
    pub(crate) async fn finish_expiry(&self, reservation: Reservation) -> Result<(), ReservationError> {
        let state = reservation.state;
        let released = match self.release_hold(&reservation.id).await? {
            Err(Refusal { kind: RefusalKind::Closed(ClosedHold::Committed), .. }) => {
                // Only a hold from before holds recorded who placed them can be committed behind
                // the reservation's back.
                tracing::warn!(reservation = %reservation.id, "an expired reservation's hold was committed outside it");
                Ok(())
            }
            other => other,
        };
        match released {
            Ok(()) => {
                if self.remove(&reservation, state).await? {
                    self.metrics.expired(reservation.expire_time);
                }
                Ok(())
            }
            Err(refusal) => Err(refusal.into()),
        }
    }

    /// Releases a hold: `Ok(Ok(()))` once nothing of ours is held any more, `Ok(Err(refusal))` when
    /// the Inventory refuses for another reason (the hold was committed).
    async fn release_hold(&self, id: &str) -> Result<Result<(), Refusal>, ReservationError> {
        match self.inventory.release(id).await {
            Outcome::Done(_) => Ok(Ok(())),
            Outcome::Refused(refusal) => match refusal.kind {
                // A client's hold with the reservation's id: the Inventory placed nothing for us.
                RefusalKind::NotFound
                | RefusalKind::NotOwned
                | RefusalKind::Closed(ClosedHold::Released | ClosedHold::Expired) => Ok(Ok(())),
                _ => Ok(Err(refusal)),
            },
            Outcome::Unknown(status) | Outcome::NotSent(status) => Err(ReservationError::InventoryUnavailable(status)),
        }
    }

    /// Records the end of a change: applies `change` if the reservation is still in `from` under
    /// this worker's claim, and drops the claim. A worker whose claim was taken over changes
    /// nothing. Answers the reservation as stored. While the token is ours nobody else has written
    /// the row (see `claim`), so our claimed copy is the row.
    pub(crate) async fn settle(
        &self,
        claimed: &Reservation,
        from: State,
        change: impl Fn(&mut Reservation) + Clone + Send + Sync + 'static,
    ) -> Result<Reservation, ReservationError> {
        // One statement on the hot path; a worker that lost its claim then reads what is stored.
        let (reservation, applied) = self
            .db
            .write_statement(|db| {
                let (claimed, mut changed, change) = (claimed.clone(), claimed.clone(), change.clone());
                Box::pin(async move {
                    change(&mut changed);
                    changed.updated_time = now();
                    changed.claim = None;
                    if write_back(db, &claimed, from, &changed).await? {
                        return Ok::<_, ReservationError>((changed, true));
                    }
                    let stored = row::Entity::find_by_id(changed.id.clone())
                        .one(db)
                        .await?
                        .ok_or_else(|| ReservationError::NotFound(changed.id.clone()))?;
                    Ok((Reservation::from_row(stored)?, false))
                })
            })
            .await?;
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
                        .filter(row::Column::State.eq(from.as_str()))
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
/// same claim; tells whether it did. One conditional statement: the row is still ours exactly when
/// it is still in `from` under our token, and then it is what we claimed.
async fn write_back(
    txn: &impl ConnectionTrait,
    claimed: &Reservation,
    from: State,
    changed: &Reservation,
) -> Result<bool, ReservationError> {
    let mut changed = changed.clone();
    changed.claim = None;
    let updated = row::Entity::update_many()
        .set(changed.to_row()?.into_active_model().reset_all())
        .filter(row::Column::Id.eq(claimed.id.clone()))
        .filter(row::Column::State.eq(from.as_str()))
        .filter(match &claimed.claim {
            Some(claim) => row::Column::ClaimToken.eq(claim.token.clone()),
            None => row::Column::ClaimToken.is_null(),
        })
        .exec(txn)
        .await?;
    Ok(updated.rows_affected > 0)
}

/// Whether a reservation's claim has run out, so another may take the change over.
pub(crate) fn lapsed(reservation: &Reservation) -> bool {
    reservation.claim.as_ref().is_none_or(|claim| claim.until <= now())
}

fn fault_point(name: &str) {
    fulfillment_server::fault::point("RESERVATION_FAULT_POINT", name);
}

fn check_id(id: &str) -> Result<(), ReservationError> {
    use fulfillment_errors::FieldViolation;
    match id {
        "" => Err(ReservationError::invalid(FieldViolation::missing("id"))),
        id if is_valid_id(id) => Ok(()),
        id => Err(ReservationError::invalid(FieldViolation::not_valid("id", id, "reservation ID"))),
    }
}

/// A reservation with its claim, locked for the transaction that reads it.
pub(crate) async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<Reservation>, DbErr> {
    row::Entity::find_by_id(id.to_owned()).lock_exclusive().one(db).await?.map(Reservation::from_row).transpose()
}

/// The allocations of a hold.
pub(crate) fn allocations(hold: &inventory::Hold) -> Vec<Allocation> {
    hold.allocations
        .iter()
        .map(|a| Allocation {
            inventory_item_id: a.inventory_item_id.clone(),
            warehouse_id: a.warehouse_id.clone(),
            quantity: a.quantity,
            oversold_quantity: a.oversold_quantity,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use fulfillment_server::calls::Credentials;
    use fulfillment_storage::PoolConfig;
    use fulfillment_storage::testing::{TestDatabase, backends};
    use tonic::transport::Channel;

    use super::*;
    use crate::migration::Migrator;
    use crate::reservation::{Address, ReservationItem};

    /// The service over a fresh database, with an Inventory that is never called.
    async fn service(database: &TestDatabase) -> Reservations {
        let channel = Channel::from_static("http://127.0.0.1:9").connect_lazy();
        service_calling(database, channel, "fk_svc_unused").await
    }

    /// The service over a fresh database, calling the Inventory on `channel` with `key`.
    async fn service_calling(database: &TestDatabase, channel: Channel, key: &str) -> Reservations {
        let db = Database::connect(database.url(), PoolConfig::default()).await.expect("connect");
        fulfillment_storage::migrate::<Migrator>(&db).await.expect("migrate");
        let metrics = fulfillment_server::Metrics::new("reservation", None);
        let credentials = Credentials::new(key, true).expect("a header value");
        let inventory = InventoryClient::new(channel, Duration::from_secs(1), &metrics, credentials);
        let timing = Timing {
            default_expires_in: Duration::from_secs(60),
            max_expires_in: Duration::from_secs(600),
            claim_lease: Duration::from_secs(30),
        };
        Reservations::new(db, inventory, ReferenceData::default(), timing, ReservationMetrics::new(&metrics))
    }

    async fn stored(reservations: &Reservations, id: &str) -> Reservation {
        reservations.get(id).await.expect("stored")
    }

    /// An active reservation, as its placed hold left it.
    async fn active(reservations: &Reservations, id: &str) -> Reservation {
        let time = now() - chrono::Duration::seconds(5);
        let reservation = Reservation {
            id: id.to_owned(),
            state: State::Active,
            items: vec![ReservationItem { inventory_item_id: "a".into(), quantity: 1, allow_oversell: None }],
            ship_to: Address { country: "US".into(), ..Default::default() },
            shipping_choice: None,
            expires_in_seconds: 300,
            expire_time: time + chrono::Duration::seconds(300),
            allocations: Vec::new(),
            live_mode: true,
            created_time: time,
            updated_time: time,
            claim: None,
        };
        row::Entity::insert(reservation.to_row().expect("a row").into_active_model())
            .exec_without_returning(reservations.db.connection())
            .await
            .expect("inserted");
        reservation
    }

    /// Claims `reservation` for a change to `state` as a worker would, in a transaction.
    async fn claim(reservations: &Reservations, reservation: Reservation, state: State) -> Reservation {
        let decision = reservations
            .db
            .write(|txn| {
                let (this, reservation) = (reservations.clone(), reservation.clone());
                Box::pin(async move { this.claim::<()>(txn, reservation, state).await })
            })
            .await
            .expect("claimed");
        match decision {
            Decision::Claimed(reservation) => *reservation,
            Decision::Settled(()) => panic!("a claim always claims"),
        }
    }

    // The claim-token rule: once another worker has taken a change over, the first one's settle,
    // restore and remove write nothing, and the second one's still work.
    #[tokio::test]
    async fn a_worker_whose_claim_was_taken_over_writes_nothing() {
        for backend in backends() {
            let database = TestDatabase::create(backend).await.expect("a database");
            let reservations = service(&database).await;
            let original = active(&reservations, "r").await;
            let first = claim(&reservations, original.clone(), State::Releasing).await;
            // The first worker's lease lapsed; a second takes the cancellation over.
            let second = claim(&reservations, stored(&reservations, "r").await, State::Releasing).await;
            assert_ne!(first.claim, second.claim);

            let settled = reservations.settle(&first, State::Releasing, |r| r.state = State::Cancelled).await;
            assert_eq!(
                settled.expect("answers the stored row"),
                second,
                "{backend:?}: the late worker sees the row as it is"
            );
            reservations.restore(&first, State::Releasing).await.expect("restore");
            assert!(!reservations.remove(&first, State::Releasing).await.expect("remove"));
            assert_eq!(stored(&reservations, "r").await, second, "{backend:?}: the first worker wrote nothing");

            // The worker holding the claim restores it to exactly what it was before either claim.
            reservations.restore(&second, State::Releasing).await.expect("restore");
            assert_eq!(stored(&reservations, "r").await, original, "{backend:?}: nothing left of the claims");
            let again = claim(&reservations, original, State::Releasing).await;
            let cancelled = reservations.settle(&again, State::Releasing, |r| r.state = State::Cancelled).await;
            assert_eq!(cancelled.expect("settled").state, State::Cancelled);
            assert_eq!(stored(&reservations, "r").await.state, State::Cancelled);
        }
    }

    // A cancellation whose claim lapsed while it released the hold answers cancelled, as it is:
    // the worker that took it over can record nothing else.
    #[tokio::test]
    async fn a_cancellation_taken_over_still_answers_cancelled() {
        for backend in backends() {
            let (inventory, _client) = suite_tests::spawn_inventory(backend).await;
            let database = TestDatabase::create(backend).await.expect("a database");
            let reservations =
                service_calling(&database, inventory.channel().await, suite_tests::keys::RESERVATION).await;
            let original = active(&reservations, "r").await;
            let first = claim(&reservations, original, State::Releasing).await;
            let second = claim(&reservations, stored(&reservations, "r").await, State::Releasing).await;

            let answered = reservations.finish_release(first).await.expect("released");
            assert_eq!(answered.state, State::Cancelled, "{backend:?}");
            assert_eq!(
                stored(&reservations, "r").await,
                second,
                "{backend:?}: recorded by the worker holding the claim"
            );
            let recorded = reservations.finish_release(second).await.expect("released again");
            assert_eq!(recorded.state, State::Cancelled);
            assert_eq!(stored(&reservations, "r").await.state, State::Cancelled);
        }
    }

    // A cancellation left half done reads as the reservation it was; past its expiry that is an
    // expired reservation, which a cancel does not find (the sweeper finishes the half-done one).
    #[tokio::test]
    async fn a_half_done_cancellation_past_its_expiry_is_not_found() {
        for backend in backends() {
            let database = TestDatabase::create(backend).await.expect("a database");
            let reservations = service(&database).await;
            let mut lapsed = active(&reservations, "r").await;
            lapsed.state = State::Releasing;
            lapsed.expire_time = now() - chrono::Duration::seconds(1);
            lapsed.claim = Some(Claim { token: "claim_crashed".into(), until: now() - chrono::Duration::seconds(1) });
            row::Entity::update(lapsed.to_row().expect("a row").into_active_model().reset_all())
                .exec(reservations.db.connection())
                .await
                .expect("updated");
            let error = reservations.cancel("r").await.expect_err("expired");
            assert!(matches!(error, ReservationError::NotFound(_)), "{backend:?}: {error:?}");
            assert_eq!(stored(&reservations, "r").await, lapsed, "{backend:?}: untouched");
        }
    }

    // A refused fulfillment undone by a worker that lost its claim takes nothing away: the order
    // stays for the worker that holds the claim, whose own undo removes it.
    #[tokio::test]
    async fn a_stale_undo_of_a_fulfillment_leaves_its_order() {
        use sea_orm::PaginatorTrait;

        use crate::entity::fulfillment_order as order;

        for backend in backends() {
            let database = TestDatabase::create(backend).await.expect("a database");
            let reservations = service(&database).await;
            let original = active(&reservations, "r").await;
            let placed = order::Model {
                id: "fo-1".into(),
                reservation_id: "r".into(),
                upstream_id: None,
                lines: "[]".into(),
                live_mode: true,
                created_time: now(),
            };
            order::Entity::insert(placed.into_active_model())
                .exec_without_returning(reservations.db.connection())
                .await
                .expect("an order");
            let first = claim(&reservations, original.clone(), State::Committing).await;
            let second = claim(&reservations, stored(&reservations, "r").await, State::Committing).await;
            let orders = || order::Entity::find().count(reservations.db.connection());

            reservations.restore(&first, State::Committing).await.expect("restore");
            assert_eq!(orders().await.expect("count"), 1, "{backend:?}: the stale undo removed the order");
            assert_eq!(stored(&reservations, "r").await, second);
            reservations.restore(&second, State::Committing).await.expect("restore");
            assert_eq!(orders().await.expect("count"), 0, "{backend:?}: the claim holder's undo keeps it");
            assert_eq!(stored(&reservations, "r").await, original);
        }
    }
}
