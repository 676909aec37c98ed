//! Group commit for holds. When a sale sends many reservations at one item, one transaction per
//! hold queues every hold behind the previous one's commit on the same rows. Here concurrent holds
//! wait in a lane and the lane places all that are waiting in one transaction: each hold is still
//! decided on its own, in arrival order, against the stock the earlier ones left, and each caller
//! gets its own answer. The lane of a hold is chosen by its first item, so holds on a hot item
//! always meet in the same lane.
//!
//! A batch takes every lock it needs before it places anything, in the order a single hold takes
//! them, so lanes, replicas and deletes never wait on each other in a circle. If a batch fails as a
//! whole (the database, a lost race to insert the same hold id), each of its callers places its
//! hold again in a transaction of its own. The batch's statements are traced under the first
//! caller's span, linked to the others'.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use chrono::{DateTime, Utc};
use fulfillment_storage::{Database, retry_lost_insert};
use opentelemetry::metrics::Histogram;
use opentelemetry::trace::TraceContextExt;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::InventoryError;
use crate::domain::{HoldLine, HoldRequest};
use crate::hold_placement::{Placed, place_holds};

/// How many lanes place holds side by side.
const LANES: usize = 4;
/// Holds waiting in one lane; beyond that a hold is placed on its own rather than queued.
const QUEUE: usize = 1024;

struct Job {
    request: HoldRequest,
    lines: Vec<HoldLine>,
    /// When the caller asked, by the Inventory's clock.
    time: DateTime<Utc>,
    /// The caller's span: the batch's statements belong to its trace.
    span: tracing::Span,
    /// `None` asks the caller to place the hold on its own.
    reply: oneshot::Sender<Option<Placed>>,
}

/// The lanes that place holds in batches.
#[derive(Clone, Debug)]
pub(crate) struct HoldBatches {
    lanes: Vec<mpsc::Sender<Job>>,
}

impl HoldBatches {
    /// Starts the lanes over `db`, each placing up to `max_batch` holds per transaction; they stop
    /// when the last clone of this is dropped. Each batch's size is recorded in `sizes`.
    pub(crate) fn start(db: Database, sizes: Histogram<u64>, max_batch: usize) -> Self {
        let lanes = (0..LANES)
            .map(|_| {
                let (sender, receiver) = mpsc::channel(QUEUE);
                tokio::spawn(run_lane(db.clone(), receiver, sizes.clone(), max_batch.max(1)));
                sender
            })
            .collect();
        Self { lanes }
    }

    /// Places a hold in the next batch of its lane; `None` when the caller should place it on its
    /// own: the lane is full or gone, or the batch failed as a whole.
    pub(crate) async fn place(
        &self,
        request: HoldRequest,
        lines: Vec<HoldLine>,
        time: DateTime<Utc>,
    ) -> Option<Placed> {
        let first_item = lines.iter().map(|line| line.inventory_item_id.as_str()).min().unwrap_or_default();
        let lane = BuildHasherDefault::<DefaultHasher>::default().hash_one(first_item) as usize % self.lanes.len();
        let (reply, answer) = oneshot::channel();
        let job = Job { request, lines, time, span: tracing::Span::current(), reply };
        self.lanes[lane].try_send(job).ok()?;
        answer.await.ok().flatten()
    }
}

async fn run_lane(db: Database, mut jobs: mpsc::Receiver<Job>, sizes: Histogram<u64>, max_batch: usize) {
    while let Some(first) = jobs.recv().await {
        // Whatever queued up while the last batch committed goes into this one; callers that have
        // gone (cancelled, past their deadline) are left out, as their own transaction would be.
        let mut batch: Vec<Job> = std::iter::once(first).filter(|job| !job.reply.is_closed()).collect();
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) if job.reply.is_closed() => {}
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        sizes.record(batch.len() as u64, &[]);
        // A task of its own: a panic loses this batch's answers (its callers then place their
        // holds on their own), never the lane.
        let _ = tokio::spawn(run_batch(db.clone(), batch)).await;
    }
}

/// Places a batch of holds in one transaction. A hold id inserted by another transaction meanwhile
/// fails the insert of the whole batch; once more, the batch reads that hold and answers it as a
/// repeat or a conflict, so one caller's id does not send every other hold of the batch back to be
/// placed alone.
async fn place_batch(
    db: &Database,
    inputs: &[(HoldRequest, Vec<HoldLine>)],
    time: DateTime<Utc>,
) -> Result<Vec<Placed>, InventoryError> {
    retry_lost_insert(|| {
        db.write(|txn| {
            let inputs = inputs.to_vec();
            Box::pin(async move { place_holds(txn, &inputs, time).await })
        })
    })
    .await
}

