//! The store's audit mode (`docs/adr/0012-lean-audit-execution.md`): a store that re-executes
//! blocks exactly as a node does, but commits only what the rules and the checks of an audit
//! read, and what the audit's history queries were asked for.
//!
//! Kept, as in a node's store: the records (the state the rules read), the state tree and
//! its nodes, the transaction log's tiles, the headers (the validator sets and evidence checks
//! read them), the head, and where each transaction is (the rules refuse a transaction already
//! on the chain). The locations live in memory, in a hash map, rather than in the engine.
//!
//! Left out: the licence indexes by holder, issuer and region, and the evidence index, which
//! only the API serves; and, unless [`AuditStore::history`] asks for them, the stored blocks
//! and the index of what each authority signed, which only the audit's `--signed-by` and
//! `--licence` queries read.

use std::collections::HashMap;
use std::sync::RwLock;

use super::{Backend, BlockError, Execution, Store, StoreError, TxLocation};
use hutong_core::block::Block;
use hutong_core::genesis::Genesis;
use hutong_core::hash::Hash32;
use hutong_core::log::{Blake3Log, LogHasher};
use hutong_core::rules::VerifiedSignatures;
use hutong_core::tx::{EncodedTransaction, Transaction};

/// What an audit store keeps beside the state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditStore {
    /// Also keep the blocks and the index of what each authority signed, so that
    /// [`Store::transaction`] and [`Store::actions_of`] answer.
    pub history: bool,
}

/// The audit mode's own state.
#[derive(Debug)]
pub(super) struct Lean {
    pub(super) history: bool,
    /// Where each committed transaction is; changes only after a commit's batch is written.
    pub(super) locations: RwLock<HashMap<Hash32, TxLocation>>,
}

impl Lean {
    fn new(options: AuditStore) -> Self {
        Lean {
            history: options.history,
            locations: RwLock::new(HashMap::new()),
        }
    }

    pub(super) fn location(&self, id: &Hash32) -> Result<Option<TxLocation>, StoreError> {
        Ok(self
            .locations
            .read()
            .map_err(|_| StoreError::Poisoned)?
            .get(id)
            .copied())
    }

    /// Takes in the locations of a committed block.
    pub(super) fn add(
        &self,
        locations: impl IntoIterator<Item = (Hash32, TxLocation)>,
    ) -> Result<(), StoreError> {
        self.locations
            .write()
            .map_err(|_| StoreError::Poisoned)?
            .extend(locations);
        Ok(())
    }
}

/// The transactions of a block with what does not depend on the state, computed ahead (on
/// another thread, in an audit's pipeline): their canonical encodings, ids and log leaf
/// hashes. Only [`PreparedTransactions::new`] makes one, so the three always belong to the
/// transactions held.
#[derive(Debug)]
pub struct PreparedTransactions {
    pub(super) transactions: Vec<Transaction>,
    pub(super) encoded: Vec<EncodedTransaction>,
    pub(super) ids: Vec<Hash32>,
    pub(super) leaf_hashes: Vec<Hash32>,
}

impl PreparedTransactions {
    pub fn new(transactions: Vec<Transaction>) -> Self {
        let encoded: Vec<EncodedTransaction> =
            transactions.iter().map(Transaction::encode).collect();
        let ids = encoded.iter().map(EncodedTransaction::id).collect();
        let leaf_hashes = encoded
            .iter()
            .map(|encoded| Blake3Log.leaf_hash(encoded.bytes()))
            .collect();
        PreparedTransactions {
            transactions,
            encoded,
            ids,
            leaf_hashes,
        }
    }

    /// The transactions' canonical encodings, in order.
    pub fn encoded(&self) -> &[EncodedTransaction] {
        &self.encoded
    }

    /// The transaction ids, in order.
    pub fn ids(&self) -> &[Hash32] {
        &self.ids
    }

    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }
}

impl Store {
    /// [`Store::verify_block_with`] for `block` whose transactions `prepared` holds (a copy
    /// made ahead, with their encodings): nothing of it is encoded or hashed again. The
    /// header is checked against the re-execution of `prepared`'s transactions, so any other
    /// transactions than the block's fail on its `tx_root`.
    pub fn verify_block_prepared(
        &self,
        block: &Block,
        prepared: PreparedTransactions,
        already_verified: &dyn VerifiedSignatures,
    ) -> Result<Execution, BlockError> {
        self.verify_parts(block, Some(prepared), Some(already_verified))
    }

    /// Creates a store in audit mode on an empty `backend` from `genesis` (see the module
    /// documentation): blocks execute and commit as in [`Store::create_with`], and every
    /// check and root is the same, but the serving-only writes are skipped.
    pub fn create_for_audit(
        backend: Box<dyn Backend>,
        genesis: &Genesis,
        options: AuditStore,
    ) -> Result<Self, StoreError> {
        let mut store = Self::create_with(backend, genesis)?;
        store.lean = Some(Lean::new(options));
        Ok(store)
    }

    /// Whether the store keeps the licence indexes (by holder, issuer and region): always,
    /// except in audit mode.
    pub fn keeps_licence_indexes(&self) -> bool {
        self.lean.is_none()
    }

    /// Whether the store keeps its blocks and the index of what each authority signed
    /// (always, except in audit mode without [`AuditStore::history`]).
    pub fn keeps_history(&self) -> bool {
        self.lean.as_ref().is_none_or(|lean| lean.history)
    }

    /// Whether the store is in audit mode.
    pub fn is_audit_store(&self) -> bool {
        self.lean.is_some()
    }
}
