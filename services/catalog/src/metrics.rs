//! The Catalog's own figures, beside the per-call ones every server records. Retried calls to the
//! Inventory, saga steps among them, are `rpc.client.retries`.

use fulfillment_server::Metrics;
use fulfillment_server::metrics::Level;
use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;

/// What became of a saga, as counted by `catalog.saga.outcomes`. Every saga ends once, completed or
/// compensated, by its driver or by recovery; a driver that could not learn the outcome also counts
/// it unresolved before recovery ends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SagaOutcome {
    /// The item is as the SKU says and the saga is closed.
    Completed,
    /// The SKU was put back as it was before, and the item with it.
    Compensated,
    /// The Inventory's answer never came: the saga is left to recovery.
    Unresolved,
}

/// The Catalog's instruments.
#[derive(Clone, Debug)]
pub struct CatalogMetrics {
    sagas: Counter<u64>,
    open: Level,
}

impl CatalogMetrics {
    /// Creates the instruments in `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        let meter = metrics.meter();
        let open = metrics.level("catalog.sagas.open", "Sagas not yet closed, as last counted by saga recovery");
        Self {
            sagas: meter
                .u64_counter("catalog.saga.outcomes")
                .with_description("Saga attempts by how they ended")
                .build(),
            open,
        }
    }

    /// The same instruments, setting the gauges of the live store or of the test store.
    pub fn in_mode(&self, live_mode: bool) -> Self {
        Self { open: self.open.in_mode(live_mode), ..self.clone() }
    }

    /// Counts a saga attempt's end.
    pub fn saga(&self, outcome: SagaOutcome) {
        let outcome = match outcome {
            SagaOutcome::Completed => "completed",
            SagaOutcome::Compensated => "compensated",
            SagaOutcome::Unresolved => "unresolved",
        };
        self.sagas.add(1, &[KeyValue::new("outcome", outcome)]);
    }

    /// Sets how many sagas are open now.
    pub fn set_open(&self, count: u64) {
        self.open.set(count);
    }
}
