//! Blocks (DESIGN.md section 4): a header that is also a signed checkpoint of the transaction
//! log and of the state, the transactions, and the commit certificate.

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::crypto::{PublicKey, Signature};
use crate::hash::{Hash32, tagged};
use crate::log::{Blake3Log, root_from_leaves};
use crate::records::{Height, TimeMs};
use crate::tx::Transaction;

/// The header. Its hash, `H("hutong/header/v1", canonical(header))`, is what the validators
/// sign, so it is a signed checkpoint of the log (`log_size`, `log_root`) and of the state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockHeader {
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
    pub fn hash(&self) -> Hash32 {
        tagged("hutong/header/v1", &codec::to_canonical(self))
    }
}

/// A validator's precommit signature for the block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Precommit {
    pub validator: PublicKey,
    pub signature: Signature,
}

/// The commit certificate: precommits of more than two thirds of the voting power for the
/// block hash in one round. Consensus fills it in; its verification lives with the consensus
/// sign-bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitCertificate {
    pub round: u32,
    pub precommits: Vec<Precommit>,
}

/// A block as stored and exported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub header: BlockHeader,
    pub transactions: Vec<Transaction>,
    pub certificate: CommitCertificate,
}

impl Block {
    pub fn hash(&self) -> Hash32 {
        self.header.hash()
    }
}

/// The `tx_root` of a list of transactions' canonical bytes.
pub fn tx_root<B: AsRef<[u8]>>(transactions: &[B]) -> Hash32 {
    root_from_leaves(&Blake3Log, transactions)
}
