//! The SKU as the Catalog's domain sees it, and the filters of a SKU listing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use fulfillment_errors::{FieldViolation, Violations};
use fulfillment_reference::{MAX_SHORT_TEXT, is_valid_id, validate_text};
use fulfillment_storage::paging::TimeRange;

/// The value the managed fulfillment attribute must have.
pub const MANAGED_FULFILLMENT: &str = "DRGlobalFulfillment";

/// Declares the settable attributes once, and from that list the struct holding them, the field
/// enum a field mask names, and the per-field copy an update needs.
macro_rules! sku_attributes {
    ($($field:ident: $ty:ty => $variant:ident, $path:literal, $camel:literal;)*) => {
        /// The attributes a caller sets on a SKU; `None` means not given.
        #[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct SkuAttributes {
            $(pub $field: Option<$ty>,)*
        }

        /// One settable attribute, as a field mask names it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum SkuField {
            $($variant,)*
        }

        impl SkuField {
            /// Every settable attribute.
            pub const ALL: &[SkuField] = &[$(SkuField::$variant,)*];

            /// The field named by a mask path, in snake_case (`country_of_origin`) or the JSON
            /// camelCase (`countryOfOrigin`).
            pub fn from_path(path: &str) -> Option<Self> {
                // One-word fields are spelled alike in both cases.
                #[allow(unreachable_patterns)]
                match path {
                    $($path | $camel => Some(SkuField::$variant),)*
                    _ => None,
                }
            }
        }

        impl SkuAttributes {
            /// The attributes that are set.
            pub fn present_fields(&self) -> Vec<SkuField> {
                let mut fields = Vec::new();
                $(if self.$field.is_some() { fields.push(SkuField::$variant); })*
                fields
            }

            /// Takes `field` from `source`, clearing it here when `source` does not set it.
            pub fn assign(&mut self, field: SkuField, source: &SkuAttributes) {
                match field {
                    $(SkuField::$variant => self.$field = source.$field.clone(),)*
                }
            }
        }
    };
}

sku_attributes! {
    name: String => Name, "name", "name";
    description: String => Description, "description", "description";
    eccn: String => Eccn, "eccn", "eccn";
    tax_code: String => TaxCode, "tax_code", "taxCode";
    country_of_origin: String => CountryOfOrigin, "country_of_origin", "countryOfOrigin";
    hs_code: String => HsCode, "hs_code", "hsCode";
    sku_group_id: String => SkuGroupId, "sku_group_id", "skuGroupId";
    manufacturer_id: String => ManufacturerId, "manufacturer_id", "manufacturerId";
    part_number: String => PartNumber, "part_number", "partNumber";
    image: String => Image, "image", "image";
    url: String => Url, "url", "url";
    weight: f64 => Weight, "weight", "weight";
    weight_unit: String => WeightUnit, "weight_unit", "weightUnit";
    allow_oversell: bool => AllowOversell, "allow_oversell", "allowOversell";
    fulfill: bool => Fulfill, "fulfill", "fulfill";
    managed_fulfillment: String => ManagedFulfillment, "managed_fulfillment", "managedFulfillment";
    item_breadcrumb: String => ItemBreadcrumb, "item_breadcrumb", "itemBreadcrumb";
    metadata: BTreeMap<String, String> => Metadata, "metadata", "metadata";
}

/// The manufacturer part a managed SKU names, checked against the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedPart {
    /// The manufacturer id, when the SKU gives one.
    pub manufacturer_id: Option<String>,
    /// The part number.
    pub part_number: String,
}

impl SkuAttributes {
    /// The part to check for a managed SKU; `None` for an unmanaged one (or one without a part
    /// number, which validation refuses).
    pub fn managed_part(&self) -> Option<ManagedPart> {
        self.managed_fulfillment.as_ref()?;
        Some(ManagedPart { manufacturer_id: self.manufacturer_id.clone(), part_number: self.part_number.clone()? })
    }
}

/// A stored SKU: validated attributes plus what the Catalog derives and records.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sku {
    /// The SKU's id.
    pub id: String,
    /// Its attributes; the required ones are always set.
    pub attributes: SkuAttributes,
    /// Derived from the tax code.
    pub physical: bool,
    /// Whether a live key wrote it.
    pub live_mode: bool,
    /// When it was created.
    pub created_time: DateTime<Utc>,
    /// When it last changed.
    pub updated_time: DateTime<Utc>,
}

/// The changes an update applies: each listed field is taken from `values`, and cleared when
/// `values` leaves it unset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SkuChanges {
    /// The fields to change.
    pub fields: Vec<SkuField>,
    /// Their new values.
    pub values: SkuAttributes,
}

