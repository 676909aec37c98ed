//! Group commit: the writes of concurrent callers share one transaction and one commit, and each
//! caller gets its own answer. One worker per [`Grouped`] takes whatever has queued while the last
//! commit was under way, up to a maximum, so a lone write waits for nothing and a busy service
//! commits many writes at once.

use std::fmt;
use std::sync::Arc;

use sea_orm::{ConnectionTrait, DbErr, RuntimeErr};
use tokio::sync::{mpsc, oneshot};

use crate::{Database, DbFailure, TransactionFuture, classify};

/// One caller's write. It may run more than once (a batch that loses a race is tried again, and a
/// batch that fails is taken apart), so it must do nothing but database statements, and it should
/// fail only as the database does: whatever can be refused is checked before it is queued.
pub trait GroupedWrite: Send + Sync + 'static {
    /// What the caller learns.
    type Output: Send + 'static;

    /// Runs the statements on `db`, a transaction shared with other callers' writes or, when
    /// grouping is off, the pool itself.
    fn run<'c, C: ConnectionTrait + Sync>(&'c self, db: &'c C) -> TransactionFuture<'c, Self::Output, DbErr>;
}

type Reply<W> = oneshot::Sender<Result<<W as GroupedWrite>::Output, DbErr>>;

/// Room in the queue; callers beyond it wait. The calls a service admits at once bound it anyway.
const QUEUE: usize = 1024;

/// Writes of one kind to one database, committed in groups. Cloning is cheap; the worker stops
/// when the last clone goes.
pub struct Grouped<W: GroupedWrite> {
    db: Database,
    queue: Option<mpsc::Sender<(W, Reply<W>)>>,
}

impl<W: GroupedWrite> Clone for Grouped<W> {
    fn clone(&self) -> Self {
        Self { db: self.db.clone(), queue: self.queue.clone() }
    }
}

impl<W: GroupedWrite> fmt::Debug for Grouped<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grouped").field("grouping", &self.queue.is_some()).finish()
    }
}

impl<W: GroupedWrite> Grouped<W> {
    /// Groups up to `max` writes per transaction on `db`. With `max` 1 each write is a statement of
    /// its own, as [`Database::write_statement`] sends it, and no worker runs. Must be called inside
    /// a tokio runtime.
    pub fn new(db: Database, max: usize) -> Self {
        let queue = (max > 1).then(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            tokio::spawn(work(db.clone(), receiver, max));
            sender
        });
        Self { db, queue }
    }

    /// Runs `write`, with whatever other writes are waiting, and answers its own outcome once the
    /// transaction that held it has committed.
    pub async fn write(&self, write: W) -> Result<W::Output, DbErr> {
        let write = match &self.queue {
            Some(queue) => {
                let (reply, answer) = oneshot::channel();
                match queue.send((write, reply)).await {
                    // Unanswered only if the worker died with the batch, whose transaction then
                    // rolled back.
                    Ok(()) => return answer.await.map_err(|_| stopped())?,
                    // The worker is gone: the write goes alone, as with grouping off.
                    Err(mpsc::error::SendError((write, _))) => write,
                }
            }
            None => write,
        };
        let write = Arc::new(write);
        self.db
            .write_statement(|db| {
                let write = write.clone();
                Box::pin(async move { write.run(db).await })
            })
            .await
    }
}

fn stopped() -> DbErr {
    DbErr::Custom("the group writer stopped".to_owned())
}

