//! Blocks (docs/design.md section 4): a header that is also a signed checkpoint of the transaction
//! log and of the state, the transactions, and the commit certificate.

use serde::{Deserialize, Serialize};

use hutong_consensus::{
    CertificateError, CommitSignature, Signature as ConsensusSignature, Validator, ValidatorId,
    ValidatorSet, ValidatorSetError, verify_commit_certificate,
};

use crate::codec;
use crate::crypto::{self, PublicKey};
use crate::hash::Hash32;
use crate::log::{self, InclusionProof, LogError, LogHasher, MemoryLogStore, root_from_leaves};
use crate::records::NodeRegistry;
use crate::records::{Height, TimeMs};
use crate::suite::Suite;
use crate::tx::Transaction;

/// The protocol version of the blocks this build makes and accepts: what the rules, the block
/// format and the proofs of a block are. A header carries it, so that a node or a verifier
/// meeting a block of a version it does not implement refuses it by name rather than
/// misreading it (ADR 0016). 1: the first recorded version.
///
/// A later version will come with a governance record that schedules it from a height on, so
/// that nodes upgrade before that height, not at one moment; until then every block is 1.
pub const PROTOCOL_VERSION: u32 = 1;

/// The header. Its hash, `H("hutong/header/v1", canonical(header))`, is what the validators
/// sign, so it is a signed checkpoint of the log (`log_size`, `log_root`) and of the state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockHeader {
    /// [`PROTOCOL_VERSION`] for every block this build makes or accepts.
    pub protocol_version: u32,
    pub chain_id: String,
    pub height: Height,
    /// Agreed time, strictly greater than the previous block's.
    pub time: TimeMs,
    /// The previous header's hash (for height 1, the genesis header's).
    pub prev_hash: Hash32,
    /// RFC 9162 root (blake3) over this block's transactions' canonical bytes.
    pub tx_root: Hash32,
    /// Number of transactions in the log after this block.
    pub log_size: u64,
    /// RFC 9162 root of the whole log at `log_size`.
    pub log_root: Hash32,
    /// Sparse-Merkle root of the state after this block.
    pub state_root: Hash32,
    /// Hash of the validator set that signs this block (see `NodeRegistry::validators_hash`).
    pub validators_hash: Hash32,
    /// The validator that proposed it (all zero for the genesis header).
    pub proposer: PublicKey,
}

impl BlockHeader {
    /// `T("hutong/header/v1", canonical(header))` under the chain's suite.
    pub fn hash(&self, suite: Suite) -> Hash32 {
        suite.tagged("hutong/header/v1", &codec::to_canonical(self))
    }
}

/// The commit certificate: precommits of more than two thirds of the voting power for the
/// block hash in one round, as consensus produces it (see `docs/consensus.md` for the bytes
/// each precommit signs).
pub type CommitCertificate = hutong_consensus::CommitCertificate<[u8; 32]>;

/// A block as stored and exported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub header: BlockHeader,
    pub transactions: Vec<Transaction>,
    pub certificate: CommitCertificate,
    /// Equivocation evidence the block records (ADR 0009), at most
    /// [`crate::limits::EVIDENCE_PER_BLOCK_MAX`] items. Its effect, one record per item in
    /// the state, is committed by the header's `state_root`; the header has no field of its own.
    #[serde(default)]
    pub evidence: Vec<crate::evidence::Evidence>,
}

impl Block {
    pub fn hash(&self, suite: Suite) -> Hash32 {
        self.header.hash(suite)
    }
}

/// The `tx_root` of a list of transactions' canonical bytes: the RFC 9162 root of a log of
/// them alone, under the chain's suite.
pub fn tx_root<B: AsRef<[u8]>>(suite: Suite, transactions: &[B]) -> Hash32 {
    root_from_leaves(&suite, transactions)
}

