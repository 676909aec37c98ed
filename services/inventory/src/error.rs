//! Everything an Inventory operation can fail with, and the one place each failure becomes a status.

use fulfillment_errors::{ApiError, ErrorCode, FieldViolation, PreconditionViolation, Violations};
use fulfillment_proto::inventory::v1::InventoryErrorReason as Reason;
use fulfillment_storage::TransactionError;
use sea_orm::DbErr;

use crate::allocation::Shortage;

/// Everything an Inventory operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The request breaks a rule.
    #[error("invalid request: {0:?}")]
    InvalidRequest(Violations),
    /// No inventory item has the id.
    #[error("inventory item '{0}' not found")]
    ItemNotFound(String),
    /// No warehouse has the id.
    #[error("warehouse '{0}' not found")]
    WarehouseNotFound(String),
    /// No hold has the id.
    #[error("hold '{0}' not found")]
    HoldNotFound(String),
    /// The id is taken by an item with other attributes.
    #[error("inventory item '{0}' already exists")]
    ItemExists(String),
    /// The id is taken by a warehouse.
    #[error("warehouse '{0}' already exists")]
    WarehouseExists(String),
    /// The hold id is taken by a hold with other lines.
    #[error("hold '{0}' already exists with other lines")]
    HoldExists(String),
    /// The idempotency key was used for another stock change.
    #[error("idempotency key '{0}' was used for another change")]
    IdempotencyKeyReused(String),
    /// Only the Catalog may set or change what a SKU owns.
    #[error("only the Catalog may create items owned by a SKU")]
    OwnerReserved,
    /// The item belongs to a SKU and the caller is not the Catalog.
    #[error("inventory item '{item}' belongs to SKU '{sku}'")]
    OwnedBySku {
        /// The item.
        item: String,
        /// Its SKU.
        sku: String,
    },
    /// The Catalog asked to change an item that no SKU of that id owns.
    #[error("inventory item '{0}' is not owned by its SKU")]
    NotOwnedBySku(String),
    /// The item still has open holds.
    #[error("inventory item '{0}' has open holds")]
    ItemHasOpenHolds(String),
    /// The warehouse still holds stock or holds.
    #[error("warehouse '{0}' still holds stock or holds")]
    WarehouseInUse(String),
    /// A stock change would leave less on hand than is held, or a negative quantity.
    #[error("stock of '{item}' in '{warehouse}' would fall to {on_hand} with {reserved} held")]
    StockBelowHeld {
        /// The item.
        item: String,
        /// The warehouse.
        warehouse: String,
        /// The on-hand quantity the change would leave.
        on_hand: i64,
        /// The quantity held there.
        reserved: i64,
    },
    /// Lines that may not oversell are short: nothing was held.
    #[error("insufficient inventory: {0:?}")]
    InsufficientInventory(Vec<Shortage>),
    /// Release or commit of a hold that is no longer held.
    #[error("hold '{id}' is already {state}")]
    HoldClosed {
        /// The hold.
        id: String,
        /// Its state.
        state: String,
    },
    /// A hold the Reservation service placed, closed by someone else.
    #[error("hold '{0}' belongs to its reservation")]
    HoldOfReservation(String),
    /// A hold placed by someone else, closed by a service that did not place it.
    #[error("hold '{0}' was not placed by the caller")]
    HoldNotOwned(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}

impl InventoryError {
    /// A request with a single bad parameter.
    pub fn invalid(violation: FieldViolation) -> Self {
        InventoryError::InvalidRequest(violation.into())
    }
}

impl TransactionError for InventoryError {
    fn as_db_err(&self) -> Option<&DbErr> {
        match self {
            InventoryError::Database(error) => Some(error),
            _ => None,
        }
    }
}

/// `ErrorInfo.domain` of the Inventory's errors.
pub const DOMAIN: &str = "inventory.fulfillment";

