//! The load generator. `loadgen run` drives a running suite with one workload; `loadgen report`
//! starts the suite itself on SQLite and on PostgreSQL, runs every workload and the baselines in
//! one go, and writes the figures to BENCHMARKS.md.

mod baselines;
mod cpu;
mod hostile;
mod stats;
mod suite;
mod workloads;

use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::baselines::{MinimalReservation, ReservationSql};
use crate::cpu::{Meter, PerOperation, Source};
use crate::stats::Run;
use crate::suite::{Databases, Process};
use crate::workloads::{OpenRun, Suite, Workload, run_open_loop, run_spread_over, run_workload};

#[derive(Parser)]
#[command(name = "loadgen", about = "Drives the suite through its gRPC clients and prints what it measured.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs one workload against a running suite.
    Run {
        #[arg(long, value_enum)]
        workload: Workload,
        #[command(flatten)]
        load: Load,
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        catalog: String,
        #[arg(long, default_value = "http://127.0.0.1:50052")]
        inventory: String,
        #[arg(long, default_value = "http://127.0.0.1:50053")]
        reservation: String,
        /// The API key to call with (read and write; a key over its rate limit is refused, so
        /// give it a high `API_KEY_RATE_LIMIT` or measure the limit itself).
        #[arg(long, env = "FULFILLMENT_API_KEY", hide_env_values = true)]
        api_key: String,
    },
    /// Starts the suite on each database, runs every workload and baseline, and writes a report.
    Report {
        #[command(flatten)]
        load: Load,
        /// A PostgreSQL server to create the databases on; without it only SQLite runs.
        #[arg(long, env = "TEST_DATABASE_URL")]
        postgres: Option<String>,
        /// Where the report goes.
        #[arg(long, default_value = "BENCHMARKS.md")]
        out: PathBuf,
    },
}

