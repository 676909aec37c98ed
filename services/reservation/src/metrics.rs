//! The Reservation service's own figures, beside the per-call ones every server records.

use chrono::{DateTime, Utc};
use fulfillment_server::Metrics;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};

use crate::domain::State;

/// The Reservation service's instruments.
#[derive(Clone, Debug)]
pub struct ReservationMetrics {
    reservations: Counter<u64>,
    expiry_lag: Histogram<f64>,
}

impl ReservationMetrics {
    /// Creates the instruments in `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        Self {
            reservations: metrics
                .meter()
                .u64_counter("reservation.reservations")
                .with_description("Reservations by what happened to them")
                .build(),
            expiry_lag: metrics.latency_histogram(
                "reservation.expiry.lag",
                "How long after its expiry time the sweeper released a reservation's hold",
            ),
        }
    }

    /// Counts a reservation that reached `state`: active (its hold placed), cancelled or fulfilled.
    pub fn reached(&self, state: State) {
        let outcome = match state {
            State::Active => "created",
            State::Cancelled => "cancelled",
            State::Fulfilled => "fulfilled",
            State::Pending | State::Releasing | State::Committing | State::Expiring => return,
        };
        self.count(outcome);
    }

    /// Counts a reservation the Inventory refused for want of stock.
    pub fn refused(&self) {
        self.count("refused");
    }

    /// Counts a reservation released and deleted at `now` after it expired at `expire_time`.
    pub fn expired(&self, expire_time: DateTime<Utc>, now: DateTime<Utc>) {
        self.count("expired");
        let lag = (now - expire_time).to_std().unwrap_or_default();
        self.expiry_lag.record(lag.as_secs_f64(), &[]);
    }

    fn count(&self, outcome: &'static str) {
        self.reservations.add(1, &[KeyValue::new("outcome", outcome)]);
    }
}
