//! The saga that keeps a managed SKU and its inventory item in step (docs/architecture.md, "The saga").
//!
//! A change that affects the item is written to the Catalog's database together with a saga
//! record (the SKU before and after) in one transaction; then the Inventory is called; then the
//! saga is closed. If the Inventory refuses, or the call never reached it, the SKU is put back as
//! it was. If the outcome is unknown, the saga stays open under a claim; when the claim lapses the
//! recovery sweep reads the item and either closes the saga (the item is as desired) or compensates
//! (the item and the SKU are put back). While a saga is open, other writes to the SKU are refused
//! with ABORTED, so compensation never undoes a later change.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use fulfillment_errors::FieldViolation;
use fulfillment_proto::inventory::v1 as inventory;
use fulfillment_reference::generate_id;
use fulfillment_server::calls::Outcome;
use fulfillment_storage::paging::{Cursor, now};
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use tokio::sync::watch;

use crate::catalog::Catalog;
use crate::entity::sku_saga;
use crate::error::CatalogError;
use crate::inventory_items::ItemSpec;
use crate::metrics::SagaOutcome;
use crate::repository;
use crate::sku::Sku;

/// A saga this worker is driving.
#[derive(Clone, Debug)]
pub(crate) struct Saga {
    pub(crate) sku_id: String,
    pub(crate) previous: Option<Sku>,
    pub(crate) desired: Option<Sku>,
    claim_token: String,
}

/// What the consistency check found wrong with a pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inconsistency {
    /// A managed SKU has no inventory item.
    MissingItem(String),
    /// A managed SKU's item differs in a shared attribute.
    ItemDiffers(String),
    /// An item owned by a SKU that is gone or no longer managed.
    OrphanItem(String),
    /// A saga that has not finished (only a problem if it stays).
    OpenSaga(String),
}

/// How many lapsed sagas one recovery run resolves, one claim at a time so that each is worked on
/// while its claim is fresh.
const RECOVERY_BATCH: usize = 16;

fn to_json(sku: Option<&Sku>) -> Result<Option<String>, DbErr> {
    sku.map(|s| serde_json::to_string(s).map_err(|e| DbErr::Json(e.to_string()))).transpose()
}

fn from_json(json: Option<&str>) -> Result<Option<Sku>, DbErr> {
    json.map(|j| serde_json::from_str(j).map_err(|e| DbErr::Json(e.to_string()))).transpose()
}

impl Saga {
    fn from_row(row: sku_saga::Model) -> Result<Self, DbErr> {
        Ok(Self {
            previous: from_json(row.previous.as_deref())?,
            desired: from_json(row.desired.as_deref())?,
            sku_id: row.sku_id,
            claim_token: row.claim_token,
        })
    }

    fn specs(&self) -> (Option<ItemSpec>, Option<ItemSpec>) {
        (self.previous.as_ref().and_then(ItemSpec::of), self.desired.as_ref().and_then(ItemSpec::of))
    }
}

impl Catalog {
    fn lease_end(&self) -> chrono::DateTime<chrono::Utc> {
        now() + chrono::Duration::from_std(self.saga_lease).unwrap_or(chrono::Duration::seconds(30))
    }

    /// Inside a write transaction on the SKU: refuses while a saga is open for it, and opens one
    /// when the change touches its inventory item.
    pub(crate) async fn open_saga(
        &self,
        txn: &impl ConnectionTrait,
        previous: Option<&Sku>,
        desired: Option<&Sku>,
    ) -> Result<Option<Saga>, CatalogError> {
        let Some(sku_id) = previous.or(desired).map(|s| s.id.clone()) else { return Ok(None) };
        if sku_saga::Entity::find_by_id(sku_id.clone()).lock_exclusive().one(txn).await?.is_some() {
            return Err(CatalogError::Busy(sku_id));
        }
        if previous.and_then(ItemSpec::of) == desired.and_then(ItemSpec::of) {
            return Ok(None);
        }
        let row = sku_saga::Model {
            sku_id: sku_id.clone(),
            previous: to_json(previous)?,
            desired: to_json(desired)?,
            claim_token: generate_id("claim"),
            claimed_until: self.lease_end(),
            created_time: now(),
        };
        sku_saga::Entity::insert(row.clone().into_active_model()).exec_without_returning(txn).await?;
        Ok(Some(Saga::from_row(row)?))
    }

