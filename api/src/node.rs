//! What only a running node knows: its mempool, its peers, whether it is in sync, its metrics.
//! The node implements [`NodeControl`]; [`crate::testkit::StoreNode`] implements it over a
//! store for tests, benchmarks and the explorer example.

use axum::http::StatusCode;
use hutong_core::crypto::PublicKey;
use hutong_core::hash::Hash32;
use hutong_core::records::{Height, TimeMs};
use hutong_core::rules::RuleError;
use hutong_core::tx::{FormError, Transaction};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::problem::ApiError;

/// The node's side of the API. Every method is called from request handlers and must answer
/// quickly without blocking on the network: submitting hands the transaction to the mempool
/// (through a bounded queue) and returns; the rest read state the node keeps current.
pub trait NodeControl: Send + Sync + 'static {
    /// Admits a transaction whose form the API has already checked (size, encoding, fields).
    /// The node runs the ledger's rules against its latest state (as in
    /// `hutong_core::rules`) and either queues it for a block, returning its id, or says why
    /// not.
    fn submit(&self, transaction: Transaction) -> Result<Hash32, SubmitError>;

    /// A transaction the node knows of but has not committed: waiting in the mempool, or
    /// rejected (by admission or when a block was built) with the reason. `None` when the node
    /// has never seen it or has forgotten it (the API then answers 404).
    fn pending_status(&self, id: &Hash32) -> Option<PendingStatus>;

    /// Role, peers, sync state, readiness.
    fn node_info(&self) -> NodeInfo;

    /// The node's own metrics in the Prometheus text format (the API appends its own).
    fn metrics(&self) -> String;

    /// Why the node's answers may not be what the network holds now, if they may not (ADR
    /// 0037). While it is `Some`, the verifiers' routes answer 503 `stale` and `/readyz`
    /// fails: a verifier is never handed a proof from a node cut off from the chain.
    fn staleness(&self) -> Option<Staleness> {
        None
    }

    /// The nonce `authority`'s next transaction should carry when submitted to this node:
    /// `committed_next` (one above its last committed nonce), or beyond it by the run of that
    /// signer's transactions waiting in the node's mempool.
    fn next_nonce(
        &self,
        authority: &hutong_core::records::AuthorityId,
        committed_next: u64,
    ) -> u64 {
        let _ = authority;
        committed_next
    }
}

/// Why a node's answers may be out of date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Staleness {
    /// Connected to no peer, in a network of more than one node.
    NoPeers,
    /// Its last block is older than the genesis file's `freshness.proof_age_ms_max`: the
    /// network has stopped, or the node stopped hearing it.
    LastBlockTooOld {
        block_time: TimeMs,
        age_ms: u64,
        limit_ms: u64,
    },
}

impl std::fmt::Display for Staleness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Staleness::NoPeers => write!(f, "the node is connected to no peer"),
            Staleness::LastBlockTooOld {
                age_ms, limit_ms, ..
            } => write!(
                f,
                "the node's last block is {age_ms} ms old, more than the {limit_ms} ms a proof \
                 may be (the genesis file's freshness.proof_age_ms_max)"
            ),
        }
    }
}

/// A transaction known to the node and not committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum PendingStatus {
    /// In the mempool since `received_at` (ms since the Unix epoch).
    Pending { received_at: TimeMs },
    /// Rejected: `code` is the rule's stable code (`RuleError::code`), `reason` a sentence.
    Rejected { code: String, reason: String },
}

/// Whether the node votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    Validator,
    Observer,
}

/// What the node says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeInfo {
    /// The node's key (its libp2p identity and consensus key), hexadecimal.
    #[schema(value_type = String)]
    pub node_key: PublicKey,
    pub role: NodeRole,
    /// Keys of the peers it is connected to.
    #[schema(value_type = Vec<String>)]
    pub peers: Vec<PublicKey>,
    /// Catching up with its peers: its answers may lag the network.
    pub syncing: bool,
    /// Ready to serve (store checked, network started). `/readyz` answers 503 until it is.
    pub ready: bool,
    /// The highest height the node has heard of from its peers, when known.
    pub network_height: Option<Height>,
    /// The software version.
    pub version: String,
}

