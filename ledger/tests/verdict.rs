//! The verdict at its boundaries: the millisecond a suspension takes effect, expiry, an
//! attestation that expired yesterday, province-level recognition covering cities, a key
//! rotated after issuance, objections, pledges.

use hutong_core::hash::Hash32;
use hutong_core::ident::RegionCode;
use hutong_core::records::{IssuedBy, LicenceNumber, StatusAction, TypeCode};
use hutong_core::testkit::{self, DAY_MS, Fixture, GENESIS_TIME};
use hutong_core::tx::{Transaction, TxBody};
use hutong_core::verdict::{ReasonCode, Verdict};
use hutong_ledger::store::{MemoryBackend, Mode, Store};

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

    fn commit(&mut self, transactions: Vec<Transaction>) {
        self.time += 1000;
        let execution = self
            .store
            .execute(
                self.time,
                self.fixture.node_keys[0].public_key(),
                transactions,
                Mode::Verify,
            )
            .unwrap();
        {
            let certificate = self.fixture.certify(&execution.header);
            self.store.commit(execution, certificate)
        }
        .unwrap();
    }

    fn issue(&mut self, n: u64) -> LicenceNumber {
        let transaction = self
            .fixture
            .issue_business_licence("qd-approval", "370200", n);
        let TxBody::IssueLicence { number, .. } = &transaction.payload.body else {
            unreachable!()
        };
        let number = number.clone();
        self.commit(vec![transaction]);
        number
    }

    fn status(&mut self, number: &LicenceNumber, action: StatusAction, effective_at: u64) {
        let transaction = self.fixture.tx(
            "qd-market",
            TxBody::ChangeStatus {
                type_code: "business-licence".into(),
                number: number.clone(),
                action,
                effective_at,
                reason: "检查发现问题".into(),
            },
        );
        self.commit(vec![transaction]);
    }

    fn verdict(&self, number: &LicenceNumber, region: Option<&str>, at: u64) -> Verdict {
        let region = region.map(|code| RegionCode::parse(code).unwrap());
        self.store
            .verdict(
                &TypeCode::from("business-licence"),
                number,
                region.as_ref(),
                at,
            )
            .unwrap()
            .unwrap()
            .verdict
    }

    fn attest(&mut self, valid_from: u64, valid_until: Option<u64>) -> Hash32 {
        let transaction = self.fixture.tx(
            "xj-recognizer",
            TxBody::AttestRecognition {
                recognizing_region: testkit::region("650000"),
                type_codes: vec!["business-licence".into()],
                issued_by: IssuedBy::Region(testkit::region("370000")),
                scope: "企业开办、银行开户、招投标".into(),
                valid_from,
                valid_until,
            },
        );
        let id = transaction.id(hutong_core::testkit::SUITE);
        self.commit(vec![transaction]);
        id
    }
}

fn has(verdict: &Verdict, code: ReasonCode, ok: bool) -> bool {
    verdict
        .reasons
        .iter()
        .any(|reason| reason.code == code && reason.ok == ok)
}

#[test]
fn valid_licence_has_every_reason() {
    let mut chain = Chain::new();
    let number = chain.issue(1);
    let verdict = chain.verdict(&number, Some("370202"), GENESIS_TIME + DAY_MS);
    assert!(verdict.valid);
    assert_eq!(verdict.valid_in_region, Some(true));
    assert!(has(&verdict, ReasonCode::IssuerAuthorised, true));
    assert!(has(&verdict, ReasonCode::WithinValidity, true));
    assert!(has(&verdict, ReasonCode::Status, true));
    assert!(has(&verdict, ReasonCode::IssuedInRegion, true));
    assert!(
        verdict
            .reasons
            .iter()
            .all(|reason| !reason.detail.is_empty() && !reason.detail_zh.is_empty())
    );
}

#[test]
fn suspension_takes_effect_at_its_millisecond() {
    let mut chain = Chain::new();
    let number = chain.issue(2);
    let t = GENESIS_TIME + 30 * DAY_MS;
    chain.status(&number, StatusAction::Suspend, t);
    assert!(chain.verdict(&number, None, t - 1).valid);
    let at = chain.verdict(&number, None, t);
    assert!(!at.valid);
    assert!(has(&at, ReasonCode::Status, false));
    chain.status(&number, StatusAction::Reinstate, t + DAY_MS);
    assert!(!chain.verdict(&number, None, t + DAY_MS - 1).valid);
    assert!(chain.verdict(&number, None, t + DAY_MS).valid);
}

#[test]
fn before_validity_and_at_expiry() {
    let mut chain = Chain::new();
    let salt = [1u8; 32];
    let person = Hash32([2u8; 32]);
    let issue = chain.fixture.tx(
        "hr-bureau",
        testkit::qualification_body("Q-1", person, "id", &salt),
    );
    chain.commit(vec![issue]);
    let until = GENESIS_TIME + 5 * 365 * DAY_MS;
    let verdict_at = |chain: &Chain, at: u64| {
        chain
            .store
            .verdict(
                &TypeCode::from("qualification"),
                &LicenceNumber("Q-1".into()),
                None,
                at,
            )
            .unwrap()
            .unwrap()
            .verdict
    };
    let before = verdict_at(&chain, GENESIS_TIME - 1);
    assert!(!before.valid && has(&before, ReasonCode::NotYetValid, false));
    assert!(verdict_at(&chain, until - 1).valid);
    let expired = verdict_at(&chain, until);
    assert!(!expired.valid && has(&expired, ReasonCode::Expired, false));
}

