use fulfillment_errors::{ApiError, ErrorCode, FieldViolation, Violations};
use fulfillment_storage::TransactionError;
use sea_orm::DbErr;

/// Everything a Reservation operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ReservationError {
    /// The request breaks a rule.
    #[error("invalid request: {0:?}")]
    InvalidRequest(Violations),
    /// No reservation has the id (or it expired).
    #[error("reservation '{0}' not found")]
    NotFound(String),
    /// No fulfillment order has the id.
    #[error("fulfillment order '{0}' not found")]
    OrderNotFound(String),
    /// The id is taken by a reservation with other content.
    #[error("reservation '{0}' already exists with other content")]
    Exists(String),
    /// The reservation is cancelled, fulfilled or expired.
    #[error("reservation '{id}' is {state}")]
    Closed {
        /// The reservation.
        id: String,
        /// What closed it.
        state: &'static str,
    },
    /// The order's items are not the reservation's.
    #[error("the order's items differ from reservation '{0}'")]
    ItemsDiffer(String),
    /// Another call is changing the reservation right now.
    #[error("reservation '{0}' is being changed")]
    Busy(String),
    /// The Inventory refused: its answer, details included, goes to the caller as it is.
    #[error("inventory refused: {0}")]
    Inventory(tonic::Status),
    /// The Inventory did not answer; the service finishes the change itself.
    #[error("inventory unavailable: {0}")]
    InventoryUnavailable(tonic::Status),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}

impl ReservationError {
    /// A request with a single bad parameter.
    pub fn invalid(violation: FieldViolation) -> Self {
        ReservationError::InvalidRequest(violation.into())
    }
}

impl TransactionError for ReservationError {
    fn as_db_err(&self) -> Option<&DbErr> {
        match self {
            ReservationError::Database(error) => Some(error),
            _ => None,
        }
    }
}

/// `ErrorInfo.domain` of the Reservation service's errors.
pub const DOMAIN: &str = "reservation.fulfillment";

impl ReservationError {
    /// The status a caller receives: the Inventory's own answer when it refused, otherwise the
    /// shared error model.
    pub fn into_status(self) -> tonic::Status {
        let error = match self {
            ReservationError::Inventory(status) => return status,
            ReservationError::InvalidRequest(violations) => ApiError::bad_request(violations),
            ReservationError::NotFound(id) => ApiError::not_found("Reservation", &id),
            ReservationError::OrderNotFound(id) => ApiError::not_found("FulfillmentOrder", &id),
            ReservationError::Exists(id) => ApiError::already_exists("Reservation", &id),
            ReservationError::Closed { id, state } => {
                ApiError::failed_precondition(format!("reservation_{state}"), format!("Reservation '{id}' is {state}."))
                    .with_resource("Reservation", &id)
                    .with_metadata("state", state)
            }
            ReservationError::ItemsDiffer(id) => ApiError::failed_precondition(
                "items_differ",
                format!("The order's items are not those of reservation '{id}'."),
            )
            .with_resource("Reservation", &id),
            ReservationError::Busy(id) => ApiError::new(
                ErrorCode::Aborted,
                format!("Reservation '{id}' is being changed by another call; retry."),
            ),
            ReservationError::InventoryUnavailable(status) => {
                tracing::warn!(code = ?status.code(), detail = status.message(), "inventory did not answer");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "The Inventory service did not answer; the reservation will be settled, retry to see how.",
                )
            }
            ReservationError::Database(error) => fulfillment_storage::api_error(&error),
        };
        error.into_status(DOMAIN)
    }
}
