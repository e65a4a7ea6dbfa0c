//! Commit certificates: the proof that a value was decided at a height.

use std::collections::BTreeSet;

use crate::error::CertificateError;
use crate::limits::MAX_VALUE_BYTES;
use crate::messages::{SignedVote, Vote, vote_sign_bytes};
use crate::signing::SignatureVerifier;
use crate::types::{Height, Round, Signature, ValidatorId, VoteType};
use crate::validator_set::ValidatorSet;
use crate::value::ConsensusValue;

/// One validator's precommit signature in a certificate.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CommitSignature {
    pub validator: ValidatorId,
    pub signature: Signature,
}

/// The precommits of more than two thirds of the voting power for `value` in `round` at
/// `height`. Every precommit signs the same bytes, [`CommitCertificate::sign_bytes`], so
/// anyone who knows the validator set of `height` and the chain id can check it with
/// [`verify_commit_certificate`], offline.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CommitCertificate<V> {
    pub height: Height,
    pub round: Round,
    pub value: V,
    /// Ordered by validator id, one per validator.
    pub signatures: Vec<CommitSignature>,
}

impl<V: ConsensusValue> CommitCertificate<V> {
    /// The bytes every precommit in this certificate signs (a precommit's
    /// [`vote_sign_bytes`]).
    pub fn sign_bytes(&self, chain_id: &str) -> Vec<u8> {
        vote_sign_bytes(
            chain_id,
            self.height,
            self.round,
            VoteType::Precommit,
            Some(&self.value),
        )
    }

    /// The signed precommits this certificate stands for (to re-broadcast them, or to
    /// feed them to a state machine).
    pub fn precommits(&self) -> Vec<SignedVote<V>> {
        self.signatures
            .iter()
            .map(|commit_signature| SignedVote {
                vote: Vote {
                    vote_type: VoteType::Precommit,
                    height: self.height,
                    round: self.round,
                    value: Some(self.value.clone()),
                    validator: commit_signature.validator,
                },
                signature: commit_signature.signature,
            })
            .collect()
    }
}

