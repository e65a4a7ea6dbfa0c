//! The algorithm suite of a chain: which hash function and which signature scheme make and
//! check its headers, transaction ids, transaction log, state tree and signatures. The genesis
//! file names it (`"suite"`), so that every node and every offline verifier knows, from the
//! one file they trust, how to check everything else; a chain never changes its suite.
//!
//! Today there is one suite, `ed25519-blake3`: ed25519 under the acceptance rule of ADR 0002
//! ([`crate::crypto`]) and blake3 with domain tags ([`crate::hash`]), the log and the state
//! tree hashed with blake3 as RFC 9162 and docs/proofs.md lay out. A national-cryptography suite
//! (SM2 signatures, SM3 hashing) is meant to be added as a second variant: a chain chooses it
//! in its genesis file, and nodes that know both serve both kinds of chain, with no flag day
//! for the chains that keep theirs (ADR 0016).

use hutong_consensus::{Signature as ConsensusSignature, SignatureVerifier, Signer, ValidatorId};
use serde::{Deserialize, Serialize};

use crate::crypto::{self, BatchFailure, PublicKey, SecretKey, Signature, SignatureError};
use crate::hash::{self, Hash32};
use crate::log::{Blake3Log, LogHasher};

/// A chain's algorithm suite, as its genesis file names it.
///
/// Every hash and signature of a chain is made and checked through its suite's methods (and
/// its [`LogHasher`] and [`SignatureVerifier`] implementations); the primitives themselves
/// (`crate::hash`'s blake3, `crate::crypto`'s ed25519, `crate::log::Blake3Log`) are called by
/// chain code only from here. The architecture test holds the rest of the workspace to that.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Suite {
    /// ed25519 signatures (ADR 0002), blake3 hashing.
    #[default]
    #[serde(rename = "ed25519-blake3")]
    Ed25519Blake3,
}

/// The domain byte of a state-tree leaf, `H(0x00 || key || value)` (docs/proofs.md section 6).
pub const TREE_LEAF_DOMAIN: u8 = 0x00;
/// The domain byte of a state-tree interior node, `H(0x01 || left || right)`.
pub const TREE_NODE_DOMAIN: u8 = 0x01;

impl Suite {
    /// Every suite this build implements.
    pub const SUPPORTED: [Suite; 1] = [Suite::Ed25519Blake3];

