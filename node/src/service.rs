//! The node's side of the HTTP API (`hutong_api::NodeControl`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use hutong_api::node::{NodeControl, NodeInfo, NodeRole, PendingStatus, Staleness, SubmitError};
use hutong_core::crypto::PublicKey;
use hutong_core::hash::Hash32;
use hutong_core::records::{AuthorityId, TimeMs};
use hutong_core::rules::RuleError;
use hutong_core::tx::Transaction;

use crate::admitter::Admitter;
use crate::mempool::AdmitError;
use crate::shared::{AdmissionError, Shared, now_ms};

/// What the API asks of the running node.
#[derive(Debug)]
pub struct NodeService {
    pub shared: Arc<Shared>,
    pub key: PublicKey,
    /// The network's view of the connected peers and its counters, refreshed by the node.
    pub peers: Arc<std::sync::RwLock<Vec<PublicKey>>>,
    pub network_metrics: Arc<std::sync::RwLock<String>>,
    pub ready: Arc<std::sync::atomic::AtomicBool>,
    /// The genesis file's `freshness.proof_age_ms_max`: a last block older than this makes
    /// the node's answers stale.
    pub proof_age_ms_max: u64,
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

    fn staleness(&self) -> Option<Staleness> {
        let store = &self.shared.store;
        let head = match store.head() {
            Ok(head) => head,
            Err(error) => {
                tracing::warn!(%error, "reading the head to judge staleness");
                return Some(Staleness::NoPeers);
            }
        };
        let peers = self.peers.read().map(|peers| peers.len()).unwrap_or(0);
        // The registry is read only for a node without peers (the rule needs it then alone),
        // so that a connected node's licence requests cost no read of it.
        let others = if peers > 0 {
            0
        } else {
            store
                .registry_for(head.header.height.saturating_add(1))
                .map(|registry| {
                    registry
                        .validators()
                        .filter(|node| node.key != self.key)
                        .count()
                })
                .unwrap_or(usize::MAX)
        };
        staleness_of(
            now_ms(),
            head.header.time,
            self.proof_age_ms_max,
            peers,
            others,
        )
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

/// The staleness rule (ADR 0037), apart from the clock and the network: a node of a network
/// with other validators that is connected to none of its peers, or whose last block is older
/// than `limit_ms` at `now`, may be answering from a chain that has moved on.
pub fn staleness_of(
    now: TimeMs,
    last_block_time: TimeMs,
    limit_ms: u64,
    peers: usize,
    other_validators: usize,
) -> Option<Staleness> {
    if peers == 0 && other_validators > 0 {
        return Some(Staleness::NoPeers);
    }
    let age_ms = now.saturating_sub(last_block_time);
    (age_ms > limit_ms).then_some(Staleness::LastBlockTooOld {
        block_time: last_block_time,
        age_ms,
        limit_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::staleness_of;
    use hutong_api::node::Staleness;

    const LIMIT: u64 = 300_000;
    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn a_node_without_peers_in_a_network_of_several_is_stale() {
        assert_eq!(
            staleness_of(NOW, NOW, LIMIT, 0, 3),
            Some(Staleness::NoPeers)
        );
        assert_eq!(staleness_of(NOW, NOW, LIMIT, 1, 3), None);
    }

    #[test]
    fn the_only_validator_needs_no_peer() {
        assert_eq!(staleness_of(NOW, NOW - 1_000, LIMIT, 0, 0), None);
    }

    #[test]
    fn a_last_block_older_than_the_proof_age_is_stale() {
        assert_eq!(staleness_of(NOW, NOW - LIMIT, LIMIT, 3, 3), None);
        assert_eq!(
            staleness_of(NOW, NOW - LIMIT - 1, LIMIT, 3, 3),
            Some(Staleness::LastBlockTooOld {
                block_time: NOW - LIMIT - 1,
                age_ms: LIMIT + 1,
                limit_ms: LIMIT,
            })
        );
        // A block from ahead of this clock (skew) is not old.
        assert_eq!(staleness_of(NOW, NOW + 5_000, LIMIT, 3, 3), None);
    }
}
