//! The rules of the catalogue and its grants: defining a licence type, and granting or
//! revoking an authority's right to issue a type in a region.

use super::error::RuleError;
use super::state::{Origin, Scratch, StateReader};
use crate::ident::RegionCode;
use crate::limits;
use crate::records::{AuthorityId, Grant, LicenceType, Record, TypeCode};
use crate::tx::LicenceTypeDraft;

/// `DefineLicenceType`: a new catalogue entry, version 1. A type, once defined, is never
/// defined again: it changes by amendments, each a new version (ADR 0033).
pub(super) fn define_type<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    draft: &LicenceTypeDraft,
) -> Result<(), RuleError> {
    if state.licence_type(&draft.code)?.is_some() {
        return Err(RuleError::TypeExists(draft.code.clone()));
    }
    state.put(Record::LicenceType(draft.to_type(origin.context.height)));
    Ok(())
}

/// `AmendLicenceType`: the next version of a type in force (目录动态管理). It keeps the type's
/// holder kind and every field with its kind and visibility, and may add fields, rename,
/// make a field required or optional, and change the constraints, the default validity and
/// the supervisors' actions; but it may not start asking for one licence per holder, which
/// the licences already issued were never checked for. The version replaced is kept, and
/// the licences issued under it are read against it (ADR 0033).
pub(super) fn amend_type<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    draft: &LicenceTypeDraft,
) -> Result<(), RuleError> {
    let current = state.require_type(&draft.code)?;
    if let Some(retired_at) = current.retired_at {
        return Err(RuleError::TypeRetired {
            type_code: current.code.clone(),
            retired_at,
        });
    }
    check_amendment(&current, draft)?;
    let mut next = draft.to_type(current.defined_at);
    next.version = current.version.saturating_add(1);
    next.version_at = origin.context.height;
    state.put(Record::LicenceTypeVersion(current));
    state.put(Record::LicenceType(next));
    Ok(())
}

/// What an amendment may not change (see [`amend_type`]).
fn check_amendment(current: &LicenceType, draft: &LicenceTypeDraft) -> Result<(), RuleError> {
    let refuse = |field: &str, problem| RuleError::TypeAmendmentNotAllowed {
        type_code: current.code.clone(),
        field: field.to_owned(),
        problem,
    };
    if draft.holder_kind != current.holder_kind {
        return Err(refuse(
            "holder_kind",
            "changes who holds the type's licences",
        ));
    }
    for field in &current.fields {
        match draft.fields.iter().find(|new| new.name == field.name) {
            None => return Err(refuse(&field.name, "removes a field")),
            Some(new) if new.kind != field.kind || new.visibility != field.visibility => {
                return Err(refuse(&field.name, "changes a field's kind or visibility"));
            }
            Some(_) => {}
        }
    }
    if draft.constraints.unique_per_holder && !current.constraints.unique_per_holder {
        return Err(refuse(
            "unique_per_holder",
            "asks for one licence per holder of a type that did not",
        ));
    }
    Ok(())
}

/// `RetireLicenceType`: the type issues no licence from the next height on, so that the
/// issuances of this block are judged the same wherever they stand in it; the licences
/// already issued keep their standing and their verdicts.
pub(super) fn retire_type<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    type_code: &TypeCode,
) -> Result<(), RuleError> {
    let mut licence_type = state.require_type(type_code)?;
    if let Some(retired_at) = licence_type.retired_at {
        return Err(RuleError::TypeRetired {
            type_code: type_code.clone(),
            retired_at,
        });
    }
    licence_type.retired_at = Some(origin.context.height + 1);
    state.put(Record::LicenceType(licence_type));
    Ok(())
}

/// `GrantIssuance`: opens a period, from this height on, in which `authority` may issue
/// `type_code` in `region`. A grant revoked earlier keeps its past periods and gains a new one.
pub(super) fn grant<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    authority: &AuthorityId,
    type_code: &TypeCode,
    region: &RegionCode,
) -> Result<(), RuleError> {
    state.require_named_authority(authority)?;
    state.require_type(type_code)?;
    let mut grant = state.grant(authority, type_code, region)?.unwrap_or(Grant {
        authority: authority.clone(),
        type_code: type_code.clone(),
        region: region.clone(),
        periods: Vec::new(),
    });
    if grant
        .periods
        .last()
        .is_some_and(|(_, until)| until.is_none())
    {
        return Err(RuleError::GrantExists {
            authority: authority.clone(),
            type_code: type_code.clone(),
            region: region.clone(),
        });
    }
    if grant.periods.len() >= limits::GRANT_PERIODS_MAX {
        return Err(RuleError::TooManyGrantPeriods {
            authority: authority.clone(),
            type_code: type_code.clone(),
            region: region.clone(),
            limit: limits::GRANT_PERIODS_MAX,
        });
    }
    grant.periods.push((origin.context.height, None));
    state.put(Record::Grant(grant));
    Ok(())
}

