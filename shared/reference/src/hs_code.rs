use fulfillment_errors::FieldViolation;

/// Whether `code` is a Harmonized System code as the documents write it: `####.##` followed by up to
/// four more digits in dot-separated groups (`1006.20.4025`, `1006.20.40.25`), 6 to 10 digits in all.
pub fn is_valid_hs_code(code: &str) -> bool {
    let groups: Vec<&str> = code.split('.').collect();
    if groups.len() < 2 || groups[0].len() != 4 || groups[1].len() != 2 {
        return false;
    }
    if groups.iter().any(|g| g.is_empty() || !g.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let digits: usize = groups.iter().map(|g| g.len()).sum();
    (6..=10).contains(&digits)
}

/// Checks an HS code, answering with the documents' message.
pub fn validate_hs_code(code: &str) -> Result<(), FieldViolation> {
    if is_valid_hs_code(code) { Ok(()) } else { Err(FieldViolation::not_valid("hsCode", code, "HS code")) }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_documents_examples_are_valid() {
        for code in ["1006.20.4025", "1006.20.40.25", "6404.20", "6404.20.1", "8471.30.010"] {
            assert!(is_valid_hs_code(code), "{code}");
        }
    }

    #[test]
    fn the_documents_counter_example_is_refused_with_its_message() {
        let violation = validate_hs_code("1234.56.YW").expect_err("letters are not digits");
        assert_eq!(violation.parameter, "hsCode");
        assert_eq!(violation.message, "'1234.56.YW' is not a valid HS code.");
    }

    #[test]
    fn malformed_codes_are_refused() {
        for code in
            ["", "1234", "123456", "1234.5", "12345.67", "1234.56.", "1234..56", "1234.56.78901", "1234.56.789.01"]
        {
            assert!(!is_valid_hs_code(code), "{code}");
        }
    }

    proptest! {
        #[test]
        fn any_well_formed_code_is_valid(head in "[0-9]{4}", sub in "[0-9]{2}", tail in proptest::option::of("[0-9]{1,4}")) {
            let code = match tail { Some(t) => format!("{head}.{sub}.{t}"), None => format!("{head}.{sub}") };
            prop_assert!(is_valid_hs_code(&code));
        }

        #[test]
        fn a_code_with_a_letter_is_never_valid(code in "[0-9.]{0,8}[A-Za-z][0-9.]{0,8}") {
            prop_assert!(!is_valid_hs_code(&code));
        }

        #[test]
        fn more_than_ten_digits_is_never_valid(head in "[0-9]{4}", sub in "[0-9]{2}", tail in "[0-9]{5,8}") {
            let code = format!("{head}.{sub}.{tail}");
            prop_assert!(!is_valid_hs_code(&code));
        }
    }
}
