//! What was sent and what came of it: per-method stats, the answers no input may get, and the
//! checks that a batch of rejected calls left the suite's state as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use proptest::test_runner::TestCaseError;
use prost_reflect::DynamicMessage;
use tonic::Code;

use crate::requests::strings_named;
use crate::suite::{Snapshot, Suite, difference};
use crate::{Body, MAX_BATCH, MAX_TRACKED_HOLDS, Target};

/// What was sent and what came of it: the answers, the failures, and the state checks.
#[derive(Default)]
pub(crate) struct Ledger {
    /// The state after the last settled batch.
    pub(crate) baseline: Snapshot,
    /// The calls since then.
    pub(crate) pending: Vec<Sent>,
    /// Calls per batch for the method being fuzzed: one after a batch that changed the state, then
    /// doubling while it stays as it was, up to about half the calls per change seen so far, so
    /// that few rejections share a batch with a write.
    pub(crate) batch: usize,
    /// The method's calls settled so far, and the batches among them that changed the state.
    pub(crate) settled: (usize, usize),
    /// The round's hold and the hold ids named in the method's requests, read in every snapshot.
    pub(crate) holds: BTreeSet<String>,
    pub(crate) stats: BTreeMap<String, Stats>,
    pub(crate) findings: Vec<String>,
    /// Rejections in batches whose state was compared and found unchanged.
    pub(crate) checked: u32,
    /// Rejections in batches where some call was accepted and the state changed: not attributable.
    pub(crate) unchecked: u32,
    /// Failures found, by signature (see [`Ledger::exercise`]): met again, they no longer fail a
    /// case, so that one cause is shrunk once and the runs go on to find others.
    pub(crate) known: BTreeMap<String, Failure>,
    /// The signature of the failure the last failing case met.
    pub(crate) last_failure: Option<String>,
}

/// An answer no input may get.
pub(crate) struct Failure {
    pub(crate) reason: String,
    /// The smallest input found that gets it, and where it was sent.
    pub(crate) minimal: String,
    pub(crate) first: String,
    /// Every method that gave it.
    pub(crate) methods: BTreeSet<String>,
}

pub(crate) struct Sent {
    target: Target,
    body: Body,
    /// The refusal's code and message, or `None` when the call was accepted.
    rejected: Option<(Code, String)>,
}

#[derive(Clone, Default)]
pub(crate) struct Stats {
    pub(crate) sent: u32,
    accepted: u32,
    pub(crate) rejected: BTreeMap<String, u32>,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} sent, {} accepted", self.sent, self.accepted)?;
        for (code, count) in &self.rejected {
            write!(f, ", {count} {code}")?;
        }
        Ok(())
    }
}

impl Ledger {
    /// Sends one case, records it, and fails the case on an answer no input may get.
    pub(crate) async fn exercise(&mut self, suite: &Suite, target: &Target, body: Body) -> Result<(), TestCaseError> {
        if self.pending.len() >= self.batch.max(1) {
            self.settle(suite).await;
        }
        self.track_holds(suite, target, &body).await;
        let answer = suite.call(target, body.encode()).await;
        let stats = self.stats.entry(target.name.clone()).or_default();
        stats.sent += 1;
        let rejected = match &answer {
            Ok(_) => {
                stats.accepted += 1;
                None
            }
            Err(status) => {
                *stats.rejected.entry(format!("{:?}", status.code())).or_default() += 1;
                Some((status.code(), status.message().to_owned()))
            }
        };
        self.pending.push(Sent { target: target.clone(), body, rejected });
        let failure = match answer {
            Ok(bytes) => match DynamicMessage::decode(target.method.output(), bytes.as_slice()) {
                Ok(_) => return Ok(()),
                Err(error) => ("an answer that does not decode".to_owned(), error.to_string()),
            },
            Err(status) => match status.code() {
                Code::Internal | Code::Unknown | Code::Unimplemented | Code::DataLoss | Code::DeadlineExceeded => {
                    (format!("{:?}", status.code()), status.message().to_owned())
                }
                _ => return Ok(()),
            },
        };
        // The message up to its first ':' tells one cause from another ("failed to decode Protobuf
        // message: ..." is one cause, whatever the bytes). A body that does not decode fails
        // before any handler runs, so that cause is the same in every method; any other is taken
        // to be the method's own.
        let cause = failure.1.split(':').next().unwrap_or_default().chars().take(80).collect::<String>();
        let scope = if cause.starts_with("failed to decode") { "every method" } else { target.name.as_str() };
        let signature = format!("{scope}: {} {cause}", failure.0);
        if let Some(known) = self.known.get_mut(&signature) {
            known.methods.insert(target.name.clone());
            return Ok(());
        }
        self.last_failure = Some(signature);
        Err(TestCaseError::fail(format!("answered {}: {}", failure.0, failure.1)))
    }

