//! Reading request messages the same way in every service's gRPC adapter.

use std::collections::HashSet;

use fulfillment_errors::{FieldViolation, Violations};
use fulfillment_proto::common::v1 as common;
use fulfillment_proto::time::date_time_micros_ceil;
use fulfillment_storage::paging::TimeRange;

/// A proto3 string as an optional value: empty means not given.
pub fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

/// The most paths a field mask may name: more than any resource of the suite has fields.
pub const MAX_MASK_PATHS: usize = 32;

/// The fields a field mask names, parsed by `parse`, each once however often it is named; every
/// unknown path is a violation of `updateMask`. The count is checked before any path is read.
pub fn mask_fields<F>(paths: &[String], parse: impl Fn(&str) -> Option<F>) -> Result<Vec<F>, Violations> {
    if paths.len() > MAX_MASK_PATHS {
        let message = format!("The update mask names {} paths; at most {MAX_MASK_PATHS} may be given.", paths.len());
        return Err(FieldViolation::invalid("updateMask", message).into());
    }
    let mut seen = HashSet::with_capacity(paths.len());
    let mut fields = Vec::new();
    let mut violations = Violations::new();
    for path in paths.iter().filter(|path| seen.insert(path.as_str())) {
        match parse(path) {
            Some(field) => fields.push(field),
            None => violations.push(FieldViolation::not_valid("updateMask", path, "field")),
        }
    }
    violations.into_result(fields)
}

/// A list filter's time range, bounds rounded up to the microsecond the databases keep; a bound
/// outside the years 1 to 9999 is a violation of `parameter`.
pub fn time_range(range: Option<common::TimeRange>, parameter: &str, violations: &mut Violations) -> TimeRange {
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
        assert_eq!(mask_fields(&["name".into(), "name".into()], parse), Ok(vec![1]), "named twice, applied once");
        let violations = mask_fields(&["name".into(), "physical".into(), "id".into()], parse).expect_err("unknown");
        assert_eq!(
            violations.iter().map(|v| v.message.as_str()).collect::<Vec<_>>(),
            ["'physical' is not a valid field.", "'id' is not a valid field."]
        );
    }

    #[test]
    fn a_mask_longer_than_any_resource_is_refused_unread() {
        let paths = vec!["name".to_owned(); MAX_MASK_PATHS + 1];
        let violations = mask_fields(&paths, |_| -> Option<u8> { panic!("no path is parsed") }).expect_err("too long");
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].parameter, "updateMask");
    }

    #[test]
    fn out_of_range_bounds_are_violations() {
        let mut violations = Violations::new();
        let range =
            common::TimeRange { start: Some(prost_types::Timestamp { seconds: i64::MAX, nanos: 0 }), end: None };
        let converted = time_range(Some(range), "createdTime", &mut violations);
        assert_eq!(converted, TimeRange::default());
        assert_eq!(violations[0].parameter, "createdTime");
    }
}