impl InventoryError {
    /// The status a caller receives: the one place an Inventory error gets its code, message,
    /// reason and details.
    pub fn into_status(self) -> tonic::Status {
        let error = match self {
            InventoryError::InvalidRequest(violations) => ApiError::bad_request(violations),
            InventoryError::ItemNotFound(id) => ApiError::not_found("InventoryItem", &id),
            InventoryError::WarehouseNotFound(id) => ApiError::not_found("Warehouse", &id),
            InventoryError::HoldNotFound(id) => ApiError::not_found("Hold", &id),
            InventoryError::ItemExists(id) => ApiError::already_exists("InventoryItem", &id),
            InventoryError::WarehouseExists(id) => ApiError::already_exists("Warehouse", &id),
            InventoryError::HoldExists(id) => ApiError::already_exists("Hold", &id),
            InventoryError::IdempotencyKeyReused(key) => ApiError::new(
                ErrorCode::AlreadyExists,
                "The idempotency key was already used for a different stock change.",
            )
            .with_reason(Reason::IdempotencyKeyReused.reason())
            .with_metadata("idempotencyKey", key),
            InventoryError::OwnerReserved => ApiError::new(
                ErrorCode::PermissionDenied,
                "Only the Catalog may create inventory items owned by a SKU.",
            )
            .with_reason(Reason::OwnerReserved.reason()),
            InventoryError::OwnedBySku { item, sku } => {
                let message =
                    format!("InventoryItem '{item}' belongs to SKU '{sku}'; change or delete it through the SKU.");
                ApiError::failed_precondition(Reason::OwnedBySku.reason(), message.clone())
                    .with_resource("SKU", &sku)
                    .with_precondition_violation(PreconditionViolation {
                        kind: Reason::OwnedBySku.reason(),
                        subject: item,
                        description: message,
                    })
            }
            InventoryError::NotOwnedBySku(id) => ApiError::failed_precondition(
                Reason::NotOwned.reason(),
                format!("InventoryItem '{id}' is not owned by SKU '{id}'."),
            )
            .with_resource("InventoryItem", &id),
            InventoryError::ItemHasOpenHolds(id) => {
                let message = format!("InventoryItem '{id}' has open holds.");
                ApiError::failed_precondition(Reason::OpenHolds.reason(), message.clone()).with_precondition_violation(
                    PreconditionViolation { kind: Reason::OpenHolds.reason(), subject: id, description: message },
                )
            }
            InventoryError::WarehouseInUse(id) => {
                let message = format!("Warehouse '{id}' still holds stock or holds.");
                ApiError::failed_precondition(Reason::WarehouseInUse.reason(), message.clone())
                    .with_precondition_violation(PreconditionViolation {
                        kind: Reason::WarehouseInUse.reason(),
                        subject: id,
                        description: message,
                    })
            }
            InventoryError::StockBelowHeld { item, warehouse, on_hand, reserved } => {
                let message = format!(
                    "The change would leave {on_hand} of '{item}' on hand in '{warehouse}', with {reserved} held."
                );
                ApiError::failed_precondition(Reason::StockBelowHeld.reason(), message.clone())
                    .with_precondition_violation(PreconditionViolation {
                        kind: Reason::StockBelowHeld.reason(),
                        subject: format!("{item}/{warehouse}"),
                        description: message,
                    })
            }
            InventoryError::InsufficientInventory(shortages) => {
                let mut error = ApiError::failed_precondition(
                    Reason::InsufficientInventory.reason(),
                    "Inventory is insufficient for the requested items; nothing was held.",
                );
                for shortage in shortages {
                    error = error.with_precondition_violation(PreconditionViolation {
                        kind: Reason::InsufficientInventory.reason(),
                        description: format!("requested {}, available {}", shortage.requested, shortage.available),
                        subject: shortage.item,
                    });
                }
                error
            }
            InventoryError::HoldClosed { id, state } => {
                ApiError::failed_precondition(Reason::HoldClosed.reason(), format!("Hold '{id}' is already {state}."))
                    .with_metadata("state", state)
                    .with_resource("Hold", &id)
            }
            InventoryError::HoldOfReservation(id) => {
                let message = format!(
                    "Hold '{id}' belongs to Reservation '{id}'; cancel the reservation or create its fulfillment order instead."
                );
                ApiError::failed_precondition(Reason::OwnedByReservation.reason(), message.clone())
                    .with_resource("Reservation", &id)
                    .with_precondition_violation(PreconditionViolation {
                        kind: Reason::OwnedByReservation.reason(),
                        subject: id,
                        description: message,
                    })
            }
            InventoryError::HoldNotOwned(id) => ApiError::failed_precondition(
                Reason::NotOwned.reason(),
                format!("Hold '{id}' was not placed by this caller."),
            )
            .with_resource("Hold", &id),
            InventoryError::Database(error) => fulfillment_storage::api_error(&error),
        };
        error.into_status(DOMAIN)
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    /// Every variant's code and reason: what clients and the other services act on.
    #[test]
    fn every_error_has_its_code_and_reason() {
        let shortage = Shortage { item: "a".into(), requested: 2, available: 1 };
        let table: Vec<(InventoryError, ErrorCode, String)> = vec![
            (
                InventoryError::invalid(FieldViolation::missing("id")),
                ErrorCode::InvalidArgument,
                "missing_parameter".into(),
            ),
            (InventoryError::ItemNotFound("a".into()), ErrorCode::NotFound, "not_found".into()),
            (InventoryError::WarehouseNotFound("w".into()), ErrorCode::NotFound, "not_found".into()),
            (InventoryError::HoldNotFound("h".into()), ErrorCode::NotFound, "not_found".into()),
            (InventoryError::ItemExists("a".into()), ErrorCode::AlreadyExists, "conflict".into()),
            (InventoryError::WarehouseExists("w".into()), ErrorCode::AlreadyExists, "conflict".into()),
            (InventoryError::HoldExists("h".into()), ErrorCode::AlreadyExists, "conflict".into()),
            (
                InventoryError::IdempotencyKeyReused("k".into()),
                ErrorCode::AlreadyExists,
                Reason::IdempotencyKeyReused.reason(),
            ),
            (InventoryError::OwnerReserved, ErrorCode::PermissionDenied, Reason::OwnerReserved.reason()),
            (
                InventoryError::OwnedBySku { item: "a".into(), sku: "a".into() },
                ErrorCode::FailedPrecondition,
                Reason::OwnedBySku.reason(),
            ),
            (InventoryError::NotOwnedBySku("a".into()), ErrorCode::FailedPrecondition, Reason::NotOwned.reason()),
            (InventoryError::ItemHasOpenHolds("a".into()), ErrorCode::FailedPrecondition, Reason::OpenHolds.reason()),
            (
                InventoryError::WarehouseInUse("w".into()),
                ErrorCode::FailedPrecondition,
                Reason::WarehouseInUse.reason(),
            ),
            (
                InventoryError::StockBelowHeld { item: "a".into(), warehouse: "w".into(), on_hand: 0, reserved: 1 },
                ErrorCode::FailedPrecondition,
                Reason::StockBelowHeld.reason(),
            ),
            (
                InventoryError::InsufficientInventory(vec![shortage]),
                ErrorCode::FailedPrecondition,
                Reason::InsufficientInventory.reason(),
            ),
            (
                InventoryError::HoldClosed { id: "h".into(), state: "committed".into() },
                ErrorCode::FailedPrecondition,
                Reason::HoldClosed.reason(),
            ),
            (
                InventoryError::HoldOfReservation("h".into()),
                ErrorCode::FailedPrecondition,
                Reason::OwnedByReservation.reason(),
            ),
            (InventoryError::HoldNotOwned("h".into()), ErrorCode::FailedPrecondition, Reason::NotOwned.reason()),
            (InventoryError::Database(DbErr::Custom("boom".into())), ErrorCode::Internal, "internal_error".into()),
        ];
        for (error, code, reason) in table {
            let name = format!("{error:?}");
            let status = error.into_status();
            let info = status.get_details_error_info().expect("every error says its reason");
            assert_eq!(
                (status.code(), info.reason.as_str(), info.domain.as_str()),
                (code.grpc_code(), reason.as_str(), DOMAIN),
                "{name}"
            );
        }
    }
}
