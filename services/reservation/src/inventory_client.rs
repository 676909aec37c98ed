//! The Reservation service's calls to the Inventory: domain types in, a domain [`Hold`] or a typed
//! [`Refusal`] out, so the contract's messages stay here and a refusal's status is read once
//! (docs/architecture.md, "Contracts"). Each call has a deadline and is retried while its outcome
//! is unknown: every hold call is idempotent by hold id.

use std::time::Duration;

use fulfillment_proto::inventory::v1 as pb;
use fulfillment_proto::inventory::v1::InventoryErrorReason;
use fulfillment_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use fulfillment_proto::time::timestamp;
use fulfillment_server::Metrics;
pub use fulfillment_server::calls::Outcome;
use fulfillment_server::calls::{CallPolicy, Credentials};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::domain::{Allocation, Hold, Reservation};
use crate::error::ReservationError;

/// Attempts per call while the outcome stays unknown.
const ATTEMPTS: u32 = 3;

/// A client of the Inventory's hold RPCs.
#[derive(Clone, Debug)]
pub struct InventoryClient {
    client: InventoryServiceClient<Channel>,
    calls: CallPolicy,
}

impl InventoryClient {
    /// A client of the Inventory on `channel`, calling with the Reservation service's key in the
    /// mode `credentials` name, waiting `timeout` for each attempt and counting retries in `metrics`.
    pub fn new(channel: Channel, timeout: Duration, metrics: &Metrics, credentials: Credentials) -> Self {
        let calls = CallPolicy::new(timeout, ATTEMPTS, metrics).with_credentials(credentials);
        Self { client: InventoryServiceClient::new(channel), calls }
    }

    /// Places (or finds again) the hold of a reservation: its id, lines, country and expiry.
    pub async fn place(&self, reservation: &Reservation) -> Outcome<Hold, Refusal> {
        let request = pb::PlaceHoldRequest {
            hold_id: reservation.id.clone(),
            lines: reservation
                .items
                .iter()
                .map(|item| pb::HoldRequestLine {
                    inventory_item_id: item.inventory_item_id.clone(),
                    quantity: item.quantity,
                    allow_oversell: item.allow_oversell,
                })
                .collect(),
            ship_to_country: reservation.ship_to.country.clone(),
            expire_time: Some(timestamp(reservation.expire_time)),
        };
        self.call(request, |mut client, request| async move {
            client.place_hold(request).await.map(|r| r.into_inner().hold)
        })
        .await
    }

    /// Releases a hold.
    pub async fn release(&self, hold_id: &str) -> Outcome<Hold, Refusal> {
        let request = pb::ReleaseHoldRequest { hold_id: hold_id.to_owned() };
        self.call(request, |mut client, request| async move {
            client.release_hold(request).await.map(|r| r.into_inner().hold)
        })
        .await
    }

    /// Commits a hold.
    pub async fn commit(&self, hold_id: &str) -> Outcome<Hold, Refusal> {
        let request = pb::CommitHoldRequest { hold_id: hold_id.to_owned() };
        self.call(request, |mut client, request| async move {
            client.commit_hold(request).await.map(|r| r.into_inner().hold)
        })
        .await
    }

    /// Reads a hold.
    pub async fn get(&self, hold_id: &str) -> Outcome<Hold, Refusal> {
        let request = pb::GetHoldRequest { hold_id: hold_id.to_owned() };
        self.call(
            request,
            |mut client, request| async move { client.get_hold(request).await.map(|r| r.into_inner().hold) },
        )
        .await
    }

    async fn call<Req, F, Fut>(&self, message: Req, send: F) -> Outcome<Hold, Refusal>
    where
        Req: Clone,
        F: Fn(InventoryServiceClient<Channel>, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Option<pb::Hold>, Status>>,
    {
        let outcome = self.calls.call(message, |request| send(self.client.clone(), request)).await;
        match outcome {
            Outcome::Done(Some(hold)) => Outcome::Done(read_hold(hold)),
            Outcome::Done(None) => {
                Outcome::Refused(Refusal::from_status(Status::internal("the Inventory answered without a hold")))
            }
            Outcome::Refused(status) => Outcome::Refused(Refusal::from_status(status)),
            Outcome::NotSent(status) => Outcome::NotSent(status),
            Outcome::Unknown(status) => Outcome::Unknown(status),
        }
    }
}

/// A hold as the domain reads it: whether it still holds, and where it placed each line.
fn read_hold(hold: pb::Hold) -> Hold {
    Hold {
        held: hold.state() == pb::HoldState::Held,
        allocations: hold
            .allocations
            .into_iter()
            .map(|a| Allocation {
                inventory_item_id: a.inventory_item_id,
                warehouse_id: a.warehouse_id,
                quantity: a.quantity,
                oversold_quantity: a.oversold_quantity,
            })
            .collect(),
    }
}

/// Why the Inventory refused a hold call, read from its status here once: the domain matches on
/// this, never on codes or reason strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// No hold has the id.
    NotFound,
    /// The id is taken by someone else's hold, or by one with other lines.
    Exists,
    /// The hold is no longer held; it is in this state.
    Closed(ClosedHold),
    /// Someone else placed the hold with the reservation's id: nothing of ours is held.
    NotOwned,
    /// The hold's expiry time had passed when the Inventory came to place it: the reservation
    /// expired on the way, which no input of the caller's could have caused.
    ExpiryPassed,
    /// Lines that may not oversell are short.
    Insufficient,
    /// Anything else.
    Other,
}

