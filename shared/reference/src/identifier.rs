use fulfillment_errors::FieldViolation;

/// The longest id the suite stores.
pub const MAX_ID_LEN: usize = 255;

/// Whether `id` uses only the documents' recommended characters (letters, digits, `-`, `_`) and is
/// 1 to [`MAX_ID_LEN`] long. Everything else, whitespace and `/ [ ] { } < > ^` included, is refused.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a SKU id, answering with the documents' message.
pub fn validate_sku_id(id: &str) -> Result<(), FieldViolation> {
    if is_valid_id(id) { Ok(()) } else { Err(FieldViolation::not_valid("id", id, "SKU ID")) }
}

/// Generates an id with the given prefix (`sku`, `res`, ...): time-ordered, so new rows land at the
/// end of an index.
pub fn generate_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn whitespace_is_refused_with_the_documents_message() {
        let violation = validate_sku_id("UGG BB PUR 06").expect_err("spaces are not allowed");
        assert_eq!(violation.parameter, "id");
        assert_eq!(violation.message, "'UGG BB PUR 06' is not a valid SKU ID.");
    }

    #[test]
    fn the_characters_that_made_the_documents_fail_are_refused() {
        for c in ['/', '[', ']', '{', '}', '<', '>', '^', '\t', '.'] {
            assert!(!is_valid_id(&format!("sku{c}1")), "{c:?}");
        }
    }

    #[test]
    fn length_is_bounded() {
        assert!(is_valid_id(&"a".repeat(MAX_ID_LEN)));
        assert!(!is_valid_id(&"a".repeat(MAX_ID_LEN + 1)));
        assert!(!is_valid_id(""));
    }

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = generate_id("sku");
        let b = generate_id("sku");
        assert!(is_valid_id(&a) && a.starts_with("sku_"));
        assert_ne!(a, b);
    }

    proptest! {
        #[test]
        fn ids_from_the_charset_are_valid(id in "[A-Za-z0-9_-]{1,255}") {
            prop_assert!(is_valid_id(&id));
        }

        #[test]
        fn any_other_character_makes_an_id_invalid(prefix in "[A-Za-z0-9]{0,5}", bad in "[^A-Za-z0-9_-]", suffix in "[A-Za-z0-9]{0,5}") {
            let id = format!("{prefix}{bad}{suffix}");
            prop_assert!(!is_valid_id(&id));
        }
    }
}
