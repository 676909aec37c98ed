//! CPU time per process, read from `/proc`, so that a workload's cost can be split between the
//! services, the database and the load generator itself.

use std::collections::BTreeMap;

/// A process, or a set of them, whose CPU time is counted.
#[derive(Clone, Debug)]
pub enum Source {
    /// One process.
    Pid(u32),
    /// Every process with this command name (PostgreSQL's backends, say), whoever started them.
    Named(&'static str),
    /// The load generator.
    Own,
}

/// The processes a run counts, each under a name.
#[derive(Clone, Debug, Default)]
pub struct Meter {
    sources: Vec<(&'static str, Source)>,
    ticks_per_second: f64,
}

/// CPU ticks used so far, by name.
#[derive(Clone, Debug, Default)]
pub struct Sample(BTreeMap<&'static str, u64>);

/// CPU milliseconds per operation of one run, by name.
#[derive(Clone, Debug, Default)]
pub struct PerOperation(pub Vec<(&'static str, f64)>);

impl Meter {
    /// Counts `sources`.
    pub fn new(sources: Vec<(&'static str, Source)>) -> Self {
        Self { sources, ticks_per_second: ticks_per_second() }
    }

    /// The ticks each source has used so far.
    pub fn sample(&self) -> Sample {
        let mut sample = Sample::default();
        for (name, source) in &self.sources {
            let ticks = match source {
                Source::Pid(pid) => ticks_of(&pid.to_string()).unwrap_or(0),
                Source::Own => ticks_of("self").unwrap_or(0),
                Source::Named(command) => named_ticks(command),
            };
            *sample.0.entry(name).or_default() += ticks;
        }
        sample
    }

    /// What each source used between `before` and now, per operation of `operations`.
    pub fn since(&self, before: &Sample, operations: usize) -> PerOperation {
        let after = self.sample();
        let per = |used: u64| used as f64 * 1000.0 / self.ticks_per_second / operations.max(1) as f64;
        // Sources may share a name (two replicas of a service): each name once, in order.
        let mut names: Vec<&'static str> = Vec::new();
        for (name, _) in &self.sources {
            if !names.contains(name) {
                names.push(name);
            }
        }
        PerOperation(
            names
                .into_iter()
                .map(|name| {
                    let used =
                        after.0.get(name).copied().unwrap_or(0).saturating_sub(*before.0.get(name).unwrap_or(&0));
                    (name, per(used))
                })
                .collect(),
        )
    }
}

impl PerOperation {
    /// All sources together.
    pub fn total(&self) -> f64 {
        self.0.iter().map(|(_, ms)| ms).sum()
    }
}

/// User and system ticks of `/proc/<pid>/stat`.
fn ticks_of(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_ticks(&stat)
}

/// The 14th and 15th fields (utime, stime), counted after the command name, which may hold spaces.
fn parse_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name, the state is field 3: utime (14) and stime (15) are the 12th and 13th here.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// The command name in `/proc/<pid>/stat`.
fn command_of(stat: &str) -> Option<&str> {
    Some(&stat[stat.find('(')? + 1..stat.rfind(')')?])
}

/// Ticks of every running process named `command`. A process that ends during a run takes its
/// ticks with it; PostgreSQL's backends live as long as the pools that opened them.
fn named_ticks(command: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| command_of(stat) == Some(command))
        .filter_map(|stat| parse_ticks(&stat))
        .sum()
}

/// The kernel's clock ticks per second for `/proc` times, as `getconf` reports them (100 on Linux
/// unless configured otherwise).
fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_read_after_a_command_name_with_spaces() {
        let stat = "4711 (tokio runtime) S 1 4711 4711 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 9 0 1 2 3";
        assert_eq!(parse_ticks(stat), Some(287));
        assert_eq!(command_of(stat), Some("tokio runtime"));
        assert_eq!(parse_ticks("4711 (short) S 1"), None);
    }

    #[test]
    fn the_load_generator_uses_time_when_it_works() {
        let meter = Meter::new(vec![("loadgen", Source::Own)]);
        let before = meter.sample();
        let started = std::time::Instant::now();
        // Spin until 50 ms of CPU show, however busy the machine; a reading stuck at zero runs out
        // of time instead.
        let mut spin = 0u64;
        while meter.since(&before, 1).total() < 50.0 && started.elapsed() < std::time::Duration::from_secs(10) {
            spin = spin.wrapping_add(std::hint::black_box(1));
        }
        let used = meter.since(&before, 1).total();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let wall = started.elapsed().as_secs_f64() * 1000.0;
        assert!(used >= 50.0, "{used} ms after {spin} spins");
        // One tick (10 ms at 100 Hz) of slack: no more than the cores could have run meanwhile.
        assert!(used <= wall * cores + 10.0, "{used} ms of CPU in {wall} ms on {cores} cores");
    }
}
