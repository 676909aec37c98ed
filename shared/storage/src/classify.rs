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

/// Classifies a database's error code: an SQLSTATE on PostgreSQL, a result code on SQLite.
fn classify_code(sqlite: bool, code: &str) -> DbFailure {
    let retryable = if sqlite {
        // SQLite reports extended codes (517 is SQLITE_BUSY_SNAPSHOT); the low byte is the primary one.
        code.parse::<u32>().is_ok_and(|c| SQLITE_BUSY_CODES.contains(&(c & 0xff)))
    } else {
        RETRYABLE_SQLSTATES.contains(&code)
    };
    if retryable { DbFailure::Retryable } else { DbFailure::Other }
}

/// PostgreSQL's serialization failure and deadlock codes, which CockroachDB and YugabyteDB share.
const RETRYABLE_SQLSTATES: &[&str] = &["40001", "40P01"];
/// SQLite's primary result codes for a locked database.
const SQLITE_BUSY_CODES: &[u32] = &[5, 6];

/// Classifies a database error.
pub fn classify(error: &DbErr) -> DbFailure {
    if let Some(SqlErr::UniqueConstraintViolation(_)) = error.sql_err() {
        return DbFailure::UniqueViolation;
    }
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => DbFailure::Unavailable,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => match e.deref() {
            sea_orm::sqlx::Error::Database(db) => {
                let sqlite = db.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>().is_some();
                classify_code(sqlite, &db.code().unwrap_or_default())
            }
            sea_orm::sqlx::Error::Io(_) | sea_orm::sqlx::Error::PoolTimedOut | sea_orm::sqlx::Error::PoolClosed => {
                DbFailure::Unavailable
            }
            _ => DbFailure::Other,
        },
        _ => DbFailure::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_codes_are_retryable_only_for_serialization_failures_and_deadlocks() {
        assert_eq!(classify_code(false, "40001"), DbFailure::Retryable);
        assert_eq!(classify_code(false, "40P01"), DbFailure::Retryable);
        // All-digit SQLSTATEs whose low byte happens to be SQLite's busy code are not races.
        for code in ["22021", "22022", "42501", "23505", "54000"] {
            assert_eq!(classify_code(false, code), DbFailure::Other, "{code}");
        }
    }

    #[test]
    fn sqlite_busy_and_locked_are_retryable_with_their_extended_codes() {
        for code in ["5", "6", "517", "261"] {
            assert_eq!(classify_code(true, code), DbFailure::Retryable, "{code}");
        }
        for code in ["1555", "2067", "787", "19"] {
            assert_eq!(classify_code(true, code), DbFailure::Other, "{code}");
        }
    }
}
