//! State shared between the consensus engine, the admission of transactions and the HTTP API.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, mpsc};

use hutong_core::hash::Hash32;
use hutong_core::limits::NONCE_AHEAD_MAX;
use hutong_core::quota::Allowance;
use hutong_core::records::{AuthorityId, Record, RecordKey};
use hutong_core::rules::RuleError;
use hutong_core::tx::{FormError, Transaction};
use hutong_ledger::store::Store;

use crate::mempool::{AdmitError, Mempool};
use crate::metrics::Metrics;

/// What the node knows about itself, for `/v1/node` and `/readyz`.
#[derive(Debug, Default)]
pub struct Status {
    pub round: AtomicU64,
    pub peers: AtomicU64,
    /// Highest committed height a peer has reported.
    pub best_peer_height: AtomicU64,
    pub syncing: AtomicBool,
    /// Whether this node's key is in the validator set of the current height.
    pub validator: AtomicBool,
}

/// Why a transaction was not admitted.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error(transparent)]
    Form(#[from] FormError),
    #[error(transparent)]
    Rule(RuleError),
    #[error("transaction {0} is already committed")]
    AlreadyCommitted(Hash32),
    #[error(transparent)]
    Pool(#[from] AdmitError),
    #[error("too many transactions are waiting for admission; retry later")]
    QueueFull,
    #[error("the node is shutting down")]
    ShuttingDown,
    #[error(
        "the node took too long to decide on transaction {0}; look it up by its id before submitting it again"
    )]
    Undecided(Hash32),
}

impl AdmissionError {
    /// A stable code for metrics and the API.
    pub fn code(&self) -> &'static str {
        match self {
            AdmissionError::Form(_) => "malformed",
            AdmissionError::Rule(error) => error.code(),
            AdmissionError::AlreadyCommitted(_) => "replay",
            AdmissionError::Pool(AdmitError::Duplicate(_)) => "duplicate",
            AdmissionError::Pool(AdmitError::NonceTaken { .. }) => "nonce_taken",
            AdmissionError::Pool(AdmitError::Full { .. }) => "busy",
            AdmissionError::Pool(AdmitError::SignerShareExceeded { .. }) => "signer_share_exceeded",
            AdmissionError::Pool(AdmitError::WriteQuotaExceeded { .. }) => "write_quota_exceeded",
            AdmissionError::QueueFull => "busy",
            AdmissionError::ShuttingDown => "shutting_down",
            AdmissionError::Undecided(_) => "undecided",
        }
    }
}

/// The node's shared state.
#[derive(Debug)]
pub struct Shared {
    pub store: Arc<Store>,
    pub mempool: Mutex<Mempool>,
    /// Woken when the mempool gains transactions (a waiting proposer proposes).
    pub mempool_changed: Notify,
    pub metrics: Metrics,
    pub status: Status,
    /// Transactions admitted here, to be gossiped in batches.
    pub gossip: mpsc::Sender<Vec<u8>>,
    pub accepting: AtomicBool,
}

/// Milliseconds since the Unix epoch by this machine's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

/// A transaction on its way through admission.
struct Candidate {
    id: Hash32,
    transaction: Transaction,
    bytes: Vec<u8>,
}

