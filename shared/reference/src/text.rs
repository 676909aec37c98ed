use fulfillment_errors::FieldViolation;

/// The longest value of a column that is indexed or compared: ids, codes, names.
pub const MAX_SHORT_TEXT: usize = 255;
/// The longest URL.
pub const MAX_URL: usize = 2048;
/// The longest free text, such as a description.
pub const MAX_LONG_TEXT: usize = 4096;

/// Checks a text value: at most `max_chars` characters and no control characters (a NUL would
/// be refused by PostgreSQL, the others have no place in these fields).
pub fn validate_text(parameter: &str, value: &str, max_chars: usize) -> Result<(), FieldViolation> {
    // The length first, which reads at most `max_chars` characters of any value.
    if value.chars().nth(max_chars).is_some() {
        let what = format!("{parameter}. It must be at most {max_chars} characters");
        return Err(FieldViolation::not_valid(parameter, value, &what));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldViolation::not_valid(parameter, value, parameter));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn control_characters_are_refused() {
        for value in ["a\0b", "line\nbreak", "\u{7f}"] {
            let violation = validate_text("name", value, MAX_SHORT_TEXT).expect_err(value);
            assert_eq!(violation.parameter, "name");
        }
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert!(validate_text("name", &"é".repeat(255), MAX_SHORT_TEXT).is_ok());
        let violation = validate_text("name", &"é".repeat(256), MAX_SHORT_TEXT).expect_err("too long");
        assert!(
            violation.message.ends_with("is not a valid name. It must be at most 255 characters."),
            "{}",
            violation.message
        );
    }

    proptest! {
        #[test]
        fn printable_text_within_the_limit_passes(value in "[^\\p{Cc}]{0,255}") {
            prop_assert!(validate_text("description", &value, MAX_SHORT_TEXT).is_ok());
        }
    }
}
