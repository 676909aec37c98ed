use std::collections::HashMap;

use tonic_types::{ErrorDetails, StatusExt};

use crate::{ErrorCode, PreconditionViolation, Violations, excerpt};

/// How many violations the status message quotes; the details carry every one kept.
const MESSAGES_QUOTED: usize = 4;

/// A failure as a caller sees it: a code, a message in the documents' wording, and the details that
/// let a program act on it without parsing text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    reason: String,
    metadata: HashMap<String, String>,
    field_violations: Violations,
    precondition_violations: Vec<PreconditionViolation>,
    resource: Option<(String, String)>,
}

impl ApiError {
    /// An error with a code and message and no details beyond the code's reason.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason: code.reason().to_owned(),
            metadata: HashMap::new(),
            field_violations: Violations::new(),
            precondition_violations: Vec::new(),
            resource: None,
        }
    }

    /// INVALID_ARGUMENT carrying the violations (capped as they were found, so the answer stays
    /// small enough for HTTP/2 headers); the reason is the first violation's code.
    pub fn bad_request(violations: impl Into<Violations>) -> Self {
        let violations = violations.into();
        let mut message =
            violations.iter().take(MESSAGES_QUOTED).map(|v| v.message.as_str()).collect::<Vec<_>>().join(" ");
        if violations.found() > MESSAGES_QUOTED {
            message.push_str(&format!(" ({} more problems)", violations.found() - MESSAGES_QUOTED));
        }
        let mut error = Self::new(ErrorCode::InvalidArgument, message);
        if let Some(first) = violations.first() {
            error.reason = first.code.as_str().to_owned();
        }
        error.field_violations = violations;
        error
    }

    /// NOT_FOUND in the documents' wording: `InventoryItem 'x' not found.`
    pub fn not_found(resource_type: &str, id: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{resource_type} '{}' not found.", excerpt(id)))
            .with_resource(resource_type, id)
    }

    /// ALREADY_EXISTS: the id is used by a resource with other content.
    pub fn already_exists(resource_type: &str, id: &str) -> Self {
        Self::new(ErrorCode::AlreadyExists, format!("{resource_type} '{id}' already exists."))
            .with_resource(resource_type, id)
    }

    /// FAILED_PRECONDITION with a machine-readable reason.
    pub fn failed_precondition(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::FailedPrecondition, message).with_reason(reason)
    }

    /// INTERNAL with a fixed message: the cause is logged here, and never sent to the caller.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }

    /// Replaces the `ErrorInfo` reason.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// Adds an `ErrorInfo` metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Names the resource the error is about (`ResourceInfo`).
    pub fn with_resource(mut self, resource_type: &str, id: &str) -> Self {
        self.resource = Some((resource_type.to_owned(), excerpt(id).into_owned()));
        self
    }

    /// Adds a `PreconditionFailure` violation.
    pub fn with_precondition_violation(mut self, violation: PreconditionViolation) -> Self {
        self.precondition_violations.push(violation);
        self
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The `ErrorInfo.reason` sent to the caller.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The message sent to the caller.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The bad-request entries, if any.
    pub fn field_violations(&self) -> &Violations {
        &self.field_violations
    }

    /// Converts the error into a gRPC status with `google.rpc` details; `domain` names the service
    /// that produced it (`ErrorInfo.domain`).
    pub fn into_status(self, domain: &str) -> tonic::Status {
        let mut details = ErrorDetails::with_error_info(self.reason, domain, self.metadata);
        for violation in &self.field_violations {
            details.add_bad_request_violation(violation.parameter.clone(), violation.message.clone());
        }
        for violation in self.precondition_violations {
            details.add_precondition_failure_violation(violation.kind, violation.subject, violation.description);
        }
        if let Some((resource_type, name)) = self.resource {
            details.set_resource_info(resource_type, name, "", "");
        }
        tonic::Status::with_error_details(self.code.grpc_code(), self.message, details)
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;
    use crate::FieldViolation;

    #[test]
    fn bad_request_keeps_every_violation_and_the_first_code_as_reason() {
        let error = ApiError::bad_request(vec![
            FieldViolation::missing("name"),
            FieldViolation::invalid("hsCode", "'1234.56.YW' is not a valid HS code."),
        ]);
        let status = error.into_status("catalog");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "The name is missing. '1234.56.YW' is not a valid HS code.");
        let details = status.get_error_details();
        let bad_request = details.bad_request().expect("bad request details");
        let fields: Vec<_> = bad_request.field_violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["name", "hsCode"]);
        let info = details.error_info().expect("error info");
        assert_eq!(info.reason, "missing_parameter");
        assert_eq!(info.domain, "catalog");
    }

    #[test]
    fn a_huge_bad_request_is_cut_to_a_readable_size() {
        let violations: Vec<_> = (0..10_000).map(|n| FieldViolation::missing(format!("lines[{n}]"))).collect();
        let status = ApiError::bad_request(violations).into_status("inventory");
        assert!(status.message().ends_with("(9996 more problems)"), "{}", status.message());
        assert_eq!(status.get_details_bad_request().map(|b| b.field_violations.len()), Some(50));
    }

    #[test]
    fn not_found_uses_the_documents_wording_and_names_the_resource() {
        let status = ApiError::not_found("InventoryItem", "x").into_status("inventory");
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert_eq!(status.message(), "InventoryItem 'x' not found.");
        let resource = status.get_details_resource_info().expect("resource info");
        assert_eq!(resource.resource_type, "InventoryItem");
        assert_eq!(resource.resource_name, "x");
    }

    #[test]
    fn precondition_violations_travel_as_precondition_failure() {
        let status = ApiError::failed_precondition("insufficient_inventory", "not enough stock")
            .with_precondition_violation(PreconditionViolation {
                kind: "insufficient_inventory".into(),
                subject: "item-1".into(),
                description: "requested 5, available 2".into(),
            })
            .into_status("inventory");
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        let failure = status.get_details_precondition_failure().expect("precondition failure");
        assert_eq!(failure.violations.len(), 1);
        assert_eq!(failure.violations[0].subject, "item-1");
    }

    #[test]
    fn internal_never_carries_the_cause() {
        let status = ApiError::internal("secret cause").into_status("catalog");
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(status.message(), "internal error");
        assert!(status.get_error_details().debug_info().is_none());
    }
}
