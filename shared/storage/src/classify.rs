use std::ops::Deref;

use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// What a database error means for the caller, decided once for every service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbFailure {
    /// A unique or primary key was already taken.
    UniqueViolation,
    /// The transaction lost a race (serialization failure, deadlock, SQLite busy) and may be retried.
    Retryable,
    /// The database could not be reached.
    Unavailable,
    /// Anything else: a bug or a broken database.
    Other,
}

/// PostgreSQL's serialization failure and deadlock codes, which CockroachDB and YugabyteDB share.
const RETRYABLE_SQLSTATES: &[&str] = &["40001", "40P01"];
/// SQLite's primary result codes for a locked database.
const SQLITE_BUSY_CODES: &[&str] = &["5", "6"];

/// Classifies a database error.
pub fn classify(error: &DbErr) -> DbFailure {
    if let Some(SqlErr::UniqueConstraintViolation(_)) = error.sql_err() {
        return DbFailure::UniqueViolation;
    }
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => DbFailure::Unavailable,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => match e.deref() {
            sea_orm::sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                // SQLite reports extended codes (e.g. 517, SQLITE_BUSY_SNAPSHOT); the low byte is the primary one.
                let primary = code.parse::<u32>().map(|c| (c & 0xff).to_string()).unwrap_or_default();
                if RETRYABLE_SQLSTATES.contains(&code.as_ref()) || SQLITE_BUSY_CODES.contains(&primary.as_str()) {
                    DbFailure::Retryable
                } else {
                    DbFailure::Other
                }
            }
            sea_orm::sqlx::Error::Io(_) | sea_orm::sqlx::Error::PoolTimedOut | sea_orm::sqlx::Error::PoolClosed => {
                DbFailure::Unavailable
            }
            _ => DbFailure::Other,
        },
        _ => DbFailure::Other,
    }
}
