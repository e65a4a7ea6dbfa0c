//! A licence's history document (`GET /v1/licences/{type}/{number}/history`), checked offline.
//!
//! The document carries the licence record with its state proof, one step per entry of the
//! record's history with the transaction that recorded it and its inclusion in the log, and
//! the signed checkpoint both are proved against. Every field of a step other than the
//! transaction and its proof is derived from the proved record: the verifier recomputes each
//! one (the labels `event` and `event_zh` from the event's kind) and refuses a document whose
//! step says something else, so that a node cannot relabel a revocation (吊销) as anything
//! else while every proof still holds (docs/proofs.md section 8).

use serde::{Deserialize, Serialize};

use hutong_core::genesis::Genesis;
use hutong_core::hash::Hash32;
use hutong_core::log::{InclusionProof, LogHasher};
use hutong_core::records::{
    AuthorityId, EventCorrection, Height, Licence, LicenceEvent, Record, RecordKey, TimeMs,
};
use hutong_core::smt::SmtProof;
use hutong_core::tx::Transaction;

use crate::{
    BundleError, Checkpoint, RecordProof, VerifiedCheckpoint, VerifyOptions,
    verify_checkpoint_from, verify_record_proof,
};

/// The `format` of a licence's history document.
pub const HISTORY_FORMAT: &str = "hutong-history/v1";

/// A licence's full history with its proofs: what the history route answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryDocument {
    /// [`HISTORY_FORMAT`].
    pub format: String,
    pub licence: Licence,
    /// One per entry of `licence.events`, in the same order.
    pub steps: Vec<HistoryStep>,
    /// The licence record's sparse-Merkle proof against the checkpoint's state root.
    pub state_proof: SmtProof,
    pub checkpoint: Checkpoint,
}

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

/// What a verified history establishes: this licence record, with every entry of its history
/// recorded by a transaction in the log, as of the checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedHistory {
    pub checkpoint: VerifiedCheckpoint,
    pub licence: Licence,
}

impl HistoryStep {
    /// The step a node must write for `event`, recorded by `transaction` and included in the
    /// log by `inclusion`: the one definition of the derived fields, which the verifier
    /// compares every step with.
    pub fn of(
        suite: hutong_core::suite::Suite,
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

/// Checks a history document against the genesis file (and the verifier's trusted
/// checkpoint, if it holds one): the checkpoint, the licence record under its state root, one
/// step per entry of the record's history, each step's fields and labels as the entry gives
/// them, and each step's transaction, whose id the entry names, in the checkpoint's log.
pub fn verify_history(
    document: &HistoryDocument,
    genesis: &Genesis,
    options: &VerifyOptions,
) -> Result<VerifiedHistory, BundleError> {
    if document.format != HISTORY_FORMAT {
        return Err(BundleError::UnsupportedFormat {
            found: document.format.clone(),
        });
    }
    let checkpoint =
        verify_checkpoint_from(&document.checkpoint, genesis, options.trusted.as_ref())?;
    let suite = genesis.suite;
    let licence = &document.licence;
    verify_record_proof(
        suite,
        checkpoint.state_root,
        &RecordProof {
            key: RecordKey::Licence(licence.type_code.clone(), licence.number.clone()),
            record: Some(Record::Licence(licence.clone())),
            proof: document.state_proof.clone(),
        },
    )?;
    if document.steps.len() != licence.events.len() {
        return Err(BundleError::HistoryStepCount {
            steps: document.steps.len(),
            events: licence.events.len(),
        });
    }
    for (index, (step, event)) in document.steps.iter().zip(&licence.events).enumerate() {
        check_step(suite, index, step, event, &checkpoint)?;
    }
    Ok(VerifiedHistory {
        checkpoint,
        licence: licence.clone(),
    })
}

/// Checks one step against the proved entry it stands for and the checkpoint's log.
fn check_step(
    suite: hutong_core::suite::Suite,
    index: usize,
    step: &HistoryStep,
    event: &LicenceEvent,
    checkpoint: &VerifiedCheckpoint,
) -> Result<(), BundleError> {
    let label = |field: &'static str, found: &str, expected: &str| {
        if found == expected {
            Ok(())
        } else {
            Err(BundleError::HistoryLabelMismatch {
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
        return Err(BundleError::HistoryStepMismatch { step: index, field });
    }
    if step.inclusion.tree_size != checkpoint.log_size {
        return Err(BundleError::InclusionMismatch {
            expected: step.inclusion.leaf_index,
            found: step.inclusion.leaf_index,
            expected_size: checkpoint.log_size,
            found_size: step.inclusion.tree_size,
        });
    }
    step.inclusion
        .verify(&suite, &leaf, &checkpoint.log_root)
        .map_err(BundleError::Inclusion)
}
