//! Fuzzing of every RPC (issue 9): arbitrary bytes and arbitrary well-formed requests, generated
//! from the descriptor set, go to every method of every service. No input may be answered INTERNAL
//! or UNKNOWN, every answer must decode, the services must stay up, and a rejected request must leave
//! the suite's observable state as it was.
//!
//! Services are found in the descriptor set and their hosts by health check, so a new RPC or
//! service is fuzzed without a change here. Well-formed requests are built from the message
//! descriptors, half of them plausible (valid-looking values and the ids of records the test
//! creates) so that they reach the checks behind the first ones. "Nothing written" is checked
//! against snapshots of everything a client can read (every page of every List RPC, levels, stock
//! ledgers, holds, the consistency report), taken between batches of calls: a batch whose calls were
//! all rejected must leave the snapshot as it was. Writes no client can read (an idempotency key
//! remembered, say) are out of its sight.
//!
//! `FUZZ_CASES` sets the cases per method and kind (bytes, messages); `FUZZ_SEED` replays a run
//! (`random` draws one).

mod ledger;
mod requests;
mod suite;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestError, TestRunner};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, ServiceDescriptor};

use crate::ledger::{Failure, Ledger};
use crate::requests::{Shape, field_names, hex, message_strategy, mutated, render};
use crate::suite::Suite;

/// Cases per method and kind unless `FUZZ_CASES` says otherwise: the binary stays well under a
/// minute in a debug build on two cores.
const DEFAULT_CASES: u32 = 32;
/// The seed unless `FUZZ_SEED` says otherwise.
const DEFAULT_SEED: u64 = 20261123;
/// The longest a call may take before it counts as a hang.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How deep generated messages nest; deeper message fields are left empty.
const MAX_DEPTH: usize = 4;
/// The most calls between two snapshots of the state; fewer after a batch that changed it.
const MAX_BATCH: usize = 64;
/// The most hold ids whose holds each snapshot reads (holds have no List RPC).
const MAX_TRACKED_HOLDS: usize = 64;
/// How many more runs of a method and kind follow one that found a failure.
const RUNS_AFTER_A_FAILURE: u32 = 4;
/// The services that must be in the contracts; any other `fulfillment.*` service is fuzzed too,
/// on whichever started server serves it.
const SERVICES: [&str; 3] = [
    "fulfillment.catalog.v1.CatalogService",
    "fulfillment.inventory.v1.InventoryService",
    "fulfillment.reservation.v1.ReservationService",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_survives_arbitrary_input() {
    let started = Instant::now();
    let cases = std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_CASES);
    // A fixed seed by default, so that CI is repeatable; `FUZZ_SEED=random` explores.
    let seed = match std::env::var("FUZZ_SEED").ok().as_deref() {
        Some("random") => SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or_default(),
        Some(value) => value.parse().unwrap_or(DEFAULT_SEED),
        None => DEFAULT_SEED,
    };
    eprintln!("fuzz: seed {seed} (FUZZ_SEED={seed} replays this run), {cases} cases per method and kind");

    let pool = DescriptorPool::decode(fulfillment_proto::FILE_DESCRIPTOR_SET).expect("the descriptor set decodes");
    let services: Vec<ServiceDescriptor> =
        pool.services().filter(|s| s.package_name().starts_with("fulfillment.")).collect();
    for expected in SERVICES {
        assert!(services.iter().any(|s| s.full_name() == expected), "{expected} is missing from the contracts");
    }
    let mut suite = Suite::start().await;
    let mut ledger = Ledger::default();
    let mut targets = Vec::new();
    for service in &services {
        match suite.host_of(service).await {
            Some(host) => targets.extend(service.methods().map(|method| Target::new(&method, host))),
            None => ledger.findings.push(format!(
                "{}: no started server serves it, so its {} methods are not exercised",
                service.full_name(),
                service.methods().len()
            )),
        }
    }
    suite.listings = targets.iter().filter(|t| t.method.name().starts_with("List")).cloned().collect();

    let ledger = RefCell::new(ledger);
    tokio::task::block_in_place(|| {
        for (round, target) in targets.iter().enumerate() {
            fuzz_method(&suite, &ledger, target, round, cases, seed);
        }
    });

    let mut ledger = ledger.into_inner();
    for service in &services {
        for method in service.methods() {
            let name = format!("{}/{}", service.name(), method.name());
            let stats = ledger.stats.get(&name).cloned().unwrap_or_default();
            eprintln!("fuzz: {name}: {stats}");
            if stats.sent == 0 {
                ledger.findings.push(format!("{name}: never exercised"));
            } else if stats.rejected.get("Unauthenticated") == Some(&stats.sent) {
                ledger.findings.push(format!("{name}: every request was refused as unauthenticated (see `authorize`)"));
            }
        }
    }
    for failure in std::mem::take(&mut ledger.known).into_values() {
        let methods: Vec<String> = failure.methods.into_iter().collect();
        ledger.findings.push(format!(
            "{}\n  minimal input, sent to {}: {}\n  met in {} methods: {}",
            failure.reason,
            failure.first,
            failure.minimal,
            methods.len(),
            methods.join(", ")
        ));
    }
    suite.check_still_serving(&mut ledger.findings).await;
    let sent: u32 = ledger.stats.values().map(|s| s.sent).sum();
    let methods: usize = services.iter().map(|s| s.methods().len()).sum();
    let (snapshots, snapshot_time) = suite.snapshots.get();
    eprintln!(
        "fuzz: {sent} requests over {methods} methods in {:.1?}; {} rejections checked against a snapshot, {} in \
         batches that also changed the state; {snapshots} snapshots took {snapshot_time:.1?}",
        started.elapsed(),
        ledger.checked,
        ledger.unchecked,
    );
    assert!(
        ledger.findings.is_empty(),
        "{} findings (FUZZ_SEED={seed}):\n\n{}",
        ledger.findings.len(),
        ledger.findings.join("\n\n")
    );
}

