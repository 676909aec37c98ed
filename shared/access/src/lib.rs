//! API keys for the suite (docs/architecture.md, "Access, limits and admission").
//!
//! Every call carries `authorization: Bearer <key>`. A key is a live key, a test key, or a service
//! key that one of the suite's services holds to call another; each has scopes (read, write,
//! admin). Keys live in one [`Registry`], served by the Inventory through the access RPCs; the
//! Catalog and the Reservation service ask it about the keys they receive ([`RemoteKeys`]). The
//! [`KeyGate`] checks each call before its handler runs and attaches the caller's [`Principal`]: the
//! handler serves the call from the store of the principal's mode ([`ByMode`]), so a test key never
//! sees a live object, nor a live key a test one.

mod error;
mod gate;
mod grpc;
pub mod key;
mod registry;
mod settings;

use tonic::{Request, Status};

pub use crate::error::AccessError;
pub use crate::gate::{GateLimits, KeyGate, Keys, Need, Policy, RateLimit, RemoteKeys};
pub use crate::grpc::{AccessGrpc, key_to_proto};
pub use crate::key::{KeyKind, Scope};
pub use crate::registry::{ApiKey, NewKey, Registry, SERVICES};
pub use crate::settings::AccessSettings;

/// `ErrorInfo.domain` of refusals about keys.
pub const DOMAIN: &str = "access.fulfillment";

/// Who is calling: their key, and the mode the call is served in.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The key the call came with.
    pub key: ApiKey,
    /// Whether the call reads and writes live objects.
    pub live_mode: bool,
}

impl Principal {
    /// Whether the caller is the suite's service `name`, by its service key.
    pub fn is_service(&self, name: &str) -> bool {
        self.key.kind == KeyKind::Service && self.key.service.as_deref() == Some(name)
    }
}

/// The caller the gate let in. Handlers run behind the gate, so a call without one is refused.
pub fn principal<T>(request: &Request<T>) -> Result<&Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| Status::unauthenticated("An API key is required: send it as 'authorization: Bearer <key>'."))
}

/// One of a thing per mode: the live store and the test store of a service, apart.
#[derive(Clone, Debug)]
pub struct ByMode<T> {
    /// Serves live keys.
    pub live: T,
    /// Serves test keys.
    pub test: T,
}

impl<T> ByMode<T> {
    /// The one for `live_mode`.
    pub fn get(&self, live_mode: bool) -> &T {
        if live_mode { &self.live } else { &self.test }
    }

    /// The one for the mode of the call `request` belongs to.
    pub fn pick<R>(&self, request: &Request<R>) -> Result<&T, Status> {
        Ok(self.get(principal(request)?.live_mode))
    }
}

impl ByMode<fulfillment_storage::Database> {
    /// Closes both stores' connections.
    pub async fn close(self) -> Result<(), sea_orm::DbErr> {
        self.live.close().await?;
        self.test.close().await
    }
}

/// Connects to a service's two stores, the live one and the test one, and migrates both with `M`.
pub async fn connect_stores<M: sea_orm_migration::MigratorTrait>(
    settings: &fulfillment_server::ServiceSettings,
) -> Result<ByMode<fulfillment_storage::Database>, sea_orm::DbErr> {
    use fulfillment_storage::Database;
    let url = settings.database_url.expose();
    let live = Database::connect(url, settings.pool).await?;
    let test = match &settings.test_database_url {
        Some(test_url) => Database::connect(test_url.expose(), settings.pool).await?,
        None => Database::connect_test_mode(url, settings.pool).await?,
    };
    for db in [&live, &test] {
        fulfillment_storage::migrate::<M>(db).await?;
    }
    Ok(ByMode { live, test })
}
