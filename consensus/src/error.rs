//! The crate's typed errors. Each public function that can fail on its input returns one of
//! these, and a failed call changes nothing.

use crate::types::{Height, Round, ValidatorId, VoteType};

/// Why a list of validators is not a [`crate::ValidatorSet`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    #[error("a validator set needs at least one validator")]
    Empty,
    #[error("a validator set has at most {max} validators, got {count}")]
    TooMany { count: usize, max: usize },
    #[error("validator {validator} appears more than once")]
    Duplicate { validator: ValidatorId },
    #[error("validator {validator} has zero voting power")]
    ZeroPower { validator: ValidatorId },
    #[error("the total voting power exceeds {max}")]
    TotalPowerTooLarge { max: u64 },
}

/// Why a [`crate::CommitCertificate`] does not prove a decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("signer {validator} is not in the validator set")]
    UnknownValidator { validator: ValidatorId },
    #[error("signer {validator} appears more than once")]
    DuplicateSigner { validator: ValidatorId },
    #[error("the precommit signature of {validator} does not verify")]
    BadSignature { validator: ValidatorId },
    #[error(
        "the signers hold {signed_power} of {total_power} voting power; more than two thirds \
         (at least {required_power}) is needed"
    )]
    InsufficientPower {
        signed_power: u64,
        total_power: u64,
        required_power: u64,
    },
    #[error(
        "the value's canonical encoding is {length_bytes} bytes, more than the {max_bytes} allowed"
    )]
    ValueTooLarge {
        length_bytes: usize,
        max_bytes: usize,
    },
}

/// Why an [`crate::Evidence`] does not prove that a validator equivocated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("the two messages are signed by different validators ({first} and {second})")]
    DifferentValidators {
        first: ValidatorId,
        second: ValidatorId,
    },
    #[error(
        "the two messages are for different slots: height {first_height} round {first_round} \
         and height {second_height} round {second_round}"
    )]
    DifferentSlots {
        first_height: Height,
        first_round: Round,
        second_height: Height,
        second_round: Round,
    },
    #[error("the two votes are of different types ({first:?} and {second:?})")]
    DifferentVoteTypes { first: VoteType, second: VoteType },
    #[error("the two messages carry the same value: they do not conflict")]
    SameValue,
    #[error("validator {validator} is not in the validator set")]
    UnknownValidator { validator: ValidatorId },
    #[error("a signature of {validator} does not verify")]
    BadSignature { validator: ValidatorId },
}

/// Why the state machine cannot be built with the given configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("a chain id is 1 to {max_bytes} bytes of UTF-8, got {length_bytes}")]
    ChainIdLength {
        length_bytes: usize,
        max_bytes: usize,
    },
    #[error("the {step} timeout base must be at least 1 ms")]
    ZeroTimeout { step: &'static str },
    #[error("the signing state was signed by {found}, but this signer is {expected}")]
    ForeignSigningState {
        expected: ValidatorId,
        found: ValidatorId,
    },
    #[error("the signing state is malformed: {reason}")]
    MalformedSigningState { reason: &'static str },
}
