//! The rules of objections (异议): any authority disputes a licence; the licence's issuer
//! resolves the dispute. The licence keeps the ids of its open objections, so that a verdict
//! can say a licence is contested without searching.

use super::error::RuleError;
use super::rights::require_issuer_right;
use super::state::{Origin, Scratch, StateReader};
use crate::hash::Hash32;
use crate::limits;
use crate::records::{LicenceNumber, Objection, ObjectionOutcome, Record, Resolution, TypeCode};

/// `FileObjection`: a new objection on a licence, named by the filing transaction's id.
pub(super) fn file<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    type_code: &TypeCode,
    number: &LicenceNumber,
    reason: &str,
) -> Result<(), RuleError> {
    let mut licence = state.require_licence(type_code, number)?;
    if licence.open_objections.len() >= limits::OPEN_OBJECTIONS_PER_LICENCE_MAX {
        return Err(RuleError::TooManyObjections {
            limit: limits::OPEN_OBJECTIONS_PER_LICENCE_MAX,
        });
    }
    licence.open_objections.push(origin.id);
    state.put(Record::Licence(licence));
    state.put(Record::Objection(Objection {
        id: origin.id,
        type_code: type_code.clone(),
        number: number.clone(),
        filed_by: origin.signer.clone(),
        reason: reason.to_owned(),
        filed_at: origin.context.time,
        height: origin.context.height,
        resolution: None,
    }));
    Ok(())
}

/// `ResolveObjection`: the issuer of the licence, holding the issuer role and a grant in force
/// now (`rights`), ends an open objection. Returns the licence
/// it was about, which the body does not name.
pub(super) fn resolve<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    objection_id: &Hash32,
    outcome: ObjectionOutcome,
    note: &str,
) -> Result<(TypeCode, LicenceNumber), RuleError> {
    let mut objection = state
        .objection(objection_id)?
        .ok_or(RuleError::UnknownObjection(*objection_id))?;
    if objection.resolution.is_some() {
        return Err(RuleError::AlreadyResolved(*objection_id));
    }
    let mut licence = state.require_licence(&objection.type_code, &objection.number)?;
    require_issuer_right(state, origin.signer, &licence, origin.context.height)?;
    licence.open_objections.retain(|open| open != objection_id);
    objection.resolution = Some(Resolution {
        by: origin.signer.clone(),
        outcome,
        note: note.to_owned(),
        at: origin.context.time,
        height: origin.context.height,
    });
    let licence_key = (objection.type_code.clone(), objection.number.clone());
    state.put(Record::Licence(licence));
    state.put(Record::Objection(objection));
    Ok(licence_key)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Chain, entry, id, writes};
    use crate::hash::Hash32;
    use crate::limits;
    use crate::records::{LicenceNumber, Objection, ObjectionOutcome, Record, Resolution};
    use crate::rules::RuleError;
    use crate::tx::TxBody;

    fn filing(number: &LicenceNumber) -> TxBody {
        TxBody::FileObjection {
            type_code: "business-licence".into(),
            number: number.clone(),
            reason: "the registered address does not exist".into(),
        }
    }

    fn resolution(objection: Hash32) -> TxBody {
        TxBody::ResolveObjection {
            id: objection,
            outcome: ObjectionOutcome::Dismissed,
            note: "the address was verified on site".into(),
        }
    }

    #[test]
    fn an_objection_opens_on_the_licence_and_its_resolution_closes_it() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        let mut licence = chain.licence("business-licence", &number);

        let file = chain.fixture.tx("qd-market", filing(&number));
        let signer = chain.signer_after_next("qd-market");
        let mut objection = Objection {
            id: file.id(crate::testkit::SUITE),
            type_code: "business-licence".into(),
            number: number.clone(),
            filed_by: id("qd-market"),
            reason: "the registered address does not exist".into(),
            filed_at: Chain::time_at(2),
            height: 2,
            resolution: None,
        };
        licence.open_objections = vec![file.id(crate::testkit::SUITE)];
        assert_eq!(
            chain.apply(&file).unwrap(),
            writes([
                signer,
                entry(Record::Licence(licence.clone())),
                entry(Record::Objection(objection.clone())),
            ])
        );

        let resolve = chain
            .fixture
            .tx("qd-approval", resolution(file.id(crate::testkit::SUITE)));
        let signer = chain.signer_after_next("qd-approval");
        licence.open_objections = Vec::new();
        objection.resolution = Some(Resolution {
            by: id("qd-approval"),
            outcome: ObjectionOutcome::Dismissed,
            note: "the address was verified on site".into(),
            at: Chain::time_at(3),
            height: 3,
        });
        assert_eq!(
            chain.apply(&resolve).unwrap(),
            writes([
                signer,
                entry(Record::Licence(licence)),
                entry(Record::Objection(objection)),
            ])
        );

        let again = chain
            .fixture
            .tx("qd-approval", resolution(file.id(crate::testkit::SUITE)));
        assert_eq!(
            chain.apply(&again),
            Err(RuleError::AlreadyResolved(file.id(crate::testkit::SUITE)))
        );
    }

    #[test]
    fn an_objection_names_a_licence_with_room_for_it() {
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
        let mut licence = chain.licence("business-licence", &number);
        licence.open_objections = (0..limits::OPEN_OBJECTIONS_PER_LICENCE_MAX as u8)
            .map(|index| Hash32([index; 32]))
            .collect();
        chain.put(Record::Licence(licence));
        let one_more = chain.fixture.tx("qd-market", filing(&number));
        assert_eq!(
            chain.apply(&one_more),
            Err(RuleError::TooManyObjections {
                limit: limits::OPEN_OBJECTIONS_PER_LICENCE_MAX
            })
        );
    }

    #[test]
    fn only_the_issuer_resolves_a_known_objection() {
        let mut chain = Chain::new();
        let unknown = chain.fixture.tx("qd-approval", resolution(Hash32::ZERO));
        assert_eq!(
            chain.apply(&unknown),
            Err(RuleError::UnknownObjection(Hash32::ZERO))
        );

        let number = chain.issue_business_licence(1);
        let file = chain.fixture.tx("qd-market", filing(&number));
        chain.apply(&file).unwrap();
        let by_the_filer = chain
            .fixture
            .tx("qd-market", resolution(file.id(crate::testkit::SUITE)));
        assert_eq!(
            chain.apply(&by_the_filer),
            Err(RuleError::NotIssuer {
                issuer: id("qd-approval"),
                authority: id("qd-market"),
            })
        );
    }
}
