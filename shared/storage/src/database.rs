use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use tokio::sync::Mutex;

use crate::{DbFailure, classify};

/// How many times a transaction that lost a race is tried before the error is returned.
const MAX_ATTEMPTS: u32 = 8;

/// The database engines the services run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: one file per service.
    Sqlite,
    /// The production database.
    Postgres,
}

impl Backend {
    /// Picks the backend from a database URL.
    pub fn from_url(url: &str) -> Result<Self, DbErr> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(DbErr::Custom(format!("unsupported database URL scheme in '{}'", redact(url))))
        }
    }
}

/// Connection pool sizing.
#[derive(Clone, Copy, Debug)]
pub struct PoolConfig {
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// How long a caller waits for a free connection before the database counts as unavailable.
    pub acquire_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self { max_connections: 16, acquire_timeout: Duration::from_secs(5) }
    }
}

/// An error a transaction body may return: it must carry database errors so that lost races can be
/// recognised and retried.
pub trait TransactionError: From<DbErr> {
    /// The database error inside, if this is one.
    fn as_db_err(&self) -> Option<&DbErr>;
}

impl TransactionError for DbErr {
    fn as_db_err(&self) -> Option<&DbErr> {
        Some(self)
    }
}

/// The future a transaction body returns, borrowing the transaction.
pub type TransactionFuture<'c, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>;

/// A service's database: a sea-orm pool plus the write discipline of its backend.
#[derive(Clone, Debug)]
pub struct Database {
    connection: DatabaseConnection,
    backend: Backend,
    // SQLite allows one writer at a time; writers queue here instead of failing with "database is locked".
    write_gate: Option<Arc<Mutex<()>>>,
    // Writes tried again after losing a race, for the services' metrics.
    retries: Arc<AtomicU64>,
}

impl Database {
    /// Connects to `url`: `sqlite://path/to/file.db` (created if missing, in WAL mode) or
    /// `postgres://...`.
    pub async fn connect(url: &str, pool: PoolConfig) -> Result<Self, DbErr> {
        Self::connect_in(url, pool, None).await
    }

    /// Connects to the store of test-mode objects that goes with the live store at `url`: the
    /// sibling SQLite file (`catalog.db` beside `catalog-test.db`), or the `test_mode` schema of the
    /// same PostgreSQL database, created if missing. Test objects never share a table with live ones.
    pub async fn connect_test_mode(url: &str, pool: PoolConfig) -> Result<Self, DbErr> {
        match Backend::from_url(url)? {
            Backend::Sqlite => Self::connect(&sibling_file(url, "-test"), pool).await,
            Backend::Postgres => {
                let admin = sea_orm::Database::connect(url).await?;
                let created = admin.execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS {TEST_SCHEMA}")).await;
                admin.close().await?;
                match created {
                    // Two replicas starting at once may both create it; the loser finds it there.
                    Err(error) if classify(&error) == crate::DbFailure::UniqueViolation => {}
                    Err(error) => return Err(error),
                    Ok(_) => {}
                }
                Self::connect_in(url, pool, Some(TEST_SCHEMA)).await
            }
        }
    }

    async fn connect_in(url: &str, pool: PoolConfig, schema: Option<&str>) -> Result<Self, DbErr> {
        let backend = Backend::from_url(url)?;
        let (url, synchronous) = match backend {
            Backend::Sqlite => take_synchronous(url)?,
            Backend::Postgres => (url.to_owned(), SqliteSynchronous::Normal),
        };
        let mut options = ConnectOptions::new(url.clone());
        if let Some(schema) = schema {
            options.set_schema_search_path(schema);
        }
        options
            .max_connections(pool.max_connections)
            .min_connections(1)
            .acquire_timeout(pool.acquire_timeout)
            .connect_timeout(pool.acquire_timeout)
            .sqlx_logging(false);
        if backend == Backend::Sqlite {
            create_parent_dir(&url)?;
            options.map_sqlx_sqlite_opts(move |o| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(synchronous)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        }
        let connection = sea_orm::Database::connect(options).await?;
        let write_gate = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        Ok(Self { connection, backend, write_gate, retries: Arc::default() })
    }

    /// The pool, for reads and for migrations.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }

    /// The engine behind the pool.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// How many times a write lost a race (serialization failure, deadlock, busy) and was tried
    /// again, since the pool was opened.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Runs `body` in a transaction and commits it. On SQLite writers take turns; a transaction
    /// that loses a race (serialization failure, deadlock, busy) is rolled back and tried again with
    /// capped, jittered backoff, so `body` must do nothing outside the transaction.
    pub async fn write<T, E, F>(&self, body: F) -> Result<T, E>
    where
        F: for<'c> Fn(&'c DatabaseTransaction) -> TransactionFuture<'c, T, E> + Send + Sync,
        T: Send,
        E: TransactionError + Send,
    {
        self.in_turn(|| async {
            let transaction = self.connection.begin().await?;
            let value = body(&transaction).await?;
            transaction.commit().await?;
            Ok::<T, E>(value)
        })
        .await
    }

