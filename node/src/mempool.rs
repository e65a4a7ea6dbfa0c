//! The mempool: transactions admitted and waiting for a block, bounded in count and bytes.
//!
//! Admission checks the size, the decoding, the form, the signatures and the ledger's rules
//! against the committed state (`Store::check_transaction`); a transaction that passes waits
//! here until a block commits it. A full pool answers "busy" rather than growing. Rejections
//! are remembered (bounded) so that a client asking about a transaction learns why.

use std::collections::{BTreeMap, HashMap, VecDeque};

use hutong_ledger::hash::Hash32;
use hutong_ledger::records::AuthorityId;
use hutong_ledger::tx::Transaction;

/// Bounds of the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolLimits {
    pub transactions_max: usize,
    pub bytes_max: usize,
    /// How many rejection reasons are remembered for status queries.
    pub rejections_remembered_max: usize,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        MempoolLimits {
            transactions_max: 50_000,
            bytes_max: 64 * 1024 * 1024,
            rejections_remembered_max: 10_000,
        }
    }
}

/// Why the pool did not take a transaction (the rules' reasons come from the caller).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    #[error("transaction {0} is already waiting")]
    Duplicate(Hash32),
    #[error("the mempool is full ({transactions} transactions, {bytes} bytes); retry later")]
    Full { transactions: usize, bytes: usize },
}

#[derive(Debug)]
struct Entry {
    transaction: Transaction,
    size_bytes: usize,
    sequence: u64,
    received_at_ms: u64,
}

/// The pool.
#[derive(Debug)]
pub struct Mempool {
    limits: MempoolLimits,
    entries: HashMap<Hash32, Entry>,
    /// Arrival order.
    order: BTreeMap<u64, Hash32>,
    next_sequence: u64,
    bytes: usize,
    rejections: HashMap<Hash32, (String, String)>,
    rejection_order: VecDeque<Hash32>,
}

