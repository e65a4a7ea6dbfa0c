//! Properties over random inputs: certificate verification follows the two-thirds rule
//! exactly, and sign bytes never collide.

use hutong_consensus::{
    CertificateError, CommitCertificate, CommitSignature, InsecureTestSigner, InsecureTestVerifier,
    Signer, Validator, ValidatorId, ValidatorSet, VoteType, verify_commit_certificate,
    vote_sign_bytes,
};
use proptest::prelude::*;

fn id(index: usize) -> ValidatorId {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&(index as u64).to_be_bytes());
    ValidatorId(bytes)
}

proptest! {
    #[test]
    fn a_certificate_verifies_exactly_when_its_signers_hold_more_than_two_thirds(
        powers in prop::collection::vec(1u64..100, 1..20),
        signs in prop::collection::vec(any::<bool>(), 20),
    ) {
        let set = ValidatorSet::new(
            powers.iter().enumerate().map(|(index, power)| Validator { id: id(index), voting_power: *power }).collect(),
        ).unwrap();
        let mut certificate = CommitCertificate { height: 9, round: 1, value: [3u8; 32], signatures: vec![] };
        let bytes = certificate.sign_bytes("property");
        let mut signed_power = 0;
        for (index, power) in powers.iter().enumerate() {
            if signs[index] {
                signed_power += power;
                let signer = InsecureTestSigner::new(id(index));
                certificate.signatures.push(CommitSignature { validator: signer.id(), signature: signer.sign(&bytes) });
            }
        }
        let total: u64 = powers.iter().sum();
        let result = verify_commit_certificate(&certificate, &set, "property", &InsecureTestVerifier);
        if 3 * signed_power > 2 * total {
            prop_assert_eq!(result, Ok(()));
        } else {
            prop_assert_eq!(
                result,
                Err(CertificateError::InsufficientPower {
                    signed_power,
                    total_power: total,
                    required_power: set.quorum_power(),
                })
            );
        }
    }

    #[test]
    fn different_votes_have_different_sign_bytes(
        first in (any::<u64>(), any::<u32>(), any::<bool>(), prop::option::of(any::<[u8; 32]>())),
        second in (any::<u64>(), any::<u32>(), any::<bool>(), prop::option::of(any::<[u8; 32]>())),
        chain in "[a-z0-9-]{1,16}",
    ) {
        let vote_type = |precommit: bool| if precommit { VoteType::Precommit } else { VoteType::Prevote };
        let first_bytes = vote_sign_bytes(&chain, first.0, first.1, vote_type(first.2), first.3.as_ref());
        let second_bytes = vote_sign_bytes(&chain, second.0, second.1, vote_type(second.2), second.3.as_ref());
        prop_assert_eq!(first == second, first_bytes == second_bytes);
    }
}