#[derive(clap::Args, Clone, Copy)]
struct Load {
    /// Calls in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds each workload runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

impl Load {
    fn duration(self) -> Duration {
        Duration::from_secs(self.seconds)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Run { workload, load, catalog, inventory, reservation, api_key } => {
            let suite = Suite::connect(&catalog, &inventory, &reservation, &api_key).await?;
            suite.prepare().await?;
            let run = run_workload(&suite, workload, load.concurrency, load.duration(), &unique("run")).await;
            println!("{}", header());
            println!("{}", row(workload.describe(), &run, &[]));
        }
        Command::Report { load, postgres, out } => {
            let mut report = machine(load);
            let mut backends = vec![("SQLite", None, None)];
            match postgres {
                Some(url) => {
                    backends.push(("PostgreSQL", Some(url.clone()), None));
                    // As CockroachDB and YugabyteDB run by default: lost races are retried, and counted.
                    backends.push(("PostgreSQL, serializable", Some(url), Some("serializable")));
                }
                None => eprintln!("no --postgres (or TEST_DATABASE_URL): PostgreSQL is left out"),
            }
            for (name, admin, isolation) in backends {
                eprintln!("== {name}");
                report.push_str(&measure(name, admin.as_deref(), isolation, load).await?);
            }
            report.push_str(NOTES);
            // What people wrote below the marker (profiles, decisions) outlives the figures.
            let previous = std::fs::read_to_string(&out).unwrap_or_default();
            report.push_str(&kept_by_hand(&previous));
            std::fs::write(&out, &report)?;
            eprintln!("wrote {}", out.display());
        }
    }
    Ok(())
}

/// Warehouses added that ship elsewhere, to show that a hold's cost does not grow with them.
const FOREIGN_WAREHOUSES: usize = 1000;

/// A fresh key secret: `fk_<tag>_` and 40 letters or digits.
fn secret(tag: &str) -> String {
    let random = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    format!("fk_{tag}_{}", &random[..40])
}

/// One timed run and the CPU each process spent on it.
struct Measured {
    run: Run,
    cpu: PerOperation,
}

/// Times `run`, counting the CPU of `meter`'s processes while it goes.
async fn metered(meter: &Meter, run: impl Future<Output = Run>) -> Measured {
    let before = meter.sample();
    let run = run.await;
    let cpu = meter.since(&before, run.latencies.len());
    Measured { run, cpu }
}

/// The least a reservation's transaction costs on this database, measured before the services
/// start so that they hold none of the server's connections.
struct Limit {
    spread: Measured,
    hot: Measured,
    /// pgbench's transactions per second, spread and on one row, when PostgreSQL is measured.
    pgbench: Option<[Result<f64, String>; 2]>,
    /// On SQLite, the spread transaction again with `synchronous=FULL`.
    full: Option<Measured>,
}

async fn measure_limit(
    databases: &mut Databases,
    sqlite: bool,
    load: Load,
) -> Result<Limit, Box<dyn std::error::Error>> {
    let (concurrency, duration) = (load.concurrency, load.duration());
    let database = if sqlite { None } else { Some(("database", Source::Named("postgres"))) };
    let meter = Meter::new(database.into_iter().chain([("loadgen", Source::Own)]).collect());
    let url = databases.extra("minimal").await?;
    let minimal = MinimalReservation::create(&url, concurrency as u32).await?;
    eprintln!("   the minimal transaction");
    let spread = metered(&meter, minimal.run(false, concurrency, duration)).await;
    let hot = metered(&meter, minimal.run(true, concurrency, duration)).await;
    minimal.close().await;
    let pgbench = if sqlite {
        None
    } else {
        eprintln!("   the minimal transaction through pgbench");
        let directory = std::env::temp_dir();
        Some([
            baselines::run_pgbench(&url, false, concurrency, duration, &directory).await,
            baselines::run_pgbench(&url, true, concurrency, duration, &directory).await,
        ])
    };
    let full = if sqlite {
        eprintln!("   the minimal transaction, synchronous=FULL");
        let url = format!("{}?synchronous=full", databases.extra("minimal-full").await?);
        let minimal = MinimalReservation::create(&url, concurrency as u32).await?;
        let measured = metered(&meter, minimal.run(false, concurrency, duration)).await;
        minimal.close().await;
        Some(measured)
    } else {
        None
    };
    Ok(Limit { spread, hot, pgbench, full })
}

/// The suite on one database: every workload, the baselines, and each service's peak memory.
async fn measure(
    name: &str,
    admin: Option<&str>,
    isolation: Option<&'static str>,
    load: Load,
) -> Result<String, Box<dyn std::error::Error>> {
    let run = unique("bench");
    let sqlite = admin.is_none();
    let mut databases = match admin {
        Some(admin) => Databases::postgres(admin, &run, isolation).await?,
        None => Databases::sqlite(&PathBuf::from("target/bench"), &run)?,
    };
    let limit = measure_limit(&mut databases, sqlite, load).await?;
    let [catalog_db, inventory_db, reservation_db] = databases.urls.clone();
    let binaries = suite::binaries()?;
    // Keys of this run's own, provisioned through the Inventory's variables. The rate limit is off:
    // one key drives the whole load, and what is measured is the suite, not the limiter.
    let (admin, catalog_key, reservation_key) = (secret("live"), secret("svc"), secret("svc"));
    let keys = [
        ("INVENTORY_ADMIN_KEY", admin.as_str()),
        ("INVENTORY_CATALOG_SERVICE_KEY", catalog_key.as_str()),
        ("INVENTORY_RESERVATION_SERVICE_KEY", reservation_key.as_str()),
        ("CATALOG_SERVICE_KEY", catalog_key.as_str()),
        ("RESERVATION_SERVICE_KEY", reservation_key.as_str()),
        ("API_KEY_RATE_LIMIT", "0"),
    ];
    let env = |pairs: &[(&str, &str)]| {
        pairs.iter().chain(keys.iter()).map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>()
    };
    let start_inventory = |url: &str, more: &[(&str, &str)]| {
        let mut pairs = vec![("INVENTORY_DATABASE_URL", url)];
        pairs.extend_from_slice(more);
        let variables = env(&pairs);
        let binary = binaries.join("inventory");
        async move { Process::start(&binary, "INVENTORY", &variables).await }
    };
    let start_reservation_with = |url: &str, inventory: &str, more: &[(&str, &str)]| {
        let mut pairs = vec![("RESERVATION_DATABASE_URL", url), ("RESERVATION_INVENTORY_URL", inventory)];
        pairs.extend_from_slice(more);
        let variables = env(&pairs);
        let binary = binaries.join("reservation");
        async move { Process::start(&binary, "RESERVATION", &variables).await }
    };
    let start_reservation = |url: &str, inventory: &str| start_reservation_with(url, inventory, &[]);
    let inventory = start_inventory(&inventory_db, &[]).await?;
    let reservation = start_reservation(&reservation_db, &inventory.url).await?;
    let catalog = Process::start(
        &binaries.join("catalog"),
        "CATALOG",
        &env(&[("CATALOG_DATABASE_URL", &catalog_db), ("CATALOG_INVENTORY_URL", &inventory.url)]),
    )
    .await?;
    let suite = Suite::connect(&catalog.url, &inventory.url, &reservation.url, &admin).await?;
    suite.prepare().await?;
    let meter_of = |inventory: &Process, reservation: &Process| {
        let mut sources = vec![
            ("catalog", catalog.pid().map_or(Source::Own, Source::Pid)),
            ("inventory", inventory.pid().map_or(Source::Own, Source::Pid)),
            ("reservation", reservation.pid().map_or(Source::Own, Source::Pid)),
        ];
        if !sqlite {
            sources.push(("database", Source::Named("postgres")));
        }
        sources.push(("loadgen", Source::Own));
        Meter::new(sources)
    };
    let meter = meter_of(&inventory, &reservation);
    // Every process's lost races, counted before it stops.
    let mut retried = Retried::default();

    let (concurrency, duration) = (load.concurrency, load.duration());
    let mut runs = Vec::new();
    for workload in Workload::ALL {
        eprintln!("   {}", workload.describe());
        let key = format!("{run}-{workload:?}");
        runs.push((workload, metered(&meter, run_workload(&suite, workload, concurrency, duration, &key)).await));
    }
    // The same hot holds through an Inventory that gives each hold its own transaction.
    eprintln!("   (f) again, one transaction per hold");
    let unbatched = start_inventory(&inventory_db, &[("INVENTORY_HOLD_BATCH_MAX", "1")]).await?;
    let one_by_one = Suite::connect(&catalog.url, &unbatched.url, &reservation.url, &admin).await?;
    let hot_unbatched = metered(
        &meter_of(&unbatched, &reservation),
        run_workload(&one_by_one, Workload::HotHold, concurrency, duration, &format!("{run}-unbatched")),
    )
    .await;
    retried.add("inventory", &unbatched).await;
    unbatched.stop().await;
    // The same reservations through a Reservation service that commits each write alone.
    eprintln!("   (a) and (b) again, each Reservation write committed alone");
    let ungrouped =
        start_reservation_with(&reservation_db, &inventory.url, &[("RESERVATION_WRITE_BATCH_MAX", "1")]).await?;
    let alone = Suite::connect(&catalog.url, &inventory.url, &ungrouped.url, &admin).await?;
    let mut each_alone = Vec::new();
    for workload in [Workload::Spread, Workload::Hot] {
        let key = format!("{run}-alone-{workload:?}");
        let measured =
            metered(&meter_of(&inventory, &ungrouped), run_workload(&alone, workload, concurrency, duration, &key))
                .await;
        each_alone.push((workload, measured));
    }
    retried.add("reservation", &ungrouped).await;
    ungrouped.stop().await;
    // Two replicas each of the Inventory and the Reservation service on the same databases, the
    // clients spread over both; on PostgreSQL only, where replicas are how a deployment grows.
    let replicas = if sqlite || isolation.is_some() {
        Vec::new()
    } else {
        eprintln!("   (a) and (b) over two replicas of the Inventory and the Reservation service");
        let inventory2 = start_inventory(&inventory_db, &[]).await?;
        let reservation2 = start_reservation(&reservation_db, &inventory2.url).await?;
        let both = [suite.clone(), Suite::connect(&catalog.url, &inventory2.url, &reservation2.url, &admin).await?];
        let pid = |process: &Process| process.pid().map_or(Source::Own, Source::Pid);
        let meter = Meter::new(vec![
            ("inventory", pid(&inventory)),
            ("inventory", pid(&inventory2)),
            ("reservation", pid(&reservation)),
            ("reservation", pid(&reservation2)),
            ("database", Source::Named("postgres")),
            ("loadgen", Source::Own),
        ]);
        let mut measured = Vec::new();
        for workload in [Workload::Spread, Workload::Hot] {
            let key = format!("{run}-replicas-{workload:?}");
            measured
                .push((workload, metered(&meter, run_spread_over(&both, workload, concurrency, duration, &key)).await));
        }
        retried.add("inventory", &inventory2).await;
        retried.add("reservation", &reservation2).await;
        reservation2.stop().await;
        inventory2.stop().await;
        measured
    };
    // (a) open loop, at half the peak (a) reached and at three times it: latency when there is
    // room, and what overload leaves of the goodput.
    let peak = runs.iter().find(|(w, _)| *w == Workload::Spread).map_or(0.0, |(_, m)| m.run.throughput());
    let mut open_suites = Vec::new();
    for _ in 0..workloads::OPEN_LOOP_CONNECTIONS {
        open_suites.push(Suite::connect(&catalog.url, &inventory.url, &reservation.url, &admin).await?);
    }
    let mut open_loop = Vec::new();
    for factor in [0.5, 3.0] {
        eprintln!("   (a) open loop at {factor} × its peak");
        let rate = peak * factor;
        // Ids take letters, digits, '-' and '_': the factor goes in as tenths.
        let key = format!("{run}-open{:.0}", factor * 10.0);
        open_loop.push((factor, rate, run_open_loop(&open_suites, Workload::Spread, rate, duration, &key).await));
    }
    eprintln!("   the services' SQL");
    let sql = ReservationSql::connect(&inventory_db, &reservation_db).await?;
    let sql_spread = metered(&meter, sql.run(false, concurrency, duration, &format!("{run}-sql-spread"))).await;
    let sql_hot = metered(&meter, sql.run(true, concurrency, duration, &format!("{run}-sql-hot"))).await;
    let sql_holds = metered(&meter, sql.run_holds(concurrency, duration, &format!("{run}-sql-holds"))).await;
    let echo = metered(&meter, baselines::run_echo(baselines::start_echo().await?, concurrency, duration)).await;
    // The same hot holds once the Inventory has a thousand warehouses that do not ship there; last,
    // so that nothing before meets them (the SQL baselines read every warehouse).
    eprintln!("   (f) again, beside {FOREIGN_WAREHOUSES} warehouses that ship elsewhere");
    suite.add_foreign_warehouses(FOREIGN_WAREHOUSES).await?;
    let hot_crowded =
        metered(&meter, run_workload(&suite, Workload::HotHold, concurrency, duration, &format!("{run}-crowded")))
            .await;
    // Memory does not depend on the database: the hostile shapes run once, on SQLite.
    let hostile = if sqlite {
        eprintln!("   hostile requests");
        let directory = PathBuf::from("target/bench").join(format!("{run}-hostile"));
        std::fs::create_dir_all(&directory)?;
        let section = hostile::measure(&binaries, &env, &directory, &inventory.url, &admin).await?;
        let _ = std::fs::remove_dir_all(&directory);
        section
    } else {
        String::new()
    };
    let memory: Vec<(&str, Option<f64>)> = vec![
        ("catalog", catalog.peak_memory_mib()),
        ("inventory", inventory.peak_memory_mib()),
        ("reservation", reservation.peak_memory_mib()),
    ];
    retried.add("catalog", &catalog).await;
    retried.add("inventory", &inventory).await;
    retried.add("reservation", &reservation).await;
    for process in [reservation, inventory] {
        process.stop().await;
    }
    // SQLite again with every commit synced: the Inventory and the Reservation service restarted
    // on the same files with `synchronous=full`.
    let full = if sqlite {
        eprintln!("   (a) again, synchronous=FULL");
        let inventory = start_inventory(&format!("{inventory_db}?synchronous=full"), &[]).await?;
        let reservation = start_reservation(&format!("{reservation_db}?synchronous=full"), &inventory.url).await?;
        let synced = Suite::connect(&catalog.url, &inventory.url, &reservation.url, &admin).await?;
        let key = format!("{run}-full");
        let measured = metered(
            &meter_of(&inventory, &reservation),
            run_workload(&synced, Workload::Spread, concurrency, duration, &key),
        )
        .await;
        retried.add("inventory", &inventory).await;
        retried.add("reservation", &reservation).await;
        reservation.stop().await;
        inventory.stop().await;
        Some(measured)
    } else {
        None
    };
    catalog.stop().await;
    databases.drop_all().await;

    let mut table = Table::default();
    let minimal_spread = ("minimal, spread", &limit.spread.run);
    let minimal_hot = ("minimal, one row", &limit.hot.run);
    for (workload, measured) in &runs {
        let baselines = match workload {
            Workload::Spread => vec![minimal_spread, ("services' SQL, spread", &sql_spread.run)],
            Workload::Hot => vec![minimal_hot, ("services' SQL, one row", &sql_hot.run)],
            Workload::HotHold => vec![minimal_hot, ("hold's SQL, one row", &sql_holds.run)],
            Workload::Sku | Workload::Fulfill | Workload::Levels => vec![("bare tonic", &echo.run)],
        };
        table.add(workload.describe(), measured, &baselines);
    }
    for (workload, measured) in &each_alone {
        let grouped = runs.iter().find(|(w, _)| w == workload).map(|(_, m)| &m.run);
        let name = format!("{} with `RESERVATION_WRITE_BATCH_MAX=1`", &workload.describe()[..3]);
        let minimal = if *workload == Workload::Spread { minimal_spread } else { minimal_hot };
        let mut baselines = vec![minimal];
        baselines.extend(grouped.map(|run| (&workload.describe()[..3], run)));
        table.add(&name, measured, &baselines);
    }
    let spread_run = runs.iter().find(|(w, _)| *w == Workload::Spread).map(|(_, m)| &m.run);
    for (factor, rate, open) in &open_loop {
        let name = format!("(a) open loop, {rate:.0} offered per second ({factor} × the peak of (a))");
        table.add_run(&name, &open.run, &spread_run.map(|run| vec![("(a)", run)]).unwrap_or_default());
    }
    for (workload, measured) in &replicas {
        let one = runs.iter().find(|(w, _)| w == workload).map(|(_, m)| &m.run);
        let short = &workload.describe()[..3];
        let name = format!("{short} over two replicas of the Inventory and the Reservation service");
        table.add(&name, measured, &one.map(|run| vec![(short, run)]).unwrap_or_default());
    }
    let unbatched_name = "(f) with `INVENTORY_HOLD_BATCH_MAX=1`: one transaction per hold";
    table.add(unbatched_name, &hot_unbatched, &[minimal_hot, ("hold's SQL, one row", &sql_holds.run)]);
    if let Some((_, batched)) = runs.iter().find(|(w, _)| *w == Workload::HotHold) {
        let crowded_name = format!("(f) beside {FOREIGN_WAREHOUSES} warehouses that do not ship to the hold's country");
        table.add(&crowded_name, &hot_crowded, &[("(f)", &batched.run)]);
    }
    if let (Some(full), Some(limit_full)) = (&full, &limit.full) {
        table.add(
            "(a) with `synchronous=full`: every commit synced",
            full,
            &[("minimal, spread, FULL", &limit_full.run), ("(a)", &runs[0].1.run)],
        );
    }
    table.add("baseline: the minimal transaction, spread over 10,000 rows", &limit.spread, &[]);
    table.add("baseline: the minimal transaction, all on one row", &limit.hot, &[]);
    if let Some(limit_full) = &limit.full {
        table.add("baseline: the minimal transaction, spread, `synchronous=full`", limit_full, &[]);
    }
    table.add("baseline: a reservation's SQL, spread items, as the services send it", &sql_spread, &[]);
    table.add("baseline: a reservation's SQL, all on one row, as the services send it", &sql_hot, &[]);
    table.add("baseline: the hold's SQL alone, all on one row, one transaction each", &sql_holds, &[]);
    table.add("baseline: bare tonic health check", &echo, &[]);

    let mut text = format!("\n## {name}\n\n{}", table.throughput());
    if let Some([spread, hot]) = &limit.pgbench {
        let figure =
            |r: &Result<f64, String>| r.as_ref().map_or_else(|e| e.clone(), |tps| format!("{tps:.0} per second"));
        let _ = write!(
            text,
            "\npgbench, the minimal transaction with prepared statements and {concurrency} clients: spread {}, one row {}.\n",
            figure(spread),
            figure(hot)
        );
    }
    let _ =
        write!(text, "\nCPU per operation, in milliseconds, read from `/proc` for each process:\n\n{}", table.cpu());
    text.push_str("\nPeak memory (VmHWM): ");
    let described: Vec<String> = memory
        .iter()
        .map(|(service, mib)| format!("{service} {}", mib.map_or("n/a".to_owned(), |m| format!("{m:.1} MiB"))))
        .collect();
    text.push_str(&described.join(", "));
    if let Some((_, batched)) = runs.iter().find(|(w, _)| *w == Workload::HotHold)
        && hot_unbatched.run.throughput() > 0.0
    {
        let gain = batched.run.throughput() / hot_unbatched.run.throughput();
        let _ = write!(
            text,
            "\n\nHot-item batching: (f) places {gain:.2} × the holds per second it places with one transaction per hold."
        );
    }
    let _ = write!(
        text,
        "\n\nWrites tried again after losing a race (`db_transaction_retries_total`, whole run): {retried}."
    );
    text.push('\n');
    text.push_str(&goals(sqlite, &runs, &limit, &memory, &open_loop));
    text.push_str(&capacity(&runs));
    text.push_str(&hostile);
    eprint!("{text}");
    Ok(text)
}

/// Writes retried, by service, summed over the processes of a run.
#[derive(Default)]
struct Retried(Vec<(&'static str, f64)>);

impl Retried {
    async fn add(&mut self, service: &'static str, process: &Process) {
        let retries = process.retries().await.unwrap_or(0.0);
        match self.0.iter_mut().find(|(name, _)| *name == service) {
            Some((_, total)) => *total += retries,
            None => self.0.push((service, retries)),
        }
    }
}

impl std::fmt::Display for Retried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(service, n)| format!("{service} {n:.0}")).collect();
        f.write_str(&parts.join(", "))
    }
}

