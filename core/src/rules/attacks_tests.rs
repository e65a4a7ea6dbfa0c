//! One department's key: the attacks a department's stolen or misused key can make on the
//! registry and on the licences, each run through the signature check and the rules. Every
//! refusal is checked for its code and for a state root left as it was (ADR 0031).
//!
//! The department is `qd-approval` (Qingdao's approval bureau, which issues business licences
//! in 370200); the thief holds its key.

use super::testing::{Chain, id};
use crate::crypto::PublicKey;
use crate::limits;
use crate::records::{LicenceNumber, ObjectionOutcome, Record, RecordKey, Role, StatusAction};
use crate::testkit::{self, GENESIS_TIME};
use crate::tx::{AuthorityDraft, TxBody};
use crate::verdict::{ReasonCode, Verdict, VerdictRecords};

const DEPARTMENT: &str = "qd-approval";
/// 2100-01-01T00:00Z.
const YEAR_2100_MS: u64 = 4_102_444_800_000;

fn thief_key() -> PublicKey {
    testkit::secret("thief").public_key()
}

fn rotation(authority: &str, new_key: PublicKey, effective_height: u64) -> TxBody {
    TxBody::RotateKey {
        authority: id(authority),
        new_key,
        effective_height,
    }
}

fn status(number: &LicenceNumber, action: StatusAction) -> TxBody {
    TxBody::ChangeStatus {
        type_code: "business-licence".into(),
        number: number.clone(),
        action,
        effective_at: GENESIS_TIME + 60_000,
        reason: "by the department's key".into(),
    }
}

fn renewal(number: &LicenceNumber) -> TxBody {
    status(
        number,
        StatusAction::Renew {
            valid_until: Some(YEAR_2100_MS),
        },
    )
}

fn amendment(number: &LicenceNumber) -> TxBody {
    TxBody::AmendLicence {
        type_code: "business-licence".into(),
        number: number.clone(),
        changes: [(
            "address".to_owned(),
            Some(crate::records::FaceValue::Clear(
                "山东省青岛市市南区某路1号".into(),
            )),
        )]
        .into_iter()
        .collect(),
        effective_at: GENESIS_TIME + 60_000,
        reason: "change of address".into(),
    }
}

/// From now on the fixture signs as `authority` with the key of `name`.
fn sign_with(chain: &mut Chain, authority: &str, name: &str) {
    chain
        .fixture
        .keys
        .insert(id(authority), testkit::secret(name));
}

fn verdict_on(chain: &Chain, number: &LicenceNumber) -> Verdict {
    let licence = chain.licence("business-licence", number);
    VerdictRecords::collect(&licence, None, chain.state.records.values().cloned())
        .verdict(&licence, None, GENESIS_TIME + 120_000)
        .expect("the issuer is among the records")
}

fn compromise_reason(verdict: &Verdict) -> Option<&crate::verdict::Reason> {
    verdict
        .reasons
        .iter()
        .find(|reason| reason.code == ReasonCode::SignedByCompromisedKey)
}

#[test]
fn a_stolen_key_cannot_park_a_rotation_that_never_comes_due() {
    let mut chain = Chain::new();
    // The attack of the report: a rotation to the thief's key at a height no chain reaches.
    let parked = chain.fixture.tx(
        DEPARTMENT,
        rotation(DEPARTMENT, thief_key(), 18_446_744_073_709_551_000),
    );
    chain.refuse(&parked, "rotation_too_far");
    let just_too_far = chain.fixture.tx(
        DEPARTMENT,
        rotation(
            DEPARTMENT,
            thief_key(),
            1 + limits::SELF_ROTATION_DELAY_BLOCKS_MAX + 1,
        ),
    );
    chain.refuse(&just_too_far, "rotation_too_far");
    // The farthest a department may schedule its own rotation.
    let farthest = chain.fixture.tx(
        DEPARTMENT,
        rotation(
            DEPARTMENT,
            thief_key(),
            1 + limits::SELF_ROTATION_DELAY_BLOCKS_MAX,
        ),
    );
    chain.apply(&farthest).unwrap();
}

#[test]
fn the_governors_rotation_overrides_the_thiefs_pending_one_and_the_thief_signs_nothing_after() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    let pending_at = 2 + limits::SELF_ROTATION_DELAY_BLOCKS_MAX;
    let thiefs = chain
        .fixture
        .tx(DEPARTMENT, rotation(DEPARTMENT, thief_key(), pending_at));
    chain.apply(&thiefs).unwrap();
    // The department cannot rotate on its own while the thief's rotation waits.
    let own = chain.fixture.tx(
        DEPARTMENT,
        rotation(
            DEPARTMENT,
            testkit::secret("qd-approval-2").public_key(),
            10,
        ),
    );
    chain.refuse(&own, "rotation_pending");

    // The governors can, at once: their rotation at a later height is refused, the next
    // height is taken.
    let recovered = testkit::secret("qd-approval-recovered").public_key();
    let late = chain.governance(rotation(DEPARTMENT, recovered, chain.height + 3));
    chain.refuse(&late, "governor_rotation_too_late");
    let next = chain.height + 2;
    let recovery = chain.governance(rotation(DEPARTMENT, recovered, next));
    chain.apply(&recovery).unwrap();
    let keys = chain.authority(DEPARTMENT).keys;
    assert_eq!(keys[0].valid_until, Some(next), "the stolen key ends");
    assert_eq!(
        (keys[1].key, keys[1].valid_from, keys[1].valid_until),
        (thief_key(), pending_at, Some(pending_at)),
        "the thief's rotation is kept, empty: it never takes effect"
    );
    assert_eq!((keys[2].key, keys[2].valid_from), (recovered, next));

    chain.empty_block();
    // The stolen key and the thief's own key both fail at every later height.
    let revocation = chain
        .fixture
        .tx(DEPARTMENT, status(&number, StatusAction::Revoke));
    chain.refuse(&revocation, "bad_signature");
    sign_with(&mut chain, DEPARTMENT, "thief");
    let revocation = chain
        .fixture
        .tx(DEPARTMENT, status(&number, StatusAction::Revoke));
    chain.refuse(&revocation, "bad_signature");
    for _ in 0..limits::SELF_ROTATION_DELAY_BLOCKS_MAX {
        chain.empty_block();
    }
    assert!(chain.height > pending_at);
    let revocation = chain
        .fixture
        .tx(DEPARTMENT, status(&number, StatusAction::Revoke));
    chain.refuse(&revocation, "bad_signature");

    // The department, with the governors' key, keeps working.
    sign_with(&mut chain, DEPARTMENT, "qd-approval-recovered");
    let inspection = chain
        .fixture
        .tx(DEPARTMENT, status(&number, StatusAction::AnnualInspection));
    chain.apply(&inspection).unwrap();
}