/// The worker: takes what has queued, up to `max`, and commits it as one transaction. When that
/// fails for good, each write is tried on its own, so that one write's failure is its alone.
async fn work<W: GroupedWrite>(db: Database, mut queue: mpsc::Receiver<(W, Reply<W>)>, max: usize) {
    let mut taken = Vec::with_capacity(max);
    while queue.recv_many(&mut taken, max).await > 0 {
        let (writes, replies): (Vec<W>, Vec<Reply<W>>) = taken.drain(..).unzip();
        let writes = Arc::new(writes);
        let together = db
            .write(|txn| {
                let writes = writes.clone();
                Box::pin(async move {
                    let mut outputs = Vec::with_capacity(writes.len());
                    for write in writes.iter() {
                        outputs.push(write.run(txn).await?);
                    }
                    Ok(outputs)
                })
            })
            .await;
        match together {
            Ok(outputs) => {
                for (reply, output) in replies.into_iter().zip(outputs) {
                    // A caller that went away learns nothing; its write stands, as a sent statement does.
                    let _ = reply.send(Ok(output));
                }
            }
            Err(error) if replies.len() == 1 => {
                let _ = replies.into_iter().next().map(|reply| reply.send(Err(error)));
            }
            // The database went away, maybe after the commit: trying each write again could apply
            // it twice, and would meet the same failure. Every caller hears it as it is.
            Err(error) if classify(&error) == DbFailure::Unavailable => {
                for reply in replies {
                    let _ = reply.send(Err(DbErr::Conn(RuntimeErr::Internal(error.to_string()))));
                }
            }
            Err(_) => {
                for (index, reply) in replies.into_iter().enumerate() {
                    let alone = db
                        .write(|txn| {
                            let writes = writes.clone();
                            Box::pin(async move { writes[index].run(txn).await })
                        })
                        .await;
                    let _ = reply.send(alone);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use sea_orm::{DatabaseBackend, Statement};

    use super::*;
    use crate::PoolConfig;

    /// Inserts `n` into `t`; fails, as a database would, when `n` is negative, and as a lost
    /// connection when it is `LOST`.
    struct Insert {
        n: i64,
        runs: Arc<AtomicUsize>,
    }

    impl GroupedWrite for Insert {
        type Output = u64;

        fn run<'c, C: ConnectionTrait + Sync>(&'c self, db: &'c C) -> TransactionFuture<'c, u64, DbErr> {
            Box::pin(async move {
                self.runs.fetch_add(1, Ordering::SeqCst);
                if self.n == LOST {
                    return Err(DbErr::Conn(RuntimeErr::Internal("connection reset".to_owned())));
                }
                if self.n < 0 {
                    return Err(DbErr::Custom(format!("{} is refused", self.n)));
                }
                let insert =
                    Statement::from_string(DatabaseBackend::Sqlite, format!("INSERT INTO t VALUES ({})", self.n));
                Ok(db.execute_raw(insert).await?.rows_affected())
            })
        }
    }

    const LOST: i64 = -100;

    async fn table() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/group.db", dir.path().display());
        let db = Database::connect(&url, PoolConfig::default()).await.expect("connect");
        db.connection().execute_unprepared("CREATE TABLE t (n INTEGER PRIMARY KEY)").await.expect("create");
        (dir, db)
    }

    async fn stored(db: &Database) -> Vec<i64> {
        let rows = db
            .connection()
            .query_all_raw(Statement::from_string(DatabaseBackend::Sqlite, "SELECT n FROM t ORDER BY n"))
            .await
            .expect("read");
        rows.iter().map(|row| row.try_get_by_index::<i64>(0).expect("n")).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_commits_and_each_gets_its_answer() {
        let (_dir, db) = table().await;
        let grouped = Grouped::new(db.clone(), 16);
        let runs = Arc::new(AtomicUsize::new(0));
        let mut writers = tokio::task::JoinSet::new();
        for n in 0..64 {
            let (grouped, runs) = (grouped.clone(), runs.clone());
            writers.spawn(async move { (n, grouped.write(Insert { n, runs }).await) });
        }
        while let Some(written) = writers.join_next().await {
            let (n, answer) = written.expect("no panic");
            assert_eq!(answer.expect("committed"), 1, "write {n}");
        }
        assert_eq!(stored(&db).await, (0..64).collect::<Vec<_>>());
        assert_eq!(runs.load(Ordering::SeqCst), 64, "no write ran twice: no batch failed");
    }

    // A batch with a write that fails is taken apart: the others commit, and only the failing one
    // hears of its failure.
    #[tokio::test]
    async fn a_failing_write_fails_alone() {
        let (_dir, db) = table().await;
        let grouped = Grouped::new(db.clone(), 16);
        let runs = Arc::new(AtomicUsize::new(0));
        // On this one-thread runtime every writer queues its write before the worker, woken by the
        // first, takes them: all five share one batch.
        let mut writers = tokio::task::JoinSet::new();
        for n in [1, 2, -3, 4, 5] {
            let (grouped, runs) = (grouped.clone(), runs.clone());
            writers.spawn(async move { (n, grouped.write(Insert { n, runs }).await) });
        }
        while let Some(written) = writers.join_next().await {
            let (n, answer) = written.expect("no panic");
            match n {
                -3 => assert!(answer.expect_err("refused").to_string().contains("-3 is refused")),
                n => assert_eq!(answer.expect("committed"), 1, "write {n}"),
            }
        }
        assert_eq!(stored(&db).await, vec![1, 2, 4, 5]);
        assert_eq!(runs.load(Ordering::SeqCst), 3 + 5, "the batch ran up to the failure, then each alone");
    }

    // A batch that lost its connection is not taken apart: each write might have committed.
    #[tokio::test]
    async fn a_lost_connection_fails_the_whole_batch_without_trying_again() {
        let (_dir, db) = table().await;
        let grouped = Grouped::new(db.clone(), 16);
        let runs = Arc::new(AtomicUsize::new(0));
        // One thread: all three queue before the worker takes them, as in `a_failing_write_fails_alone`.
        let mut writers = tokio::task::JoinSet::new();
        for n in [1, LOST, 3] {
            let (grouped, runs) = (grouped.clone(), runs.clone());
            writers.spawn(async move { grouped.write(Insert { n, runs }).await });
        }
        while let Some(written) = writers.join_next().await {
            let error = written.expect("no panic").expect_err("the batch failed");
            assert_eq!(classify(&error), DbFailure::Unavailable, "{error}");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2, "the batch ran up to the loss, and nothing again");
        assert_eq!(stored(&db).await, Vec::<i64>::new(), "rolled back");
    }

    #[tokio::test]
    async fn without_its_worker_a_write_goes_alone() {
        let (_dir, db) = table().await;
        let (sender, receiver) = mpsc::channel(1);
        drop(receiver);
        let grouped = Grouped { db: db.clone(), queue: Some(sender) };
        let runs = Arc::new(AtomicUsize::new(0));
        assert_eq!(grouped.write(Insert { n: 9, runs }).await.expect("written alone"), 1);
        assert_eq!(stored(&db).await, vec![9]);
    }

    #[tokio::test]
    async fn with_a_maximum_of_one_each_write_is_its_own_statement() {
        let (_dir, db) = table().await;
        let grouped = Grouped::new(db.clone(), 1);
        assert!(grouped.queue.is_none(), "no worker");
        let runs = Arc::new(AtomicUsize::new(0));
        assert_eq!(grouped.write(Insert { n: 7, runs: runs.clone() }).await.expect("written"), 1);
        assert!(grouped.write(Insert { n: -1, runs }).await.is_err());
        assert_eq!(stored(&db).await, vec![7]);
    }
}