impl Shared {
    /// Admits transactions: form, not already waiting or committed, room in the pool, then
    /// signatures (one batch for all of them, with the strict single check as fallback) and
    /// rules against the committed state, each as if it were alone in the next block. The
    /// results are in the order of `transactions`; each is decided as if it came alone.
    /// `gossip` sends the admitted ones on to the peers (false for transactions that
    /// arrived by gossip: gossipsub forwards those itself).
    pub fn admit_batch(
        &self,
        transactions: Vec<Transaction>,
        gossip: bool,
    ) -> Vec<Result<Hash32, AdmissionError>> {
        if !self.accepting.load(Ordering::Relaxed) {
            return transactions
                .iter()
                .map(|_| Err(AdmissionError::ShuttingDown))
                .collect();
        }
        let mut stages: Vec<Result<Candidate, AdmissionError>> = transactions
            .into_iter()
            .map(|transaction| {
                let bytes = transaction.check_size_and_form()?;
                let id = hutong_core::tx::tx_id_of_bytes(self.store.suite(), &bytes);
                Ok(Candidate {
                    id,
                    transaction,
                    bytes,
                })
            })
            .collect();
        self.screen(&mut stages);
        self.check_rules(&mut stages);
        let results = self.insert(stages);
        let mut admitted = false;
        for result in &results {
            match result {
                Ok(_) => admitted = true,
                Err(error) => self.metrics.reject_transaction(error.code()),
            }
        }
        if admitted {
            self.mempool_changed.notify_one();
        }
        results
            .into_iter()
            .map(|result| {
                result.map(|(id, bytes)| {
                    if gossip && self.gossip.try_send(bytes).is_err() {
                        // The gossip queue is full: the peers will get the transaction in
                        // the block that commits it.
                        self.metrics.reject_message("gossip_queue_full");
                    }
                    id
                })
            })
            .collect()
    }

    /// The nonce `signer`'s next transaction must carry by the committed state (`None` for an
    /// unknown signer, or when the store cannot say).
    pub fn committed_next_nonce(&self, signer: &AuthorityId) -> Option<u64> {
        match self.store.record(&RecordKey::Authority(signer.clone())) {
            Ok(Some(Record::Authority(authority))) => Some(authority.last_nonce.saturating_add(1)),
            _ => None,
        }
    }

    /// What `signer`'s write quota still allows at the next height by the committed state
    /// (ADR 0029); `None` when no quota applies, or when the store cannot say (the rules then
    /// decide).
    pub fn write_allowance(&self, signer: &AuthorityId) -> Option<Allowance> {
        let height = self.store.height().ok()?.saturating_add(1);
        hutong_core::rules::write_allowance(self.store.as_ref(), signer, height)
            .ok()
            .flatten()
    }

    /// How many more counted transactions of `signer` the next block's window takes (`None`:
    /// no quota applies), for the block builder.
    pub fn quota_room(&self, signer: &AuthorityId) -> Option<u64> {
        self.write_allowance(signer)
            .map(|allowance| allowance.remaining())
    }

    /// The cheap checks first: not already waiting (in the pool or earlier in the batch),
    /// within the signer's share of the pool and room in it, within what its write quota still
    /// takes (counting what it has waiting), not already committed.
    fn screen(&self, stages: &mut [Result<Candidate, AdmissionError>]) {
        let Ok(mempool) = self.mempool.lock() else {
            for stage in stages.iter_mut() {
                *stage = Err(AdmissionError::ShuttingDown);
            }
            return;
        };
        let mut seen = std::collections::HashSet::new();
        for stage in stages.iter_mut() {
            let Ok(candidate) = stage else { continue };
            let id = candidate.id;
            if mempool.contains(&id) || !seen.insert(id) {
                *stage = Err(AdmitError::Duplicate(id).into());
            } else if let Err(full) =
                mempool.has_room(&candidate.transaction.payload.signer, candidate.bytes.len())
            {
                *stage = Err(full.into());
            } else if let Some(gap) = self.beyond_window(&mempool, &candidate.transaction) {
                *stage = Err(AdmissionError::Rule(gap));
            } else if let Err(quota) = {
                let signer = &candidate.transaction.payload.signer;
                // The allowance first, then the nonce (see `check_write_quota`).
                let allowance = self.write_allowance(signer);
                let committed_next = self.committed_next_nonce(signer).unwrap_or(0);
                mempool.check_write_quota(&candidate.transaction, allowance, committed_next)
            } {
                *stage = Err(quota.into());
            }
        }
        drop(mempool);
        for stage in stages.iter_mut() {
            let Ok(candidate) = stage else { continue };
            match self.store.transaction_location(&candidate.id) {
                Ok(None) => {}
                Ok(Some(_)) => *stage = Err(AdmissionError::AlreadyCommitted(candidate.id)),
                Err(error) => *stage = Err(AdmissionError::Rule(RuleError::State(error.into()))),
            }
        }
    }

