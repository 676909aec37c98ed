//! End-to-end tests: one binary, a module per concern.

mod bad_input;
mod catalog_errors;
mod catalog_listing;
mod catalog_skus;
mod health;
mod manufacturer_parts;
mod support;
