use fulfillment_errors::FieldViolation;

/// Whether `code` is a Harmonized System code as the documents write it: `####.##` followed by up to
/// four more digits in dot-separated groups (`1006.20.4025`, `1006.20.40.25`), 6 to 10 digits in all.
pub fn is_valid_hs_code(code: &str) -> bool {
    // Ten digits in one-digit groups after `####.##` is the longest: anything longer is refused
    // before it is split.
    if code.len() > 15 {
        return false;
    }
    let mut digits = 0;
    for (n, group) in code.split('.').enumerate() {
        let length_fits = match n {
            0 => group.len() == 4,
            1 => group.len() == 2,
            _ => !group.is_empty(),
        };
        if !length_fits || !group.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        digits += group.len();
    }
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
    fn a_huge_value_is_refused_and_quoted_short() {
        let dots = ".".repeat(4_000_000);
        let violation = validate_hs_code(&dots).expect_err("dots are not digits");
        assert!(violation.message.len() < 200, "{}", violation.message.len());
        assert!(!is_valid_hs_code(&format!("1234.56{}", ".1".repeat(100_000))));
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
