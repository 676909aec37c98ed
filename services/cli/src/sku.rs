//! `fulfillctl sku ...`

use clap::{Args, Subcommand};
use fulfillment_proto::catalog::v1 as pb;
use fulfillment_proto::catalog::v1::catalog_service_client::CatalogServiceClient;

use crate::display;

#[derive(Debug, Subcommand)]
pub(crate) enum SkuCommand {
    /// Creates a SKU (an id is generated when --id is left out).
    Create(SkuFields),
    /// Creates the SKU with --id, or updates it if it exists.
    Upsert(SkuFields),
    /// Changes the given attributes of a SKU; --clear empties one (e.g. --clear managed_fulfillment).
    Update {
        #[command(flatten)]
        fields: SkuFields,
        /// An attribute to clear, by its field name; may be repeated.
        #[arg(long = "clear", value_name = "FIELD")]
        clear: Vec<String>,
    },
    /// Shows a SKU.
    Get { id: String },
    /// Lists SKUs, newest last.
    List(ListArgs),
    /// Deletes a SKU.
    Delete { id: String },
}

/// The attributes a command may set; each flag is the field's name.
#[derive(Debug, Args)]
pub(crate) struct SkuFields {
    #[arg(long)]
    id: Option<String>,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    description: Option<String>,
    #[arg(long)]
    eccn: Option<String>,
    #[arg(long)]
    tax_code: Option<String>,
    #[arg(long)]
    country_of_origin: Option<String>,
    #[arg(long)]
    hs_code: Option<String>,
    #[arg(long)]
    sku_group_id: Option<String>,
    #[arg(long)]
    manufacturer_id: Option<String>,
    #[arg(long)]
    part_number: Option<String>,
    #[arg(long)]
    image: Option<String>,
    #[arg(long)]
    url: Option<String>,
    #[arg(long)]
    weight: Option<f64>,
    #[arg(long)]
    weight_unit: Option<String>,
    #[arg(long)]
    allow_oversell: Option<bool>,
    #[arg(long)]
    fulfill: bool,
    /// Makes the suite the SKU's fulfillment coordinator (managed_fulfillment = DRGlobalFulfillment).
    #[arg(long)]
    managed: bool,
    #[arg(long)]
    item_breadcrumb: Option<String>,
    /// A metadata entry; may be repeated.
    #[arg(long = "metadata", value_name = "KEY=VALUE", value_parser = parse_pair)]
    metadata: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// SKUs per page, 1 to 100.
    #[arg(long, default_value_t = 20)]
    page_size: i32,
    /// Continue from a previous page.
    #[arg(long, default_value = "")]
    page_token: String,
    /// Follow the pages to the end.
    #[arg(long)]
    all: bool,
    /// Only these ids; may be repeated.
    #[arg(long = "id")]
    ids: Vec<String>,
    #[arg(long)]
    eccn: Option<String>,
    #[arg(long)]
    part_number: Option<String>,
    #[arg(long)]
    hs_code: Option<String>,
    #[arg(long)]
    tax_code: Option<String>,
    #[arg(long)]
    sku_group_id: Option<String>,
}

fn parse_pair(value: &str) -> Result<(String, String), String> {
    value
        .split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got '{value}'"))
}

impl SkuFields {
    fn into_sku(self) -> pb::Sku {
        pb::Sku {
            id: self.id.unwrap_or_default(),
            name: self.name.unwrap_or_default(),
            description: self.description.unwrap_or_default(),
            eccn: self.eccn.unwrap_or_default(),
            tax_code: self.tax_code.unwrap_or_default(),
            country_of_origin: self.country_of_origin.unwrap_or_default(),
            hs_code: self.hs_code.unwrap_or_default(),
            sku_group_id: self.sku_group_id.unwrap_or_default(),
            manufacturer_id: self.manufacturer_id.unwrap_or_default(),
            part_number: self.part_number.unwrap_or_default(),
            image: self.image.unwrap_or_default(),
            url: self.url.unwrap_or_default(),
            weight: self.weight,
            weight_unit: self.weight_unit.unwrap_or_default(),
            allow_oversell: self.allow_oversell,
            fulfill: self.fulfill,
            managed_fulfillment: if self.managed { "DRGlobalFulfillment".into() } else { String::new() },
            item_breadcrumb: self.item_breadcrumb.unwrap_or_default(),
            metadata: self.metadata.into_iter().collect(),
            ..Default::default()
        }
    }
}

