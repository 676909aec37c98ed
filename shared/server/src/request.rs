//! Reading request messages the same way in every service's gRPC adapter.

use fulfillment_errors::FieldViolation;
use fulfillment_proto::common::v1 as common;
use fulfillment_proto::time::date_time_micros_ceil;
use fulfillment_storage::paging::TimeRange;

/// A proto3 string as an optional value: empty means not given.
pub fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

/// The fields a field mask names, parsed by `parse`; every unknown path is a violation of
/// `updateMask`.
pub fn mask_fields<F>(paths: &[String], parse: impl Fn(&str) -> Option<F>) -> Result<Vec<F>, Vec<FieldViolation>> {
    let mut fields = Vec::new();
    let mut violations = Vec::new();
    for path in paths {
        match parse(path) {
            Some(field) => fields.push(field),
            None => violations.push(FieldViolation::not_valid("updateMask", path, "field")),
        }
    }
    if violations.is_empty() { Ok(fields) } else { Err(violations) }
}

/// A list filter's time range, bounds rounded up to the microsecond the databases keep; a bound
/// outside the years 1 to 9999 is a violation of `parameter`.
pub fn time_range(
    range: Option<common::TimeRange>,
    parameter: &str,
    violations: &mut Vec<FieldViolation>,
) -> TimeRange {
    let range = range.unwrap_or_default();
    let mut bound = |value: Option<prost_types::Timestamp>| {
        let value = value?;
        let converted = date_time_micros_ceil(&value);
        if converted.is_none() {
            violations.push(FieldViolation::not_valid(parameter, &value.to_string(), "time"));
        }
        converted
    };
    TimeRange { start: bound(range.start), end: bound(range.end) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_mask_paths_are_each_named() {
        let parse = |path: &str| (path == "name").then_some(1);
        assert_eq!(mask_fields(&["name".into()], parse), Ok(vec![1]));
        let violations = mask_fields(&["name".into(), "physical".into(), "id".into()], parse).expect_err("unknown");
        assert_eq!(
            violations.iter().map(|v| v.message.as_str()).collect::<Vec<_>>(),
            ["'physical' is not a valid field.", "'id' is not a valid field."]
        );
    }

    #[test]
    fn out_of_range_bounds_are_violations() {
        let mut violations = Vec::new();
        let range =
            common::TimeRange { start: Some(prost_types::Timestamp { seconds: i64::MAX, nanos: 0 }), end: None };
        let converted = time_range(Some(range), "createdTime", &mut violations);
        assert_eq!(converted, TimeRange::default());
        assert_eq!(violations[0].parameter, "createdTime");
    }
}
