//! Reservations: create, get, list and cancel, and the hold calls that settle them. Every change
//! that calls the Inventory is recorded first as a claimed `…ing` state, then made, then recorded
//! as done (the claims are in `store.rs`); whoever finds a lapsed claim (the sweeper, after a
//! crash) finishes it. So a hold never exists without its reservation, and an active reservation
//! always has its hold (docs/architecture.md, "Reservations").

use fulfillment_reference::{generate_id, is_valid_id};
use fulfillment_storage::paging::{Cursor, Page, TimeRange};
use fulfillment_storage::retry_lost_insert;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, Condition, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect};

use crate::domain::{NewReservation, Reservation, State};
use crate::entity::reservation as row;
use crate::error::ReservationError;
use crate::inventory_client::{ClosedHold, Outcome, Refusal, RefusalKind};
use crate::store::{Decision, Reservations, RowWrite, find};

impl Reservations {
    /// Reserves every item or none. The same id with the same content answers the same
    /// reservation; other content is ALREADY_EXISTS.
    pub async fn create(&self, request: NewReservation) -> Result<Reservation, ReservationError> {
        let max = self.timing.max_expires_in.as_secs() as i64;
        request.validate(&self.reference, max, self.limits).map_err(ReservationError::InvalidRequest)?;
        let default = self.timing.default_expires_in.as_secs() as i64;
        let expires_in = if request.expires_in_seconds == 0 { default } else { request.expires_in_seconds };
        let time = self.clock.now();
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
        // A new id, the usual case, is one statement, committed with other callers' writes.
        let inserted = self.writes.write(RowWrite::Insert(candidate.to_row()?)).await?;
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
                        State::Pending if this.lapsed(&existing) => this.claim(txn, existing, State::Pending).await,
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
            condition = condition.add(row::Column::State.is_in(states.iter().copied()));
        }
        // An active reservation past its expiry reads as expired until the sweeper removes it.
        let lapsed_active = Condition::all()
            .add(row::Column::State.is_in([State::Active, State::Committing, State::Releasing]))
            .add(row::Column::ExpireTime.lte(self.clock.now()));
        match expired {
            Some(true) => {
                condition =
                    condition.add(Condition::any().add(lapsed_active).add(row::Column::State.eq(State::Expiring)))
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
                        State::Active | State::Releasing if reservation.expire_time <= this.clock.now() => {
                            Err(ReservationError::NotFound(id))
                        }
                        State::Active => this.claim(txn, reservation, State::Releasing).await,
                        State::Releasing if this.lapsed(&reservation) => {
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
        if reservation.expire_time <= self.clock.now() {
            return self.expired_before_held(reservation).await;
        }
        let mut insufficient = false;
        let refusal = match self.inventory.place(&reservation).await {
            Outcome::Done(hold) if hold.held => {
                fault_point("after_hold");
                let allocations = hold.allocations;
                let settled = self
                    .settle(&reservation, State::Pending, |r| {
                        r.state = State::Active;
                        r.allocations = allocations;
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
                    self.metrics.expired(reservation.expire_time, self.clock.now());
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

#[cfg(test)]
mod tests {
    use fulfillment_storage::Backend;
    use fulfillment_storage::testing::TestDatabase;
    use sea_orm::ActiveModelTrait;
    use suite_tests::on_every_backend;

    use super::*;
    use crate::domain::Claim;
    use crate::store::tests::{active, claim, service, service_calling, stored};

    // A cancellation whose claim lapsed while it released the hold answers cancelled, as it is:
    // the worker that took it over can record nothing else.
    async fn a_cancellation_taken_over_still_answers_cancelled(backend: Backend) {
        let (inventory, _client) = suite_tests::Spawn::on(backend).inventory().await;
        let database = TestDatabase::create(backend).await.expect("a database");
        let reservations = service_calling(&database, inventory.channel().await, suite_tests::keys::RESERVATION).await;
        let original = active(&reservations, "r").await;
        let first = claim(&reservations, original, State::Releasing).await;
        let second = claim(&reservations, stored(&reservations, "r").await, State::Releasing).await;

        let answered = reservations.finish_release(first).await.expect("released");
        assert_eq!(answered.state, State::Cancelled, "{backend:?}");
        assert_eq!(stored(&reservations, "r").await, second, "{backend:?}: recorded by the worker holding the claim");
        let recorded = reservations.finish_release(second).await.expect("released again");
        assert_eq!(recorded.state, State::Cancelled);
        assert_eq!(stored(&reservations, "r").await.state, State::Cancelled);
    }

    on_every_backend!(a_cancellation_taken_over_still_answers_cancelled);

    // A cancellation left half done reads as the reservation it was; past its expiry that is an
    // expired reservation, which a cancel does not find (the sweeper finishes the half-done one).
    async fn a_half_done_cancellation_past_its_expiry_is_not_found(backend: Backend) {
        let database = TestDatabase::create(backend).await.expect("a database");
        let reservations = service(&database).await;
        let mut lapsed = active(&reservations, "r").await;
        lapsed.state = State::Releasing;
        lapsed.expire_time = fulfillment_storage::paging::now() - chrono::Duration::seconds(1);
        lapsed.claim = Some(Claim {
            token: "claim_crashed".into(),
            until: fulfillment_storage::paging::now() - chrono::Duration::seconds(1),
        });
        row::Entity::update(lapsed.to_row().expect("a row").into_active_model().reset_all())
            .exec(reservations.db.connection())
            .await
            .expect("updated");
        let error = reservations.cancel("r").await.expect_err("expired");
        assert!(matches!(error, ReservationError::NotFound(_)), "{backend:?}: {error:?}");
        assert_eq!(stored(&reservations, "r").await, lapsed, "{backend:?}: untouched");
    }

    on_every_backend!(a_half_done_cancellation_past_its_expiry_is_not_found);
}
