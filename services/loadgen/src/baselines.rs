//! The baselines a workload is compared with, measured in the same run on the same machine: the
//! least transaction a reservation needs (from the load generator, and from `pgbench` when it is
//! installed); the SQL a reservation performs, sent straight to the same databases step by step as
//! the services send it, with no gRPC in between; and a bare tonic service answering health checks.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use fulfillment_storage::{Backend, Database, PoolConfig};
use sea_orm::{ConnectionTrait, DbErr, Statement, Value};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::stats::Run;
use crate::workloads::{SPREAD_ITEMS, drive, spread_item};

/// The two databases a reservation touches.
#[derive(Clone, Debug)]
pub struct ReservationSql {
    inventory: Database,
    reservation: Database,
}

impl ReservationSql {
    /// Connects to the Inventory's and the Reservation service's databases.
    pub async fn connect(inventory_url: &str, reservation_url: &str) -> Result<Self, DbErr> {
        let pool = PoolConfig { max_connections: 16, ..PoolConfig::default() };
        Ok(Self {
            inventory: Database::connect(inventory_url, pool).await?,
            reservation: Database::connect(reservation_url, pool).await?,
        })
    }

    /// Runs a reservation's three steps for 1 unit of `item` (the hot item when `hot`, else spread
    /// items), `concurrency` at a time.
    pub async fn run(&self, hot: bool, concurrency: usize, duration: Duration, run: &str) -> Run {
        let (this, run) = (self.clone(), run.to_owned());
        drive(concurrency, duration, move |worker, n| {
            let this = this.clone();
            let id = format!("{run}-{worker}-{n}");
            let item = if hot { "hot".to_owned() } else { spread_item((n as usize).wrapping_mul(7919) % SPREAD_ITEMS) };
            async move { this.reserve(&id, &item).await.map_err(|_| Code::Internal) }
        })
        .await
    }

    /// Runs only the hold's transaction, on the hot item, `concurrency` at a time.
    pub async fn run_holds(&self, concurrency: usize, duration: Duration, run: &str) -> Run {
        let (this, run) = (self.clone(), run.to_owned());
        drive(concurrency, duration, move |worker, n| {
            let this = this.clone();
            let id = format!("{run}-{worker}-{n}");
            async move { this.hold(&id, "hot").await.map_err(|_| Code::Internal) }
        })
        .await
    }

    async fn reserve(&self, id: &str, item: &str) -> Result<(), DbErr> {
        let now = Utc::now();
        let expire = now + chrono::Duration::hours(1);
        // 1. The Reservation service records the reservation as pending, claimed: one statement.
        let backend = self.reservation.backend();
        let insert = stmt(
            backend,
            "INSERT INTO reservation (id, state, items, ship_to, ship_to_country, expires_in_seconds, expire_time, \
             allocations, claimed_until, claim_token, live_mode, created_time, updated_time) \
             VALUES (?, 'pending', '[]', '{}', 'US', 3600, ?, '[]', ?, 'claim', FALSE, ?, ?) \
             ON CONFLICT (id) DO NOTHING",
            "",
            vec![id.into(), expire.into(), expire.into(), now.into(), now.into()],
        );
        self.lone_statement(insert).await?;
        // 2. The Inventory places the hold: a transaction.
        self.hold(id, item).await?;
        // 3. The Reservation service records it active, if it still holds the claim: one statement.
        let activate = stmt(
            backend,
            "UPDATE reservation SET state = 'active', allocations = '[]', claimed_until = NULL, claim_token = NULL, \
             updated_time = ? WHERE id = ? AND state = 'pending' AND claim_token = 'claim'",
            "",
            vec![Utc::now().into(), id.into()],
        );
        self.lone_statement(activate).await
    }

