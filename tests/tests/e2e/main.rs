//! End-to-end tests: one binary, a module per concern.

mod access;
mod bad_input;
mod cancelled_writes;
mod catalog_errors;
mod catalog_listing;
mod catalog_skus;
mod health;
mod hold_ownership;
mod inventory_holds;
mod inventory_items;
mod inventory_stock;
mod inventory_support;
mod manufacturer_parts;
mod metrics;
mod overload;
mod replicas;
mod reservations;
mod saga;
mod support;
mod tls;
mod worst_shapes;
