//! What nodes say to each other, in the ledger's canonical encoding (postcard).
//!
//! Gossip carries transaction batches and consensus messages; request-response carries
//! catch-up (blocks with their certificates, by height range) and a proposal's transactions
//! that a node lacks. Every message is decoded with a size bound first; a peer that sends
//! bytes that do not decode is penalised.

use serde::{Deserialize, Serialize};

use hutong_consensus::{SignedProposal, SignedVote};
use hutong_core::block::{Block, BlockHeader};
use hutong_core::codec::{self, CodecError};
use hutong_core::hash::Hash32;
use hutong_core::tx::Transaction;

/// The value consensus agrees on: a block hash.
pub type Value = [u8; 32];

/// A proposed block: the header whose hash is the consensus value, and its transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposedBlock {
    pub header: BlockHeader,
    pub transactions: Vec<Transaction>,
    /// The equivocation evidence the block records (ADR 0009).
    pub evidence: Vec<hutong_core::evidence::Evidence>,
}

/// A proposed block as it travels: the header, the ids of its transactions in block order
/// (each validator already holds most of them from the transaction gossip and asks the
/// proposer for the others), and its evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactBlock {
    pub header: BlockHeader,
    pub transaction_ids: Vec<Hash32>,
    pub evidence: Vec<hutong_core::evidence::Evidence>,
}

/// Messages on the consensus topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsensusMessage {
    /// A signed proposal with the block it proposes in compact form (the block's header
    /// hash is the value).
    Proposal {
        proposal: SignedProposal<Value>,
        block: Box<CompactBlock>,
    },
    Vote(SignedVote<Value>),
    /// The sender's committed height, so that a node behind learns it must catch up.
    Status {
        height: u64,
    },
}

/// What travels on the consensus topic: a message with the time it was sent. Gossip drops
/// messages whose bytes it has seen before; the time makes a deliberate re-send (after a
/// partition heals, or for a peer that restarted) new bytes, so that it goes through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsensusEnvelope {
    pub sent_at_ms: u64,
    pub message: ConsensusMessage,
}

/// Messages on the transaction topic: transactions travel in batches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionBatch {
    /// Canonical bytes of each transaction.
    pub transactions: Vec<Vec<u8>>,
}

/// Requests over request-response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Committed blocks from `from` on, at most `count` (the responder may send fewer).
    Blocks { from: u64, count: u32 },
    /// Transactions by id (those of a proposal the asker lacks).
    Transactions { ids: Vec<Hash32> },
}

/// Answers over request-response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    Blocks(Vec<Block>),
    /// Canonical bytes of the asked transactions the responder holds (it may hold fewer).
    Transactions(Vec<Vec<u8>>),
    /// The request could not be served (with why).
    Refused(String),
}

/// Encodes any message.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    codec::to_canonical(message)
}

/// Decodes a message of at most `limit_bytes`.
pub fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    limit_bytes: usize,
) -> Result<T, CodecError> {
    if bytes.len() > limit_bytes {
        return Err(CodecError::TooLarge {
            size_bytes: bytes.len(),
            limit_bytes,
        });
    }
    codec::from_stored(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hutong_consensus::{Signature, ValidatorId, Vote, VoteType};

    #[test]
    fn consensus_envelopes_round_trip() {
        let vote = SignedVote {
            vote: Vote {
                vote_type: VoteType::Prevote,
                height: 3,
                round: 1,
                value: Some([7u8; 32]),
                validator: ValidatorId([1u8; 32]),
            },
            signature: Signature([2u8; 64]),
        };
        for message in [
            ConsensusMessage::Status { height: 9 },
            ConsensusMessage::Vote(vote),
        ] {
            let envelope = ConsensusEnvelope {
                sent_at_ms: 1,
                message,
            };
            let bytes = encode(&envelope);
            assert_eq!(
                decode::<ConsensusEnvelope>(&bytes, 1 << 20).unwrap(),
                envelope
            );
        }
        let batch = TransactionBatch {
            transactions: vec![vec![1, 2, 3]],
        };
        assert_eq!(
            decode::<TransactionBatch>(&encode(&batch), 1 << 20).unwrap(),
            batch
        );
        for request in [
            SyncRequest::Blocks { from: 4, count: 2 },
            SyncRequest::Transactions {
                ids: vec![Hash32([3; 32])],
            },
        ] {
            assert_eq!(
                decode::<SyncRequest>(&encode(&request), 1024).unwrap(),
                request
            );
        }
        let response = SyncResponse::Transactions(vec![vec![4, 5]]);
        assert_eq!(
            decode::<SyncResponse>(&encode(&response), 1024).unwrap(),
            response
        );
    }
}