    /// A nonce more than [`NONCE_AHEAD_MAX`] beyond the run of its signer's nonces that the
    /// committed state and the mempool hold without a gap: refused, so that the pool never
    /// holds more than that window after a gap. (The ledger's check then takes any nonce
    /// ahead as waiting.)
    fn beyond_window(&self, mempool: &Mempool, transaction: &Transaction) -> Option<RuleError> {
        let payload = &transaction.payload;
        let committed_next = self.committed_next_nonce(&payload.signer)?;
        let expected = mempool.next_nonce(&payload.signer, committed_next);
        (payload.nonce > expected.saturating_add(NONCE_AHEAD_MAX)).then(|| RuleError::NonceGap {
            authority: payload.signer.clone(),
            expected,
            found: payload.nonce,
        })
    }

    /// Signatures (one batch) and rules against the committed state.
    fn check_rules(&self, stages: &mut [Result<Candidate, AdmissionError>]) {
        let checked: Vec<Result<(), RuleError>> = {
            let candidates: Vec<&Transaction> = stages
                .iter()
                .filter_map(|stage| stage.as_ref().ok().map(|c| &c.transaction))
                .collect();
            if candidates.is_empty() {
                return;
            }
            self.store
                .check_transactions(&candidates, now_ms(), u64::MAX)
        };
        let mut checked = checked.into_iter();
        let mut rejected = Vec::new();
        for stage in stages.iter_mut() {
            let Ok(candidate) = stage else { continue };
            // One result per candidate; a missing one is treated as a failure of the store.
            let result = checked.next().unwrap_or_else(|| {
                Err(RuleError::State(hutong_core::rules::StateError(
                    "the store returned fewer admission results than transactions".into(),
                )))
            });
            if let Err(rule) = result {
                rejected.push((candidate.id, rule.code(), rule.to_string()));
                *stage = Err(AdmissionError::Rule(rule));
            }
        }
        if !rejected.is_empty()
            && let Ok(mut mempool) = self.mempool.lock()
        {
            for (id, code, message) in rejected {
                mempool.remember_rejection(id, code, message);
            }
        }
    }

    /// Inserts what passed into the pool; returns each transaction's id and bytes (to
    /// gossip) or why it was not admitted.
    fn insert(
        &self,
        stages: Vec<Result<Candidate, AdmissionError>>,
    ) -> Vec<Result<(Hash32, Vec<u8>), AdmissionError>> {
        let Ok(mut mempool) = self.mempool.lock() else {
            return stages
                .iter()
                .map(|_| Err(AdmissionError::ShuttingDown))
                .collect();
        };
        let now = now_ms();
        let results = stages
            .into_iter()
            .map(|stage| {
                let candidate = stage?;
                // Again under the lock: the batch's earlier transactions of the signer are
                // waiting now.
                let signer = &candidate.transaction.payload.signer;
                let allowance = self.write_allowance(signer);
                let committed_next = self.committed_next_nonce(signer).unwrap_or(0);
                mempool.check_write_quota(&candidate.transaction, allowance, committed_next)?;
                let evicted = mempool.insert_at(
                    candidate.id,
                    candidate.transaction,
                    candidate.bytes.len(),
                    now,
                )?;
                for _ in &evicted {
                    self.metrics
                        .reject_transaction(crate::mempool::EVICTED_CODE);
                }
                Ok((candidate.id, candidate.bytes))
            })
            .collect();
        self.metrics.mempool_transactions.set(mempool.len() as i64);
        self.metrics.mempool_bytes.set(mempool.bytes() as i64);
        results
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hutong_core::crypto::Signature;
    use hutong_core::testkit::Fixture;
    use hutong_ledger::store::MemoryBackend;

    use crate::mempool::MempoolLimits;

    /// A node's shared state on an in-memory store of `fixture`'s genesis, with the receiving
    /// end of its gossip queue.
    pub(crate) fn shared_for(fixture: &Fixture) -> (Arc<Shared>, mpsc::Receiver<Vec<u8>>) {
        let store = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis)
            .expect("an in-memory store");
        let (gossip, gossiped) = mpsc::channel(1024);
        let shared = Shared {
            store: Arc::new(store),
            mempool: Mutex::new(Mempool::new(MempoolLimits::default())),
            mempool_changed: Notify::new(),
            metrics: Metrics::new(),
            status: Status::default(),
            gossip,
            accepting: AtomicBool::new(true),
        };
        (Arc::new(shared), gossiped)
    }