/// Checks that `certificate` proves its value decided: every signer is in `validator_set`,
/// appears once, and signed the precommit's sign bytes on `chain_id`, and the signers hold
/// more than two thirds of the voting power.
///
/// Pure. Precondition: `validator_set` is the set of `certificate.height` (the caller knows
/// it from the ledger). The cheap checks run before any signature is verified, so a
/// certificate that cannot reach the threshold costs no signature verification. Extra
/// valid signatures beyond the threshold are accepted.
pub fn verify_commit_certificate<V: ConsensusValue>(
    certificate: &CommitCertificate<V>,
    validator_set: &ValidatorSet,
    chain_id: &str,
    verifier: &impl SignatureVerifier,
) -> Result<(), CertificateError> {
    let value_length_bytes = certificate.value.canonical_bytes().len();
    if value_length_bytes > MAX_VALUE_BYTES {
        return Err(CertificateError::ValueTooLarge {
            length_bytes: value_length_bytes,
            max_bytes: MAX_VALUE_BYTES,
        });
    }
    let mut seen = BTreeSet::new();
    let mut signed_power: u64 = 0;
    for commit_signature in &certificate.signatures {
        let validator = commit_signature.validator;
        let power = validator_set
            .voting_power(&validator)
            .ok_or(CertificateError::UnknownValidator { validator })?;
        if !seen.insert(validator) {
            return Err(CertificateError::DuplicateSigner { validator });
        }
        // Cannot overflow: the powers of distinct members add up to at most the total.
        signed_power = signed_power.saturating_add(power);
    }
    if !validator_set.is_quorum(signed_power) {
        return Err(CertificateError::InsufficientPower {
            signed_power,
            total_power: validator_set.total_voting_power(),
            required_power: validator_set.quorum_power(),
        });
    }
    let sign_bytes = certificate.sign_bytes(chain_id);
    for commit_signature in &certificate.signatures {
        if !verifier.verify(
            &commit_signature.validator,
            &sign_bytes,
            &commit_signature.signature,
        ) {
            return Err(CertificateError::BadSignature {
                validator: commit_signature.validator,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{InsecureTestSigner, InsecureTestVerifier, Signer};

    const CHAIN: &str = "hutong-test";

    fn signers(count: u8) -> Vec<InsecureTestSigner> {
        (1..=count)
            .map(|byte| InsecureTestSigner::new(ValidatorId([byte; 32])))
            .collect()
    }

    fn certificate(signers: &[InsecureTestSigner]) -> CommitCertificate<[u8; 32]> {
        let mut certificate = CommitCertificate {
            height: 5,
            round: 1,
            value: [9u8; 32],
            signatures: vec![],
        };
        let bytes = certificate.sign_bytes(CHAIN);
        certificate.signatures = signers
            .iter()
            .map(|signer| CommitSignature {
                validator: signer.id(),
                signature: signer.sign(&bytes),
            })
            .collect();
        certificate
    }

    #[test]
    fn a_quorum_of_good_signatures_verifies() {
        let all = signers(4);
        let set = ValidatorSet::with_equal_power(all.iter().map(Signer::id)).unwrap();
        assert_eq!(
            verify_commit_certificate(&certificate(&all[..3]), &set, CHAIN, &InsecureTestVerifier),
            Ok(())
        );
        assert_eq!(
            verify_commit_certificate(&certificate(&all), &set, CHAIN, &InsecureTestVerifier),
            Ok(())
        );
    }

    #[test]
    fn insufficient_power_names_the_numbers() {
        let all = signers(4);
        let set = ValidatorSet::with_equal_power(all.iter().map(Signer::id)).unwrap();
        assert_eq!(
            verify_commit_certificate(&certificate(&all[..2]), &set, CHAIN, &InsecureTestVerifier),
            Err(CertificateError::InsufficientPower {
                signed_power: 2,
                total_power: 4,
                required_power: 3
            })
        );
        assert_eq!(
            verify_commit_certificate(&certificate(&[]), &set, CHAIN, &InsecureTestVerifier),
            Err(CertificateError::InsufficientPower {
                signed_power: 0,
                total_power: 4,
                required_power: 3
            })
        );
    }

    #[test]
    fn unknown_duplicate_and_bad_signers_are_named() {
        let all = signers(5);
        let set = ValidatorSet::with_equal_power(all[..4].iter().map(Signer::id)).unwrap();

        let with_stranger = certificate(&all[1..5]);
        assert_eq!(
            verify_commit_certificate(&with_stranger, &set, CHAIN, &InsecureTestVerifier),
            Err(CertificateError::UnknownValidator {
                validator: all[4].id()
            })
        );

        let mut duplicated = certificate(&all[..2]);
        duplicated.signatures.push(duplicated.signatures[0]);
        assert_eq!(
            verify_commit_certificate(&duplicated, &set, CHAIN, &InsecureTestVerifier),
            Err(CertificateError::DuplicateSigner {
                validator: all[0].id()
            })
        );

        let mut tampered = certificate(&all[..3]);
        tampered.signatures[1].signature.0[63] ^= 0x80;
        assert_eq!(
            verify_commit_certificate(&tampered, &set, CHAIN, &InsecureTestVerifier),
            Err(CertificateError::BadSignature {
                validator: all[1].id()
            })
        );

        let mut other_value = certificate(&all[..3]);
        other_value.value = [8u8; 32];
        assert_eq!(
            verify_commit_certificate(&other_value, &set, CHAIN, &InsecureTestVerifier),
            Err(CertificateError::BadSignature {
                validator: all[0].id()
            })
        );

        let mut other_round = certificate(&all[..3]);
        other_round.round = 2;
        assert!(matches!(
            verify_commit_certificate(&other_round, &set, CHAIN, &InsecureTestVerifier),
            Err(CertificateError::BadSignature { .. })
        ));

        let good = certificate(&all[..3]);
        assert!(matches!(
            verify_commit_certificate(&good, &set, "another-chain", &InsecureTestVerifier),
            Err(CertificateError::BadSignature { .. })
        ));
    }

    #[test]
    fn weighted_power_decides_not_the_count() {
        let all = signers(4);
        let set = ValidatorSet::new(
            all.iter()
                .zip([70u64, 10, 10, 10])
                .map(|(signer, voting_power)| crate::Validator {
                    id: signer.id(),
                    voting_power,
                })
                .collect(),
        )
        .unwrap();
        assert_eq!(
            verify_commit_certificate(&certificate(&all[..1]), &set, CHAIN, &InsecureTestVerifier),
            Ok(())
        );
        assert!(matches!(
            verify_commit_certificate(&certificate(&all[1..]), &set, CHAIN, &InsecureTestVerifier),
            Err(CertificateError::InsufficientPower {
                signed_power: 30,
                total_power: 100,
                required_power: 67
            })
        ));
    }

    #[test]
    fn precommits_round_trip_to_the_same_sign_bytes() {
        let all = signers(3);
        let certificate = certificate(&all);
        for precommit in certificate.precommits() {
            assert!(precommit.verify_signature(CHAIN, &InsecureTestVerifier));
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn certificate_serialises_compactly_and_round_trips() {
        let all = signers(4);
        let certificate = certificate(&all);
        let bytes = postcard::to_stdvec(&certificate).unwrap();
        // height, round, 32-byte value, count, and 96 bytes per signature.
        assert!(bytes.len() <= 1 + 1 + 32 + 1 + 4 * 96 + 8);
        let back: CommitCertificate<[u8; 32]> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, certificate);
        let json = serde_json::to_string(&certificate).unwrap();
        let back: CommitCertificate<[u8; 32]> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, certificate);
    }
}
