//! `fulfillctl item|warehouse|stock|levels ...`: the Inventory service.

use clap::{Args, Subcommand};
use fulfillment_proto::inventory::v1 as pb;
use fulfillment_proto::inventory::v1::inventory_service_client::InventoryServiceClient;

use crate::display;

type Client = InventoryServiceClient<crate::Conn>;

#[derive(Debug, Subcommand)]
pub(crate) enum ItemCommand {
    /// Creates an inventory item (an id is generated when --id is left out).
    Create(ItemFields),
    /// Shows an inventory item.
    Get { id: String },
    /// Lists inventory items.
    List {
        #[arg(long)]
        manufacturer_id: Option<String>,
        #[arg(long)]
        part_number: Option<String>,
    },
    /// Deletes an inventory item.
    Delete { id: String },
}

#[derive(Debug, Args)]
pub(crate) struct ItemFields {
    #[arg(long)]
    id: Option<String>,
    #[arg(long)]
    manufacturer_id: Option<String>,
    #[arg(long)]
    part_number: Option<String>,
    #[arg(long)]
    eccn: Option<String>,
    #[arg(long)]
    hs_code: Option<String>,
    #[arg(long)]
    country_of_origin: Option<String>,
    #[arg(long)]
    allow_oversell: Option<bool>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WarehouseCommand {
    /// Creates a warehouse.
    Create {
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        name: String,
        /// Where the warehouse is (ISO 3166-1 alpha-2).
        #[arg(long)]
        country: String,
        /// Countries it ships to, comma-separated; leave out with --ships-everywhere.
        #[arg(long, value_delimiter = ',')]
        ships_to: Vec<String>,
        #[arg(long)]
        ships_everywhere: bool,
        /// Lower is preferred when several warehouses can fill an order.
        #[arg(long, default_value_t = 0)]
        priority: i32,
    },
    /// Shows a warehouse.
    Get { id: String },
    /// Lists warehouses.
    List,
    /// Deletes a warehouse that holds no stock.
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum StockCommand {
    /// Adds received units to a warehouse's stock.
    Receive(StockArgs),
    /// Adds a signed correction (negative for damage or loss).
    Adjust(StockArgs),
    /// Sets the on-hand quantity after a count.
    Set(StockArgs),
    /// Shows an item's stock ledger.
    Ledger { item: String },
}

#[derive(Debug, Args)]
pub(crate) struct StockArgs {
    item: String,
    warehouse: String,
    #[arg(allow_hyphen_values = true)]
    quantity: i64,
    /// Why, for the ledger.
    #[arg(long, default_value = "fulfillctl")]
    reason: String,
    /// Makes a retried command apply once; a fresh key is made when left out.
    #[arg(long)]
    key: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct LevelsArgs {
    /// The items to show.
    #[arg(required = true)]
    items: Vec<String>,
    /// Count only warehouses that ship to this country.
    #[arg(long)]
    ship_to: Option<String>,
    /// Show only items with at least this much available.
    #[arg(long)]
    min_available: Option<i64>,
}

pub(crate) async fn run_item(client: &mut Client, command: ItemCommand) -> Result<(), String> {
    match command {
        ItemCommand::Create(fields) => {
            let item = pb::InventoryItem {
                id: fields.id.unwrap_or_default(),
                manufacturer_id: fields.manufacturer_id.unwrap_or_default(),
                part_number: fields.part_number.unwrap_or_default(),
                eccn: fields.eccn.unwrap_or_default(),
                hs_code: fields.hs_code.unwrap_or_default(),
                country_of_origin: fields.country_of_origin.unwrap_or_default(),
                allow_oversell: fields.allow_oversell,
                ..Default::default()
            };
            let request = pb::CreateInventoryItemRequest { inventory_item: Some(item) };
            let item = client.create_inventory_item(request).await.map_err(display::status)?.into_inner();
            println!("created\n{}", display::item(&item.inventory_item.unwrap_or_default()));
        }
        ItemCommand::Get { id } => {
            let item = client.get_inventory_item(pb::GetInventoryItemRequest { id }).await.map_err(display::status)?;
            println!("{}", display::item(&item.into_inner().inventory_item.unwrap_or_default()));
        }
        ItemCommand::List { manufacturer_id, part_number } => {
            let mut token = String::new();
            println!("{:<36} {:<16} {:<24} {:<8} OWNER SKU", "ID", "MANUFACTURER", "PART NUMBER", "OVERSELL");
            loop {
                let request = pb::ListInventoryItemsRequest {
                    page_size: 100,
                    page_token: token,
                    manufacturer_id: manufacturer_id.clone().unwrap_or_default(),
                    part_number: part_number.clone().unwrap_or_default(),
                    ..Default::default()
                };
                let page = client.list_inventory_items(request).await.map_err(display::status)?.into_inner();
                for item in page.inventory_items {
                    let oversell = if item.allow_oversell.unwrap_or(false) { "yes" } else { "no" };
                    println!(
                        "{:<36} {:<16} {:<24} {:<8} {}",
                        item.id, item.manufacturer_id, item.part_number, oversell, item.owner_sku_id
                    );
                }
                if page.next_page_token.is_empty() {
                    return Ok(());
                }
                token = page.next_page_token;
            }
        }
        ItemCommand::Delete { id } => {
            client
                .delete_inventory_item(pb::DeleteInventoryItemRequest { id: id.clone() })
                .await
                .map_err(display::status)?;
            println!("deleted {id}");
        }
    }
    Ok(())
}

pub(crate) async fn run_warehouse(client: &mut Client, command: WarehouseCommand) -> Result<(), String> {
    match command {
        WarehouseCommand::Create { id, name, country, ships_to, ships_everywhere, priority } => {
            let warehouse = pb::Warehouse {
                id: id.unwrap_or_default(),
                name,
                country,
                ship_to_countries: ships_to,
                ships_everywhere,
                priority,
                ..Default::default()
            };
            let created = client
                .create_warehouse(pb::CreateWarehouseRequest { warehouse: Some(warehouse) })
                .await
                .map_err(display::status)?;
            println!("created\n{}", display::warehouse(&created.into_inner().warehouse.unwrap_or_default()));
        }
        WarehouseCommand::Get { id } => {
            let warehouse = client.get_warehouse(pb::GetWarehouseRequest { id }).await.map_err(display::status)?;
            println!("{}", display::warehouse(&warehouse.into_inner().warehouse.unwrap_or_default()));
        }
        WarehouseCommand::List => {
            let mut token = String::new();
            println!("{:<24} {:<24} {:<8} {:<9} SHIPS TO", "ID", "NAME", "COUNTRY", "PRIORITY");
            loop {
                let request = pb::ListWarehousesRequest { page_size: 100, page_token: token };
                let page = client.list_warehouses(request).await.map_err(display::status)?.into_inner();
                for w in page.warehouses {
                    let ships_to =
                        if w.ships_everywhere { "everywhere".to_owned() } else { w.ship_to_countries.join(",") };
                    println!("{:<24} {:<24} {:<8} {:<9} {}", w.id, w.name, w.country, w.priority, ships_to);
                }
                if page.next_page_token.is_empty() {
                    return Ok(());
                }
                token = page.next_page_token;
            }
        }
        WarehouseCommand::Delete { id } => {
            client.delete_warehouse(pb::DeleteWarehouseRequest { id: id.clone() }).await.map_err(display::status)?;
            println!("deleted {id}");
        }
    }
    Ok(())
}

pub(crate) async fn run_stock(client: &mut Client, command: StockCommand) -> Result<(), String> {
    let (kind, args) = match command {
        StockCommand::Receive(args) => (pb::StockChangeKind::Receive, args),
        StockCommand::Adjust(args) => (pb::StockChangeKind::Adjust, args),
        StockCommand::Set(args) => (pb::StockChangeKind::Set, args),
        StockCommand::Ledger { item } => return ledger(client, item).await,
    };
    let request = pb::AdjustStockRequest {
        inventory_item_id: args.item,
        warehouse_id: args.warehouse,
        kind: kind.into(),
        quantity: args.quantity,
        reason: args.reason,
        idempotency_key: args.key.unwrap_or_else(|| format!("fulfillctl-{}", uuid::Uuid::new_v4())),
    };
    let response = client.adjust_stock(request).await.map_err(display::status)?.into_inner();
    if let (Some(level), Some(movement)) = (response.level, response.movement) {
        println!(
            "{} {} in {}: on hand {} ({:+}), reserved {}, available {}",
            movement.idempotency_key,
            level.inventory_item_id,
            level.warehouse_id,
            level.on_hand,
            movement.delta,
            level.reserved,
            level.available
        );
    }
    Ok(())
}

async fn ledger(client: &mut Client, item: String) -> Result<(), String> {
    let mut token = String::new();
    println!("{:<28} {:<14} {:<8} {:>8} {:>9}  REASON", "TIME", "WAREHOUSE", "KIND", "DELTA", "ON HAND");
    loop {
        let request =
            pb::ListStockMovementsRequest { inventory_item_id: item.clone(), page_size: 100, page_token: token };
        let page = client.list_stock_movements(request).await.map_err(display::status)?.into_inner();
        for m in page.movements {
            let time = m.created_time.map(|t| t.to_string()).unwrap_or_default();
            let kind = m.kind().as_str_name().trim_start_matches("STOCK_CHANGE_KIND_").to_lowercase();
            println!("{time:<28} {:<14} {kind:<8} {:>8} {:>9}  {}", m.warehouse_id, m.delta, m.on_hand_after, m.reason);
        }
        if page.next_page_token.is_empty() {
            return Ok(());
        }
        token = page.next_page_token;
    }
}

pub(crate) async fn run_levels(client: &mut Client, args: LevelsArgs) -> Result<(), String> {
    let request = pb::GetInventoryLevelsRequest {
        inventory_item_ids: args.items,
        ship_to_country: args.ship_to.unwrap_or_default(),
        min_available: args.min_available,
    };
    let levels = client.get_inventory_levels(request).await.map_err(display::status)?.into_inner().levels;
    println!("{:<36} {:<24} {:>8} {:>9} {:>10}", "ITEM", "WAREHOUSE", "ON HAND", "RESERVED", "AVAILABLE");
    for level in levels {
        for w in &level.warehouses {
            println!(
                "{:<36} {:<24} {:>8} {:>9} {:>10}",
                level.inventory_item_id, w.warehouse_id, w.on_hand, w.reserved, w.available
            );
        }
        println!(
            "{:<36} {:<24} {:>8} {:>9} {:>10}",
            level.inventory_item_id, "(total)", level.on_hand, level.reserved, level.available
        );
    }
    Ok(())
}