    /// The hold's transaction: locks, reads, the level, the hold and its allocation.
    async fn hold(&self, id: &str, item: &str) -> Result<(), DbErr> {
        let now = Utc::now();
        let expire = now + chrono::Duration::hours(1);
        let backend = self.inventory.backend();
        let (id2, item2) = (id.to_owned(), item.to_owned());
        self.inventory
            .write(move |txn| {
                let (id, item) = (id2.clone(), item2.clone());
                Box::pin(async move {
                    txn.query_one_raw(stmt(backend, "SELECT id FROM hold WHERE id = ?", "", vec![id.clone().into()]))
                        .await?;
                    txn.query_all_raw(stmt(
                        backend,
                        "SELECT id, allow_oversell FROM inventory_item WHERE id IN (?) ORDER BY id",
                        FOR_SHARE,
                        vec![item.clone().into()],
                    ))
                    .await?;
                    txn.query_all_raw(stmt(
                        backend,
                        "SELECT id, priority FROM warehouse ORDER BY id",
                        FOR_SHARE,
                        vec![],
                    ))
                    .await?;
                    txn.query_all_raw(stmt(
                        backend,
                        "SELECT on_hand, reserved FROM stock_level WHERE inventory_item_id IN (?) \
                         ORDER BY inventory_item_id, warehouse_id",
                        FOR_UPDATE,
                        vec![item.clone().into()],
                    ))
                    .await?;
                    txn.execute_raw(stmt(
                        backend,
                        "UPDATE stock_level SET reserved = reserved + 1, updated_time = ? \
                         WHERE inventory_item_id = ? AND warehouse_id = 'bench-w'",
                        "",
                        vec![now.into(), item.clone().into()],
                    ))
                    .await?;
                    txn.execute_raw(stmt(
                        backend,
                        "INSERT INTO hold (id, state, ship_to_country, lines, expire_time, created_time, updated_time) \
                         VALUES (?, 'held', 'US', '[]', ?, ?, ?)",
                        "",
                        vec![id.clone().into(), expire.into(), now.into(), now.into()],
                    ))
                    .await?;
                    txn.execute_raw(stmt(
                        backend,
                        "INSERT INTO hold_allocation (hold_id, inventory_item_id, warehouse_id, quantity, \
                         oversold_quantity) VALUES (?, ?, 'bench-w', 1, 0)",
                        "",
                        vec![id.into(), item.into()],
                    ))
                    .await?;
                    Ok::<_, DbErr>(())
                })
            })
            .await
    }

    /// One write to the Reservation service's database, on its own as the service sends it.
    async fn lone_statement(&self, change: Statement) -> Result<(), DbErr> {
        self.reservation
            .write_statement(move |db| {
                let change = change.clone();
                Box::pin(async move { db.execute_raw(change).await.map(drop) })
            })
            .await
    }
}

/// Stock rows of the minimal transaction's spread variant.
pub const MINIMAL_ITEMS: u64 = 10_000;

/// The least a reservation must do, in one transaction: take a unit of a stock row if one is
/// free, and record the hold. Sent from a pool with a connection per worker; sqlx prepares each
/// statement once per connection and reuses it.
#[derive(Clone, Debug)]
pub struct MinimalReservation {
    db: Database,
}

const MINIMAL_TAKE: &str = "UPDATE bench_stock SET reserved = reserved + 1 WHERE id = ? AND on_hand - reserved >= 1";
const MINIMAL_HOLD: &str = "INSERT INTO bench_hold (stock_id, quantity) VALUES (?, 1)";

impl MinimalReservation {
    /// Creates the two tables in the database at `url`, with `MINIMAL_ITEMS` well-stocked rows.
    pub async fn create(url: &str, connections: u32) -> Result<Self, DbErr> {
        let pool = PoolConfig { max_connections: connections, ..PoolConfig::default() };
        let db = Database::connect(url, pool).await?;
        let (serial, rows) = match db.backend() {
            Backend::Postgres => ("BIGSERIAL", "SELECT i, 1000000000, 0 FROM generate_series(1, 10000) AS i"),
            Backend::Sqlite => (
                "INTEGER",
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) \
                 SELECT i, 1000000000, 0 FROM n",
            ),
        };
        let connection = db.connection();
        connection
            .execute_unprepared(
                "CREATE TABLE bench_stock (id BIGINT PRIMARY KEY, on_hand BIGINT NOT NULL, reserved BIGINT NOT NULL)",
            )
            .await?;
        connection
            .execute_unprepared(&format!(
                "CREATE TABLE bench_hold (id {serial} PRIMARY KEY, stock_id BIGINT NOT NULL, quantity BIGINT NOT NULL, \
                 created_time TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            ))
            .await?;
        connection.execute_unprepared(&format!("INSERT INTO bench_stock (id, on_hand, reserved) {rows}")).await?;
        Ok(Self { db })
    }

    /// Runs the transaction on spread rows, or all on row 1 when `hot`, `concurrency` at a time.
    pub async fn run(&self, hot: bool, concurrency: usize, duration: Duration) -> Run {
        let this = self.clone();
        drive(concurrency, duration, move |worker, n| {
            let this = this.clone();
            let row = if hot { 1 } else { (n.wrapping_mul(7919) + worker as u64 * 104_729) % MINIMAL_ITEMS + 1 };
            async move {
                match this.reserve(row as i64).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(Code::FailedPrecondition),
                    Err(_) => Err(Code::Internal),
                }
            }
        })
        .await
    }

    async fn reserve(&self, row: i64) -> Result<bool, DbErr> {
        let backend = self.db.backend();
        self.db
            .write(move |txn| {
                Box::pin(async move {
                    let taken = txn.execute_raw(stmt(backend, MINIMAL_TAKE, "", vec![row.into()])).await?;
                    if taken.rows_affected() == 0 {
                        return Ok(false);
                    }
                    txn.execute_raw(stmt(backend, MINIMAL_HOLD, "", vec![row.into()])).await?;
                    Ok::<_, DbErr>(true)
                })
            })
            .await
    }

