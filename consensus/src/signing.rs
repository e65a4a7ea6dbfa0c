//! The signing interface the node implements (with ed25519) and tests fake.

use crate::types::{Signature, ValidatorId};

/// Signs on behalf of one validator. The node implements it with the validator's ed25519
/// key; the message is always one of the crate's sign bytes (see [`crate::vote_sign_bytes`]
/// and [`crate::proposal_sign_bytes`]).
pub trait Signer {
    /// The validator this signer signs for (its public key).
    fn id(&self) -> ValidatorId;
    /// A signature of `message` that [`SignatureVerifier::verify`] accepts for [`Signer::id`].
    fn sign(&self, message: &[u8]) -> Signature;
}

/// Checks signatures. The node implements it with ed25519 (the id is the public key).
/// It must be a pure function of its arguments.
pub trait SignatureVerifier {
    /// Whether `signature` is `id`'s signature of `message`.
    fn verify(&self, id: &ValidatorId, message: &[u8], signature: &Signature) -> bool;
}

impl<T: Signer + ?Sized> Signer for &T {
    fn id(&self) -> ValidatorId {
        (**self).id()
    }
    fn sign(&self, message: &[u8]) -> Signature {
        (**self).sign(message)
    }
}

impl<T: SignatureVerifier + ?Sized> SignatureVerifier for &T {
    fn verify(&self, id: &ValidatorId, message: &[u8], signature: &Signature) -> bool {
        (**self).verify(id, message, signature)
    }
}

/// An insecure, deterministic signature scheme for tests and the simulation: anyone can
/// forge it. A "signature" is a keyed mix of the signer's id and the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InsecureTestSigner {
    id: ValidatorId,
}

impl InsecureTestSigner {
    /// A test signer for `id`.
    pub fn new(id: ValidatorId) -> Self {
        InsecureTestSigner { id }
    }
}

impl Signer for InsecureTestSigner {
    fn id(&self) -> ValidatorId {
        self.id
    }
    fn sign(&self, message: &[u8]) -> Signature {
        insecure_test_signature(&self.id, message)
    }
}

/// Verifies [`InsecureTestSigner`] signatures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InsecureTestVerifier;

impl SignatureVerifier for InsecureTestVerifier {
    fn verify(&self, id: &ValidatorId, message: &[u8], signature: &Signature) -> bool {
        insecure_test_signature(id, message) == *signature
    }
}

/// FNV-1a over id and message, stretched to 64 bytes with a splitmix64 chain. Cheap, so
/// that the simulation measures consensus and not cryptography; not a signature.
fn insecure_test_signature(id: &ValidatorId, message: &[u8]) -> Signature {
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.0.iter().chain(message.iter()) {
        state ^= u64::from(*byte);
        state = state.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut out = [0u8; 64];
    for chunk in out.chunks_exact_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^= mixed >> 31;
        chunk.copy_from_slice(&mixed.to_be_bytes());
    }
    Signature(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_signatures_verify_only_for_their_signer_and_message() {
        let signer = InsecureTestSigner::new(ValidatorId([1; 32]));
        let signature = signer.sign(b"hello");
        assert!(InsecureTestVerifier.verify(&ValidatorId([1; 32]), b"hello", &signature));
        assert!(!InsecureTestVerifier.verify(&ValidatorId([2; 32]), b"hello", &signature));
        assert!(!InsecureTestVerifier.verify(&ValidatorId([1; 32]), b"hellp", &signature));
    }
}
