//! fulfillctl: manage the suite from a terminal. Every command is one gRPC call (or a few, for
//! `--all`), and every error is shown with the details the server sent.

mod display;
mod inventory;
mod keys;
mod reservation;
mod sku;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fulfillment_proto::access::v1::access_service_client::AccessServiceClient;
use fulfillment_proto::catalog::v1 as pb;
use fulfillment_proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use fulfillment_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use fulfillment_proto::reservation::v1::reservation_service_client::ReservationServiceClient;
use fulfillment_server::tls::{self, ClientTls};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The suite's command-line client.
#[derive(Debug, Parser)]
#[command(name = "fulfillctl", version, about)]
struct Cli {
    /// The Catalog service's address.
    #[arg(long, env = "FULFILLMENT_CATALOG_URL", default_value = "http://127.0.0.1:50051", global = true)]
    catalog: String,
    /// The Inventory service's address.
    #[arg(long, env = "FULFILLMENT_INVENTORY_URL", default_value = "http://127.0.0.1:50052", global = true)]
    inventory: String,
    /// The Reservation service's address.
    #[arg(long, env = "FULFILLMENT_RESERVATION_URL", default_value = "http://127.0.0.1:50053", global = true)]
    reservation: String,
    /// The API key every call carries (`authorization: Bearer <key>`).
    #[arg(long, env = "FULFILLMENT_API_KEY", global = true, hide_env_values = true)]
    api_key: Option<String>,
    /// The CA that signed the services' certificates, for `https://` addresses.
    #[arg(long, env = "FULFILLMENT_TLS_CA", global = true)]
    tls_ca: Option<std::path::PathBuf>,
    /// A client certificate, for services that require mutual TLS (with --tls-key).
    #[arg(long, env = "FULFILLMENT_TLS_CERT", global = true, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The client certificate's private key.
    #[arg(long, env = "FULFILLMENT_TLS_KEY", global = true, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// A connection whose calls carry the API key.
pub(crate) type Conn = InterceptedService<Channel, Bearer>;

/// Adds `authorization: Bearer <key>` to every call.
#[derive(Clone)]
pub(crate) struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, change, show, list and delete SKUs.
    #[command(subcommand)]
    Sku(Box<sku::SkuCommand>),
    /// Register, list and remove manufacturer id / part number pairs.
    #[command(subcommand)]
    Part(PartCommand),
    /// Create, show, list and delete inventory items.
    #[command(subcommand)]
    Item(inventory::ItemCommand),
    /// Create, show, list and delete warehouses.
    #[command(subcommand)]
    Warehouse(inventory::WarehouseCommand),
    /// Receive, adjust and count stock; show an item's ledger.
    #[command(subcommand)]
    Stock(inventory::StockCommand),
    /// Show on-hand, reserved and available quantities of items.
    Levels(inventory::LevelsArgs),
    /// Reserve items for a checkout: every one or none.
    Reserve(reservation::ReserveArgs),
    /// Show, list and cancel reservations.
    #[command(subcommand)]
    Reservation(reservation::ReservationCommand),
    /// Create the fulfillment order of a reservation, committing its hold.
    Fulfill(reservation::FulfillArgs),
    /// Compare every managed SKU with its inventory item; prints nothing wrong in a healthy suite.
    Check,
    /// Create, list and revoke API keys (needs an admin key).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

#[derive(Debug, Subcommand)]
enum PartCommand {
    /// Registers a manufacturer id / part number pair.
    Register { manufacturer_id: String, part_number: String },
    /// Lists registered pairs.
    List {
        #[arg(long)]
        manufacturer_id: Option<String>,
        #[arg(long)]
        part_number: Option<String>,
    },
    /// Removes a pair that no managed SKU uses.
    Delete { manufacturer_id: String, part_number: String },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match Connector::new(&cli) {
        Ok(connector) => dispatch(cli.command, &connector).await,
        Err(message) => Err(message),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command, connector: &Connector) -> Result<(), String> {
    let connect = |url: &str, service: &str| connector.connect(url.to_owned(), service.to_owned());
    let cli = connector;
    match command {
        Command::Sku(command) => match connect(&cli.catalog, "catalog").await {
            Ok(channel) => sku::run(&mut CatalogServiceClient::new(channel), *command).await,
            Err(message) => Err(message),
        },
        Command::Part(command) => match connect(&cli.catalog, "catalog").await {
            Ok(channel) => run_part(&mut CatalogServiceClient::new(channel), command).await,
            Err(message) => Err(message),
        },
        Command::Check => match connect(&cli.catalog, "catalog").await {
            Ok(channel) => check(&mut CatalogServiceClient::new(channel)).await,
            Err(message) => Err(message),
        },
        Command::Reserve(args) => match connect(&cli.reservation, "reservation service").await {
            Ok(channel) => reservation::reserve(&mut ReservationServiceClient::new(channel), args).await,
            Err(message) => Err(message),
        },
        Command::Reservation(command) => match connect(&cli.reservation, "reservation service").await {
            Ok(channel) => reservation::run(&mut ReservationServiceClient::new(channel), command).await,
            Err(message) => Err(message),
        },
        Command::Fulfill(args) => match connect(&cli.reservation, "reservation service").await {
            Ok(channel) => reservation::fulfill(&mut ReservationServiceClient::new(channel), args).await,
            Err(message) => Err(message),
        },
        Command::Keys(command) => match connect(&cli.inventory, "inventory").await {
            Ok(channel) => keys::run(&mut AccessServiceClient::new(channel), command).await,
            Err(message) => Err(message),
        },
        command => match connect(&cli.inventory, "inventory").await {
            Ok(channel) => {
                let mut client = InventoryServiceClient::new(channel);
                match command {
                    Command::Item(command) => inventory::run_item(&mut client, command).await,
                    Command::Warehouse(command) => inventory::run_warehouse(&mut client, command).await,
                    Command::Stock(command) => inventory::run_stock(&mut client, command).await,
                    Command::Levels(args) => inventory::run_levels(&mut client, args).await,
                    _ => Ok(()),
                }
            }
            Err(message) => Err(message),
        },
    }
}

/// How to reach the services: their addresses, the key, the TLS settings.
struct Connector {
    catalog: String,
    inventory: String,
    reservation: String,
    bearer: Bearer,
    tls: ClientTls,
}

impl Connector {
    fn new(cli: &Cli) -> Result<Self, String> {
        let bearer = match &cli.api_key {
            Some(key) => Some(
                format!("Bearer {}", key.trim())
                    .parse()
                    .map_err(|_| "error: the API key is not a valid header value")?,
            ),
            None => None,
        };
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| format!("error: cannot read {}: {e}", path.display()))
        };
        let ca = cli.tls_ca.as_deref().map(read).transpose()?;
        let identity = match (&cli.tls_cert, &cli.tls_key) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            _ => None,
        };
        Ok(Self {
            catalog: cli.catalog.clone(),
            inventory: cli.inventory.clone(),
            reservation: cli.reservation.clone(),
            bearer: Bearer(bearer),
            tls: ClientTls::new(ca, identity, None),
        })
    }

    async fn connect(&self, url: String, service: String) -> Result<Conn, String> {
        let endpoint = tls::endpoint(&url, &self.tls).map_err(|e| format!("error: {e}"))?;
        let channel =
            endpoint.connect().await.map_err(|e| format!("error: cannot reach the {service} at {url}: {e}"))?;
        Ok(InterceptedService::new(channel, self.bearer.clone()))
    }
}

