//! The steps of a licence's history document (`GET /v1/licences/{type}/{number}/history`),
//! checked against the proved licence record.
//!
//! The document ([`crate::HistoryDocument`]) carries the licence record with its state proof,
//! one step per entry of the record's history with the transaction that recorded it and its
//! inclusion in the log, and the signed checkpoint both are proved against. Every field of a
//! step other than the transaction and its proof is derived from the proved record: the
//! verifier recomputes each one (the labels `event` and `event_zh` from the event's kind) and
//! refuses a step that says something else, so that a node cannot relabel a revocation (吊销)
//! while every proof still holds (docs/proofs.md section 8). This module needs the core alone;
//! the crate root verifies the checkpoint and the record, then calls [`check_steps`].

use serde::{Deserialize, Serialize};

use hutong_core::hash::Hash32;
use hutong_core::log::{InclusionProof, LogError, LogHasher};
use hutong_core::records::{AuthorityId, EventCorrection, Height, Licence, LicenceEvent, TimeMs};
use hutong_core::suite::Suite;
use hutong_core::tx::Transaction;

/// The `format` of a licence's history document.
pub const HISTORY_FORMAT: &str = "hutong-history/v1";

/// One entry of the history with the transaction that recorded it. Every field but
/// `transaction` and `inclusion` repeats or labels the proved record's entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryStep {
    /// The entry's kind in English ([`hutong_core::records::LicenceEventKind::name`]).
    pub event: String,
    /// The same in Chinese ([`hutong_core::records::LicenceEventKind::name_zh`]).
    pub event_zh: String,
    pub effective_at: TimeMs,
    pub by: AuthorityId,
    pub reason: String,
    pub correction: Option<EventCorrection>,
    pub height: Height,
    pub transaction_id: Hash32,
    pub transaction: Transaction,
    /// The transaction's log leaf hash.
    pub leaf_hash: Hash32,
    /// The leaf's inclusion in the log of the checkpoint's `log_size` leaves.
    pub inclusion: InclusionProof,
}

impl HistoryStep {
    /// The step a node writes for `event`, recorded by `transaction` and included in the log
    /// by `inclusion`: the one definition of the derived fields, which [`check_steps`]
    /// compares every step with.
    pub fn of(
        suite: Suite,
        event: &LicenceEvent,
        transaction: Transaction,
        inclusion: InclusionProof,
    ) -> HistoryStep {
        HistoryStep {
            event: event.kind.name().to_owned(),
            event_zh: event.kind.name_zh().to_owned(),
            effective_at: event.effective_at,
            by: event.by.clone(),
            reason: event.reason.clone(),
            correction: event.correction.clone(),
            height: event.height,
            transaction_id: event.tx,
            leaf_hash: suite.leaf_hash(&transaction.to_bytes()),
            transaction,
            inclusion,
        }
    }
}

/// Why the steps of a history do not stand for the proved record. [`HistoryError::code`]
/// gives the stable name a verifier reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error("the history has {steps} steps, but the proved licence records {events} events")]
    StepCount { steps: usize, events: usize },
    #[error(
        "step {step} of the history is labelled {field} {found:?}, but the proved event is {expected:?}"
    )]
    LabelMismatch {
        step: usize,
        field: &'static str,
        found: String,
        expected: String,
    },
    #[error("step {step} of the history gives a {field} other than the proved event's")]
    StepMismatch { step: usize, field: &'static str },
    #[error(
        "the inclusion proof of step {step} is for a log of {found_size} leaves; the checkpoint's has {expected_size}"
    )]
    InclusionMismatch {
        step: usize,
        expected_size: u64,
        found_size: u64,
    },
    #[error("the inclusion proof of step {step} does not verify: {error}")]
    Inclusion { step: usize, error: LogError },
}

impl HistoryError {
    /// A stable kebab-case name of what failed.
    pub fn code(&self) -> String {
        match self {
            HistoryError::StepCount { .. } => "history-step-count".into(),
            HistoryError::LabelMismatch { .. } => "history-label-mismatch".into(),
            HistoryError::StepMismatch { .. } => "history-step-mismatch".into(),
            HistoryError::InclusionMismatch { .. } => "inclusion-mismatch".into(),
            HistoryError::Inclusion { error, .. } => format!("inclusion/{}", error.code()),
        }
    }
}

/// Checks that `steps` stand for the events of `licence` (a record already proved against the
/// checkpoint's state root), one step per event in order, each with its fields and labels as
/// the event gives them, and each step's transaction, whose id the event names, in the log of
/// `log_size` leaves with root `log_root` (the verified checkpoint's).
pub fn check_steps(
    suite: Suite,
    steps: &[HistoryStep],
    licence: &Licence,
    log_size: u64,
    log_root: &Hash32,
) -> Result<(), HistoryError> {
    if steps.len() != licence.events.len() {
        return Err(HistoryError::StepCount {
            steps: steps.len(),
            events: licence.events.len(),
        });
    }
    for (index, (step, event)) in steps.iter().zip(&licence.events).enumerate() {
        check_step(suite, index, step, event, log_size, log_root)?;
    }
    Ok(())
}

/// Checks one step against the proved entry it stands for and the checkpoint's log.
fn check_step(
    suite: Suite,
    index: usize,
    step: &HistoryStep,
    event: &LicenceEvent,
    log_size: u64,
    log_root: &Hash32,
) -> Result<(), HistoryError> {
    let label = |field: &'static str, found: &str, expected: &str| {
        if found == expected {
            Ok(())
        } else {
            Err(HistoryError::LabelMismatch {
                step: index,
                field,
                found: found.to_owned(),
                expected: expected.to_owned(),
            })
        }
    };
    label("event", &step.event, event.kind.name())?;
    label("event_zh", &step.event_zh, event.kind.name_zh())?;
    let bytes = step.transaction.to_bytes();
    let transaction_id = hutong_core::tx::tx_id_of_bytes(suite, &bytes);
    let leaf = suite.leaf_hash(&bytes);
    let differs = [
        ("effective_at", step.effective_at != event.effective_at),
        ("by", step.by != event.by),
        ("reason", step.reason != event.reason),
        ("correction", step.correction != event.correction),
        ("height", step.height != event.height),
        ("transaction_id", step.transaction_id != event.tx),
        ("transaction", transaction_id != event.tx),
        ("leaf_hash", step.leaf_hash != leaf),
    ];
    if let Some((field, _)) = differs.iter().find(|(_, differs)| *differs) {
        return Err(HistoryError::StepMismatch { step: index, field });
    }
    if step.inclusion.tree_size != log_size {
        return Err(HistoryError::InclusionMismatch {
            step: index,
            expected_size: log_size,
            found_size: step.inclusion.tree_size,
        });
    }
    step.inclusion
        .verify(&suite, &leaf, log_root)
        .map_err(|error| HistoryError::Inclusion { step: index, error })
}