#[test]
fn a_compromise_report_ends_every_key_and_flags_what_was_signed_in_the_window() {
    let mut chain = Chain::new();
    // Height 1: issued before the compromise; it stays valid and unflagged.
    let before = chain.issue_business_licence(1);
    // Height 2: also before; height 3 on, the thief signs.
    let disturbed = chain.issue_business_licence(2);
    let compromised_from = chain.height + 1;
    let forged = chain.issue_business_licence(3);
    let suspension = chain
        .fixture
        .tx(DEPARTMENT, status(&disturbed, StatusAction::Suspend));
    chain.apply(&suspension).unwrap();
    // And parks a rotation to its own key.
    let parked = chain.fixture.tx(
        DEPARTMENT,
        rotation(DEPARTMENT, thief_key(), chain.height + 100),
    );
    chain.apply(&parked).unwrap();

    // Reports from the future or from before the department existed are refused.
    let future = chain.governance(TxBody::ReportKeyCompromise {
        authority: id(DEPARTMENT),
        compromised_from: chain.height + 2,
        new_key: None,
    });
    chain.refuse(&future, "compromise_out_of_range");
    // A new key that is another department's is refused.
    let borrowed = chain.governance(TxBody::ReportKeyCompromise {
        authority: id(DEPARTMENT),
        compromised_from,
        new_key: Some(chain.authority("qd-market").keys[0].key),
    });
    chain.refuse(&borrowed, "key_in_use");

    let recovered = testkit::secret("qd-approval-recovered").public_key();
    let report = chain.governance(TxBody::ReportKeyCompromise {
        authority: id(DEPARTMENT),
        compromised_from,
        new_key: Some(recovered),
    });
    chain.apply(&report).unwrap();
    let reported_at = chain.height;
    let keys = chain.authority(DEPARTMENT).keys;
    assert_eq!(keys[0].valid_until, Some(reported_at + 1));
    assert_eq!(keys[0].compromised_from, Some(compromised_from));
    assert_eq!(keys[1].valid_until, Some(keys[1].valid_from), "overridden");
    assert_eq!(keys[2].valid_from, reported_at + 1);

    // The thief's later writes are refused.
    let revocation = chain
        .fixture
        .tx(DEPARTMENT, status(&before, StatusAction::Revoke));
    chain.refuse(&revocation, "bad_signature");

    // Before the window: valid, not flagged.
    let verdict = verdict_on(&chain, &before);
    assert!(verdict.valid);
    assert_eq!(compromise_reason(&verdict), None);
    // Issued in the window: not shown as genuine.
    let verdict = verdict_on(&chain, &forged);
    assert!(!verdict.valid);
    let reason = compromise_reason(&verdict).expect("flagged");
    assert!(!reason.ok);
    assert!(
        reason
            .detail
            .contains("signed by a key reported compromised")
    );
    // Issued before, suspended in the window: the suspension is flagged, the issuance not.
    let verdict = verdict_on(&chain, &disturbed);
    assert!(compromise_reason(&verdict).is_some_and(|reason| reason.ok));

    // The department, with its new key, reinstates what the thief suspended.
    chain.empty_block();
    sign_with(&mut chain, DEPARTMENT, "qd-approval-recovered");
    let reinstatement = chain
        .fixture
        .tx(DEPARTMENT, status(&disturbed, StatusAction::Reinstate));
    chain.apply(&reinstatement).unwrap();
    let verdict = verdict_on(&chain, &disturbed);
    assert!(verdict.valid, "{verdict:?}");
}

#[test]
fn a_report_without_a_new_key_leaves_the_department_silent_until_the_governors_rotate() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    let report = chain.governance(TxBody::ReportKeyCompromise {
        authority: id(DEPARTMENT),
        compromised_from: 1,
        new_key: None,
    });
    chain.apply(&report).unwrap();
    chain.empty_block();
    let inspection = chain
        .fixture
        .tx(DEPARTMENT, status(&number, StatusAction::AnnualInspection));
    chain.refuse(&inspection, "key_not_valid");
    // The department may not rotate itself back in; the governors may.
    let recovered = testkit::secret("qd-approval-recovered").public_key();
    let own = chain.fixture.tx(
        DEPARTMENT,
        rotation(DEPARTMENT, recovered, chain.height + 2),
    );
    chain.refuse(&own, "key_not_valid");
    let rotation = chain.governance(rotation(DEPARTMENT, recovered, chain.height + 2));
    chain.apply(&rotation).unwrap();
    chain.empty_block();
    sign_with(&mut chain, DEPARTMENT, "qd-approval-recovered");
    let inspection = chain
        .fixture
        .tx(DEPARTMENT, status(&number, StatusAction::AnnualInspection));
    chain.apply(&inspection).unwrap();
}

