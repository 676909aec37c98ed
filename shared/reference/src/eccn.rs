use std::collections::BTreeSet;

use fulfillment_errors::FieldViolation;

/// The ECCNs accepted unless configured otherwise: EAR99 and the common mass-market classifications.
pub const DEFAULT_APPROVED_ECCNS: &[&str] = &[
    "EAR99", "3A991", "3A992", "4A994", "4D994", "5A991", "5A991.b", "5A991.c", "5A992", "5A992.c", "5B992", "5D991",
    "5D992", "5D992.c", "5E992",
];

/// Whether `eccn` has the shape of an Export Control Classification Number: `EAR99`, or a category
/// digit, a product-group letter A to E and three digits, optionally followed by `.x` paragraphs
/// (`5A992`, `5D992.c`, `5A002.a.1`).
pub fn is_well_formed_eccn(eccn: &str) -> bool {
    if eccn == "EAR99" {
        return true;
    }
    let mut parts = eccn.split('.');
    let Some(head) = parts.next() else { return false };
    let head = head.as_bytes();
    let head_ok = head.len() == 5
        && head[0].is_ascii_digit()
        && (b'A'..=b'E').contains(&head[1])
        && head[2..].iter().all(u8::is_ascii_digit);
    head_ok && parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The pre-approved ECCN list.
#[derive(Clone, Debug)]
pub struct Eccns {
    approved: BTreeSet<String>,
}

impl Default for Eccns {
    fn default() -> Self {
        Self::approving(DEFAULT_APPROVED_ECCNS.iter().copied())
    }
}

impl Eccns {
    /// A list approving exactly `eccns`.
    pub fn approving<'a>(eccns: impl IntoIterator<Item = &'a str>) -> Self {
        Self { approved: eccns.into_iter().map(|e| e.trim().to_owned()).collect() }
    }

    /// Checks an ECCN: well-formed and pre-approved.
    pub fn validate(&self, eccn: &str) -> Result<(), FieldViolation> {
        if is_well_formed_eccn(eccn) && self.approved.contains(eccn) {
            Ok(())
        } else {
            Err(FieldViolation::not_valid("eccn", eccn, "ECCN"))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn approved_eccns_pass() {
        for eccn in ["EAR99", "5D992.c", "5A992.c"] {
            assert!(Eccns::default().validate(eccn).is_ok(), "{eccn}");
        }
    }

    #[test]
    fn well_formed_but_unapproved_eccns_are_refused() {
        assert!(is_well_formed_eccn("5A002.a.1"));
        let violation = Eccns::default().validate("5A002.a.1").expect_err("not pre-approved");
        assert_eq!(violation.parameter, "eccn");
        assert_eq!(violation.message, "'5A002.a.1' is not a valid ECCN.");
    }

    #[test]
    fn malformed_eccns_are_refused_even_when_listed() {
        let eccns = Eccns::approving(["ear99", "5F992"]);
        assert!(eccns.validate("ear99").is_err());
        assert!(eccns.validate("5F992").is_err());
    }

    proptest! {
        #[test]
        fn shape_follows_the_pattern(category in 0u8..10, group in "[A-E]", number in "[0-9]{3}", para in proptest::option::of("[a-z]")) {
            let eccn = match para { Some(p) => format!("{category}{group}{number}.{p}"), None => format!("{category}{group}{number}") };
            prop_assert!(is_well_formed_eccn(&eccn));
        }

        #[test]
        fn a_group_letter_outside_a_to_e_is_malformed(category in 0u8..10, group in "[F-Z]", number in "[0-9]{3}") {
            let eccn = format!("{category}{group}{number}");
            prop_assert!(!is_well_formed_eccn(&eccn));
        }
    }
}
