//! Everything a Catalog operation can fail with, and the one place each failure becomes a status.

use fulfillment_errors::{ApiError, ErrorCode, FieldViolation, PreconditionViolation, Violations};
use fulfillment_storage::TransactionError;
use sea_orm::DbErr;

/// The document's message when a managed SKU names an unregistered manufacturer part.
pub const MANUFACTURER_PART_NOT_FOUND: &str =
    "Invalid manufacturer ID. The manufacturer ID and manufacturer part # combination could not be found.";

/// Everything a Catalog operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The request breaks the document's rules.
    #[error("invalid request: {0:?}")]
    InvalidRequest(Violations),
    /// No SKU has the id.
    #[error("SKU '{0}' not found")]
    SkuNotFound(String),
    /// Create was asked for an id that is taken.
    #[error("SKU '{0}' already exists")]
    SkuExists(String),
    /// A managed SKU names a manufacturer part the registry does not know.
    #[error("manufacturer part not registered: manufacturer {manufacturer_id:?}, part {part_number}")]
    ManufacturerPartNotRegistered {
        /// The manufacturer id given, if any.
        manufacturer_id: Option<String>,
        /// The part number given.
        part_number: String,
    },
    /// The registry has no such pair.
    #[error("manufacturer part {manufacturer_id}/{part_number} not found")]
    ManufacturerPartNotFound {
        /// The manufacturer id.
        manufacturer_id: String,
        /// The part number.
        part_number: String,
    },
    /// A managed SKU still relies on the pair being removed.
    #[error("manufacturer part {manufacturer_id}/{part_number} is used by SKU '{sku_id}'")]
    ManufacturerPartInUse {
        /// The manufacturer id.
        manufacturer_id: String,
        /// The part number.
        part_number: String,
        /// A SKU using it.
        sku_id: String,
    },
    /// A saga is still keeping the SKU and its item in step; retry shortly.
    #[error("SKU '{0}' is being changed")]
    Busy(String),
    /// Recovery took the saga over while this call waited on the Inventory: its outcome is settled
    /// there, not here.
    #[error("the saga of SKU '{0}' was taken over by recovery")]
    TakenOver(String),
    /// The Inventory refused the item change: its answer goes to the caller as it is.
    #[error("inventory refused: {0}")]
    Inventory(tonic::Status),
    /// The Inventory did not answer: the change is resolved later, or was not made.
    #[error("inventory unavailable: {0}")]
    InventoryUnavailable(tonic::Status),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}

impl CatalogError {
    /// A request with a single bad parameter.
    pub fn invalid(violation: FieldViolation) -> Self {
        CatalogError::InvalidRequest(violation.into())
    }
}

impl TransactionError for CatalogError {
    fn as_db_err(&self) -> Option<&DbErr> {
        match self {
            CatalogError::Database(error) => Some(error),
            _ => None,
        }
    }
}

/// `ErrorInfo.domain` of the Catalog's errors.
pub const DOMAIN: &str = "catalog.fulfillment";

