//! Conversions between `google.protobuf.Timestamp` and `chrono`.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

/// The timestamp of a point in time.
pub fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

/// The point in time of a timestamp, or `None` when it is out of range or malformed.
pub fn date_time(timestamp: &Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(timestamp.nanos).ok().filter(|n| *n < 1_000_000_000)?;
    DateTime::from_timestamp(timestamp.seconds, nanos)
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
        assert_eq!(
            date_time(&Timestamp {
                seconds: 0,
                nanos: 1_000_000_000
            }),
            None
        );
        assert_eq!(
            date_time(&Timestamp {
                seconds: i64::MAX,
                nanos: 0
            }),
            None
        );
    }
}
