//! The mempool: transactions admitted and waiting for a block, bounded in count and bytes.
//!
//! Admission checks the size, the decoding, the form, the signatures and the ledger's rules
//! against the committed state (`Store::check_transactions`); a transaction that passes waits
//! here until a block commits it. A full pool answers "busy" rather than growing. Rejections
//! are remembered (bounded) so that a client asking about a transaction learns why.
//!
//! Each signer's nonces follow one another (ADR 0011). The pool keeps every signer's
//! transactions by nonce and offers a block only the run that follows the signer's committed
//! nonce without a gap; a transaction after a gap waits for the ones before it, for at most
//! [`WAITING_MS_MAX`].

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::limits::WAITING_MS_MAX;
use hutong_core::hash::Hash32;
use hutong_core::records::AuthorityId;
use hutong_core::tx::Transaction;

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
    #[error("nonce {nonce} of {signer} is taken by transaction {pending}, which waits for a block")]
    NonceTaken {
        signer: AuthorityId,
        nonce: u64,
        pending: Hash32,
    },
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
    /// Each signer's waiting transactions by nonce.
    by_nonce: HashMap<AuthorityId, BTreeMap<u64, Hash32>>,
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
            by_nonce: HashMap::new(),
            next_sequence: 0,
            bytes: 0,
            rejections: HashMap::new(),
            rejection_order: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
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
        let signer = &transaction.payload.signer;
        let nonce = transaction.payload.nonce;
        if let Some(pending) = self
            .by_nonce
            .get(signer)
            .and_then(|nonces| nonces.get(&nonce))
        {
            return Err(AdmitError::NonceTaken {
                signer: signer.clone(),
                nonce,
                pending: *pending,
            });
        }
        self.has_room(size_bytes)?;
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.order.insert(sequence, id);
        self.by_nonce
            .entry(signer.clone())
            .or_default()
            .insert(nonce, id);
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

    /// Up to `count_max` transactions for a block: signers in the order their transactions
    /// arrived, and for each signer the run of nonces that follows its committed one
    /// (`next_nonce`: the nonce a signer's next transaction must carry) without a gap.
    pub fn candidates(
        &self,
        count_max: usize,
        next_nonce: impl Fn(&AuthorityId) -> Option<u64>,
    ) -> Vec<Transaction> {
        let mut picked: Vec<Transaction> = Vec::with_capacity(count_max.min(self.entries.len()));
        let mut signers_seen: std::collections::HashSet<&AuthorityId> = Default::default();
        for id in self.order.values() {
            if picked.len() >= count_max {
                break;
            }
            let Some(entry) = self.entries.get(id) else {
                continue;
            };
            let signer = &entry.transaction.payload.signer;
            if !signers_seen.insert(signer) {
                continue;
            }
            let (Some(nonces), Some(mut expected)) =
                (self.by_nonce.get(signer), next_nonce(signer))
            else {
                continue;
            };
            for (nonce, id) in nonces.range(expected..) {
                if *nonce != expected || picked.len() >= count_max {
                    break;
                }
                if let Some(entry) = self.entries.get(id) {
                    picked.push(entry.transaction.clone());
                }
                expected += 1;
            }
        }
        picked
    }

    /// Whether some signer's next nonce (`next_nonce`, by the committed state) waits here: a
    /// block would hold a transaction.
    pub fn has_ready(&self, next_nonce: impl Fn(&AuthorityId) -> Option<u64>) -> bool {
        self.by_nonce.iter().any(|(signer, nonces)| {
            next_nonce(signer).is_some_and(|next| nonces.contains_key(&next))
        })
    }

    /// The nonce `signer`'s next transaction should carry: one above the last of the run of its
    /// waiting transactions that follows `committed_next` (its next nonce by the committed
    /// state) without a gap.
    pub fn next_nonce(&self, signer: &AuthorityId, committed_next: u64) -> u64 {
        let mut next = committed_next;
        if let Some(nonces) = self.by_nonce.get(signer) {
            for nonce in nonces.range(committed_next..).map(|(nonce, _)| *nonce) {
                if nonce != next {
                    break;
                }
                next += 1;
            }
        }
        next
    }

    /// Drops what can no longer commit: transactions whose nonce a committed transaction used
    /// (`next_nonce` says each signer's next nonce by the committed state), and transactions
    /// that waited for an earlier nonce for longer than [`WAITING_MS_MAX`] (at `now_ms`).
    /// Returns the ids of those dropped because their nonce was used.
    pub fn prune(
        &mut self,
        now_ms: u64,
        next_nonce: impl Fn(&AuthorityId) -> Option<u64>,
    ) -> Vec<Hash32> {
        let mut stale = Vec::new();
        let mut expired = Vec::new();
        for (signer, nonces) in &self.by_nonce {
            let Some(next) = next_nonce(signer) else {
                continue;
            };
            stale.extend(nonces.range(..next).map(|(_, id)| *id));
            let mut expected = next;
            for (nonce, id) in nonces.range(next..) {
                if *nonce == expected {
                    expected += 1;
                    continue;
                }
                // After a gap: waiting.
                if self.entries.get(id).is_some_and(|entry| {
                    now_ms.saturating_sub(entry.received_at_ms) > WAITING_MS_MAX
                }) {
                    expired.push(*id);
                }
            }
        }
        self.remove(&stale);
        self.remove(&expired);
        stale
    }

    /// Removes transactions (committed, or rejected at block building).
    pub fn remove(&mut self, ids: &[Hash32]) {
        for id in ids {
            if let Some(entry) = self.entries.remove(id) {
                self.order.remove(&entry.sequence);
                self.bytes -= entry.size_bytes;
                let signer = &entry.transaction.payload.signer;
                if let Some(nonces) = self.by_nonce.get_mut(signer) {
                    nonces.remove(&entry.transaction.payload.nonce);
                    if nonces.is_empty() {
                        self.by_nonce.remove(signer);
                    }
                }
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
    use hutong_core::testkit::Fixture;

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
                .insert_at(
                    transaction.id(hutong_core::testkit::SUITE),
                    transaction,
                    100,
                    0,
                )
                .unwrap();
        }
        let third = fixture.issue_business_licence("qd-approval", "370200", 3);
        assert!(matches!(
            mempool.insert_at(third.id(hutong_core::testkit::SUITE), third, 100, 0),
            Err(AdmitError::Full { .. })
        ));

        let mut by_bytes = pool(100, 150);
        let first = fixture.issue_business_licence("qd-approval", "370200", 4);
        by_bytes
            .insert_at(first.id(hutong_core::testkit::SUITE), first, 100, 0)
            .unwrap();
        let second = fixture.issue_business_licence("qd-approval", "370200", 5);
        assert!(matches!(
            by_bytes.insert_at(second.id(hutong_core::testkit::SUITE), second, 100, 0),
            Err(AdmitError::Full { .. })
        ));
        assert_eq!(by_bytes.bytes(), 100);
    }

    #[test]
    fn duplicates_are_dropped_and_removal_frees_room() {
        let mut fixture = Fixture::new();
        let mut mempool = pool(10, 1000);
        let transaction = fixture.issue_business_licence("qd-approval", "370200", 1);
        let id = transaction.id(hutong_core::testkit::SUITE);
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
                .insert_at(
                    transaction.id(hutong_core::testkit::SUITE),
                    transaction,
                    10,
                    0,
                )
                .unwrap();
        }
        let order: Vec<Hash32> = mempool
            .candidates(10, |_| Some(1))
            .iter()
            .map(|transaction| transaction.id(hutong_core::testkit::SUITE))
            .collect();
        assert_eq!(
            order,
            vec![
                a1.id(hutong_core::testkit::SUITE),
                a2.id(hutong_core::testkit::SUITE),
                b1.id(hutong_core::testkit::SUITE)
            ]
        );
        assert_eq!(mempool.candidates(1, |_| Some(1)).len(), 1);
    }

    #[test]
    fn a_transaction_after_a_gap_waits_for_the_ones_before_it() {
        let mut fixture = Fixture::new();
        let mut mempool = pool(10, 10_000);
        let signer: AuthorityId = "qd-approval".into();
        let first = fixture.issue_business_licence("qd-approval", "370200", 1);
        let second = fixture.issue_business_licence("qd-approval", "370200", 2);
        let third = fixture.issue_business_licence("qd-approval", "370200", 3);
        // The third arrives first: nothing of the signer is offered, and the next nonce to
        // use is still the first.
        mempool
            .insert_at(third.id(hutong_core::testkit::SUITE), third.clone(), 10, 0)
            .unwrap();
        assert!(mempool.candidates(10, |_| Some(1)).is_empty());
        assert!(!mempool.has_ready(|_| Some(1)));
        assert_eq!(mempool.next_nonce(&signer, 1), 1);
        // The first: offered alone; the third still waits for the second.
        mempool
            .insert_at(first.id(hutong_core::testkit::SUITE), first.clone(), 10, 0)
            .unwrap();
        let offered: Vec<Hash32> = mempool
            .candidates(10, |_| Some(1))
            .iter()
            .map(|transaction| transaction.id(hutong_core::testkit::SUITE))
            .collect();
        assert_eq!(offered, vec![first.id(hutong_core::testkit::SUITE)]);
        assert_eq!(mempool.next_nonce(&signer, 1), 2);
        // The second fills the gap: all three, in nonce order.
        mempool
            .insert_at(
                second.id(hutong_core::testkit::SUITE),
                second.clone(),
                10,
                0,
            )
            .unwrap();
        let offered: Vec<Hash32> = mempool
            .candidates(10, |_| Some(1))
            .iter()
            .map(|transaction| transaction.id(hutong_core::testkit::SUITE))
            .collect();
        assert_eq!(
            offered,
            vec![
                first.id(hutong_core::testkit::SUITE),
                second.id(hutong_core::testkit::SUITE),
                third.id(hutong_core::testkit::SUITE)
            ]
        );
        assert_eq!(mempool.next_nonce(&signer, 1), 4);
        // Once the first is committed, the run starts at the second.
        mempool.remove(&[first.id(hutong_core::testkit::SUITE)]);
        assert_eq!(mempool.candidates(10, |_| Some(2)).len(), 2);
        assert!(mempool.has_ready(|_| Some(2)));
        assert!(!mempool.has_ready(|_| Some(5)));
        assert!(mempool.candidates(10, |_| None).is_empty());
    }

    #[test]
    fn a_second_transaction_with_a_pending_nonce_is_refused() {
        let mut fixture = Fixture::new();
        let mut mempool = pool(10, 10_000);
        let pending = fixture.issue_business_licence("qd-approval", "370200", 1);
        let mut rival = fixture.issue_business_licence("qd-approval", "370200", 2);
        rival.payload.nonce = pending.payload.nonce;
        mempool
            .insert_at(
                pending.id(hutong_core::testkit::SUITE),
                pending.clone(),
                10,
                0,
            )
            .unwrap();
        assert_eq!(
            mempool.insert_at(rival.id(hutong_core::testkit::SUITE), rival, 10, 0),
            Err(AdmitError::NonceTaken {
                signer: "qd-approval".into(),
                nonce: pending.payload.nonce,
                pending: pending.id(hutong_core::testkit::SUITE),
            })
        );
        assert_eq!(mempool.len(), 1);
    }

    #[test]
    fn pruning_drops_used_nonces_and_transactions_that_waited_too_long() {
        let mut fixture = Fixture::new();
        let mut mempool = pool(10, 10_000);
        let used = fixture.issue_business_licence("qd-approval", "370200", 1);
        let next = fixture.issue_business_licence("qd-approval", "370200", 2);
        let _skipped = fixture.issue_business_licence("qd-approval", "370200", 3);
        let waiting = fixture.issue_business_licence("qd-approval", "370200", 4);
        for transaction in [&used, &next, &waiting] {
            mempool
                .insert_at(
                    transaction.id(hutong_core::testkit::SUITE),
                    transaction.clone(),
                    10,
                    1_000,
                )
                .unwrap();
        }
        // Nonce 1 was used by a committed transaction: `used` goes; `waiting` (after the gap
        // at 3) has not waited long enough yet.
        let stale = mempool.prune(2_000, |_| Some(2));
        assert_eq!(stale, vec![used.id(hutong_core::testkit::SUITE)]);
        assert_eq!(mempool.len(), 2);
        // Later, `waiting` has waited too long; `next` follows the committed nonce and stays.
        let stale = mempool.prune(1_000 + WAITING_MS_MAX + 1, |_| Some(2));
        assert!(stale.is_empty());
        assert!(mempool.contains(&next.id(hutong_core::testkit::SUITE)));
        assert!(!mempool.contains(&waiting.id(hutong_core::testkit::SUITE)));
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
