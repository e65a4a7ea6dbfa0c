//! Every rule's accept and reject paths, through the store (execute in verify mode, then
//! commit), so that what is tested is what a node runs.

use hutong_core::crypto::PublicKey;
use hutong_core::hash::Hash32;
use hutong_core::records::{
    AuthorityId, FaceValue, IssuedBy, LicenceNumber, NodeChange, NodeEntry, ObjectionOutcome,
    Record, RecordKey, Role, Status, StatusAction, TypeCode,
};
use hutong_core::rules::RuleError;
use hutong_core::testkit::{self, DAY_MS, Fixture, GENESIS_TIME};
use hutong_core::tx::{AuthorityDraft, Transaction, TxBody};
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

    /// Executes one block in verify mode and commits it; returns the rule error of the first
    /// rejected transaction, if any (and then nothing is committed).
    fn block(&mut self, transactions: Vec<Transaction>) -> Result<(), RuleError> {
        self.time += 1000;
        let proposer = self.fixture.node_keys[0].public_key();
        let signers: Vec<AuthorityId> = transactions
            .iter()
            .map(|transaction| transaction.payload.signer.clone())
            .collect();
        let result = self.execute_and_commit(proposer, transactions);
        if result.is_err() {
            // The ledger used none of the block's nonces: later transactions continue from
            // its last ones (each nonce is one above the last).
            for signer in signers {
                if let Ok(Some(Record::Authority(authority))) =
                    self.store.record(&RecordKey::Authority(signer.clone()))
                {
                    self.fixture.set_last_nonce(&signer, authority.last_nonce);
                }
            }
        }
        result
    }

    fn execute_and_commit(
        &mut self,
        proposer: PublicKey,
        transactions: Vec<Transaction>,
    ) -> Result<(), RuleError> {
        match self
            .store
            .execute(self.time, proposer, transactions, Mode::Verify)
        {
            Ok(execution) => {
                {
                    let certificate = self.fixture.certify(&execution.header);
                    self.store.commit(execution, certificate)
                }
                .unwrap();
                Ok(())
            }
            Err(BlockError::InvalidTransaction { error, .. }) => Err(error),
            Err(other) => panic!("unexpected block error: {other}"),
        }
    }

    fn one(&mut self, transaction: Transaction) -> Result<(), RuleError> {
        let root_before = self.store.head().unwrap().header.state_root;
        let result = self.block(vec![transaction]);
        if result.is_err() {
            assert_eq!(
                self.store.head().unwrap().header.state_root,
                root_before,
                "a rejected transaction must change nothing"
            );
        }
        result
    }

    fn status(&self, number: &str, at: u64) -> Status {
        self.store
            .licence(&"business-licence".into(), &LicenceNumber(number.into()))
            .unwrap()
            .unwrap()
            .standing_at(at)
            .status
    }
}

fn issued(chain: &mut Chain, n: u64) -> String {
    let transaction = chain
        .fixture
        .issue_business_licence("qd-approval", "370200", n);
    let number = match &transaction.payload.body {
        TxBody::IssueLicence { number, .. } => number.to_string(),
        _ => unreachable!(),
    };
    chain.one(transaction).unwrap();
    number
}

fn change(
    chain: &mut Chain,
    signer: &str,
    number: &str,
    action: StatusAction,
    effective_at: u64,
) -> Result<(), RuleError> {
    let transaction = chain.fixture.tx(
        signer,
        TxBody::ChangeStatus {
            type_code: "business-licence".into(),
            number: LicenceNumber(number.into()),
            action,
            effective_at,
            reason: "inspection finding".into(),
        },
    );
    chain.one(transaction)
}

