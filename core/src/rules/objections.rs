//! The rules of objections (异议, ADR 0034): who may dispute a licence, how many disputes one
//! licence holds open, and who settles them.
//!
//! A department of the licence's province, a supervisor of its type with a grant covering its
//! region, or a recognizer of a region that recognises the licence (naming the attestation)
//! may file (a recognizer of the recognising region, or of a region within it, such as a city
//! under a province's attestation). Each filer holds at most one open objection on a licence, the filers of one
//! region at most [`limits::OPEN_OBJECTIONS_PER_REGION_MAX`], and the licence at most
//! [`limits::OPEN_OBJECTIONS_PER_LICENCE_MAX`]. A supervisor of the type and region other
//! than the issuer, or more than two thirds of the governors, resolves one; an objection is
//! upheld only with the event of the licence's history that corrected the licence after it
//! was filed. The licence keeps a mark of every objection ([`ObjectionMark`]), so that a
//! verdict at any time says which were open then without searching.

use super::authorities::{require_governors, require_role};
use super::error::RuleError;
use super::state::{Origin, Scratch, StateReader};
use crate::hash::Hash32;
use crate::ident::RegionCode;
use crate::limits;
use crate::records::{
    Authority, Licence, LicenceEventKind, LicenceNumber, Objection, ObjectionBasis, ObjectionMark,
    ObjectionOutcome, Record, Resolution, Role, StatusAction, TypeCode,
};

/// A `FileObjection` body, borrowed from the transaction.
#[derive(Clone, Copy, Debug)]
pub(super) struct Filing<'b> {
    pub type_code: &'b TypeCode,
    pub number: &'b LicenceNumber,
    pub reason: &'b str,
    pub recognition: Option<&'b Hash32>,
}

/// A `ResolveObjection` body, borrowed from the transaction, and whether the governors signed
/// it (more than one endorser, counted by `authorise`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Settlement<'b> {
    pub id: &'b Hash32,
    pub outcome: ObjectionOutcome,
    pub note: &'b str,
    pub follow_up: Option<u32>,
    pub by_governors: bool,
}

/// `FileObjection`: a new objection on a licence, named by the filing transaction's id, by
/// a filer entitled to it ([`basis`]) with room for it on the licence ([`require_room`]).
pub(super) fn file<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    filing: Filing<'_>,
) -> Result<(), RuleError> {
    let mut licence = state.require_licence(filing.type_code, filing.number)?;
    let filer = state.require_authority(origin.signer)?;
    let basis = basis(state, origin, &filer, &licence, filing.recognition)?;
    let filer_region = region_group(&filer.region);
    require_room(&licence, &filer, &filer_region)?;
    let events_at_filing = u32::try_from(licence.events.len()).unwrap_or(u32::MAX);
    licence.objections.push(ObjectionMark {
        id: origin.id,
        filed_by: filer.id.clone(),
        filer_region,
        filed_at: origin.context.time,
        resolved_at: None,
        follow_up: None,
    });
    state.put(Record::Licence(licence));
    state.put(Record::Objection(Objection {
        id: origin.id,
        type_code: filing.type_code.clone(),
        number: filing.number.clone(),
        filed_by: filer.id,
        reason: filing.reason.to_owned(),
        filed_at: origin.context.time,
        height: origin.context.height,
        resolution: None,
        basis,
        events_at_filing,
    }));
    Ok(())
}

/// The region whose filers share one bound on a licence: the filer's province, or the nation.
fn region_group(region: &RegionCode) -> RegionCode {
    region.province().unwrap_or(RegionCode::NATIONAL)
}