/// What each process's CPU per reservation in (a) means for capacity: reservations per second that
/// one core of it serves, if nothing else limits.
fn capacity(runs: &[(Workload, Measured)]) -> String {
    let Some((_, spread)) = runs.iter().find(|(w, _)| *w == Workload::Spread) else { return String::new() };
    let mut text = String::from(
        "\nCapacity from (a)'s CPU: reservations per second that one core of each process serves.\n\n\
         | process | CPU ms per reservation | reservations/s per core |\n| --- | ---: | ---: |\n",
    );
    for (process, ms) in spread.cpu.0.iter().filter(|(_, ms)| *ms > 0.005) {
        let _ = writeln!(text, "| {process} | {ms:.2} | {:.0} |", 1000.0 / ms);
    }
    let total = spread.cpu.total();
    let _ = writeln!(text, "| all together | {total:.2} | {:.0} |", 1000.0 / total.max(f64::EPSILON));
    text
}

/// The goals of the reservation path (issue 17), each with what this run measured.
fn goals(
    sqlite: bool,
    runs: &[(Workload, Measured)],
    limit: &Limit,
    memory: &[(&str, Option<f64>)],
    open_loop: &[(f64, f64, OpenRun)],
) -> String {
    let find = |workload: Workload| runs.iter().find(|(w, _)| *w == workload).map(|(_, m)| m);
    let ratio = |run: Option<&Measured>, base: &Measured| {
        run.map_or(0.0, |m| m.run.throughput()) / base.run.throughput().max(f64::EPSILON)
    };
    let spread_goal = if sqlite { 0.5 } else { 1.0 };
    let spread = ratio(find(Workload::Spread), &limit.spread);
    let hot = ratio(find(Workload::Hot), &limit.hot);
    let cpu = find(Workload::Spread).map_or(0.0, |m| m.cpu.total());
    let largest = memory.iter().filter_map(|(_, mib)| *mib).fold(0.0, f64::max);
    let mark = |met: bool| if met { "met" } else { "not met" };
    let mut text = String::from("\n| goal | measured | |\n| --- | ---: | --- |\n");
    let _ = writeln!(
        text,
        "| (a) ≥ {spread_goal} × the minimal transaction, spread | {spread:.2} × | {} |",
        mark(spread >= spread_goal)
    );
    let _ = writeln!(text, "| (b) ≥ 3 × the minimal transaction, one row | {hot:.2} × | {} |", mark(hot >= 3.0));
    let _ = writeln!(text, "| CPU per reservation (a), every process, ≤ 1 ms | {cpu:.2} ms | {} |", mark(cpu <= 1.0));
    let _ =
        writeln!(text, "| every service ≤ 64 MiB resident at peak | {largest:.1} MiB | {} |", mark(largest <= 64.0));
    let peak = find(Workload::Spread).map_or(0.0, |m| m.run.throughput());
    for (factor, _, open) in open_loop {
        if *factor < 1.0 {
            let (p50, p99) = (open.run.percentile(0.5), open.run.percentile(0.99));
            let done = open.run.latencies.len();
            let _ = writeln!(
                text,
                "| (a) at half of peak, open loop: p99 ≤ 5 × p50 | {done} done, p50 {p50:.2} ms, p99 {p99:.2} ms | {} |",
                mark(done > 0 && p99 <= 5.0 * p50)
            );
        } else {
            let goodput = open.run.throughput() / peak.max(f64::EPSILON);
            let _ = writeln!(
                text,
                "| (a) at three times peak, open loop: goodput ≥ 0.9 × peak | {goodput:.2} × | {} |",
                mark(goodput >= 0.9)
            );
            let (refused, p99) = (open.refusals.len(), open.refusal_percentile(0.99));
            let _ = writeln!(
                text,
                "| (a) at three times peak: refusals answered at once (p99 ≤ 50 ms), with RetryInfo | {refused} refused, p99 {p99:.2} ms, {} with RetryInfo | {} |",
                open.refusals_with_retry_info,
                mark(refused > 0 && open.refusals_with_retry_info == refused && p99 <= 50.0)
            );
        }
    }
    text
}

