//! A write whose caller goes away mid-transaction (a client that hangs up, a deadline that passes)
//! never leaves its pooled PostgreSQL connection inside a transaction for the next borrower.

use std::time::Duration;

use fulfillment_storage::testing::TestDatabase;
use fulfillment_storage::{Backend, Database, PoolConfig};
use sea_orm::{ConnectionTrait, DbErr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_cut_off_at_any_point_leaves_no_transaction_open() {
    if !suite_tests::postgres_available() {
        return suite_tests::skip_postgres();
    }
    let database = TestDatabase::create(Backend::Postgres).await.expect("a test database");
    // One connection, so every write and every check meet the same session.
    let pool = PoolConfig { max_connections: 1, ..PoolConfig::default() };
    let db = Database::connect(database.url(), pool).await.expect("connected");
    db.connection().execute_unprepared("CREATE TABLE t (n INTEGER NOT NULL)").await.expect("created");
    // SAVEPOINT is refused outside a transaction block, and taken inside one.
    let outside = || async { db.connection().execute_unprepared("SAVEPOINT probe").await.is_err() };
    assert!(outside().await, "a fresh session is outside any transaction");
    let mut cut_short = 0;
    for n in 0..400u64 {
        // From before BEGIN is sent to after COMMIT is answered.
        let cut = Duration::from_micros(n * 37 % 3_000);
        let write =
            db.write(|txn| Box::pin(async move { txn.execute_unprepared("INSERT INTO t VALUES (1)").await.map(drop) }));
        if tokio::time::timeout(cut, write).await.is_err() {
            cut_short += 1;
        }
        assert!(outside().await, "a write cut off after {cut:?} left its connection inside a transaction");
    }
    assert!(cut_short > 50, "the test cut off only {cut_short} writes");
    let _: Result<(), DbErr> = db.close().await;
}
