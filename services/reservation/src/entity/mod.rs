//! The Reservation service's tables, one file each.

pub(crate) mod fulfillment_order;
pub(crate) mod reservation;