impl Mempool {
    pub fn new(limits: MempoolLimits) -> Self {
        Mempool {
            limits,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_sequence: 0,
            bytes: 0,
            rejections: HashMap::new(),
            rejection_order: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn contains(&self, id: &Hash32) -> bool {
        self.entries.contains_key(id)
    }

    /// Whether there is room for a transaction of `size_bytes` (checked before the costly
    /// admission checks, and again on insertion).
    pub fn has_room(&self, size_bytes: usize) -> Result<(), AdmitError> {
        if self.entries.len() >= self.limits.transactions_max
            || self.bytes + size_bytes > self.limits.bytes_max
        {
            return Err(AdmitError::Full {
                transactions: self.entries.len(),
                bytes: self.bytes,
            });
        }
        Ok(())
    }

    /// Adds a transaction that passed the admission checks.
    /// Adds a transaction that passed the admission checks, recording when it arrived (ms
    /// since the epoch).
    pub fn insert_at(
        &mut self,
        id: Hash32,
        transaction: Transaction,
        size_bytes: usize,
        received_at_ms: u64,
    ) -> Result<(), AdmitError> {
        if self.entries.contains_key(&id) {
            return Err(AdmitError::Duplicate(id));
        }
        self.has_room(size_bytes)?;
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.order.insert(sequence, id);
        self.bytes += size_bytes;
        self.entries.insert(
            id,
            Entry {
                transaction,
                size_bytes,
                sequence,
                received_at_ms,
            },
        );
        Ok(())
    }

    /// A waiting transaction.
    pub fn get(&self, id: &Hash32) -> Option<&Transaction> {
        self.entries.get(id).map(|entry| &entry.transaction)
    }

    /// When a waiting transaction arrived (ms since the epoch).
    pub fn received_at(&self, id: &Hash32) -> Option<u64> {
        self.entries.get(id).map(|entry| entry.received_at_ms)
    }

    /// Up to `count_max` transactions in arrival order, except that one signer's transactions
    /// come in nonce order (so a block never holds a signer's nonces out of order).
    pub fn candidates(&self, count_max: usize) -> Vec<Transaction> {
        let mut first_seen: HashMap<&AuthorityId, u64> = HashMap::new();
        let mut picked: Vec<&Entry> = Vec::with_capacity(count_max.min(self.entries.len()));
        for id in self.order.values() {
            if picked.len() >= count_max {
                break;
            }
            if let Some(entry) = self.entries.get(id) {
                first_seen
                    .entry(&entry.transaction.payload.signer)
                    .or_insert(entry.sequence);
                picked.push(entry);
            }
        }
        picked.sort_by_key(|entry| {
            let signer = &entry.transaction.payload.signer;
            (
                first_seen.get(signer).copied().unwrap_or(entry.sequence),
                entry.transaction.payload.nonce,
            )
        });
        picked
            .into_iter()
            .map(|entry| entry.transaction.clone())
            .collect()
    }

    /// Removes transactions (committed, or rejected at block building).
    pub fn remove(&mut self, ids: &[Hash32]) {
        for id in ids {
            if let Some(entry) = self.entries.remove(id) {
                self.order.remove(&entry.sequence);
                self.bytes -= entry.size_bytes;
            }
        }
    }

    /// Remembers why a transaction was rejected (bounded; the oldest reasons are forgotten).
    pub fn remember_rejection(&mut self, id: Hash32, code: &str, message: String) {
        if self
            .rejections
            .insert(id, (code.to_owned(), message))
            .is_none()
        {
            self.rejection_order.push_back(id);
        }
        while self.rejection_order.len() > self.limits.rejections_remembered_max {
            if let Some(old) = self.rejection_order.pop_front() {
                self.rejections.remove(&old);
            }
        }
    }

    /// Why a transaction was rejected, if it was and is still remembered: `(code, message)`.
    pub fn rejection(&self, id: &Hash32) -> Option<(String, String)> {
        self.rejections.get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hutong_ledger::testkit::Fixture;

    fn pool(transactions_max: usize, bytes_max: usize) -> Mempool {
        Mempool::new(MempoolLimits {
            transactions_max,
            bytes_max,
            rejections_remembered_max: 2,
        })
    }

    #[test]
    fn bounded_in_count_and_bytes() {
        let mut fixture = Fixture::new();
        let mut mempool = pool(2, 1_000_000);
        for n in 0..2 {
            let transaction = fixture.issue_business_licence("qd-approval", "370200", n);
            mempool
                .insert_at(transaction.id(), transaction, 100, 0)
                .unwrap();
        }
        let third = fixture.issue_business_licence("qd-approval", "370200", 3);
        assert!(matches!(
            mempool.insert_at(third.id(), third, 100, 0),
            Err(AdmitError::Full { .. })
        ));

        let mut by_bytes = pool(100, 150);
        let first = fixture.issue_business_licence("qd-approval", "370200", 4);
        by_bytes.insert_at(first.id(), first, 100, 0).unwrap();
        let second = fixture.issue_business_licence("qd-approval", "370200", 5);
        assert!(matches!(
            by_bytes.insert_at(second.id(), second, 100, 0),
            Err(AdmitError::Full { .. })
        ));
        assert_eq!(by_bytes.bytes(), 100);
    }

    #[test]
    fn duplicates_are_dropped_and_removal_frees_room() {
        let mut fixture = Fixture::new();
        let mut mempool = pool(10, 1000);
        let transaction = fixture.issue_business_licence("qd-approval", "370200", 1);
        let id = transaction.id();
        mempool.insert_at(id, transaction.clone(), 100, 0).unwrap();
        assert_eq!(
            mempool.insert_at(id, transaction, 100, 0),
            Err(AdmitError::Duplicate(id))
        );
        mempool.remove(&[id]);
        assert!(mempool.is_empty());
        assert_eq!(mempool.bytes(), 0);
    }

    #[test]
    fn candidates_keep_each_signers_nonces_in_order() {
        let mut fixture = Fixture::new();
        let mut mempool = pool(10, 10_000);
        let a1 = fixture.issue_business_licence("qd-approval", "370200", 1);
        let a2 = fixture.issue_business_licence("qd-approval", "370200", 2);
        let b1 = fixture.issue_business_licence("jn-approval", "370800", 3);
        // Arrival: a2, b1, a1.
        for transaction in [a2.clone(), b1.clone(), a1.clone()] {
            mempool
                .insert_at(transaction.id(), transaction, 10, 0)
                .unwrap();
        }
        let order: Vec<Hash32> = mempool.candidates(10).iter().map(Transaction::id).collect();
        assert_eq!(order, vec![a1.id(), a2.id(), b1.id()]);
        assert_eq!(mempool.candidates(1).len(), 1);
    }

    #[test]
    fn rejections_are_remembered_within_a_bound() {
        let mut mempool = pool(10, 1000);
        for n in 0..3u8 {
            mempool.remember_rejection(Hash32([n; 32]), "replay", format!("r{n}"));
        }
        assert!(mempool.rejection(&Hash32([0; 32])).is_none());
        assert_eq!(mempool.rejection(&Hash32([2; 32])).unwrap().0, "replay");
    }
}