#[test]
fn a_key_belongs_to_one_authority_ever() {
    let mut chain = Chain::new();
    let markets_key = chain.authority("qd-market").keys[0].key;
    // Taking over another department's key by rotation, alone or through the governors.
    let takeover = chain
        .fixture
        .tx(DEPARTMENT, rotation(DEPARTMENT, markets_key, 5));
    chain.refuse(&takeover, "key_in_use");
    let takeover = chain.governance(rotation(DEPARTMENT, markets_key, 2));
    chain.refuse(&takeover, "key_in_use");
    // Registering a new department with an existing one's key.
    let impostor = chain.governance(TxBody::RegisterAuthority(AuthorityDraft {
        id: id("jy-approval"),
        name_zh: "济源市行政审批服务局".into(),
        name_en: "Jiyuan Administrative Approval Bureau".into(),
        region: testkit::region("419001"),
        uscc: testkit::uscc("419001", 1),
        roles: vec![Role::Issuer],
        key: markets_key,
    }));
    chain.refuse(&impostor, "key_in_use");
    // A key rotated away never comes back, not even to its own department, and never goes
    // to another.
    let old_key = chain.authority(DEPARTMENT).keys[0].key;
    let rotated = chain.fixture.tx(
        DEPARTMENT,
        rotation(DEPARTMENT, testkit::secret("qd-approval-2").public_key(), 2),
    );
    chain.apply(&rotated).unwrap();
    sign_with(&mut chain, DEPARTMENT, "qd-approval-2");
    let back = chain
        .fixture
        .tx(DEPARTMENT, rotation(DEPARTMENT, old_key, chain.height + 2));
    chain.refuse(&back, "key_in_use");
    let handed_on = chain.governance(rotation("jn-approval", old_key, chain.height + 2));
    chain.refuse(&handed_on, "key_in_use");
    match chain.state.records.get(&RecordKey::KeyOwner(old_key)) {
        Some(Record::KeyOwner(owner)) => assert_eq!(owner.authority, id(DEPARTMENT)),
        other => panic!("the old key's owner is kept: {other:?}"),
    }
}

#[test]
fn a_genesis_with_one_key_for_two_authorities_is_refused() {
    let mut genesis = chain_genesis();
    let first = genesis.authorities[0].key;
    genesis.authorities[1].key = first;
    let error = genesis.validate().unwrap_err();
    assert!(error.to_string().contains("already used"), "{error}");
}

fn chain_genesis() -> crate::genesis::Genesis {
    Chain::new().fixture.genesis
}

/// Revokes the department's grant of business licences in 370200 (from the next height on).
fn revoke_the_grant(chain: &mut Chain) {
    let revocation = chain.governance(TxBody::RevokeGrant {
        authority: id(DEPARTMENT),
        type_code: "business-licence".into(),
        region: testkit::region("370200"),
    });
    chain.apply(&revocation).unwrap();
    chain.empty_block();
}

fn objection_body(number: &LicenceNumber) -> TxBody {
    TxBody::FileObjection {
        type_code: "business-licence".into(),
        number: number.clone(),
        reason: "the registered address does not exist".into(),
        recognition: None,
    }
}

fn objection_on(chain: &mut Chain, number: &LicenceNumber) -> crate::hash::Hash32 {
    let filing = chain.fixture.tx("jn-approval", objection_body(number));
    let objection = filing.id(testkit::SUITE);
    chain.apply(&filing).unwrap();
    objection
}

fn resolution(objection: crate::hash::Hash32) -> TxBody {
    TxBody::ResolveObjection {
        id: objection,
        outcome: ObjectionOutcome::Dismissed,
        note: "dismissed by the department".into(),
        follow_up: None,
    }
}

#[test]
fn an_issuer_that_lost_its_grant_changes_none_of_its_licences() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    revoke_the_grant(&mut chain);

    for body in [
        renewal(&number),
        amendment(&number),
        status(&number, StatusAction::Suspend),
        status(&number, StatusAction::Revoke),
    ] {
        let write = chain.fixture.tx(DEPARTMENT, body);
        chain.refuse(&write, "not_granted");
    }
    assert!(verdict_on(&chain, &number).valid, "nothing changed");
    // The supervisor granted the type in the region still acts on it.
    let supervision = chain
        .fixture
        .tx("qd-market", status(&number, StatusAction::Suspend));
    chain.apply(&supervision).unwrap();
}

#[test]
fn an_issuer_without_the_issuer_role_changes_none_of_its_licences() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    let demotion = chain.governance(TxBody::UpdateAuthority {
        id: id(DEPARTMENT),
        name_zh: None,
        name_en: None,
        roles: Some(Vec::new()),
    });
    chain.apply(&demotion).unwrap();
    for body in [
        renewal(&number),
        amendment(&number),
        status(&number, StatusAction::Cancel),
    ] {
        let write = chain.fixture.tx(DEPARTMENT, body);
        chain.refuse(&write, "missing_role");
    }
}

#[test]
fn another_issuer_cannot_change_a_licence_it_did_not_issue() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    let objection = objection_on(&mut chain, &number);
    let amend = chain.fixture.tx("jn-approval", amendment(&number));
    chain.refuse(&amend, "not_issuer");
    let resolve = chain.fixture.tx("jn-approval", resolution(objection));
    chain.refuse(&resolve, "not_entitled_to_resolve");
    // Not a supervisor either.
    let renew = chain.fixture.tx("jn-approval", renewal(&number));
    chain.refuse(&renew, "missing_role");
}