/// The rows of one database's report, in order, with what each is compared with.
#[derive(Default)]
struct Table {
    throughput: Vec<String>,
    cpu: Vec<String>,
}

/// The processes of the CPU table, in its column order.
const PROCESSES: [&str; 5] = ["catalog", "inventory", "reservation", "database", "loadgen"];

impl Table {
    /// A row with no CPU figures (an open-loop run, whose CPU is not split per operation).
    fn add_run(&mut self, name: &str, run: &Run, baselines: &[(&str, &Run)]) {
        self.throughput.push(row(name, run, baselines));
    }

    fn add(&mut self, name: &str, measured: &Measured, baselines: &[(&str, &Run)]) {
        self.throughput.push(row(name, &measured.run, baselines));
        let cells: Vec<String> = PROCESSES
            .iter()
            .map(|process| {
                let used = measured.cpu.0.iter().find(|(p, _)| p == process);
                used.map_or("–".to_owned(), |(_, ms)| format!("{ms:.2}"))
            })
            .collect();
        self.cpu.push(format!("| {name} | {} | {:.2} |", cells.join(" | "), measured.cpu.total()));
    }

    fn throughput(&self) -> String {
        format!("{}\n{}\n", header(), self.throughput.join("\n"))
    }

    fn cpu(&self) -> String {
        format!(
            "| workload | {} | total |\n| --- |{} ---: |\n{}\n",
            PROCESSES.join(" | "),
            " ---: |".repeat(PROCESSES.len()),
            self.cpu.join("\n")
        )
    }
}