    /// Runs `statement`, one write statement, without a transaction of its own: a single statement
    /// is atomic by itself, and this saves the round trips of BEGIN and COMMIT on a hot path. Writers
    /// take turns and lost races are retried as in [`Database::write`]; anything else `statement`
    /// does (a read of what the write left, say) is not atomic with the write.
    pub async fn write_statement<T, E, F>(&self, statement: F) -> Result<T, E>
    where
        F: for<'c> Fn(&'c DatabaseConnection) -> TransactionFuture<'c, T, E> + Send + Sync,
        T: Send,
        E: TransactionError + Send,
    {
        self.in_turn(|| statement(&self.connection)).await
    }

    /// Runs `attempt` in this writer's turn (SQLite has one writer at a time), again while it loses
    /// races, with capped, jittered backoff.
    async fn in_turn<T, E, Fut>(&self, attempt: impl Fn() -> Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
        E: TransactionError,
    {
        let _turn = match &self.write_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        };
        let mut tries = 1;
        loop {
            match attempt().await {
                Err(error) if tries < MAX_ATTEMPTS && is_retryable(&error) => {
                    tracing::debug!(attempt = tries, "write lost a race, retrying");
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(backoff(tries)).await;
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(self) -> Result<(), DbErr> {
        self.connection.close().await
    }
}

/// Takes the `synchronous` parameter (`normal`, the default, or `full`) out of a SQLite URL; sqlx
/// would refuse it. NORMAL in WAL mode loses no committed transaction when a process crashes, but
/// a power loss or a kernel crash can undo the last commits; FULL syncs every commit, at several
/// times the cost of a commit.
fn take_synchronous(url: &str) -> Result<(String, SqliteSynchronous), DbErr> {
    let Some((path, query)) = url.split_once('?') else { return Ok((url.to_owned(), SqliteSynchronous::Normal)) };
    let mut synchronous = SqliteSynchronous::Normal;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("synchronous", value)) => {
                synchronous = match value.to_ascii_lowercase().as_str() {
                    "normal" => SqliteSynchronous::Normal,
                    "full" => SqliteSynchronous::Full,
                    _ => {
                        return Err(DbErr::Custom(format!(
                            "synchronous={value} in a SQLite URL: expected normal or full"
                        )));
                    }
                }
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() { path.to_owned() } else { format!("{path}?{}", kept.join("&")) };
    Ok((url, synchronous))
}

/// Runs `attempt` once more if it lost a race to insert the same key: the second run finds the
/// winner's row and answers from it.
pub async fn retry_lost_insert<T, E, F, Fut>(attempt: F) -> Result<T, E>
where
    E: TransactionError,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    match attempt().await {
        Err(error) if error.as_db_err().is_some_and(|e| classify(e) == DbFailure::UniqueViolation) => attempt().await,
        other => other,
    }
}

fn is_retryable<E: TransactionError>(error: &E) -> bool {
    error.as_db_err().is_some_and(|e| classify(e) == DbFailure::Retryable)
}

/// Exponential backoff from 5 ms capped at 500 ms, with full jitter so that racing writers spread out.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = (5u64 << attempt.min(7)).min(500);
    Duration::from_millis(rand::rng().random_range(1..=cap_ms))
}

/// The PostgreSQL schema of test-mode objects.
const TEST_SCHEMA: &str = "test_mode";

/// The SQLite URL of a file beside `url`'s, its name ending in `suffix` before the extension.
fn sibling_file(url: &str, suffix: &str) -> String {
    let (path, query) = match url.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (url, None),
    };
    if path.ends_with(":memory:") {
        return url.to_owned();
    }
    let name_start = path.rfind('/').map_or(0, |slash| slash + 1);
    let path = match path[name_start..].rfind('.') {
        Some(dot) if dot > 0 => format!("{}{suffix}{}", &path[..name_start + dot], &path[name_start + dot..]),
        _ => format!("{path}{suffix}"),
    };
    match query {
        Some(query) => format!("{path}?{query}"),
        None => path,
    }
}

