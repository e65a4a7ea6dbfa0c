//! # hutong-consensus
//!
//! Tendermint BFT (Buchman, Kwon and Milosevic, "The latest gossip on BFT consensus", 2018,
//! Algorithm 1) as a pure, deterministic state machine, with the types the ledger and light
//! clients use to check its decisions offline. It depends on nothing but `thiserror` (and
//! `serde` behind the optional `serde` feature); the node owns the network, the storage and
//! the clock. `docs/consensus.md` is the full description: the host's duties, the sign bytes
//! byte by byte, the limits and the simulation.
//!
//! - Checking decisions: [`ValidatorSet`], [`CommitCertificate`],
//!   [`verify_commit_certificate`], [`verify_evidence`], and the sign bytes
//!   ([`vote_sign_bytes`], [`proposal_sign_bytes`]).
//! - Taking part: [`Consensus`], one validator's state machine. The host feeds it
//!   [`Input`]s and performs the [`Action`]s it returns, in order; a
//!   [`Action::PersistSigningState`] must be durable before the broadcasts that follow it.
//! - Testing: the `sim` module (feature `sim`), a deterministic simulator of many
//!   validators under faults.
//!
//! Four validators decide a height, messages delivered at once:
//!
//! ```
//! use hutong_consensus::{
//!     Action, Config, Consensus, InsecureTestSigner, InsecureTestVerifier, Input, ValidatorId,
//!     ValidatorSet,
//! };
//!
//! let ids: Vec<ValidatorId> = (1..=4).map(|byte| ValidatorId([byte; 32])).collect();
//! let set = ValidatorSet::with_equal_power(ids.clone()).unwrap();
//! let mut machines: Vec<_> = ids
//!     .iter()
//!     .map(|id| {
//!         let signer = InsecureTestSigner::new(*id);
//!         Consensus::<[u8; 32], _, _>::new(Config::default(), "example", signer, InsecureTestVerifier)
//!             .unwrap()
//!     })
//!     .collect();
//! // (validator, input) pairs still to deliver, first in first out.
//! let mut pending: std::collections::VecDeque<(usize, Input<[u8; 32]>)> = (0..4)
//!     .map(|index| (index, Input::NewHeight { height: 1, validator_set: set.clone() }))
//!     .collect();
//! let mut decisions = Vec::new();
//! while let Some((index, input)) = pending.pop_front() {
//!     for action in machines[index].handle(input) {
//!         match action {
//!             // A real host writes this to disk before sending what follows.
//!             Action::PersistSigningState(_) => {}
//!             Action::BroadcastProposal(proposal) => pending.extend(
//!                 (0..4).filter(|other| *other != index).map(|other| (other, Input::Proposal(proposal.clone()))),
//!             ),
//!             Action::BroadcastVote(vote) => pending.extend(
//!                 (0..4).filter(|other| *other != index).map(|other| (other, Input::Vote(vote.clone()))),
//!             ),
//!             Action::RequestValue { height, round } => {
//!                 pending.push_back((index, Input::ProposeValue { height, round, value: [7; 32] }))
//!             }
//!             Action::ValidateValue { height, value } => {
//!                 pending.push_back((index, Input::ProposalVerdict { height, value, valid: true }))
//!             }
//!             Action::Decide { certificate } => decisions.push(certificate),
//!             // No timeout is needed when every message arrives.
//!             Action::ScheduleTimeout { .. } | Action::Evidence(_) => {}
//!         }
//!     }
//! }
//! assert_eq!(decisions.len(), 4);
//! assert!(decisions.iter().all(|certificate| certificate.value == [7; 32]));
//! hutong_consensus::verify_commit_certificate(&decisions[0], &set, "example", &InsecureTestVerifier)
//!     .unwrap();
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod certificate;
mod error;
pub mod limits;
mod machine;
mod messages;
mod mutants;
mod signing;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
mod types;
mod validator_set;
mod value;
mod vote_keeper;

pub use certificate::{CommitCertificate, CommitSignature, verify_commit_certificate};
pub use error::{CertificateError, ConfigError, EvidenceError, ValidatorSetError};
pub use machine::{Action, Config, Consensus, Counters, Input, RoundValue, SigningState};
pub use messages::{
    Evidence, PROPOSAL_DOMAIN_TAG, Proposal, SignedMessage, SignedProposal, SignedVote,
    VOTE_DOMAIN_TAG, Vote, proposal_sign_bytes, verify_evidence, vote_sign_bytes,
};
#[cfg(feature = "mutants")]
pub use mutants::Mutant;
pub use signing::{InsecureTestSigner, InsecureTestVerifier, SignatureVerifier, Signer};
pub use types::{Height, Round, Signature, Step, ValidatorId, VoteType};
pub use validator_set::{Validator, ValidatorSet};
pub use value::ConsensusValue;
pub use vote_keeper::{AddVoteOutcome, VoteKeeper};
