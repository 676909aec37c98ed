use sea_orm::{ConnectionTrait, DbErr};
use sea_orm_migration::MigratorTrait;

use crate::{Backend, Database};

/// Brings the schema up to date. On PostgreSQL the migrations run in one transaction under an
/// advisory lock, so replicas starting together apply each migration once and the others wait.
/// Under serializable isolation the waiter's snapshot predates the winner's migrations, so it
/// fails with a serialization error; `Database::write` tries it again, and then it finds them done.
pub async fn migrate<M: MigratorTrait>(db: &Database) -> Result<(), DbErr> {
    match db.backend() {
        Backend::Sqlite => M::up(db.connection(), None).await,
        Backend::Postgres => {
            db.write(|transaction| {
                Box::pin(async move {
                    // A fixed key: every service has its own database, so they never contend for it.
                    transaction.execute_unprepared("SELECT pg_advisory_xact_lock(7240518)").await?;
                    M::up(transaction, None).await
                })
            })
            .await
        }
    }
}
