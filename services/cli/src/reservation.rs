//! `fulfillctl reserve|reservation|fulfill ...`: the Reservation service.

use clap::{Args, Subcommand};
use fulfillment_proto::common::v1::Address;
use fulfillment_proto::reservation::v1 as pb;
use fulfillment_proto::reservation::v1::reservation_service_client::ReservationServiceClient;

use crate::display;

type Client = ReservationServiceClient<crate::Conn>;

/// Reserve items: every one or none.
#[derive(Debug, Args)]
pub(crate) struct ReserveArgs {
    /// The reservation's id (use the checkout's id); generated when left out.
    #[arg(long)]
    id: Option<String>,
    /// An item to reserve as ITEM=QUANTITY; may be repeated.
    #[arg(long = "item", value_name = "ITEM=QUANTITY", required = true, value_parser = parse_item)]
    items: Vec<(String, i64)>,
    /// The ship-to country (ISO 3166-1 alpha-2).
    #[arg(long)]
    country: String,
    #[arg(long)]
    city: Option<String>,
    #[arg(long)]
    postal_code: Option<String>,
    #[arg(long)]
    state: Option<String>,
    /// Seconds until the hold lapses; the service's default when left out.
    #[arg(long)]
    expires_in: Option<i64>,
    /// Reserve beyond the stock on hand.
    #[arg(long)]
    allow_oversell: bool,
    /// The shipping choice as CURRENCY:AMOUNT:SERVICE_LEVEL, e.g. USD:5.95:SG.
    #[arg(long, value_parser = parse_shipping)]
    shipping: Option<pb::ShippingChoice>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReservationCommand {
    /// Shows a reservation and where its items are held.
    Show { id: String },
    /// Lists reservations.
    List {
        /// Only reservations in this state: active, pending, cancelled, fulfilled or expired.
        #[arg(long)]
        state: Option<String>,
    },
    /// Cancels a reservation, releasing its whole hold.
    Cancel { id: String },
}

/// Create the fulfillment order of a reservation, committing its hold.
#[derive(Debug, Args)]
pub(crate) struct FulfillArgs {
    /// The reservation's id.
    reservation_id: String,
    /// The order's id in your system.
    #[arg(long)]
    upstream_id: Option<String>,
}

fn parse_item(value: &str) -> Result<(String, i64), String> {
    let (item, quantity) = value.split_once('=').ok_or_else(|| format!("expected ITEM=QUANTITY, got '{value}'"))?;
    let quantity = quantity.parse().map_err(|_| format!("'{quantity}' is not a whole number"))?;
    Ok((item.to_owned(), quantity))
}

fn parse_shipping(value: &str) -> Result<pb::ShippingChoice, String> {
    let parts: Vec<&str> = value.splitn(3, ':').collect();
    let [currency, amount, service_level] = parts.as_slice() else {
        return Err(format!("expected CURRENCY:AMOUNT:SERVICE_LEVEL, got '{value}'"));
    };
    let amount = amount.parse().map_err(|_| format!("'{amount}' is not an amount"))?;
    Ok(pb::ShippingChoice { currency: (*currency).to_owned(), amount, service_level: (*service_level).to_owned() })
}

pub(crate) async fn reserve(client: &mut Client, args: ReserveArgs) -> Result<(), String> {
    let reservation = pb::Reservation {
        id: args.id.unwrap_or_default(),
        items: args
            .items
            .into_iter()
            .map(|(inventory_item_id, quantity)| pb::ReservationItem {
                inventory_item_id,
                quantity,
                allow_oversell: args.allow_oversell.then_some(true),
            })
            .collect(),
        ship_to: Some(pb::ShipTo {
            address: Some(Address {
                country: args.country,
                city: args.city.unwrap_or_default(),
                postal_code: args.postal_code.unwrap_or_default(),
                state: args.state.unwrap_or_default(),
                ..Default::default()
            }),
        }),
        shipping_choice: args.shipping,
        expires_in_seconds: args.expires_in.unwrap_or(0),
        ..Default::default()
    };
    let request = pb::CreateReservationRequest { reservation: Some(reservation) };
    let created = client.create_reservation(request).await.map_err(display::status)?.into_inner();
    println!("reserved\n{}", display::reservation(&created.reservation.unwrap_or_default()));
    Ok(())
}

pub(crate) async fn run(client: &mut Client, command: ReservationCommand) -> Result<(), String> {
    match command {
        ReservationCommand::Show { id } => {
            let reservation =
                client.get_reservation(pb::GetReservationRequest { id }).await.map_err(display::status)?;
            println!("{}", display::reservation(&reservation.into_inner().reservation.unwrap_or_default()));
        }
        ReservationCommand::Cancel { id } => {
            let cancelled =
                client.cancel_reservation(pb::CancelReservationRequest { id }).await.map_err(display::status)?;
            println!("cancelled\n{}", display::reservation(&cancelled.into_inner().reservation.unwrap_or_default()));
        }
        ReservationCommand::List { state } => {
            let state = match state.as_deref() {
                None => pb::ReservationState::Unspecified,
                Some(name) => {
                    pb::ReservationState::from_str_name(&format!("RESERVATION_STATE_{}", name.to_uppercase()))
                        .ok_or_else(|| format!("error: '{name}' is not a reservation state"))?
                }
            };
            let mut token = String::new();
            println!("{:<36} {:<10} {:<8} EXPIRES", "ID", "STATE", "ITEMS");
            loop {
                let request = pb::ListReservationsRequest {
                    page_size: 100,
                    page_token: token,
                    state: state.into(),
                    created_time: None,
                };
                let page = client.list_reservations(request).await.map_err(display::status)?.into_inner();
                for r in page.reservations {
                    let expires = r.expire_time.map(|t| t.to_string()).unwrap_or_default();
                    println!("{:<36} {:<10} {:<8} {expires}", r.id, display::state(r.state()), r.items.len());
                }
                if page.next_page_token.is_empty() {
                    return Ok(());
                }
                token = page.next_page_token;
            }
        }
    }
    Ok(())
}

pub(crate) async fn fulfill(client: &mut Client, args: FulfillArgs) -> Result<(), String> {
    let request = pb::CreateFulfillmentOrderRequest {
        reservation_id: args.reservation_id,
        upstream_id: args.upstream_id.unwrap_or_default(),
        items: Vec::new(),
    };
    let order = client.create_fulfillment_order(request).await.map_err(display::status)?.into_inner();
    let order = order.fulfillment_order.unwrap_or_default();
    println!("fulfillment order {} for reservation {}", order.id, order.reservation_id);
    for line in order.lines {
        println!("  {} x{} from {}", line.inventory_item_id, line.quantity, line.warehouse_id);
    }
    Ok(())
}