#[test]
fn unknown_nested_fields_are_refused_when_a_body_is_read() {
    let pledge = serde_json::json!({"change_status": {
        "type_code": "business-licence",
        "number": "91370200MA00000015",
        "action": {"pledge_registered": {
            "secured_party": "青岛银行", "reference": "DY-1", "evil": 1
        }},
        "effective_at": GENESIS_TIME,
        "reason": "pledge",
    }});
    let error = serde_json::from_value::<TxBody>(pledge).unwrap_err();
    assert!(
        error.to_string().contains("unknown field `evil`"),
        "{error}"
    );
    let validators = serde_json::json!({"change_validators": {
        "changes": [{"set": {
            "key": chain_genesis().nodes[0].key, "authority": "gov-a", "power": 1, "evil": 1
        }}],
        "effective_height": 10,
    }});
    let error = serde_json::from_value::<TxBody>(validators).unwrap_err();
    assert!(
        error.to_string().contains("unknown field `evil`"),
        "{error}"
    );
}

#[test]
fn an_unknown_authority_named_by_a_record_is_the_records_fault_not_the_signers() {
    let mut chain = Chain::new();
    let grant = chain.governance(TxBody::GrantIssuance {
        authority: id("nobody"),
        type_code: "business-licence".into(),
        region: testkit::region("370200"),
    });
    chain.refuse(&grant, "unknown_named_authority");
    let attestation = chain.fixture.tx(
        "xj-recognizer",
        TxBody::AttestRecognition {
            recognizing_region: testkit::region("650000"),
            type_codes: vec!["business-licence".into()],
            issued_by: crate::records::IssuedBy::Authority(id("nobody")),
            scope: "政务服务".into(),
            valid_from: GENESIS_TIME,
            valid_until: None,
        },
    );
    chain.refuse(&attestation, "unknown_named_authority");
}

/// 2200-01-01T00:00Z.
const YEAR_2200_MS: u64 = 7_258_118_400_000;

fn dated(number: &LicenceNumber, action: StatusAction, effective_at: u64) -> TxBody {
    TxBody::ChangeStatus {
        type_code: "business-licence".into(),
        number: number.clone(),
        action,
        effective_at,
        reason: "by the department's key".into(),
    }
}

fn void(number: &LicenceNumber, event: u32) -> TxBody {
    TxBody::CorrectEvent {
        type_code: "business-licence".into(),
        number: number.clone(),
        event,
        action: crate::records::CorrectionAction::Void,
        reason: "年检日期录入错误 the inspection was entered with the wrong year".into(),
    }
}

#[test]
fn a_far_future_event_cannot_freeze_a_licence() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    // The attack of the report: an inspection dated year 2200 would refuse every later change
    // dated before it, a revocation or a suspension of today among them.
    let frozen = chain.fixture.tx(
        DEPARTMENT,
        dated(&number, StatusAction::AnnualInspection, YEAR_2200_MS),
    );
    chain.refuse(&frozen, "effective_time_too_far_ahead");
    let amended = {
        let mut body = amendment(&number);
        if let TxBody::AmendLicence { effective_at, .. } = &mut body {
            *effective_at = YEAR_2200_MS;
        }
        chain.fixture.tx(DEPARTMENT, body)
    };
    chain.refuse(&amended, "effective_time_too_far_ahead");
    // Backdating beyond the window, which would rewrite answers already given, is refused too.
    let block_time = chain.next_context().time;
    let backdated = chain.fixture.tx(
        DEPARTMENT,
        dated(
            &number,
            StatusAction::Suspend,
            block_time - limits::EVENT_BACKDATING_MS_MAX - 1,
        ),
    );
    chain.refuse(&backdated, "effective_time_too_far_back");
    // A supervisor dated now still acts.
    let now = chain.next_context().time;
    let suspension = chain
        .fixture
        .tx("qd-market", dated(&number, StatusAction::Suspend, now));
    chain.apply(&suspension).unwrap();
}

#[test]
fn a_recognizers_key_cannot_backdate_a_withdrawal() {
    let mut chain = Chain::new();
    let attest = chain.fixture.tx(
        "xj-recognizer",
        TxBody::AttestRecognition {
            recognizing_region: testkit::region("650000"),
            type_codes: vec!["business-licence".into()],
            issued_by: crate::records::IssuedBy::Region(testkit::region("370000")),
            scope: "政务服务 government services".into(),
            valid_from: GENESIS_TIME,
            valid_until: None,
        },
    );
    chain.apply(&attest).unwrap();
    let id = attest.id(testkit::SUITE);
    // Made valid for months, the recognition is withdrawn as from before the window: every
    // verdict already given in Xinjiang would turn.
    for _ in 0..3 {
        chain.empty_block();
    }
    let block_time = chain.next_context().time;
    let withdrawal = |effective_at: u64| TxBody::WithdrawRecognition {
        id,
        effective_at,
        reason: "the agreement ended".into(),
    };
    let backdated = chain.fixture.tx(
        "xj-recognizer",
        withdrawal(block_time - limits::EVENT_BACKDATING_MS_MAX - 1),
    );
    chain.refuse(&backdated, "effective_time_too_far_back");
    let parked = chain.fixture.tx("xj-recognizer", withdrawal(YEAR_2200_MS));
    chain.refuse(&parked, "effective_time_too_far_ahead");
    let now = chain.fixture.tx("xj-recognizer", withdrawal(block_time));
    chain.apply(&now).unwrap();
}

