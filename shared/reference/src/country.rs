use std::collections::BTreeSet;

use fulfillment_errors::FieldViolation;

/// Countries refused as country of origin unless configured otherwise.
pub const DEFAULT_EMBARGOED_COUNTRIES: &[&str] = &["CU", "IR", "KP", "SY"];

/// Whether `code` is an assigned ISO 3166-1 alpha-2 code (upper case, as the standard writes it).
pub fn is_iso_country(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) && rust_iso3166::from_alpha2(code).is_some()
}

/// ISO 3166-1 countries with a configurable embargo list.
#[derive(Clone, Debug)]
pub struct Countries {
    embargoed: BTreeSet<String>,
}

impl Default for Countries {
    fn default() -> Self {
        Self::with_embargo(DEFAULT_EMBARGOED_COUNTRIES.iter().copied())
    }
}

impl Countries {
    /// Countries with the given embargo list in place of the default one.
    pub fn with_embargo<'a>(codes: impl IntoIterator<Item = &'a str>) -> Self {
        Self { embargoed: codes.into_iter().map(|c| c.trim().to_ascii_uppercase()).collect() }
    }

    /// Whether goods from `code` are refused.
    pub fn is_embargoed(&self, code: &str) -> bool {
        self.embargoed.contains(code)
    }

    /// Checks a country of origin, answering with the documents' message.
    pub fn validate_origin(&self, code: &str) -> Result<(), FieldViolation> {
        if is_iso_country(code) && !self.is_embargoed(code) {
            Ok(())
        } else {
            Err(FieldViolation::not_valid("countryOfOrigin", code, "Country of Origin"))
        }
    }

    /// Checks a destination or location country: any assigned ISO code (embargoes apply to origin).
    pub fn validate_country(&self, parameter: &str, code: &str) -> Result<(), FieldViolation> {
        if is_iso_country(code) { Ok(()) } else { Err(FieldViolation::not_valid(parameter, code, "country")) }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn embargoed_country_is_refused_with_the_documents_message() {
        let violation = Countries::default().validate_origin("KP").expect_err("KP is under embargo");
        assert_eq!(violation.parameter, "countryOfOrigin");
        assert_eq!(violation.message, "'KP' is not a valid Country of Origin.");
    }

    #[test]
    fn assigned_codes_pass_and_unassigned_or_lower_case_fail() {
        let countries = Countries::default();
        for ok in ["US", "DE", "DK", "JP"] {
            assert!(countries.validate_origin(ok).is_ok(), "{ok}");
        }
        for bad in ["XX", "us", "USA", "", "U", "ZZ"] {
            assert!(countries.validate_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_embargo_list_is_configurable() {
        let countries = Countries::with_embargo(["ru"]);
        assert!(countries.validate_origin("KP").is_ok());
        assert!(countries.validate_origin("RU").is_err());
    }

    #[test]
    fn destinations_accept_embargoed_origins_but_not_unknown_codes() {
        let countries = Countries::default();
        assert!(countries.validate_country("shipTo.address.country", "CU").is_ok());
        let violation = countries.validate_country("shipTo.address.country", "QQ").expect_err("QQ is unassigned");
        assert_eq!(violation.parameter, "shipTo.address.country");
    }

    proptest! {
        #[test]
        fn anything_but_two_upper_case_letters_is_refused(code in "\\PC{0,4}") {
            prop_assume!(!(code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase())));
            prop_assert!(!is_iso_country(&code));
        }
    }
}
