//! A fresh database for each test: a SQLite file in a temporary folder, or a new PostgreSQL database
//! created from `TEST_DATABASE_URL` and dropped when the test ends.

use std::sync::atomic::{AtomicU32, Ordering};

use sea_orm::{ConnectionTrait, DbErr};

use crate::Backend;

/// The variable naming the PostgreSQL server the tests may use.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

/// The variable giving the default isolation of every test database on PostgreSQL
/// (`serializable`, as distributed PostgreSQL-compatible engines run, or `repeatable read`); unset,
/// PostgreSQL's own default, read committed.
pub const TEST_DATABASE_ISOLATION: &str = "TEST_DATABASE_ISOLATION";

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Folder(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// Creates an empty database on `backend`. On PostgreSQL this needs `TEST_DATABASE_URL`; use
    /// [`postgres_url`] to find out whether it is set.
    pub async fn create(backend: Backend) -> Result<Self, DbErr> {
        match backend {
            Backend::Sqlite => {
                let folder = tempfile::tempdir().map_err(|e| DbErr::Custom(format!("temp dir: {e}")))?;
                let url = format!("sqlite://{}/test.db", folder.path().display());
                Ok(Self { url, cleanup: Cleanup::Folder(folder) })
            }
            Backend::Postgres => {
                let admin_url =
                    postgres_url().ok_or_else(|| DbErr::Custom(format!("{TEST_DATABASE_URL} is not set")))?;
                static COUNTER: AtomicU32 = AtomicU32::new(0);
                let name = format!(
                    "test_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed),
                    uuid::Uuid::new_v4().simple().to_string().get(..8).unwrap_or_default()
                );
                let isolation = isolation()?;
                let admin = sea_orm::Database::connect(&admin_url).await?;
                admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await?;
                if let Some(level) = isolation {
                    let set = format!("ALTER DATABASE \"{name}\" SET default_transaction_isolation = '{level}'");
                    admin.execute_unprepared(&set).await?;
                }
                admin.close().await?;
                let url = replace_database(&admin_url, &name);
                Ok(Self { url, cleanup: Cleanup::Postgres { admin_url, name } })
            }
        }
    }

    /// The URL to hand to the service under test.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime, which cannot be blocked on; use a runtime of our own.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                runtime.block_on(async {
                    let admin = sea_orm::Database::connect(&admin_url).await.ok()?;
                    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await.ok()?;
                    admin.close().await.ok()
                })
            })
            .join();
            if !matches!(dropped, Ok(Some(()))) {
                eprintln!("warning: test database was not dropped");
            }
        }
    }
}

/// `TEST_DATABASE_URL`, when set.
pub fn postgres_url() -> Option<String> {
    std::env::var(TEST_DATABASE_URL).ok().filter(|v| !v.trim().is_empty())
}

/// The isolation `TEST_DATABASE_ISOLATION` asks for, checked against PostgreSQL's levels.
pub fn isolation() -> Result<Option<&'static str>, DbErr> {
    let Ok(asked) = std::env::var(TEST_DATABASE_ISOLATION) else { return Ok(None) };
    match asked.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "serializable" => Ok(Some("serializable")),
        "repeatable read" => Ok(Some("repeatable read")),
        "read committed" => Ok(Some("read committed")),
        _ => Err(DbErr::Custom(format!(
            "{TEST_DATABASE_ISOLATION}={asked}: expected serializable, repeatable read or read committed"
        ))),
    }
}

fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn the_database_name_is_replaced_and_the_query_kept() {
        assert_eq!(replace_database("postgres://u@h:5432/postgres", "t1"), "postgres://u@h:5432/t1");
        assert_eq!(replace_database("postgres://u@h:5432", "t1"), "postgres://u@h:5432/t1");
        assert_eq!(replace_database("postgres://u@h/x?sslmode=disable", "t1"), "postgres://u@h/t1?sslmode=disable");
    }
}
