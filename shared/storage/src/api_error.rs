use fulfillment_errors::{ApiError, ErrorCode};
use sea_orm::DbErr;

use crate::{DbFailure, classify};

/// What a caller is told about a database error that the service did not turn into a domain error:
/// a taken key is ALREADY_EXISTS, a lost race that outlived its retries ABORTED, an unreachable
/// database UNAVAILABLE, anything else INTERNAL.
pub fn api_error(error: &DbErr) -> ApiError {
    match classify(error) {
        DbFailure::Retryable => ApiError::new(ErrorCode::Aborted, "the change lost a race with another; retry it"),
        DbFailure::Unavailable => ApiError::new(ErrorCode::Unavailable, "the database is unavailable"),
        DbFailure::UniqueViolation => ApiError::new(ErrorCode::AlreadyExists, "the resource already exists"),
        DbFailure::Other => ApiError::internal(error),
    }
}
