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

impl CatalogError {
    /// The status a caller receives: the Inventory's own answer when it refused, otherwise the
    /// shared error model.
    pub fn into_status(self, domain: &str) -> tonic::Status {
        match self {
            CatalogError::Inventory(status) => status,
            other => ApiError::from(other).into_status(domain),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        match error {
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
            CatalogError::Inventory(status) => ApiError::new(ErrorCode::FailedPrecondition, status.message()),
            CatalogError::InventoryUnavailable(status) => {
                tracing::warn!(code = ?status.code(), detail = status.message(), "inventory did not answer");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "The Inventory service did not answer; the SKU and its inventory item will be settled, retry to see how.",
                )
            }
            CatalogError::Database(error) => fulfillment_storage::api_error(&error),
        }
    }
}
