//! One department's key, stolen, against a real validator process (ADR 0031): the story of
//! the rules' suite (core/src/rules/attacks_tests.rs) told through the HTTP API of a running
//! node, as the thief and the governors would tell it.
//!
//! 1. The department issues a licence; then the thief, holding the department's key, issues
//!    one of its own.
//! 2. The thief tries to park a rotation to its key at a height no chain reaches: refused
//!    `rotation_too_far`, the state root unchanged. It parks one inside the bound instead.
//! 3. The governors report the key compromised from the block after the department's own
//!    issuance, with a new key: the report overrides the parked rotation and ends the stolen
//!    key at the next height.
//! 4. The thief's later writes, with the stolen key or with its own, are refused
//!    `bad_signature`, the state root unchanged.
//! 5. The verdicts: the department's licence stays valid and unflagged, the thief's is not
//!    valid and is flagged `signed_by_compromised_key`.
//! 6. The department, with the governors' new key, writes again.
//!
//! Bounded in time: each wait has its own deadline.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hutong_core::crypto::PublicKey;
use hutong_core::hash::Hash32;
use hutong_core::records::{AuthorityId, LicenceNumber, StatusAction};
use hutong_core::testkit::{self, SUITE};
use hutong_core::tx::{Transaction, TxBody};
use hutong_tests::Network;
use hutong_tests::flood::{Answer, Submitter};

const DEPARTMENT: &str = "qd-approval";
const COMMIT_WAIT: Duration = Duration::from_secs(30);