async fn check(client: &mut CatalogServiceClient<Conn>) -> Result<(), String> {
    let (mut found, mut page_token) = (0, String::new());
    loop {
        let request = pb::CheckConsistencyRequest { page_size: 0, page_token };
        let page = client.check_consistency(request).await.map_err(display::status)?.into_inner();
        for finding in &page.inconsistencies {
            let kind = finding.kind().as_str_name().trim_start_matches("INCONSISTENCY_KIND_").to_lowercase();
            println!("{:<36} {kind}", finding.sku_id);
        }
        found += page.inconsistencies.len();
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if found == 0 {
        println!("consistent: every managed SKU has its inventory item, and every owned item its SKU");
        return Ok(());
    }
    Err(format!("{found} inconsistencies"))
}

async fn run_part(client: &mut CatalogServiceClient<Conn>, command: PartCommand) -> Result<(), String> {
    match command {
        PartCommand::Register { manufacturer_id, part_number } => {
            let request = pb::RegisterManufacturerPartRequest { manufacturer_id, part_number };
            let part = client.register_manufacturer_part(request).await.map_err(display::status)?.into_inner();
            if let Some(part) = part.manufacturer_part {
                println!("registered {} / {}", part.manufacturer_id, part.part_number);
            }
        }
        PartCommand::List { manufacturer_id, part_number } => {
            let mut token = String::new();
            println!("{:<24} PART NUMBER", "MANUFACTURER ID");
            loop {
                let request = pb::ListManufacturerPartsRequest {
                    page_size: 100,
                    page_token: token,
                    manufacturer_id: manufacturer_id.clone().unwrap_or_default(),
                    part_number: part_number.clone().unwrap_or_default(),
                };
                let page = client.list_manufacturer_parts(request).await.map_err(display::status)?.into_inner();
                for part in page.manufacturer_parts {
                    println!("{:<24} {}", part.manufacturer_id, part.part_number);
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
        }
        PartCommand::Delete { manufacturer_id, part_number } => {
            let request = pb::DeleteManufacturerPartRequest {
                manufacturer_id: manufacturer_id.clone(),
                part_number: part_number.clone(),
            };
            client.delete_manufacturer_part(request).await.map_err(display::status)?;
            println!("removed {manufacturer_id} / {part_number}");
        }
    }
    Ok(())
}
