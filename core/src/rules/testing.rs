//! What the rules' unit tests share: a chain held in memory that runs one transaction per
//! block through the signature check and the rules, and checks on every refusal that nothing
//! was written.

use std::collections::BTreeMap;

use super::{Context, Overlay, RuleError, apply_transaction, check_signatures};
use crate::records::{
    Authority, AuthorityId, Height, Licence, LicenceNumber, Record, RecordKey, TimeMs,
};
use crate::testkit::{CHAIN_ID, Fixture, GENESIS_TIME, MemoryState};
use crate::tx::{Transaction, TxBody};

/// The writes of one accepted transaction, by key.
pub(super) type Writes = BTreeMap<RecordKey, Record>;

/// The fixture's genesis in memory, and the blocks committed on it so far.
#[derive(Debug)]
pub(super) struct Chain {
    pub fixture: Fixture,
    pub state: MemoryState,
    /// The height of the last committed block (0: only genesis).
    pub height: Height,
}

impl Chain {
    pub fn new() -> Self {
        let fixture = Fixture::new();
        let state = fixture.genesis_state();
        Chain {
            fixture,
            state,
            height: 0,
        }
    }

    /// The time of the block at `height`: a second after the one before.
    pub fn time_at(height: Height) -> TimeMs {
        GENESIS_TIME + height * 1000
    }

    /// Where the next block runs.
    pub fn next_context(&self) -> Context<'static> {
        Context {
            chain_id: CHAIN_ID,
            suite: crate::testkit::SUITE,
            height: self.height + 1,
            time: Self::time_at(self.height + 1),
        }
    }

    /// Runs `transaction` alone in the next block: its signatures, then the rules.
    pub fn apply(&mut self, transaction: &Transaction) -> Result<Writes, RuleError> {
        let context = self.next_context();
        if let Some(Err(error)) = check_signatures(&self.state, &context, &[transaction]).pop() {
            self.rewind_nonce(transaction);
            return Err(error);
        }
        self.apply_rules(transaction)
    }

    /// Runs `transaction` alone in the next block through the rules only, as after a
    /// signature check that accepted it. Accepted: the block commits and its writes are
    /// returned. Refused: asserts that the block wrote nothing and that the state is as it
    /// was, and sets the fixture's nonce of the signer back to the ledger's.
    pub fn apply_rules(&mut self, transaction: &Transaction) -> Result<Writes, RuleError> {
        let context = self.next_context();
        let before = self.state.records.clone();
        let mut overlay = Overlay::new(&self.state);
        match apply_transaction(
            &mut overlay,
            &context,
            transaction,
            transaction.id(crate::testkit::SUITE),
        ) {
            Ok(_) => {
                let writes = overlay.into_writes();
                self.state
                    .commit(writes.clone(), [transaction.id(crate::testkit::SUITE)]);
                self.height += 1;
                Ok(writes)
            }
            Err(error) => {
                assert!(
                    overlay.writes().is_empty(),
                    "a refused transaction wrote {:?}",
                    overlay.writes()
                );
                drop(overlay);
                assert_eq!(self.state.records, before, "a refusal changed the state");
                self.rewind_nonce(transaction);
                Err(error)
            }
        }
    }

    /// Commits an empty block, so that keys and grants scheduled for the next height apply.
    pub fn empty_block(&mut self) {
        self.height += 1;
    }

    fn rewind_nonce(&mut self, transaction: &Transaction) {
        let signer = &transaction.payload.signer;
        if let Some(Record::Authority(authority)) = self
            .state
            .records
            .get(&RecordKey::Authority(signer.clone()))
        {
            self.fixture.set_last_nonce(signer, authority.last_nonce);
        }
    }

    /// Puts a record straight into the committed state, to build a state that transactions
    /// would take long to reach.
    pub fn put(&mut self, record: Record) {
        self.state.records.insert(record.key(), record);
    }

    pub fn authority(&self, id: &str) -> Authority {
        match self.state.records.get(&RecordKey::Authority(id.into())) {
            Some(Record::Authority(authority)) => authority.clone(),
            other => panic!("no authority {id}: {other:?}"),
        }
    }

    pub fn licence(&self, type_code: &str, number: &LicenceNumber) -> Licence {
        match self
            .state
            .records
            .get(&RecordKey::Licence(type_code.into(), number.clone()))
        {
            Some(Record::Licence(licence)) => licence.clone(),
            other => panic!("no licence {type_code}/{number}: {other:?}"),
        }
    }

    /// The record of `id` as a transaction it signs next leaves it: its nonce one higher.
    pub fn signer_after_next(&self, id: &str) -> (RecordKey, Record) {
        let mut authority = self.authority(id);
        authority.last_nonce += 1;
        (
            RecordKey::Authority(authority.id.clone()),
            Record::Authority(authority),
        )
    }

    /// A governance record signed by three of the four governors.
    pub fn governance(&mut self, body: TxBody) -> Transaction {
        self.fixture.governance(body, 3)
    }

    /// Issues a business licence in Qingdao by its approval bureau; returns its number.
    pub fn issue_business_licence(&mut self, enterprise: u64) -> LicenceNumber {
        let issuance = self
            .fixture
            .issue_business_licence("qd-approval", "370200", enterprise);
        let TxBody::IssueLicence { number, .. } = &issuance.payload.body else {
            unreachable!("the fixture builds an issuance")
        };
        let number = number.clone();
        self.apply(&issuance)
            .expect("the fixture's issuance is valid");
        number
    }
}

/// The expected writes, from `(key, record)` pairs.
pub(super) fn writes(entries: impl IntoIterator<Item = (RecordKey, Record)>) -> Writes {
    entries.into_iter().collect()
}

/// An authority's `(key, record)` pair.
pub(super) fn authority_entry(authority: Authority) -> (RecordKey, Record) {
    (
        RecordKey::Authority(authority.id.clone()),
        Record::Authority(authority),
    )
}

/// Any record's `(key, record)` pair.
pub(super) fn entry(record: Record) -> (RecordKey, Record) {
    (record.key(), record)
}

/// A fresh authority id.
pub(super) fn id(text: &str) -> AuthorityId {
    AuthorityId::from(text)
}

impl Chain {
    /// The root of the sparse Merkle tree over the committed records: what a block header
    /// would commit to.
    pub fn state_root(&self) -> crate::hash::Hash32 {
        let suite = crate::testkit::SUITE;
        let leaves = self
            .state
            .records
            .iter()
            .map(|(key, record)| (key.state_hash(suite), record.state_hash(suite)))
            .collect();
        crate::smt::root_of_leaves(suite, leaves).expect("distinct keys give distinct leaves")
    }

    /// Runs `transaction` (signatures, then rules), expects it refused with `code`, and
    /// asserts that the state root is as before.
    pub fn refuse(&mut self, transaction: &Transaction, code: &str) -> RuleError {
        let root = self.state_root();
        let error = match self.apply(transaction) {
            Ok(writes) => panic!("expected {code}, the transaction wrote {writes:?}"),
            Err(error) => error,
        };
        assert_eq!(error.code(), code, "{error}");
        assert_eq!(self.state_root(), root, "a refusal changed the state root");
        error
    }
}
