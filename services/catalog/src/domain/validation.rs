//! The SKU document's rules and the manufacturer-part registry's key rules: none needs the
//! database, so each is checked before a transaction starts.

use fulfillment_errors::{FieldViolation, Violations};
use std::collections::BTreeMap;

use fulfillment_reference::{
    MAX_LONG_TEXT, MAX_SHORT_TEXT, MAX_URL, ProductKind, ReferenceData, WeightUnit, validate_hs_code, validate_text,
    validate_weight,
};

use super::sku::{MANAGED_FULFILLMENT, SkuAttributes};

/// What validation derived from a SKU's attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validated {
    /// Whether the tax code is a physical one.
    pub physical: bool,
}

/// Checks `attributes` against the SKU document, filling in what it defaults (`weightUnit` to oz,
/// `allowOversell` to true on physical SKUs), and reports every violation at once.
pub fn validate(attributes: &mut SkuAttributes, reference: &ReferenceData) -> Result<Validated, Violations> {
    let mut violations = Violations::new();
    let mut check = |result: Result<(), FieldViolation>| {
        if let Err(violation) = result {
            violations.push(violation);
        }
    };

    // Required on create and upsert, and never cleared by an update: the document's order.
    let required = [
        ("eccn", &attributes.eccn),
        ("taxCode", &attributes.tax_code),
        ("name", &attributes.name),
        ("countryOfOrigin", &attributes.country_of_origin),
    ];
    for (parameter, value) in required {
        if value.is_none() {
            check(Err(FieldViolation::missing(parameter)));
        }
    }

    let texts = [
        ("name", &attributes.name, MAX_SHORT_TEXT),
        ("description", &attributes.description, MAX_LONG_TEXT),
        ("skuGroupId", &attributes.sku_group_id, MAX_SHORT_TEXT),
        ("manufacturerId", &attributes.manufacturer_id, MAX_SHORT_TEXT),
        ("partNumber", &attributes.part_number, MAX_SHORT_TEXT),
        ("image", &attributes.image, MAX_URL),
        ("url", &attributes.url, MAX_URL),
        ("itemBreadcrumb", &attributes.item_breadcrumb, MAX_LONG_TEXT),
    ];
    for (parameter, value, max_chars) in texts {
        if let Some(value) = value {
            check(validate_text(parameter, value, max_chars));
        }
    }
    if let Some(metadata) = &attributes.metadata {
        check(validate_metadata(metadata));
    }
    if let Some(eccn) = &attributes.eccn {
        check(reference.validate_eccn(eccn));
    }
    if let Some(country) = &attributes.country_of_origin {
        check(reference.validate_country_of_origin(country));
    }
    let kind = match &attributes.tax_code {
        Some(code) => match reference.classify_tax_code(code) {
            Ok(kind) => Some(kind),
            Err(violation) => {
                check(Err(violation));
                None
            }
        },
        None => None,
    };
    if let Some(hs_code) = &attributes.hs_code {
        check(validate_hs_code(hs_code));
    }
    if let Some(weight) = attributes.weight {
        check(validate_weight(weight));
    }
    if let Some(unit) = &attributes.weight_unit {
        check(unit.parse::<WeightUnit>().map(drop));
    }

    match &attributes.managed_fulfillment {
        None => {}
        Some(value) if value != MANAGED_FULFILLMENT => {
            check(Err(FieldViolation::not_valid("managedFulfillment", value, "item type")));
        }
        Some(_) => {
            if let (Some(ProductKind::Digital), Some(code)) = (kind, &attributes.tax_code) {
                check(Err(FieldViolation::not_valid("taxCode", code, "parameter")));
            }
            if attributes.part_number.is_none() {
                check(Err(FieldViolation::invalid("partNumber", "'null' is not a valid parameter.")));
            }
        }
    }

    if !violations.is_empty() {
        return Err(violations);
    }
    let physical = kind == Some(ProductKind::Physical);
    if attributes.weight.is_some() && attributes.weight_unit.is_none() {
        attributes.weight_unit = Some(WeightUnit::default().to_string());
    }
    if physical && attributes.allow_oversell.is_none() {
        attributes.allow_oversell = Some(true);
    }
    Ok(Validated { physical })
}

/// The most metadata entries a SKU keeps.
pub const MAX_METADATA_ENTRIES: usize = 50;
const MAX_METADATA_KEY: usize = 64;
const MAX_METADATA_VALUE: usize = 512;

/// Checks how many metadata entries a SKU is given, before any of them is looked at.
pub fn metadata_count(entries: usize) -> Result<(), FieldViolation> {
    if entries > MAX_METADATA_ENTRIES {
        return Err(FieldViolation::invalid(
            "metadata",
            format!("The metadata has {entries} entries; at most {MAX_METADATA_ENTRIES} are allowed."),
        ));
    }
    Ok(())
}

fn validate_metadata(metadata: &BTreeMap<String, String>) -> Result<(), FieldViolation> {
    metadata_count(metadata.len())?;
    for (key, value) in metadata {
        validate_text("metadata", key, MAX_METADATA_KEY)?;
        if key.is_empty() {
            return Err(FieldViolation::invalid("metadata", "A metadata key is empty."));
        }
        validate_text("metadata", value, MAX_METADATA_VALUE)?;
    }
    Ok(())
}