#[test]
fn recognition_makes_it_usable_in_another_province() {
    let mut chain = Chain::new();
    let number = chain.issue(3);
    let at = GENESIS_TIME + 10 * DAY_MS;
    // Urumqi (650100), before any attestation: not recognised.
    let before = chain.verdict(&number, Some("650100"), at);
    assert!(before.valid, "the licence itself stays valid");
    assert_eq!(before.valid_in_region, Some(false));
    assert!(has(&before, ReasonCode::NotRecognised, false));
    let id = chain.attest(GENESIS_TIME, None);
    let after = chain.verdict(&number, Some("650100"), at);
    assert_eq!(after.valid_in_region, Some(true));
    assert_eq!(after.recognition, Some(id));
    // The attestation is Xinjiang's: Beijing still does not recognise it.
    assert_eq!(
        chain.verdict(&number, Some("110000"), at).valid_in_region,
        Some(false)
    );
}

#[test]
fn attestation_that_expired_yesterday_does_not_count() {
    let mut chain = Chain::new();
    let number = chain.issue(4);
    let today = GENESIS_TIME + 100 * DAY_MS;
    chain.attest(GENESIS_TIME, Some(today - DAY_MS));
    let verdict = chain.verdict(&number, Some("650000"), today);
    assert_eq!(verdict.valid_in_region, Some(false));
    assert_eq!(
        chain
            .verdict(&number, Some("650000"), today - DAY_MS - 1)
            .valid_in_region,
        Some(true)
    );
}

#[test]
fn revoked_licence_is_invalid_everywhere() {
    let mut chain = Chain::new();
    let number = chain.issue(5);
    chain.attest(GENESIS_TIME, None);
    let t = GENESIS_TIME + DAY_MS;
    chain.status(&number, StatusAction::Revoke, t);
    let verdict = chain.verdict(&number, Some("650000"), t);
    assert!(!verdict.valid);
    assert_eq!(verdict.valid_in_region, Some(false));
}

#[test]
fn key_rotated_after_issuance_keeps_the_licence_valid() {
    let mut chain = Chain::new();
    let number = chain.issue(6);
    let height = chain.store.height().unwrap();
    let rotate = chain.fixture.tx(
        "qd-approval",
        TxBody::RotateKey {
            authority: "qd-approval".into(),
            new_key: testkit::secret("qd-approval-new").public_key(),
            effective_height: height + 2,
        },
    );
    chain.commit(vec![rotate]);
    chain.commit(vec![]);
    chain.commit(vec![]);
    assert!(chain.verdict(&number, None, GENESIS_TIME + DAY_MS).valid);
}

#[test]
fn objection_is_shown_without_invalidating() {
    let mut chain = Chain::new();
    let number = chain.issue(7);
    let file = chain.fixture.tx(
        "qd-market",
        TxBody::FileObjection {
            type_code: "business-licence".into(),
            number: number.clone(),
            reason: "经营地址不符".into(),
            recognition: None,
        },
    );
    let id = file.id(hutong_core::testkit::SUITE);
    chain.commit(vec![file]);
    let verdict = chain.verdict(&number, None, GENESIS_TIME + DAY_MS);
    assert!(verdict.valid);
    assert_eq!(verdict.open_objections, vec![id]);
    assert!(has(&verdict, ReasonCode::Disputed, true));
}

#[test]
fn a_verdict_at_a_past_time_shows_the_objections_open_then_with_their_records() {
    let mut chain = Chain::new();
    let number = chain.issue(8);
    let file = chain.fixture.tx(
        "jn-approval",
        TxBody::FileObjection {
            type_code: "business-licence".into(),
            number: number.clone(),
            reason: "经营地址不符".into(),
            recognition: None,
        },
    );
    let id = file.id(hutong_core::testkit::SUITE);
    chain.commit(vec![file]);
    let filed_at = chain.time;
    let dismissal = chain.fixture.tx(
        "qd-market",
        TxBody::ResolveObjection {
            id,
            outcome: hutong_core::records::ObjectionOutcome::Dismissed,
            note: "现场核查属实 checked on site".into(),
            follow_up: None,
        },
    );
    chain.commit(vec![dismissal]);
    let resolved_at = chain.time;

    let answer = |at: u64| {
        chain
            .store
            .verdict(&TypeCode::from("business-licence"), &number, None, at)
            .unwrap()
            .unwrap()
    };
    assert!(answer(filed_at - 1).verdict.open_objections.is_empty());
    let then = answer(filed_at);
    assert_eq!(then.verdict.open_objections, vec![id]);
    assert!(has(&then.verdict, ReasonCode::Disputed, true));
    // The record of the objection resolved since is in the answer, with its resolution.
    let record = then
        .objections
        .iter()
        .find(|objection| objection.id == id)
        .expect("the answer holds the objection open then");
    assert!(record.resolution.is_some());
    let now = answer(resolved_at);
    assert!(now.verdict.open_objections.is_empty());
    assert!(
        !now.verdict
            .reasons
            .iter()
            .any(|reason| reason.code == ReasonCode::Disputed)
    );
}

#[test]
fn unknown_licence_has_no_verdict() {
    let chain = Chain::new();
    assert!(
        chain
            .store
            .verdict(
                &TypeCode::from("business-licence"),
                &LicenceNumber("none".into()),
                None,
                GENESIS_TIME
            )
            .unwrap()
            .is_none()
    );
}
