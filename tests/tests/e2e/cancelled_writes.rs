//! A write whose caller goes away mid-transaction (a client that hangs up, a deadline that passes)
//! never leaves its pooled PostgreSQL connection inside a transaction for the next borrower.

use std::future::Future;
use std::task::Poll;

use fulfillment_storage::testing::TestDatabase;
use fulfillment_storage::{Backend, Database, PoolConfig};
use sea_orm::{ConnectionTrait, DbErr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "TEST_DATABASE_URL is not set")]
async fn a_write_cut_off_at_any_point_leaves_no_transaction_open() {
    suite_tests::require_postgres();
    let database = TestDatabase::create(Backend::Postgres).await.expect("a test database");
    // One connection, so every write and every check meet the same session.
    let pool = PoolConfig { max_connections: 1, ..PoolConfig::default() };
    let db = Database::connect(database.url(), pool).await.expect("connected");
    db.connection().execute_unprepared("CREATE TABLE t (n INTEGER NOT NULL)").await.expect("created");
    // SAVEPOINT is refused outside a transaction block, and taken inside one.
    let outside = || async { db.connection().execute_unprepared("SAVEPOINT probe").await.is_err() };
    assert!(outside().await, "a fresh session is outside any transaction");
    let insert =
        || db.write(|txn| Box::pin(async move { txn.execute_unprepared("INSERT INTO t VALUES (1)").await.map(drop) }));
    let mut cut_short = 0;
    for n in 0..400 {
        // Dropped at its first, second, ... fortieth wait: every await of BEGIN, INSERT and COMMIT.
        let waits = n % 40;
        if cut_after(waits, insert()).await.is_none() {
            cut_short += 1;
        }
        assert!(outside().await, "a write cut off at its wait {waits} left its connection inside a transaction");
    }
    // However fast the database, a write waits at least once (for its BEGIN): the ten dropped at
    // their first wait are cut off, and the others as far as their waits go.
    assert!(cut_short >= 10, "the test cut off only {cut_short} writes of 400");
    let _: Result<(), DbErr> = db.close().await;
}

/// Polls `future` until it has waited `waits` times, then drops it, as a server drops the handler of
/// a call whose client went away: `None` when it was cut off.
async fn cut_after<F: Future>(waits: usize, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut left = waits;
    std::future::poll_fn(move |cx| match future.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending if left == 0 => Poll::Ready(None),
        Poll::Pending => {
            left -= 1;
            Poll::Pending
        }
    })
    .await
}