#[test]
fn issuer_issues_and_licence_is_indexed() {
    let mut chain = Chain::new();
    let number = issued(&mut chain, 1);
    let licence = chain
        .store
        .licence(&"business-licence".into(), &LicenceNumber(number.clone()))
        .unwrap()
        .unwrap();
    assert_eq!(licence.issuer.as_str(), "qd-approval");
    assert_eq!(licence.standing_at(GENESIS_TIME).status, Status::Active);
    let by_issuer = chain
        .store
        .licences_of_issuer(&"qd-approval".into(), None, 10)
        .unwrap();
    assert_eq!(
        by_issuer,
        vec![(
            TypeCode::from("business-licence"),
            LicenceNumber(number.clone())
        )]
    );
    let by_holder = chain
        .store
        .licences_of_holder(&licence.holder, None, 10)
        .unwrap();
    assert_eq!(by_holder.len(), 1);
    let actions = chain
        .store
        .actions_of(&"qd-approval".into(), None, 10)
        .unwrap();
    assert_eq!(actions.len(), 1);
}

#[test]
fn duplicate_licence_number_is_rejected() {
    let mut chain = Chain::new();
    issued(&mut chain, 7);
    let again = chain
        .fixture
        .issue_business_licence("qd-approval", "370200", 7);
    assert!(matches!(
        chain.one(again),
        Err(RuleError::DuplicateLicence { .. })
    ));
}

#[test]
fn issuer_without_grant_in_region_is_rejected() {
    let mut chain = Chain::new();
    // Jining's bureau is granted 370800, not 370200.
    let transaction = chain
        .fixture
        .issue_business_licence("jn-approval", "370200", 3);
    assert!(matches!(
        chain.one(transaction),
        Err(RuleError::NotGranted { .. })
    ));
    // Its own region works, and so does a district under it.
    let own = chain
        .fixture
        .issue_business_licence("jn-approval", "370811", 4);
    assert_eq!(chain.one(own), Ok(()));
}

#[test]
fn authority_without_issuer_role_cannot_issue() {
    let mut chain = Chain::new();
    let transaction = chain
        .fixture
        .issue_business_licence("qd-market", "370200", 5);
    assert!(matches!(
        chain.one(transaction),
        Err(RuleError::MissingRole {
            role: Role::Issuer,
            ..
        })
    ));
}

#[test]
fn unknown_signer_and_bad_signature_are_rejected() {
    let mut chain = Chain::new();
    let mut transaction = chain
        .fixture
        .issue_business_licence("qd-approval", "370200", 6);
    transaction.signatures[0].signature.0[0] ^= 1;
    assert!(matches!(
        chain.one(transaction),
        Err(RuleError::BadSignature { .. })
    ));

    let payload = chain.fixture.payload(
        "nobody",
        testkit::business_licence_body("370200", 6),
        GENESIS_TIME,
    );
    let stranger = testkit::secret("nobody");
    let id = AuthorityId::from("nobody");
    let forged =
        Transaction::sign(hutong_core::testkit::SUITE, payload, &[(&id, &stranger)]).unwrap();
    assert!(matches!(
        chain.one(forged),
        Err(RuleError::UnknownAuthority(_))
    ));
}

/// The replay check reads the transaction index only for a nonce at or below the signer's last
/// one: an older transaction replayed after its signer moved on is still a replay.
#[test]
fn an_older_transaction_replayed_after_later_ones_is_a_replay() {
    let mut chain = Chain::new();
    let first = chain
        .fixture
        .issue_business_licence("qd-approval", "370200", 20);
    chain.one(first.clone()).unwrap();
    for number in 21..24 {
        let later = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", number);
        chain.one(later).unwrap();
    }
    assert!(matches!(chain.one(first), Err(RuleError::Replay(_))));
}

#[test]
fn replay_and_nonce_reuse_are_rejected() {
    let mut chain = Chain::new();
    let transaction = chain
        .fixture
        .issue_business_licence("qd-approval", "370200", 8);
    chain.one(transaction.clone()).unwrap();
    assert!(matches!(
        chain.one(transaction.clone()),
        Err(RuleError::Replay(_))
    ));
    // Same nonce, different body.
    let mut payload = transaction.payload.clone();
    payload.body = testkit::business_licence_body("370200", 9);
    let reused = chain.fixture.sign(payload, &["qd-approval"]);
    assert!(matches!(
        chain.one(reused),
        Err(RuleError::NonceNotIncreasing { .. })
    ));
}

