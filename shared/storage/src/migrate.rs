use sea_orm::{ConnectionTrait, DbErr, TransactionTrait};
use sea_orm_migration::MigratorTrait;

use crate::{Backend, Database};

/// Brings the schema up to date. On PostgreSQL the migrations run in one transaction under an
/// advisory lock, so replicas starting together apply each migration once and the others wait.
pub async fn migrate<M: MigratorTrait>(db: &Database) -> Result<(), DbErr> {
    match db.backend() {
        Backend::Sqlite => M::up(db.connection(), None).await,
        Backend::Postgres => {
            let transaction = db.connection().begin().await?;
            // A fixed key: every service has its own database, so they never contend for it.
            transaction.execute_unprepared("SELECT pg_advisory_xact_lock(7240518)").await?;
            M::up(&transaction, None).await?;
            transaction.commit().await
        }
    }
}
