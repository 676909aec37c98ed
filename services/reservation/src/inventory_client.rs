//! The Reservation service's calls to the Inventory: each with a deadline, retried while the
//! outcome is unknown (every hold call is idempotent by hold id), and classified for the caller.

use std::time::Duration;

use fulfillment_proto::inventory::v1 as pb;
use fulfillment_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

/// Attempts per call while the outcome stays unknown.
const ATTEMPTS: u32 = 3;

/// How an Inventory call ended.
#[derive(Debug)]
pub enum Outcome<T> {
    /// The Inventory did it.
    Done(T),
    /// The Inventory refused: its answer is final.
    Refused(Status),
    /// Nobody knows whether it happened: the call timed out or the Inventory was unreachable.
    Unknown(Status),
}

/// A client of the Inventory's hold RPCs.
#[derive(Clone, Debug)]
pub struct InventoryClient {
    client: InventoryServiceClient<Channel>,
    timeout: Duration,
}

impl InventoryClient {
    /// A client of the Inventory at `url` that connects on first use.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, tonic::transport::Error> {
        let channel = Endpoint::from_shared(url.to_owned())?.connect_timeout(timeout).connect_lazy();
        Ok(Self { client: InventoryServiceClient::new(channel), timeout })
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
        let mut last = Status::unavailable("the Inventory was not called");
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            let mut request = Request::new(message.clone());
            request.set_timeout(self.timeout);
            match send(self.client.clone(), request).await {
                Ok(Some(hold)) => return Outcome::Done(hold),
                Ok(None) => return Outcome::Refused(Status::internal("the Inventory answered without a hold")),
                Err(status) if outcome_unknown(&status) => last = status,
                Err(status) => return Outcome::Refused(status),
            }
        }
        Outcome::Unknown(last)
    }
}

/// Whether a failed call may or may not have taken effect.
fn outcome_unknown(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Unknown
            | Code::Aborted
            | Code::ResourceExhausted
    )
}

/// The state of a closed hold, when the Inventory refused because the hold is closed.
pub fn closed_hold_state(status: &Status) -> Option<String> {
    let info = status.get_details_error_info()?;
    (status.code() == Code::FailedPrecondition && info.reason == "hold_closed")
        .then(|| info.metadata.get("state").cloned())?
}
