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
//!
//! This module holds the audit mode's own state and the transactions an audit prepares ahead;
//! the store's methods of audit mode ([`Store::create_for_audit`](super::Store::create_for_audit)
//! and the questions about what it keeps) sit with the rest of the store's in `mod.rs`.

use std::collections::HashMap;
use std::sync::RwLock;

use super::backend::StoreError;
use hutong_core::block::TxLocation;
use hutong_core::hash::Hash32;
use hutong_core::log::LogHasher;
use hutong_core::suite::Suite;
use hutong_core::tx::{EncodedTransaction, Transaction};

/// What an audit store keeps beside the state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditStore {
    /// Also keep the blocks and the index of what each authority signed, so that
    /// [`Store::transaction`](super::Store::transaction) and
    /// [`Store::actions_of`](super::Store::actions_of) answer.
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
    pub(super) fn new(options: AuditStore) -> Self {
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
    pub fn new(suite: Suite, transactions: Vec<Transaction>) -> Self {
        let encoded: Vec<EncodedTransaction> =
            transactions.iter().map(Transaction::encode).collect();
        let ids = encoded.iter().map(|encoded| encoded.id(suite)).collect();
        let leaf_hashes = encoded
            .iter()
            .map(|encoded| suite.leaf_hash(encoded.bytes()))
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
