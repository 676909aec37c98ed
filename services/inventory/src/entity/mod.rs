//! The Inventory's tables, one file each.

pub(crate) mod hold;
pub(crate) mod hold_allocation;
pub(crate) mod inventory_item;
pub(crate) mod stock_level;
pub(crate) mod stock_movement;
pub(crate) mod warehouse;
pub(crate) mod warehouse_ship_to;