/// Why `filer` may object to `licence`: the recognition it names (a recognizer's, in force
/// now, covering the licence, for a region that covers the filer's or lies within it), else a supervisor's grant of
/// the type covering the licence's region, else a seat in the licence's province.
fn basis<R: StateReader + ?Sized>(
    state: &Scratch<'_, '_, R>,
    origin: Origin<'_>,
    filer: &Authority,
    licence: &Licence,
    recognition: Option<&Hash32>,
) -> Result<ObjectionBasis, RuleError> {
    let refused = || RuleError::NotEntitledToObject {
        authority: filer.id.clone(),
    };
    if let Some(recognition_id) = recognition {
        require_role(filer, Role::Recognizer)?;
        let recognition = state
            .recognition(recognition_id)?
            .ok_or(RuleError::UnknownRecognition(*recognition_id))?;
        let related = filer.region.covers(&recognition.recognizing_region)
            || recognition.recognizing_region.covers(&filer.region);
        let recognises = related
            && recognition.in_force_at(origin.context.time)
            && recognition.covers(licence, &recognition.recognizing_region);
        return if recognises {
            Ok(ObjectionBasis::Recognition(*recognition_id))
        } else {
            Err(refused())
        };
    }
    if filer.has_role(Role::Supervisor)
        && state.has_covering_grant(
            &filer.id,
            &licence.type_code,
            &licence.region,
            origin.context.height,
        )?
    {
        return Ok(ObjectionBasis::Supervisor);
    }
    if region_group(&filer.region) == region_group(&licence.region) {
        return Ok(ObjectionBasis::IssuingProvince);
    }
    Err(refused())
}

/// Refuses a filing that would give `filer` a second open objection on `licence`, its
/// region more than its bound, the licence more than its bound open, or the licence's record
/// more marks than it keeps.
fn require_room(
    licence: &Licence,
    filer: &Authority,
    filer_region: &RegionCode,
) -> Result<(), RuleError> {
    let open: Vec<&ObjectionMark> = licence
        .objections
        .iter()
        .filter(|mark| mark.resolved_at.is_none())
        .collect();
    if let Some(mine) = open.iter().find(|mark| mark.filed_by == filer.id) {
        return Err(RuleError::ObjectionAlreadyOpen {
            filer: filer.id.clone(),
            objection: mine.id,
        });
    }
    let from_region = open
        .iter()
        .filter(|mark| mark.filer_region == *filer_region)
        .count();
    if from_region >= limits::OPEN_OBJECTIONS_PER_REGION_MAX {
        return Err(RuleError::TooManyObjectionsFromRegion {
            region: filer_region.clone(),
            limit: limits::OPEN_OBJECTIONS_PER_REGION_MAX,
        });
    }
    if open.len() >= limits::OPEN_OBJECTIONS_PER_LICENCE_MAX {
        return Err(RuleError::TooManyObjections {
            limit: limits::OPEN_OBJECTIONS_PER_LICENCE_MAX,
        });
    }
    if licence.objections.len() >= limits::OBJECTIONS_PER_LICENCE_MAX {
        return Err(RuleError::TooManyObjectionsRecorded {
            limit: limits::OBJECTIONS_PER_LICENCE_MAX,
        });
    }
    Ok(())
}

