//! The baselines a workload is compared with, measured in the same run on the same machine:
//! the SQL a reservation performs, sent straight to the same databases step by step as the services
//! send it, with no gRPC in between; and a bare tonic service answering health checks.

use std::net::SocketAddr;
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
