//! Group commit for holds. When a sale sends many reservations at one item, one transaction per
//! hold queues every hold behind the previous one's commit on the same rows. Here concurrent holds
//! wait in a lane and the lane places all that are waiting in one transaction: each hold is still
//! decided on its own, in arrival order, against the stock the earlier ones left, and each caller
//! gets its own answer. The lane of a hold is chosen by its first item, so holds on a hot item
//! always meet in the same lane.
//!
//! A batch locks every stock level it will touch first, in one global order, so lanes (and other
//! replicas) never deadlock. If a batch fails as a whole (the database, a lost race to insert the
//! same hold id), each of its holds is placed again in a transaction of its own.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use fulfillment_storage::Database;
use opentelemetry::metrics::Histogram;
use tokio::sync::{mpsc, oneshot};

use crate::InventoryError;
use crate::holds::{Hold, HoldLine, HoldRequest, lock_levels, place_alone, place_in};

/// How many lanes place holds side by side.
const LANES: usize = 4;
/// The most holds one transaction places.
const MAX_BATCH: usize = 64;

type Placed = Result<(Hold, bool), InventoryError>;

struct Job {
    request: HoldRequest,
    lines: Vec<HoldLine>,
    reply: oneshot::Sender<Placed>,
}

/// The lanes that place holds in batches.
#[derive(Clone, Debug)]
pub(crate) struct HoldBatches {
    lanes: Vec<mpsc::UnboundedSender<Job>>,
}

impl HoldBatches {
    /// Starts the lanes over `db`; they stop when the last clone of this is dropped. Each batch's
    /// size is recorded in `sizes`.
    pub(crate) fn start(db: Database, sizes: Histogram<u64>) -> Self {
        let lanes = (0..LANES)
            .map(|_| {
                let (sender, receiver) = mpsc::unbounded_channel();
                tokio::spawn(run_lane(db.clone(), receiver, sizes.clone()));
                sender
            })
            .collect();
        Self { lanes }
    }

    /// Places a hold in the next batch of its lane; `None` if the lane has stopped.
    pub(crate) async fn place(&self, request: HoldRequest, lines: Vec<HoldLine>) -> Option<Placed> {
        let first_item = lines.iter().map(|line| line.inventory_item_id.as_str()).min().unwrap_or_default();
        let lane = BuildHasherDefault::<DefaultHasher>::default().hash_one(first_item) as usize % self.lanes.len();
        let (reply, answer) = oneshot::channel();
        self.lanes[lane].send(Job { request, lines, reply }).ok()?;
        answer.await.ok()
    }
}

async fn run_lane(db: Database, mut jobs: mpsc::UnboundedReceiver<Job>, sizes: Histogram<u64>) {
    while let Some(first) = jobs.recv().await {
        // Whatever queued up while the last batch committed goes into this one.
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        sizes.record(batch.len() as u64, &[]);
        run_batch(&db, batch).await;
    }
}

async fn run_batch(db: &Database, batch: Vec<Job>) {
    let inputs: Vec<(HoldRequest, Vec<HoldLine>)> =
        batch.iter().map(|job| (job.request.clone(), job.lines.clone())).collect();
    let items: BTreeSet<String> =
        inputs.iter().flat_map(|(_, lines)| lines.iter().map(|line| line.inventory_item_id.clone())).collect();
    let placed = db
        .write(|txn| {
            let (inputs, items) = (inputs.clone(), items.clone());
            Box::pin(async move {
                lock_levels(txn, items.into_iter().collect()).await?;
                let mut answers = Vec::with_capacity(inputs.len());
                for (request, lines) in &inputs {
                    match place_in(txn, request, lines).await {
                        // The transaction itself failed: the whole batch goes again, one by one.
                        Err(error @ InventoryError::Database(_)) => return Err(error),
                        answer => answers.push(answer),
                    }
                }
                Ok(answers)
            })
        })
        .await;
    match placed {
        Ok(answers) => {
            for (job, answer) in batch.into_iter().zip(answers) {
                let _ = job.reply.send(answer);
            }
        }
        Err(error) => {
            tracing::debug!(%error, holds = batch.len(), "a batch of holds failed; placing them one by one");
            for job in batch {
                let answer = place_alone(db, &job.request, &job.lines).await;
                let _ = job.reply.send(answer);
            }
        }
    }
}
