//! Votes, proposals, their sign bytes, and evidence of equivocation.
//!
//! The sign bytes are the exact bytes a validator signs. They are documented byte by byte in
//! `docs/consensus.md`, because the ledger and light clients re-verify commit certificates
//! offline from them. They are domain-separated (a vote can never be read as a proposal, nor
//! a message of one chain as a message of another) and deterministic.

use crate::error::EvidenceError;
use crate::signing::SignatureVerifier;
use crate::types::{Height, Round, Signature, ValidatorId, VoteType};
use crate::validator_set::ValidatorSet;
use crate::value::ConsensusValue;

/// The domain tag that starts the sign bytes of every vote.
pub const VOTE_DOMAIN_TAG: &str = "hutong/consensus/vote/v1";

/// The domain tag that starts the sign bytes of every proposal.
pub const PROPOSAL_DOMAIN_TAG: &str = "hutong/consensus/proposal/v1";

fn push_tag(bytes: &mut Vec<u8>, tag: &str) {
    debug_assert!(
        tag.len() <= usize::from(u8::MAX),
        "domain tags are short constants"
    );
    bytes.push(tag.len() as u8);
    bytes.extend_from_slice(tag.as_bytes());
}

fn push_length_prefixed(bytes: &mut Vec<u8>, data: &[u8]) {
    // Lengths above u32::MAX cannot occur: chain ids and values are bounded far below it by
    // `limits`, and the state machine refuses longer ones before signing or verifying.
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.extend_from_slice(data);
}

/// The bytes a validator signs for a vote:
///
/// ```text
/// 0x18 "hutong/consensus/vote/v1"          tag length (24), then the tag
/// chain_id_length: u32 BE, chain_id        UTF-8
/// height: u64 BE
/// round: u32 BE
/// vote_type: u8                            0x01 prevote, 0x02 precommit
/// 0x00                                     for nil, or
/// 0x01 value_length: u32 BE, value         the value's canonical bytes
/// ```
///
/// The validator's id is not included: the signature binds it. So every precommit of one
/// commit certificate signs the same bytes.
pub fn vote_sign_bytes<V: ConsensusValue>(
    chain_id: &str,
    height: Height,
    round: Round,
    vote_type: VoteType,
    value: Option<&V>,
) -> Vec<u8> {
    let value_bytes = value.map(ConsensusValue::canonical_bytes);
    let mut bytes = Vec::with_capacity(
        1 + VOTE_DOMAIN_TAG.len()
            + 4
            + chain_id.len()
            + 8
            + 4
            + 1
            + 1
            + 4
            + value_bytes.as_ref().map_or(0, Vec::len),
    );
    push_tag(&mut bytes, VOTE_DOMAIN_TAG);
    push_length_prefixed(&mut bytes, chain_id.as_bytes());
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(&round.to_be_bytes());
    bytes.push(vote_type.sign_byte());
    match value_bytes {
        None => bytes.push(0x00),
        Some(value_bytes) => {
            bytes.push(0x01);
            push_length_prefixed(&mut bytes, &value_bytes);
        }
    }
    bytes
}

/// The bytes a proposer signs for a proposal:
///
/// ```text
/// 0x1c "hutong/consensus/proposal/v1"      tag length (28), then the tag
/// chain_id_length: u32 BE, chain_id        UTF-8
/// height: u64 BE
/// round: u32 BE
/// 0x00                                     no valid round (the paper's -1), or
/// 0x01 valid_round: u32 BE
/// value_length: u32 BE, value              the value's canonical bytes
/// ```
pub fn proposal_sign_bytes<V: ConsensusValue>(
    chain_id: &str,
    height: Height,
    round: Round,
    value: &V,
    valid_round: Option<Round>,
) -> Vec<u8> {
    let value_bytes = value.canonical_bytes();
    let mut bytes = Vec::with_capacity(
        1 + PROPOSAL_DOMAIN_TAG.len() + 4 + chain_id.len() + 8 + 4 + 5 + 4 + value_bytes.len(),
    );
    push_tag(&mut bytes, PROPOSAL_DOMAIN_TAG);
    push_length_prefixed(&mut bytes, chain_id.as_bytes());
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(&round.to_be_bytes());
    match valid_round {
        None => bytes.push(0x00),
        Some(valid_round) => {
            bytes.push(0x01);
            bytes.extend_from_slice(&valid_round.to_be_bytes());
        }
    }
    push_length_prefixed(&mut bytes, &value_bytes);
    bytes
}

