use fulfillment_errors::{ApiError, ErrorCode, FieldViolation};
use sea_orm::DbErr;

/// Everything managing keys can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The request breaks a rule.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The parameter.
        field: &'static str,
        /// What is wrong.
        message: &'static str,
    },
    /// Service keys come only from the deployment's secrets, never from a call.
    #[error("service keys come from the deployment")]
    ServiceKeyFromDeployment,
    /// No key of the caller's mode has the id.
    #[error("API key '{0}' not found")]
    NotFound(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] DbErr),
    /// A stored key cannot be read back, or no key could be made.
    #[error("{0}")]
    Internal(String),
}

impl AccessError {
    pub(crate) fn invalid(field: &'static str, message: &'static str) -> Self {
        AccessError::Invalid { field, message }
    }
}

impl From<AccessError> for ApiError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Invalid { field, message } => {
                ApiError::bad_request(vec![FieldViolation::invalid(field, message)])
            }
            AccessError::ServiceKeyFromDeployment => ApiError::new(
                ErrorCode::PermissionDenied,
                "Service keys come only from the deployment's secrets (INVENTORY_CATALOG_SERVICE_KEY, \
                 INVENTORY_RESERVATION_SERVICE_KEY); no key can make one.",
            )
            .with_reason("service_key_from_deployment"),
            AccessError::NotFound(id) => ApiError::not_found("ApiKey", &id),
            AccessError::Database(error) => fulfillment_storage::api_error(&error),
            AccessError::Internal(message) => ApiError::internal(message),
        }
    }
}