/// `ResolveObjection`: a supervisor of the licence's type with a grant covering its region,
/// not its issuer, or the governors (more than two thirds of them signed, which `authorise`
/// checked, or the one governor of a chain that has one) end an open objection. Upheld, it
/// names its follow-up ([`require_follow_up`]). Returns the licence it was about, which the
/// body does not name.
pub(super) fn resolve<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    settlement: Settlement<'_>,
) -> Result<(TypeCode, LicenceNumber), RuleError> {
    let objection_id = settlement.id;
    let mut objection = state
        .objection(objection_id)?
        .ok_or(RuleError::UnknownObjection(*objection_id))?;
    if objection.resolution.is_some() {
        return Err(RuleError::AlreadyResolved(*objection_id));
    }
    let mut licence = state.require_licence(&objection.type_code, &objection.number)?;
    let by_governors = settlement.by_governors || resolver_right(state, origin, &licence)?;
    match (settlement.outcome, settlement.follow_up) {
        (ObjectionOutcome::Upheld, None) => return Err(RuleError::UpheldWithoutFollowUp),
        (ObjectionOutcome::Upheld, Some(index)) => {
            require_follow_up(&licence, &objection, index)?;
        }
        (ObjectionOutcome::Dismissed, Some(index)) => {
            return Err(RuleError::BadFollowUp {
                index,
                why: "a dismissed objection names no follow-up",
            });
        }
        (ObjectionOutcome::Dismissed, None) => {}
    }
    for mark in &mut licence.objections {
        if mark.id == *objection_id {
            mark.resolved_at = Some(origin.context.time);
            mark.follow_up = settlement.follow_up;
        }
    }
    objection.resolution = Some(Resolution {
        by: origin.signer.clone(),
        outcome: settlement.outcome,
        note: settlement.note.to_owned(),
        at: origin.context.time,
        height: origin.context.height,
        by_governors,
        follow_up: settlement.follow_up,
    });
    let licence_key = (objection.type_code.clone(), objection.number.clone());
    state.put(Record::Licence(licence));
    state.put(Record::Objection(objection));
    Ok(licence_key)
}

/// The right of a lone signer to resolve an objection on `licence`: refused to its issuer,
/// granted to a supervisor of its type and region, and to the one governor of a chain whose
/// threshold it meets alone. Returns whether it resolves as the governors.
fn resolver_right<R: StateReader + ?Sized>(
    state: &Scratch<'_, '_, R>,
    origin: Origin<'_>,
    licence: &Licence,
) -> Result<bool, RuleError> {
    let signer = state.require_authority(origin.signer)?;
    if signer.id == *licence.responsible() {
        return Err(RuleError::IssuerResolvesAlone {
            authority: signer.id,
        });
    }
    if signer.has_role(Role::Supervisor)
        && state.has_covering_grant(
            &signer.id,
            &licence.type_code,
            &licence.region,
            origin.context.height,
        )?
    {
        return Ok(false);
    }
    if signer.has_role(Role::Governor)
        && require_governors(state, std::slice::from_ref(&signer.id)).is_ok()
    {
        return Ok(true);
    }
    Err(RuleError::NotEntitledToResolve {
        authority: signer.id,
    })
}

