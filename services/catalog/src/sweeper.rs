//! The Catalog's background work (docs/architecture.md, "Background work"): saga recovery, started
//! by `lib.rs` once per store. Replicas share it by claiming one lapsed saga at a time with
//! `FOR UPDATE SKIP LOCKED`, so the loop needs no leader.

use std::time::Duration;

use fulfillment_server::background::every;
use tokio::sync::watch;

use crate::catalog::Catalog;
use crate::error::CatalogError;
use crate::store;

impl Catalog {
    /// Resolves every saga whose claim lapsed (a crash, or an Inventory that did not answer):
    /// closed where the item is as desired, compensated otherwise. Returns how many it resolved.
    pub async fn recover_sagas(&self) -> Result<usize, CatalogError> {
        self.sagas.recover_sagas().await
    }

    /// Runs saga recovery every `interval` until told to stop; the first run is at once, so a
    /// restart resolves what a crash left.
    pub async fn run_saga_recovery(self, interval: Duration, stop: watch::Receiver<bool>) {
        every(interval, stop, || async {
            match self.recover_sagas().await {
                Ok(0) => {}
                Ok(resolved) => tracing::info!(resolved, "resolved unfinished sagas"),
                Err(error) => tracing::warn!(%error, "saga recovery failed; retrying at the next tick"),
            }
            match store::count_sagas(self.db.connection()).await {
                Ok(open) => self.metrics.set_open(open),
                Err(error) => tracing::warn!(%error, "cannot count the open sagas"),
            }
        })
        .await
    }
}