    /// Calls the Inventory for a saga just opened, and closes it or puts the SKU back.
    pub(crate) async fn drive(&self, saga: Saga) -> Result<(), CatalogError> {
        fulfillment_server::fault::point("CATALOG_FAULT_POINT", "after_saga_record");
        let (previous, desired) = saga.specs();
        match self.items.ensure(desired.as_ref(), previous.as_ref()).await {
            Outcome::Done(()) => {
                fulfillment_server::fault::point("CATALOG_FAULT_POINT", "after_item");
                self.finish(&saga).await
            }
            Outcome::Refused(status) => {
                self.undo(&saga).await?;
                Err(CatalogError::Inventory(status))
            }
            Outcome::NotSent(status) => {
                self.undo(&saga).await?;
                Err(CatalogError::InventoryUnavailable(status))
            }
            Outcome::Unknown(status) => {
                self.metrics.saga(SagaOutcome::Unresolved);
                Err(CatalogError::InventoryUnavailable(status))
            }
        }
    }

    /// Closes a saga whose item is as desired; a delete's SKU goes now, after its item.
    async fn finish(&self, saga: &Saga) -> Result<(), CatalogError> {
        let saga = saga.clone();
        self.db
            .write(|txn| {
                let saga = saga.clone();
                Box::pin(async move {
                    if !close(txn, &saga).await? {
                        return Err(CatalogError::TakenOver(saga.sku_id.clone()));
                    }
                    if saga.desired.is_none() {
                        repository::delete_sku(txn, &saga.sku_id).await?;
                    }
                    Ok::<_, CatalogError>(())
                })
            })
            .await?;
        self.metrics.saga(SagaOutcome::Completed);
        Ok(())
    }

    /// Puts the SKU back as it was before the saga and closes it.
    async fn undo(&self, saga: &Saga) -> Result<(), CatalogError> {
        let saga = saga.clone();
        self.db
            .write(|txn| {
                let saga = saga.clone();
                Box::pin(async move {
                    if !close(txn, &saga).await? {
                        return Err(CatalogError::TakenOver(saga.sku_id.clone()));
                    }
                    match (&saga.previous, repository::find_sku(txn, &saga.sku_id, true).await?) {
                        (None, Some(_)) => {
                            repository::delete_sku(txn, &saga.sku_id).await?;
                        }
                        (Some(previous), Some(_)) => repository::update_sku(txn, previous).await?,
                        (Some(previous), None) => repository::insert_sku(txn, previous).await?,
                        (None, None) => {}
                    }
                    Ok::<_, CatalogError>(())
                })
            })
            .await?;
        self.metrics.saga(SagaOutcome::Compensated);
        Ok(())
    }

    /// Resolves every saga whose claim lapsed (a crash, or an Inventory that did not answer):
    /// closed where the item is as desired, compensated otherwise. Returns how many it resolved.
    pub async fn recover_sagas(&self) -> Result<usize, CatalogError> {
        let mut resolved = 0;
        for _ in 0..RECOVERY_BATCH {
            let Some(saga) = self.claim_lapsed().await? else { break };
            match self.resolve(&saga).await {
                Ok(true) => resolved += 1,
                Ok(false) => {}
                Err(error) => tracing::warn!(sku = %saga.sku_id, %error, "saga left for a later recovery"),
            }
        }
        Ok(resolved)
    }

    /// Claims one saga whose claim lapsed, if any, skipping those other replicas hold.
    async fn claim_lapsed(&self) -> Result<Option<Saga>, CatalogError> {
        let this = self.clone();
        self.db
            .write(|txn| {
                let this = this.clone();
                Box::pin(async move {
                    let row = sku_saga::Entity::find()
                        .filter(sku_saga::Column::ClaimedUntil.lte(now()))
                        .order_by_asc(sku_saga::Column::ClaimedUntil)
                        .limit(1)
                        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                        .one(txn)
                        .await?;
                    let Some(mut row) = row else { return Ok(None) };
                    row.claim_token = generate_id("claim");
                    row.claimed_until = this.lease_end();
                    row.clone().into_active_model().reset_all().update(txn).await?;
                    Ok::<_, CatalogError>(Some(Saga::from_row(row)?))
                })
            })
            .await
    }