    /// The name the genesis file uses.
    pub const fn name(self) -> &'static str {
        match self {
            Suite::Ed25519Blake3 => "ed25519-blake3",
        }
    }

    /// The hash of `data` under a domain tag: `H(len(tag) || tag || data)` (docs/proofs.md
    /// section 1). Every hash over a record, a key, a header, a validator set or a genesis
    /// file has its own tag, so a digest of one kind is never taken for another.
    pub fn tagged(self, tag: &str, data: &[u8]) -> Hash32 {
        match self {
            Suite::Ed25519Blake3 => hash::tagged(tag, data),
        }
    }

    /// The plain hash of `data`: a transaction's id is the hash of its canonical bytes.
    pub fn digest(self, data: &[u8]) -> Hash32 {
        match self {
            Suite::Ed25519Blake3 => hash::blake3_parts(&[data]),
        }
    }

    /// The hash of a state-tree subtree holding exactly one key: `H(0x00 || key || value)`.
    pub fn tree_leaf(self, key: &Hash32, value: &Hash32) -> Hash32 {
        self.tree_pair(TREE_LEAF_DOMAIN, key, value)
    }

    /// The hash of a state-tree subtree holding two keys or more: `H(0x01 || left || right)`.
    pub fn tree_node(self, left: &Hash32, right: &Hash32) -> Hash32 {
        self.tree_pair(TREE_NODE_DOMAIN, left, right)
    }

    fn tree_pair(self, domain: u8, first: &Hash32, second: &Hash32) -> Hash32 {
        // On the stack: tree hashing is the inner loop of every block's commit.
        let mut input = [0u8; 65];
        input[0] = domain;
        input[1..33].copy_from_slice(first.as_bytes());
        input[33..].copy_from_slice(second.as_bytes());
        match self {
            Suite::Ed25519Blake3 => hash::blake3_parts(&[&input]),
        }
    }

    /// Signs `message` with `key`.
    pub fn sign(self, key: &SecretKey, message: &[u8]) -> Signature {
        match self {
            Suite::Ed25519Blake3 => key.sign(message),
        }
    }

    /// Checks one signature by the suite's acceptance rule (for ed25519, ADR 0002's).
    pub fn verify(
        self,
        key: &PublicKey,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        match self {
            Suite::Ed25519Blake3 => crypto::verify(key, message, signature),
        }
    }

    /// Checks many signatures at once, with exactly the answers [`Suite::verify`] gives each
    /// (see `crypto::verify_batch`): `Ok(())`, or the indexes of the refused entries.
    pub fn verify_batch(self, items: &[(&PublicKey, &[u8], &Signature)]) -> Result<(), Vec<usize>> {
        match self {
            Suite::Ed25519Blake3 => crypto::verify_batch(items),
        }
    }

    /// [`Suite::verify_batch`], with the reason of each refusal.
    pub fn verify_batch_with_errors(
        self,
        items: &[(&PublicKey, &[u8], &Signature)],
    ) -> Result<(), Vec<BatchFailure>> {
        match self {
            Suite::Ed25519Blake3 => crypto::verify_batch_with_errors(items),
        }
    }

    /// A consensus signer for `key` under this suite.
    pub fn signer(self, key: SecretKey) -> SuiteSigner {
        SuiteSigner { suite: self, key }
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

/// The transaction log's hashes (RFC 9162 section 2.1.1) under the suite.
impl LogHasher for Suite {
    fn empty_root(&self) -> Hash32 {
        match self {
            Suite::Ed25519Blake3 => Blake3Log.empty_root(),
        }
    }

    fn leaf_hash(&self, data: &[u8]) -> Hash32 {
        match self {
            Suite::Ed25519Blake3 => Blake3Log.leaf_hash(data),
        }
    }

    fn node_hash(&self, left: &Hash32, right: &Hash32) -> Hash32 {
        match self {
            Suite::Ed25519Blake3 => Blake3Log.node_hash(left, right),
        }
    }
}

/// Consensus signatures (votes, proposals, certificates) under the suite: a validator's id is
/// its public key.
impl SignatureVerifier for Suite {
    fn verify(&self, id: &ValidatorId, message: &[u8], signature: &ConsensusSignature) -> bool {
        Suite::verify(*self, &PublicKey(id.0), message, &Signature(signature.0)).is_ok()
    }
}

/// Signs consensus messages with a node key under a suite.
#[derive(Debug)]
pub struct SuiteSigner {
    suite: Suite,
    key: SecretKey,
}

impl SuiteSigner {
    /// The suite it signs under.
    pub fn suite(&self) -> Suite {
        self.suite
    }
}

impl Signer for SuiteSigner {
    fn id(&self) -> ValidatorId {
        ValidatorId(self.key.public_key().0)
    }

    fn sign(&self, message: &[u8]) -> ConsensusSignature {
        ConsensusSignature(self.suite.sign(&self.key, message).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suite_is_named_as_the_genesis_file_writes_it() {
        assert_eq!(
            serde_json::to_string(&Suite::Ed25519Blake3).unwrap(),
            "\"ed25519-blake3\""
        );
        assert_eq!(
            serde_json::from_str::<Suite>("\"ed25519-blake3\"").unwrap(),
            Suite::Ed25519Blake3
        );
        for suite in Suite::SUPPORTED {
            assert_eq!(
                serde_json::to_string(&suite).unwrap(),
                format!("\"{}\"", suite.name())
            );
        }
        let unknown = serde_json::from_str::<Suite>("\"sm2-sm3\"").unwrap_err();
        assert!(unknown.to_string().contains("sm2-sm3"), "{unknown}");
    }
}