#[test]
fn one_departments_key_cannot_correct_an_event() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    // The supervisor revokes; the issuer would like the revocation undone.
    let revocation = chain
        .fixture
        .tx("qd-market", status(&number, StatusAction::Revoke));
    chain.apply(&revocation).unwrap();
    let alone = chain.fixture.tx(DEPARTMENT, void(&number, 1));
    assert_eq!(
        chain.refuse(&alone, "endorser_not_governor"),
        crate::rules::RuleError::EndorserNotGovernor(id(DEPARTMENT))
    );
    // Nor one governor's: a correction is the governors' act, more than two thirds of them.
    let one_governor = chain.fixture.governance(void(&number, 1), 1);
    chain.refuse(&one_governor, "too_few_governor_signatures");
    let two_governors = chain.fixture.governance(void(&number, 1), 2);
    chain.refuse(&two_governors, "too_few_governor_signatures");
    assert_eq!(
        chain
            .licence("business-licence", &number)
            .final_standing()
            .status,
        crate::records::Status::Revoked
    );
}

#[test]
fn the_governors_correction_unfreezes_a_licence_and_the_verdict_says_so() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    // A ledger written before the event window holds an inspection of year 2200.
    let mut licence = chain.licence("business-licence", &number);
    licence.events.push(crate::records::LicenceEvent {
        kind: crate::records::LicenceEventKind::Status(StatusAction::AnnualInspection),
        effective_at: YEAR_2200_MS,
        reason: "年检".into(),
        by: id(DEPARTMENT),
        height: 1,
        tx: crate::hash::Hash32::ZERO,
        correction: None,
    });
    chain.put(Record::Licence(licence));
    let now = chain.next_context().time;
    let revocation = chain
        .fixture
        .tx(DEPARTMENT, dated(&number, StatusAction::Revoke, now));
    chain.refuse(&revocation, "effective_time_before_last_event");
    let suspension = chain
        .fixture
        .tx("qd-market", dated(&number, StatusAction::Suspend, now));
    chain.refuse(&suspension, "effective_time_before_last_event");

    let correction = chain.governance(void(&number, 1));
    chain.apply(&correction).unwrap();
    let now = chain.next_context().time;
    let revocation = chain
        .fixture
        .tx(DEPARTMENT, dated(&number, StatusAction::Revoke, now));
    chain.apply(&revocation).unwrap();

    let verdict = verdict_on(&chain, &number);
    assert!(!verdict.valid);
    assert_eq!(verdict.status, crate::records::Status::Revoked);
    let corrected = verdict
        .reasons
        .iter()
        .find(|reason| reason.code == ReasonCode::Corrected)
        .expect("the verdict names the correction");
    assert!(corrected.ok);
    assert!(
        corrected
            .detail
            .contains("event 1 (annual_inspection) voided at height 2"),
        "{}",
        corrected.detail
    );
    assert!(corrected.detail_zh.contains("第1项（年检）于区块高度2作废"));
}

/// A business-licence issuance by the department for enterprise `enterprise`, changed by
/// `change` before it is signed.
fn issuance_with(
    chain: &mut Chain,
    enterprise: u64,
    change: impl FnOnce(&mut TxBody),
) -> crate::tx::Transaction {
    let mut body = testkit::business_licence_body("370200", enterprise);
    change(&mut body);
    chain.fixture.tx(DEPARTMENT, body)
}

fn set_number(body: &mut TxBody, text: &str) {
    if let TxBody::IssueLicence { number, .. } = body {
        *number = LicenceNumber(text.into());
    }
}

fn set_face(body: &mut TxBody, field: &str, value: &str) {
    if let TxBody::IssueLicence { face, .. } = body {
        face.insert(field.into(), crate::records::FaceValue::Clear(value.into()));
    }
}

#[test]
fn an_existing_number_respelt_in_lower_case_or_with_a_mark_is_no_second_licence() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    let lower = number.as_str().to_lowercase();
    for spelling in [
        lower.clone(),
        format!("{number}."),
        format!(".{number}"),
        format!("{number}-"),
    ] {
        let respelt = issuance_with(&mut chain, 2, |body| set_number(body, &spelling));
        chain.refuse(&respelt, "non_canonical_number");
    }
    // The lower-case spelling of any number at all, not only of an existing one.
    let mixed = issuance_with(&mut chain, 3, |body| set_number(body, "Bl-2026-0001"));
    chain.refuse(&mixed, "non_canonical_number");
    assert!(!chain.state.records.contains_key(&RecordKey::Licence(
        "business-licence".into(),
        LicenceNumber(lower)
    )),);
}

#[test]
fn names_with_invisible_format_characters_are_refused_wherever_they_are() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    // Right-to-left override, zero-width space, byte-order mark, soft hyphen, word joiner.
    for hidden in ['\u{202E}', '\u{200B}', '\u{FEFF}', '\u{00AD}', '\u{2060}'] {
        let name = format!("青岛测试企业{hidden}1有限公司");
        let in_face = issuance_with(&mut chain, 2, |body| set_face(body, "name", &name));
        let error = chain.refuse(&in_face, "format_character");
        assert_eq!(
            error,
            crate::rules::RuleError::FormatCharacter {
                field: "face field value",
                found: hidden,
            }
        );
        let in_holder = issuance_with(&mut chain, 2, |body| {
            if let TxBody::IssueLicence { holder_name, .. } = body {
                *holder_name = name.clone();
            }
        });
        chain.refuse(&in_holder, "format_character");
        let in_reason = chain.fixture.tx(
            DEPARTMENT,
            TxBody::ChangeStatus {
                type_code: "business-licence".into(),
                number: number.clone(),
                action: StatusAction::Suspend,
                effective_at: GENESIS_TIME + 60_000,
                reason: format!("inspection{hidden}"),
            },
        );
        chain.refuse(&in_reason, "format_character");
        let in_registry = chain.governance(TxBody::UpdateAuthority {
            id: id(DEPARTMENT),
            name_zh: Some(format!("青岛市{hidden}行政审批服务局")),
            name_en: None,
            roles: None,
        });
        chain.refuse(&in_registry, "format_character");
    }
}

