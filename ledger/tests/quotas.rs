//! Write quotas through the store (ADR 0029): a block that carries a transaction beyond its
//! signer's quota is invalid and changes nothing, a block being built leaves it out, and the
//! count is a record of the state, provable against the header's state root.

use hutong_core::quota::{QuotaScope, WriteCount, WriteQuota};
use hutong_core::records::{AuthorityId, Record, RecordKey};
use hutong_core::rules::RuleError;
use hutong_core::smt;
use hutong_core::testkit::{Fixture, GENESIS_TIME, SUITE};
use hutong_core::tx::{Transaction, TxBody};
use hutong_ledger::store::{BlockError, MemoryBackend, Mode, Store};

struct Chain {
    fixture: Fixture,
    store: Store,
    time: u64,
}

impl Chain {
    fn new() -> Self {
        let fixture = Fixture::new();
        let store = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
        Chain {
            fixture,
            store,
            time: GENESIS_TIME,
        }
    }

    /// Executes a block of `transactions` in `mode` and commits it if it executes; the
    /// executed block's kept transactions and rejections, or the block's error.
    fn block(
        &mut self,
        transactions: Vec<Transaction>,
        mode: Mode,
    ) -> Result<(usize, Vec<RuleError>), BlockError> {
        self.time += 1000;
        let proposer = self.fixture.node_keys[0].public_key();
        let execution = self
            .store
            .execute(self.time, proposer, transactions, mode)?;
        let kept = execution.transactions.len();
        let rejected = execution
            .rejected
            .iter()
            .map(|(_, error)| error.clone())
            .collect();
        let certificate = self.fixture.certify(&execution.header);
        self.store.commit(execution, certificate).unwrap();
        Ok((kept, rejected))
    }

    fn issuances(&mut self, from: u64, count: u64) -> Vec<Transaction> {
        (from..from + count)
            .map(|number| {
                self.fixture
                    .issue_business_licence("qd-approval", "370200", number)
            })
            .collect()
    }
}

fn qd_approval() -> AuthorityId {
    AuthorityId::from("qd-approval")
}

#[test]
fn a_block_beyond_a_quota_is_invalid_and_a_built_block_leaves_the_excess_out() {
    let mut chain = Chain::new();
    let set = chain.fixture.governance(
        TxBody::SetWriteQuota {
            scope: QuotaScope::Authority(qd_approval()),
            quota: Some(WriteQuota::Limited {
                max_transactions: 3,
                window_blocks: 100,
            }),
        },
        3,
    );
    assert_eq!(chain.block(vec![set], Mode::Verify).unwrap(), (1, vec![]));

    // A proposer's block with four of the department's issuances: the validators refuse it
    // whole, and the state is as it was.
    let head = chain.store.head().unwrap().header;
    let four = chain.issuances(1, 4);
    let refused = chain.block(four.clone(), Mode::Verify);
    match refused {
        Err(BlockError::InvalidTransaction { index, error, .. }) => {
            assert_eq!(index, 3);
            assert_eq!(
                error,
                RuleError::WriteQuotaExceeded {
                    authority: qd_approval(),
                    limit: 3,
                    window_blocks: 100,
                    window_end: 99,
                }
            );
        }
        other => panic!("a block beyond the quota was not refused: {other:?}"),
    }
    assert_eq!(chain.store.head().unwrap().header, head);

    // The same four built into a block: three are kept, the fourth is left out for the quota.
    let (kept, rejected) = chain.block(four, Mode::Build).unwrap();
    assert_eq!(kept, 3);
    assert_eq!(
        rejected,
        vec![RuleError::WriteQuotaExceeded {
            authority: qd_approval(),
            limit: 3,
            window_blocks: 100,
            window_end: 99,
        }]
    );

    // The count is in the state the header commits to.
    let key = RecordKey::WriteCount(qd_approval());
    let proof = chain.store.prove(&key).unwrap();
    let count = Record::WriteCount(WriteCount {
        authority: qd_approval(),
        window_start: 0,
        transactions: 3,
    });
    assert_eq!(proof.record, Some(count.clone()));
    smt::verify_membership(
        SUITE,
        proof.header.state_root,
        &key.state_hash(SUITE),
        &count.state_hash(SUITE),
        &proof.proof,
    )
    .unwrap();
    assert_eq!(
        hutong_core::rules::write_allowance(&chain.store, &qd_approval(), 3)
            .unwrap()
            .map(|allowance| allowance.remaining()),
        Some(0)
    );
}

#[test]
fn a_chain_without_quotas_writes_no_count() {
    let mut chain = Chain::new();
    let issuances = chain.issuances(1, 3);
    assert_eq!(chain.block(issuances, Mode::Verify).unwrap(), (3, vec![]));
    let proof = chain
        .store
        .prove(&RecordKey::WriteCount(qd_approval()))
        .unwrap();
    assert_eq!(proof.record, None);
}