#[test]
fn each_nonce_is_exactly_one_above_the_last() {
    let mut chain = Chain::new();
    let first = chain
        .fixture
        .issue_business_licence("qd-approval", "370200", 11);
    let second = chain
        .fixture
        .issue_business_licence("qd-approval", "370200", 12);
    let third = chain
        .fixture
        .issue_business_licence("qd-approval", "370200", 13);
    // The second before the first: a gap, which says what was expected.
    assert_eq!(
        chain.one(second.clone()),
        Err(RuleError::NonceGap {
            authority: "qd-approval".into(),
            expected: first.payload.nonce,
            found: second.payload.nonce,
        })
    );
    assert_eq!(
        RuleError::NonceGap {
            authority: "qd-approval".into(),
            expected: 1,
            found: 2,
        }
        .code(),
        "nonce_gap"
    );
    // In one block out of order: refused as a whole.
    assert!(matches!(
        chain.block(vec![second.clone(), first.clone()]),
        Err(RuleError::NonceGap { .. })
    ));
    // In order, in one block: all three.
    chain
        .block(vec![first.clone(), second.clone(), third.clone()])
        .unwrap();
    // Afterwards a nonce already used is refused as not increasing.
    let mut payload = second.payload.clone();
    payload.body = testkit::business_licence_body("370200", 14);
    let reused = chain.fixture.sign(payload, &["qd-approval"]);
    assert!(matches!(
        chain.one(reused),
        Err(RuleError::NonceNotIncreasing { .. })
    ));
}

#[test]
fn duplicate_within_block_is_rejected() {
    let mut chain = Chain::new();
    let transaction = chain
        .fixture
        .issue_business_licence("qd-approval", "370200", 10);
    let result = chain.block(vec![transaction.clone(), transaction]);
    assert!(matches!(result, Err(RuleError::DuplicateInBlock(_))));
}

#[test]
fn build_mode_leaves_out_rejected_transactions() {
    let mut chain = Chain::new();
    let good = chain
        .fixture
        .issue_business_licence("qd-approval", "370200", 11);
    let bad = chain
        .fixture
        .issue_business_licence("qd-market", "370200", 12);
    let execution = chain
        .store
        .execute(
            GENESIS_TIME + 1000,
            chain.fixture.node_keys[0].public_key(),
            vec![good, bad],
            Mode::Build,
        )
        .unwrap();
    assert_eq!(execution.transactions.len(), 1);
    assert_eq!(execution.rejected.len(), 1);
    assert_eq!(execution.rejected[0].1.code(), "missing_role");
}

#[test]
fn wrong_chain_is_rejected() {
    let mut chain = Chain::new();
    let mut payload = chain.fixture.payload(
        "qd-approval",
        testkit::business_licence_body("370200", 13),
        GENESIS_TIME,
    );
    payload.chain_id = "another-chain".into();
    let transaction = chain.fixture.sign(payload, &["qd-approval"]);
    assert!(matches!(
        chain.one(transaction),
        Err(RuleError::WrongChain { .. })
    ));
}

#[test]
fn created_far_in_the_future_is_rejected() {
    let mut chain = Chain::new();
    let payload = chain.fixture.payload(
        "qd-approval",
        testkit::business_licence_body("370200", 14),
        GENESIS_TIME + DAY_MS,
    );
    let transaction = chain.fixture.sign(payload, &["qd-approval"]);
    assert!(matches!(
        chain.one(transaction),
        Err(RuleError::CreatedInFuture { .. })
    ));
}