async fn run_batch(db: Database, batch: Vec<Job>) {
    let span = tracing::info_span!(parent: &batch[0].span, "hold batch", holds = batch.len());
    for job in &batch[1..] {
        span.add_link(job.span.context().span().span_context().clone());
    }
    let inputs: Vec<(HoldRequest, Vec<HoldLine>)> =
        batch.iter().map(|job| (job.request.clone(), job.lines.clone())).collect();
    // The batch is decided at the time of its latest caller, so no hold is judged before it was asked.
    let time = batch.iter().map(|job| job.time).max().unwrap_or_default();
    let placed = place_batch(&db, &inputs, time).instrument(span).await;
    match placed {
        Ok(answers) => {
            for (job, answer) in batch.into_iter().zip(answers) {
                let _ = job.reply.send(Some(answer));
            }
        }
        // The transaction itself failed: every hold goes again on its own.
        Err(error) => {
            tracing::debug!(%error, holds = batch.len(), "a batch of holds failed; each is placed on its own");
            for job in batch {
                let _ = job.reply.send(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};
    use fulfillment_reference::ReferenceData;
    use fulfillment_storage::testing::{TestDatabase, postgres_url};
    use fulfillment_storage::{Backend, PoolConfig};
    use sea_orm::{ConnectionTrait, EntityTrait, IntoActiveModel, TransactionTrait};

    use super::*;
    use crate::domain::{HoldState, StockChange};
    use crate::entity::hold;
    use crate::items::ItemFields;
    use crate::stock::StockChangeRequest;
    use crate::warehouses::WarehouseFields;
    use crate::{Caller, Inventory, InventoryMetrics, Migrator};

    fn request(hold_id: &str, quantity: i64) -> (HoldRequest, Vec<HoldLine>) {
        let lines = vec![HoldLine { inventory_item_id: "i".into(), quantity, allow_oversell: None }];
        let request = HoldRequest {
            hold_id: hold_id.into(),
            lines: lines.clone(),
            ship_to_country: "US".into(),
            expire_time: Some(Utc::now() + Duration::minutes(10)),
            placed_by: Caller::Reservation,
        };
        (request, lines)
    }

    /// Only PostgreSQL lets two writers race to insert one hold id: SQLite's writers take turns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(postgres_tests), ignore = "TEST_DATABASE_URL is not set")]
    async fn a_hold_id_inserted_meanwhile_fails_only_its_own_caller() {
        assert!(postgres_url().is_some(), "TEST_DATABASE_URL is not set: this PostgreSQL test cannot run");
        let database = TestDatabase::create(Backend::Postgres).await.expect("a test database");
        let db = Database::connect(database.url(), PoolConfig::default()).await.expect("connect");
        fulfillment_storage::migrate::<Migrator>(&db).await.expect("migrate");
        let metrics = InventoryMetrics::new(&fulfillment_server::Metrics::new("inventory", None));
        let inventory = Inventory::new(db.clone(), ReferenceData::default(), metrics);
        inventory.create_item(Some("i".into()), ItemFields::default(), None, Caller::Client).await.expect("item");
        let fields = WarehouseFields {
            name: Some("w".into()),
            country: Some("US".into()),
            ships_everywhere: Some(true),
            ..Default::default()
        };
        inventory.create_warehouse(Some("w".into()), fields).await.expect("warehouse");
        let receive = StockChangeRequest {
            inventory_item_id: "i".into(),
            warehouse_id: "w".into(),
            change: StockChange::Receive,
            quantity: 10,
            reason: "test".into(),
            idempotency_key: "r".into(),
        };
        inventory.change_stock(receive).await.expect("stock");

        // Another writer inserts hold "taken" and keeps its transaction open: the batch does not see
        // it, and its insert of the same id waits on it.
        let other = db.connection().begin().await.expect("begin");
        let now = Utc::now();
        let taken = hold::Model {
            id: "taken".into(),
            state: HoldState::Held,
            ship_to_country: "US".into(),
            lines: "[]".into(),
            expire_time: now + Duration::minutes(10),
            created_time: now,
            updated_time: now,
            placed_by: Some(Caller::Client),
        };
        hold::Entity::insert(taken.into_active_model()).exec_without_returning(&other).await.expect("insert");

        let inputs = vec![request("taken", 1), request("free", 2)];
        let batch = tokio::spawn({
            let db = db.clone();
            async move { place_batch(&db, &inputs, fulfillment_storage::paging::now()).await }
        });
        let waiting = "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while db
            .connection()
            .query_one_raw(sea_orm::Statement::from_string(db.connection().get_database_backend(), waiting))
            .await
            .expect("pg_stat_activity")
            .is_none()
        {
            assert!(tokio::time::Instant::now() < deadline, "the batch never waited on the other insert");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        other.commit().await.expect("commit");

        let answers = batch.await.expect("the batch ran").expect("the batch is answered, not failed as a whole");
        assert!(matches!(&answers[0], Err(InventoryError::HoldExists(id)) if id == "taken"), "{:?}", answers[0]);
        let (free, placed) = answers[1].as_ref().expect("the other hold is placed");
        assert!(*placed);
        assert_eq!(free.allocations.iter().map(|a| a.quantity).sum::<i64>(), 2);
    }
}
