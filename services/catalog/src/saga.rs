//! The saga that keeps a managed SKU and its inventory item in step (docs/architecture.md, "The saga").
//!
//! A change that affects the item is written to the Catalog's database together with a saga
//! record (the SKU before and after) in one transaction; then the Inventory is called; then the
//! saga is closed. If the Inventory refuses, or the call never reached it, the SKU is put back as
//! it was. If the outcome is unknown, the saga stays open under a claim; when the claim lapses the
//! recovery sweep reads the item and either closes the saga (the item is as desired) or compensates
//! (the item and the SKU are put back). While a saga is open, other writes to the SKU are refused
//! with ABORTED, so compensation never undoes a later change.
//!
//! The driver is a type of its own, [`Sagas`], that the `Catalog` holds: the SKU operations open
//! and settle sagas through it, and it knows nothing of them, so imports point one way.

use std::time::Duration;

use fulfillment_server::calls::Outcome;
use fulfillment_storage::{Clock, Database};
use sea_orm::ConnectionTrait;

use crate::domain::Sku;
use crate::error::CatalogError;
use crate::inventory_client::{InventoryItems, ItemSpec};
use crate::metrics::{CatalogMetrics, SagaOutcome};
use crate::store::{self, Saga};

/// How many lapsed sagas one recovery run resolves, one claim at a time so that each is worked on
/// while its claim is fresh.
const RECOVERY_BATCH: usize = 16;

/// Opens, drives, closes and recovers the sagas of one database.
///
/// Cloning is cheap: transaction bodies own a clone, since they may run more than once.
#[derive(Clone, Debug)]
pub(crate) struct Sagas {
    db: Database,
    items: InventoryItems,
    /// How long a saga's driver owns it before recovery may take over.
    lease: chrono::Duration,
    metrics: CatalogMetrics,
    /// Where leases read the time.
    clock: Clock,
}

impl Sagas {
    /// The driver of the sagas in `db`, changing items through `items` and claiming each saga for
    /// `lease`.
    pub(crate) fn new(db: Database, items: InventoryItems, lease: Duration, metrics: CatalogMetrics) -> Self {
        let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30));
        Self { db, items, lease, metrics, clock: Clock::system() }
    }

    /// The same driver reading the time from `clock`.
    pub(crate) fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same driver over the store of test-mode SKUs, setting that store's gauges.
    pub(crate) fn for_test_mode(mut self) -> Self {
        self.metrics = self.metrics.in_mode(false);
        self
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
        if store::saga_is_open(txn, &sku_id).await? {
            return Err(CatalogError::Busy(sku_id));
        }
        if previous.and_then(ItemSpec::of) == desired.and_then(ItemSpec::of) {
            return Ok(None);
        }
        Ok(Some(store::insert_saga(txn, sku_id, previous, desired, self.lease, self.clock.now()).await?))
    }

    /// Drives the saga a write opened, if any.
    pub(crate) async fn settle(&self, saga: Option<Saga>) -> Result<(), CatalogError> {
        match saga {
            Some(saga) => self.drive(saga).await,
            None => Ok(()),
        }
    }

    /// Calls the Inventory for a saga just opened, and closes it or puts the SKU back.
    async fn drive(&self, saga: Saga) -> Result<(), CatalogError> {
        fulfillment_server::fault::point("CATALOG_FAULT_POINT", "after_saga_record");
        let (previous, desired) = specs(&saga);
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
                    if !store::close_saga(txn, &saga).await? {
                        return Err(CatalogError::TakenOver(saga.sku_id.clone()));
                    }
                    if saga.desired.is_none() {
                        store::delete_sku(txn, &saga.sku_id).await?;
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
                    if !store::close_saga(txn, &saga).await? {
                        return Err(CatalogError::TakenOver(saga.sku_id.clone()));
                    }
                    match (&saga.previous, store::find_sku(txn, &saga.sku_id, true).await?) {
                        (None, Some(_)) => {
                            store::delete_sku(txn, &saga.sku_id).await?;
                        }
                        (Some(previous), Some(_)) => store::update_sku(txn, previous).await?,
                        (Some(previous), None) => store::insert_sku(txn, previous).await?,
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
    pub(crate) async fn recover_sagas(&self) -> Result<usize, CatalogError> {
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
        let (lease, now) = (self.lease, self.clock.now());
        self.db
            .write(|txn| {
                Box::pin(async move { store::claim_lapsed_saga(txn, lease, now).await.map_err(CatalogError::from) })
            })
            .await
    }

    /// Closes or compensates one lapsed saga; `false` when the Inventory could not be asked.
    async fn resolve(&self, saga: &Saga) -> Result<bool, CatalogError> {
        let (previous, desired) = specs(saga);
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
}

/// The item the SKU had before the saga, and the one it must have after.
fn specs(saga: &Saga) -> (Option<ItemSpec>, Option<ItemSpec>) {
    (saga.previous.as_ref().and_then(ItemSpec::of), saga.desired.as_ref().and_then(ItemSpec::of))
}