/// Checks a manufacturer part's key: both halves given, at most 255 bytes, no control characters.
pub fn validate_part_key(manufacturer_id: &str, part_number: &str) -> Result<(), Violations> {
    let mut violations = Violations::new();
    for (parameter, value) in [("manufacturerId", manufacturer_id), ("partNumber", part_number)] {
        if value.is_empty() {
            violations.push(FieldViolation::missing(parameter));
        } else if value.len() > 255 || value.chars().any(char::is_control) {
            violations.push(FieldViolation::not_valid(parameter, value, parameter));
        }
    }
    if violations.is_empty() { Ok(()) } else { Err(violations) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> SkuAttributes {
        SkuAttributes {
            name: Some("Test Product".into()),
            eccn: Some("EAR99".into()),
            tax_code: Some("4323.310_A".into()),
            country_of_origin: Some("US".into()),
            ..Default::default()
        }
    }

    fn violations(mut attributes: SkuAttributes) -> Vec<(String, String)> {
        validate(&mut attributes, &ReferenceData::default())
            .expect_err("invalid")
            .into_iter()
            .map(|v| (v.parameter, v.message))
            .collect()
    }

    #[test]
    fn the_documents_example_is_a_physical_sku_that_may_oversell() {
        let mut attributes = valid();
        let validated = validate(&mut attributes, &ReferenceData::default()).expect("valid");
        assert!(validated.physical);
        assert_eq!(attributes.allow_oversell, Some(true));
    }

    #[test]
    fn a_digital_sku_has_no_default_oversell() {
        let mut attributes = SkuAttributes { tax_code: Some("81112106".into()), ..valid() };
        let validated = validate(&mut attributes, &ReferenceData::default()).expect("valid");
        assert!(!validated.physical);
        assert_eq!(attributes.allow_oversell, None);
    }

    #[test]
    fn every_missing_required_field_is_reported_with_its_parameter() {
        let found = violations(SkuAttributes::default());
        assert_eq!(
            found,
            vec![
                ("eccn".into(), "The eccn is missing.".into()),
                ("taxCode".into(), "The taxCode is missing.".into()),
                ("name".into(), "The name is missing.".into()),
                ("countryOfOrigin".into(), "The countryOfOrigin is missing.".into()),
            ]
        );
    }

    #[test]
    fn bad_values_are_reported_together() {
        let found = violations(SkuAttributes {
            country_of_origin: Some("KP".into()),
            hs_code: Some("1234.56.YW".into()),
            weight: Some(-1.0),
            weight_unit: Some("stone".into()),
            ..valid()
        });
        let parameters: Vec<_> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(parameters, ["countryOfOrigin", "hsCode", "weight", "weightUnit"]);
        assert_eq!(found[0].1, "'KP' is not a valid Country of Origin.");
        assert_eq!(found[1].1, "'1234.56.YW' is not a valid HS code.");
    }

    #[test]
    fn free_text_is_bounded_and_free_of_control_characters() {
        let found = violations(SkuAttributes {
            name: Some("a\0b".into()),
            description: Some("x".repeat(MAX_LONG_TEXT + 1)),
            metadata: Some([("k".to_owned(), "v\u{0}".to_owned())].into()),
            ..valid()
        });
        let parameters: Vec<_> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(parameters, ["name", "description", "metadata"]);
    }

    #[test]
    fn metadata_is_limited_in_entries() {
        let metadata = (0..=MAX_METADATA_ENTRIES).map(|n| (format!("k{n}"), "v".to_owned())).collect();
        let found = violations(SkuAttributes { metadata: Some(metadata), ..valid() });
        assert_eq!(found[0].0, "metadata");
    }

    #[test]
    fn a_weight_without_a_unit_is_in_ounces() {
        let mut attributes = SkuAttributes { weight: Some(8.88), ..valid() };
        validate(&mut attributes, &ReferenceData::default()).expect("valid");
        assert_eq!(attributes.weight_unit.as_deref(), Some("oz"));
    }

    #[test]
    fn managed_fulfillment_must_name_the_one_supported_value() {
        let found = violations(SkuAttributes {
            managed_fulfillment: Some("DRGlobalFulfillment^&%^".into()),
            part_number: Some("P1".into()),
            ..valid()
        });
        assert_eq!(
            found,
            vec![("managedFulfillment".into(), "'DRGlobalFulfillment^&%^' is not a valid item type.".into())]
        );
    }

    #[test]
    fn a_managed_sku_needs_a_physical_tax_code_and_a_part_number() {
        let found = violations(SkuAttributes {
            managed_fulfillment: Some(MANAGED_FULFILLMENT.into()),
            tax_code: Some("4512.100".into()),
            ..valid()
        });
        assert_eq!(
            found,
            vec![
                ("taxCode".into(), "'4512.100' is not a valid parameter.".into()),
                ("partNumber".into(), "'null' is not a valid parameter.".into()),
            ]
        );
    }
}
