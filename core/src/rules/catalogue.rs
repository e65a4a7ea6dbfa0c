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
}