/// A prevote or precommit (the paper's `⟨PREVOTE, h, r, id(v)⟩` and
/// `⟨PRECOMMIT, h, r, id(v)⟩`); `value: None` is a vote for nil.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Vote<V> {
    pub vote_type: VoteType,
    pub height: Height,
    pub round: Round,
    pub value: Option<V>,
    pub validator: ValidatorId,
}

impl<V: ConsensusValue> Vote<V> {
    /// This vote's sign bytes on `chain_id` (see [`vote_sign_bytes`]).
    pub fn sign_bytes(&self, chain_id: &str) -> Vec<u8> {
        vote_sign_bytes(
            chain_id,
            self.height,
            self.round,
            self.vote_type,
            self.value.as_ref(),
        )
    }
}

/// A vote with its validator's signature over [`Vote::sign_bytes`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SignedVote<V> {
    pub vote: Vote<V>,
    pub signature: Signature,
}

impl<V: ConsensusValue> SignedVote<V> {
    /// Whether the signature is the vote's validator's signature of its sign bytes.
    pub fn verify_signature(&self, chain_id: &str, verifier: &impl SignatureVerifier) -> bool {
        verifier.verify(
            &self.vote.validator,
            &self.vote.sign_bytes(chain_id),
            &self.signature,
        )
    }
}

/// A proposal (the paper's `⟨PROPOSAL, h, r, v, vr⟩`); `valid_round: None` is the
/// paper's `vr = -1`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Proposal<V> {
    pub height: Height,
    pub round: Round,
    pub value: V,
    pub valid_round: Option<Round>,
    pub proposer: ValidatorId,
}

impl<V: ConsensusValue> Proposal<V> {
    /// This proposal's sign bytes on `chain_id` (see [`proposal_sign_bytes`]).
    pub fn sign_bytes(&self, chain_id: &str) -> Vec<u8> {
        proposal_sign_bytes(
            chain_id,
            self.height,
            self.round,
            &self.value,
            self.valid_round,
        )
    }
}

/// A proposal with its proposer's signature over [`Proposal::sign_bytes`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SignedProposal<V> {
    pub proposal: Proposal<V>,
    pub signature: Signature,
}

impl<V: ConsensusValue> SignedProposal<V> {
    /// Whether the signature is the proposer's signature of the proposal's sign bytes.
    pub fn verify_signature(&self, chain_id: &str, verifier: &impl SignatureVerifier) -> bool {
        verifier.verify(
            &self.proposal.proposer,
            &self.proposal.sign_bytes(chain_id),
            &self.signature,
        )
    }
}

/// Any signed consensus message.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SignedMessage<V> {
    Proposal(SignedProposal<V>),
    Vote(SignedVote<V>),
}

impl<V> SignedMessage<V> {
    /// The height the message is for.
    pub fn height(&self) -> Height {
        match self {
            SignedMessage::Proposal(proposal) => proposal.proposal.height,
            SignedMessage::Vote(vote) => vote.vote.height,
        }
    }

    /// The round the message is for.
    pub fn round(&self) -> Round {
        match self {
            SignedMessage::Proposal(proposal) => proposal.proposal.round,
            SignedMessage::Vote(vote) => vote.vote.round,
        }
    }

    /// The validator who signed it.
    pub fn signer(&self) -> ValidatorId {
        match self {
            SignedMessage::Proposal(proposal) => proposal.proposal.proposer,
            SignedMessage::Vote(vote) => vote.vote.validator,
        }
    }
}

/// Proof that a validator equivocated: two messages it signed for the same height, round
/// and step with different values. The node records it on the ledger; anyone can check it
/// with [`verify_evidence`].
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Evidence<V> {
    /// Two different votes of one type for one height and round.
    ConflictingVotes {
        first: SignedVote<V>,
        second: SignedVote<V>,
    },
    /// Two different proposals for one height and round.
    ConflictingProposals {
        first: SignedProposal<V>,
        second: SignedProposal<V>,
    },
}

impl<V> Evidence<V> {
    /// The validator the evidence is against.
    pub fn validator(&self) -> ValidatorId {
        match self {
            Evidence::ConflictingVotes { first, .. } => first.vote.validator,
            Evidence::ConflictingProposals { first, .. } => first.proposal.proposer,
        }
    }