    /// Closes the pool, so that what runs next has the server's connections.
    pub async fn close(self) {
        let _ = self.db.close().await;
    }
}

/// The same transaction sent by `pgbench` (prepared statements, `concurrency` clients) to the
/// database at `url`, which `MinimalReservation::create` has set up: its transactions per second,
/// or why it did not run.
pub async fn run_pgbench(
    url: &str,
    hot: bool,
    concurrency: usize,
    duration: Duration,
    dir: &Path,
) -> Result<f64, String> {
    let row = if hot { "\\set s 1".to_owned() } else { format!("\\set s random(1, {MINIMAL_ITEMS})") };
    let script =
        format!("{row}\nBEGIN;\n{};\n{};\nCOMMIT;\n", MINIMAL_TAKE.replace('?', ":s"), MINIMAL_HOLD.replace('?', ":s"));
    let file = dir.join(if hot { "pgbench-hot.sql" } else { "pgbench-spread.sql" });
    std::fs::write(&file, script).map_err(|e| e.to_string())?;
    let output = tokio::process::Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-j", "2"])
        .args(["-c", &concurrency.to_string(), "-T", &duration.as_secs().max(1).to_string(), "-f"])
        .arg(&file)
        .arg(url)
        .output()
        .await
        .map_err(|e| format!("pgbench did not start: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_tps(&text).ok_or_else(|| {
        let error = String::from_utf8_lossy(&output.stderr);
        format!("pgbench gave no figure: {}", error.lines().last().unwrap_or("no output"))
    })
}

/// The figure of pgbench's `tps = 3810.123456 (without initial connection time)` line.
fn parse_tps(output: &str) -> Option<f64> {
    output.lines().find_map(|line| line.strip_prefix("tps = ")?.split_whitespace().next()?.parse().ok())
}

const FOR_UPDATE: &str = " FOR UPDATE";
const FOR_SHARE: &str = " FOR SHARE";

/// A statement for `backend`: `?` placeholders numbered for PostgreSQL, and the row lock clause,
/// which SQLite has no use for (its writers take turns), left out there.
fn stmt(backend: Backend, sql: &str, lock: &str, values: Vec<Value>) -> Statement {
    match backend {
        Backend::Sqlite => Statement::from_sql_and_values(sea_orm::DbBackend::Sqlite, sql, values),
        Backend::Postgres => {
            let mut numbered = String::with_capacity(sql.len() + lock.len() + 8);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    numbered.push_str(&format!("${n}"));
                } else {
                    numbered.push(c);
                }
            }
            numbered.push_str(lock);
            Statement::from_sql_and_values(sea_orm::DbBackend::Postgres, numbered, values)
        }
    }
}

/// Starts a bare tonic server with only the health service on a free local port.
pub async fn start_echo() -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (_reporter, service) = tonic_health::server::health_reporter();
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tokio::spawn(tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming));
    Ok(address)
}

/// Health checks against the bare server at `address`, `concurrency` at a time.
pub async fn run_echo(address: SocketAddr, concurrency: usize, duration: Duration) -> Run {
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}")).map(|e| e.connect_lazy());
    let Ok(channel) = channel else { return Run::default() };
    let client = HealthClient::new(channel);
    drive(concurrency, duration, move |_, _| {
        let mut client = client.clone();
        async move { client.check(HealthCheckRequest { service: String::new() }).await.map(drop).map_err(|s| s.code()) }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgbench_figures_are_read_from_its_tps_line() {
        let output = "number of failed transactions: 0 (0.000%)\nlatency average = 8.4 ms\n\
                      tps = 3810.123456 (without initial connection time)\n";
        assert_eq!(parse_tps(output), Some(3810.123456));
        assert_eq!(parse_tps("pgbench: error: connection failed"), None);
    }

    #[tokio::test]
    async fn the_minimal_transaction_takes_stock_until_none_is_left() {
        let dir = tempfile::tempdir().expect("a directory");
        let url = format!("sqlite://{}/minimal.db", dir.path().display());
        let minimal = MinimalReservation::create(&url, 2).await.expect("created");
        minimal
            .db
            .connection()
            .execute_unprepared("UPDATE bench_stock SET on_hand = 2 WHERE id = 1")
            .await
            .expect("two units");
        assert!(minimal.reserve(1).await.expect("first"));
        assert!(minimal.reserve(1).await.expect("second"));
        assert!(!minimal.reserve(1).await.expect("none left"), "a third unit was taken");
        let held = minimal
            .db
            .connection()
            .query_one_raw(Statement::from_string(sea_orm::DbBackend::Sqlite, "SELECT COUNT(*) FROM bench_hold"))
            .await
            .expect("counted")
            .expect("a row");
        assert_eq!(held.try_get_by_index::<i64>(0).expect("a count"), 2);
    }
}
