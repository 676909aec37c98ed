//! The Catalog's calls to the Inventory for the items its managed SKUs own. Every call says it
//! comes from the Catalog (the ownership guard lets only the Catalog change those items) and is
//! idempotent, so a saga may repeat any of them.

use std::time::Duration;

use fulfillment_proto::inventory::v1 as pb;
use fulfillment_proto::inventory::v1::InventoryErrorReason;
use fulfillment_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use fulfillment_server::Metrics;
use fulfillment_server::calls::{CallPolicy, Credentials, Outcome};
use tonic::Code;
use tonic::transport::Channel;

use crate::domain::Sku;

/// Attempts per call while the outcome stays unknown.
const ATTEMPTS: u32 = 3;

/// The attributes a managed SKU shares with its inventory item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemSpec {
    pub id: String,
    pub manufacturer_id: String,
    pub part_number: String,
    pub eccn: String,
    pub hs_code: String,
    pub country_of_origin: String,
    pub allow_oversell: bool,
}

impl ItemSpec {
    /// The item a SKU must have: some for a managed SKU, none otherwise.
    pub fn of(sku: &Sku) -> Option<Self> {
        let a = &sku.attributes;
        a.managed_fulfillment.as_ref()?;
        Some(Self {
            id: sku.id.clone(),
            manufacturer_id: a.manufacturer_id.clone().unwrap_or_default(),
            part_number: a.part_number.clone().unwrap_or_default(),
            eccn: a.eccn.clone().unwrap_or_default(),
            hs_code: a.hs_code.clone().unwrap_or_default(),
            country_of_origin: a.country_of_origin.clone().unwrap_or_default(),
            allow_oversell: a.allow_oversell.unwrap_or(false),
        })
    }

    /// Whether a stored item is this SKU's and carries these attributes.
    pub fn matches(&self, item: &pb::InventoryItem) -> bool {
        item.owner_sku_id == self.id
            && self.to_item()
                == pb::InventoryItem { created_time: None, updated_time: None, live_mode: false, ..item.clone() }
    }

    fn to_item(&self) -> pb::InventoryItem {
        pb::InventoryItem {
            id: self.id.clone(),
            manufacturer_id: self.manufacturer_id.clone(),
            part_number: self.part_number.clone(),
            eccn: self.eccn.clone(),
            hs_code: self.hs_code.clone(),
            country_of_origin: self.country_of_origin.clone(),
            allow_oversell: Some(self.allow_oversell),
            owner_sku_id: self.id.clone(),
            ..Default::default()
        }
    }
}

/// A client of the Inventory's item RPCs, speaking as the Catalog.
#[derive(Clone, Debug)]
pub struct InventoryItems {
    client: InventoryServiceClient<Channel>,
    calls: CallPolicy,
}

impl InventoryItems {
    /// A client of the Inventory on `channel`, calling with the Catalog's service key in the mode
    /// `credentials` name, waiting `timeout` for each attempt and counting retries in `metrics`.
    pub fn new(channel: Channel, timeout: Duration, metrics: &Metrics, credentials: Credentials) -> Self {
        let calls = CallPolicy::new(timeout, ATTEMPTS, metrics).with_credentials(credentials);
        Self { client: InventoryServiceClient::new(channel), calls }
    }

    /// Reads an item; `Done(None)` when it does not exist.
    pub async fn get(&self, id: &str) -> Outcome<Option<pb::InventoryItem>> {
        let message = pb::GetInventoryItemRequest { id: id.to_owned() };
        let outcome = self
            .calls
            .call(message, |request| {
                let mut client = self.client.clone();
                async move { client.get_inventory_item(request).await.map(|r| r.into_inner().inventory_item) }
            })
            .await;
        match outcome {
            Outcome::Refused(status) if status.code() == Code::NotFound => Outcome::Done(None),
            other => other,
        }
    }

