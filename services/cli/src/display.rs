//! Readable output: SKUs as aligned fields, errors with every detail the server sent.

use fulfillment_proto::catalog::v1 as pb;
use fulfillment_proto::inventory::v1 as inventory;
use fulfillment_proto::reservation::v1 as reservation;
use tonic_types::StatusExt;

/// An error status as lines a person can act on.
pub(crate) fn status(status: tonic::Status) -> String {
    let mut lines = vec![format!("error: {:?}: {}", status.code(), status.message())];
    let details = status.get_error_details();
    if let Some(bad_request) = details.bad_request() {
        for violation in &bad_request.field_violations {
            lines.push(format!("  {}: {}", violation.field, violation.description));
        }
    }
    if let Some(failure) = details.precondition_failure() {
        for violation in &failure.violations {
            lines.push(format!("  {} ({}): {}", violation.subject, violation.r#type, violation.description));
        }
    }
    if let Some(resource) = details.resource_info() {
        lines.push(format!("  resource: {} '{}'", resource.resource_type, resource.resource_name));
    }
    if let Some(info) = details.error_info() {
        lines.push(format!("  reason: {} ({})", info.reason, info.domain));
    }
    lines.join("\n")
}

/// A SKU as `field  value` lines, leaving out what is not set.
pub(crate) fn sku(sku: &pb::Sku) -> String {
    let time = |t: &Option<prost_types::Timestamp>| t.as_ref().map(|t| t.to_string()).unwrap_or_default();
    let mut fields: Vec<(&str, String)> = vec![
        ("id", sku.id.clone()),
        ("name", sku.name.clone()),
        ("description", sku.description.clone()),
        ("eccn", sku.eccn.clone()),
        ("tax_code", sku.tax_code.clone()),
        ("physical", sku.physical.to_string()),
        ("country_of_origin", sku.country_of_origin.clone()),
        ("hs_code", sku.hs_code.clone()),
        ("sku_group_id", sku.sku_group_id.clone()),
        ("manufacturer_id", sku.manufacturer_id.clone()),
        ("part_number", sku.part_number.clone()),
        ("image", sku.image.clone()),
        ("url", sku.url.clone()),
        ("weight", sku.weight.map(|w| format!("{w} {}", sku.weight_unit)).unwrap_or_default()),
        ("allow_oversell", sku.allow_oversell.map(|b| b.to_string()).unwrap_or_default()),
        ("fulfill", sku.fulfill.to_string()),
        ("managed_fulfillment", sku.managed_fulfillment.clone()),
        ("item_breadcrumb", sku.item_breadcrumb.clone()),
        ("live_mode", sku.live_mode.to_string()),
        ("created_time", time(&sku.created_time)),
        ("updated_time", time(&sku.updated_time)),
    ];
    let mut metadata: Vec<_> = sku.metadata.iter().collect();
    metadata.sort();
    let metadata: Vec<String> = metadata.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    fields.push(("metadata", metadata.join(", ")));
    fields
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name:<20} {value}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The header and one row of a SKU table.
pub(crate) const SKU_TABLE_HEADER: &str =
    "ID                                   NAME                       TAX CODE       PHYSICAL  MANAGED";

/// One SKU as a table row.
pub(crate) fn sku_row(sku: &pb::Sku) -> String {
    format!(
        "{:<36} {:<26} {:<14} {:<9} {}",
        sku.id,
        sku.name,
        sku.tax_code,
        if sku.physical { "yes" } else { "no" },
        if sku.managed_fulfillment.is_empty() { "no" } else { "yes" }
    )
}

/// `field  value` lines, leaving out what is empty.
fn fields(fields: Vec<(&str, String)>) -> String {
    fields
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name:<20} {value}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An inventory item as `field  value` lines.
pub(crate) fn item(item: &inventory::InventoryItem) -> String {
    fields(vec![
        ("id", item.id.clone()),
        ("manufacturer_id", item.manufacturer_id.clone()),
        ("part_number", item.part_number.clone()),
        ("eccn", item.eccn.clone()),
        ("hs_code", item.hs_code.clone()),
        ("country_of_origin", item.country_of_origin.clone()),
        ("allow_oversell", item.allow_oversell.map(|b| b.to_string()).unwrap_or_default()),
        ("owner_sku_id", item.owner_sku_id.clone()),
        ("created_time", item.created_time.map(|t| t.to_string()).unwrap_or_default()),
        ("updated_time", item.updated_time.map(|t| t.to_string()).unwrap_or_default()),
    ])
}

/// A warehouse as `field  value` lines.
pub(crate) fn warehouse(warehouse: &inventory::Warehouse) -> String {
    let ships_to =
        if warehouse.ships_everywhere { "everywhere".to_owned() } else { warehouse.ship_to_countries.join(",") };
    fields(vec![
        ("id", warehouse.id.clone()),
        ("name", warehouse.name.clone()),
        ("country", warehouse.country.clone()),
        ("ships_to", ships_to),
        ("priority", warehouse.priority.to_string()),
    ])
}

/// A reservation state as a word.
pub(crate) fn state(state: reservation::ReservationState) -> String {
    state.as_str_name().trim_start_matches("RESERVATION_STATE_").to_lowercase()
}

/// A reservation as `field  value` lines, with where each item is held.
pub(crate) fn reservation(r: &reservation::Reservation) -> String {
    let address = r.ship_to.as_ref().and_then(|s| s.address.as_ref());
    let mut text = fields(vec![
        ("id", r.id.clone()),
        ("state", state(r.state())),
        (
            "ship_to",
            address
                .map(|a| {
                    [a.city.as_str(), a.state.as_str(), a.postal_code.as_str(), a.country.as_str()]
                        .iter()
                        .filter(|p| !p.is_empty())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
        ),
        ("expires_in_seconds", r.expires_in_seconds.to_string()),
        ("expire_time", r.expire_time.map(|t| t.to_string()).unwrap_or_default()),
        ("created_time", r.created_time.map(|t| t.to_string()).unwrap_or_default()),
    ]);
    for item in &r.items {
        text.push_str(&format!("\nitem                 {} x{}", item.inventory_item_id, item.quantity));
    }
    for a in &r.allocations {
        let oversold =
            if a.oversold_quantity > 0 { format!(" (+{} oversold)", a.oversold_quantity) } else { String::new() };
        text.push_str(&format!(
            "\nheld                 {} x{} in {}{oversold}",
            a.inventory_item_id, a.quantity, a.warehouse_id
        ));
    }
    text
}
