//! Database access shared by the services (docs/architecture.md, "Runtime").
//!
//! [`Database`] wraps a sea-orm connection with what every service needs on top of it: SQLite in WAL
//! mode with a busy timeout and writes that queue inside the process, PostgreSQL with retried
//! serialization failures, and one classification of database errors.

mod classify;
mod clock;
mod database;
mod group;
pub mod paging;
#[cfg(feature = "testing")]
pub mod testing;

pub use classify::{DbFailure, classify};
pub use clock::Clock;
pub use database::{Backend, Database, PoolConfig, TransactionError, TransactionFuture, retry_lost_insert};
pub use group::{Grouped, GroupedWrite};
mod migrate;

pub use migrate::migrate;

mod api_error;

pub use api_error::api_error;