    /// Makes the item what `desired` says: created or brought up to date for a managed SKU,
    /// deleted (if there was one, per `previous`) for an unmanaged one.
    pub async fn ensure(&self, desired: Option<&ItemSpec>, previous: Option<&ItemSpec>) -> Outcome<()> {
        match (desired, previous) {
            (Some(spec), _) => self.put(spec).await,
            (None, Some(previous)) => self.delete(&previous.id).await,
            (None, None) => Outcome::Done(()),
        }
    }

    /// Creates the item, or updates it if the SKU already owns one with other attributes.
    async fn put(&self, spec: &ItemSpec) -> Outcome<()> {
        let message = pb::CreateInventoryItemRequest { inventory_item: Some(spec.to_item()) };
        let created = self
            .calls
            .call(message, |request| {
                let mut client = self.client.clone();
                async move { client.create_inventory_item(request).await.map(drop) }
            })
            .await;
        let conflict = match created {
            Outcome::Refused(status) if status.code() == Code::AlreadyExists => status,
            other => return other,
        };
        match self.get(&spec.id).await {
            Outcome::Done(Some(item)) if item.owner_sku_id == spec.id => {}
            // An item the SKU does not own has the id: the Inventory's refusal stands.
            Outcome::Done(_) => return Outcome::Refused(conflict),
            Outcome::Refused(status) => return Outcome::Refused(status),
            Outcome::NotSent(status) => return Outcome::NotSent(status),
            Outcome::Unknown(status) => return Outcome::Unknown(status),
        }
        let paths = ["manufacturer_id", "part_number", "eccn", "hs_code", "country_of_origin", "allow_oversell"];
        let message = pb::UpdateInventoryItemRequest {
            inventory_item: Some(spec.to_item()),
            update_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
        };
        self.calls
            .call(message, |request| {
                let mut client = self.client.clone();
                async move { client.update_inventory_item(request).await.map(drop) }
            })
            .await
    }

    async fn delete(&self, id: &str) -> Outcome<()> {
        let message = pb::DeleteInventoryItemRequest { id: id.to_owned() };
        let outcome = self
            .calls
            .call(message, |request| {
                let mut client = self.client.clone();
                async move { client.delete_inventory_item(request).await.map(drop) }
            })
            .await;
        match outcome {
            // No item, or none of the SKU's (a client's item with the id is not ours to delete).
            Outcome::Refused(status) if status.code() == Code::NotFound || is_not_owned(&status) => Outcome::Done(()),
            other => other,
        }
    }

    /// One page of the Inventory's items after `token` (from the start when empty): the items a
    /// SKU owns, and the token of the next page (empty at the end).
    pub async fn owned_items_page(&self, token: &str, size: u64) -> Outcome<(Vec<pb::InventoryItem>, String)> {
        let message = pb::ListInventoryItemsRequest {
            page_size: i32::try_from(size).unwrap_or(100),
            page_token: token.to_owned(),
            ..Default::default()
        };
        self.list(message).await.map(|page| {
            let owned = page.inventory_items.into_iter().filter(|item| !item.owner_sku_id.is_empty()).collect();
            (owned, page.next_page_token)
        })
    }

    /// The items with these ids (at most a page of them), those the Inventory has.
    pub async fn items_with_ids(&self, ids: Vec<String>) -> Outcome<Vec<pb::InventoryItem>> {
        if ids.is_empty() {
            return Outcome::Done(Vec::new());
        }
        let size = i32::try_from(ids.len()).unwrap_or(100);
        let message = pb::ListInventoryItemsRequest { ids, page_size: size, ..Default::default() };
        self.list(message).await.map(|page| page.inventory_items)
    }

    async fn list(&self, message: pb::ListInventoryItemsRequest) -> Outcome<pb::ListInventoryItemsResponse> {
        self.calls
            .call(message, |request| {
                let mut client = self.client.clone();
                async move { client.list_inventory_items(request).await.map(|r| r.into_inner()) }
            })
            .await
    }
}

/// Whether the Inventory refused because the item is not the SKU's (a client's item has the id).
fn is_not_owned(status: &tonic::Status) -> bool {
    status.code() == Code::FailedPrecondition
        && InventoryErrorReason::of(status) == Some(InventoryErrorReason::NotOwned)
}
