//! # hutong-consensus
//!
//! Tendermint BFT (Buchman, Kwon and Milosevic, "The latest gossip on BFT consensus", 2018,
//! Algorithm 1) as a pure, deterministic state machine, with the types the ledger and light
//! clients use to check its decisions offline.
//!
//! The public types come first: [`ValidatorId`], [`Signature`], [`ValidatorSet`], [`Vote`],
//! [`Proposal`], [`CommitCertificate`], the sign-bytes functions ([`vote_sign_bytes`],
//! [`proposal_sign_bytes`]) and [`verify_commit_certificate`].
//!
//! The crate has no IO, no clock and no randomness: time and values arrive as inputs.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod certificate;
mod error;
pub mod limits;
mod machine;
mod messages;
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
pub use signing::{InsecureTestSigner, InsecureTestVerifier, SignatureVerifier, Signer};
pub use types::{Height, Round, Signature, Step, ValidatorId, VoteType};
pub use validator_set::{Validator, ValidatorSet};
pub use value::ConsensusValue;
pub use vote_keeper::{AddVoteOutcome, VoteKeeper};