    /// Closes or compensates one lapsed saga; `false` when the Inventory could not be asked.
    async fn resolve(&self, saga: &Saga) -> Result<bool, CatalogError> {
        let (previous, desired) = saga.specs();
        let item = match self.items.get(&saga.sku_id).await {
            Outcome::Done(item) => item,
            Outcome::Refused(status) | Outcome::NotSent(status) | Outcome::Unknown(status) => {
                tracing::info!(sku = %saga.sku_id, code = ?status.code(), "inventory not reachable for saga recovery");
                return Ok(false);
            }
        };
        let forward_done = match (&desired, &item) {
            (Some(spec), Some(item)) => spec.matches(item),
            (None, None) => true,
            (None, Some(item)) => item.owner_sku_id != saga.sku_id,
            (Some(_), None) => false,
        };
        if forward_done {
            self.finish(saga).await?;
            return Ok(true);
        }
        match self.items.ensure(previous.as_ref(), desired.as_ref()).await {
            Outcome::Done(()) => {
                self.undo(saga).await?;
                Ok(true)
            }
            Outcome::Refused(status) => {
                // Not counted: it is tried again every lease, and `catalog_sagas_open` shows it.
                tracing::error!(sku = %saga.sku_id, %status, "the Inventory refuses to compensate a saga");
                Ok(false)
            }
            Outcome::NotSent(_) | Outcome::Unknown(_) => Ok(false),
        }
    }

