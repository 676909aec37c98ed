//! Everything a Reservation operation can fail with, and the one place each failure becomes a
//! status.

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

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    /// Every variant's code and reason: what clients act on.
    #[test]
    fn every_error_has_its_code_and_reason() {
        let table: Vec<(ReservationError, tonic::Code, &str)> = vec![
            (
                ReservationError::invalid(FieldViolation::missing("items")),
                tonic::Code::InvalidArgument,
                "missing_parameter",
            ),
            (ReservationError::NotFound("r".into()), tonic::Code::NotFound, "not_found"),
            (ReservationError::OrderNotFound("o".into()), tonic::Code::NotFound, "not_found"),
            (ReservationError::Exists("r".into()), tonic::Code::AlreadyExists, "conflict"),
            (
                ReservationError::Closed { id: "r".into(), state: "cancelled" },
                tonic::Code::FailedPrecondition,
                "reservation_cancelled",
            ),
            (ReservationError::ItemsDiffer("r".into()), tonic::Code::FailedPrecondition, "items_differ"),
            (ReservationError::Busy("r".into()), tonic::Code::Aborted, "conflict"),
            (
                ReservationError::InventoryUnavailable(tonic::Status::deadline_exceeded("slow")),
                tonic::Code::Unavailable,
                "unavailable",
            ),
            (ReservationError::Database(DbErr::Custom("boom".into())), tonic::Code::Internal, "internal_error"),
        ];
        for (error, code, reason) in table {
            let name = format!("{error:?}");
            let status = error.into_status();
            let info = status.get_details_error_info().expect("every error says its reason");
            assert_eq!((status.code(), info.reason.as_str(), info.domain.as_str()), (code, reason, DOMAIN), "{name}");
        }
        // The Inventory's refusal reaches the caller as the Inventory sent it.
        let refused = tonic::Status::failed_precondition("short");
        let forwarded = ReservationError::Inventory(refused.clone()).into_status();
        assert_eq!((forwarded.code(), forwarded.message()), (refused.code(), refused.message()));
    }
}
