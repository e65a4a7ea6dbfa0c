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
//!
//! No signer takes more than its share of the pool (`signer_transactions_max`,
//! `signer_bytes_max`): beyond it, its submissions are refused while other signers' are still
//! admitted. When the pool as a whole is full, a signer that holds fewer transactions than the
//! largest holder makes room by evicting that holder's highest nonce (ADR 0020). A block is
//! offered the signers' runs round-robin, each signer at most its share of the block.
//!
//! A signer held to a write quota by the ledger (ADR 0029) is admitted only as many counted
//! transactions as its quota's window still takes, counting those already waiting here, and a
//! block is offered no more of them than the window takes.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::limits::{EVICTIONS_PER_ADMISSION_MAX, WAITING_MS_MAX};
use hutong_core::hash::Hash32;
use hutong_core::quota::{Allowance, counts_against_quota};
use hutong_core::records::{AuthorityId, Height};
use hutong_core::tx::Transaction;

/// The code a transaction evicted from the full pool is remembered with (its status query
/// answers it as rejected).
pub const EVICTED_CODE: &str = "evicted";

/// Bounds of the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolLimits {
    pub transactions_max: usize,
    pub bytes_max: usize,
    /// Most transactions one signer may hold (at most `transactions_max`).
    pub signer_transactions_max: usize,
    /// Most bytes one signer's transactions may take (at most `bytes_max`).
    pub signer_bytes_max: usize,
    /// How many rejection reasons are remembered for status queries.
    pub rejections_remembered_max: usize,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        MempoolLimits::with_signer_share(
            50_000,
            64 * 1024 * 1024,
            crate::limits::MEMPOOL_SIGNER_SHARE_PERCENT_DEFAULT,
        )
    }
}

impl MempoolLimits {
    /// A pool of `transactions_max` and `bytes_max` where one signer may hold
    /// `signer_share_percent` of each (at least one transaction and the largest one's bytes).
    pub fn with_signer_share(
        transactions_max: usize,
        bytes_max: usize,
        signer_share_percent: usize,
    ) -> Self {
        let share = |total: usize| total.saturating_mul(signer_share_percent) / 100;
        MempoolLimits {
            transactions_max,
            bytes_max,
            signer_transactions_max: share(transactions_max).clamp(1, transactions_max.max(1)),
            signer_bytes_max: share(bytes_max)
                .max(hutong_core::limits::TX_BYTES_MAX.min(bytes_max)),
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
    #[error(
        "{signer} holds {held_transactions} transactions ({held_bytes} bytes) in the mempool, \
         its share is {share_transactions} transactions and {share_bytes} bytes; retry when \
         some of them are committed"
    )]
    SignerShareExceeded {
        signer: AuthorityId,
        held_transactions: usize,
        held_bytes: usize,
        share_transactions: usize,
        share_bytes: usize,
    },
    #[error(
        "{signer} may write {limit} transactions in the window of {window_blocks} blocks that \
         ends at height {window_end}; {used} are committed and {waiting} wait in the mempool; \
         retry from height {}", .window_end.saturating_add(1)
    )]
    WriteQuotaExceeded {
        signer: AuthorityId,
        limit: u64,
        window_blocks: u64,
        used: u64,
        waiting: u64,
        window_end: Height,
    },
}