fn create_parent_dir(url: &str) -> Result<(), DbErr> {
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(':') {
        return Ok(());
    }
    match Path::new(path).parent() {
        Some(parent) if !parent.as_os_str().is_empty() => std::fs::create_dir_all(parent)
            .map_err(|e| DbErr::Custom(format!("cannot create directory {}: {e}", parent.display()))),
        _ => Ok(()),
    }
}

/// Hides the password of a URL for logs and errors.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &credentials[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_mode_file_sits_beside_the_live_one() {
        assert_eq!(sibling_file("sqlite://data/catalog.db", "-test"), "sqlite://data/catalog-test.db");
        assert_eq!(
            sibling_file("sqlite://data/catalog.db?mode=rwc", "-test"),
            "sqlite://data/catalog-test.db?mode=rwc"
        );
        assert_eq!(sibling_file("sqlite:///tmp/x.y/store", "-test"), "sqlite:///tmp/x.y/store-test");
        assert_eq!(sibling_file("sqlite::memory:", "-test"), "sqlite::memory:");
    }

    #[test]
    fn the_sqlite_durability_comes_from_the_url() {
        let taken = |url: &str| take_synchronous(url).map(|(url, s)| (url, format!("{s:?}")));
        assert_eq!(taken("sqlite://a.db").ok(), Some(("sqlite://a.db".to_owned(), "Normal".to_owned())));
        assert_eq!(taken("sqlite://a.db?synchronous=FULL").ok(), Some(("sqlite://a.db".to_owned(), "Full".to_owned())));
        assert_eq!(
            taken("sqlite://a.db?mode=rwc&synchronous=full").ok(),
            Some(("sqlite://a.db?mode=rwc".to_owned(), "Full".to_owned()))
        );
        let error = take_synchronous("sqlite://a.db?synchronous=off").expect_err("off would lose commits");
        assert!(error.to_string().contains("expected normal or full"), "{error}");
    }

    #[tokio::test]
    async fn a_sqlite_url_can_ask_for_full_durability() {
        use sea_orm::{ConnectionTrait, Statement};

        let dir = tempfile::tempdir().expect("temp dir");
        for (query, expected) in [("", 1), ("?synchronous=full", 2)] {
            let url = format!("sqlite://{}/sync{expected}.db{query}", dir.path().display());
            let db = Database::connect(&url, PoolConfig::default()).await.expect("connect");
            let backend = db.connection().get_database_backend();
            let row = db
                .connection()
                .query_one_raw(Statement::from_string(backend, "PRAGMA synchronous"))
                .await
                .expect("pragma")
                .expect("a row");
            // SQLite reports NORMAL as 1 and FULL as 2.
            assert_eq!(row.try_get_by_index::<i32>(0).expect("int"), expected, "{url}");
        }
    }

    #[test]
    fn backend_follows_the_scheme() {
        assert_eq!(Backend::from_url("sqlite://data/catalog.db").ok(), Some(Backend::Sqlite));
        assert_eq!(Backend::from_url("postgres://u@h/db").ok(), Some(Backend::Postgres));
        assert!(Backend::from_url("mysql://u@h/db").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://app:s3cret@db:5432/x"), "postgres://app:***@db:5432/x");
        assert_eq!(redact("postgres://app@db/x"), "postgres://app@db/x");
        let error = Backend::from_url("mysql://root:pw@h/db").expect_err("unsupported");
        assert!(!error.to_string().contains("pw"));
    }

    #[test]
    fn backoff_stays_within_its_cap() {
        for attempt in 1..20 {
            let delay = backoff(attempt);
            assert!(delay >= Duration::from_millis(1) && delay <= Duration::from_millis(500), "{delay:?}");
        }
    }

    /// The rows of the test table `t`.
    async fn rows_in_t(db: &Database) -> i64 {
        use sea_orm::{ConnectionTrait, Statement};
        let backend = db.connection().get_database_backend();
        let count = db
            .connection()
            .query_one_raw(Statement::from_string(backend, "SELECT COUNT(*) FROM t"))
            .await
            .expect("count")
            .expect("a row");
        count.try_get_by_index::<i64>(0).expect("int")
    }

    #[tokio::test]
    async fn sqlite_file_is_created_in_wal_mode_and_writes_commit() {
        use sea_orm::{ConnectionTrait, Statement};

        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/nested/test.db", dir.path().display());
        let db = Database::connect(&url, PoolConfig::default()).await.expect("connect");
        let mode = db
            .connection()
            .query_one_raw(Statement::from_string(db.connection().get_database_backend(), "PRAGMA journal_mode"))
            .await
            .expect("pragma")
            .expect("a row");
        assert_eq!(mode.try_get_by_index::<String>(0).expect("text"), "wal");

        db.connection().execute_unprepared("CREATE TABLE t (n INTEGER NOT NULL)").await.expect("create");
        db.write(|txn| Box::pin(async move { txn.execute_unprepared("INSERT INTO t VALUES (1)").await }))
            .await
            .expect("insert");
        assert_eq!(rows_in_t(&db).await, 1);
    }

    #[tokio::test]
    async fn a_failed_body_rolls_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/test.db", dir.path().display());
        let db = Database::connect(&url, PoolConfig::default()).await.expect("connect");
        use sea_orm::ConnectionTrait;
        db.connection().execute_unprepared("CREATE TABLE t (n INTEGER PRIMARY KEY)").await.expect("create");
        let result: Result<(), DbErr> = db
            .write(|txn| {
                Box::pin(async move {
                    txn.execute_unprepared("INSERT INTO t VALUES (1)").await?;
                    txn.execute_unprepared("INSERT INTO t VALUES (1)").await?;
                    Ok(())
                })
            })
            .await;
        let error = result.expect_err("duplicate key");
        assert_eq!(classify(&error), DbFailure::UniqueViolation);
        let rows = db.connection().execute_unprepared("DELETE FROM t").await.expect("delete");
        assert_eq!(rows.rows_affected(), 0, "the first insert was rolled back");
    }

    // Two pools on one file each have a write gate of their own, so they can race as two processes
    // do: a transaction that read before the other's commit cannot write after it (SQLite's
    // BUSY_SNAPSHOT), and is tried again and counted.
    #[tokio::test]
    async fn a_write_that_lost_a_race_is_tried_again_and_counted() {
        use std::sync::atomic::AtomicBool;

        use sea_orm::ConnectionTrait;

        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/race.db", dir.path().display());
        let (first, second) = (
            Database::connect(&url, PoolConfig::default()).await.expect("connect"),
            Database::connect(&url, PoolConfig::default()).await.expect("connect"),
        );
        first.connection().execute_unprepared("CREATE TABLE t (n INTEGER PRIMARY KEY)").await.expect("create");
        let raced = Arc::new(AtomicBool::new(false));
        let written = first
            .write(|txn| {
                let (second, raced) = (second.clone(), raced.clone());
                Box::pin(async move {
                    txn.execute_unprepared("SELECT COUNT(*) FROM t").await?;
                    if !raced.swap(true, Ordering::SeqCst) {
                        second.connection().execute_unprepared("INSERT INTO t VALUES (1)").await?;
                    }
                    txn.execute_unprepared("INSERT INTO t VALUES (2)").await.map(drop)
                })
            })
            .await;
        written.expect("the second attempt commits");
        assert_eq!(first.retries(), 1);
        assert_eq!(second.retries(), 0);
        assert_eq!(rows_in_t(&first).await, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_lone_statements_and_transactions_all_commit_on_sqlite() {
        use sea_orm::ConnectionTrait;

        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/test.db", dir.path().display());
        let db = Database::connect(&url, PoolConfig::default()).await.expect("connect");
        db.connection().execute_unprepared("CREATE TABLE t (n INTEGER PRIMARY KEY)").await.expect("create");
        let mut writers = tokio::task::JoinSet::new();
        for n in 0..64i64 {
            let db = db.clone();
            writers.spawn(async move {
                if n % 2 == 0 {
                    // A read, then a write: the kind of transaction SQLite refuses to upgrade while
                    // another writer holds the lock (turns and retries both see to it).
                    db.write(|txn| {
                        Box::pin(async move {
                            txn.execute_unprepared("SELECT COUNT(*) FROM t").await?;
                            txn.execute_unprepared(&format!("INSERT INTO t VALUES ({n})")).await?;
                            Ok::<_, DbErr>(())
                        })
                    })
                    .await
                } else {
                    db.write_statement(|db| {
                        Box::pin(async move {
                            db.execute_unprepared(&format!("INSERT INTO t VALUES ({n})")).await.map(drop)
                        })
                    })
                    .await
                }
            });
        }
        while let Some(written) = writers.join_next().await {
            written.expect("no panic").expect("every writer commits");
        }
        assert_eq!(rows_in_t(&db).await, 64);
    }
}