#[test]
fn schema_is_enforced() {
    let mut chain = Chain::new();
    let mut body = testkit::business_licence_body("370200", 15);
    if let TxBody::IssueLicence { face, .. } = &mut body {
        face.remove("legal_representative");
    }
    let missing = chain.fixture.tx("qd-approval", body);
    assert!(
        matches!(chain.one(missing), Err(RuleError::Schema { field, .. }) if field == "legal_representative")
    );

    let mut body = testkit::business_licence_body("370200", 16);
    if let TxBody::IssueLicence { face, .. } = &mut body {
        face.insert("established".into(), FaceValue::Clear("2023-02-30".into()));
    }
    let bad_date = chain.fixture.tx("qd-approval", body);
    assert!(
        matches!(chain.one(bad_date), Err(RuleError::Schema { field, .. }) if field == "established")
    );

    let mut body = testkit::business_licence_body("370200", 17);
    if let TxBody::IssueLicence { face, .. } = &mut body {
        face.insert("colour".into(), FaceValue::Clear("blue".into()));
    }
    let unknown = chain.fixture.tx("qd-approval", body);
    assert!(
        matches!(chain.one(unknown), Err(RuleError::Schema { field, .. }) if field == "colour")
    );
}

#[test]
fn private_fields_must_be_committed() {
    let mut chain = Chain::new();
    let salt = [9u8; 32];
    let person = Hash32([1u8; 32]);
    let mut body = testkit::qualification_body("Q-1", person, "11010519491231002X", &salt);
    if let TxBody::IssueLicence { face, .. } = &mut body {
        face.insert(
            "id_number".into(),
            FaceValue::Clear("11010519491231002X".into()),
        );
    }
    let leaked = chain.fixture.tx("hr-bureau", body);
    assert!(
        matches!(chain.one(leaked), Err(RuleError::Schema { field, .. }) if field == "id_number")
    );
    let good = chain.fixture.tx(
        "hr-bureau",
        testkit::qualification_body("Q-2", person, "11010519491231002X", &salt),
    );
    assert_eq!(chain.one(good), Ok(()));
    let licence = chain
        .store
        .licence(&"qualification".into(), &LicenceNumber("Q-2".into()))
        .unwrap()
        .unwrap();
    // Default validity of the type: five years.
    assert_eq!(licence.valid_until, Some(GENESIS_TIME + 5 * 365 * DAY_MS));
}

#[test]
fn status_state_machine() {
    let mut chain = Chain::new();
    let number = issued(&mut chain, 20);
    let t = GENESIS_TIME + 10 * DAY_MS;
    // Reinstate an active licence: illegal.
    assert!(matches!(
        change(&mut chain, "qd-market", &number, StatusAction::Reinstate, t),
        Err(RuleError::IllegalTransition(_))
    ));
    change(&mut chain, "qd-market", &number, StatusAction::Suspend, t).unwrap();
    // Suspended twice: illegal.
    assert!(matches!(
        change(
            &mut chain,
            "qd-market",
            &number,
            StatusAction::Suspend,
            t + 1
        ),
        Err(RuleError::IllegalTransition(_))
    ));
    change(
        &mut chain,
        "qd-market",
        &number,
        StatusAction::Reinstate,
        t + DAY_MS,
    )
    .unwrap();
    change(
        &mut chain,
        "qd-market",
        &number,
        StatusAction::Revoke,
        t + 2 * DAY_MS,
    )
    .unwrap();
    // Terminal.
    for action in [
        StatusAction::Reinstate,
        StatusAction::Suspend,
        StatusAction::AnnualInspection,
        StatusAction::Cancel,
    ] {
        assert!(matches!(
            change(&mut chain, "qd-approval", &number, action, t + 3 * DAY_MS),
            Err(RuleError::IllegalTransition(_))
        ));
    }
    assert_eq!(chain.status(&number, t - 1), Status::Active);
    assert_eq!(chain.status(&number, t), Status::Suspended);
    assert_eq!(chain.status(&number, t + DAY_MS), Status::Active);
    assert_eq!(chain.status(&number, t + 2 * DAY_MS), Status::Revoked);
}