/// The state of a hold that is no longer held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClosedHold {
    /// Its stock shipped.
    Committed,
    /// Released by whoever placed it.
    Released,
    /// Lapsed and released by the Inventory.
    Expired,
}

/// The Inventory's refusal: what kind it is, and its answer, which goes to the caller as it is.
#[derive(Debug)]
pub struct Refusal {
    /// What the refusal means to the Reservation service.
    pub kind: RefusalKind,
    status: Status,
}

impl Refusal {
    /// Reads a refusal from the Inventory's status.
    pub fn from_status(status: Status) -> Self {
        let reason = InventoryErrorReason::of(&status);
        let kind = match (status.code(), reason) {
            (Code::FailedPrecondition, Some(InventoryErrorReason::HoldClosed)) => {
                let state = status.get_details_error_info().and_then(|info| info.metadata.get("state").cloned());
                match pb::HoldState::from_str_name(&format!(
                    "HOLD_STATE_{}",
                    state.unwrap_or_default().to_ascii_uppercase()
                )) {
                    Some(pb::HoldState::Committed) => RefusalKind::Closed(ClosedHold::Committed),
                    Some(pb::HoldState::Released) => RefusalKind::Closed(ClosedHold::Released),
                    Some(pb::HoldState::Expired) => RefusalKind::Closed(ClosedHold::Expired),
                    _ => RefusalKind::Other,
                }
            }
            (Code::FailedPrecondition, Some(InventoryErrorReason::NotOwned)) => RefusalKind::NotOwned,
            (Code::FailedPrecondition, Some(InventoryErrorReason::InsufficientInventory)) => RefusalKind::Insufficient,
            (Code::NotFound, _) => RefusalKind::NotFound,
            (Code::AlreadyExists, _) => RefusalKind::Exists,
            (Code::InvalidArgument, _) if names_expire_time(&status) => RefusalKind::ExpiryPassed,
            _ => RefusalKind::Other,
        };
        Self { kind, status }
    }

    /// The refusal of a read that cannot fail once the hold is known to exist: to the caller, the
    /// Inventory did not answer, and the change is finished later.
    pub fn into_unavailable(self) -> ReservationError {
        ReservationError::InventoryUnavailable(self.status)
    }
}

impl From<Refusal> for ReservationError {
    fn from(refusal: Refusal) -> Self {
        ReservationError::Inventory(refusal.status)
    }
}

/// Whether a bad request names `expireTime`: the only field of a hold the Reservation service sets
/// from the clock rather than from its caller's input.
fn names_expire_time(status: &Status) -> bool {
    status.get_details_bad_request().is_some_and(|bad| bad.field_violations.iter().any(|v| v.field == "expireTime"))
}

#[cfg(test)]
mod tests {
    use fulfillment_errors::{ApiError, FieldViolation};

    use super::*;

    fn refused(error: ApiError) -> RefusalKind {
        Refusal::from_status(error.into_status("inventory.fulfillment")).kind
    }

    #[test]
    fn each_refusal_the_domain_acts_on_is_read_from_the_inventorys_answer() {
        let closed = |state: &str| {
            ApiError::failed_precondition(InventoryErrorReason::HoldClosed.reason(), "closed")
                .with_metadata("state", state)
        };
        assert_eq!(refused(closed("committed")), RefusalKind::Closed(ClosedHold::Committed));
        assert_eq!(refused(closed("released")), RefusalKind::Closed(ClosedHold::Released));
        assert_eq!(refused(closed("expired")), RefusalKind::Closed(ClosedHold::Expired));
        assert_eq!(refused(closed("held")), RefusalKind::Other);
        let not_owned = ApiError::failed_precondition(InventoryErrorReason::NotOwned.reason(), "not yours");
        assert_eq!(refused(not_owned), RefusalKind::NotOwned);
        let short = ApiError::failed_precondition(InventoryErrorReason::InsufficientInventory.reason(), "short");
        assert_eq!(refused(short), RefusalKind::Insufficient);
        assert_eq!(refused(ApiError::not_found("Hold", "h")), RefusalKind::NotFound);
        assert_eq!(refused(ApiError::already_exists("Hold", "h")), RefusalKind::Exists);
        let late = ApiError::bad_request(FieldViolation::invalid("expireTime", "passed"));
        assert_eq!(refused(late), RefusalKind::ExpiryPassed);
        let other_field = ApiError::bad_request(FieldViolation::invalid("lines", "bad"));
        assert_eq!(refused(other_field), RefusalKind::Other);
        // A reason under another code, or one the contract does not define, is nothing to act on.
        let odd = ApiError::new(fulfillment_errors::ErrorCode::Aborted, "busy").with_reason("not_owned");
        assert_eq!(refused(odd), RefusalKind::Other);
        let unknown = ApiError::failed_precondition("something_new", "new");
        assert_eq!(refused(unknown), RefusalKind::Other);
    }

    #[test]
    fn a_refusal_goes_to_the_caller_as_the_inventory_answered() {
        let status = ApiError::failed_precondition(InventoryErrorReason::InsufficientInventory.reason(), "short")
            .into_status("inventory.fulfillment");
        let ReservationError::Inventory(forwarded) = ReservationError::from(Refusal::from_status(status.clone()))
        else {
            panic!("an Inventory refusal");
        };
        assert_eq!(
            (forwarded.code(), forwarded.message(), forwarded.details()),
            (status.code(), status.message(), status.details())
        );
    }
}
