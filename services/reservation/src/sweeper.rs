//! The background work: expired reservations are released and deleted, and changes a crashed or
//! stalled replica left half done are finished. Replicas share the work by claiming rows with
//! `FOR UPDATE SKIP LOCKED`.

use std::time::Duration;

use fulfillment_server::background::every;
use sea_orm::{ColumnTrait, Condition};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::domain::State;
use crate::entity::reservation as row;
use crate::error::ReservationError;
use crate::store::Reservations;

/// How many reservations one claim takes.
const BATCH: u64 = 16;

impl Reservations {
    /// Releases and deletes every reservation past its expiry, then finishes every change whose
    /// claim lapsed. Returns how many reservations it handled.
    pub async fn sweep(&self) -> Result<usize, ReservationError> {
        let mut handled = 0;
        loop {
            let due = Condition::all()
                .add(row::Column::State.eq(State::Active))
                .add(row::Column::ExpireTime.lte(self.clock.now()));
            let expired = self.claim_batch(due, Some(State::Expiring), BATCH).await?;
            let count = expired.len();
            // Concurrently, so that every claim of the batch is done well within its lease.
            let mut work = JoinSet::new();
            for reservation in expired {
                let this = self.clone();
                work.spawn(async move { this.finish_expiry(reservation).await });
            }
            while let Some(outcome) = work.join_next().await {
                report(
                    outcome.unwrap_or_else(|e| Err(ReservationError::Database(sea_orm::DbErr::Custom(e.to_string())))),
                );
            }
            handled += count;
            if (count as u64) < BATCH {
                break;
            }
        }
        let unfinished = Condition::all()
            .add(row::Column::State.is_in([State::Pending, State::Releasing, State::Committing, State::Expiring]))
            .add(
                Condition::any()
                    .add(row::Column::ClaimedUntil.is_null())
                    .add(row::Column::ClaimedUntil.lte(self.clock.now())),
            );
        let stalled = self.claim_batch(unfinished, None, BATCH).await?;
        handled += stalled.len();
        let mut work = JoinSet::new();
        for reservation in stalled {
            let this = self.clone();
            work.spawn(async move {
                match reservation.state {
                    State::Pending => this.place(reservation, false).await.map(drop),
                    State::Releasing => this.finish_release(reservation).await.map(drop),
                    State::Committing => this.finish_commit(reservation).await.map(drop),
                    State::Expiring => this.finish_expiry(reservation).await,
                    State::Active | State::Cancelled | State::Fulfilled => Ok(()),
                }
            });
        }
        while let Some(outcome) = work.join_next().await {
            report(outcome.unwrap_or_else(|e| Err(ReservationError::Database(sea_orm::DbErr::Custom(e.to_string())))));
        }
        Ok(handled)
    }

    /// Sweeps every `interval` until told to stop; the first sweep runs at once, so a restart
    /// finishes what a crash left.
    pub async fn run_sweeper(self, interval: Duration, stop: watch::Receiver<bool>) {
        every(interval, stop, || async {
            match self.sweep().await {
                Ok(0) => {}
                Ok(handled) => tracing::info!(handled, "swept reservations"),
                Err(error) => tracing::warn!(%error, "sweep failed; retrying at the next tick"),
            }
        })
        .await
    }
}

/// Logs how a change the sweeper took on ended. A refused or unanswered one stays claimed until its
/// lease lapses, and a later sweep tries again.
fn report(outcome: Result<(), ReservationError>) {
    match outcome {
        // Settled one way or the other: removed because the Inventory refused, or found closed.
        Ok(()) | Err(ReservationError::NotFound(_)) | Err(ReservationError::Closed { .. }) => {}
        Err(error) => tracing::warn!(%error, "a reservation change is left for a later sweep"),
    }
}
