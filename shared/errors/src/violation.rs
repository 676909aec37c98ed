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

/// The most violations one bad request reports.
pub const MAX_VIOLATIONS: usize = 50;

/// The violations of one request, at most [`MAX_VIOLATIONS`] of them: the cap holds while the list
/// is built, so however many elements a request gets wrong, its answer costs no more than the cap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Violations {
    kept: Vec<FieldViolation>,
    /// How many were found past the cap and not kept.
    dropped: usize,
}

impl Violations {
    /// No violation yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `violation`, or only counts it when the cap is reached.
    pub fn push(&mut self, violation: FieldViolation) {
        if self.kept.len() < MAX_VIOLATIONS {
            self.kept.push(violation);
        } else {
            self.dropped += 1;
        }
    }

    /// Whether the cap is reached, so that a loop over a request's elements may stop early.
    pub fn is_full(&self) -> bool {
        self.kept.len() >= MAX_VIOLATIONS
    }

    /// How many were found, kept or not.
    pub fn found(&self) -> usize {
        self.kept.len() + self.dropped
    }

    /// `Ok(value)` when none was found, else these violations.
    pub fn into_result<T>(self, value: T) -> Result<T, Violations> {
        if self.is_empty() { Ok(value) } else { Err(self) }
    }
}

impl From<FieldViolation> for Violations {
    fn from(violation: FieldViolation) -> Self {
        Self { kept: vec![violation], dropped: 0 }
    }
}

impl From<Vec<FieldViolation>> for Violations {
    fn from(violations: Vec<FieldViolation>) -> Self {
        let mut capped = Self::new();
        capped.extend(violations);
        capped
    }
}

impl Extend<FieldViolation> for Violations {
    fn extend<I: IntoIterator<Item = FieldViolation>>(&mut self, violations: I) {
        for violation in violations {
            self.push(violation);
        }
    }
}

impl IntoIterator for Violations {
    type Item = FieldViolation;
    type IntoIter = std::vec::IntoIter<FieldViolation>;

    fn into_iter(self) -> Self::IntoIter {
        self.kept.into_iter()
    }
}

impl<'a> IntoIterator for &'a Violations {
    type Item = &'a FieldViolation;
    type IntoIter = std::slice::Iter<'a, FieldViolation>;

    fn into_iter(self) -> Self::IntoIter {
        self.kept.iter()
    }
}

/// The violations kept, in the order found.
impl std::ops::Deref for Violations {
    type Target = [FieldViolation];

    fn deref(&self) -> &[FieldViolation] {
        &self.kept
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
    fn violations_past_the_cap_are_counted_not_kept() {
        let mut violations = Violations::new();
        for n in 0..10_000 {
            assert_eq!(violations.is_full(), n >= MAX_VIOLATIONS);
            violations.push(FieldViolation::missing(format!("line{n}")));
        }
        assert_eq!(violations.iter().count(), MAX_VIOLATIONS);
        assert_eq!(violations.found(), 10_000);
        assert_eq!(violations[0].parameter, "line0", "the first found are the ones kept");
    }

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
