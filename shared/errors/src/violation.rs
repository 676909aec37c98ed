use std::borrow::Cow;
use std::fmt;

/// How much of a caller's value an error message quotes: enough to recognise it, never so much
/// that the status outgrows the HTTP/2 header limits.
pub const EXCERPT_CHARS: usize = 64;

/// The value as an error message quotes it: cut to [`EXCERPT_CHARS`] characters with a trailing `…`.
pub fn excerpt(value: &str) -> Cow<'_, str> {
    match value.char_indices().nth(EXCERPT_CHARS) {
        None => Cow::Borrowed(value),
        Some((cut, _)) => Cow::Owned(format!("{}…", &value[..cut])),
    }
}

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
        Self { code: ViolationCode::InvalidParameter, parameter: parameter.into(), message: message.into() }
    }

    /// Builds the documents' usual `invalid_parameter` entry: `'<value>' is not a valid <what>.`,
    /// quoting at most [`EXCERPT_CHARS`] characters of the value.
    pub fn not_valid(parameter: impl Into<String>, value: &str, what: &str) -> Self {
        Self::invalid(parameter, format!("'{}' is not a valid {what}.", excerpt(value)))
    }

    /// Builds a `missing_parameter` entry with the message `The <parameter> is missing.`
    pub fn missing(parameter: impl Into<String>) -> Self {
        let parameter = parameter.into();
        let message = format!("The {parameter} is missing.");
        Self { code: ViolationCode::MissingParameter, parameter, message }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_quoted_whole_and_long_ones_cut() {
        assert_eq!(
            FieldViolation::not_valid("hsCode", "1234.56.YW", "HS code").message,
            "'1234.56.YW' is not a valid HS code."
        );
        let long = "é".repeat(10_000);
        let message = FieldViolation::not_valid("id", &long, "SKU ID").message;
        assert!(message.len() < 200, "{}", message.len());
        assert!(message.contains("…"));
    }
}
