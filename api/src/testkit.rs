//! A [`NodeControl`] over a store, for tests, benchmarks and the explorer example: it admits a
//! transaction by executing it alone on the latest state in build mode (which reveals the rule
//! that rejects it) and keeps it pending; nothing commits it unless the caller does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hutong_core::crypto::PublicKey;
use hutong_core::hash::Hash32;
use hutong_core::limits::NONCE_AHEAD_MAX;
use hutong_core::records::TimeMs;
use hutong_core::tx::Transaction;
use hutong_ledger::store::{Mode, Store};

use crate::node::{NodeControl, NodeInfo, NodeRole, PendingStatus, Staleness, SubmitError};

/// A stand-in for a node: admission by the ledger's rules, an in-memory mempool.
#[derive(Debug)]
pub struct StoreNode {
    store: Arc<Store>,
    node_key: PublicKey,
    received_at: TimeMs,
    mempool_capacity: usize,
    ready: AtomicBool,
    staleness: Mutex<Option<Staleness>>,
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
            staleness: Mutex::new(None),
            known: Mutex::new(HashMap::new()),
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Marks the node ready or not (`/readyz`).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Says the node's answers are stale (`Some`) or not.
    pub fn set_staleness(&self, staleness: Option<Staleness>) {
        if let Ok(mut slot) = self.staleness.lock() {
            *slot = staleness;
        }
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
                known.remove(&transaction.id(self.store.suite()));
            }
        }
        taken
    }

    fn admit(&self, transaction: Transaction) -> Result<Hash32, SubmitError> {
        let id = transaction.id(self.store.suite());
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
        // As a node admits: a nonce ahead of the signer's next waits for the ones before it.
        let checked = self
            .store
            .check_transactions(&[&transaction], head_time + 1, NONCE_AHEAD_MAX)
            .into_iter()
            .next()
            .unwrap_or(Ok(()));
        if let Err(error) = checked {
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

    fn next_nonce(
        &self,
        authority: &hutong_core::records::AuthorityId,
        committed_next: u64,
    ) -> u64 {
        let Ok(pending) = self.pending.lock() else {
            return committed_next;
        };
        let mut next = committed_next;
        while pending
            .iter()
            .any(|waiting| waiting.payload.signer == *authority && waiting.payload.nonce == next)
        {
            next += 1;
        }
        next
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

    fn staleness(&self) -> Option<Staleness> {
        self.staleness.lock().ok().and_then(|slot| slot.clone())
    }

    fn metrics(&self) -> String {
        let pending = self
            .pending
            .lock()
            .map(|pending| pending.len())
            .unwrap_or(0);
        format!(
            "# HELP hutong_mempool_transactions Transactions waiting in the mempool.\n\
             # TYPE hutong_mempool_transactions gauge\nhutong_mempool_transactions {pending}\n"
        )
    }
}

/// What [`demo_chain`] recorded, for tests and pages to point at.
#[derive(Debug, Clone)]
pub struct DemoFacts {
    /// Business licences issued in Qingdao by `qd-approval`: `business-licence/<USCC>`.
    pub qingdao_numbers: Vec<hutong_core::records::LicenceNumber>,
    /// Business licences issued in Jining by `jn-approval`.
    pub jining_numbers: Vec<hutong_core::records::LicenceNumber>,
    /// Suspended by the Qingdao market regulator.
    pub suspended: hutong_core::records::LicenceNumber,
    /// Revoked.
    pub revoked: hutong_core::records::LicenceNumber,
    /// Under an open objection.
    pub disputed: hutong_core::records::LicenceNumber,
    pub objection: Hash32,
    /// Xinjiang recognises Shandong business licences.
    pub recognition: Hash32,
    /// A qualification held by a person, with a private `id_number` field.
    pub qualification: hutong_core::records::LicenceNumber,
    pub person: Hash32,
    pub id_number: String,
    pub salt: [u8; 32],
    /// The height at which a fifth validator joined.
    pub validator_change_height: hutong_core::records::Height,
}

/// A chain built with the ledger's fixture.
#[derive(Debug)]
pub struct DemoChain {
    pub fixture: hutong_core::testkit::Fixture,
    pub store: Arc<Store>,
    pub facts: DemoFacts,
}

/// Time of block `index` of the demo chain: one second apart after genesis.
fn block_time(index: u64) -> TimeMs {
    hutong_core::testkit::GENESIS_TIME + index * 1000
}

impl DemoChain {
    /// Executes and commits one block of `transactions` (signed by all fixture validators).
    /// Panics when the block does not execute: a demo chain is built from consistent fixtures.
    #[allow(clippy::panic)]
    pub fn commit(&self, transactions: Vec<Transaction>) -> hutong_core::block::Block {
        let head = self.store.head().map(|head| head.header).ok();
        let height = head.as_ref().map_or(0, |header| header.height);
        let time = head.as_ref().map_or(block_time(1), |header| {
            header.time.max(block_time(height)) + 1000
        });
        let execution = match self.store.execute(
            time,
            self.fixture.node_keys[0].public_key(),
            transactions,
            Mode::Verify,
        ) {
            Ok(execution) => execution,
            Err(error) => panic!("demo block {} does not execute: {error}", height + 1),
        };
        let certificate = self.fixture.certify(&execution.header);
        match self.store.commit(execution, certificate) {
            Ok(block) => block,
            Err(error) => panic!("demo block {} does not commit: {error}", height + 1),
        }
    }
}

/// A chain of `qingdao_licences` business licences issued in Qingdao and a few in Jining, one
/// suspended, one revoked, one under objection, a Xinjiang recognition of Shandong licences, a
/// person's qualification with a private field, and a validator added to the set. In memory.
///
/// For tests, benchmarks and demonstrations only: it panics if the fixture is inconsistent.
pub fn demo_chain(qingdao_licences: u64) -> DemoChain {
    demo_chain_in(
        Box::new(hutong_ledger::store::MemoryBackend::new()),
        qingdao_licences,
    )
}

/// [`demo_chain`] on a storage engine of the caller's choice (an empty one).
#[allow(clippy::panic)]
pub fn demo_chain_in(
    backend: Box<dyn hutong_ledger::store::Backend>,
    qingdao_licences: u64,
) -> DemoChain {
    use hutong_core::records::{IssuedBy, NodeChange, NodeEntry, StatusAction};
    use hutong_core::testkit::{
        DAY_MS, Fixture, GENESIS_TIME, business_licence_body, qualification_body, region, secret,
    };
    use hutong_core::tx::TxBody;

    const BLOCK_TRANSACTIONS: u64 = 1000;
    let fixture = Fixture::new();
    let store = match Store::create_with(backend, &fixture.genesis) {
        Ok(store) => Arc::new(store),
        Err(error) => panic!("demo store: {error}"),
    };
    let mut chain = DemoChain {
        fixture,
        store,
        facts: DemoFacts {
            qingdao_numbers: Vec::new(),
            jining_numbers: Vec::new(),
            suspended: "".into(),
            revoked: "".into(),
            disputed: "".into(),
            objection: Hash32::ZERO,
            recognition: Hash32::ZERO,
            qualification: "QUAL-2026-0001".into(),
            person: hutong_core::testkit::SUITE.tagged("demo/person", b"370202199001011234"),
            id_number: "370202199001011234".into(),
            salt: [7u8; 32],
            validator_change_height: 0,
        },
    };
    let number_of = |body: &TxBody| match body.licence() {
        Some((_, number)) => number.clone(),
        None => panic!("an issuance names a licence"),
    };
    let mut issued = 0;
    while issued < qingdao_licences {
        let count = BLOCK_TRANSACTIONS.min(qingdao_licences - issued);
        let mut transactions = Vec::with_capacity(count as usize);
        for n in issued..issued + count {
            let body = business_licence_body("370200", n + 1);
            chain.facts.qingdao_numbers.push(number_of(&body));
            transactions.push(chain.fixture.tx("qd-approval", body));
        }
        chain.commit(transactions);
        issued += count;
    }
    let mut transactions = Vec::new();
    for n in 1..=5 {
        let body = business_licence_body("370800", n);
        chain.facts.jining_numbers.push(number_of(&body));
        transactions.push(chain.fixture.tx("jn-approval", body));
    }
    let qualification = qualification_body(
        chain.facts.qualification.as_str(),
        chain.facts.person,
        &chain.facts.id_number,
        &chain.facts.salt,
    );
    transactions.push(chain.fixture.tx("hr-bureau", qualification));
    let attestation = chain.fixture.tx(
        "xj-recognizer",
        TxBody::AttestRecognition {
            recognizing_region: region("650000"),
            type_codes: vec!["business-licence".into()],
            issued_by: IssuedBy::Region(region("370000")),
            scope: "政务服务与市场准入 government services and market access".into(),
            valid_from: GENESIS_TIME,
            valid_until: None,
        },
    );
    chain.facts.recognition = attestation.id(chain.fixture.suite());
    transactions.push(attestation);
    chain.commit(transactions);

    let qingdao = chain.facts.qingdao_numbers.clone();
    let pick = |index: usize| match qingdao.get(index) {
        Some(number) => number.clone(),
        None => panic!("the demo chain needs at least 3 Qingdao licences"),
    };
    chain.facts.suspended = pick(1);
    chain.facts.revoked = pick(2);
    chain.facts.disputed = pick(0);
    let change =
        |number: &hutong_core::records::LicenceNumber, action: StatusAction, reason: &str| {
            TxBody::ChangeStatus {
                type_code: "business-licence".into(),
                number: number.clone(),
                action,
                effective_at: GENESIS_TIME + DAY_MS,
                reason: reason.into(),
            }
        };
    let suspend = chain.fixture.tx(
        "qd-market",
        change(
            &chain.facts.suspended,
            StatusAction::Suspend,
            "经营异常 irregular operation",
        ),
    );
    let revoke = chain.fixture.tx(
        "qd-approval",
        change(
            &chain.facts.revoked,
            StatusAction::Revoke,
            "虚假登记 false registration",
        ),
    );
    let objection = chain.fixture.tx(
        "jn-approval",
        TxBody::FileObjection {
            type_code: "business-licence".into(),
            number: chain.facts.disputed.clone(),
            reason: "住所信息与实际不符 the address on record is wrong".into(),
            recognition: None,
        },
    );
    chain.facts.objection = objection.id(chain.fixture.suite());
    let head = chain.store.height().unwrap_or(0);
    let effective_height = head + 3;
    let validators = chain.fixture.governance(
        TxBody::ChangeValidators {
            changes: vec![NodeChange::Set(NodeEntry {
                key: secret("node-4").public_key(),
                authority: "gov-a".into(),
                power: 1,
            })],
            effective_height,
        },
        3,
    );
    chain.commit(vec![suspend, revoke, objection, validators]);
    chain.facts.validator_change_height = effective_height;
    // Blocks up to and past the change, so that the head is signed by the new set.
    while chain.store.height().unwrap_or(0) < effective_height + 1 {
        chain.commit(Vec::new());
    }
    chain
}

/// What a node lying by omission does to a proof document: it leaves out the records `drop`
/// picks and proves the rest again with a multiproof of their own (the single proofs recovered
/// from the honest multiproof). Returns how many it left out; fails if the honest multiproof
/// does not verify.
pub fn drop_records(
    suite: hutong_core::suite::Suite,
    state_root: Hash32,
    records: &mut Vec<hutong_verify::ProvedRecord>,
    state_proof: &mut hutong_core::multiproof::SmtMultiProof,
    mut drop: impl FnMut(&hutong_core::records::RecordKey) -> bool,
) -> Result<usize, hutong_verify::BundleError> {
    let singles = hutong_verify::expand_records(suite, state_root, records, state_proof)?;
    let before = records.len();
    let (kept, singles): (Vec<_>, Vec<_>) = records
        .drain(..)
        .zip(singles)
        .filter(|(record, _)| !drop(&record.key()))
        .unzip();
    let references: Vec<_> = singles.iter().collect();
    *state_proof = hutong_verify::multiproof_of(suite, &kept, &references)?;
    *records = kept;
    Ok(before - records.len())
}