/// A food permit type of one licence per holder whose face `uscc` is the holder's, granted
/// to the department in Qingdao.
fn define_food_permits(chain: &mut Chain) {
    use crate::records::{FieldKind, FieldSchema, TypeConstraints, Visibility};
    let field = |name: &str, kind| FieldSchema {
        name: name.into(),
        name_zh: name.into(),
        kind,
        required: true,
        visibility: Visibility::Public,
    };
    let mut draft = testkit::business_licence_type();
    draft.code = "food-permit".into();
    draft.fields = vec![
        field("name", FieldKind::Text),
        field("uscc", FieldKind::Uscc),
    ];
    draft.constraints = TypeConstraints {
        unique_per_holder: true,
        holder_fields: vec!["uscc".into()],
        ..TypeConstraints::default()
    };
    let definition = chain.governance(TxBody::DefineLicenceType(draft));
    chain.apply(&definition).unwrap();
    let grant = chain.governance(TxBody::GrantIssuance {
        authority: id(DEPARTMENT),
        type_code: "food-permit".into(),
        region: testkit::region("370200"),
    });
    chain.apply(&grant).unwrap();
}

/// A food permit numbered `number` to enterprise `holder`, its face `uscc` that of
/// enterprise `face_uscc`.
fn food_permit(
    chain: &mut Chain,
    number: &str,
    holder: u64,
    face_uscc: u64,
) -> crate::tx::Transaction {
    let mut body = testkit::business_licence_body("370200", holder);
    if let TxBody::IssueLicence {
        type_code,
        number: licence_number,
        face,
        ..
    } = &mut body
    {
        *type_code = "food-permit".into();
        *licence_number = LicenceNumber(number.into());
        face.clear();
        face.insert(
            "name".into(),
            crate::records::FaceValue::Clear("青岛另一家有限公司".into()),
        );
        face.insert(
            "uscc".into(),
            crate::records::FaceValue::Clear(testkit::uscc("370200", face_uscc).to_string()),
        );
    }
    chain.fixture.tx(DEPARTMENT, body)
}

#[test]
fn a_second_licence_for_the_same_enterprise_is_refused() {
    let mut chain = Chain::new();
    let first = chain.issue_business_licence(1);
    // The business licence's number is its holder's USCC: another number for the same
    // holder, or a number that is no USCC at all, is refused.
    let other = testkit::uscc("370200", 2).to_string();
    for number in [other.as_str(), "BL-NOT-A-USCC"] {
        let second = issuance_with(&mut chain, 1, |body| {
            set_number(body, number);
            set_face(body, "name", "青岛另一家有限公司");
        });
        chain.refuse(&second, "number_not_holder_uscc");
    }

    // A type of one licence per holder: a second while the first is in force is refused,
    // and so is a face USCC that is not the holder's.
    define_food_permits(&mut chain);
    let permit = food_permit(&mut chain, "JY-0001", 1, 1);
    chain.apply(&permit).unwrap();
    let second = food_permit(&mut chain, "JY-0002", 1, 1);
    let error = chain.refuse(&second, "holder_already_licensed");
    assert_eq!(
        error,
        crate::rules::RuleError::HolderAlreadyLicensed {
            type_code: "food-permit".into(),
            holder: first.to_string(),
            number: LicenceNumber("JY-0001".into()),
        }
    );
    let borrowed_face = food_permit(&mut chain, "JY-0003", 2, 1);
    chain.refuse(&borrowed_face, "face_not_holder");
    // Once the first has ended, the holder may be licensed again.
    let revocation = chain.fixture.tx(
        DEPARTMENT,
        TxBody::ChangeStatus {
            type_code: "food-permit".into(),
            number: LicenceNumber("JY-0001".into()),
            action: StatusAction::Revoke,
            effective_at: GENESIS_TIME + 60_000,
            reason: "吊销".into(),
        },
    );
    chain.apply(&revocation).unwrap();
    let again = food_permit(&mut chain, "JY-0002", 1, 1);
    chain.apply(&again).unwrap();
}

#[test]
fn a_face_out_of_its_bounds_is_refused_at_issuance_and_at_amendment() {
    let mut chain = Chain::new();
    for (field, value) in [
        ("registered_capital", "-1.00"),
        ("registered_capital", "-0.01"),
        ("established", "9999-12-31"),
        // The day after the block's (2026-01-01 in Beijing).
        ("established", "2026-01-02"),
        ("established", "1949-09-30"),
    ] {
        let issuance = issuance_with(&mut chain, 1, |body| set_face(body, field, value));
        chain.refuse(&issuance, "face_out_of_bounds");
    }
    // At the edges: nothing, and the founding day.
    let issuance = issuance_with(&mut chain, 1, |body| {
        set_face(body, "registered_capital", "0.00");
        set_face(body, "established", "1949-10-01");
    });
    chain.apply(&issuance).unwrap();
    let number = LicenceNumber(testkit::uscc("370200", 1).to_string());
    let negative = chain.fixture.tx(
        DEPARTMENT,
        TxBody::AmendLicence {
            type_code: "business-licence".into(),
            number,
            changes: [(
                "registered_capital".to_owned(),
                Some(crate::records::FaceValue::Clear("-500000.00".into())),
            )]
            .into_iter()
            .collect(),
            effective_at: GENESIS_TIME + 60_000,
            reason: "减资".into(),
        },
    );
    chain.refuse(&negative, "face_out_of_bounds");
}