#[test]
fn supervisor_limited_to_its_actions_and_events_ordered() {
    let mut chain = Chain::new();
    let number = issued(&mut chain, 21);
    let t = GENESIS_TIME + DAY_MS;
    // Cancel is not among the supervisor's actions for business licences.
    assert!(matches!(
        change(&mut chain, "qd-market", &number, StatusAction::Cancel, t),
        Err(RuleError::ActionNotPermitted { .. })
    ));
    // The issuer may.
    change(
        &mut chain,
        "qd-approval",
        &number,
        StatusAction::AnnualInspection,
        t,
    )
    .unwrap();
    // An effective time before the last event is rejected.
    assert!(matches!(
        change(
            &mut chain,
            "qd-approval",
            &number,
            StatusAction::Suspend,
            t - 1
        ),
        Err(RuleError::EffectiveTimeBeforeLastEvent { .. })
    ));
}

#[test]
fn pledges_are_annotations() {
    let mut chain = Chain::new();
    let number = issued(&mut chain, 22);
    let t = GENESIS_TIME + DAY_MS;
    let pledge = StatusAction::PledgeRegistered {
        secured_party: "中国银行青岛分行".into(),
        reference: "P-1".into(),
    };
    change(&mut chain, "qd-approval", &number, pledge.clone(), t).unwrap();
    assert!(matches!(
        change(&mut chain, "qd-approval", &number, pledge, t),
        Err(RuleError::PledgeExists(_))
    ));
    assert!(matches!(
        change(
            &mut chain,
            "qd-approval",
            &number,
            StatusAction::PledgeReleased {
                reference: "P-9".into()
            },
            t
        ),
        Err(RuleError::UnknownPledge(_))
    ));
    let licence = chain
        .store
        .licence(&"business-licence".into(), &LicenceNumber(number.clone()))
        .unwrap()
        .unwrap();
    let standing = licence.standing_at(t);
    assert_eq!(standing.status, Status::Active);
    assert_eq!(standing.pledges.len(), 1);
    change(
        &mut chain,
        "qd-approval",
        &number,
        StatusAction::PledgeReleased {
            reference: "P-1".into(),
        },
        t + 1,
    )
    .unwrap();
    let licence = chain
        .store
        .licence(&"business-licence".into(), &LicenceNumber(number))
        .unwrap()
        .unwrap();
    assert!(licence.standing_at(t + 1).pledges.is_empty());
}

#[test]
fn renewal_extends_validity() {
    let mut chain = Chain::new();
    let salt = [3u8; 32];
    let person = Hash32([4u8; 32]);
    let issue = chain.fixture.tx(
        "hr-bureau",
        testkit::qualification_body("Q-9", person, "x", &salt),
    );
    chain.one(issue).unwrap();
    let until = GENESIS_TIME + 5 * 365 * DAY_MS;
    // Recorded now, taking effect a week later: inside the event window, which a renewal
    // dated at the end of the validity years ahead would not be.
    let renewed_at = GENESIS_TIME + 7 * DAY_MS;
    let renew = chain.fixture.tx(
        "hr-bureau",
        TxBody::ChangeStatus {
            type_code: "qualification".into(),
            number: LicenceNumber("Q-9".into()),
            action: StatusAction::Renew {
                valid_until: Some(until + 365 * DAY_MS),
            },
            effective_at: renewed_at,
            reason: "renewed on application".into(),
        },
    );
    chain.one(renew).unwrap();
    let licence = chain
        .store
        .licence(&"qualification".into(), &LicenceNumber("Q-9".into()))
        .unwrap()
        .unwrap();
    assert_eq!(licence.standing_at(renewed_at - 1).valid_until, Some(until));
    assert_eq!(
        licence.standing_at(renewed_at).valid_until,
        Some(until + 365 * DAY_MS)
    );
}