fn header() -> String {
    "| workload | ops/s | p50 ms | p90 ms | p99 ms | max ms | errors | ratio to baselines |\n| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |".to_owned()
}

fn row(name: &str, run: &Run, baselines: &[(&str, &Run)]) -> String {
    let ratios: Vec<String> = baselines
        .iter()
        .map(|(label, base)| match base.throughput() {
            base if base > 0.0 => format!("{:.2} × {label}", run.throughput() / base),
            _ => format!("n/a ({label} made no progress)"),
        })
        .collect();
    let ratio = if ratios.is_empty() { "(baseline)".to_owned() } else { ratios.join("; ") };
    format!(
        "| {name} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {ratio} |",
        run.throughput(),
        run.percentile(0.50),
        run.percentile(0.90),
        run.percentile(0.99),
        run.percentile(1.0),
        run.errors_text(),
    )
}

/// The report's head: the date and the machine.
fn machine(load: Load) -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_owned();
    let meminfo = read("/proc/meminfo");
    let memory = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map_or("unknown".to_owned(), |k| format!("{:.1} GiB", k / 1024.0 / 1024.0));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut text = String::from("# Benchmarks\n\n");
    let _ = writeln!(text, "Written by `loadgen report` on {} (UTC).\n", chrono::Utc::now().format("%Y-%m-%d %H:%M"));
    let _ = writeln!(
        text,
        "- Machine: {cores} cores ({cpu}), {memory}, Linux {}",
        read("/proc/sys/kernel/osrelease").trim()
    );
    let _ = writeln!(
        text,
        "- Load: {} calls in flight, {} s per workload, release build, every service a process of its own, the load generator on the same machine",
        load.concurrency, load.seconds
    );
    text
}