#[test]
fn a_licence_dated_at_the_epoch_or_a_transaction_made_then_is_refused() {
    let mut chain = Chain::new();
    let block_time = chain.next_context().time;
    let year_1970 = 86_400_000;
    for valid_from in [
        0,
        year_1970,
        block_time + limits::LICENCE_SCHEDULING_MS_MAX + 1,
    ] {
        let issuance = issuance_with(&mut chain, 1, |body| {
            if let TxBody::IssueLicence {
                valid_from: from, ..
            } = body
            {
                *from = valid_from;
            }
        });
        chain.refuse(&issuance, "valid_from_out_of_range");
    }
    let body = testkit::business_licence_body("370200", 1);
    let payload = chain.fixture.payload(DEPARTMENT, body, 0);
    let from_1970 = chain.fixture.sign(payload, &[DEPARTMENT]);
    chain.refuse(&from_1970, "created_too_long_ago");
    // A paper licence of 1980 converted to the ledger keeps its start.
    let converted = issuance_with(&mut chain, 1, |body| {
        if let TxBody::IssueLicence { valid_from, .. } = body {
            *valid_from = block_time - limits::LICENCE_BACKDATING_MS_MAX;
        }
    });
    chain.apply(&converted).unwrap();
}

#[test]
fn a_retired_type_issues_nothing_and_only_the_governors_change_the_catalogue() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    let mut amended = testkit::business_licence_type();
    amended.name_en = "Business licence (amended by one department)".into();
    // The department's key alone, or with one governor, changes nothing in the catalogue.
    let alone = chain
        .fixture
        .tx(DEPARTMENT, TxBody::AmendLicenceType(amended.clone()));
    chain.refuse(&alone, "endorser_not_governor");
    let retire = TxBody::RetireLicenceType {
        type_code: "business-licence".into(),
        reason: "by the department's key".into(),
    };
    let alone = chain.fixture.tx(DEPARTMENT, retire.clone());
    chain.refuse(&alone, "endorser_not_governor");
    let one_governor = chain
        .fixture
        .governance(TxBody::AmendLicenceType(amended), 1);
    chain.refuse(&one_governor, "too_few_governor_signatures");

    let retirement = chain.governance(retire);
    chain.apply(&retirement).unwrap();
    chain.empty_block();
    let issuance = issuance_with(&mut chain, 2, |_| {});
    chain.refuse(&issuance, "type_retired");
    // What was issued keeps its standing.
    assert!(verdict_on(&chain, &number).valid);
}

// Objections (ADR 0034): a recognizer's key in Xinjiang against a Qingdao licence.

/// Xinjiang's recognition of business licences issued in Shandong, by `xj-recognizer`.
fn recognise_in_xinjiang(chain: &mut Chain) -> crate::hash::Hash32 {
    let attest = chain.fixture.tx(
        "xj-recognizer",
        TxBody::AttestRecognition {
            recognizing_region: testkit::region("650000"),
            type_codes: vec!["business-licence".into()],
            issued_by: crate::records::IssuedBy::Region(testkit::region("370000")),
            scope: "market access".into(),
            valid_from: GENESIS_TIME,
            valid_until: None,
        },
    );
    chain.apply(&attest).unwrap();
    attest.id(testkit::SUITE)
}

fn objection_under(number: &LicenceNumber, recognition: crate::hash::Hash32) -> TxBody {
    TxBody::FileObjection {
        type_code: "business-licence".into(),
        number: number.clone(),
        reason: "disputed from Xinjiang".into(),
        recognition: Some(recognition),
    }
}

/// Registers a recognizer of Xinjiang that signs with the key derived from its id.
fn register_xinjiang_recognizer(chain: &mut Chain, name: &str, number: u64) {
    let registration = chain.governance(TxBody::RegisterAuthority(AuthorityDraft {
        id: id(name),
        name_zh: "新疆维吾尔自治区某地政务服务中心".into(),
        name_en: "A Xinjiang government services centre".into(),
        region: testkit::region("650100"),
        uscc: testkit::uscc("650100", number),
        roles: vec![Role::Recognizer],
        key: testkit::secret(name).public_key(),
    }));
    chain.apply(&registration).unwrap();
    sign_with(chain, name, name);
}

#[test]
fn one_recognizer_files_one_open_objection_on_a_licence_not_sixteen() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    let recognition = recognise_in_xinjiang(&mut chain);
    let first = chain
        .fixture
        .tx("xj-recognizer", objection_under(&number, recognition));
    chain.apply(&first).unwrap();
    for _ in 1..limits::OPEN_OBJECTIONS_PER_LICENCE_MAX {
        let again = chain
            .fixture
            .tx("xj-recognizer", objection_under(&number, recognition));
        chain.refuse(&again, "objection_already_open");
    }
    let licence = chain.licence("business-licence", &number);
    assert_eq!(licence.open_objections(), vec![first.id(testkit::SUITE)]);
    // The supervisor's genuine objection still finds room.
    let genuine = chain.fixture.tx("qd-market", objection_body(&number));
    chain.apply(&genuine).unwrap();
    assert_eq!(verdict_on(&chain, &number).open_objections.len(), 2);
}

