//! Where the services read the time. Production reads the system's; a test holds a clock it moves
//! forward, so expiries and leases lapse when the test says and not after a sleep.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sea_orm::prelude::DateTimeUtc;

use crate::paging;

/// The system's time, plus an offset that only a test moves.
///
/// Cloning is cheap and every clone reads the same offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    ahead_micros: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's time.
    pub fn system() -> Self {
        Self::default()
    }

    /// The system's time until [`advance`](Self::advance) moves it ahead.
    pub fn adjustable() -> Self {
        Self { ahead_micros: Some(Arc::new(AtomicI64::new(0))) }
    }

    /// Moves an adjustable clock (and every clone of it) ahead by `by`; a system clock stays as it is.
    pub fn advance(&self, by: Duration) {
        if let Some(ahead) = &self.ahead_micros {
            ahead.fetch_add(i64::try_from(by.as_micros()).unwrap_or(i64::MAX), Ordering::Relaxed);
        }
    }

    /// The current time at the microsecond precision both databases store.
    pub fn now(&self) -> DateTimeUtc {
        let now = paging::now();
        match &self.ahead_micros {
            None => now,
            Some(ahead) => {
                now.checked_add_signed(chrono::Duration::microseconds(ahead.load(Ordering::Relaxed))).unwrap_or(now)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjustable_clock_moves_ahead_for_every_clone_and_a_system_clock_does_not() {
        let clock = Clock::adjustable();
        let clone = clock.clone();
        let before = clock.now();
        clone.advance(Duration::from_secs(3600));
        let after = clock.now();
        assert!(after - before >= chrono::Duration::seconds(3600), "{before} {after}");

        let system = Clock::system();
        system.advance(Duration::from_secs(3600));
        assert!(system.now() - paging::now() < chrono::Duration::seconds(60));
    }
}
