//! How every service is run: typed configuration from the environment, the gRPC server with
//! health, reflection and graceful shutdown, and the log subscriber.

pub mod admission;
pub mod background;
pub mod calls;
pub mod config;
pub mod fault;
pub mod gate;
mod grpc_server;
pub mod metrics;
pub mod request;
mod shutdown;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tls;

pub use config::{ServiceSettings, reference_data};
pub use grpc_server::{GrpcServer, Listeners, Port, ServerOptions};
pub use metrics::Metrics;

/// Why a service could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The database could not be reached or migrated.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// The gRPC server failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A certificate or key could not be used.
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    /// A setting is missing or wrong.
    #[error("configuration: {0}")]
    Config(#[from] config::ConfigError),
    /// An address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}
pub use shutdown::shutdown_signal;