/// Sends `cases` arbitrary byte strings and `cases` well-formed requests to one method, each kind
/// from its own proptest run, and settles the state checks at the end.
fn fuzz_method(suite: &Suite, ledger: &RefCell<Ledger>, target: &Target, round: usize, cases: u32, seed: u64) {
    assert!(
        !target.method.is_client_streaming() && !target.method.is_server_streaming(),
        "{}: streaming RPCs need a streaming call here",
        target.name
    );
    let runtime = tokio::runtime::Handle::current();
    let fixtures = runtime.block_on(suite.ensure_fixtures(round));
    {
        let mut ledger = ledger.borrow_mut();
        ledger.holds = BTreeSet::from([fixtures.hold.clone()]);
        ledger.baseline = runtime.block_on(suite.snapshot(&ledger.holds));
        ledger.pending.clear();
    }
    let names = field_names(&target.method.input());
    let shape = |plausible| Shape { plausible, field_names: &names, fixtures: &fixtures };
    let arbitrary = message_strategy(target.method.input(), 0, shape(false));
    let plausible = message_strategy(target.method.input(), 0, shape(true));
    let message = prop_oneof![arbitrary, plausible].boxed();
    let bytes = prop_oneof![proptest::collection::vec(any::<u8>(), 0..64), mutated(message.clone()), Just(Vec::new()),]
        .prop_map(Body::Bytes)
        .boxed();
    let kinds = [("bytes", bytes), ("messages", message.prop_map(Body::Message).boxed())];
    for (kind, strategy) in kinds {
        // Bytes and messages write at different rates: each kind starts with small batches.
        {
            let mut ledger = ledger.borrow_mut();
            runtime.block_on(ledger.settle(suite));
            ledger.batch = 4;
            ledger.settled = (0, 0);
        }
        // A failure ends a run; the next run (another seed) goes on past the failures already
        // found, so that one broken path does not hide the rest of the method.
        for attempt in 0..=RUNS_AFTER_A_FAILURE {
            let config = Config {
                cases,
                failure_persistence: None,
                max_shrink_iters: 128,
                rng_seed: RngSeed::Fixed(seed ^ fnv1a(&format!("{}/{kind}/{attempt}", target.name))),
                ..Config::default()
            };
            let outcome = TestRunner::new(config).run(&strategy, |body| {
                let mut ledger = ledger.borrow_mut();
                runtime.block_on(ledger.exercise(suite, target, body))
            });
            let mut ledger = ledger.borrow_mut();
            match outcome {
                Ok(()) => break,
                Err(TestError::Fail(reason, minimal)) => {
                    let signature = ledger.last_failure.take().unwrap_or_else(|| reason.to_string());
                    let failure = ledger.known.entry(signature).or_insert_with(|| Failure {
                        reason: reason.to_string(),
                        minimal: format!("{minimal:?}"),
                        first: format!("{} ({kind})", target.name),
                        methods: BTreeSet::new(),
                    });
                    failure.methods.insert(target.name.clone());
                }
                Err(TestError::Abort(reason)) => {
                    ledger.findings.push(format!("{} ({kind}): aborted: {reason}", target.name));
                    break;
                }
            }
        }
    }
    runtime.block_on(ledger.borrow_mut().settle(suite));
}

/// One method under test, and which of the suite's servers serves it.
#[derive(Clone)]
struct Target {
    path: String,
    name: String,
    method: MethodDescriptor,
    host: usize,
}

impl Target {
    fn new(method: &MethodDescriptor, host: usize) -> Self {
        let service = method.parent_service();
        Self {
            path: format!("/{}/{}", service.full_name(), method.name()),
            name: format!("{}/{}", service.name(), method.name()),
            method: method.clone(),
            host,
        }
    }
}

/// A request body: bytes as they come, or a well-formed message of the method's input type.
#[derive(Clone)]
enum Body {
    Bytes(Vec<u8>),
    Message(DynamicMessage),
}

impl Body {
    fn encode(&self) -> Vec<u8> {
        match self {
            Body::Bytes(bytes) => bytes.clone(),
            Body::Message(message) => message.encode_to_vec(),
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.encode();
        if let Body::Message(message) = self {
            write!(f, "{} ", render(message))?;
        }
        write!(f, "({} bytes: {})", bytes.len(), hex(&bytes))
    }
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}
