//! The Inventory's types and pure rules: who calls, what a hold and a stock change are, and the
//! checks every operation shares. No database access and no tonic here, so the rules are read and
//! tested on their own.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use fulfillment_errors::{FieldViolation, Violations};
use fulfillment_reference::is_valid_id;
use serde::{Deserialize, Serialize};

use crate::InventoryError;
use crate::entity::{hold_allocation, inventory_item, stock_level, stock_movement, warehouse};

/// A stored inventory item.
pub type InventoryItem = inventory_item::Model;
/// A stored stock level of one item in one warehouse.
pub type StockLevel = stock_level::Model;
/// A row of the stock ledger.
pub type StockMovement = stock_movement::Model;
/// A stored warehouse.
pub type Warehouse = warehouse::Model;

pub use crate::entity::hold::Caller;

/// Collects violations and turns them into one error.
pub(crate) fn check(violations: fulfillment_errors::Violations) -> Result<(), crate::InventoryError> {
    if violations.is_empty() { Ok(()) } else { Err(crate::InventoryError::InvalidRequest(violations)) }
}

/// The most lines one hold may have.
pub const MAX_HOLD_LINES: usize = 100;

pub use crate::entity::hold::HoldState;

impl HoldState {
    /// The stored name, as messages name the state too.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Held => "held",
            HoldState::Committed => "committed",
            HoldState::Released => "released",
            HoldState::Expired => "expired",
        }
    }
}

/// A line of a hold request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldLine {
    /// The inventory item.
    pub inventory_item_id: String,
    /// Units wanted.
    pub quantity: i64,
    /// Overrides the item's own setting when given.
    pub allow_oversell: Option<bool>,
}

/// A hold as a caller asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldRequest {
    /// The reservation's id.
    pub hold_id: String,
    pub lines: Vec<HoldLine>,
    /// Only warehouses shipping here are used.
    pub ship_to_country: String,
    /// When the hold lapses; `None` is refused.
    pub expire_time: Option<DateTime<Utc>>,
    /// Who asks: the hold is theirs to close.
    pub placed_by: Caller,
}

/// A stored hold with where its units are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub id: String,
    pub state: HoldState,
    pub ship_to_country: String,
    /// The request's lines, merged per item.
    pub lines: Vec<HoldLine>,
    /// Where each line's units are set aside.
    pub allocations: Vec<hold_allocation::Model>,
    /// Who placed it; `None` for holds placed before that was recorded.
    pub placed_by: Option<Caller>,
    pub expire_time: DateTime<Utc>,
    pub created_time: DateTime<Utc>,
    pub updated_time: DateTime<Utc>,
}

pub(crate) fn validate_hold_id(id: &str) -> Result<(), FieldViolation> {
    if fulfillment_reference::is_valid_id(id) {
        Ok(())
    } else {
        Err(FieldViolation::not_valid("holdId", id, "hold ID"))
    }
}

/// Merges the lines of the same item (quantities summed) in the order items first appear.
pub(crate) fn merge_lines(lines: &[HoldLine]) -> Result<Vec<HoldLine>, Violations> {
    let mut merged: Vec<HoldLine> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(lines.len());
    let mut violations = Violations::new();
    for (n, line) in lines.iter().enumerate() {
        match index.get(line.inventory_item_id.as_str()) {
            None => {
                index.insert(&line.inventory_item_id, merged.len());
                merged.push(line.clone());
            }
            Some(&at) => {
                let existing = &mut merged[at];
                existing.quantity = existing.quantity.saturating_add(line.quantity);
                match (existing.allow_oversell, line.allow_oversell) {
                    (Some(a), Some(b)) if a != b => violations.push(FieldViolation::invalid(
                        format!("lines[{n}].allowOversell"),
                        format!("The lines for '{}' disagree on allowOversell.", line.inventory_item_id),
                    )),
                    (None, Some(b)) => existing.allow_oversell = Some(b),
                    _ => {}
                }
            }
        }
    }
    for line in &merged {
        if line.quantity > MAX_QUANTITY {
            violations.push(FieldViolation::invalid(
                "lines",
                format!("The quantity of '{}' is more than {MAX_QUANTITY}.", line.inventory_item_id),
            ));
        }
    }
    if violations.is_empty() { Ok(merged) } else { Err(violations) }
}

/// A hold is closed by whoever placed it: a reservation's hold only through the Reservation
/// service, which in turn closes no hold of anyone else's. A hold placed before holds recorded
/// who placed them is anyone's with a write key.
pub(crate) fn guard_closer(id: &str, placed_by: Option<Caller>, caller: Caller) -> Result<(), InventoryError> {
    match placed_by {
        None => Ok(()),
        Some(owner) if owner == caller => Ok(()),
        Some(Caller::Reservation) => Err(InventoryError::HoldOfReservation(id.to_owned())),
        Some(_) => Err(InventoryError::HoldNotOwned(id.to_owned())),
    }
}

/// Whether two sets of merged lines ask for the same, in whatever order.
pub(crate) fn same_lines(a: &[HoldLine], b: &[HoldLine]) -> bool {
    let sorted = |lines: &[HoldLine]| {
        let mut lines = lines.to_vec();
        lines.sort_by(|x, y| x.inventory_item_id.cmp(&y.inventory_item_id));
        lines
    };
    sorted(a) == sorted(b)
}

/// Checks an inventory item id, answering with the document's style of message.
pub(crate) fn validate_item_id(parameter: &str, id: &str) -> Result<(), FieldViolation> {
    if is_valid_id(id) { Ok(()) } else { Err(FieldViolation::not_valid(parameter, id, "inventory item ID")) }
}

/// How a caller changes an on-hand quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StockChange {
    /// Adds a positive quantity: goods received.
    Receive,
    /// Adds a signed, non-zero delta: corrections, damage.
    Adjust,
    /// Sets the on-hand quantity to a value: a count.
    Set,
}

impl StockChange {
    /// The ledger's name of the change.
    pub fn as_str(self) -> &'static str {
        match self {
            StockChange::Receive => "receive",
            StockChange::Adjust => "adjust",
            StockChange::Set => "set",
        }
    }
}

/// The ledger's name of the movements a committed hold writes.
pub(crate) const COMMIT_KIND: &str = "commit";

/// The largest quantity a single change or line may carry.
pub const MAX_QUANTITY: i64 = 1_000_000_000;

/// The countries of a stored warehouse.
pub fn ship_to_countries(warehouse: &Warehouse) -> Vec<String> {
    warehouse.ship_to_countries.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect()
}

/// Whether the warehouse ships to `country`.
pub fn ships_to(warehouse: &Warehouse, country: &str) -> bool {
    warehouse.ships_everywhere || warehouse.ship_to_countries.split(',').any(|c| c == country)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(item: &str, quantity: i64, allow_oversell: Option<bool>) -> HoldLine {
        HoldLine { inventory_item_id: item.into(), quantity, allow_oversell }
    }

    #[test]
    fn lines_of_the_same_item_are_summed_in_first_seen_order() {
        let merged = merge_lines(&[line("b", 1, None), line("a", 2, None), line("b", 3, Some(true))]).expect("merged");
        assert_eq!(merged, [line("b", 4, Some(true)), line("a", 2, None)]);
    }

    #[test]
    fn lines_disagreeing_on_oversell_are_refused() {
        let violations = merge_lines(&[line("a", 1, Some(true)), line("a", 1, Some(false))]).expect_err("disagree");
        assert_eq!(violations[0].parameter, "lines[1].allowOversell");
    }
}
