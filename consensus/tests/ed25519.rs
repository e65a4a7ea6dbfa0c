//! Commit certificates and the state machine's messages with real ed25519 signatures, the way
//! the node signs them.

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use hutong_consensus::{
    CertificateError, CommitCertificate, CommitSignature, Signature, SignatureVerifier, Signer,
    ValidatorId, ValidatorSet, verify_commit_certificate,
};

struct Ed25519Signer(SigningKey);

impl Signer for Ed25519Signer {
    fn id(&self) -> ValidatorId {
        ValidatorId(self.0.verifying_key().to_bytes())
    }
    fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

struct Ed25519Verifier;

impl SignatureVerifier for Ed25519Verifier {
    fn verify(&self, id: &ValidatorId, message: &[u8], signature: &Signature) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&id.0) else {
            return false;
        };
        key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature.0))
            .is_ok()
    }
}

fn signers(count: u8) -> Vec<Ed25519Signer> {
    (1..=count)
        .map(|seed| Ed25519Signer(SigningKey::from_bytes(&[seed; 32])))
        .collect()
}

#[test]
fn an_ed25519_commit_certificate_verifies_and_a_tampered_one_does_not() {
    let signers = signers(4);
    let set = ValidatorSet::with_equal_power(signers.iter().map(Signer::id)).unwrap();
    let mut certificate = CommitCertificate {
        height: 12,
        round: 0,
        value: [0x5a; 32],
        signatures: vec![],
    };
    let sign_bytes = certificate.sign_bytes("hutong-ed25519");
    certificate.signatures = signers[..3]
        .iter()
        .map(|signer| CommitSignature {
            validator: signer.id(),
            signature: signer.sign(&sign_bytes),
        })
        .collect();
    assert_eq!(
        verify_commit_certificate(&certificate, &set, "hutong-ed25519", &Ed25519Verifier),
        Ok(())
    );

    let mut tampered = certificate.clone();
    tampered.value[0] ^= 1;
    assert_eq!(
        verify_commit_certificate(&tampered, &set, "hutong-ed25519", &Ed25519Verifier),
        Err(CertificateError::BadSignature {
            validator: signers[0].id()
        })
    );
}

/// The simulation with ed25519 keys: the state machine with real signatures, agreement and
/// liveness checked as in the insecure runs, a few seeds (ed25519 is slower).
#[test]
fn the_simulation_agrees_with_ed25519_signatures() {
    #[derive(Clone, Copy)]
    struct Ed25519Keys;

    #[derive(Clone)]
    struct CloneableSigner(SigningKey);

    impl Signer for CloneableSigner {
        fn id(&self) -> ValidatorId {
            ValidatorId(self.0.verifying_key().to_bytes())
        }
        fn sign(&self, message: &[u8]) -> Signature {
            Signature(self.0.sign(message).to_bytes())
        }
    }

    #[derive(Clone, Copy)]
    struct CloneableVerifier;

    impl SignatureVerifier for CloneableVerifier {
        fn verify(&self, id: &ValidatorId, message: &[u8], signature: &Signature) -> bool {
            Ed25519Verifier.verify(id, message, signature)
        }
    }

    impl hutong_consensus::sim::Keys for Ed25519Keys {
        type Signer = CloneableSigner;
        type Verifier = CloneableVerifier;
        fn signer(&self, index: usize) -> CloneableSigner {
            CloneableSigner(SigningKey::from_bytes(&[index as u8 + 1; 32]))
        }
        fn verifier(&self) -> CloneableVerifier {
            CloneableVerifier
        }
    }

    for name in ["healthy-4", "equivocators-4", "crashes-4"] {
        let scenario = hutong_consensus::sim::Scenario::named(name).unwrap();
        for seed in 0..3 {
            let simulation =
                hutong_consensus::sim::Simulation::new(scenario.clone(), seed, Ed25519Keys)
                    .unwrap();
            if let Err(failure) = simulation.run() {
                panic!("{failure}");
            }
        }
    }
}
