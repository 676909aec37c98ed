//! The Reservation service's types and pure rules: a reservation, its states (docs/architecture.md,
//! "Reservations") and how a request is checked ("Reference data and validation"). No database or
//! tonic type comes in, so the rules test on their own; `store.rs` maps them to rows and the
//! Inventory client to messages.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use fulfillment_errors::{FieldViolation, Violations, excerpt};
use fulfillment_reference::{MAX_SHORT_TEXT, ReferenceData, is_valid_id, validate_text};
use serde::{Deserialize, Serialize};

/// How large a reservation may be (`RESERVATION_MAX_ITEMS`, `RESERVATION_MAX_QUANTITY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most items (lines) one reservation or fulfillment order may have.
    pub max_items: usize,
    /// The largest quantity of one line.
    pub max_quantity: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_items: 100, max_quantity: 1_000_000_000 }
    }
}

pub use crate::entity::reservation::State;

impl State {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Active => "active",
            State::Releasing => "releasing",
            State::Cancelled => "cancelled",
            State::Committing => "committing",
            State::Fulfilled => "fulfilled",
            State::Expiring => "expiring",
        }
    }
}

/// A line of a reservation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationItem {
    pub inventory_item_id: String,
    pub quantity: i64,
    /// Overrides the item's setting when given.
    pub allow_oversell: Option<bool>,
}

/// The address a reservation ships to; only the country is required.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub postal_code: String,
    pub state: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

/// The shipping option the customer chose.
#[derive(Clone, Debug, PartialEq)]
pub struct ShippingChoice {
    /// ISO 4217.
    pub currency: String,
    /// Not negative.
    pub amount: f64,
    pub service_level: String,
}

/// Where a hold placed units of a line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub inventory_item_id: String,
    pub warehouse_id: String,
    /// Units set aside from stock.
    pub quantity: i64,
    /// Units promised beyond the stock.
    pub oversold_quantity: i64,
}

/// A reservation's hold as the Inventory answers it, read by the Inventory client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    /// Whether it still holds its stock: neither committed, released nor expired.
    pub held: bool,
    /// Where it placed each line.
    pub allocations: Vec<Allocation>,
}

/// A reservation as a caller asks for it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewReservation {
    /// The client's id (the checkout's), or `None` to have one generated.
    pub id: Option<String>,
    pub items: Vec<ReservationItem>,
    pub ship_to: Address,
    pub shipping_choice: Option<ShippingChoice>,
    /// Seconds until the hold lapses; 0 for the service's default.
    pub expires_in_seconds: i64,
}

/// A stored reservation.
#[derive(Clone, Debug, PartialEq)]
pub struct Reservation {
    pub id: String,
    pub state: State,
    pub items: Vec<ReservationItem>,
    pub ship_to: Address,
    pub shipping_choice: Option<ShippingChoice>,
    pub expires_in_seconds: i64,
    /// When the hold lapses.
    pub expire_time: DateTime<Utc>,
    /// Where the hold placed each line; empty while pending.
    pub allocations: Vec<Allocation>,
    pub live_mode: bool,
    pub created_time: DateTime<Utc>,
    pub updated_time: DateTime<Utc>,
    /// The claim on a change under way: until when, and whose.
    pub(crate) claim: Option<Claim>,
}

/// A claim on a reservation's change: the token of the worker that owns it, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Claim {
    pub(crate) token: String,
    pub(crate) until: DateTime<Utc>,
}

impl Reservation {
    /// Whether `request` asks for what this reservation is (a safe retry).
    pub fn same_content(&self, request: &NewReservation, default_expires_in: i64) -> bool {
        let expires_in = if request.expires_in_seconds == 0 { default_expires_in } else { request.expires_in_seconds };
        self.items == request.items
            && self.ship_to == request.ship_to
            && self.shipping_choice == request.shipping_choice
            && self.expires_in_seconds == expires_in
    }
}

