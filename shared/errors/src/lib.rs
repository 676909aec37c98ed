//! The suite's error model (docs/architecture.md, "Errors").
//!
//! Each service keeps its own `thiserror` enum and converts it into an [`ApiError`]: the code, the
//! documents' wording and the structured details a caller needs. [`ApiError::into_status`] is the one
//! place where that becomes a `google.rpc.Status`, so every service answers in the same shape.

mod api_error;
mod code;
mod violation;

pub use api_error::ApiError;
pub use code::ErrorCode;
pub use violation::{
    EXCERPT_CHARS, FieldViolation, MAX_VIOLATIONS, PreconditionViolation, ViolationCode, Violations, excerpt,
};