pub(crate) async fn run(client: &mut CatalogServiceClient<crate::Conn>, command: SkuCommand) -> Result<(), String> {
    match command {
        SkuCommand::Create(fields) => {
            let request = pb::CreateSkuRequest { sku: Some(fields.into_sku()) };
            let sku = client.create_sku(request).await.map_err(display::status)?.into_inner().sku.unwrap_or_default();
            println!("created\n{}", display::sku(&sku));
        }
        SkuCommand::Upsert(fields) => {
            let request = pb::UpsertSkuRequest { sku: Some(fields.into_sku()) };
            let response = client.upsert_sku(request).await.map_err(display::status)?.into_inner();
            let verb = if response.created { "created" } else { "updated" };
            println!("{verb}\n{}", display::sku(&response.sku.unwrap_or_default()));
        }
        SkuCommand::Update { fields, clear } => {
            let sku = fields.into_sku();
            let mut paths = set_paths(&sku);
            paths.extend(clear);
            let request = pb::UpdateSkuRequest { sku: Some(sku), update_mask: Some(prost_types::FieldMask { paths }) };
            let sku = client.update_sku(request).await.map_err(display::status)?.into_inner().sku.unwrap_or_default();
            println!("updated\n{}", display::sku(&sku));
        }
        SkuCommand::Get { id } => {
            let sku = client
                .get_sku(pb::GetSkuRequest { id })
                .await
                .map_err(display::status)?
                .into_inner()
                .sku
                .unwrap_or_default();
            println!("{}", display::sku(&sku));
        }
        SkuCommand::List(args) => list(client, args).await?,
        SkuCommand::Delete { id } => {
            client.delete_sku(pb::DeleteSkuRequest { id: id.clone() }).await.map_err(display::status)?;
            println!("deleted {id}");
        }
    }
    Ok(())
}

/// The mask paths of the attributes a command line set.
fn set_paths(sku: &pb::Sku) -> Vec<String> {
    let strings = [
        ("name", &sku.name),
        ("description", &sku.description),
        ("eccn", &sku.eccn),
        ("tax_code", &sku.tax_code),
        ("country_of_origin", &sku.country_of_origin),
        ("hs_code", &sku.hs_code),
        ("sku_group_id", &sku.sku_group_id),
        ("manufacturer_id", &sku.manufacturer_id),
        ("part_number", &sku.part_number),
        ("image", &sku.image),
        ("url", &sku.url),
        ("weight_unit", &sku.weight_unit),
        ("managed_fulfillment", &sku.managed_fulfillment),
        ("item_breadcrumb", &sku.item_breadcrumb),
    ];
    let mut paths: Vec<String> = strings.iter().filter(|(_, v)| !v.is_empty()).map(|(p, _)| (*p).to_owned()).collect();
    let flags = [
        ("weight", sku.weight.is_some()),
        ("allow_oversell", sku.allow_oversell.is_some()),
        ("fulfill", sku.fulfill),
        ("metadata", !sku.metadata.is_empty()),
    ];
    paths.extend(flags.iter().filter(|(_, set)| *set).map(|(p, _)| (*p).to_owned()));
    paths
}

async fn list(client: &mut CatalogServiceClient<crate::Conn>, args: ListArgs) -> Result<(), String> {
    let mut token = args.page_token.clone();
    println!("{}", display::SKU_TABLE_HEADER);
    loop {
        let request = pb::ListSkusRequest {
            page_size: args.page_size,
            page_token: token,
            ids: args.ids.clone(),
            eccn: args.eccn.clone().unwrap_or_default(),
            part_number: args.part_number.clone().unwrap_or_default(),
            hs_code: args.hs_code.clone().unwrap_or_default(),
            tax_code: args.tax_code.clone().unwrap_or_default(),
            sku_group_id: args.sku_group_id.clone().unwrap_or_default(),
            created_time: None,
            updated_time: None,
        };
        let page = client.list_skus(request).await.map_err(display::status)?.into_inner();
        for sku in &page.skus {
            println!("{}", display::sku_row(sku));
        }
        if page.next_page_token.is_empty() {
            return Ok(());
        }
        if !args.all {
            println!("more: --page-token {}", page.next_page_token);
            return Ok(());
        }
        token = page.next_page_token;
    }
}
