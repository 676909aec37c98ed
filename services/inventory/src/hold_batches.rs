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

use fulfillment_storage::{Database, retry_lost_insert};
use opentelemetry::metrics::Histogram;
use opentelemetry::trace::TraceContextExt;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::holds::{HoldLine, HoldRequest, Placed, place_holds};

/// How many lanes place holds side by side.
const LANES: usize = 4;
/// Holds waiting in one lane; beyond that a hold is placed on its own rather than queued.
const QUEUE: usize = 1024;

struct Job {
    request: HoldRequest,
    lines: Vec<HoldLine>,
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
    pub(crate) async fn place(&self, request: HoldRequest, lines: Vec<HoldLine>) -> Option<Placed> {
        let first_item = lines.iter().map(|line| line.inventory_item_id.as_str()).min().unwrap_or_default();
        let lane = BuildHasherDefault::<DefaultHasher>::default().hash_one(first_item) as usize % self.lanes.len();
        let (reply, answer) = oneshot::channel();
        let job = Job { request, lines, span: tracing::Span::current(), reply };
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

async fn run_batch(db: Database, batch: Vec<Job>) {
    let span = tracing::info_span!(parent: &batch[0].span, "hold batch", holds = batch.len());
    for job in &batch[1..] {
        span.add_link(job.span.context().span().span_context().clone());
    }
    let inputs: Vec<(HoldRequest, Vec<HoldLine>)> =
        batch.iter().map(|job| (job.request.clone(), job.lines.clone())).collect();
    // A hold id inserted by another transaction meanwhile fails the insert of the whole batch;
    // once more, the batch reads that hold and answers it as a repeat or a conflict, so one caller's
    // id does not send every other hold of the batch back to be placed alone.
    let placed = retry_lost_insert(|| {
        db.write(|txn| {
            let inputs = inputs.clone();
            Box::pin(async move { place_holds(txn, &inputs).await })
        })
    })
    .instrument(span)
    .await;
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