    /// The height of the equivocation.
    pub fn height(&self) -> Height {
        match self {
            Evidence::ConflictingVotes { first, .. } => first.vote.height,
            Evidence::ConflictingProposals { first, .. } => first.proposal.height,
        }
    }
}

/// Checks that `evidence` proves an equivocation by a member of `validator_set` on
/// `chain_id`: same signer, same height, round (and vote type), different values (or, for
/// proposals, different valid rounds), both signatures valid. Pure.
pub fn verify_evidence<V: ConsensusValue>(
    evidence: &Evidence<V>,
    validator_set: &ValidatorSet,
    chain_id: &str,
    verifier: &impl SignatureVerifier,
) -> Result<(), EvidenceError> {
    let (first_signer, second_signer, first_slot, second_slot) = match evidence {
        Evidence::ConflictingVotes { first, second } => {
            if first.vote.vote_type != second.vote.vote_type {
                return Err(EvidenceError::DifferentVoteTypes {
                    first: first.vote.vote_type,
                    second: second.vote.vote_type,
                });
            }
            if first.vote.value == second.vote.value {
                return Err(EvidenceError::SameValue);
            }
            (
                first.vote.validator,
                second.vote.validator,
                (first.vote.height, first.vote.round),
                (second.vote.height, second.vote.round),
            )
        }
        Evidence::ConflictingProposals { first, second } => {
            if first.proposal.value == second.proposal.value
                && first.proposal.valid_round == second.proposal.valid_round
            {
                return Err(EvidenceError::SameValue);
            }
            (
                first.proposal.proposer,
                second.proposal.proposer,
                (first.proposal.height, first.proposal.round),
                (second.proposal.height, second.proposal.round),
            )
        }
    };
    if first_signer != second_signer {
        return Err(EvidenceError::DifferentValidators {
            first: first_signer,
            second: second_signer,
        });
    }
    if first_slot != second_slot {
        return Err(EvidenceError::DifferentSlots {
            first_height: first_slot.0,
            first_round: first_slot.1,
            second_height: second_slot.0,
            second_round: second_slot.1,
        });
    }
    if !validator_set.contains(&first_signer) {
        return Err(EvidenceError::UnknownValidator {
            validator: first_signer,
        });
    }
    let both_verify = match evidence {
        Evidence::ConflictingVotes { first, second } => {
            first.verify_signature(chain_id, verifier)
                && second.verify_signature(chain_id, verifier)
        }
        Evidence::ConflictingProposals { first, second } => {
            first.verify_signature(chain_id, verifier)
                && second.verify_signature(chain_id, verifier)
        }
    };
    if !both_verify {
        return Err(EvidenceError::BadSignature {
            validator: first_signer,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{InsecureTestSigner, InsecureTestVerifier, Signer};

    #[test]
    fn vote_sign_bytes_are_exactly_as_documented() {
        let bytes = vote_sign_bytes("c1", 7, 2, VoteType::Precommit, Some(&[0xaa; 32]));
        let mut expected = vec![24u8];
        expected.extend_from_slice(b"hutong/consensus/vote/v1");
        expected.extend_from_slice(&[0, 0, 0, 2]);
        expected.extend_from_slice(b"c1");
        expected.extend_from_slice(&7u64.to_be_bytes());
        expected.extend_from_slice(&2u32.to_be_bytes());
        expected.push(0x02);
        expected.push(0x01);
        expected.extend_from_slice(&[0, 0, 0, 32]);
        expected.extend_from_slice(&[0xaa; 32]);
        assert_eq!(bytes, expected);
        // The length docs/consensus.md gives for this example.
        assert_eq!(bytes.len(), 81);

        let nil = vote_sign_bytes::<[u8; 32]>("c1", 7, 2, VoteType::Prevote, None);
        assert_eq!(nil.len(), 1 + 24 + 4 + 2 + 8 + 4 + 1 + 1);
        assert_eq!(nil[nil.len() - 2..], [0x01, 0x00]);
    }

    #[test]
    fn proposal_sign_bytes_are_exactly_as_documented() {
        let bytes = proposal_sign_bytes("c1", 7, 2, &[0xbb; 32], Some(1));
        let mut expected = vec![28u8];
        expected.extend_from_slice(b"hutong/consensus/proposal/v1");
        expected.extend_from_slice(&[0, 0, 0, 2]);
        expected.extend_from_slice(b"c1");
        expected.extend_from_slice(&7u64.to_be_bytes());
        expected.extend_from_slice(&2u32.to_be_bytes());
        expected.push(0x01);
        expected.extend_from_slice(&1u32.to_be_bytes());
        expected.extend_from_slice(&[0, 0, 0, 32]);
        expected.extend_from_slice(&[0xbb; 32]);
        assert_eq!(bytes, expected);
        let without = proposal_sign_bytes("c1", 7, 2, &[0xbb; 32], None);
        assert_eq!(without.len(), expected.len() - 4);
    }

    #[test]
    fn sign_bytes_separate_chains_steps_and_kinds() {
        let value = [1u8; 32];
        let prevote = vote_sign_bytes("a", 1, 0, VoteType::Prevote, Some(&value));
        assert_ne!(
            prevote,
            vote_sign_bytes("b", 1, 0, VoteType::Prevote, Some(&value))
        );
        assert_ne!(
            prevote,
            vote_sign_bytes("a", 1, 0, VoteType::Precommit, Some(&value))
        );
        assert_ne!(
            prevote,
            vote_sign_bytes::<[u8; 32]>("a", 1, 0, VoteType::Prevote, None)
        );
        assert_ne!(prevote, proposal_sign_bytes("a", 1, 0, &value, None));
        // A chain id that swallows the height bytes cannot collide: its length is prefixed.
        assert_ne!(
            vote_sign_bytes("ab", 1, 0, VoteType::Prevote, Some(&value)),
            vote_sign_bytes("a", 1, 0, VoteType::Prevote, Some(&value))
        );
    }

    fn signed_vote(
        signer: &InsecureTestSigner,
        round: Round,
        value: Option<[u8; 32]>,
    ) -> SignedVote<[u8; 32]> {
        let vote = Vote {
            vote_type: VoteType::Prevote,
            height: 3,
            round,
            value,
            validator: signer.id(),
        };
        let signature = signer.sign(&vote.sign_bytes("chain"));
        SignedVote { vote, signature }
    }

    #[test]
    fn evidence_verifies_only_for_real_equivocation() {
        let signer = InsecureTestSigner::new(ValidatorId([1; 32]));
        let set = ValidatorSet::with_equal_power([signer.id(), ValidatorId([2; 32])]).unwrap();
        let first = signed_vote(&signer, 0, Some([1; 32]));
        let second = signed_vote(&signer, 0, None);
        let good = Evidence::ConflictingVotes {
            first: first.clone(),
            second: second.clone(),
        };
        assert_eq!(
            verify_evidence(&good, &set, "chain", &InsecureTestVerifier),
            Ok(())
        );
        assert_eq!(good.validator(), signer.id());
        assert_eq!(good.height(), 3);

        let same = Evidence::ConflictingVotes {
            first: first.clone(),
            second: first.clone(),
        };
        assert_eq!(
            verify_evidence(&same, &set, "chain", &InsecureTestVerifier),
            Err(EvidenceError::SameValue)
        );

        let other_round = Evidence::ConflictingVotes {
            first: first.clone(),
            second: signed_vote(&signer, 1, None),
        };
        assert!(matches!(
            verify_evidence(&other_round, &set, "chain", &InsecureTestVerifier),
            Err(EvidenceError::DifferentSlots { .. })
        ));

        let mut forged = second.clone();
        forged.signature.0[0] ^= 1;
        let forged = Evidence::ConflictingVotes {
            first: first.clone(),
            second: forged,
        };
        assert_eq!(
            verify_evidence(&forged, &set, "chain", &InsecureTestVerifier),
            Err(EvidenceError::BadSignature {
                validator: signer.id()
            })
        );

        let other = InsecureTestSigner::new(ValidatorId([2; 32]));
        let mixed = Evidence::ConflictingVotes {
            first,
            second: signed_vote(&other, 0, None),
        };
        assert!(matches!(
            verify_evidence(&mixed, &set, "chain", &InsecureTestVerifier),
            Err(EvidenceError::DifferentValidators { .. })
        ));

        let stranger = InsecureTestSigner::new(ValidatorId([9; 32]));
        let outside = Evidence::ConflictingVotes {
            first: signed_vote(&stranger, 0, None),
            second: signed_vote(&stranger, 0, Some([3; 32])),
        };
        assert_eq!(
            verify_evidence(&outside, &set, "chain", &InsecureTestVerifier),
            Err(EvidenceError::UnknownValidator {
                validator: stranger.id()
            })
        );
    }
}