/// What the pool holds of one signer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Holding {
    transactions: usize,
    bytes: usize,
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
    /// What each signer with waiting transactions holds (the same signers as `by_nonce`).
    holdings: HashMap<AuthorityId, Holding>,
    /// How many of each signer's waiting transactions count against a write quota (signers
    /// with none are absent).
    quota_counted: HashMap<AuthorityId, u64>,
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
            holdings: HashMap::new(),
            quota_counted: HashMap::new(),
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

    /// Whether `signer` may add a transaction of `size_bytes`: within its share, and room in
    /// the pool or room that evicting others' transactions would make (checked before the
    /// costly admission checks, and again on insertion).
    pub fn has_room(&self, signer: &AuthorityId, size_bytes: usize) -> Result<(), AdmitError> {
        self.evictions_for(signer, size_bytes).map(|_| ())
    }

    /// Whether `transaction` fits in what its signer's write quota still allows (`allowance`,
    /// by the committed state at the next height; `None`: no quota applies), counting the
    /// signer's counted transactions already waiting. Checked before the costly admission
    /// checks and again on insertion.
    ///
    /// `committed_next` is the signer's next nonce by the committed state, read after
    /// `allowance`: the transactions of a block just committed are counted in `allowance.used`
    /// before the pool drops them, so only those waiting at or above it count as waiting. (Read
    /// in that order, a commit in between can only make the count short, and the rules refuse
    /// what a block's window does not take; never long, which would refuse in error.)
    pub fn check_write_quota(
        &self,
        transaction: &Transaction,
        allowance: Option<Allowance>,
        committed_next: u64,
    ) -> Result<(), AdmitError> {
        let Some(allowance) = allowance else {
            return Ok(());
        };
        if !counts_against_quota(&transaction.payload.body) {
            return Ok(());
        }
        let signer = &transaction.payload.signer;
        let counted = self.quota_counted.get(signer).copied().unwrap_or(0);
        let not_committed = self
            .by_nonce
            .get(signer)
            .map_or(0, |nonces| nonces.range(committed_next..).count() as u64);
        let waiting = counted.min(not_committed);
        if waiting >= allowance.remaining() {
            return Err(AdmitError::WriteQuotaExceeded {
                signer: signer.clone(),
                limit: allowance.limit,
                window_blocks: allowance.window_blocks,
                used: allowance.used,
                waiting,
                window_end: allowance.window_end,
            });
        }
        Ok(())
    }

    /// What `signer` holds: transactions and bytes.
    #[cfg(test)]
    pub fn held_by(&self, signer: &AuthorityId) -> (usize, usize) {
        let holding = self.holdings.get(signer).copied().unwrap_or_default();
        (holding.transactions, holding.bytes)
    }

    /// The transactions to evict so that `signer` may add one of `size_bytes`: none when the
    /// pool has room; else, one at a time, the highest nonce of the signer holding the most
    /// transactions (ties: the most bytes, then the signer's name), for as long as that holder
    /// would still hold more than `signer` after the admission, and at most
    /// [`EVICTIONS_PER_ADMISSION_MAX`]. An error when `signer` is at its share, or when such
    /// evictions cannot make room. Changes nothing.
    fn evictions_for(
        &self,
        signer: &AuthorityId,
        size_bytes: usize,
    ) -> Result<Vec<Hash32>, AdmitError> {
        let held = self.holdings.get(signer).copied().unwrap_or_default();
        if held.transactions + 1 > self.limits.signer_transactions_max
            || held.bytes + size_bytes > self.limits.signer_bytes_max
        {
            return Err(AdmitError::SignerShareExceeded {
                signer: signer.clone(),
                held_transactions: held.transactions,
                held_bytes: held.bytes,
                share_transactions: self.limits.signer_transactions_max,
                share_bytes: self.limits.signer_bytes_max,
            });
        }
        let full = || AdmitError::Full {
            transactions: self.entries.len(),
            bytes: self.bytes,
        };
        if size_bytes > self.limits.bytes_max {
            return Err(full());
        }
        let mut transactions = self.entries.len();
        let mut bytes = self.bytes;
        let mut evicted: Vec<Hash32> = Vec::new();
        // What each holder would hold after the evictions planned so far.
        let mut remaining: HashMap<&AuthorityId, (Holding, usize)> = HashMap::new();
        while transactions >= self.limits.transactions_max
            || bytes + size_bytes > self.limits.bytes_max
        {
            if evicted.len() >= EVICTIONS_PER_ADMISSION_MAX {
                return Err(full());
            }
            let largest = self
                .holdings
                .iter()
                .filter(|(holder, _)| *holder != signer)
                .map(|(holder, holding)| {
                    let (left, taken) = remaining.get(holder).copied().unwrap_or((*holding, 0));
                    (holder, left, taken)
                })
                .max_by(|(first, first_left, _), (second, second_left, _)| {
                    (first_left.transactions, first_left.bytes, *second).cmp(&(
                        second_left.transactions,
                        second_left.bytes,
                        *first,
                    ))
                });
            let Some((holder, left, taken)) = largest else {
                return Err(full());
            };
            // The holder keeps at least as many as the newcomer will hold: evictions level
            // holdings and never invert them, so two signers cannot evict each other in turn.
            if left.transactions < held.transactions + 2 {
                return Err(full());
            }
            let Some(id) = self
                .by_nonce
                .get(holder)
                .and_then(|nonces| nonces.values().rev().nth(taken))
            else {
                return Err(full());
            };
            let size = self.entries.get(id).map_or(0, |entry| entry.size_bytes);
            evicted.push(*id);
            transactions -= 1;
            bytes -= size;
            remaining.insert(
                holder,
                (
                    Holding {
                        transactions: left.transactions - 1,
                        bytes: left.bytes - size,
                    },
                    taken + 1,
                ),
            );
        }
        Ok(evicted)
    }

    /// Adds a transaction that passed the admission checks, recording when it arrived (ms
    /// since the epoch). Returns the transactions evicted to make room for it (their
    /// rejections are remembered as [`EVICTED_CODE`]); an error changes nothing.
    pub fn insert_at(
        &mut self,
        id: Hash32,
        transaction: Transaction,
        size_bytes: usize,
        received_at_ms: u64,
    ) -> Result<Vec<Hash32>, AdmitError> {
        if self.entries.contains_key(&id) {
            return Err(AdmitError::Duplicate(id));
        }
        let signer = transaction.payload.signer.clone();
        let nonce = transaction.payload.nonce;
        if let Some(pending) = self
            .by_nonce
            .get(&signer)
            .and_then(|nonces| nonces.get(&nonce))
        {
            return Err(AdmitError::NonceTaken {
                signer,
                nonce,
                pending: *pending,
            });
        }
        let evicted = self.evictions_for(&signer, size_bytes)?;
        self.remove(&evicted);
        for victim in &evicted {
            self.remember_rejection(
                *victim,
                EVICTED_CODE,
                "evicted from the full mempool: its signer held the most transactions there \
                 and another signer's transaction needed the room; submit it again later"
                    .into(),
            );
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.order.insert(sequence, id);
        self.by_nonce
            .entry(signer.clone())
            .or_default()
            .insert(nonce, id);
        if counts_against_quota(&transaction.payload.body) {
            *self.quota_counted.entry(signer.clone()).or_default() += 1;
        }
        let holding = self.holdings.entry(signer).or_default();
        holding.transactions += 1;
        holding.bytes += size_bytes;
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
        Ok(evicted)
    }

    /// A waiting transaction.
    pub fn get(&self, id: &Hash32) -> Option<&Transaction> {
        self.entries.get(id).map(|entry| &entry.transaction)
    }

    /// When a waiting transaction arrived (ms since the epoch).
    pub fn received_at(&self, id: &Hash32) -> Option<u64> {
        self.entries.get(id).map(|entry| entry.received_at_ms)
    }

    /// [`Mempool::candidates_within`] with no write quota.
    #[cfg(test)]
    pub fn candidates(
        &self,
        count_max: usize,
        signer_count_max: usize,
        next_nonce: impl Fn(&AuthorityId) -> Option<u64>,
    ) -> Vec<Transaction> {
        self.candidates_within(count_max, signer_count_max, next_nonce, |_| None)
    }

    /// Up to `count_max` transactions for a block, at most `signer_count_max` of any one
    /// signer: for each signer the run of nonces that follows its committed one (`next_nonce`:
    /// the nonce a signer's next transaction must carry) without a gap, taken round-robin
    /// across the signers (in the order their oldest waiting transactions arrived), one
    /// transaction of each in turn, so that each signer's nonces stay in order and one
    /// signer's backlog does not crowd the others out of the block.
    ///
    /// Each signer's run also ends before the counted transaction that would pass what its
    /// write quota still takes in the block's window (`quota_room`: how many more counted
    /// transactions the window takes, `None` when no quota applies).
    pub fn candidates_within(
        &self,
        count_max: usize,
        signer_count_max: usize,
        next_nonce: impl Fn(&AuthorityId) -> Option<u64>,
        quota_room: impl Fn(&AuthorityId) -> Option<u64>,
    ) -> Vec<Transaction> {
        let run_max = signer_count_max.min(count_max);
        let mut runs: Vec<Vec<&Transaction>> = Vec::new();
        let mut signers_seen: HashSet<&AuthorityId> = HashSet::new();
        for id in self.order.values() {
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
            let mut run = Vec::new();
            let room = quota_room(signer);
            let mut counted = 0u64;
            for (nonce, id) in nonces.range(expected..) {
                if *nonce != expected || run.len() >= run_max {
                    break;
                }
                if let Some(entry) = self.entries.get(id) {
                    if counts_against_quota(&entry.transaction.payload.body) {
                        if room.is_some_and(|room| counted >= room) {
                            break;
                        }
                        counted += 1;
                    }
                    run.push(&entry.transaction);
                }
                expected += 1;
            }
            if !run.is_empty() {
                runs.push(run);
            }
        }
        let total = runs.iter().map(Vec::len).sum::<usize>().min(count_max);
        let mut picked: Vec<Transaction> = Vec::with_capacity(total);
        let mut turns: VecDeque<std::vec::IntoIter<&Transaction>> =
            runs.into_iter().map(Vec::into_iter).collect();
        while picked.len() < total {
            let Some(mut run) = turns.pop_front() else {
                break;
            };
            if let Some(transaction) = run.next() {
                picked.push(transaction.clone());
                turns.push_back(run);
            }
        }
        picked
    }

    /// [`Mempool::has_ready_within`] with no write quota.
    #[cfg(test)]
    pub fn has_ready(&self, next_nonce: impl Fn(&AuthorityId) -> Option<u64>) -> bool {
        self.has_ready_within(next_nonce, |_| None)
    }

    /// Whether some signer's next nonce (`next_nonce`, by the committed state) waits here and
    /// its write quota still takes it (`quota_room` as for [`Mempool::candidates_within`]): a
    /// block would hold a transaction. A signer whose window is spent does not make the
    /// proposer propose blocks it cannot fill.
    pub fn has_ready_within(
        &self,
        next_nonce: impl Fn(&AuthorityId) -> Option<u64>,
        quota_room: impl Fn(&AuthorityId) -> Option<u64>,
    ) -> bool {
        self.by_nonce.iter().any(|(signer, nonces)| {
            let Some(id) = next_nonce(signer).and_then(|next| nonces.get(&next)) else {
                return false;
            };
            self.entries.get(id).is_some_and(|entry| {
                !counts_against_quota(&entry.transaction.payload.body)
                    || quota_room(signer).is_none_or(|room| room > 0)
            })
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
                if let Some(holding) = self.holdings.get_mut(signer) {
                    holding.transactions -= 1;
                    holding.bytes -= entry.size_bytes;
                    if holding.transactions == 0 {
                        self.holdings.remove(signer);
                    }
                }
                if counts_against_quota(&entry.transaction.payload.body)
                    && let Some(counted) = self.quota_counted.get_mut(signer)
                {
                    *counted -= 1;
                    if *counted == 0 {
                        self.quota_counted.remove(signer);
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
            // No share below the pool's bounds: these tests are of the bounds alone.
            signer_transactions_max: usize::MAX,
            signer_bytes_max: usize::MAX,
            rejections_remembered_max: 2,
        })
    }

    fn shared_pool(transactions_max: usize, signer_transactions_max: usize) -> Mempool {
        Mempool::new(MempoolLimits {
            transactions_max,
            bytes_max: 1_000_000,
            signer_transactions_max,
            signer_bytes_max: 1_000_000,
            rejections_remembered_max: 100,
        })
    }

    /// Inserts `count` transactions of `signer` (nonces from the fixture, 10 bytes each);
    /// their ids in nonce order.
    fn fill(mempool: &mut Mempool, fixture: &mut Fixture, signer: &str, count: u64) -> Vec<Hash32> {
        (0..count)
            .map(|number| {
                let transaction = fixture.issue_business_licence(signer, "370200", number);
                let id = transaction.id(hutong_core::testkit::SUITE);
                mempool.insert_at(id, transaction, 10, 0).unwrap();
                id
            })
            .collect()
    }

    fn ids(transactions: &[Transaction]) -> Vec<Hash32> {
        transactions
            .iter()
            .map(|transaction| transaction.id(hutong_core::testkit::SUITE))
            .collect()
    }

    fn allowance(limit: u64, used: u64) -> Option<Allowance> {
        Some(Allowance {
            limit,
            window_blocks: 100,
            used,
            window_end: 99,
        })
    }

    #[test]
    fn a_signer_is_admitted_what_its_write_quota_still_takes_counting_what_waits() {
        let mut fixture = Fixture::new();
        let mut mempool = shared_pool(100, 100);
        fill(&mut mempool, &mut fixture, "qd-approval", 3);
        let next = fixture.issue_business_licence("qd-approval", "370200", 3);
        // Two committed and three waiting of a quota of six: one more.
        assert_eq!(mempool.check_write_quota(&next, allowance(6, 2), 0), Ok(()));
        assert_eq!(mempool.check_write_quota(&next, None, 0), Ok(()));
        assert_eq!(
            mempool.check_write_quota(&next, allowance(5, 2), 0),
            Err(AdmitError::WriteQuotaExceeded {
                signer: AuthorityId::from("qd-approval"),
                limit: 5,
                window_blocks: 100,
                used: 2,
                waiting: 3,
                window_end: 99,
            })
        );
        // A key rotation is never held to the quota, and is not counted while it waits.
        let rotation = fixture.tx(
            "qd-approval",
            hutong_core::tx::TxBody::RotateKey {
                authority: AuthorityId::from("qd-approval"),
                new_key: hutong_core::testkit::secret("qd-approval-2").public_key(),
                effective_height: 50,
            },
        );
        assert_eq!(
            mempool.check_write_quota(&rotation, allowance(1, 1), 0),
            Ok(())
        );
        let rotation_id = rotation.id(hutong_core::testkit::SUITE);
        mempool.insert_at(rotation_id, rotation, 10, 0).unwrap();
        assert_eq!(mempool.check_write_quota(&next, allowance(6, 2), 0), Ok(()));
        // Removing what waits gives the room back.
        let waiting: Vec<Hash32> = mempool.by_nonce[&AuthorityId::from("qd-approval")]
            .values()
            .copied()
            .collect();
        mempool.remove(&waiting);
        assert_eq!(mempool.check_write_quota(&next, allowance(3, 2), 0), Ok(()));
        assert!(mempool.quota_counted.is_empty());
    }

    /// A block just committed counts its transactions in the allowance before the pool drops
    /// them: they are not counted twice, so the signer is not refused in error meanwhile.
    #[test]
    fn transactions_committed_and_not_yet_dropped_are_not_counted_twice() {
        let mut fixture = Fixture::new();
        let mut mempool = shared_pool(100, 100);
        fill(&mut mempool, &mut fixture, "qd-approval", 3);
        let nonces: Vec<u64> = mempool.by_nonce[&AuthorityId::from("qd-approval")]
            .keys()
            .copied()
            .collect();
        let committed_next = nonces.last().copied().unwrap_or(0) + 1;
        let next = fixture.issue_business_licence("qd-approval", "370200", 3);
        // The three are committed (used 3 of 5) and still in the pool.
        assert_eq!(
            mempool.check_write_quota(&next, allowance(5, 3), committed_next),
            Ok(())
        );
        // Counted twice, as before, they would fill the window.
        assert!(
            mempool
                .check_write_quota(&next, allowance(5, 3), nonces[0])
                .is_err()
        );
    }

    #[test]
    fn a_block_is_offered_no_more_than_each_signers_quota_takes() {
        let mut fixture = Fixture::new();
        let mut mempool = shared_pool(100, 100);
        let flood = fill(&mut mempool, &mut fixture, "qd-approval", 10);
        let other = fill(&mut mempool, &mut fixture, "jn-approval", 3);
        let room = |signer: &AuthorityId| (signer.as_str() == "qd-approval").then_some(2);
        let block = ids(&mempool.candidates_within(100, 100, |_| Some(1), room));
        assert_eq!(
            block,
            vec![flood[0], other[0], flood[1], other[1], other[2]]
        );
        // A spent window offers none of the signer's, and does not make a block ready.
        let spent = |signer: &AuthorityId| (signer.as_str() == "qd-approval").then_some(0);
        assert_eq!(
            ids(&mempool.candidates_within(100, 100, |_| Some(1), spent)),
            other
        );
        assert!(mempool.has_ready_within(|_| Some(1), spent));
        mempool.remove(&other);
        assert!(!mempool.has_ready_within(|_| Some(1), spent));
        assert!(mempool.has_ready_within(|_| Some(1), |_| None));
    }

    #[test]
    fn a_signer_at_its_share_is_refused_while_others_are_admitted() {
        let mut fixture = Fixture::new();
        let mut mempool = shared_pool(10, 3);
        fill(&mut mempool, &mut fixture, "qd-approval", 3);
        let fourth = fixture.issue_business_licence("qd-approval", "370200", 4);
        assert_eq!(
            mempool.insert_at(fourth.id(hutong_core::testkit::SUITE), fourth, 10, 0),
            Err(AdmitError::SignerShareExceeded {
                signer: "qd-approval".into(),
                held_transactions: 3,
                held_bytes: 30,
                share_transactions: 3,
                share_bytes: 1_000_000,
            })
        );
        assert_eq!(mempool.len(), 3);
        // Another signer is still admitted.
        fill(&mut mempool, &mut fixture, "jn-approval", 3);
        assert_eq!(mempool.held_by(&"jn-approval".into()), (3, 30));
        // The share by bytes: one more byte than the share is refused.
        let mut by_bytes = Mempool::new(MempoolLimits {
            transactions_max: 10,
            bytes_max: 1_000,
            signer_transactions_max: 10,
            signer_bytes_max: 250,
            rejections_remembered_max: 10,
        });
        let first = fixture.issue_business_licence("qd-approval", "370200", 5);
        by_bytes
            .insert_at(first.id(hutong_core::testkit::SUITE), first, 200, 0)
            .unwrap();
        let second = fixture.issue_business_licence("qd-approval", "370200", 6);
        assert!(matches!(
            by_bytes.has_room(&"qd-approval".into(), 51),
            Err(AdmitError::SignerShareExceeded {
                held_bytes: 200,
                ..
            })
        ));
        by_bytes
            .insert_at(second.id(hutong_core::testkit::SUITE), second, 50, 0)
            .unwrap();
        // Once committed, the share frees again.
        let committed = mempool.candidates(10, 10, |_| Some(1));
        mempool.remove(&ids(&committed));
        assert!(mempool.is_empty());
        assert_eq!(mempool.held_by(&"qd-approval".into()), (0, 0));
    }

    #[test]
    fn a_full_pool_evicts_the_largest_holders_highest_nonce_for_a_smaller_holder() {
        let mut fixture = Fixture::new();
        let mut mempool = shared_pool(6, 6);
        let flood = fill(&mut mempool, &mut fixture, "qd-approval", 5);
        fill(&mut mempool, &mut fixture, "jn-approval", 1);
        // Full. The flooder itself gets "full", and nothing changes.
        let more = fixture.issue_business_licence("qd-approval", "370200", 9);
        assert!(matches!(
            mempool.insert_at(more.id(hutong_core::testkit::SUITE), more, 10, 0),
            Err(AdmitError::Full { .. })
        ));
        assert_eq!(mempool.len(), 6);
        // A smaller holder's transaction takes the flooder's highest nonce's place: the
        // flooder's run stays without a gap.
        let other = fixture.issue_business_licence("jn-approval", "370800", 10);
        let evicted = mempool
            .insert_at(other.id(hutong_core::testkit::SUITE), other, 10, 0)
            .unwrap();
        assert_eq!(evicted, vec![flood[4]]);
        assert!(!mempool.contains(&flood[4]) && mempool.contains(&flood[3]));
        assert_eq!(
            mempool.rejection(&flood[4]).map(|(code, _)| code),
            Some(EVICTED_CODE.to_owned())
        );
        assert_eq!(mempool.held_by(&"qd-approval".into()), (4, 40));
        assert_eq!(mempool.held_by(&"jn-approval".into()), (2, 20));
        // Levelled: 4 against 2 still evicts (4 - 1 >= 2 + 1); then 3 against 3 does not.
        let third = fixture.issue_business_licence("jn-approval", "370800", 11);
        assert_eq!(
            mempool
                .insert_at(third.id(hutong_core::testkit::SUITE), third, 10, 0)
                .unwrap(),
            vec![flood[3]]
        );
        let fourth = fixture.issue_business_licence("jn-approval", "370800", 12);
        assert!(matches!(
            mempool.insert_at(fourth.id(hutong_core::testkit::SUITE), fourth, 10, 0),
            Err(AdmitError::Full { .. })
        ));
        assert_eq!(mempool.len(), 6);
        assert_eq!(mempool.held_by(&"qd-approval".into()), (3, 30));
    }

    #[test]
    fn eviction_for_bytes_takes_as_many_as_room_needs_or_none() {
        let mut fixture = Fixture::new();
        let mut mempool = Mempool::new(MempoolLimits {
            transactions_max: 100,
            bytes_max: 100,
            signer_transactions_max: 100,
            signer_bytes_max: 100,
            rejections_remembered_max: 10,
        });
        let flood = fill(&mut mempool, &mut fixture, "qd-approval", 10);
        // 35 bytes need four of the flooder's 10-byte transactions, its four highest nonces.
        let large = fixture.issue_business_licence("jn-approval", "370800", 20);
        let evicted = mempool
            .insert_at(large.id(hutong_core::testkit::SUITE), large, 35, 0)
            .unwrap();
        assert_eq!(evicted, vec![flood[9], flood[8], flood[7], flood[6]]);
        assert_eq!(mempool.bytes(), 95);
        // Larger than what levelling allows to evict: refused, and nothing is evicted.
        let larger = fixture.issue_business_licence("jn-approval", "370800", 21);
        assert!(matches!(
            mempool.insert_at(larger.id(hutong_core::testkit::SUITE), larger, 60, 0),
            Err(AdmitError::Full { .. })
        ));
        assert_eq!(mempool.len(), 7);
        assert_eq!(mempool.bytes(), 95);
    }

    #[test]
    fn blocks_are_filled_round_robin_within_each_signers_share() {
        let mut fixture = Fixture::new();
        let mut mempool = shared_pool(100, 100);
        // The flooder's backlog arrives first, then two others.
        let flood = fill(&mut mempool, &mut fixture, "qd-approval", 20);
        let other = fill(&mut mempool, &mut fixture, "jn-approval", 2);
        let third = fill(&mut mempool, &mut fixture, "gov-a", 1);
        let block = ids(&mempool.candidates(8, 4, |_| Some(1)));
        assert_eq!(
            block,
            vec![
                flood[0], other[0], third[0], flood[1], other[1], flood[2], flood[3]
            ]
        );
        // Alone, a signer still gets only its share of the block.
        let mut alone = shared_pool(100, 100);
        let run = fill(&mut alone, &mut fixture, "qd-approval", 20);
        // (The fixture's nonces of the signer go on from 21.)
        assert_eq!(
            ids(&alone.candidates(8, 4, |_| Some(21))),
            run[..4].to_vec()
        );
        // The block's bound holds across signers.
        assert_eq!(mempool.candidates(2, 4, |_| Some(1)).len(), 2);
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
            .candidates(10, 10, |_| Some(1))
            .iter()
            .map(|transaction| transaction.id(hutong_core::testkit::SUITE))
            .collect();
        assert_eq!(
            order,
            // Round-robin: the signer whose transaction arrived first, then the other, then
            // the first again.
            vec![
                a1.id(hutong_core::testkit::SUITE),
                b1.id(hutong_core::testkit::SUITE),
                a2.id(hutong_core::testkit::SUITE)
            ]
        );
        assert_eq!(mempool.candidates(1, 1, |_| Some(1)).len(), 1);
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
        assert!(mempool.candidates(10, 10, |_| Some(1)).is_empty());
        assert!(!mempool.has_ready(|_| Some(1)));
        assert_eq!(mempool.next_nonce(&signer, 1), 1);
        // The first: offered alone; the third still waits for the second.
        mempool
            .insert_at(first.id(hutong_core::testkit::SUITE), first.clone(), 10, 0)
            .unwrap();
        let offered: Vec<Hash32> = mempool
            .candidates(10, 10, |_| Some(1))
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
            .candidates(10, 10, |_| Some(1))
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
        assert_eq!(mempool.candidates(10, 10, |_| Some(2)).len(), 2);
        assert!(mempool.has_ready(|_| Some(2)));
        assert!(!mempool.has_ready(|_| Some(5)));
        assert!(mempool.candidates(10, 10, |_| None).is_empty());
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
