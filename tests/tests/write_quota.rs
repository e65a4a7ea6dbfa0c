//! A write quota set by the governors against a real validator process (ADR 0029): the
//! governors hold `qd-approval` to a quota, the department floods valid issuances, every one
//! beyond the quota is answered 429 `write_quota_exceeded` and none of them commits, another
//! department's transactions are admitted and commit, the chain keeps committing, and the
//! governors (whose records the quota never holds) lift the quota, after which the department
//! writes again. Bounded in time: each wait has its own deadline.

use std::time::{Duration, Instant};

use hutong_core::hash::Hash32;
use hutong_core::quota::{QuotaScope, WriteQuota};
use hutong_core::records::AuthorityId;
use hutong_core::tx::{Transaction, TxBody};
use hutong_tests::Network;
use hutong_tests::flood::Submitter;

/// The department's quota, and the window (the longest allowed, so that the test's blocks all
/// fall in the first window and the ledger's count of the department is its committed nonce).
const QUOTA_TRANSACTIONS: u64 = 40;
const WINDOW_BLOCKS: u64 = hutong_core::limits::WRITE_QUOTA_WINDOW_BLOCKS_MAX;
/// What the department floods: several times its quota.
const FLOOD_TRANSACTIONS: u64 = 200;
/// The other department's handful.
const OTHER_TRANSACTIONS: u64 = 5;
const COMMIT_WAIT: Duration = Duration::from_secs(30);

/// Waits (bounded) until `id` is committed on the node.
fn wait_committed(network: &Network, id: &Hash32) {
    let deadline = Instant::now() + COMMIT_WAIT;
    loop {
        if network.nodes[0].transaction_state(id).as_deref() == Some("committed") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "transaction {id} did not commit\n{}",
            network.logs_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last nonce of `authority` the ledger committed.
fn last_committed(network: &Network, authority: &str) -> u64 {
    let (status, body) = network.nodes[0]
        .get(&format!("/v1/authorities/{authority}/nonce"))
        .expect("the validator answers");
    assert_eq!(status, 200, "{body}");
    body["last_committed"].as_u64().expect("a committed nonce")
}

fn set_quota(network: &mut Network, quota: WriteQuota) -> Transaction {
    network.fixture.governance(
        TxBody::SetWriteQuota {
            scope: QuotaScope::Authority(AuthorityId::from("qd-approval")),
            quota: Some(quota),
        },
        3,
    )
}

#[test]
fn a_department_held_to_a_write_quota_writes_no_more_than_it() {
    let test_started = Instant::now();
    let mut network = Network::new(1);
    network.start_all();
    network.wait_for("the first block", Duration::from_secs(30), |network| {
        network.nodes[0].height().is_some_and(|height| height >= 1)
    });
    let api = network.nodes[0].api.clone();
    let submitter = Submitter::new(&api);

    // The governors set the quota.
    let quota = set_quota(
        &mut network,
        WriteQuota::Limited {
            max_transactions: QUOTA_TRANSACTIONS,
            window_blocks: WINDOW_BLOCKS,
        },
    );
    let answer = submitter.submit(&quota).expect("the validator answers");
    assert_eq!(answer.status, 202, "{answer:?}");
    wait_committed(&network, &quota.id(hutong_core::testkit::SUITE));

    // The department floods, in nonce order, each transaction once.
    let flood: Vec<Transaction> = (1..=FLOOD_TRANSACTIONS)
        .map(|number| {
            network
                .fixture
                .issue_business_licence("qd-approval", "370200", number)
        })
        .collect();
    let mut admitted = Vec::new();
    let mut quota_refusals = 0u64;
    for transaction in &flood {
        let answer = submitter
            .submit(transaction)
            .expect("the validator answers");
        match (answer.status, answer.code.as_deref()) {
            (202, _) => admitted.push(transaction.id(hutong_core::testkit::SUITE)),
            (429, Some("write_quota_exceeded")) => quota_refusals += 1,
            _ => panic!("unexpected answer to the flood: {answer:?}"),
        }
    }
    println!(
        "flood: {} admitted, {quota_refusals} refused with write_quota_exceeded",
        admitted.len()
    );
    assert_eq!(admitted.len() as u64, QUOTA_TRANSACTIONS);
    assert_eq!(quota_refusals, FLOOD_TRANSACTIONS - QUOTA_TRANSACTIONS);
    // The admitted ones are the first nonces: each refusal came once the window was full.
    assert_eq!(
        admitted,
        flood[..QUOTA_TRANSACTIONS as usize]
            .iter()
            .map(|transaction| transaction.id(hutong_core::testkit::SUITE))
            .collect::<Vec<_>>()
    );

    // Another department is not held to it.
    let others: Vec<Transaction> = (1..=OTHER_TRANSACTIONS)
        .map(|number| {
            network
                .fixture
                .issue_business_licence("jn-approval", "370800", 1_000_000 + number)
        })
        .collect();
    for transaction in &others {
        let answer = submitter
            .submit(transaction)
            .expect("the validator answers");
        assert_eq!(
            answer.status, 202,
            "the other department was refused: {answer:?}"
        );
    }
    for transaction in &others {
        wait_committed(&network, &transaction.id(hutong_core::testkit::SUITE));
    }
    for id in &admitted {
        wait_committed(&network, id);
    }

    // The chain keeps committing, and the ledger holds exactly the quota of the department.
    let height = network.nodes[0].height().expect("height");
    network.wait_for("two more blocks", Duration::from_secs(30), |network| {
        network.nodes[0]
            .height()
            .is_some_and(|now| now >= height + 2)
    });
    let height = network.nodes[0].height().expect("height");
    assert!(height < WINDOW_BLOCKS, "the test left the first window");
    assert_eq!(last_committed(&network, "qd-approval"), QUOTA_TRANSACTIONS);
    let beyond = &flood[QUOTA_TRANSACTIONS as usize];
    let answer = submitter.submit(beyond).expect("the validator answers");
    assert_eq!(answer.status, 429, "{answer:?}");
    assert_eq!(answer.code.as_deref(), Some("write_quota_exceeded"));
    assert!(
        answer
            .body
            .contains(&format!("ends at height {}", WINDOW_BLOCKS - 1)),
        "the answer names the window's end: {}",
        answer.body
    );

    // The governors lift it (a governance record is never held to a quota), and the
    // department writes again from its next nonce.
    let lift = set_quota(&mut network, WriteQuota::Unlimited);
    let answer = submitter.submit(&lift).expect("the validator answers");
    assert_eq!(answer.status, 202, "{answer:?}");
    wait_committed(&network, &lift.id(hutong_core::testkit::SUITE));
    let answer = submitter.submit(beyond).expect("the validator answers");
    assert_eq!(answer.status, 202, "{answer:?}");
    wait_committed(&network, &beyond.id(hutong_core::testkit::SUITE));
    assert_eq!(
        last_committed(&network, "qd-approval"),
        QUOTA_TRANSACTIONS + 1
    );
    println!(
        "write quota test: {} s, head at {}",
        test_started.elapsed().as_secs(),
        network.nodes[0].height().unwrap_or(0)
    );
}