const NOTES: &str = "
## Reading the figures

- ops/s counts successful operations; a (d) operation is a reservation and its fulfillment order.
- The minimal transaction is the least a reservation needs, measured first, before the services
  start: `BEGIN; UPDATE bench_stock SET reserved = reserved + 1 WHERE id = $1 AND on_hand - reserved
  >= 1; INSERT INTO bench_hold (stock_id, quantity) VALUES ($1, 1); COMMIT;`, spread over 10,000
  rows or all on one, sent by the load generator with a connection per worker (sqlx prepares each
  statement once per connection), and on PostgreSQL by `pgbench -M prepared` too when it is
  installed. On SQLite it runs through one writer at the suite's settings (WAL, `synchronous=NORMAL`),
  and again with `synchronous=full`. (a) and (b) are compared with it first: the goal.
- The services' SQL baselines send the statements of a reservation's three steps straight to the
  same databases, as the services send them (the pending reservation, one statement; the hold, a
  transaction; the reservation made active, one statement), with the same concurrency: what the
  suite would do with no gRPC, no service code and no batching. They are the second reference of
  (a) and (b).
- (a) and (b) run again through a Reservation service started with `RESERVATION_WRITE_BATCH_MAX=1`,
  which commits each of its writes alone (the pending reservation, the reservation made active),
  beside the same Inventory: what the Reservation service's group commit buys.