/// Refuses unless event `index` of `licence`'s history corrected it after `objection` was
/// filed: an amendment, a suspension, a revocation or an abolition recorded since, and not
/// voided by the governors.
fn require_follow_up(
    licence: &Licence,
    objection: &Objection,
    index: u32,
) -> Result<(), RuleError> {
    let bad = |why| RuleError::BadFollowUp { index, why };
    let event = usize::try_from(index)
        .ok()
        .and_then(|at| licence.events.get(at))
        .ok_or(bad("the history has no such event"))?;
    if index < objection.events_at_filing {
        return Err(bad("it was recorded before the objection was filed"));
    }
    if !event.counts() {
        return Err(bad("the governors voided it"));
    }
    let corrects = matches!(
        &event.kind,
        LicenceEventKind::Amended { .. }
            | LicenceEventKind::Status(
                StatusAction::Suspend | StatusAction::Revoke | StatusAction::Abolish
            )
    );
    if !corrects {
        return Err(bad(
            "only an amendment, a suspension, a revocation or an abolition corrects a licence",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Chain, entry, id, writes};
    use crate::hash::Hash32;
    use crate::limits;
    use crate::records::{
        IssuedBy, LicenceNumber, Objection, ObjectionBasis, ObjectionMark, ObjectionOutcome,
        Record, Resolution, StatusAction,
    };
    use crate::rules::RuleError;
    use crate::testkit::{GENESIS_TIME, region};
    use crate::tx::{Transaction, TxBody};

    fn filing(number: &LicenceNumber) -> TxBody {
        TxBody::FileObjection {
            type_code: "business-licence".into(),
            number: number.clone(),
            reason: "the registered address does not exist".into(),
            recognition: None,
        }
    }

    fn filing_under(number: &LicenceNumber, recognition: Hash32) -> TxBody {
        TxBody::FileObjection {
            type_code: "business-licence".into(),
            number: number.clone(),
            reason: "the licence is presented in Xinjiang with a wrong address".into(),
            recognition: Some(recognition),
        }
    }

    fn resolution(objection: Hash32, outcome: ObjectionOutcome, follow_up: Option<u32>) -> TxBody {
        TxBody::ResolveObjection {
            id: objection,
            outcome,
            note: "the address was verified on site".into(),
            follow_up,
        }
    }

    fn dismissal(objection: Hash32) -> TxBody {
        resolution(objection, ObjectionOutcome::Dismissed, None)
    }

    /// Xinjiang's recognition of business licences issued in Shandong; returns its id.
    fn recognise_in_xinjiang(chain: &mut Chain) -> Hash32 {
        let attest = chain.fixture.tx(
            "xj-recognizer",
            TxBody::AttestRecognition {
                recognizing_region: region("650000"),
                type_codes: vec!["business-licence".into()],
                issued_by: IssuedBy::Region(region("370000")),
                scope: "market access".into(),
                valid_from: GENESIS_TIME,
                valid_until: None,
            },
        );
        chain.apply(&attest).unwrap();
        attest.id(crate::testkit::SUITE)
    }

    fn file(chain: &mut Chain, filer: &str, number: &LicenceNumber) -> Transaction {
        let file = chain.fixture.tx(filer, filing(number));
        chain.apply(&file).unwrap();
        file
    }

    fn mark(byte: u8, filer: &str, filer_region: &str) -> ObjectionMark {
        ObjectionMark {
            id: Hash32([byte; 32]),
            filed_by: id(filer),
            filer_region: region(filer_region),
            filed_at: GENESIS_TIME,
            resolved_at: None,
            follow_up: None,
        }
    }

    #[test]
    fn an_objection_opens_on_the_licence_and_a_supervisors_resolution_closes_it() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        let mut licence = chain.licence("business-licence", &number);

        let file = chain.fixture.tx("jn-approval", filing(&number));
        let file_id = file.id(crate::testkit::SUITE);
        let signer = chain.signer_after_next("jn-approval");
        let mut objection = Objection {
            id: file_id,
            type_code: "business-licence".into(),
            number: number.clone(),
            filed_by: id("jn-approval"),
            reason: "the registered address does not exist".into(),
            filed_at: Chain::time_at(2),
            height: 2,
            resolution: None,
            basis: ObjectionBasis::IssuingProvince,
            events_at_filing: 1,
        };
        licence.objections = vec![ObjectionMark {
            id: file_id,
            filed_by: id("jn-approval"),
            filer_region: region("370000"),
            filed_at: Chain::time_at(2),
            resolved_at: None,
            follow_up: None,
        }];
        assert_eq!(
            chain.apply(&file).unwrap(),
            writes([
                signer,
                entry(Record::Licence(licence.clone())),
                entry(Record::Objection(objection.clone())),
            ])
        );

        let resolve = chain.fixture.tx("qd-market", dismissal(file_id));
        let signer = chain.signer_after_next("qd-market");
        licence.objections[0].resolved_at = Some(Chain::time_at(3));
        objection.resolution = Some(Resolution {
            by: id("qd-market"),
            outcome: ObjectionOutcome::Dismissed,
            note: "the address was verified on site".into(),
            at: Chain::time_at(3),
            height: 3,
            by_governors: false,
            follow_up: None,
        });
        assert_eq!(
            chain.apply(&resolve).unwrap(),
            writes([
                signer,
                entry(Record::Licence(licence.clone())),
                entry(Record::Objection(objection)),
            ])
        );
        assert!(licence.open_objections().is_empty());
        assert_eq!(licence.objections_open_at(Chain::time_at(2)), vec![file_id]);

        let again = chain.fixture.tx("qd-market", dismissal(file_id));
        assert_eq!(
            chain.apply(&again),
            Err(RuleError::AlreadyResolved(file_id))
        );
    }

    #[test]
    fn the_licences_province_its_supervisors_and_its_recognizers_may_file_and_no_one_else() {
        let mut chain = Chain::new();
        let unknown = LicenceNumber("91370200MA0000000X".into());
        let nowhere = chain.fixture.tx("qd-market", filing(&unknown));
        assert_eq!(
            chain.apply(&nowhere),
            Err(RuleError::UnknownLicence {
                type_code: "business-licence".into(),
                number: unknown,
            })
        );
        let number = chain.issue_business_licence(1);

        // Xinjiang's recognizer, before Xinjiang recognises Shandong's licences: a stranger.
        let stranger = chain.fixture.tx("xj-recognizer", filing(&number));
        assert_eq!(
            chain.apply(&stranger),
            Err(RuleError::NotEntitledToObject {
                authority: id("xj-recognizer")
            })
        );
        // A recognition that names the wrong region gives no right either.
        let attest_elsewhere = chain.fixture.tx(
            "xj-recognizer",
            TxBody::AttestRecognition {
                recognizing_region: region("650000"),
                type_codes: vec!["business-licence".into()],
                issued_by: IssuedBy::Region(region("440000")),
                scope: "market access".into(),
                valid_from: GENESIS_TIME,
                valid_until: None,
            },
        );
        chain.apply(&attest_elsewhere).unwrap();
        let elsewhere = attest_elsewhere.id(crate::testkit::SUITE);
        let under_elsewhere = chain
            .fixture
            .tx("xj-recognizer", filing_under(&number, elsewhere));
        assert_eq!(
            chain.apply(&under_elsewhere),
            Err(RuleError::NotEntitledToObject {
                authority: id("xj-recognizer")
            })
        );
        // Only a recognizer files under a recognition.
        let not_recognizer = chain
            .fixture
            .tx("jn-approval", filing_under(&number, elsewhere));
        assert_eq!(
            chain.apply(&not_recognizer).map(|_| ()).unwrap_err().code(),
            "missing_role"
        );

        let recognition = recognise_in_xinjiang(&mut chain);
        let recognised = chain
            .fixture
            .tx("xj-recognizer", filing_under(&number, recognition));
        chain.apply(&recognised).unwrap();
        let supervisor = file(&mut chain, "qd-market", &number);
        let neighbour = file(&mut chain, "hr-bureau", &number);
        let basis = |transaction: &Transaction| match chain.state.records.get(
            &crate::records::RecordKey::Objection(transaction.id(crate::testkit::SUITE)),
        ) {
            Some(Record::Objection(objection)) => objection.basis.clone(),
            other => panic!("no objection: {other:?}"),
        };
        assert_eq!(basis(&recognised), ObjectionBasis::Recognition(recognition));
        assert_eq!(basis(&supervisor), ObjectionBasis::Supervisor);
        assert_eq!(basis(&neighbour), ObjectionBasis::IssuingProvince);
        assert_eq!(
            chain
                .licence("business-licence", &number)
                .open_objections()
                .len(),
            3
        );
    }

    #[test]
    fn a_filer_holds_one_open_objection_and_a_region_its_share() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        let first = file(&mut chain, "jn-approval", &number);
        let second = chain.fixture.tx("jn-approval", filing(&number));
        assert_eq!(
            chain.apply(&second),
            Err(RuleError::ObjectionAlreadyOpen {
                filer: id("jn-approval"),
                objection: first.id(crate::testkit::SUITE),
            })
        );
        // Resolved, it leaves room for the filer's next.
        let dismiss = chain
            .fixture
            .tx("qd-market", dismissal(first.id(crate::testkit::SUITE)));
        chain.apply(&dismiss).unwrap();
        file(&mut chain, "jn-approval", &number);

        // Shandong's departments hold their region's share: one more from Shandong is refused.
        let mut licence = chain.licence("business-licence", &number);
        licence.objections.extend(
            (1..limits::OPEN_OBJECTIONS_PER_REGION_MAX as u8)
                .map(|byte| mark(byte, &format!("sd-{byte}"), "370000")),
        );
        chain.put(Record::Licence(licence));
        let one_more = chain.fixture.tx("qd-market", filing(&number));
        assert_eq!(
            chain.apply(&one_more),
            Err(RuleError::TooManyObjectionsFromRegion {
                region: region("370000"),
                limit: limits::OPEN_OBJECTIONS_PER_REGION_MAX,
            })
        );
    }

    #[test]
    fn a_licence_holds_its_bound_of_open_objections_and_of_marks() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        let mut licence = chain.licence("business-licence", &number);
        licence.objections = (0..limits::OPEN_OBJECTIONS_PER_LICENCE_MAX as u8)
            .map(|byte| {
                mark(
                    byte,
                    &format!("filer-{byte}"),
                    &format!("{}0000", 11 + byte),
                )
            })
            .collect();
        chain.put(Record::Licence(licence.clone()));
        let one_more = chain.fixture.tx("qd-market", filing(&number));
        assert_eq!(
            chain.apply(&one_more),
            Err(RuleError::TooManyObjections {
                limit: limits::OPEN_OBJECTIONS_PER_LICENCE_MAX
            })
        );

        licence.objections = (0..limits::OBJECTIONS_PER_LICENCE_MAX)
            .map(|index| ObjectionMark {
                resolved_at: Some(GENESIS_TIME + 1),
                ..mark((index % 256) as u8, "filer", "110000")
            })
            .collect();
        chain.put(Record::Licence(licence));
        let past_the_marks = chain.fixture.tx("qd-market", filing(&number));
        assert_eq!(
            chain.apply(&past_the_marks),
            Err(RuleError::TooManyObjectionsRecorded {
                limit: limits::OBJECTIONS_PER_LICENCE_MAX
            })
        );
    }

    #[test]
    fn a_supervisor_or_the_governors_resolve_and_not_the_issuer_or_another() {
        let mut chain = Chain::new();
        let unknown = chain.fixture.tx("qd-market", dismissal(Hash32::ZERO));
        assert_eq!(
            chain.apply(&unknown),
            Err(RuleError::UnknownObjection(Hash32::ZERO))
        );

        let number = chain.issue_business_licence(1);
        let objection = file(&mut chain, "jn-approval", &number).id(crate::testkit::SUITE);
        let by_the_issuer = chain.fixture.tx("qd-approval", dismissal(objection));
        assert_eq!(
            chain.apply(&by_the_issuer),
            Err(RuleError::IssuerResolvesAlone {
                authority: id("qd-approval"),
            })
        );
        let by_the_filer = chain.fixture.tx("jn-approval", dismissal(objection));
        assert_eq!(
            chain.apply(&by_the_filer),
            Err(RuleError::NotEntitledToResolve {
                authority: id("jn-approval"),
            })
        );
        let by_one_governor = chain.fixture.tx("gov-a", dismissal(objection));
        assert_eq!(
            chain.apply(&by_one_governor),
            Err(RuleError::NotEntitledToResolve {
                authority: id("gov-a"),
            })
        );
        let by_two_governors = chain.fixture.governance(dismissal(objection), 2);
        assert_eq!(
            chain
                .apply(&by_two_governors)
                .map(|_| ())
                .unwrap_err()
                .code(),
            "too_few_governor_signatures"
        );
        let by_the_governors = chain.governance(dismissal(objection));
        chain.apply(&by_the_governors).unwrap();
        match chain
            .state
            .records
            .get(&crate::records::RecordKey::Objection(objection))
        {
            Some(Record::Objection(resolved)) => {
                let resolution = resolved.resolution.as_ref().unwrap();
                assert!(resolution.by_governors);
            }
            other => panic!("no objection: {other:?}"),
        }
    }

    #[test]
    fn an_upheld_objection_names_a_correction_made_after_it() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        let objection = file(&mut chain, "jn-approval", &number).id(crate::testkit::SUITE);
        let upheld = |follow_up| resolution(objection, ObjectionOutcome::Upheld, follow_up);

        let bare = chain.fixture.tx("qd-market", upheld(None));
        assert_eq!(chain.apply(&bare), Err(RuleError::UpheldWithoutFollowUp));
        let the_issuance = chain.fixture.tx("qd-market", upheld(Some(0)));
        assert_eq!(
            chain.apply(&the_issuance).map(|_| ()).unwrap_err(),
            RuleError::BadFollowUp {
                index: 0,
                why: "it was recorded before the objection was filed",
            }
        );
        let nothing_yet = chain.fixture.tx("qd-market", upheld(Some(1)));
        assert_eq!(
            chain.apply(&nothing_yet).map(|_| ()).unwrap_err().code(),
            "bad_follow_up"
        );

        let inspection = chain.fixture.tx(
            "qd-market",
            TxBody::ChangeStatus {
                type_code: "business-licence".into(),
                number: number.clone(),
                action: StatusAction::AnnualInspection,
                effective_at: GENESIS_TIME + 60_000,
                reason: "inspected".into(),
            },
        );
        chain.apply(&inspection).unwrap();
        let not_a_correction = chain.fixture.tx("qd-market", upheld(Some(1)));
        assert_eq!(
            chain
                .apply(&not_a_correction)
                .map(|_| ())
                .unwrap_err()
                .code(),
            "bad_follow_up"
        );

        let suspension = chain.fixture.tx(
            "qd-market",
            TxBody::ChangeStatus {
                type_code: "business-licence".into(),
                number: number.clone(),
                action: StatusAction::Suspend,
                effective_at: GENESIS_TIME + 70_000,
                reason: "the address does not exist".into(),
            },
        );
        chain.apply(&suspension).unwrap();
        // A dismissal names no follow-up, even a real correction.
        let dismissed_with_one = chain.fixture.tx(
            "qd-market",
            resolution(objection, ObjectionOutcome::Dismissed, Some(2)),
        );
        assert_eq!(
            chain.apply(&dismissed_with_one).map(|_| ()).unwrap_err(),
            RuleError::BadFollowUp {
                index: 2,
                why: "a dismissed objection names no follow-up",
            }
        );
        let corrected = chain.fixture.tx("qd-market", upheld(Some(2)));
        chain.apply(&corrected).unwrap();
        let licence = chain.licence("business-licence", &number);
        assert!(licence.open_objections().is_empty());
        assert_eq!(licence.objections[0].follow_up, Some(2));
    }

    #[test]
    fn a_correction_the_governors_voided_is_no_follow_up() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        let objection = file(&mut chain, "jn-approval", &number).id(crate::testkit::SUITE);
        let suspension = chain.fixture.tx(
            "qd-market",
            TxBody::ChangeStatus {
                type_code: "business-licence".into(),
                number: number.clone(),
                action: StatusAction::Suspend,
                effective_at: GENESIS_TIME + 60_000,
                reason: "the address does not exist".into(),
            },
        );
        chain.apply(&suspension).unwrap();
        let void = chain.governance(TxBody::CorrectEvent {
            type_code: "business-licence".into(),
            number: number.clone(),
            event: 1,
            action: crate::records::CorrectionAction::Void,
            reason: "entered on the wrong licence".into(),
        });
        chain.apply(&void).unwrap();
        let upheld = chain.fixture.tx(
            "qd-market",
            resolution(objection, ObjectionOutcome::Upheld, Some(1)),
        );
        assert_eq!(
            chain.apply(&upheld).map(|_| ()).unwrap_err(),
            RuleError::BadFollowUp {
                index: 1,
                why: "the governors voided it",
            }
        );
    }
}