/// The inclusion proof of the transaction at `index` of a block under its `tx_root`: the
/// RFC 9162 path of its leaf in the tree of the block's transactions' canonical bytes, a tree
/// of `transactions.len()` leaves. What a transaction proof carries to fix a transaction's
/// place in its block (docs/proofs.md, section 8).
///
/// Errors: [`LogError::LeafIndexBeyondSize`] when `index` is not below the count.
pub fn tx_inclusion<B: AsRef<[u8]>>(
    suite: Suite,
    transactions: &[B],
    index: u64,
) -> Result<InclusionProof, LogError> {
    let leaf_hashes: Vec<Hash32> = transactions
        .iter()
        .map(|bytes| suite.leaf_hash(bytes.as_ref()))
        .collect();
    let mut nodes = MemoryLogStore::new();
    let appended = log::append(&suite, &nodes, 0, &leaf_hashes)?;
    nodes.insert_nodes(appended.nodes);
    log::inclusion_proof(&suite, &nodes, index, appended.new_size)
}

/// The consensus validator set of a node registry (validators only, in key order).
pub fn validator_set(registry: &NodeRegistry) -> Result<ValidatorSet, ValidatorSetError> {
    ValidatorSet::new(
        registry
            .validators()
            .map(|node| Validator {
                id: ValidatorId(node.key.0),
                voting_power: node.power,
            })
            .collect(),
    )
}

/// Why a block's certificate does not prove it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockCertificateError {
    #[error("the certificate is for height {found}, the block is at {expected}")]
    WrongHeight { expected: Height, found: Height },
    #[error("the certificate signs block {found}, not this block ({expected})")]
    WrongBlock { expected: Hash32, found: Hash32 },
    #[error("the validator set of this height is unusable: {0}")]
    ValidatorSet(#[from] ValidatorSetError),
    #[error(transparent)]
    Certificate(#[from] CertificateError),
}

/// Checks that `certificate` commits `header`, signed by more than two thirds of the voting
/// power of `registry` (the registry in force at the header's height).
pub fn verify_block_certificate(
    suite: Suite,
    header: &BlockHeader,
    certificate: &CommitCertificate,
    registry: &NodeRegistry,
) -> Result<(), BlockCertificateError> {
    if certificate.height != header.height {
        return Err(BlockCertificateError::WrongHeight {
            expected: header.height,
            found: certificate.height,
        });
    }
    let hash = header.hash(suite);
    if certificate.value != hash.0 {
        return Err(BlockCertificateError::WrongBlock {
            expected: hash,
            found: Hash32(certificate.value),
        });
    }
    let set = validator_set(registry)?;
    verify_commit_certificate(certificate, &set, &header.chain_id, &suite)?;
    Ok(())
}

/// Builds a certificate for `header` signed by `signers` (all precommitting in `round`).
pub fn certify(
    suite: Suite,
    header: &BlockHeader,
    round: u32,
    signers: &[&crypto::SecretKey],
) -> CommitCertificate {
    let mut certificate = CommitCertificate {
        height: header.height,
        round,
        value: header.hash(suite).0,
        signatures: Vec::new(),
    };
    let message = certificate.sign_bytes(&header.chain_id);
    let mut signatures: Vec<CommitSignature> = signers
        .iter()
        .map(|key| CommitSignature {
            validator: ValidatorId(key.public_key().0),
            signature: ConsensusSignature(suite.sign(key, &message).0),
        })
        .collect();
    signatures.sort_by_key(|signature| signature.validator);
    certificate.signatures = signatures;
    certificate
}

/// Where a committed transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLocation {
    pub height: Height,
    /// Position in its block.
    pub index: u32,
    /// Position in the transaction log (its leaf index).
    pub log_index: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transaction_of_a_block_is_proved_under_its_tx_root_at_its_index_only() {
        let suite = crate::testkit::SUITE;
        for count in 1..=17u64 {
            let transactions: Vec<Vec<u8>> =
                (0..count).map(|n| format!("tx {n}").into_bytes()).collect();
            let root = tx_root(suite, &transactions);
            for index in 0..count {
                let proof = tx_inclusion(suite, &transactions, index).expect("in the block");
                assert_eq!((proof.leaf_index, proof.tree_size), (index, count));
                let leaf = suite.leaf_hash(&transactions[index as usize]);
                proof.verify(&suite, &leaf, &root).expect("verifies");
                // The same path does not place another transaction of the block there.
                if count > 1 {
                    let other = suite.leaf_hash(&transactions[((index + 1) % count) as usize]);
                    assert!(proof.verify(&suite, &other, &root).is_err());
                }
            }
            assert!(tx_inclusion(suite, &transactions, count).is_err());
        }
    }
}