impl CatalogError {
    /// The status a caller receives: the Inventory's own answer when it refused, otherwise the
    /// shared error model. The one place a Catalog error gets its code, message, reason and details.
    pub fn into_status(self) -> tonic::Status {
        let error = match self {
            CatalogError::Inventory(status) => return status,
            CatalogError::InvalidRequest(violations) => ApiError::bad_request(violations),
            CatalogError::SkuNotFound(id) => ApiError::not_found("SKU", &id),
            CatalogError::SkuExists(id) => ApiError::already_exists("SKU", &id),
            CatalogError::ManufacturerPartNotRegistered { manufacturer_id, part_number } => {
                let subject = format!("{}/{part_number}", manufacturer_id.unwrap_or_default());
                ApiError::failed_precondition("invalid_parameter", MANUFACTURER_PART_NOT_FOUND)
                    .with_metadata("parameter", "manufacturerId")
                    .with_precondition_violation(PreconditionViolation {
                        kind: "manufacturer_part_not_registered".into(),
                        subject,
                        description: MANUFACTURER_PART_NOT_FOUND.into(),
                    })
            }
            CatalogError::ManufacturerPartNotFound { manufacturer_id, part_number } => {
                ApiError::not_found("ManufacturerPart", &format!("{manufacturer_id}/{part_number}"))
            }
            CatalogError::ManufacturerPartInUse { manufacturer_id, part_number, sku_id } => {
                let subject = format!("{manufacturer_id}/{part_number}");
                let message = format!("Manufacturer part '{subject}' is used by SKU '{sku_id}'.");
                ApiError::failed_precondition("manufacturer_part_in_use", message.clone())
                    .with_resource("SKU", &sku_id)
                    .with_precondition_violation(PreconditionViolation {
                        kind: "manufacturer_part_in_use".into(),
                        subject,
                        description: message,
                    })
            }
            CatalogError::Busy(id) => ApiError::new(
                ErrorCode::Aborted,
                format!("SKU '{id}' is being kept in step with its inventory item; retry shortly."),
            ),
            CatalogError::TakenOver(id) => ApiError::new(
                ErrorCode::Unavailable,
                format!("SKU '{id}' and its inventory item are being settled by recovery; retry to see how."),
            ),
            CatalogError::InventoryUnavailable(status) => {
                tracing::warn!(code = ?status.code(), detail = status.message(), "inventory did not answer");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "The Inventory service did not answer; the SKU and its inventory item will be settled, retry to see how.",
                )
            }
            CatalogError::Database(error) => fulfillment_storage::api_error(&error),
        };
        error.into_status(DOMAIN)
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    /// Every variant's code and reason: what clients act on.
    #[test]
    fn every_error_has_its_code_and_reason() {
        let part = || ("20013".to_owned(), "PN".to_owned());
        let table: Vec<(CatalogError, tonic::Code, &str)> = vec![
            (CatalogError::invalid(FieldViolation::missing("name")), tonic::Code::InvalidArgument, "missing_parameter"),
            (CatalogError::SkuNotFound("s".into()), tonic::Code::NotFound, "not_found"),
            (CatalogError::SkuExists("s".into()), tonic::Code::AlreadyExists, "conflict"),
            (
                CatalogError::ManufacturerPartNotRegistered { manufacturer_id: Some(part().0), part_number: part().1 },
                tonic::Code::FailedPrecondition,
                "invalid_parameter",
            ),
            (
                CatalogError::ManufacturerPartNotFound { manufacturer_id: part().0, part_number: part().1 },
                tonic::Code::NotFound,
                "not_found",
            ),
            (
                CatalogError::ManufacturerPartInUse {
                    manufacturer_id: part().0,
                    part_number: part().1,
                    sku_id: "s".into(),
                },
                tonic::Code::FailedPrecondition,
                "manufacturer_part_in_use",
            ),
            (CatalogError::Busy("s".into()), tonic::Code::Aborted, "conflict"),
            (CatalogError::TakenOver("s".into()), tonic::Code::Unavailable, "unavailable"),
            (
                CatalogError::InventoryUnavailable(tonic::Status::deadline_exceeded("slow")),
                tonic::Code::Unavailable,
                "unavailable",
            ),
            (CatalogError::Database(DbErr::Custom("boom".into())), tonic::Code::Internal, "internal_error"),
        ];
        for (error, code, reason) in table {
            let name = format!("{error:?}");
            let status = error.into_status();
            let info = status.get_details_error_info().expect("every error says its reason");
            assert_eq!((status.code(), info.reason.as_str(), info.domain.as_str()), (code, reason, DOMAIN), "{name}");
        }
        // The Inventory's refusal reaches the caller as the Inventory sent it.
        let refused = tonic::Status::failed_precondition("owned elsewhere");
        let forwarded = CatalogError::Inventory(refused.clone()).into_status();
        assert_eq!((forwarded.code(), forwarded.message()), (refused.code(), refused.message()));
    }
}