impl SkuChanges {
    /// Changes every attribute that `values` sets, leaving the others as they are.
    pub fn set_present(values: SkuAttributes) -> Self {
        Self { fields: values.present_fields(), values }
    }

    /// Applies the changes to `attributes`. A new weight without a unit is in the default unit,
    /// as the document says, whatever unit the old weight had.
    pub fn apply_to(&self, attributes: &mut SkuAttributes) {
        for field in &self.fields {
            attributes.assign(*field, &self.values);
        }
        if self.fields.contains(&SkuField::Weight) && !self.fields.contains(&SkuField::WeightUnit) {
            attributes.weight_unit = None;
        }
    }
}

/// The filters of a SKU listing; unset filters match everything.
#[derive(Clone, Debug, Default)]
pub struct SkuFilter {
    /// Only these ids, when not empty.
    pub ids: Vec<String>,
    pub eccn: Option<String>,
    pub part_number: Option<String>,
    pub hs_code: Option<String>,
    pub tax_code: Option<String>,
    pub sku_group_id: Option<String>,
    /// Creation time range.
    pub created: TimeRange,
    /// Last-change time range.
    pub updated: TimeRange,
}

impl SkuFilter {
    /// The most ids one listing may name.
    pub const MAX_IDS: usize = 100;

    /// Checks the filters a caller sent.
    pub fn validate(&self) -> Result<(), Violations> {
        // The count first: a longer list is refused before any of its ids is looked at.
        if self.ids.len() > Self::MAX_IDS {
            return Err(FieldViolation::invalid("ids", format!("At most {} ids may be given.", Self::MAX_IDS)).into());
        }
        let mut violations = Violations::new();
        violations.extend(
            self.ids.iter().filter(|id| !is_valid_id(id)).map(|id| FieldViolation::not_valid("ids", id, "SKU ID")),
        );
        let texts = [
            ("eccn", &self.eccn),
            ("partNumber", &self.part_number),
            ("hsCode", &self.hs_code),
            ("taxCode", &self.tax_code),
            ("skuGroupId", &self.sku_group_id),
        ];
        for (parameter, value) in texts {
            if let Some(value) = value {
                violations.extend(validate_text(parameter, value, MAX_SHORT_TEXT).err());
            }
        }
        if violations.is_empty() { Ok(()) } else { Err(violations) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_accepted_in_both_spellings() {
        assert_eq!(SkuField::from_path("country_of_origin"), Some(SkuField::CountryOfOrigin));
        assert_eq!(SkuField::from_path("countryOfOrigin"), Some(SkuField::CountryOfOrigin));
        assert_eq!(SkuField::from_path("physical"), None, "output-only fields are not settable");
        assert_eq!(SkuField::from_path("id"), None);
    }

    #[test]
    fn a_listed_field_left_unset_is_cleared() {
        let mut attributes = SkuAttributes {
            name: Some("n".into()),
            managed_fulfillment: Some(MANAGED_FULFILLMENT.into()),
            ..Default::default()
        };
        let changes = SkuChanges { fields: vec![SkuField::ManagedFulfillment], values: SkuAttributes::default() };
        changes.apply_to(&mut attributes);
        assert_eq!(attributes.managed_fulfillment, None);
        assert_eq!(attributes.name.as_deref(), Some("n"), "unlisted fields are kept");
    }

    #[test]
    fn set_present_changes_only_what_is_given() {
        let mut attributes =
            SkuAttributes { name: Some("old".into()), eccn: Some("EAR99".into()), ..Default::default() };
        let changes = SkuChanges::set_present(SkuAttributes { name: Some("new".into()), ..Default::default() });
        assert_eq!(changes.fields, vec![SkuField::Name]);
        changes.apply_to(&mut attributes);
        assert_eq!(attributes.name.as_deref(), Some("new"));
        assert_eq!(attributes.eccn.as_deref(), Some("EAR99"));
    }

    #[test]
    fn every_field_has_a_path() {
        let paths = [
            "name",
            "description",
            "eccn",
            "tax_code",
            "country_of_origin",
            "hs_code",
            "sku_group_id",
            "manufacturer_id",
            "part_number",
            "image",
            "url",
            "weight",
            "weight_unit",
            "allow_oversell",
            "fulfill",
            "managed_fulfillment",
            "item_breadcrumb",
            "metadata",
        ];
        assert_eq!(SkuField::ALL.len(), paths.len());
        for path in paths {
            assert!(SkuField::from_path(path).is_some(), "{path}");
        }
    }
}