/// Waits (bounded) until `id` is committed; the height of its block.
fn wait_committed(network: &Network, id: &Hash32) -> u64 {
    let deadline = Instant::now() + COMMIT_WAIT;
    loop {
        if let Some((200, body)) = network.nodes[0].get(&format!("/v1/transactions/{id}"))
            && body["state"] == "committed"
        {
            return body["height"]
                .as_u64()
                .expect("a committed transaction's height");
        }
        assert!(
            Instant::now() < deadline,
            "transaction {id} did not commit\n{}",
            network.logs_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Submits `transaction` and waits until it is committed; the height of its block.
fn commit(network: &Network, submitter: &Submitter, transaction: &Transaction) -> u64 {
    let answer = submitter
        .submit(transaction)
        .expect("the validator answers");
    assert_eq!(answer.status, 202, "{answer:?}");
    wait_committed(network, &transaction.id(SUITE))
}

/// Submits `transaction`, which must be refused with `code`; the fixture forgets the nonce it
/// used, as the ledger did.
fn refuse(
    network: &mut Network,
    submitter: &Submitter,
    transaction: &Transaction,
    status: u16,
    code: &str,
) -> Answer {
    let answer = submitter
        .submit(transaction)
        .expect("the validator answers");
    assert_eq!(
        (answer.status, answer.code.as_deref()),
        (status, Some(code)),
        "{answer:?}"
    );
    let signer = transaction.payload.signer.clone();
    network
        .fixture
        .set_last_nonce(&signer, transaction.payload.nonce - 1);
    answer
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as u64
}

fn rotation(new_key: PublicKey, effective_height: u64) -> TxBody {
    TxBody::RotateKey {
        authority: AuthorityId::from(DEPARTMENT),
        new_key,
        effective_height,
    }
}

fn status(number: &LicenceNumber, action: StatusAction, reason: &str) -> TxBody {
    TxBody::ChangeStatus {
        type_code: "business-licence".into(),
        number: number.clone(),
        action,
        effective_at: now_ms(),
        reason: reason.into(),
    }
}

fn number_of(transaction: &Transaction) -> LicenceNumber {
    match &transaction.payload.body {
        TxBody::IssueLicence { number, .. } => number.clone(),
        body => panic!("not an issuance: {}", body.kind_name()),
    }
}

/// The node's verdict on a business licence now: whether it is valid, and the
/// `signed_by_compromised_key` reason if there is one (its `ok`, its detail).
fn verdict(network: &Network, number: &LicenceNumber) -> (bool, Option<(bool, String)>) {
    let (code, body) = network.nodes[0]
        .get(&format!(
            "/v1/licences/business-licence/{}/verification",
            number.0
        ))
        .expect("the validator answers");
    assert_eq!(code, 200, "{body}");
    let flagged = body["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .find(|reason| reason["code"] == "signed_by_compromised_key")
        .map(|reason| {
            (
                reason["ok"].as_bool().expect("ok"),
                reason["detail"].as_str().expect("detail").to_owned(),
            )
        });
    (body["valid"].as_bool().expect("valid"), flagged)
}

/// The state root at the node's head, once the head is past `height` (so that a refused
/// transaction would have been in a block by then had it been admitted).
fn root_after(network: &Network, height: u64) -> (u64, String) {
    network.wait_for("two more blocks", COMMIT_WAIT, |network| {
        network.nodes[0]
            .height()
            .is_some_and(|now| now >= height + 2)
    });
    let head = network.nodes[0].height().expect("height");
    (
        head,
        network.nodes[0].state_root(head).expect("the head's root"),
    )
}

#[test]
fn a_stolen_departments_key_is_ended_by_the_governors_and_what_it_signed_is_flagged() {
    let started = Instant::now();
    let mut network = Network::new(1);
    network.start_all();
    network.wait_for("the first block", COMMIT_WAIT, |network| {
        network.nodes[0].height().is_some_and(|height| height >= 1)
    });
    let api = network.nodes[0].api.clone();
    let submitter = Submitter::new(&api);

    // 1. The department's own licence, then the thief's, both under the department's key.
    let genuine = network
        .fixture
        .issue_business_licence(DEPARTMENT, "370200", 1);
    let genuine_height = commit(&network, &submitter, &genuine);
    let compromised_from = genuine_height + 1;
    let forged = network
        .fixture
        .issue_business_licence(DEPARTMENT, "370200", 2);
    let forged_height = commit(&network, &submitter, &forged);
    assert!(forged_height >= compromised_from);

    // 2. A rotation parked at a height no chain reaches is refused and changes nothing.
    let (head, root) = root_after(&network, forged_height);
    let thief = testkit::secret("thief").public_key();
    let parked = network
        .fixture
        .tx(DEPARTMENT, rotation(thief, 18_446_744_073_709_551_000));
    let answer = refuse(&mut network, &submitter, &parked, 422, "rotation_too_far");
    println!("far-future rotation: {} {}", answer.status, answer.body);
    let (later, root_later) = root_after(&network, head);
    assert_eq!(
        root_later, root,
        "the refused rotation moved the state root"
    );
    // The one it can park, inside the bound, commits.
    let pending = network.fixture.tx(DEPARTMENT, rotation(thief, later + 100));
    commit(&network, &submitter, &pending);

    // 3. The governors' report overrides it and ends the stolen key at the next height.
    let recovered = testkit::secret("qd-approval-recovered");
    let report = network.fixture.governance(
        TxBody::ReportKeyCompromise {
            authority: AuthorityId::from(DEPARTMENT),
            compromised_from,
            new_key: Some(recovered.public_key()),
        },
        3,
    );
    let reported_at = commit(&network, &submitter, &report);
    let (status_code, page) = network.nodes[0]
        .get("/v1/authorities?limit=100")
        .expect("the validator answers");
    assert_eq!(status_code, 200, "{page}");
    let department = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|authority| authority["id"] == DEPARTMENT)
        .expect("the department is listed");
    let keys = department["keys"].as_array().expect("keys");
    assert_eq!(
        keys.len(),
        3,
        "the stolen key, the parked one, the new one: {keys:?}"
    );
    assert_eq!(
        keys[0]["valid_until"],
        reported_at + 1,
        "the stolen key ends"
    );
    assert_eq!(keys[0]["compromised_from"], compromised_from);
    assert_eq!(
        keys[1]["valid_until"], keys[1]["valid_from"],
        "the parked rotation never takes effect"
    );
    assert_eq!(keys[2]["valid_from"], reported_at + 1);

    // 4. The thief's later writes are refused, with the stolen key and with its own, and the
    // state root does not move.
    let (head, root) = root_after(&network, reported_at);
    let revocation = network.fixture.tx(
        DEPARTMENT,
        status(&number_of(&genuine), StatusAction::Revoke, "by the thief"),
    );
    refuse(&mut network, &submitter, &revocation, 403, "bad_signature");
    network
        .fixture
        .keys
        .insert(AuthorityId::from(DEPARTMENT), testkit::secret("thief"));
    let revocation = network.fixture.tx(
        DEPARTMENT,
        status(&number_of(&genuine), StatusAction::Revoke, "by the thief"),
    );
    refuse(&mut network, &submitter, &revocation, 403, "bad_signature");
    let (_, root_later) = root_after(&network, head);
    assert_eq!(root_later, root, "a refused write moved the state root");

    // 5. Before the window: valid and unflagged. In it: flagged, not valid.
    let (valid, flagged) = verdict(&network, &number_of(&genuine));
    assert!(valid, "the department's own licence stays valid");
    assert_eq!(flagged, None);
    let (valid, flagged) = verdict(&network, &number_of(&forged));
    assert!(!valid, "the thief's licence shows as valid");
    let (ok, detail) = flagged.expect("the thief's licence is flagged");
    assert!(!ok);
    assert!(
        detail.contains("signed by a key reported compromised"),
        "{detail}"
    );

    // 6. The department, with the governors' new key, writes again.
    network
        .fixture
        .keys
        .insert(AuthorityId::from(DEPARTMENT), recovered);
    let inspection = network.fixture.tx(
        DEPARTMENT,
        status(
            &number_of(&genuine),
            StatusAction::AnnualInspection,
            "annual inspection passed",
        ),
    );
    commit(&network, &submitter, &inspection);
    let (valid, flagged) = verdict(&network, &number_of(&genuine));
    assert!(valid && flagged.is_none());
    println!(
        "key compromise test: {} s, head at {}",
        started.elapsed().as_secs(),
        network.nodes[0].height().unwrap_or(0)
    );
}
