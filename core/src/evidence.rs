//! Equivocation evidence on the ledger (ADR 0009): two conflicting messages signed by one
//! validator for one height, round and step, as consensus detects them.
//!
//! A block carries the evidence its proposer holds in its `evidence` section. Executing the
//! block checks each item on its own terms — both messages validly signed by a validator of
//! the set in force at the equivocation's height, for one slot, with different values — and
//! writes one [`EvidenceRecord`] per item into the state, under
//! [`RecordKey::Evidence`](crate::records::RecordKey::Evidence) keyed by (validator, height,
//! round, kind). The header does not change: its `state_root` commits to the records, so a
//! block whose evidence section differs from the one its validators executed fails
//! re-execution, and every record has a sparse-Merkle proof against any later header.

use serde::{Deserialize, Serialize};

use hutong_consensus::{EvidenceError, ValidatorSet, VoteType, verify_evidence};

use crate::block::Ed25519Verifier;
use crate::crypto::PublicKey;
use crate::records::Height;
use crate::rules::StateError;

/// Evidence as consensus produces it, over block hashes.
pub type Evidence = hutong_consensus::Evidence<[u8; 32]>;

/// Which message a validator signed twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EquivocationKind {
    Proposal,
    Prevote,
    Precommit,
}

impl EquivocationKind {
    /// Its name in the API and the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            EquivocationKind::Proposal => "proposal",
            EquivocationKind::Prevote => "prevote",
            EquivocationKind::Precommit => "precommit",
        }
    }

    /// The kind named `name` (`proposal`, `prevote`, `precommit`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "proposal" => Some(EquivocationKind::Proposal),
            "prevote" => Some(EquivocationKind::Prevote),
            "precommit" => Some(EquivocationKind::Precommit),
            _ => None,
        }
    }
}

/// Where an equivocation is recorded: one record per validator and slot, whatever the number
/// of conflicting messages seen for it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceKey {
    pub validator: PublicKey,
    pub height: Height,
    pub round: u32,
    pub kind: EquivocationKind,
}

impl EvidenceKey {
    /// The slot `evidence` is about (no check of its content).
    pub fn of(evidence: &Evidence) -> Self {
        match evidence {
            Evidence::ConflictingVotes { first, .. } => EvidenceKey {
                validator: PublicKey(first.vote.validator.0),
                height: first.vote.height,
                round: first.vote.round,
                kind: match first.vote.vote_type {
                    VoteType::Prevote => EquivocationKind::Prevote,
                    VoteType::Precommit => EquivocationKind::Precommit,
                },
            },
            Evidence::ConflictingProposals { first, .. } => EvidenceKey {
                validator: PublicKey(first.proposal.proposer.0),
                height: first.proposal.height,
                round: first.proposal.round,
                kind: EquivocationKind::Proposal,
            },
        }
    }
}

/// An equivocation recorded on the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRecord {
    pub key: EvidenceKey,
    /// The two signed messages, as the block carried them.
    pub evidence: Evidence,
    /// The height of the block that recorded it.
    pub recorded_at: Height,
}

/// Why a block's evidence item is refused. A block in verify mode with such an item is
/// invalid; a proposer building a block leaves the item out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceRuleError {
    #[error("the block carries {count} evidence items; the limit is {limit}")]
    TooMany { count: usize, limit: usize },
    #[error(
        "evidence of height {height} is not older than the block recording it (height {block_height})"
    )]
    NotYetCommitted {
        height: Height,
        block_height: Height,
    },
    #[error(
        "evidence of height {height} is too old for block {block_height}: at most {max_age} blocks back"
    )]
    TooOld {
        height: Height,
        block_height: Height,
        max_age: u64,
    },
    #[error(
        "the validator set of height {height} is no longer known to the state (the validators changed since); \
         evidence of that height cannot be checked"
    )]
    ValidatorSetUnavailable { height: Height },
    #[error("the evidence does not prove an equivocation: {0}")]
    Invalid(#[from] EvidenceError),
    #[error(
        "an equivocation of {validator} at height {height}, round {round} ({kind}) is already recorded"
    )]
    AlreadyRecorded {
        validator: PublicKey,
        height: Height,
        round: u32,
        kind: &'static str,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

impl EvidenceRuleError {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            EvidenceRuleError::TooMany { .. } => "evidence_too_many",
            EvidenceRuleError::NotYetCommitted { .. } => "evidence_not_yet_committed",
            EvidenceRuleError::TooOld { .. } => "evidence_too_old",
            EvidenceRuleError::ValidatorSetUnavailable { .. } => {
                "evidence_validator_set_unavailable"
            }
            EvidenceRuleError::Invalid(_) => "evidence_invalid",
            EvidenceRuleError::AlreadyRecorded { .. } => "evidence_already_recorded",
            EvidenceRuleError::State(_) => "state",
        }
    }
}

/// Checks the age of `evidence` and its signatures against `set`, the validator set of its
/// height, for block `block_height` on `chain_id`. Whether it is already recorded is the
/// caller's to check (it needs the state). Returns its key.
pub fn check_evidence(
    evidence: &Evidence,
    chain_id: &str,
    block_height: Height,
    set: &ValidatorSet,
) -> Result<EvidenceKey, EvidenceRuleError> {
    let key = EvidenceKey::of(evidence);
    check_age(key.height, block_height)?;
    verify_evidence(evidence, set, chain_id, &Ed25519Verifier)?;
    Ok(key)
}

/// Evidence may be recorded from the block after its height up to
/// [`crate::limits::EVIDENCE_AGE_BLOCKS_MAX`] blocks later.
pub fn check_age(height: Height, block_height: Height) -> Result<(), EvidenceRuleError> {
    if height >= block_height {
        return Err(EvidenceRuleError::NotYetCommitted {
            height,
            block_height,
        });
    }
    if block_height - height > crate::limits::EVIDENCE_AGE_BLOCKS_MAX {
        return Err(EvidenceRuleError::TooOld {
            height,
            block_height,
            max_age: crate::limits::EVIDENCE_AGE_BLOCKS_MAX,
        });
    }
    Ok(())
}