/// `RevokeGrant`: closes the open period at the next height, so that the transactions of this
/// block, which may already rely on the grant, are judged the same wherever they stand in it.
pub(super) fn revoke_grant<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    authority: &AuthorityId,
    type_code: &TypeCode,
    region: &RegionCode,
) -> Result<(), RuleError> {
    let no_open_grant = || RuleError::NoSuchGrant {
        authority: authority.clone(),
        type_code: type_code.clone(),
        region: region.clone(),
    };
    let mut grant = state
        .grant(authority, type_code, region)?
        .ok_or_else(no_open_grant)?;
    match grant.periods.last_mut() {
        Some((_, until @ None)) => *until = Some(origin.context.height + 1),
        _ => return Err(no_open_grant()),
    }
    state.put(Record::Grant(grant));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Chain, entry, id, writes};
    use crate::limits;
    use crate::records::{Grant, LicenceType, Record, TypeCode};
    use crate::rules::RuleError;
    use crate::testkit::{self, region};
    use crate::tx::TxBody;

    fn grant_body(authority: &str, type_code: &str, region_code: &str) -> TxBody {
        TxBody::GrantIssuance {
            authority: id(authority),
            type_code: type_code.into(),
            region: region(region_code),
        }
    }

    fn revoke_body(authority: &str, type_code: &str, region_code: &str) -> TxBody {
        TxBody::RevokeGrant {
            authority: id(authority),
            type_code: type_code.into(),
            region: region(region_code),
        }
    }

    #[test]
    fn a_defined_type_is_written_as_drafted_at_its_height() {
        let mut chain = Chain::new();
        let mut draft = testkit::business_licence_type();
        draft.code = "food-operation".into();
        draft.default_validity_days = Some(1826);
        let definition = chain.governance(TxBody::DefineLicenceType(draft.clone()));
        let signer = chain.signer_after_next("gov-a");
        let defined = LicenceType {
            code: draft.code,
            name_zh: draft.name_zh,
            name_en: draft.name_en,
            holder_kind: draft.holder_kind,
            fields: draft.fields,
            default_validity_days: Some(1826),
            supervisor_actions: draft.supervisor_actions,
            defined_at: 1,
            constraints: draft.constraints,
            version: 1,
            version_at: 1,
            retired_at: None,
        };
        assert_eq!(
            chain.apply(&definition).unwrap(),
            writes([signer, entry(Record::LicenceType(defined))])
        );
    }

    #[test]
    fn a_type_is_defined_once() {
        let mut chain = Chain::new();
        let again = chain.governance(TxBody::DefineLicenceType(testkit::business_licence_type()));
        assert_eq!(
            chain.apply(&again),
            Err(RuleError::TypeExists(TypeCode::from("business-licence")))
        );
    }

    #[test]
    fn a_grant_opens_a_period_and_a_revocation_closes_it_at_the_next_height() {
        let mut chain = Chain::new();
        let granting = chain.governance(grant_body("jn-approval", "qualification", "370800"));
        let signer = chain.signer_after_next("gov-a");
        let mut grant = Grant {
            authority: id("jn-approval"),
            type_code: "qualification".into(),
            region: region("370800"),
            periods: vec![(1, None)],
        };
        assert_eq!(
            chain.apply(&granting).unwrap(),
            writes([signer, entry(Record::Grant(grant.clone()))])
        );

        let revoking = chain.governance(revoke_body("jn-approval", "qualification", "370800"));
        let signer = chain.signer_after_next("gov-a");
        grant.periods = vec![(1, Some(3))];
        assert_eq!(
            chain.apply(&revoking).unwrap(),
            writes([signer, entry(Record::Grant(grant.clone()))])
        );

        // Given again, the grant keeps its past period.
        let again = chain.governance(grant_body("jn-approval", "qualification", "370800"));
        let signer = chain.signer_after_next("gov-a");
        grant.periods = vec![(1, Some(3)), (3, None)];
        assert_eq!(
            chain.apply(&again).unwrap(),
            writes([signer, entry(Record::Grant(grant))])
        );
    }

    #[test]
    fn a_grant_names_a_known_authority_and_type_and_is_not_open_already() {
        let mut chain = Chain::new();
        let unknown_authority = chain.governance(grant_body("nobody", "qualification", "370800"));
        assert_eq!(
            chain.apply(&unknown_authority),
            Err(RuleError::UnknownNamedAuthority(id("nobody")))
        );
        let unknown_type = chain.governance(grant_body("jn-approval", "fishing", "370800"));
        assert_eq!(
            chain.apply(&unknown_type),
            Err(RuleError::UnknownType("fishing".into()))
        );
        let open = chain.governance(grant_body("qd-approval", "business-licence", "370200"));
        assert_eq!(
            chain.apply(&open),
            Err(RuleError::GrantExists {
                authority: id("qd-approval"),
                type_code: "business-licence".into(),
                region: region("370200"),
            })
        );
    }

    #[test]
    fn a_grant_given_too_often_is_refused_with_its_own_reason() {
        let mut chain = Chain::new();
        let closed: Vec<(u64, Option<u64>)> = (0..limits::GRANT_PERIODS_MAX as u64)
            .map(|period| (period, Some(period + 1)))
            .collect();
        chain.put(Record::Grant(Grant {
            authority: id("qd-approval"),
            type_code: "business-licence".into(),
            region: region("370200"),
            periods: closed,
        }));
        let granting = chain.governance(grant_body("qd-approval", "business-licence", "370200"));
        let refusal = chain.apply(&granting).unwrap_err();
        assert_eq!(
            refusal,
            RuleError::TooManyGrantPeriods {
                authority: id("qd-approval"),
                type_code: "business-licence".into(),
                region: region("370200"),
                limit: limits::GRANT_PERIODS_MAX,
            }
        );
        assert_eq!(refusal.code(), "too_many_grant_periods");
        assert_eq!(
            refusal.to_string(),
            "the grant of business-licence in 370200 to qd-approval was already given 64 times; \
             it cannot be given again"
        );
    }

    #[test]
    fn only_an_open_grant_is_revoked() {
        let mut chain = Chain::new();
        let never = chain.governance(revoke_body("jn-approval", "qualification", "370800"));
        let no_open_grant = RuleError::NoSuchGrant {
            authority: id("jn-approval"),
            type_code: "qualification".into(),
            region: region("370800"),
        };
        assert_eq!(chain.apply(&never), Err(no_open_grant.clone()));
        assert_eq!(
            no_open_grant.to_string(),
            "jn-approval holds no open grant for qualification in 370800 (never granted, or \
             already revoked)"
        );

        let first = chain.governance(revoke_body("jn-approval", "business-licence", "370800"));
        chain.apply(&first).unwrap();
        let twice = chain.governance(revoke_body("jn-approval", "business-licence", "370800"));
        assert_eq!(
            chain.apply(&twice),
            Err(RuleError::NoSuchGrant {
                authority: id("jn-approval"),
                type_code: "business-licence".into(),
                region: region("370800"),
            })
        );
    }

    fn optional_field(name: &str, kind: crate::records::FieldKind) -> crate::records::FieldSchema {
        crate::records::FieldSchema {
            name: name.into(),
            name_zh: name.into(),
            kind,
            required: false,
            visibility: crate::records::Visibility::Public,
        }
    }

    fn type_record(chain: &Chain, key: crate::records::RecordKey) -> LicenceType {
        match chain.state.records.get(&key) {
            Some(Record::LicenceType(found) | Record::LicenceTypeVersion(found)) => found.clone(),
            other => panic!("no type under {key:?}: {other:?}"),
        }
    }

    #[test]
    fn an_amendment_makes_the_next_version_and_keeps_the_one_it_replaces() {
        use crate::records::{FieldKind, RecordKey};
        let mut chain = Chain::new();
        let first = type_record(&chain, RecordKey::LicenceType("business-licence".into()));
        let mut draft = testkit::business_licence_type();
        draft.name_en = "Business licence (2026 edition)".into();
        draft
            .fields
            .push(optional_field("employees", FieldKind::Integer));
        let amendment = chain.governance(TxBody::AmendLicenceType(draft.clone()));
        chain.apply(&amendment).unwrap();
        let second = type_record(&chain, RecordKey::LicenceType("business-licence".into()));
        assert_eq!((second.version, second.version_at), (2, 1));
        assert_eq!(second.defined_at, first.defined_at);
        assert_eq!(second.fields, draft.fields);
        assert_eq!(
            type_record(
                &chain,
                RecordKey::LicenceTypeVersion("business-licence".into(), 1)
            ),
            first
        );
        let again = chain.governance(TxBody::AmendLicenceType(draft));
        chain.apply(&again).unwrap();
        let third = type_record(&chain, RecordKey::LicenceType("business-licence".into()));
        assert_eq!((third.version, third.version_at), (3, 2));
    }

    #[test]
    fn an_amendment_keeps_the_holder_kind_and_every_field_with_its_kind() {
        use crate::records::{FieldKind, HolderKind, Visibility};
        let mut chain = Chain::new();
        let refused = |chain: &mut Chain, draft, field: &str, problem: &str| {
            let amendment = chain.governance(TxBody::AmendLicenceType(draft));
            let error = chain.apply(&amendment).unwrap_err();
            assert_eq!(error.code(), "type_amendment_not_allowed");
            assert!(
                matches!(&error, RuleError::TypeAmendmentNotAllowed { field: named, .. } if named == field),
                "{error}"
            );
            assert!(error.to_string().contains(problem), "{error}");
        };
        let mut removed = testkit::business_licence_type();
        removed.fields.retain(|field| field.name != "address");
        refused(&mut chain, removed, "address", "removes a field");
        let mut retyped = testkit::business_licence_type();
        retyped.fields[4].kind = FieldKind::Date;
        refused(&mut chain, retyped, "address", "kind or visibility");
        let mut hidden = testkit::business_licence_type();
        hidden.fields[4].visibility = Visibility::Private;
        refused(&mut chain, hidden, "address", "kind or visibility");
        let mut for_persons = testkit::business_licence_type();
        for_persons.holder_kind = HolderKind::Person;
        for_persons.constraints = Default::default();
        refused(&mut chain, for_persons, "holder_kind", "who holds");
        let mut qualification = testkit::qualification_type();
        qualification.constraints.unique_per_holder = true;
        refused(
            &mut chain,
            qualification,
            "unique_per_holder",
            "one licence per holder",
        );
        let unknown = {
            let mut draft = testkit::business_licence_type();
            draft.code = "fishing".into();
            chain.governance(TxBody::AmendLicenceType(draft))
        };
        assert_eq!(
            chain.apply(&unknown),
            Err(RuleError::UnknownType("fishing".into()))
        );
    }

    #[test]
    fn a_licence_is_amended_under_the_version_it_was_issued_under() {
        use crate::records::{FaceValue, FieldKind};
        let mut chain = Chain::new();
        let old = chain.issue_business_licence(1);
        let mut draft = testkit::business_licence_type();
        draft
            .fields
            .push(optional_field("employees", FieldKind::Integer));
        let amendment = chain.governance(TxBody::AmendLicenceType(draft));
        chain.apply(&amendment).unwrap();
        let new = chain.issue_business_licence(2);
        assert_eq!(chain.licence("business-licence", &old).type_version, 1);
        assert_eq!(chain.licence("business-licence", &new).type_version, 2);
        let employees = |chain: &mut Chain, number: &crate::records::LicenceNumber| {
            let body = TxBody::AmendLicence {
                type_code: "business-licence".into(),
                number: number.clone(),
                changes: [("employees".to_owned(), Some(FaceValue::Clear("12".into())))]
                    .into_iter()
                    .collect(),
                effective_at: testkit::GENESIS_TIME + 5,
                reason: "从业人员".into(),
            };
            let transaction = chain.fixture.tx("qd-approval", body);
            chain.apply(&transaction).map(|_| ())
        };
        assert_eq!(
            employees(&mut chain, &old),
            Err(RuleError::Schema {
                field: "employees".into(),
                problem: "type business-licence has no such field".into(),
            })
        );
        assert_eq!(employees(&mut chain, &new), Ok(()));
    }

    #[test]
    fn a_retired_type_stops_at_the_next_height_and_is_retired_once() {
        use crate::records::RecordKey;
        let mut chain = Chain::new();
        let retire = || TxBody::RetireLicenceType {
            type_code: "qualification".into(),
            reason: "并入新目录".into(),
        };
        let retirement = chain.governance(retire());
        chain.apply(&retirement).unwrap();
        let retired = type_record(&chain, RecordKey::LicenceType("qualification".into()));
        assert_eq!(retired.retired_at, Some(2));
        let twice = chain.governance(retire());
        assert_eq!(
            chain.apply(&twice),
            Err(RuleError::TypeRetired {
                type_code: "qualification".into(),
                retired_at: 2,
            })
        );
        let amendment = chain.governance(TxBody::AmendLicenceType(testkit::qualification_type()));
        assert_eq!(chain.apply(&amendment).unwrap_err().code(), "type_retired");
        let unknown = chain.governance(TxBody::RetireLicenceType {
            type_code: "fishing".into(),
            reason: "none".into(),
        });
        assert_eq!(
            chain.apply(&unknown),
            Err(RuleError::UnknownType("fishing".into()))
        );
    }
}