#[test]
fn amendment_keeps_history() {
    let mut chain = Chain::new();
    let number = issued(&mut chain, 23);
    let mut changes = std::collections::BTreeMap::new();
    changes.insert(
        "legal_representative".to_string(),
        Some(FaceValue::Clear("王五".into())),
    );
    let amend = |chain: &mut Chain, signer: &str, changes| {
        let transaction = chain.fixture.tx(
            signer,
            TxBody::AmendLicence {
                type_code: "business-licence".into(),
                number: LicenceNumber(number.clone()),
                changes,
                effective_at: GENESIS_TIME + DAY_MS,
                reason: "变更法定代表人".into(),
            },
        );
        chain.one(transaction)
    };
    assert!(matches!(
        amend(&mut chain, "jn-approval", changes.clone()),
        Err(RuleError::NotIssuer { .. })
    ));
    amend(&mut chain, "qd-approval", changes).unwrap();
    let licence = chain
        .store
        .licence(&"business-licence".into(), &LicenceNumber(number.clone()))
        .unwrap()
        .unwrap();
    assert_eq!(
        licence.face["legal_representative"],
        FaceValue::Clear("王五".into())
    );
    assert_eq!(licence.events.len(), 2);
    // Clearing a required field is a schema violation.
    let mut clear = std::collections::BTreeMap::new();
    clear.insert("name".to_string(), None);
    assert!(matches!(
        amend(&mut chain, "qd-approval", clear),
        Err(RuleError::Schema { .. })
    ));
}

#[test]
fn governance_needs_more_than_two_thirds() {
    let mut chain = Chain::new();
    let draft = AuthorityDraft {
        id: "jy-approval".into(),
        name_zh: "济源示范区行政审批服务局".into(),
        name_en: "Jiyuan Approval Bureau".into(),
        region: testkit::region("419001"),
        uscc: testkit::uscc("419001", 1),
        roles: vec![Role::Issuer],
        key: testkit::secret("jy-approval").public_key(),
    };
    // 2 of 4 is not more than two thirds.
    let two = chain
        .fixture
        .governance(TxBody::RegisterAuthority(draft.clone()), 2);
    assert!(matches!(
        chain.one(two),
        Err(RuleError::TooFewGovernorSignatures {
            signed: 2,
            governors: 4,
            required: 3
        })
    ));
    // A non-governor endorsing.
    let payload = chain.fixture.payload(
        "gov-a",
        TxBody::RegisterAuthority(draft.clone()),
        GENESIS_TIME,
    );
    let with_issuer = chain
        .fixture
        .sign(payload, &["gov-a", "gov-b", "qd-approval"]);
    assert!(matches!(
        chain.one(with_issuer),
        Err(RuleError::EndorserNotGovernor(_))
    ));
    let three = chain
        .fixture
        .governance(TxBody::RegisterAuthority(draft.clone()), 3);
    chain.one(three).unwrap();
    let again = chain
        .fixture
        .governance(TxBody::RegisterAuthority(draft), 4);
    assert!(matches!(
        chain.one(again),
        Err(RuleError::AuthorityExists(_))
    ));
    // Grant it, then it can issue (its key is valid from the block after registration).
    let grant = chain.fixture.governance(
        TxBody::GrantIssuance {
            authority: "jy-approval".into(),
            type_code: "business-licence".into(),
            region: testkit::region("419001"),
        },
        3,
    );
    chain.one(grant).unwrap();
    let mut fixture_key = chain.fixture.keys.clone();
    fixture_key.insert("jy-approval".into(), testkit::secret("jy-approval"));
    chain.fixture.keys = fixture_key;
    let issue = chain
        .fixture
        .issue_business_licence("jy-approval", "419001", 30);
    assert_eq!(chain.one(issue), Ok(()));
}

#[test]
fn grant_revocation_stops_issuance_from_next_height() {
    let mut chain = Chain::new();
    let revoke = chain.fixture.governance(
        TxBody::RevokeGrant {
            authority: "qd-approval".into(),
            type_code: "business-licence".into(),
            region: testkit::region("370200"),
        },
        3,
    );
    chain.one(revoke).unwrap();
    let issue = chain
        .fixture
        .issue_business_licence("qd-approval", "370200", 31);
    assert!(matches!(
        chain.one(issue),
        Err(RuleError::NotGranted { .. })
    ));
}