#[test]
fn one_regions_filers_fill_their_share_and_another_regions_supervisor_still_files() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    let recognition = recognise_in_xinjiang(&mut chain);
    let names: Vec<String> = (1..=limits::OPEN_OBJECTIONS_PER_REGION_MAX)
        .map(|index| format!("xj-centre-{index}"))
        .collect();
    for (number, name) in (1..).zip(&names) {
        register_xinjiang_recognizer(&mut chain, name, number);
    }
    let xinjiang = std::iter::once("xj-recognizer").chain(names.iter().map(String::as_str));
    let (within, beyond): (Vec<_>, Vec<_>) = xinjiang
        .enumerate()
        .partition(|(index, _)| *index < limits::OPEN_OBJECTIONS_PER_REGION_MAX);
    for (_, filer) in within {
        let filing = chain
            .fixture
            .tx(filer, objection_under(&number, recognition));
        chain.apply(&filing).unwrap();
    }
    for (_, filer) in beyond {
        let filing = chain
            .fixture
            .tx(filer, objection_under(&number, recognition));
        chain.refuse(&filing, "too_many_objections_from_region");
    }
    let supervisor = chain.fixture.tx("qd-market", objection_body(&number));
    chain.apply(&supervisor).unwrap();
    assert_eq!(
        chain
            .licence("business-licence", &number)
            .open_objections()
            .len(),
        limits::OPEN_OBJECTIONS_PER_REGION_MAX + 1
    );
}

#[test]
fn an_authority_with_no_tie_to_the_licence_cannot_object() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    // Xinjiang's recognizer before Xinjiang recognises Shandong's licences, and Xinjiang's
    // governor, which recognises nothing.
    let stranger = chain.fixture.tx("xj-recognizer", objection_body(&number));
    chain.refuse(&stranger, "not_entitled_to_object");
    let governor = chain.fixture.tx("gov-c", objection_body(&number));
    chain.refuse(&governor, "not_entitled_to_object");
    assert!(verdict_on(&chain, &number).open_objections.is_empty());
}

#[test]
fn the_issuer_cannot_settle_an_objection_to_its_own_licence() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    let objection = objection_on(&mut chain, &number);
    let settle = chain.fixture.tx(DEPARTMENT, resolution(objection));
    chain.refuse(&settle, "issuer_resolves_alone");
    assert_eq!(verdict_on(&chain, &number).open_objections, vec![objection]);
}

#[test]
fn an_objection_is_not_upheld_without_a_correction_after_it() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    let objection = objection_on(&mut chain, &number);
    let upheld = |follow_up| TxBody::ResolveObjection {
        id: objection,
        outcome: ObjectionOutcome::Upheld,
        note: "upheld".into(),
        follow_up,
    };
    let bare = chain.fixture.tx("qd-market", upheld(None));
    chain.refuse(&bare, "upheld_without_follow_up");
    let the_issuance = chain.fixture.tx("qd-market", upheld(Some(0)));
    chain.refuse(&the_issuance, "bad_follow_up");
    let by_the_governors = chain.governance(upheld(None));
    chain.refuse(&by_the_governors, "upheld_without_follow_up");
    assert_eq!(verdict_on(&chain, &number).open_objections, vec![objection]);
}

#[test]
fn a_verdict_at_a_past_time_shows_the_objections_open_then() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    let filed_at = Chain::time_at(chain.height + 1);
    let objection = objection_on(&mut chain, &number);
    let resolved_at = Chain::time_at(chain.height + 1);
    let dismiss = chain.fixture.tx("qd-market", resolution(objection));
    chain.apply(&dismiss).unwrap();
    let licence = chain.licence("business-licence", &number);
    let at = |time| {
        VerdictRecords::collect(&licence, None, chain.state.records.values().cloned())
            .verdict(&licence, None, time)
            .expect("the issuer is among the records")
    };
    let disputed = |verdict: &Verdict| {
        verdict
            .reasons
            .iter()
            .any(|reason| reason.code == ReasonCode::Disputed)
    };
    assert!(at(filed_at - 1).open_objections.is_empty());
    let then = at(filed_at);
    assert_eq!(then.open_objections, vec![objection]);
    assert!(disputed(&then));
    assert_eq!(at(resolved_at - 1).open_objections, vec![objection]);
    let now = at(resolved_at);
    assert!(now.open_objections.is_empty());
    assert!(!disputed(&now));
}

#[test]
fn an_upheld_objection_whose_correction_was_voided_is_a_warning_in_the_verdict() {
    let mut chain = Chain::new();
    let number = chain.issue_business_licence(1);
    let objection = objection_on(&mut chain, &number);
    let suspension = chain
        .fixture
        .tx("qd-market", status(&number, StatusAction::Suspend));
    chain.apply(&suspension).unwrap();
    let upheld = chain.fixture.tx(
        "qd-market",
        TxBody::ResolveObjection {
            id: objection,
            outcome: ObjectionOutcome::Upheld,
            note: "the address does not exist; suspended".into(),
            follow_up: Some(1),
        },
    );
    chain.apply(&upheld).unwrap();
    let warned = |verdict: &Verdict| {
        verdict
            .reasons
            .iter()
            .find(|reason| reason.code == ReasonCode::UpheldWithoutFollowUp)
            .cloned()
    };
    assert_eq!(warned(&verdict_on(&chain, &number)), None);
    // The governors later void the suspension: the objection stays upheld, and the verdict
    // says its correction no longer holds.
    let correction = chain.governance(void(&number, 1));
    chain.apply(&correction).unwrap();
    let verdict = verdict_on(&chain, &number);
    let warning = warned(&verdict).expect("the verdict warns of the upheld objection");
    assert!(warning.ok);
    assert!(verdict.valid);
    assert!(
        warning
            .detail
            .contains(&format!("objection {objection} names event 1")),
        "{}",
        warning.detail
    );
}
