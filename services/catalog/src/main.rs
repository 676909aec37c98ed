//! The Catalog binary: configuration from the environment, then [`catalog::run`].

use fulfillment_server::config::Env;
use fulfillment_server::telemetry::{self, LogFormat};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = Env::from_process();
    let telemetry = telemetry::init(
        "catalog",
        env.parse_or("LOG_FORMAT", LogFormat::Text)?,
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
    );
    let config = catalog::CatalogConfig::from_env(&env)?;
    let listeners = fulfillment_server::Listeners::bind(&config.service).await?;
    let served = catalog::run(config, listeners, fulfillment_server::shutdown_signal()).await;
    telemetry.shutdown().await;
    Ok(served?)
}