    /// Compares the state after the pending calls with the baseline: unchanged state checks every
    /// rejection among them; a change with no call accepted is a finding, which replaying the calls
    /// one by one narrows down.
    pub(crate) async fn settle(&mut self, suite: &Suite) {
        if self.pending.is_empty() {
            return;
        }
        let mut after = suite.snapshot(&self.holds).await;
        let rejected = self.pending.iter().filter(|s| s.rejected.is_some()).count() as u32;
        let (calls, changes) = self.settled;
        self.settled = (calls + self.pending.len(), changes + usize::from(after != self.baseline));
        if after == self.baseline {
            self.checked += rejected;
            let limit = if changes == 0 { MAX_BATCH } else { calls / (2 * changes) };
            self.batch = (self.batch * 2).min(limit).clamp(1, MAX_BATCH);
        } else if self.pending.iter().any(|s| s.rejected.is_none()) {
            self.unchecked += rejected;
            self.batch = 1;
        } else {
            let mut finding = format!(
                "the state changed over {} calls that were all rejected:\n{}\n  the calls:",
                self.pending.len(),
                difference(&self.baseline, &after)
            );
            for sent in &self.pending {
                let answer = match &sent.rejected {
                    Some((code, message)) => format!("{code:?} \"{message}\""),
                    None => "accepted".to_owned(),
                };
                finding.push_str(&format!("\n    {} {answer}: {:?}", sent.target.name, sent.body));
            }
            finding.push_str(&self.replay(suite).await);
            self.findings.push(finding);
            self.batch = 1;
            after = suite.snapshot(&self.holds).await;
        }
        self.pending.clear();
        self.baseline = after;
    }

    /// Sends each pending rejected call again between two snapshots; answers the ones that are
    /// rejected again and still change the state.
    async fn replay(&self, suite: &Suite) -> String {
        let mut found = String::new();
        for sent in self.pending.iter().filter(|s| s.rejected.is_some()) {
            let before = suite.snapshot(&self.holds).await;
            let answer = suite.call(&sent.target, sent.body.encode()).await;
            let after = suite.snapshot(&self.holds).await;
            if let (Err(status), false) = (&answer, before == after) {
                found.push_str(&format!(
                    "\n  replayed alone, {} {:?} still writes: {:?}\n{}",
                    sent.target.name,
                    status.code(),
                    sent.body,
                    difference(&before, &after)
                ));
            }
        }
        if found.is_empty() { "\n  (no single call reproduces it when replayed alone)".to_owned() } else { found }
    }

    /// Remembers the hold ids a request names, so that snapshots read those holds, and adds the
    /// holds as they are before the request to the baseline.
    async fn track_holds(&mut self, suite: &Suite, target: &Target, body: &Body) {
        let message = match body {
            Body::Message(message) => Some(message.clone()),
            Body::Bytes(bytes) => DynamicMessage::decode(target.method.input(), bytes.as_slice()).ok(),
        };
        let mut ids = Vec::new();
        if let Some(message) = message {
            strings_named(&message, "hold_id", &mut ids);
        }
        for id in ids {
            if self.holds.len() < MAX_TRACKED_HOLDS && id.len() <= 255 && !self.holds.contains(&id) {
                self.baseline.extend(suite.hold(&id).await);
                self.holds.insert(id);
            }
        }
    }
}
