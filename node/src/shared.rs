//! State shared between the consensus engine, the admission of transactions and the HTTP API.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, mpsc};

use hutong_ledger::hash::Hash32;
use hutong_ledger::rules::RuleError;
use hutong_ledger::store::Store;
use hutong_ledger::tx::{FormError, Transaction};

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
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error(transparent)]
    Form(#[from] FormError),
    #[error(transparent)]
    Rule(RuleError),
    #[error("transaction {0} is already committed")]
    AlreadyCommitted(Hash32),
    #[error(transparent)]
    Pool(#[from] AdmitError),
    #[error("the node is shutting down")]
    ShuttingDown,
}

impl AdmissionError {
    /// A stable code for metrics and the API.
    pub fn code(&self) -> &'static str {
        match self {
            AdmissionError::Form(_) => "malformed",
            AdmissionError::Rule(error) => error.code(),
            AdmissionError::AlreadyCommitted(_) => "replay",
            AdmissionError::Pool(AdmitError::Duplicate(_)) => "duplicate",
            AdmissionError::Pool(AdmitError::Full { .. }) => "busy",
            AdmissionError::ShuttingDown => "shutting_down",
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

impl Shared {
    /// Admits a transaction: form, not already waiting or committed, room in the pool, then
    /// signatures and rules against the committed state. `gossip` sends it on to the peers
    /// (false for transactions that arrived by gossip: gossipsub forwards those itself).
    pub fn admit(&self, transaction: Transaction, gossip: bool) -> Result<Hash32, AdmissionError> {
        if !self.accepting.load(Ordering::Relaxed) {
            return Err(AdmissionError::ShuttingDown);
        }
        let bytes = transaction.check_size_and_form()?;
        let id = hutong_ledger::tx::tx_id_of_bytes(&bytes);
        let result = self.admit_checked(id, transaction, bytes.len());
        match &result {
            Ok(_) => {
                if gossip && self.gossip.try_send(bytes).is_err() {
                    // The gossip queue is full: the peers will get the transaction in the
                    // block that commits it.
                    self.metrics.reject_message("gossip_queue_full");
                }
                self.mempool_changed.notify_one();
            }
            Err(error) => {
                self.metrics.reject_transaction(error.code());
                if let AdmissionError::Rule(rule) = error
                    && let Ok(mut mempool) = self.mempool.lock()
                {
                    mempool.remember_rejection(id, rule.code(), rule.to_string());
                }
            }
        }
        result
    }

    fn admit_checked(
        &self,
        id: Hash32,
        transaction: Transaction,
        size_bytes: usize,
    ) -> Result<Hash32, AdmissionError> {
        {
            let mempool = self
                .mempool
                .lock()
                .map_err(|_| AdmissionError::ShuttingDown)?;
            if mempool.contains(&id) {
                return Err(AdmitError::Duplicate(id).into());
            }
            mempool.has_room(size_bytes)?;
        }
        if self
            .store
            .transaction_location(&id)
            .map_err(|error| AdmissionError::Rule(RuleError::State(error.into())))?
            .is_some()
        {
            return Err(AdmissionError::AlreadyCommitted(id));
        }
        self.store
            .check_transaction(&transaction, now_ms())
            .map_err(AdmissionError::Rule)?;
        let mut mempool = self
            .mempool
            .lock()
            .map_err(|_| AdmissionError::ShuttingDown)?;
        mempool.insert_at(id, transaction, size_bytes, now_ms())?;
        self.metrics.mempool_transactions.set(mempool.len() as i64);
        self.metrics.mempool_bytes.set(mempool.bytes() as i64);
        Ok(id)
    }
}