impl NewReservation {
    /// Checks the request against the reservation document, naming every bad parameter.
    pub fn validate(&self, reference: &ReferenceData, max_expires_in: i64, limits: Limits) -> Result<(), Violations> {
        let mut violations = Violations::new();
        if let Some(id) = &self.id
            && !is_valid_id(id)
        {
            // An id given but unusable; an empty one means "generate".
            violations.push(FieldViolation::not_valid("id", id, "reservation ID"));
        }
        // The count first: a longer list is refused before any of its items is looked at.
        if self.items.len() > limits.max_items {
            let message = format!("At most {} items may be reserved at once.", limits.max_items);
            return Err(FieldViolation::invalid("items", message).into());
        }
        if self.items.is_empty() {
            violations.push(FieldViolation::missing("items"));
        }
        // For each item id, the explicit allowOversell values its earlier lines gave.
        let mut oversell_given: HashMap<&str, [bool; 2]> = HashMap::with_capacity(self.items.len());
        for (n, item) in self.items.iter().enumerate() {
            if !is_valid_id(&item.inventory_item_id) {
                let parameter = format!("items[{n}].inventoryItemId");
                if item.inventory_item_id.is_empty() {
                    violations.push(FieldViolation::missing(parameter));
                } else {
                    violations.push(FieldViolation::not_valid(parameter, &item.inventory_item_id, "inventory item ID"));
                }
            }
            if item.quantity <= 0 || item.quantity > limits.max_quantity {
                violations.push(FieldViolation::not_valid(
                    format!("items[{n}].quantity"),
                    &item.quantity.to_string(),
                    "quantity",
                ));
            }
            if let Some(allow) = item.allow_oversell {
                let given = oversell_given.entry(item.inventory_item_id.as_str()).or_default();
                if given[usize::from(!allow)] {
                    violations.push(FieldViolation::invalid(
                        format!("items[{n}].allowOversell"),
                        format!("The items for '{}' disagree on allowOversell.", excerpt(&item.inventory_item_id)),
                    ));
                }
                given[usize::from(allow)] = true;
            }
        }
        if self.ship_to.country.is_empty() {
            violations.push(FieldViolation::missing("shipTo.address.country"));
        } else {
            violations
                .extend(reference.countries.validate_country("shipTo.address.country", &self.ship_to.country).err());
        }
        let address = [
            ("shipTo.address.line1", &self.ship_to.line1),
            ("shipTo.address.line2", &self.ship_to.line2),
            ("shipTo.address.city", &self.ship_to.city),
            ("shipTo.address.postalCode", &self.ship_to.postal_code),
            ("shipTo.address.state", &self.ship_to.state),
        ];
        for (parameter, value) in address {
            violations.extend(validate_text(parameter, value, MAX_SHORT_TEXT).err());
        }
        if let Some(choice) = &self.shipping_choice {
            if iso_currency::Currency::from_code(&choice.currency).is_none() {
                violations.push(FieldViolation::not_valid("shippingChoice.currency", &choice.currency, "currency"));
            }
            if !choice.amount.is_finite() || choice.amount < 0.0 {
                violations.push(FieldViolation::not_valid(
                    "shippingChoice.amount",
                    &choice.amount.to_string(),
                    "amount",
                ));
            }
            violations
                .extend(validate_text("shippingChoice.serviceLevel", &choice.service_level, MAX_SHORT_TEXT).err());
        }
        if self.expires_in_seconds < 0 || self.expires_in_seconds > max_expires_in {
            violations.push(FieldViolation::invalid(
                "expiresInSeconds",
                format!(
                    "'{}' is not a valid expiresInSeconds. It must be a positive integer of at most {max_expires_in}.",
                    self.expires_in_seconds
                ),
            ));
        }
        if violations.is_empty() { Ok(()) } else { Err(violations) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents_request() -> NewReservation {
        NewReservation {
            id: Some("5744204322".into()),
            items: vec![ReservationItem {
                inventory_item_id: "9b32defe-76ff-4c95-abb8-7dd607af92d5".into(),
                quantity: 1,
                allow_oversell: Some(false),
            }],
            ship_to: Address {
                city: "Minnetonka".into(),
                postal_code: "55129".into(),
                state: "MN".into(),
                country: "US".into(),
                ..Default::default()
            },
            shipping_choice: Some(ShippingChoice { currency: "USD".into(), amount: 5.95, service_level: "SG".into() }),
            expires_in_seconds: 300,
        }
    }

    fn parameters(request: NewReservation) -> Vec<String> {
        request
            .validate(&ReferenceData::default(), 3600, Limits::default())
            .expect_err("invalid")
            .into_iter()
            .map(|v| v.parameter)
            .collect()
    }

    #[test]
    fn the_documents_request_is_valid() {
        assert_eq!(documents_request().validate(&ReferenceData::default(), 3600, Limits::default()), Ok(()));
    }

    #[test]
    fn every_bad_parameter_is_named() {
        let request = NewReservation {
            id: Some("has space".into()),
            items: vec![ReservationItem { inventory_item_id: String::new(), quantity: 0, allow_oversell: None }],
            ship_to: Address { country: "ZZ".into(), ..Default::default() },
            shipping_choice: Some(ShippingChoice {
                currency: "US$".into(),
                amount: -1.0,
                service_level: String::new(),
            }),
            expires_in_seconds: -5,
        };
        assert_eq!(
            parameters(request),
            [
                "id",
                "items[0].inventoryItemId",
                "items[0].quantity",
                "shipTo.address.country",
                "shippingChoice.currency",
                "shippingChoice.amount",
                "expiresInSeconds"
            ]
        );
    }

    #[test]
    fn the_country_is_required_and_the_expiry_bounded() {
        let request = NewReservation { ship_to: Address::default(), expires_in_seconds: 3601, ..documents_request() };
        assert_eq!(parameters(request), ["shipTo.address.country", "expiresInSeconds"]);
    }
}