#[test]
fn key_rotation_takes_effect_at_its_height() {
    let mut chain = Chain::new();
    let new_key = testkit::secret("qd-approval-2");
    let height = chain.store.height().unwrap();
    let rotate = chain.fixture.tx(
        "qd-approval",
        TxBody::RotateKey {
            authority: "qd-approval".into(),
            new_key: new_key.public_key(),
            effective_height: height + 3,
        },
    );
    chain.one(rotate).unwrap(); // height + 1
    // The new key is not valid yet at height + 2.
    let old_key = chain
        .fixture
        .keys
        .insert("qd-approval".into(), new_key)
        .unwrap();
    let early = chain
        .fixture
        .issue_business_licence("qd-approval", "370200", 40);
    assert!(matches!(
        chain.one(early),
        Err(RuleError::BadSignature { .. })
    ));
    // The old key still is, at height + 2.
    chain
        .fixture
        .keys
        .insert("qd-approval".into(), old_key.clone());
    {
        let t = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", 41);
        chain.one(t)
    }
    .unwrap();
    // From height + 3 the old key is refused and the new one accepted.
    let late = chain
        .fixture
        .issue_business_licence("qd-approval", "370200", 42);
    assert!(matches!(
        chain.one(late),
        Err(RuleError::BadSignature { .. })
    ));
    chain
        .fixture
        .keys
        .insert("qd-approval".into(), testkit::secret("qd-approval-2"));
    {
        let t = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", 43);
        chain.one(t)
    }
    .unwrap();
    // Rotation to a weak key is refused.
    let weak = chain.fixture.tx(
        "qd-approval",
        TxBody::RotateKey {
            authority: "qd-approval".into(),
            new_key: PublicKey([0u8; 32]),
            effective_height: 100,
        },
    );
    assert!(matches!(chain.one(weak), Err(RuleError::KeyRejected(_))));
}

#[test]
fn recognition_attest_and_withdraw() {
    let mut chain = Chain::new();
    let attest_body = |region_code: &str| TxBody::AttestRecognition {
        recognizing_region: testkit::region(region_code),
        type_codes: vec!["business-licence".into()],
        issued_by: IssuedBy::Region(testkit::region("370000")),
        scope: "企业开办、银行开户".into(),
        valid_from: GENESIS_TIME,
        valid_until: None,
    };
    // Outside the recognizer's region.
    let outside = chain.fixture.tx("xj-recognizer", attest_body("370200"));
    assert!(matches!(
        chain.one(outside),
        Err(RuleError::RegionOutsideAuthority { .. })
    ));
    // Not a recognizer.
    let not_role = chain.fixture.tx("qd-market", attest_body("370200"));
    assert!(matches!(
        chain.one(not_role),
        Err(RuleError::MissingRole { .. })
    ));
    let attest = chain.fixture.tx("xj-recognizer", attest_body("650000"));
    let id = attest.id(hutong_core::testkit::SUITE);
    chain.one(attest).unwrap();
    let withdraw = |chain: &mut Chain| {
        let transaction = chain.fixture.tx(
            "xj-recognizer",
            TxBody::WithdrawRecognition {
                id,
                effective_at: GENESIS_TIME + DAY_MS,
                reason: "policy ended".into(),
            },
        );
        chain.one(transaction)
    };
    withdraw(&mut chain).unwrap();
    assert!(matches!(
        withdraw(&mut chain),
        Err(RuleError::AlreadyWithdrawn(_))
    ));
    match chain.store.record(&RecordKey::Recognition(id)).unwrap() {
        Some(Record::Recognition(recognition)) => {
            assert!(recognition.in_force_at(GENESIS_TIME));
            assert!(!recognition.in_force_at(GENESIS_TIME + DAY_MS));
        }
        other => panic!("expected the recognition, got {other:?}"),
    }
}