/// Why a transaction was not admitted. The API maps each variant to one status code:
///
/// | variant | status | code |
/// |---|---|---|
/// | `Malformed` | 400 | `malformed_transaction` |
/// | `TooLarge` | 413 | `transaction_too_large` |
/// | `Unauthorised` | 403 | the rule's code (`unknown_authority`, `bad_signature`, `key_not_valid`, ...) |
/// | `Rejected` | 422 | the rule's code |
/// | `Duplicate` | 409 | `duplicate_transaction` |
/// | `NonceTaken` | 409 | `nonce_taken` |
/// | `SignerShareExceeded` | 429 + `Retry-After` | `signer_share_exceeded` |
/// | `WriteQuotaExceeded` | 429 + `Retry-After` | `write_quota_exceeded` |
/// | `Busy` | 503 + `Retry-After` | `mempool_full` |
/// | `Unavailable` | 503 | `not_ready` |
///
/// 403 is for a transaction whose signer the ledger does not recognise or whose signature does
/// not verify: the request is well formed but its author is not who may write it. A signer that
/// is known but lacks the role or the grant is a rule rejection (422), since the signature is
/// good and the rules say no.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("the transaction is malformed: {0}")]
    Malformed(FormError),
    #[error("the transaction is {size_bytes} bytes; the limit is {limit_bytes}")]
    TooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    #[error("the signer is not authorised: {0}")]
    Unauthorised(RuleError),
    #[error("the rules reject the transaction: {0}")]
    Rejected(RuleError),
    #[error("transaction {0} is already pending or committed")]
    Duplicate(Hash32),
    #[error("{0}")]
    NonceTaken(String),
    /// The signer holds its whole share of the node's mempool; `detail` names the share.
    #[error("{detail}")]
    SignerShareExceeded {
        detail: String,
        retry_after_seconds: u64,
    },
    /// The signer has written, or has waiting, all that its write quota on the ledger takes in
    /// the current window (ADR 0029); `detail` names the quota and the window's last height.
    #[error("{detail}")]
    WriteQuotaExceeded {
        detail: String,
        retry_after_seconds: u64,
    },
    #[error("the mempool is full; retry in {retry_after_seconds} s")]
    Busy { retry_after_seconds: u64 },
    #[error("the node cannot accept transactions now: {0}")]
    Unavailable(String),
}

impl SubmitError {
    /// Sorts a rule rejection of transaction `id` into the variant the API maps it to (the node
    /// calls this on what its admission check returns).
    pub fn from_rule(error: RuleError, id: Hash32) -> Self {
        match error {
            RuleError::Replay(_) | RuleError::DuplicateInBlock(_) => SubmitError::Duplicate(id),
            RuleError::UnknownAuthority(_)
            | RuleError::NoKeyAtHeight { .. }
            | RuleError::BadSignature { .. }
            | RuleError::EndorserNotGovernor(_)
            | RuleError::UnexpectedEndorser(_) => SubmitError::Unauthorised(error),
            other => SubmitError::Rejected(other),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        let detail = error.to_string();
        match error {
            SubmitError::Malformed(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "malformed_transaction", detail)
            }
            SubmitError::TooLarge { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "transaction_too_large",
                detail,
            ),
            SubmitError::Unauthorised(rule) => {
                ApiError::new(StatusCode::FORBIDDEN, rule.code(), detail)
            }
            SubmitError::Rejected(rule) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, rule.code(), detail)
            }
            SubmitError::Duplicate(_) => {
                ApiError::new(StatusCode::CONFLICT, "duplicate_transaction", detail)
            }
            SubmitError::NonceTaken(_) => {
                ApiError::new(StatusCode::CONFLICT, "nonce_taken", detail)
            }
            SubmitError::SignerShareExceeded {
                retry_after_seconds,
                ..
            } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "signer_share_exceeded",
                detail,
            )
            .retry_after(retry_after_seconds),
            SubmitError::WriteQuotaExceeded {
                retry_after_seconds,
                ..
            } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "write_quota_exceeded",
                detail,
            )
            .retry_after(retry_after_seconds),
            SubmitError::Busy {
                retry_after_seconds,
            } => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "mempool_full", detail)
                .retry_after(retry_after_seconds),
            SubmitError::Unavailable(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", detail).retry_after(1)
            }
        }
    }
}
