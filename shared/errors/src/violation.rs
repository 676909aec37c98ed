use std::fmt;

/// The documents' `errors[].code` for a bad request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViolationCode {
    /// `invalid_parameter`: the value is present but not acceptable.
    InvalidParameter,
    /// `missing_parameter`: a required value is absent.
    MissingParameter,
}

impl ViolationCode {
    /// The documents' spelling of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationCode::InvalidParameter => "invalid_parameter",
            ViolationCode::MissingParameter => "missing_parameter",
        }
    }
}

/// One entry of a bad request: which parameter, why, and the documents' message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// The documents' code for the entry.
    pub code: ViolationCode,
    /// The parameter as the documents name it (`countryOfOrigin`, `hsCode`, ...).
    pub parameter: String,
    /// The documents' message, e.g. `'KP' is not a valid Country of Origin.`
    pub message: String,
}

impl FieldViolation {
    /// Builds an `invalid_parameter` entry.
    pub fn invalid(parameter: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: ViolationCode::InvalidParameter,
            parameter: parameter.into(),
            message: message.into(),
        }
    }

    /// Builds a `missing_parameter` entry with the message `The <parameter> is missing.`
    pub fn missing(parameter: impl Into<String>) -> Self {
        let parameter = parameter.into();
        let message = format!("The {parameter} is missing.");
        Self {
            code: ViolationCode::MissingParameter,
            parameter,
            message,
        }
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// One unmet precondition, as `google.rpc.PreconditionFailure` carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreconditionViolation {
    /// A short machine-readable kind, e.g. `insufficient_inventory`.
    pub kind: String,
    /// What the violation is about, e.g. the inventory item id.
    pub subject: String,
    /// A human-readable explanation.
    pub description: String,
}
