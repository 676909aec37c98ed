//! The Reservation service's calls to the Inventory: each with a deadline, retried while the
//! outcome is unknown (every hold call is idempotent by hold id), and classified for the caller.

use std::time::Duration;

use fulfillment_proto::inventory::v1 as pb;
use fulfillment_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use fulfillment_server::Metrics;
pub use fulfillment_server::calls::Outcome;
use fulfillment_server::calls::{CallPolicy, Credentials};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

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

    /// Places (or finds again) the hold of a reservation.
    pub async fn place(&self, request: pb::PlaceHoldRequest) -> Outcome<pb::Hold> {
        self.call(request, |mut client, request| async move {
            client.place_hold(request).await.map(|r| r.into_inner().hold)
        })
        .await
    }

    /// Releases a hold.
    pub async fn release(&self, hold_id: &str) -> Outcome<pb::Hold> {
        let request = pb::ReleaseHoldRequest { hold_id: hold_id.to_owned() };
        self.call(request, |mut client, request| async move {
            client.release_hold(request).await.map(|r| r.into_inner().hold)
        })
        .await
    }

    /// Commits a hold.
    pub async fn commit(&self, hold_id: &str) -> Outcome<pb::Hold> {
        let request = pb::CommitHoldRequest { hold_id: hold_id.to_owned() };
        self.call(request, |mut client, request| async move {
            client.commit_hold(request).await.map(|r| r.into_inner().hold)
        })
        .await
    }

    /// Reads a hold.
    pub async fn get(&self, hold_id: &str) -> Outcome<pb::Hold> {
        let request = pb::GetHoldRequest { hold_id: hold_id.to_owned() };
        self.call(
            request,
            |mut client, request| async move { client.get_hold(request).await.map(|r| r.into_inner().hold) },
        )
        .await
    }

    async fn call<Req, F, Fut>(&self, message: Req, send: F) -> Outcome<pb::Hold>
    where
        Req: Clone,
        F: Fn(InventoryServiceClient<Channel>, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Option<pb::Hold>, Status>>,
    {
        let outcome = self.calls.call(message, |request| send(self.client.clone(), request)).await;
        match outcome {
            Outcome::Done(Some(hold)) => Outcome::Done(hold),
            Outcome::Done(None) => Outcome::Refused(Status::internal("the Inventory answered without a hold")),
            Outcome::Refused(status) => Outcome::Refused(status),
            Outcome::NotSent(status) => Outcome::NotSent(status),
            Outcome::Unknown(status) => Outcome::Unknown(status),
        }
    }
}

/// The state of a closed hold, when the Inventory refused because the hold is closed.
pub fn closed_hold_state(status: &Status) -> Option<String> {
    let info = status.get_details_error_info()?;
    (status.code() == Code::FailedPrecondition && info.reason == "hold_closed")
        .then(|| info.metadata.get("state").cloned())?
}

/// Whether the Inventory refused a hold for want of stock.
pub fn is_insufficient_inventory(status: &Status) -> bool {
    status.code() == Code::FailedPrecondition
        && status.get_details_error_info().is_some_and(|info| info.reason == "insufficient_inventory")
}

/// Whether the Inventory refused because the hold is not the Reservation service's to close: a
/// client placed a hold with the reservation's id.
pub fn is_not_owned(status: &Status) -> bool {
    status.code() == Code::FailedPrecondition
        && status.get_details_error_info().is_some_and(|info| info.reason == "not_owned")
}

/// Whether the Inventory refused a hold because its expiry time had passed when it came to place
/// it: the reservation expired on the way, which no input of the caller's could have caused.
pub fn is_expiry_passed(status: &Status) -> bool {
    status.code() == Code::InvalidArgument
        && status
            .get_details_bad_request()
            .is_some_and(|bad| bad.field_violations.iter().any(|v| v.field == "expireTime"))
}