    #[test]
    fn a_signer_held_to_a_write_quota_is_admitted_what_the_window_takes() {
        use hutong_core::quota::{QuotaScope, WriteQuota};
        use hutong_ledger::store::Mode;
        let mut fixture = Fixture::new();
        let (shared, _gossiped) = shared_for(&fixture);
        let set = fixture.governance(
            hutong_core::tx::TxBody::SetWriteQuota {
                scope: QuotaScope::Authority(AuthorityId::from("qd-approval")),
                quota: Some(WriteQuota::Limited {
                    max_transactions: 3,
                    window_blocks: 1_000,
                }),
            },
            3,
        );
        let head = shared.store.head().unwrap().header;
        let execution = shared
            .store
            .execute(
                head.time + 1,
                fixture.node_keys[0].public_key(),
                vec![set],
                Mode::Verify,
            )
            .unwrap();
        let certificate = fixture.certify(&execution.header);
        shared.store.commit(execution, certificate).unwrap();

        // Four in one batch: three are admitted, the fourth is beyond what waits.
        let flood: Vec<Transaction> = (1..=4)
            .map(|number| fixture.issue_business_licence("qd-approval", "370200", number))
            .collect();
        let results = shared.admit_batch(flood.clone(), false);
        assert!(results[..3].iter().all(Result::is_ok), "{results:?}");
        assert!(
            matches!(
                &results[3],
                Err(error @ AdmissionError::Pool(AdmitError::WriteQuotaExceeded {
                    limit: 3,
                    used: 0,
                    waiting: 3,
                    window_end: 999,
                    ..
                })) if error.code() == "write_quota_exceeded"
            ),
            "{:?}",
            results[3]
        );
        // Alone, the same: the three waiting fill the window.
        let again = shared.admit_batch(vec![flood[3].clone()], false);
        assert!(matches!(
            again[0],
            Err(AdmissionError::Pool(AdmitError::WriteQuotaExceeded { .. }))
        ));
        // Another department is admitted.
        let other = fixture.issue_business_licence("jn-approval", "370800", 1);
        assert!(shared.admit_batch(vec![other], false)[0].is_ok());
        assert_eq!(
            shared.quota_room(&AuthorityId::from("qd-approval")),
            Some(3)
        );
        assert_eq!(shared.quota_room(&AuthorityId::from("jn-approval")), None);
    }

