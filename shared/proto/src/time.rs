//! Conversions between `google.protobuf.Timestamp` and `chrono`.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

/// The timestamp of a point in time.
pub fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp { seconds: time.timestamp(), nanos: time.timestamp_subsec_nanos() as i32 }
}

/// The first second protobuf's Timestamp allows: 0001-01-01T00:00:00Z.
pub const MIN_SECONDS: i64 = -62_135_596_800;
/// The last second protobuf's Timestamp allows: 9999-12-31T23:59:59Z.
pub const MAX_SECONDS: i64 = 253_402_300_799;

/// The point in time of a timestamp, or `None` when it is malformed or outside the years 1 to 9999
/// that protobuf allows (and both databases store).
pub fn date_time(timestamp: &Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(timestamp.nanos).ok().filter(|n| *n < 1_000_000_000)?;
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&timestamp.seconds) {
        return None;
    }
    DateTime::from_timestamp(timestamp.seconds, nanos)
}

/// Like [`date_time`], rounded up to the microsecond the databases keep, so that a bound compares
/// alike on SQLite and PostgreSQL.
pub fn date_time_micros_ceil(timestamp: &Timestamp) -> Option<DateTime<Utc>> {
    let time = date_time(timestamp)?;
    let extra_nanos = time.timestamp_subsec_nanos() % 1_000;
    if extra_nanos == 0 {
        Some(time)
    } else {
        time.checked_add_signed(chrono::Duration::nanoseconds(i64::from(1_000 - extra_nanos)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_to_the_nanosecond() {
        let time = DateTime::from_timestamp(1_617_146_803, 587_000_123).expect("in range");
        assert_eq!(date_time(&timestamp(time)), Some(time));
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        assert_eq!(date_time(&Timestamp { seconds: 0, nanos: -1 }), None);
        assert_eq!(date_time(&Timestamp { seconds: 0, nanos: 1_000_000_000 }), None);
        assert_eq!(date_time(&Timestamp { seconds: i64::MAX, nanos: 0 }), None);
    }
}
