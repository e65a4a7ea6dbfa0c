//! A [`NodeControl`] over a store, for tests, benchmarks and the explorer example: it admits a
//! transaction by executing it alone on the latest state in build mode (which reveals the rule
//! that rejects it) and keeps it pending; nothing commits it unless the caller does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hutong_ledger::crypto::PublicKey;
use hutong_ledger::hash::Hash32;
use hutong_ledger::records::TimeMs;
use hutong_ledger::store::{Mode, Store};
use hutong_ledger::tx::Transaction;

use crate::node::{NodeControl, NodeInfo, NodeRole, PendingStatus, SubmitError};

/// A stand-in for a node: admission by the ledger's rules, an in-memory mempool.
#[derive(Debug)]
pub struct StoreNode {
    store: Arc<Store>,
    node_key: PublicKey,
    received_at: TimeMs,
    mempool_capacity: usize,
    ready: AtomicBool,
    known: Mutex<HashMap<Hash32, PendingStatus>>,
    pending: Mutex<Vec<Transaction>>,
}

impl StoreNode {
    /// A node over `store` whose mempool holds `mempool_capacity` transactions.
    pub fn new(store: Arc<Store>, node_key: PublicKey, mempool_capacity: usize) -> Self {
        StoreNode {
            store,
            node_key,
            received_at: 0,
            mempool_capacity,
            ready: AtomicBool::new(true),
            known: Mutex::new(HashMap::new()),
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Marks the node ready or not (`/readyz`).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// The transactions admitted and not yet taken, oldest first.
    pub fn take_pending(&self) -> Vec<Transaction> {
        let taken = self
            .pending
            .lock()
            .map(|mut pending| std::mem::take(&mut *pending))
            .unwrap_or_default();
        if let Ok(mut known) = self.known.lock() {
            for transaction in &taken {
                known.remove(&transaction.id());
            }
        }
        taken
    }

    fn admit(&self, transaction: Transaction) -> Result<Hash32, SubmitError> {
        let id = transaction.id();
        let unavailable = |error: String| SubmitError::Unavailable(error);
        if self
            .store
            .transaction_location(&id)
            .map_err(|error| unavailable(error.to_string()))?
            .is_some()
        {
            return Err(SubmitError::Duplicate(id));
        }
        let mut known = self
            .known
            .lock()
            .map_err(|_| unavailable("mempool lock poisoned".into()))?;
        if matches!(known.get(&id), Some(PendingStatus::Pending { .. })) {
            return Err(SubmitError::Duplicate(id));
        }
        let mut pending = self
            .pending
            .lock()
            .map_err(|_| unavailable("mempool lock poisoned".into()))?;
        if pending.len() >= self.mempool_capacity {
            return Err(SubmitError::Busy {
                retry_after_seconds: 2,
            });
        }
        let head_time = self
            .store
            .head()
            .map_err(|error| unavailable(error.to_string()))?
            .header
            .time;
        let execution = self
            .store
            .execute(head_time + 1, self.node_key, vec![transaction.clone()], Mode::Build)
            .map_err(|error| unavailable(error.to_string()))?;
        if let Some((_, error)) = execution.rejected.into_iter().next() {
            known.insert(
                id,
                PendingStatus::Rejected {
                    code: error.code().to_owned(),
                    reason: error.to_string(),
                },
            );
            return Err(SubmitError::from_rule(error, id));
        }
        known.insert(
            id,
            PendingStatus::Pending {
                received_at: self.received_at,
            },
        );
        pending.push(transaction);
        Ok(id)
    }
}

impl NodeControl for StoreNode {
    fn submit(&self, transaction: Transaction) -> Result<Hash32, SubmitError> {
        self.admit(transaction)
    }

    fn pending_status(&self, id: &Hash32) -> Option<PendingStatus> {
        self.known.lock().ok()?.get(id).cloned()
    }

    fn node_info(&self) -> NodeInfo {
        NodeInfo {
            node_key: self.node_key,
            role: NodeRole::Validator,
            peers: Vec::new(),
            syncing: false,
            ready: self.ready.load(Ordering::Relaxed),
            network_height: None,
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    fn metrics(&self) -> String {
        let pending = self.pending.lock().map(|pending| pending.len()).unwrap_or(0);
        format!(
            "# HELP hutong_mempool_transactions Transactions waiting in the mempool.\n\
             # TYPE hutong_mempool_transactions gauge\nhutong_mempool_transactions {pending}\n"
        )
    }
}