    #[test]
    fn a_batch_is_decided_per_transaction_in_order() {
        let mut fixture = Fixture::new();
        let (shared, mut gossiped) = shared_for(&fixture);
        let good = fixture.issue_business_licence("qd-approval", "370200", 1);
        let mut forged = fixture.issue_business_licence("qd-approval", "370200", 2);
        forged.signatures[0].signature = Signature([7; 64]);
        let ungranted = fixture.issue_business_licence("jn-approval", "370200", 3);
        let later = fixture.issue_business_licence("qd-approval", "370200", 4);

        let results = shared.admit_batch(
            vec![
                good.clone(),
                good.clone(),
                forged.clone(),
                ungranted.clone(),
                later.clone(),
            ],
            true,
        );
        assert_eq!(results.len(), 5);
        assert_eq!(
            results[0].as_ref().ok(),
            Some(&good.id(hutong_core::testkit::SUITE))
        );
        assert!(
            matches!(results[1], Err(AdmissionError::Pool(AdmitError::Duplicate(id))) if id == good.id(hutong_core::testkit::SUITE))
        );
        assert!(
            matches!(&results[2], Err(AdmissionError::Rule(rule)) if rule.code() == "bad_signature"),
            "{:?}",
            results[2]
        );
        assert!(
            matches!(&results[3], Err(AdmissionError::Rule(rule)) if rule.code() != "bad_signature"),
            "{:?}",
            results[3]
        );
        assert_eq!(
            results[4].as_ref().ok(),
            Some(&later.id(hutong_core::testkit::SUITE))
        );

        let mempool = shared.mempool.lock().unwrap();
        assert_eq!(mempool.len(), 2);
        assert!(
            mempool.contains(&good.id(hutong_core::testkit::SUITE))
                && mempool.contains(&later.id(hutong_core::testkit::SUITE))
        );
        assert_eq!(
            mempool
                .rejection(&forged.id(hutong_core::testkit::SUITE))
                .map(|(code, _)| code),
            Some("bad_signature".to_owned())
        );
        assert!(
            mempool
                .rejection(&ungranted.id(hutong_core::testkit::SUITE))
                .is_some()
        );
        drop(mempool);
        // Exactly the admitted ones go to the peers, as their canonical bytes.
        let first = gossiped.try_recv().unwrap();
        let second = gossiped.try_recv().unwrap();
        assert!(gossiped.try_recv().is_err());
        assert_eq!(
            hutong_core::tx::tx_id_of_bytes(hutong_core::testkit::SUITE, &first),
            good.id(hutong_core::testkit::SUITE)
        );
        assert_eq!(
            hutong_core::tx::tx_id_of_bytes(hutong_core::testkit::SUITE, &second),
            later.id(hutong_core::testkit::SUITE)
        );

        // Again: both are already waiting; nothing changes.
        let again = shared.admit_batch(vec![good.clone(), later.clone()], false);
        assert!(
            again.iter().all(|result| matches!(
                result,
                Err(AdmissionError::Pool(AdmitError::Duplicate(_)))
            ))
        );
        assert_eq!(shared.mempool.lock().unwrap().len(), 2);
    }

    #[test]
    fn the_window_ahead_counts_the_waiting_run() {
        let mut fixture = Fixture::new();
        let (shared, _gossiped) = shared_for(&fixture);
        let run: Vec<Transaction> = (1..=3)
            .map(|number| fixture.issue_business_licence("qd-approval", "370200", number))
            .collect();
        assert!(shared.admit_batch(run, false).iter().all(Result::is_ok));
        // Nonces 1 to 3 wait; 4 + NONCE_AHEAD_MAX is the furthest admitted.
        let mut edge = fixture.issue_business_licence("qd-approval", "370200", 10);
        edge.payload.nonce = 4 + NONCE_AHEAD_MAX;
        let edge = fixture.sign(edge.payload, &["qd-approval"]);
        let mut beyond = fixture.issue_business_licence("qd-approval", "370200", 11);
        beyond.payload.nonce = 5 + NONCE_AHEAD_MAX;
        let beyond = fixture.sign(beyond.payload, &["qd-approval"]);
        let results = shared.admit_batch(vec![edge, beyond], false);
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(
            matches!(
                &results[1],
                Err(AdmissionError::Rule(RuleError::NonceGap {
                    expected: 4,
                    ..
                }))
            ),
            "{:?}",
            results[1]
        );
    }

    #[test]
    fn nothing_is_admitted_while_shutting_down() {
        let mut fixture = Fixture::new();
        let (shared, _gossiped) = shared_for(&fixture);
        shared.accepting.store(false, Ordering::Relaxed);
        let transaction = fixture.issue_business_licence("qd-approval", "370200", 1);
        let results = shared.admit_batch(vec![transaction], true);
        assert!(matches!(results[..], [Err(AdmissionError::ShuttingDown)]));
        assert!(shared.mempool.lock().unwrap().is_empty());
    }
}
