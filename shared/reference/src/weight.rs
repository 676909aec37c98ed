use std::fmt;
use std::str::FromStr;

use fulfillment_errors::FieldViolation;

/// The units a weight may be given in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightUnit {
    /// Ounces, the unit assumed when a weight comes without one.
    #[default]
    Oz,
    /// Pounds.
    Lb,
    /// Grams.
    G,
    /// Kilograms.
    Kg,
}

impl WeightUnit {
    /// The documents' spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            WeightUnit::Oz => "oz",
            WeightUnit::Lb => "lb",
            WeightUnit::G => "g",
            WeightUnit::Kg => "kg",
        }
    }
}

impl fmt::Display for WeightUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WeightUnit {
    type Err = FieldViolation;

    fn from_str(unit: &str) -> Result<Self, Self::Err> {
        match unit {
            "oz" => Ok(WeightUnit::Oz),
            "lb" => Ok(WeightUnit::Lb),
            "g" => Ok(WeightUnit::G),
            "kg" => Ok(WeightUnit::Kg),
            other => Err(FieldViolation::not_valid("weightUnit", other, "weight unit")),
        }
    }
}

/// Checks a weight: a finite number above zero.
pub fn validate_weight(weight: f64) -> Result<(), FieldViolation> {
    if weight.is_finite() && weight > 0.0 {
        Ok(())
    } else {
        Err(FieldViolation::not_valid("weight", &weight.to_string(), "weight"))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_four_units_parse_and_print_back() {
        for unit in ["oz", "lb", "g", "kg"] {
            assert_eq!(unit.parse::<WeightUnit>().map(|u| u.as_str()), Ok(unit));
        }
        assert_eq!(WeightUnit::default(), WeightUnit::Oz);
    }

    #[test]
    fn other_units_are_refused() {
        for unit in ["OZ", "pound", "", "mg"] {
            let violation = unit.parse::<WeightUnit>().expect_err(unit);
            assert_eq!(violation.parameter, "weightUnit");
        }
    }

    #[test]
    fn zero_negative_and_non_finite_weights_are_refused() {
        for weight in [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(validate_weight(weight).is_err(), "{weight}");
        }
        assert!(validate_weight(8.88).is_ok());
    }

    proptest! {
        #[test]
        fn every_positive_finite_weight_is_valid(weight in f64::MIN_POSITIVE..f64::MAX) {
            prop_assert!(validate_weight(weight).is_ok());
        }
    }
}
