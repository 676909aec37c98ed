//! Reference data and validators shared by every service (docs/architecture.md, "Reference data and
//! validation"). Validators answer with the documents' [`FieldViolation`] so that the Catalog and
//! the Inventory word the same mistake the same way.

mod country;
mod eccn;
mod hs_code;
mod identifier;
mod tax_code;
mod text;
mod weight;

pub use country::{Countries, DEFAULT_EMBARGOED_COUNTRIES, is_iso_country};
pub use eccn::{DEFAULT_APPROVED_ECCNS, Eccns, is_well_formed_eccn};
pub use hs_code::{is_valid_hs_code, validate_hs_code};
pub use identifier::{MAX_ID_LEN, generate_id, is_valid_id, validate_sku_id};
pub use tax_code::{ProductKind, TaxCodes};
pub use text::{MAX_LONG_TEXT, MAX_SHORT_TEXT, MAX_URL, validate_text};
pub use weight::{WeightUnit, validate_weight};

use fulfillment_errors::FieldViolation;

/// The configurable reference lists a service validates against.
#[derive(Clone, Debug, Default)]
pub struct ReferenceData {
    /// Country codes and the embargo list.
    pub countries: Countries,
    /// The pre-approved ECCNs.
    pub eccns: Eccns,
    /// The tax-code table deciding `physical`.
    pub tax_codes: TaxCodes,
}

impl ReferenceData {
    /// Checks a country of origin: a real ISO 3166-1 alpha-2 code that is not under embargo.
    pub fn validate_country_of_origin(&self, code: &str) -> Result<(), FieldViolation> {
        self.countries.validate_origin(code)
    }

    /// Checks an ECCN: well-formed and on the pre-approved list.
    pub fn validate_eccn(&self, eccn: &str) -> Result<(), FieldViolation> {
        self.eccns.validate(eccn)
    }

    /// Classifies a tax code, refusing one the table does not know.
    pub fn classify_tax_code(&self, code: &str) -> Result<ProductKind, FieldViolation> {
        self.tax_codes.classify(code)
    }
}
