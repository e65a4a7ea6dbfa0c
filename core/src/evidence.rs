//! Equivocation evidence on the ledger (ADR 0009): two conflicting messages signed by one
//! validator for one height, round and step, as consensus detects them, and the record the
//! ledger keeps of it.
//!
//! A block carries the evidence its proposer holds in its `evidence` section. Executing the
//! block checks each item on its own terms — both messages validly signed by a validator of
//! the set in force at the equivocation's height, for one slot, with different values — and
//! writes one [`EvidenceRecord`] per item into the state, under the record key
//! `RecordKey::Evidence`, keyed by (validator, height, round, kind). The header does not
//! change: its `state_root` commits to the records, so a block whose evidence section differs
//! from the one its validators executed fails re-execution, and every record has a
//! sparse-Merkle proof against any later header.
//!
//! This module holds the types alone, below `records`, which stores them: it needs nothing of
//! the ledger but public keys. The checks (age, signatures against the validator set, one
//! record per slot) are rules: `rules::apply_evidence` and `rules::check_evidence`.

use serde::{Deserialize, Serialize};

use hutong_consensus::{Height, VoteType};

use crate::crypto::PublicKey;

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