- On PostgreSQL, (a) and (b) run again over two replicas each of the Inventory and the Reservation
  service on the same databases, each Reservation replica calling its own Inventory replica, with
  the workers spread over both; the ratio is to one replica.
- The serializable PostgreSQL section is the same run with every database (the suite's and the minimal
  transaction's) at `default_transaction_isolation = serializable`, as CockroachDB and YugabyteDB
  run. Lost races (40001, 40P01) are retried inside the services; each section counts them from the
  services' `db_transaction_retries_total`.
- The capacity table divides a second of one core by each process's CPU per reservation in (a):
  how many reservations per second a core given to that process would serve if nothing else held
  it back, and, for all processes together, what each core of a machine running everything serves.
- The open-loop rows start (a)'s calls on a fixed schedule whatever the answers, at half and at
  three times the rate (a) reached, over eight connections; latency counts from each call's
  scheduled start, so a queue shows in it. At three times the peak the service should refuse what
  it cannot take at once (RESOURCE_EXHAUSTED with a RetryInfo) and keep its goodput.
- (f) places holds at the Inventory directly, all on one item, so the hold's transaction is the
  whole cost. It runs twice: with hold batching (the default) and with `INVENTORY_HOLD_BATCH_MAX=1`
  (the same Inventory, one transaction per hold).
- The last (f) row places the same holds once the Inventory has a thousand more warehouses that
  ship only to Germany (the holds ship to the United States): a hold reads and locks only the
  warehouses that ship to its country, so its cost should not change.
- CPU per operation is each process's user and system time from `/proc/<pid>/stat` over the run,
  divided by the operations it completed: every service process, PostgreSQL (all its processes) and
  the load generator (which holds SQLite during the minimal transaction and the services' SQL).
  A dash is a process the run did not involve.
- The hostile section sends each worst request shape, filled to the message limit, to a fresh
  process of its service; its time excludes building the request, and the peak memory (VmHWM) is
  read after a normal request of the same RPC and again after the hostile one.
- The bare tonic baseline is a tonic server with only `grpc.health.v1` on the same machine, in the
  load generator's own process: the cost of a gRPC call and nothing else. (c), (d) and (e) are
  compared with it.
- SQLite runs with one writer at a time per service (WAL, synchronous=NORMAL unless a row says
  otherwise); PostgreSQL with its defaults (fsync on, synchronous_commit on, TLS on loopback as
  sqlx's and libpq's `sslmode=prefer` choose it, for the services and the baselines alike).
";

/// The line below which a report keeps what people wrote.
const BY_HAND: &str = "<!-- Written by hand: `loadgen report` keeps everything below this line. -->";

/// The part of an earlier report at and below [`BY_HAND`], or nothing.
fn kept_by_hand(previous: &str) -> String {
    previous.find(BY_HAND).map_or_else(String::new, |start| format!("\n{}", &previous[start..]))
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_written_by_hand_is_kept_and_the_figures_are_not() {
        let previous = format!("# Benchmarks\n\n| old figures |\n\n{BY_HAND}\n\n## The profile\n\nmalloc\n");
        assert_eq!(kept_by_hand(&previous), format!("\n{BY_HAND}\n\n## The profile\n\nmalloc\n"));
        assert_eq!(kept_by_hand("# Benchmarks\n\n| old figures |\n"), "");
    }
}