    /// Runs saga recovery every `interval` until told to stop; the first run is at once, so a
    /// restart resolves what a crash left.
    pub async fn run_saga_recovery(self, interval: Duration, mut stop: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            match self.recover_sagas().await {
                Ok(0) => {}
                Ok(resolved) => tracing::info!(resolved, "resolved unfinished sagas"),
                Err(error) => tracing::warn!(%error, "saga recovery failed; retrying at the next tick"),
            }
            match sku_saga::Entity::find().count(self.db.connection()).await {
                Ok(open) => self.metrics.set_open(open),
                Err(error) => tracing::warn!(%error, "cannot count the open sagas"),
            }
        }
    }

    /// Compares one page of managed SKUs with their items, then, once the SKUs are done, one page
    /// of owned items with their SKUs, going on from `token` (from the start when empty). Answers
    /// what it found and the token of the next page, empty when the check is complete: a call costs
    /// at most a page of each, however many SKUs and items there are.
    pub async fn check_consistency(
        &self,
        size: u64,
        token: &str,
    ) -> Result<(Vec<Inconsistency>, String), CatalogError> {
        let mut found = Vec::new();
        let mut looked_at: Vec<String> = Vec::new();
        let mut next = String::new();
        let mut from = CheckFrom::decode(token)?;
        let open_before = self.open_sagas().await?;
        if let CheckFrom::Skus(cursor) = &from {
            let skus = repository::list_skus(self.db.connection(), &Default::default(), cursor.as_ref(), size).await?;
            let managed: Vec<(&Sku, ItemSpec)> =
                skus.iter().filter_map(|sku| ItemSpec::of(sku).map(|spec| (sku, spec))).collect();
            let ids = managed.iter().map(|(sku, _)| sku.id.clone()).collect();
            let items = settled(self.items.items_with_ids(ids).await)?;
            let owned: HashMap<&str, &inventory::InventoryItem> = items
                .iter()
                .filter(|item| !item.owner_sku_id.is_empty())
                .map(|item| (item.id.as_str(), item))
                .collect();
            for (sku, spec) in &managed {
                match owned.get(sku.id.as_str()) {
                    None => found.push(Inconsistency::MissingItem(sku.id.clone())),
                    Some(item) if !spec.matches(item) => found.push(Inconsistency::ItemDiffers(sku.id.clone())),
                    Some(_) => {}
                }
            }
            looked_at.extend(skus.iter().map(|sku| sku.id.clone()));
            match skus.last() {
                Some(last) if skus.len() as u64 == size => {
                    next = format!("s:{}", Cursor::after(last.created_time, &last.id).encode());
                }
                _ => from = CheckFrom::Items(String::new()),
            }
        }
        if let CheckFrom::Items(token) = &from {
            let (owned, next_items) = settled(self.items.owned_items_page(token, size).await)?;
            let ids: Vec<String> = owned.iter().map(|item| item.id.clone()).collect();
            let filter = repository::SkuFilter { ids: ids.clone(), ..Default::default() };
            let skus = repository::list_skus(self.db.connection(), &filter, None, size).await?;
            let managed: HashSet<&str> =
                skus.iter().filter(|sku| ItemSpec::of(sku).is_some()).map(|sku| sku.id.as_str()).collect();
            found
                .extend(ids.iter().filter(|id| !managed.contains(id.as_str())).cloned().map(Inconsistency::OrphanItem));
            looked_at.extend(ids);
            if !next_items.is_empty() {
                next = format!("i:{next_items}");
            }
        }
        // A pair with a saga open before or after the reads is in flight, not inconsistent.
        let looked_at: HashSet<String> = looked_at.into_iter().collect();
        let open: BTreeSet<String> =
            open_before.into_iter().chain(self.open_sagas().await?).filter(|id| looked_at.contains(id)).collect();
        found.retain(|finding| match finding {
            Inconsistency::MissingItem(id) | Inconsistency::ItemDiffers(id) | Inconsistency::OrphanItem(id) => {
                !open.contains(id)
            }
            Inconsistency::OpenSaga(_) => true,
        });
        found.extend(open.into_iter().map(Inconsistency::OpenSaga));
        Ok((found, next))
    }

    /// The SKUs whose sagas are open: as many as calls in flight and crashed drivers left, never
    /// the whole catalog.
    async fn open_sagas(&self) -> Result<Vec<String>, CatalogError> {
        Ok(sku_saga::Entity::find()
            .select_only()
            .column(sku_saga::Column::SkuId)
            .into_tuple()
            .all(self.db.connection())
            .await?)
    }
}

/// Deletes the saga row if this worker still holds its claim; tells whether it did.
async fn close(txn: &impl ConnectionTrait, saga: &Saga) -> Result<bool, DbErr> {
    let deleted = sku_saga::Entity::delete_many()
        .filter(sku_saga::Column::SkuId.eq(saga.sku_id.clone()))
        .filter(sku_saga::Column::ClaimToken.eq(saga.claim_token.clone()))
        .exec(txn)
        .await?;
    Ok(deleted.rows_affected > 0)
}

/// Where a paged consistency check goes on: among the SKUs after a cursor, or among the
/// Inventory's items after its page token.
enum CheckFrom {
    Skus(Option<Cursor>),
    Items(String),
}

impl CheckFrom {
    fn decode(token: &str) -> Result<Self, CatalogError> {
        let refused = || CatalogError::invalid(FieldViolation::not_valid("pageToken", token, "page token"));
        if token.is_empty() {
            return Ok(CheckFrom::Skus(None));
        }
        match token.split_once(':') {
            Some(("s", cursor)) => Ok(CheckFrom::Skus(Cursor::decode(cursor).map_err(|_| refused())?)),
            Some(("i", items)) if !items.is_empty() => Ok(CheckFrom::Items(items.to_owned())),
            _ => Err(refused()),
        }
    }
}

/// What a read from the Inventory found, or the error its failure is.
fn settled<T>(outcome: Outcome<T>) -> Result<T, CatalogError> {
    match outcome {
        Outcome::Done(value) => Ok(value),
        Outcome::Refused(status) => Err(CatalogError::Inventory(status)),
        Outcome::NotSent(status) | Outcome::Unknown(status) => Err(CatalogError::InventoryUnavailable(status)),
    }
}