#[test]
fn objection_file_and_resolve() {
    let mut chain = Chain::new();
    let number = issued(&mut chain, 50);
    let file = chain.fixture.tx(
        "qd-market",
        TxBody::FileObjection {
            type_code: "business-licence".into(),
            number: LicenceNumber(number.clone()),
            reason: "地址与实际经营地不符".into(),
            recognition: None,
        },
    );
    let id = file.id(hutong_core::testkit::SUITE);
    chain.one(file).unwrap();
    let licence = chain
        .store
        .licence(&"business-licence".into(), &LicenceNumber(number.clone()))
        .unwrap()
        .unwrap();
    assert_eq!(licence.open_objections(), vec![id]);
    let resolve = |chain: &mut Chain, signer: &str| {
        let transaction = chain.fixture.tx(
            signer,
            TxBody::ResolveObjection {
                id,
                outcome: ObjectionOutcome::Dismissed,
                note: "核实无误".into(),
                follow_up: None,
            },
        );
        chain.one(transaction)
    };
    assert!(matches!(
        resolve(&mut chain, "qd-approval"),
        Err(RuleError::IssuerResolvesAlone { .. })
    ));
    resolve(&mut chain, "qd-market").unwrap();
    assert!(matches!(
        resolve(&mut chain, "qd-market"),
        Err(RuleError::AlreadyResolved(_))
    ));
    let licence = chain
        .store
        .licence(&"business-licence".into(), &LicenceNumber(number))
        .unwrap()
        .unwrap();
    assert!(licence.open_objections().is_empty());
    assert_eq!(licence.objections.len(), 1);
}

#[test]
fn validator_changes_take_effect_at_their_height() {
    let mut chain = Chain::new();
    let new_node = testkit::secret("node-new").public_key();
    let height = chain.store.height().unwrap();
    let before = chain.store.head().unwrap().header.validators_hash;
    let add = chain.fixture.governance(
        TxBody::ChangeValidators {
            changes: vec![NodeChange::Set(NodeEntry {
                key: new_node,
                authority: "gov-b".into(),
                power: 1,
            })],
            effective_height: height + 3,
        },
        3,
    );
    chain.one(add).unwrap(); // height + 1
    assert_eq!(chain.store.head().unwrap().header.validators_hash, before);
    {
        let t = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", 60);
        chain.one(t)
    }
    .unwrap(); // + 2
    assert_eq!(chain.store.head().unwrap().header.validators_hash, before);
    {
        let t = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", 61);
        chain.one(t)
    }
    .unwrap(); // + 3
    let after = chain.store.head().unwrap().header.validators_hash;
    assert_ne!(after, before);
    assert_eq!(
        chain
            .store
            .registry_for(height + 3)
            .unwrap()
            .validators()
            .count(),
        5
    );

    // Removing every validator is refused; an effective height in the past too.
    let keys: Vec<NodeChange> = chain
        .store
        .registry_for(height + 4)
        .unwrap()
        .nodes
        .iter()
        .map(|node| NodeChange::Remove(node.key))
        .collect();
    let remove_all = chain.fixture.governance(
        TxBody::ChangeValidators {
            changes: keys,
            effective_height: height + 10,
        },
        3,
    );
    assert!(matches!(
        chain.one(remove_all),
        Err(RuleError::NoValidatorLeft)
    ));
    let past = chain.fixture.governance(
        TxBody::ChangeValidators {
            changes: vec![NodeChange::Remove(new_node)],
            effective_height: height,
        },
        3,
    );
    assert!(matches!(
        chain.one(past),
        Err(RuleError::BadEffectiveHeight { .. })
    ));
}

#[test]
fn rejected_codes_are_stable() {
    assert_eq!(RuleError::NoValidatorLeft.code(), "no_validator_left");
    assert_eq!(RuleError::Replay(Hash32::ZERO).code(), "replay");
    assert_eq!(
        RuleError::UnknownType(TypeCode::from("x")).code(),
        "unknown_type"
    );
    assert_eq!(
        RuleError::UnknownAuthority(AuthorityId::from("x")).code(),
        "unknown_authority"
    );
    let _ = ObjectionOutcome::Upheld;
}
