/// The outcomes a caller can see. Deliberately a small closed set: a new variant must be classified
/// in [`ErrorCode::grpc_code`] before it compiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed: bad or missing parameters.
    InvalidArgument,
    /// The named resource does not exist.
    NotFound,
    /// The id is already used by a resource with other content.
    AlreadyExists,
    /// The request is well-formed but the system's state refuses it.
    FailedPrecondition,
    /// A concurrent change won; retrying may succeed.
    Aborted,
    /// No or unknown credentials.
    Unauthenticated,
    /// Credentials that may not do this.
    PermissionDenied,
    /// A rate or size limit was hit.
    ResourceExhausted,
    /// A peer or the database is unreachable; retrying may succeed.
    Unavailable,
    /// A peer did not answer in time; the outcome is unknown.
    DeadlineExceeded,
    /// A bug or an unexpected failure; details are logged, never sent.
    Internal,
}

impl ErrorCode {
    /// Maps the code to its gRPC status code.
    pub fn grpc_code(self) -> tonic::Code {
        match self {
            ErrorCode::InvalidArgument => tonic::Code::InvalidArgument,
            ErrorCode::NotFound => tonic::Code::NotFound,
            ErrorCode::AlreadyExists => tonic::Code::AlreadyExists,
            ErrorCode::FailedPrecondition => tonic::Code::FailedPrecondition,
            ErrorCode::Aborted => tonic::Code::Aborted,
            ErrorCode::Unauthenticated => tonic::Code::Unauthenticated,
            ErrorCode::PermissionDenied => tonic::Code::PermissionDenied,
            ErrorCode::ResourceExhausted => tonic::Code::ResourceExhausted,
            ErrorCode::Unavailable => tonic::Code::Unavailable,
            ErrorCode::DeadlineExceeded => tonic::Code::DeadlineExceeded,
            ErrorCode::Internal => tonic::Code::Internal,
        }
    }

    /// The documents' error type for the code (`bad_request`, `not_found`, `conflict`, ...),
    /// sent as the `ErrorInfo` reason when nothing more specific applies.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "bad_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists | ErrorCode::FailedPrecondition | ErrorCode::Aborted => "conflict",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::PermissionDenied => "forbidden",
            ErrorCode::ResourceExhausted => "too_many_requests",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::DeadlineExceeded => "timeout",
            ErrorCode::Internal => "internal_error",
        }
    }
}
