//! What one timed run measured: operations, latencies and errors.

use std::collections::BTreeMap;
use std::time::Duration;

use tonic::Code;

/// The outcome of one timed run.
#[derive(Debug, Default)]
pub struct Run {
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Latency of every successful operation, in microseconds, sorted.
    pub latencies: Vec<u64>,
    /// Failed operations by gRPC code.
    pub errors: BTreeMap<String, u64>,
}

impl Run {
    /// Merges what the workers recorded.
    pub fn collect(elapsed: Duration, workers: Vec<Worker>) -> Self {
        let mut run = Run { elapsed, ..Default::default() };
        for worker in workers {
            run.latencies.extend(worker.latencies);
            for (code, count) in worker.errors {
                *run.errors.entry(format!("{:?}", Code::from_i32(code))).or_default() += count;
            }
        }
        run.latencies.sort_unstable();
        run
    }

    /// Successful operations per second.
    pub fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// The latency at quantile `q` (0..=1), in milliseconds.
    pub fn percentile(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let rank = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[rank] as f64 / 1000.0
    }

    /// The errors as `CODE×n`, or `none`.
    pub fn errors_text(&self) -> String {
        if self.errors.is_empty() {
            return "none".to_owned();
        }
        self.errors.iter().map(|(code, n)| format!("{code}×{n}")).collect::<Vec<_>>().join(", ")
    }
}

/// What one worker recorded.
#[derive(Debug, Default)]
pub struct Worker {
    latencies: Vec<u64>,
    errors: BTreeMap<i32, u64>,
}

impl Worker {
    /// Records one operation.
    pub fn record(&mut self, took: Duration, outcome: Result<(), Code>) {
        match outcome {
            Ok(()) => self.latencies.push(took.as_micros() as u64),
            Err(code) => *self.errors.entry(code as i32).or_default() += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_throughput_and_errors_come_from_what_was_recorded() {
        let mut worker = Worker::default();
        for millis in 1..=100 {
            worker.record(Duration::from_millis(millis), Ok(()));
        }
        worker.record(Duration::ZERO, Err(Code::Unavailable));
        let run = Run::collect(Duration::from_secs(2), vec![worker, Worker::default()]);
        assert_eq!(run.throughput(), 50.0);
        assert_eq!(run.percentile(0.5), 51.0);
        assert_eq!(run.percentile(0.99), 99.0);
        assert_eq!(run.percentile(1.0), 100.0);
        assert_eq!(run.errors_text(), "Unavailable×1");
    }
}
