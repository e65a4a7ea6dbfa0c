//! The node's side of the HTTP API (`hutong_api::NodeControl`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use hutong_api::node::{NodeControl, NodeInfo, NodeRole, PendingStatus, SubmitError};
use hutong_core::crypto::PublicKey;
use hutong_core::hash::Hash32;
use hutong_core::records::AuthorityId;
use hutong_core::rules::RuleError;
use hutong_core::tx::Transaction;

use crate::admitter::Admitter;
use crate::mempool::AdmitError;
use crate::shared::{AdmissionError, Shared};

/// What the API asks of the running node.
#[derive(Debug)]
pub struct NodeService {
    pub shared: Arc<Shared>,
    pub key: PublicKey,
    /// The network's view of the connected peers and its counters, refreshed by the node.
    pub peers: Arc<std::sync::RwLock<Vec<PublicKey>>>,
    pub network_metrics: Arc<std::sync::RwLock<String>>,
    pub ready: Arc<std::sync::atomic::AtomicBool>,
    /// Submissions are admitted in batches by one thread.
    pub admitter: Admitter,
}

impl NodeControl for NodeService {
    fn submit(&self, transaction: Transaction) -> Result<Hash32, SubmitError> {
        let id = transaction.id(self.shared.store.suite());
        let error = match self.admitter.submit(transaction) {
            Ok(id) => return Ok(id),
            // Already waiting in the pool: a copy hears what the first copy heard (admitted),
            // so that submitting again is harmless.
            Err(AdmissionError::Pool(AdmitError::Duplicate(waiting))) => return Ok(waiting),
            Err(error) => error,
        };
        Err(match error {
            AdmissionError::Form(form) => SubmitError::Malformed(form),
            AdmissionError::Rule(rule @ RuleError::WriteQuotaExceeded { .. }) => {
                SubmitError::WriteQuotaExceeded {
                    detail: rule.to_string(),
                    retry_after_seconds: crate::limits::WRITE_QUOTA_RETRY_AFTER_SECONDS,
                }
            }
            AdmissionError::Rule(rule) => SubmitError::from_rule(rule, id),
            AdmissionError::AlreadyCommitted(id)
            | AdmissionError::Pool(AdmitError::Duplicate(id)) => SubmitError::Duplicate(id),
            AdmissionError::Pool(taken @ AdmitError::NonceTaken { .. }) => {
                SubmitError::NonceTaken(taken.to_string())
            }
            AdmissionError::Pool(AdmitError::Full { .. }) | AdmissionError::QueueFull => {
                SubmitError::Busy {
                    retry_after_seconds: 1,
                }
            }
            AdmissionError::Pool(share @ AdmitError::SignerShareExceeded { .. }) => {
                SubmitError::SignerShareExceeded {
                    detail: share.to_string(),
                    retry_after_seconds: 1,
                }
            }
            AdmissionError::Pool(quota @ AdmitError::WriteQuotaExceeded { .. }) => {
                SubmitError::WriteQuotaExceeded {
                    detail: quota.to_string(),
                    retry_after_seconds: crate::limits::WRITE_QUOTA_RETRY_AFTER_SECONDS,
                }
            }
            AdmissionError::ShuttingDown => {
                SubmitError::Unavailable("the node is shutting down".into())
            }
            undecided @ AdmissionError::Undecided(_) => {
                SubmitError::Unavailable(undecided.to_string())
            }
        })
    }

    fn next_nonce(&self, authority: &AuthorityId, committed_next: u64) -> u64 {
        self.shared
            .mempool
            .lock()
            .map(|mempool| mempool.next_nonce(authority, committed_next))
            .unwrap_or(committed_next)
    }

    fn pending_status(&self, id: &Hash32) -> Option<PendingStatus> {
        let mempool = self.shared.mempool.lock().ok()?;
        if let Some(received_at) = mempool.received_at(id) {
            return Some(PendingStatus::Pending { received_at });
        }
        mempool
            .rejection(id)
            .map(|(code, reason)| PendingStatus::Rejected { code, reason })
    }

    fn node_info(&self) -> NodeInfo {
        let status = &self.shared.status;
        let best = status.best_peer_height.load(Ordering::Relaxed);
        NodeInfo {
            node_key: self.key,
            role: if status.validator.load(Ordering::Relaxed) {
                NodeRole::Validator
            } else {
                NodeRole::Observer
            },
            peers: self
                .peers
                .read()
                .map(|peers| peers.clone())
                .unwrap_or_default(),
            syncing: status.syncing.load(Ordering::Relaxed),
            ready: self.ready.load(Ordering::Relaxed) && !status.syncing.load(Ordering::Relaxed),
            network_height: (best > 0).then_some(best),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    fn metrics(&self) -> String {
        let extra = self
            .network_metrics
            .read()
            .map(|text| text.clone())
            .unwrap_or_default();
        self.shared.metrics.render(&extra)
    }
}
