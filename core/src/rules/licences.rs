//! The rules of licences and their history: issuing a licence, changing its status, amending
//! its face fields, the events each change appends, and the check of face fields against
//! the type's schema.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::authorities::require_role;
use super::error::RuleError;
use super::rights::require_issuer_right;
use super::state::{Origin, Scratch, StateReader, wrong_kind};
use super::window::require_within_window;
use crate::calendar;
use crate::hash::Hash32;
use crate::ident::{RegionCode, Uscc};
use crate::limits;
use crate::records::{
    AuthorityId, FaceValue, FieldBound, FieldKind, Holder, HolderLicence, HolderLicences,
    IllegalTransition, Licence, LicenceEvent, LicenceEventKind, LicenceNumber, LicenceType, Record,
    RecordKey, Role, StatusAction, TimeMs, TypeCode, Visibility, compare_field_values, transition,
};
use crate::tx::ValidUntil;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// An `IssueLicence` body, borrowed from the transaction.
#[derive(Clone, Copy, Debug)]
pub(super) struct Issuance<'b> {
    pub type_code: &'b TypeCode,
    pub number: &'b LicenceNumber,
    pub holder: &'b Holder,
    pub holder_name: &'b str,
    pub region: &'b RegionCode,
    pub face: &'b BTreeMap<String, FaceValue>,
    pub valid_from: TimeMs,
    pub valid_until: &'b ValidUntil,
    pub document_hash: Hash32,
}

/// A change that appends one event to a licence's history: when it takes effect and why.
#[derive(Clone, Copy, Debug)]
pub(super) struct Dated<'b> {
    pub effective_at: TimeMs,
    pub reason: &'b str,
}

/// `IssueLicence`: a new licence by an issuer granted its type in a region covering the
/// licence's, its face complete and well-formed for the type's schema.
pub(super) fn issue<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    issuance: Issuance<'_>,
) -> Result<(), RuleError> {
    let Issuance {
        type_code,
        number,
        holder,
        holder_name,
        region,
        face,
        valid_from,
        valid_until,
        document_hash,
    } = issuance;
    let signer = origin.signer;
    let height = origin.context.height;
    // The issuer's and the type's records are read in place, not copied: an issuance only
    // looks at them, and a block of issuances reads the same few again and again.
    let issuer_key = RecordKey::Authority(signer.clone());
    let issuer_record = state.get_shared(&issuer_key)?;
    let issuer = match issuer_record.as_deref() {
        Some(Record::Authority(issuer)) => issuer,
        Some(_) => return Err(wrong_kind(&issuer_key).into()),
        None => return Err(RuleError::UnknownAuthority(signer.clone())),
    };
    require_role(issuer, Role::Issuer)?;
    let type_key = RecordKey::LicenceType(type_code.clone());
    let type_record = state.get_shared(&type_key)?;
    let licence_type = match type_record.as_deref() {
        Some(Record::LicenceType(licence_type)) => licence_type,
        Some(_) => return Err(wrong_kind(&type_key).into()),
        None => return Err(RuleError::UnknownType(type_code.clone())),
    };
    if let Some(retired_at) = licence_type.retired_at.filter(|at| *at <= height) {
        return Err(RuleError::TypeRetired {
            type_code: type_code.clone(),
            retired_at,
        });
    }
    if !state.has_covering_grant(signer, type_code, region, height)? {
        return Err(RuleError::NotGranted {
            authority: signer.clone(),
            type_code: type_code.clone(),
            region: region.clone(),
        });
    }
    check_canonical_number(number)?;
    check_valid_from(valid_from, origin.context.time)?;
    if state.licence(type_code, number)?.is_some() {
        return Err(RuleError::DuplicateLicence {
            type_code: type_code.clone(),
            number: number.clone(),
        });
    }
    if holder.kind() != licence_type.holder_kind {
        return Err(RuleError::HolderKindMismatch {
            type_code: type_code.clone(),
            expected: licence_type.holder_kind,
            found: holder.kind(),
        });
    }
    check_face(licence_type, face, true)?;
    check_number_is_holder(licence_type, number, holder)?;
    check_face_constraints(licence_type, holder, face, origin.context.time)?;
    let valid_until = match valid_until {
        ValidUntil::TypeDefault => licence_type
            .default_validity_days
            .map(|days| valid_from.saturating_add(u64::from(days) * DAY_MS)),
        ValidUntil::At(until) => Some(*until),
        ValidUntil::LongTerm => None,
    };
    if let Some(until) = valid_until
        && until <= valid_from
    {
        return Err(RuleError::EmptyValidity {
            valid_from,
            valid_until: until,
        });
    }
    let licence = Licence {
        type_code: type_code.clone(),
        number: number.clone(),
        holder: holder.clone(),
        holder_name: holder_name.to_owned(),
        issuer: signer.clone(),
        region: region.clone(),
        face: face.clone(),
        valid_from,
        valid_until,
        document_hash,
        issued_at: height,
        events: vec![LicenceEvent {
            kind: LicenceEventKind::Issued,
            effective_at: valid_from,
            reason: String::new(),
            by: signer.clone(),
            height,
            tx: origin.id,
            correction: None,
        }],
        objections: Vec::new(),
        type_version: licence_type.version,
        annual_inspection_days: licence_type.constraints.annual_inspection_days,
        successor: None,
    };
    let unique_per_holder = licence_type.constraints.unique_per_holder;
    drop((issuer_record, type_record));
    if unique_per_holder {
        claim_holder(state, &licence, origin.context.time)?;
    }
    list_for_holder(state, &licence)?;
    state.put(Record::Licence(licence));
    Ok(())
}

/// 一照通查: the new licence joins its holder's list (ADR 0039), which a verifier is shown
/// whole; a holder whose list is full gets no more.
fn list_for_holder<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    licence: &Licence,
) -> Result<(), RuleError> {
    let key = RecordKey::HolderLicences(licence.holder.clone());
    let mut list = match state.get(&key)? {
        Some(Record::HolderLicences(list)) => list,
        Some(_) => return Err(wrong_kind(&key).into()),
        None => HolderLicences {
            holder: licence.holder.clone(),
            licences: Vec::new(),
        },
    };
    if list.licences.len() >= limits::LICENCES_PER_HOLDER_MAX {
        return Err(RuleError::HolderLicencesFull {
            holder: licence.holder.to_text(),
            limit: limits::LICENCES_PER_HOLDER_MAX,
        });
    }
    list.licences
        .push((licence.type_code.clone(), licence.number.clone()));
    state.put(Record::HolderLicences(list));
    Ok(())
}

/// A new licence starts neither more than [`limits::LICENCE_BACKDATING_MS_MAX`] before the
/// block time (a paper licence converted keeps its start; a zero left in the field does not
/// pass) nor more than [`limits::LICENCE_SCHEDULING_MS_MAX`] after it.
fn check_valid_from(valid_from: TimeMs, block_time: TimeMs) -> Result<(), RuleError> {
    let earliest = block_time.saturating_sub(limits::LICENCE_BACKDATING_MS_MAX);
    let latest = block_time.saturating_add(limits::LICENCE_SCHEDULING_MS_MAX);
    if valid_from < earliest || valid_from > latest {
        return Err(RuleError::ValidFromOutOfRange {
            valid_from,
            earliest,
            latest,
        });
    }
    Ok(())
}

/// For a type whose numbers are the holder's USCC, the number is the holder's code.
fn check_number_is_holder(
    licence_type: &LicenceType,
    number: &LicenceNumber,
    holder: &Holder,
) -> Result<(), RuleError> {
    if licence_type.constraints.number_is_holder_uscc && number.as_str() != holder.to_text() {
        return Err(RuleError::NumberNotHolderUscc {
            number: number.clone(),
            holder: holder.to_text(),
        });
    }
    Ok(())
}

/// 一企一照: the holder's licence of the type, if it has one, has ended by the block time;
/// the new licence becomes the one the holder holds.
fn claim_holder<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    licence: &Licence,
    block_time: TimeMs,
) -> Result<(), RuleError> {
    let key = RecordKey::HolderLicence(licence.type_code.clone(), licence.holder.clone());
    match state.get(&key)? {
        Some(Record::HolderLicence(held)) => {
            let current = state.require_licence(&held.type_code, &held.number)?;
            if !current.has_ended_at(block_time) {
                return Err(RuleError::HolderAlreadyLicensed {
                    type_code: licence.type_code.clone(),
                    holder: licence.holder.to_text(),
                    number: held.number,
                });
            }
        }
        Some(_) => return Err(wrong_kind(&key).into()),
        None => {}
    }
    state.put(Record::HolderLicence(HolderLicence {
        type_code: licence.type_code.clone(),
        holder: licence.holder.clone(),
        number: licence.number.clone(),
    }));
    Ok(())
}

/// The type's constraints on a face the schema accepted (ADR 0033): fields bound to the
/// holder carry the holder's USCC, and bounded fields are within their bounds, a date bound
/// to the block date not after the day (China Standard Time) of `block_time`.
pub fn check_face_constraints(
    licence_type: &LicenceType,
    holder: &Holder,
    face: &BTreeMap<String, FaceValue>,
    block_time: TimeMs,
) -> Result<(), RuleError> {
    let constraints = &licence_type.constraints;
    for name in &constraints.holder_fields {
        if let Some(FaceValue::Clear(value)) = face.get(name)
            && *value != holder.to_text()
        {
            return Err(RuleError::FaceNotHolder {
                field: name.clone(),
                holder: holder.to_text(),
            });
        }
    }
    for bound in &constraints.bounds {
        let (Some(FaceValue::Clear(value)), Some(schema)) =
            (face.get(&bound.field), licence_type.field(&bound.field))
        else {
            continue;
        };
        check_bound(bound, schema.kind, value, block_time)?;
    }
    Ok(())
}

/// One value against its field's bound.
fn check_bound(
    bound: &FieldBound,
    kind: FieldKind,
    value: &str,
    block_time: TimeMs,
) -> Result<(), RuleError> {
    let out_of_bounds = |description: String| RuleError::FaceOutOfBounds {
        field: bound.field.clone(),
        value: value.to_owned(),
        bound: description,
    };
    let compare = |limit: &str| compare_field_values(kind, value, limit);
    if let Some(min) = &bound.min
        && compare(min) != Some(Ordering::Greater)
        && compare(min) != Some(Ordering::Equal)
    {
        return Err(out_of_bounds(format!("at least {min}")));
    }
    if let Some(max) = &bound.max
        && compare(max) != Some(Ordering::Less)
        && compare(max) != Some(Ordering::Equal)
    {
        return Err(out_of_bounds(format!("at most {max}")));
    }
    if bound.not_after_block_date {
        let today = calendar::format_china(block_time)
            .ok()
            .and_then(|text| text.get(..10).map(str::to_owned))
            .unwrap_or_default();
        if compare(&today) == Some(Ordering::Greater) {
            return Err(out_of_bounds(format!(
                "not after the block's date, {today} (UTC+8)"
            )));
        }
    }
    Ok(())
}

/// `ChangeStatus`: one step of the status state machine ([`transition`]), by the issuer (holding
/// the issuer role and a grant in force now, `rights`) or by a supervisor granted the type in
/// the licence's region for the actions the type allows supervisors.
pub(super) fn change_status<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    type_code: &TypeCode,
    number: &LicenceNumber,
    action: &StatusAction,
    dated: Dated<'_>,
) -> Result<(), RuleError> {
    let height = origin.context.height;
    let mut licence = state.require_licence(type_code, number)?;
    let actor = state.require_authority(origin.signer)?;
    if actor.id == *licence.responsible() {
        require_issuer_right(state, &actor.id, &licence, height)?;
    } else {
        require_role(&actor, Role::Supervisor)?;
        let licence_type = state.require_type(type_code)?;
        if !licence_type
            .supervisor_actions
            .iter()
            .any(|allowed| allowed.same_kind(action))
        {
            return Err(RuleError::ActionNotPermitted {
                authority: actor.id.clone(),
                action: action.name(),
                type_code: type_code.clone(),
            });
        }
        if !state.has_covering_grant(&actor.id, type_code, &licence.region, height)? {
            return Err(RuleError::NotGranted {
                authority: actor.id.clone(),
                type_code: type_code.clone(),
                region: licence.region.clone(),
            });
        }
    }
    let standing = licence.final_standing();
    transition(standing.status, action)?;
    let is_registered = |reference: &str| {
        standing
            .pledges
            .iter()
            .any(|(existing, _)| existing == reference)
    };
    match action {
        StatusAction::PledgeRegistered { reference, .. } => {
            if let Some(valid_until) = standing
                .valid_until
                .filter(|until| *until <= dated.effective_at)
            {
                return Err(RuleError::LicenceExpired {
                    valid_until,
                    at: dated.effective_at,
                });
            }
            if is_registered(reference) {
                return Err(RuleError::PledgeExists(reference.clone()));
            }
            if standing.pledges.len() >= limits::OPEN_PLEDGES_PER_LICENCE_MAX {
                return Err(RuleError::TooManyPledges {
                    limit: limits::OPEN_PLEDGES_PER_LICENCE_MAX,
                });
            }
        }
        StatusAction::PledgeReleased { reference } if !is_registered(reference) => {
            return Err(RuleError::UnknownPledge(reference.clone()));
        }
        StatusAction::Renew {
            valid_until: Some(until),
        } if *until <= licence.valid_from => {
            return Err(RuleError::EmptyValidity {
                valid_from: licence.valid_from,
                valid_until: *until,
            });
        }
        _ => {}
    }
    push_event(
        &mut licence,
        LicenceEventKind::Status(action.clone()),
        dated,
        origin,
    )?;
    state.put(Record::Licence(licence));
    Ok(())
}

/// `AmendLicence`: new values for some face fields (`None` clears one), by the issuer holding
/// the issuer role and a grant in force now (`rights`), on a licence that has not ended. The values replaced are kept in the event.
pub(super) fn amend<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    type_code: &TypeCode,
    number: &LicenceNumber,
    changes: &BTreeMap<String, Option<FaceValue>>,
    dated: Dated<'_>,
) -> Result<(), RuleError> {
    let mut licence = state.require_licence(type_code, number)?;
    require_issuer_right(state, origin.signer, &licence, origin.context.height)?;
    let status = licence.final_standing().status;
    if status.is_terminal() {
        return Err(IllegalTransition {
            from: status,
            action: "amend",
        }
        .into());
    }
    let licence_type = type_version(state, type_code, licence.type_version)?;
    let mut face = licence.face.clone();
    let mut previous = BTreeMap::new();
    for (name, value) in changes {
        let old = match value {
            Some(value) => face.insert(name.clone(), value.clone()),
            None => face.remove(name),
        };
        if let Some(old) = old {
            previous.insert(name.clone(), old);
        }
    }
    check_face(&licence_type, &face, true)?;
    check_face_constraints(&licence_type, &licence.holder, &face, origin.context.time)?;
    licence.face = face;
    push_event(
        &mut licence,
        LicenceEventKind::Amended { previous },
        dated,
        origin,
    )?;
    state.put(Record::Licence(licence));
    Ok(())
}

/// The version `version` of the type `type_code`: the current one, or one an amendment
/// replaced and the catalogue keeps (ADR 0033).
fn type_version<R: StateReader + ?Sized>(
    state: &Scratch<'_, '_, R>,
    type_code: &TypeCode,
    version: u32,
) -> Result<LicenceType, RuleError> {
    let current = state.require_type(type_code)?;
    if current.version == version {
        return Ok(current);
    }
    let key = RecordKey::LicenceTypeVersion(type_code.clone(), version);
    match state.get(&key)? {
        Some(Record::LicenceTypeVersion(replaced)) => Ok(replaced),
        Some(_) => Err(wrong_kind(&key).into()),
        None => Err(RuleError::UnknownTypeVersion {
            type_code: type_code.clone(),
            version,
        }),
    }
}

/// Appends one event to a licence's history, signed by the transaction's signer and recorded
/// at its height. Its effective time lies inside the event window around the block time
/// (`window`), and effective times never decrease among the events that count, so that the
/// standing at any time is a fold of the events up to it.
/// A `TransferLicences` body, borrowed from the transaction.
#[derive(Clone, Copy, Debug)]
pub(super) struct Transfer<'b> {
    pub from: &'b AuthorityId,
    pub to: &'b AuthorityId,
    pub type_code: &'b TypeCode,
    pub numbers: &'b [LicenceNumber],
    pub reason: &'b str,
}

/// `TransferLicences` (颁发机构调整, ADR 0035): the governors hand licences of `from`, its
/// own or handed to it before, and the issuer's right over them to its successor `to`, which
/// holds the issuer role. Each licence keeps its issuer (whose grant authorised it) and
/// records the transfer in its history, effective at the block time or after its last event.
/// From the next write on, only `to` changes them as their issuer, with a grant of its own.
pub(super) fn transfer<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    origin: Origin<'_>,
    transfer: Transfer<'_>,
) -> Result<(), RuleError> {
    if transfer.from == transfer.to {
        return Err(RuleError::TransferToItself(transfer.from.clone()));
    }
    state.require_named_authority(transfer.from)?;
    let successor = state.require_named_authority(transfer.to)?;
    require_role(&successor, Role::Issuer)?;
    for number in transfer.numbers {
        let mut licence = state.require_licence(transfer.type_code, number)?;
        if licence.responsible() != transfer.from {
            return Err(RuleError::NotIssuer {
                issuer: licence.responsible().clone(),
                authority: transfer.from.clone(),
            });
        }
        let effective_at = origin.context.time.max(licence.last_effective_at());
        licence.successor = (licence.issuer != *transfer.to).then(|| transfer.to.clone());
        let kind = LicenceEventKind::Transferred {
            from: transfer.from.clone(),
            to: transfer.to.clone(),
        };
        let dated = Dated {
            effective_at,
            reason: transfer.reason,
        };
        push_event(&mut licence, kind, dated, origin)?;
        state.put(Record::Licence(licence));
    }
    Ok(())
}

fn push_event(
    licence: &mut Licence,
    kind: LicenceEventKind,
    dated: Dated<'_>,
    origin: Origin<'_>,
) -> Result<(), RuleError> {
    require_within_window(origin.context, "effective_at", dated.effective_at)?;
    let last = licence.last_effective_at();
    if dated.effective_at < last {
        return Err(RuleError::EffectiveTimeBeforeLastEvent {
            effective_at: dated.effective_at,
            last,
        });
    }
    if licence.events.len() >= limits::EVENTS_PER_LICENCE_MAX {
        return Err(RuleError::TooManyEvents {
            limit: limits::EVENTS_PER_LICENCE_MAX,
        });
    }
    licence.events.push(LicenceEvent {
        kind,
        effective_at: dated.effective_at,
        reason: dated.reason.to_owned(),
        by: origin.signer.clone(),
        height: origin.context.height,
        tx: origin.id,
        correction: None,
    });
    Ok(())
}

/// A new licence number in its one canonical spelling (ADR 0033): capitals `A-Z`, digits and
/// the marks `- / ( ) .`, beginning with a capital, a digit or `(` and ending with a capital,
/// a digit or `)`. Lower case and marks at either end are refused rather than normalised, so
/// that `91370200ma00000015` or `91370200MA00000015.` never become a second licence beside
/// `91370200MA00000015`. (The form check has already bounded the length and refused any
/// other character.)
pub fn check_canonical_number(number: &LicenceNumber) -> Result<(), RuleError> {
    let refuse = |problem| RuleError::NonCanonicalNumber {
        number: number.clone(),
        problem,
    };
    let text = number.as_str();
    if text.chars().any(|c| c.is_ascii_lowercase()) {
        return Err(refuse(
            "it has lower-case letters; licence numbers are written in capitals",
        ));
    }
    if !text
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || "-/().".contains(c))
    {
        return Err(refuse(
            "only capitals A-Z, digits and - / ( ) . may appear in it",
        ));
    }
    let opens = |c: char| c.is_ascii_alphanumeric() || c == '(';
    let closes = |c: char| c.is_ascii_alphanumeric() || c == ')';
    if !text.chars().next().is_some_and(opens) || !text.chars().last().is_some_and(closes) {
        return Err(refuse(
            "it begins or ends with a mark; it begins with a capital, a digit or ( and ends with a capital, a digit or )",
        ));
    }
    Ok(())
}

/// Face fields against the type's schema: no unknown field, every required field present,
/// public fields in clear and well-formed for their kind, private fields as commitments.
pub fn check_face(
    licence_type: &LicenceType,
    face: &BTreeMap<String, FaceValue>,
    require_all: bool,
) -> Result<(), RuleError> {
    let schema_error = |field: &str, problem: String| RuleError::Schema {
        field: field.to_owned(),
        problem,
    };
    for (name, value) in face {
        let Some(schema) = licence_type.field(name) else {
            return Err(schema_error(
                name,
                format!("type {} has no such field", licence_type.code),
            ));
        };
        match (schema.visibility, value) {
            (Visibility::Public, FaceValue::Clear(text)) => {
                check_field_value(name, schema.kind, text)?
            }
            (Visibility::Public, FaceValue::Committed(_)) => {
                return Err(schema_error(
                    name,
                    "is public and must be given in clear".into(),
                ));
            }
            (Visibility::Private, FaceValue::Committed(_)) => {}
            (Visibility::Private, FaceValue::Clear(_)) => {
                return Err(schema_error(
                    name,
                    "is private: give only its salted commitment, never the value".into(),
                ));
            }
        }
    }
    if require_all
        && let Some(missing) = licence_type
            .fields
            .iter()
            .find(|field| field.required && !face.contains_key(&field.name))
    {
        return Err(schema_error(&missing.name, "is required".into()));
    }
    Ok(())
}

fn check_field_value(name: &str, kind: FieldKind, text: &str) -> Result<(), RuleError> {
    let schema_error = |problem: &str| RuleError::Schema {
        field: name.to_owned(),
        problem: problem.to_owned(),
    };
    match kind {
        FieldKind::Text => {
            if text.trim().is_empty() {
                return Err(schema_error("is empty or blank"));
            }
        }
        FieldKind::Date => {
            if !calendar::is_calendar_date(text) {
                return Err(schema_error("must be a calendar date written YYYY-MM-DD"));
            }
        }
        FieldKind::Integer => {
            let digits = text.strip_prefix('-').unwrap_or(text);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 19
            {
                return Err(schema_error("must be a whole number of at most 19 digits"));
            }
        }
        FieldKind::Decimal => {
            let digits = text.strip_prefix('-').unwrap_or(text);
            let mut parts = digits.splitn(2, '.');
            let whole = parts.next().unwrap_or("");
            let fraction = parts.next();
            let all_digits =
                |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
            if !all_digits(whole)
                || fraction.is_some_and(|fraction| !all_digits(fraction))
                || digits.len() > 40
            {
                return Err(schema_error(
                    "must be a decimal number such as 1000.50, at most 40 characters long (sign aside)",
                ));
            }
        }
        FieldKind::Uscc => {
            Uscc::parse(text).map_err(|error| RuleError::FieldIdentifier {
                field: name.to_owned(),
                error,
            })?;
        }
        FieldKind::Region => {
            RegionCode::parse(text).map_err(|error| RuleError::FieldIdentifier {
                field: name.to_owned(),
                error,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::testing::{Chain, entry, id, writes};
    use super::check_face;
    use crate::hash::{Hash32, tagged};
    use crate::ident::{IdentError, IdentKind};
    use crate::limits;
    use crate::records::{
        FaceValue, FieldKind, FieldSchema, Holder, HolderKind, HolderLicence, HolderLicences,
        IllegalTransition, Licence, LicenceEvent, LicenceEventKind, LicenceNumber, LicenceType,
        Record, Status, StatusAction, Visibility,
    };
    use crate::rules::RuleError;
    use crate::testkit::{self, DAY_MS, GENESIS_TIME, region};
    use crate::tx::{TxBody, ValidUntil};

    fn status_body(number: &LicenceNumber, action: StatusAction, effective_at: u64) -> TxBody {
        TxBody::ChangeStatus {
            type_code: "business-licence".into(),
            number: number.clone(),
            action,
            effective_at,
            reason: "inspection finding".into(),
        }
    }

    fn amend_body(
        number: &LicenceNumber,
        changes: Vec<(&str, Option<FaceValue>)>,
        effective_at: u64,
    ) -> TxBody {
        TxBody::AmendLicence {
            type_code: "business-licence".into(),
            number: number.clone(),
            changes: changes
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
            effective_at,
            reason: "change of registration".into(),
        }
    }

    fn clear(text: &str) -> FaceValue {
        FaceValue::Clear(text.into())
    }

    /// The business-licence issuance of enterprise `number` with one part of it changed.
    fn issuance_with(number: u64, change: impl FnOnce(&mut TxBody)) -> TxBody {
        let mut body = testkit::business_licence_body("370200", number);
        change(&mut body);
        body
    }

    fn face_of(body: &mut TxBody) -> &mut BTreeMap<String, FaceValue> {
        match body {
            TxBody::IssueLicence { face, .. } => face,
            _ => unreachable!("an issuance"),
        }
    }

    /// Records `event` on licence `number` straight into the state, `count` times.
    fn with_events(
        chain: &mut Chain,
        number: &LicenceNumber,
        count: usize,
        kind: impl Fn(usize) -> LicenceEventKind,
    ) {
        let mut licence = chain.licence("business-licence", number);
        for index in 0..count {
            licence.events.push(LicenceEvent {
                kind: kind(index),
                effective_at: GENESIS_TIME,
                reason: String::new(),
                by: id("qd-approval"),
                height: 1,
                tx: Hash32::ZERO,
                correction: None,
            });
        }
        chain.put(Record::Licence(licence));
    }

    /// 一照通查: a holder whose list is full gets no more licences, and the refusal writes
    /// nothing, so the list a verifier is shown is never cut short (ADR 0039).
    #[test]
    fn a_holder_with_a_full_list_is_issued_nothing() {
        let mut chain = Chain::new();
        let issuance = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", 1);
        let TxBody::IssueLicence { holder, .. } = issuance.payload.body.clone() else {
            unreachable!()
        };
        let full = HolderLicences {
            holder: holder.clone(),
            licences: (0..limits::LICENCES_PER_HOLDER_MAX)
                .map(|n| {
                    (
                        "business-licence".into(),
                        format!("OLD-{n}").as_str().into(),
                    )
                })
                .collect(),
        };
        chain.put(Record::HolderLicences(full));
        let before = chain.state.records.clone();
        assert_eq!(
            chain.refuse(&issuance, "holder_licences_full"),
            RuleError::HolderLicencesFull {
                holder: holder.to_text(),
                limit: limits::LICENCES_PER_HOLDER_MAX,
            }
        );
        assert_eq!(chain.state.records, before);
    }

    #[test]
    fn an_issued_licence_is_written_whole_with_its_first_event() {
        let mut chain = Chain::new();
        let issuance = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", 1);
        let signer = chain.signer_after_next("qd-approval");
        let TxBody::IssueLicence {
            type_code,
            number,
            holder,
            holder_name,
            region,
            face,
            valid_from,
            document_hash,
            ..
        } = issuance.payload.body.clone()
        else {
            unreachable!()
        };
        let licence = Licence {
            type_code,
            number,
            holder,
            holder_name,
            issuer: id("qd-approval"),
            region,
            face,
            valid_from,
            valid_until: None,
            document_hash,
            issued_at: 1,
            events: vec![LicenceEvent {
                kind: LicenceEventKind::Issued,
                effective_at: valid_from,
                reason: String::new(),
                by: id("qd-approval"),
                height: 1,
                tx: issuance.id(crate::testkit::SUITE),
                correction: None,
            }],
            objections: Vec::new(),
            type_version: 1,
            annual_inspection_days: None,
            successor: None,
        };
        // The business licence is one per holder: the holder's entry names it.
        let held = HolderLicence {
            type_code: licence.type_code.clone(),
            holder: licence.holder.clone(),
            number: licence.number.clone(),
        };
        // The holder's list (一照通查) names it too.
        let list = HolderLicences {
            holder: licence.holder.clone(),
            licences: vec![(licence.type_code.clone(), licence.number.clone())],
        };
        assert_eq!(
            chain.apply(&issuance).unwrap(),
            writes([
                signer,
                entry(Record::HolderLicence(held)),
                entry(Record::Licence(licence)),
                entry(Record::HolderLicences(list)),
            ])
        );
    }

    #[test]
    fn a_licence_of_a_type_with_a_default_validity_ends_after_it() {
        let mut chain = Chain::new();
        let salt = [7u8; 32];
        let person = tagged("hutong/person/v1", b"370202199001011234");
        let body = testkit::qualification_body("Q-2026-1", person, "370202199001011234", &salt);
        let issuance = chain.fixture.tx("hr-bureau", body);
        let written = chain.apply(&issuance).unwrap();
        let key = crate::records::RecordKey::Licence(
            "qualification".into(),
            LicenceNumber("Q-2026-1".into()),
        );
        let Some(Record::Licence(licence)) = written.get(&key) else {
            panic!("no licence written: {written:?}")
        };
        assert_eq!(licence.valid_until, Some(GENESIS_TIME + 5 * 365 * DAY_MS));
    }

    #[test]
    fn an_issuer_needs_the_role_a_known_type_and_a_grant_covering_the_region() {
        let mut chain = Chain::new();
        let not_an_issuer = chain
            .fixture
            .tx("qd-market", testkit::business_licence_body("370200", 1));
        assert_eq!(
            chain.apply(&not_an_issuer),
            Err(RuleError::MissingRole {
                authority: id("qd-market"),
                role: crate::records::Role::Issuer,
            })
        );

        let unknown_type = issuance_with(1, |body| {
            if let TxBody::IssueLicence { type_code, .. } = body {
                *type_code = "fishing".into();
            }
        });
        let unknown_type = chain.fixture.tx("qd-approval", unknown_type);
        assert_eq!(
            chain.apply(&unknown_type),
            Err(RuleError::UnknownType("fishing".into()))
        );

        let elsewhere = chain
            .fixture
            .tx("qd-approval", testkit::business_licence_body("370800", 1));
        assert_eq!(
            chain.apply(&elsewhere),
            Err(RuleError::NotGranted {
                authority: id("qd-approval"),
                type_code: "business-licence".into(),
                region: region("370800"),
            })
        );
    }

    #[test]
    fn a_licence_number_is_issued_once() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        let again = chain
            .fixture
            .issue_business_licence("qd-approval", "370200", 1);
        assert_eq!(
            chain.apply(&again),
            Err(RuleError::DuplicateLicence {
                type_code: "business-licence".into(),
                number,
            })
        );
    }

    #[test]
    fn an_issuance_fits_the_type_holder_face_and_validity() {
        let mut chain = Chain::new();
        let person = issuance_with(1, |body| {
            if let TxBody::IssueLicence { holder, .. } = body {
                *holder = Holder::Person(Hash32::ZERO);
            }
        });
        let person = chain.fixture.tx("qd-approval", person);
        assert_eq!(
            chain.apply(&person),
            Err(RuleError::HolderKindMismatch {
                type_code: "business-licence".into(),
                expected: HolderKind::Enterprise,
                found: HolderKind::Person,
            })
        );

        let incomplete = issuance_with(1, |body| {
            face_of(body).remove("legal_representative");
        });
        let incomplete = chain.fixture.tx("qd-approval", incomplete);
        assert_eq!(
            chain.apply(&incomplete),
            Err(RuleError::Schema {
                field: "legal_representative".into(),
                problem: "is required".into(),
            })
        );

        let empty = issuance_with(1, |body| {
            if let TxBody::IssueLicence {
                valid_from,
                valid_until,
                ..
            } = body
            {
                *valid_until = ValidUntil::At(*valid_from);
            }
        });
        let empty = chain.fixture.tx("qd-approval", empty);
        assert_eq!(
            chain.apply(&empty),
            Err(RuleError::EmptyValidity {
                valid_from: GENESIS_TIME,
                valid_until: GENESIS_TIME,
            })
        );
    }

    /// A type with a field of every kind, public, and one private field.
    fn every_kind_type() -> LicenceType {
        let field = |name: &str, kind: FieldKind, visibility: Visibility| FieldSchema {
            name: name.into(),
            name_zh: name.into(),
            kind,
            required: false,
            visibility,
        };
        LicenceType {
            code: "every-kind".into(),
            name_zh: "测试".into(),
            name_en: "Test".into(),
            holder_kind: HolderKind::Enterprise,
            fields: vec![
                field("text", FieldKind::Text, Visibility::Public),
                field("date", FieldKind::Date, Visibility::Public),
                field("integer", FieldKind::Integer, Visibility::Public),
                field("decimal", FieldKind::Decimal, Visibility::Public),
                field("uscc", FieldKind::Uscc, Visibility::Public),
                field("region", FieldKind::Region, Visibility::Public),
                field("secret", FieldKind::Text, Visibility::Private),
            ],
            default_validity_days: None,
            supervisor_actions: Vec::new(),
            defined_at: 0,
            constraints: Default::default(),
            version: 1,
            version_at: 0,
            retired_at: None,
        }
    }

    fn face_problem(name: &str, value: FaceValue) -> Result<(), RuleError> {
        let face = BTreeMap::from([(name.to_owned(), value)]);
        check_face(&every_kind_type(), &face, false)
    }

    fn schema(field: &str, problem: &str) -> Result<(), RuleError> {
        Err(RuleError::Schema {
            field: field.into(),
            problem: problem.into(),
        })
    }

    #[test]
    fn each_face_field_is_checked_for_its_kind_and_visibility() {
        assert_eq!(
            face_problem("colour", clear("red")),
            schema("colour", "type every-kind has no such field")
        );
        assert_eq!(
            face_problem("text", FaceValue::Committed(Hash32::ZERO)),
            schema("text", "is public and must be given in clear")
        );
        assert_eq!(
            face_problem("secret", clear("370202199001011234")),
            schema(
                "secret",
                "is private: give only its salted commitment, never the value"
            )
        );
        assert_eq!(
            face_problem("secret", FaceValue::Committed(Hash32::ZERO)),
            Ok(())
        );
        assert_eq!(
            face_problem("text", clear("  \t")),
            schema("text", "is empty or blank")
        );
        assert_eq!(face_problem("text", clear("有限公司")), Ok(()));
        assert_eq!(
            face_problem("date", clear("2026-02-30")),
            schema("date", "must be a calendar date written YYYY-MM-DD")
        );
        assert_eq!(face_problem("date", clear("2024-02-29")), Ok(()));
        assert_eq!(
            face_problem("integer", clear("12a")),
            schema("integer", "must be a whole number of at most 19 digits")
        );
        assert_eq!(
            face_problem("integer", clear(&"9".repeat(20))),
            schema("integer", "must be a whole number of at most 19 digits")
        );
        assert_eq!(face_problem("integer", clear("-42")), Ok(()));
        let decimal_problem =
            "must be a decimal number such as 1000.50, at most 40 characters long (sign aside)";
        assert_eq!(
            face_problem("decimal", clear("1.")),
            schema("decimal", decimal_problem)
        );
        assert_eq!(
            face_problem("decimal", clear("1,5")),
            schema("decimal", decimal_problem)
        );
        // Well-formed but too long: the reason names the length.
        let long = format!("{}.50", "1".repeat(38));
        assert_eq!(
            face_problem("decimal", clear(&long)),
            schema("decimal", decimal_problem)
        );
        assert_eq!(
            face_problem("decimal", clear(&format!("-{}.5", "1".repeat(38)))),
            Ok(())
        );
        let uscc = testkit::uscc("370200", 1).to_string();
        assert_eq!(face_problem("uscc", clear(&uscc)), Ok(()));
        let check = uscc.chars().last().unwrap();
        let wrong_check = if check == '0' { '1' } else { '0' };
        let tampered = format!("{}{wrong_check}", &uscc[..17]);
        assert_eq!(
            face_problem("uscc", clear(&tampered)),
            Err(RuleError::FieldIdentifier {
                field: "uscc".into(),
                error: IdentError::CheckCharacterMismatch {
                    kind: IdentKind::Uscc,
                    expected: check,
                    found: wrong_check,
                },
            })
        );
        assert_eq!(
            face_problem("region", clear("37020")),
            Err(RuleError::FieldIdentifier {
                field: "region".into(),
                error: IdentError::Length {
                    kind: IdentKind::RegionCode,
                    expected: 6,
                    found: 5,
                },
            })
        );
        assert_eq!(face_problem("region", clear("370202")), Ok(()));
    }

    #[test]
    fn a_status_change_appends_one_event_by_the_issuer_or_a_supervisor() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        let mut expected = chain.licence("business-licence", &number);

        let suspension = chain.fixture.tx(
            "qd-market",
            status_body(&number, StatusAction::Suspend, GENESIS_TIME + 10),
        );
        let signer = chain.signer_after_next("qd-market");
        expected.events.push(LicenceEvent {
            kind: LicenceEventKind::Status(StatusAction::Suspend),
            effective_at: GENESIS_TIME + 10,
            reason: "inspection finding".into(),
            by: id("qd-market"),
            height: 2,
            tx: suspension.id(crate::testkit::SUITE),
            correction: None,
        });
        assert_eq!(
            chain.apply(&suspension).unwrap(),
            writes([signer, entry(Record::Licence(expected.clone()))])
        );

        // The issuer acts on its own licence without the supervisor's checks.
        let reinstatement = chain.fixture.tx(
            "qd-approval",
            status_body(&number, StatusAction::Reinstate, GENESIS_TIME + 20),
        );
        let signer = chain.signer_after_next("qd-approval");
        expected.events.push(LicenceEvent {
            kind: LicenceEventKind::Status(StatusAction::Reinstate),
            effective_at: GENESIS_TIME + 20,
            reason: "inspection finding".into(),
            by: id("qd-approval"),
            height: 3,
            tx: reinstatement.id(crate::testkit::SUITE),
            correction: None,
        });
        assert_eq!(
            chain.apply(&reinstatement).unwrap(),
            writes([signer, entry(Record::Licence(expected))])
        );
        assert_eq!(
            chain
                .licence("business-licence", &number)
                .final_standing()
                .status,
            Status::Active
        );
    }

    #[test]
    fn a_status_change_is_refused_to_whoever_may_not_take_it() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);

        let unknown = LicenceNumber("91370200MA0000000X".into());
        let nowhere = chain.fixture.tx(
            "qd-approval",
            status_body(&unknown, StatusAction::Suspend, GENESIS_TIME),
        );
        assert_eq!(
            chain.apply(&nowhere),
            Err(RuleError::UnknownLicence {
                type_code: "business-licence".into(),
                number: unknown,
            })
        );

        let other_issuer = chain.fixture.tx(
            "jn-approval",
            status_body(&number, StatusAction::Suspend, GENESIS_TIME),
        );
        assert_eq!(
            chain.apply(&other_issuer),
            Err(RuleError::MissingRole {
                authority: id("jn-approval"),
                role: crate::records::Role::Supervisor,
            })
        );

        let not_for_supervisors = chain.fixture.tx(
            "qd-market",
            status_body(&number, StatusAction::Cancel, GENESIS_TIME),
        );
        assert_eq!(
            chain.apply(&not_for_supervisors),
            Err(RuleError::ActionNotPermitted {
                authority: id("qd-market"),
                action: "cancel",
                type_code: "business-licence".into(),
            })
        );

        let in_jining = chain
            .fixture
            .issue_business_licence("jn-approval", "370800", 2);
        let TxBody::IssueLicence {
            number: jining_number,
            ..
        } = in_jining.payload.body.clone()
        else {
            unreachable!()
        };
        chain.apply(&in_jining).unwrap();
        let outside = chain.fixture.tx(
            "qd-market",
            status_body(&jining_number, StatusAction::Suspend, GENESIS_TIME),
        );
        assert_eq!(
            chain.apply(&outside),
            Err(RuleError::NotGranted {
                authority: id("qd-market"),
                type_code: "business-licence".into(),
                region: region("370800"),
            })
        );
    }

    #[test]
    fn a_status_change_follows_the_state_machine_and_the_licence_history() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        let change = |chain: &mut Chain, action: StatusAction, effective_at: u64| {
            let transaction = chain
                .fixture
                .tx("qd-approval", status_body(&number, action, effective_at));
            chain.apply(&transaction).map(|_| ())
        };

        assert_eq!(
            change(&mut chain, StatusAction::Reinstate, GENESIS_TIME),
            Err(RuleError::IllegalTransition(IllegalTransition {
                from: Status::Active,
                action: "reinstate",
            }))
        );
        assert_eq!(
            change(
                &mut chain,
                StatusAction::Renew {
                    valid_until: Some(GENESIS_TIME)
                },
                GENESIS_TIME
            ),
            Err(RuleError::EmptyValidity {
                valid_from: GENESIS_TIME,
                valid_until: GENESIS_TIME,
            })
        );
        assert_eq!(
            change(&mut chain, StatusAction::AnnualInspection, GENESIS_TIME - 1),
            Err(RuleError::EffectiveTimeBeforeLastEvent {
                effective_at: GENESIS_TIME - 1,
                last: GENESIS_TIME,
            })
        );
    }

    fn pledge(reference: &str) -> StatusAction {
        StatusAction::PledgeRegistered {
            secured_party: "青岛银行".into(),
            reference: reference.into(),
        }
    }

    #[test]
    fn pledges_are_registered_once_and_released_by_their_reference() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        let registered = chain.fixture.tx(
            "qd-approval",
            status_body(&number, pledge("DY-1"), GENESIS_TIME),
        );
        chain.apply(&registered).unwrap();
        let again = chain.fixture.tx(
            "qd-approval",
            status_body(&number, pledge("DY-1"), GENESIS_TIME),
        );
        assert_eq!(
            chain.apply(&again),
            Err(RuleError::PledgeExists("DY-1".into()))
        );
        let unknown = chain.fixture.tx(
            "qd-approval",
            status_body(
                &number,
                StatusAction::PledgeReleased {
                    reference: "DY-2".into(),
                },
                GENESIS_TIME,
            ),
        );
        assert_eq!(
            chain.apply(&unknown),
            Err(RuleError::UnknownPledge("DY-2".into()))
        );
    }

    #[test]
    fn a_pledge_is_released_while_suspended_and_taken_only_while_the_licence_runs() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        let apply = |chain: &mut Chain, action: StatusAction, at: u64| {
            let transaction = chain
                .fixture
                .tx("qd-approval", status_body(&number, action, at));
            chain.apply(&transaction)
        };
        apply(&mut chain, pledge("DY-1"), GENESIS_TIME).unwrap();
        apply(&mut chain, StatusAction::Suspend, GENESIS_TIME).unwrap();
        // Suspended, the licence takes no new pledge, but the bank's claim can end.
        assert_eq!(
            apply(&mut chain, pledge("DY-2"), GENESIS_TIME),
            Err(RuleError::IllegalTransition(IllegalTransition {
                from: Status::Suspended,
                action: "pledge_registered",
            }))
        );
        let release = StatusAction::PledgeReleased {
            reference: "DY-1".into(),
        };
        apply(&mut chain, release, GENESIS_TIME).unwrap();
        let licence = chain.licence("business-licence", &number);
        assert_eq!(licence.final_standing().status, Status::Suspended);
        assert!(licence.final_standing().pledges.is_empty());

        // A licence whose validity has ended takes no pledge.
        let number = chain.issue_business_licence(2);
        let until = GENESIS_TIME + 1;
        let renew = StatusAction::Renew {
            valid_until: Some(until),
        };
        let transaction = chain
            .fixture
            .tx("qd-approval", status_body(&number, renew, GENESIS_TIME));
        chain.apply(&transaction).unwrap();
        let late = chain.fixture.tx(
            "qd-approval",
            status_body(&number, pledge("DY-3"), GENESIS_TIME + 1),
        );
        let root = chain.state_root();
        assert_eq!(
            chain.apply(&late),
            Err(RuleError::LicenceExpired {
                valid_until: until,
                at: GENESIS_TIME + 1,
            })
        );
        assert_eq!(chain.state_root(), root);
    }

    fn transfer_body(from: &str, to: &str, numbers: &[LicenceNumber]) -> TxBody {
        TxBody::TransferLicences {
            from: from.into(),
            to: to.into(),
            type_code: "business-licence".into(),
            numbers: numbers.to_vec(),
            reason: "机构改革 reorganisation".into(),
        }
    }

    /// 颁发机构调整: the approval bureau's licences go to the market regulator, which changes
    /// them from then on; the bureau no longer can; the history keeps the transfer and the
    /// issuer stays the bureau.
    #[test]
    fn the_governors_hand_a_departments_licences_to_its_successor() {
        let mut chain = Chain::new();
        let first = chain.issue_business_licence(1);
        let second = chain.issue_business_licence(2);
        let numbers = [first.clone(), second.clone()];
        // The successor must hold the issuer role.
        let early = chain.governance(transfer_body("qd-approval", "qd-market", &numbers));
        chain.refuse(&early, "missing_role");
        let roles = chain.governance(TxBody::UpdateAuthority {
            id: "qd-market".into(),
            name_zh: None,
            name_en: None,
            roles: Some(vec![
                crate::records::Role::Issuer,
                crate::records::Role::Supervisor,
            ]),
        });
        chain.apply(&roles).unwrap();
        let transfer = chain.governance(transfer_body("qd-approval", "qd-market", &numbers));
        chain.apply(&transfer).unwrap();
        for number in &numbers {
            let licence = chain.licence("business-licence", number);
            assert_eq!(licence.issuer.as_str(), "qd-approval");
            assert_eq!(
                licence.successor.as_ref().map(|id| id.as_str()),
                Some("qd-market")
            );
            assert_eq!(
                licence.events.last().map(|event| &event.kind),
                Some(&LicenceEventKind::Transferred {
                    from: "qd-approval".into(),
                    to: "qd-market".into(),
                })
            );
        }
        let by_old = chain.fixture.tx(
            "qd-approval",
            status_body(&first, StatusAction::Suspend, GENESIS_TIME),
        );
        // No longer its issuer, the bureau would need to be a supervisor to change it.
        chain.refuse(&by_old, "missing_role");
        let amend_by_old = chain.fixture.tx(
            "qd-approval",
            amend_body(
                &first,
                vec![("name", Some(FaceValue::Clear("新名".into())))],
                GENESIS_TIME,
            ),
        );
        chain.refuse(&amend_by_old, "not_issuer");
        let by_successor = chain.fixture.tx(
            "qd-market",
            status_body(&first, StatusAction::Revoke, GENESIS_TIME + 60_000),
        );
        chain.apply(&by_successor).unwrap();

        // Handed back, the licence has no successor again.
        let back = chain.governance(transfer_body(
            "qd-market",
            "qd-approval",
            std::slice::from_ref(&second),
        ));
        chain.apply(&back).unwrap();
        assert_eq!(chain.licence("business-licence", &second).successor, None);
    }

    /// What a transfer may not do, each refused with the state unchanged.
    #[test]
    fn a_transfer_is_refused_when_it_names_the_wrong_parties() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        let numbers = [number.clone()];
        // One department's key alone is not the governors.
        let alone = chain.fixture.tx(
            "qd-approval",
            transfer_body("qd-approval", "hr-bureau", &numbers),
        );
        let refusal = chain.refuse(&alone, "endorser_not_governor");
        assert_eq!(refusal.code(), "endorser_not_governor");
        let itself = chain.governance(transfer_body("qd-approval", "qd-approval", &numbers));
        chain.refuse(&itself, "transfer_to_itself");
        let unknown = chain.governance(transfer_body("qd-approval", "nobody", &numbers));
        chain.refuse(&unknown, "unknown_named_authority");
        // Licences another department issued are not the bureau's to hand over.
        let not_theirs = chain.governance(transfer_body("jn-approval", "hr-bureau", &numbers));
        chain.refuse(&not_theirs, "not_issuer");
        let missing = chain.governance(transfer_body(
            "qd-approval",
            "hr-bureau",
            &[number.clone(), "91370200MA0000009X".into()],
        ));
        chain.refuse(&missing, "unknown_licence");
        assert_eq!(chain.licence("business-licence", &number).successor, None);
    }

    #[test]
    fn open_pledges_and_events_stop_at_their_limits() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        with_events(
            &mut chain,
            &number,
            limits::OPEN_PLEDGES_PER_LICENCE_MAX,
            |index| LicenceEventKind::Status(pledge(&format!("DY-{index}"))),
        );
        let one_more = chain.fixture.tx(
            "qd-approval",
            status_body(&number, pledge("DY-new"), GENESIS_TIME),
        );
        assert_eq!(
            chain.apply(&one_more),
            Err(RuleError::TooManyPledges {
                limit: limits::OPEN_PLEDGES_PER_LICENCE_MAX
            })
        );

        let number = chain.issue_business_licence(2);
        with_events(
            &mut chain,
            &number,
            limits::EVENTS_PER_LICENCE_MAX - 1,
            |_| LicenceEventKind::Status(StatusAction::AnnualInspection),
        );
        let inspection = chain.fixture.tx(
            "qd-approval",
            status_body(&number, StatusAction::AnnualInspection, GENESIS_TIME),
        );
        assert_eq!(
            chain.apply(&inspection),
            Err(RuleError::TooManyEvents {
                limit: limits::EVENTS_PER_LICENCE_MAX
            })
        );
    }

    #[test]
    fn an_amendment_keeps_the_values_it_replaced() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        let mut expected = chain.licence("business-licence", &number);
        let amendment = chain.fixture.tx(
            "qd-approval",
            amend_body(
                &number,
                vec![
                    ("legal_representative", Some(clear("李四"))),
                    ("registered_capital", None),
                    ("address", Some(clear("青岛市市南区香港中路1号"))),
                ],
                GENESIS_TIME + 5,
            ),
        );
        let signer = chain.signer_after_next("qd-approval");
        let previous = BTreeMap::from([
            ("legal_representative".to_owned(), clear("张三")),
            ("registered_capital".to_owned(), clear("1000000.00")),
        ]);
        expected
            .face
            .insert("legal_representative".into(), clear("李四"));
        expected.face.remove("registered_capital");
        expected
            .face
            .insert("address".into(), clear("青岛市市南区香港中路1号"));
        expected.events.push(LicenceEvent {
            kind: LicenceEventKind::Amended { previous },
            effective_at: GENESIS_TIME + 5,
            reason: "change of registration".into(),
            by: id("qd-approval"),
            height: 2,
            tx: amendment.id(crate::testkit::SUITE),
            correction: None,
        });
        assert_eq!(
            chain.apply(&amendment).unwrap(),
            writes([signer, entry(Record::Licence(expected))])
        );
    }

    #[test]
    fn an_amendment_is_the_issuers_on_a_live_licence_and_keeps_the_face_valid() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        let rename = || vec![("name", Some(clear("青岛新名称有限公司")))];

        let unknown = LicenceNumber("91370200MA0000000X".into());
        let nowhere = chain
            .fixture
            .tx("qd-approval", amend_body(&unknown, rename(), GENESIS_TIME));
        assert_eq!(
            chain.apply(&nowhere),
            Err(RuleError::UnknownLicence {
                type_code: "business-licence".into(),
                number: unknown,
            })
        );

        let supervisor = chain
            .fixture
            .tx("qd-market", amend_body(&number, rename(), GENESIS_TIME));
        assert_eq!(
            chain.apply(&supervisor),
            Err(RuleError::NotIssuer {
                issuer: id("qd-approval"),
                authority: id("qd-market"),
            })
        );

        let cleared = chain.fixture.tx(
            "qd-approval",
            amend_body(&number, vec![("name", None)], GENESIS_TIME),
        );
        assert_eq!(
            chain.apply(&cleared),
            Err(RuleError::Schema {
                field: "name".into(),
                problem: "is required".into(),
            })
        );

        let backdated = chain.fixture.tx(
            "qd-approval",
            amend_body(&number, rename(), GENESIS_TIME - 1),
        );
        assert_eq!(
            chain.apply(&backdated),
            Err(RuleError::EffectiveTimeBeforeLastEvent {
                effective_at: GENESIS_TIME - 1,
                last: GENESIS_TIME,
            })
        );

        let revocation = chain.fixture.tx(
            "qd-approval",
            status_body(&number, StatusAction::Revoke, GENESIS_TIME),
        );
        chain.apply(&revocation).unwrap();
        let after_the_end = chain
            .fixture
            .tx("qd-approval", amend_body(&number, rename(), GENESIS_TIME));
        assert_eq!(
            chain.apply(&after_the_end),
            Err(RuleError::IllegalTransition(IllegalTransition {
                from: Status::Revoked,
                action: "amend",
            }))
        );
    }

    #[test]
    fn every_status_action_and_an_amendment_are_dated_inside_the_event_window() {
        let mut chain = Chain::new();
        let number = chain.issue_business_licence(1);
        // The licence is issued far enough back that the backward end of the window, not the
        // licence's history, is what refuses.
        let mut licence = chain.licence("business-licence", &number);
        licence.valid_from = 0;
        licence.events[0].effective_at = 0;
        chain.put(Record::Licence(licence));
        let actions = [
            StatusAction::Suspend,
            StatusAction::Revoke,
            StatusAction::Cancel,
            StatusAction::Abolish,
            StatusAction::Renew { valid_until: None },
            StatusAction::AnnualInspection,
            pledge("DY-1"),
        ];
        for action in actions {
            let block_time = chain.next_context().time;
            let earliest = block_time - limits::EVENT_BACKDATING_MS_MAX;
            let latest = block_time + limits::EVENT_SCHEDULING_MS_MAX;
            let too_early = chain.fixture.tx(
                "qd-approval",
                status_body(&number, action.clone(), earliest - 1),
            );
            assert_eq!(
                chain.refuse(&too_early, "effective_time_too_far_back"),
                RuleError::EffectiveTimeTooFarBack {
                    field: "effective_at",
                    effective_at: earliest - 1,
                    block_time,
                    limit_ms: limits::EVENT_BACKDATING_MS_MAX,
                },
                "{}",
                action.name()
            );
            let too_late = chain.fixture.tx(
                "qd-approval",
                status_body(&number, action.clone(), latest + 1),
            );
            assert_eq!(
                chain.refuse(&too_late, "effective_time_too_far_ahead"),
                RuleError::EffectiveTimeTooFarAhead {
                    field: "effective_at",
                    effective_at: latest + 1,
                    block_time,
                    limit_ms: limits::EVENT_SCHEDULING_MS_MAX,
                },
                "{}",
                action.name()
            );
        }
        let block_time = chain.next_context().time;
        let rename = vec![("name", Some(clear("青岛新名称有限公司")))];
        let amendment = chain.fixture.tx(
            "qd-approval",
            amend_body(
                &number,
                rename.clone(),
                block_time + limits::EVENT_SCHEDULING_MS_MAX + 1,
            ),
        );
        chain.refuse(&amendment, "effective_time_too_far_ahead");
        let amendment = chain.fixture.tx(
            "qd-approval",
            amend_body(
                &number,
                rename.clone(),
                block_time - limits::EVENT_BACKDATING_MS_MAX - 1,
            ),
        );
        chain.refuse(&amendment, "effective_time_too_far_back");

        // Both ends are inside: a change dated at the earliest time, then one scheduled at the
        // latest.
        let earliest = chain.next_context().time - limits::EVENT_BACKDATING_MS_MAX;
        let backdated = chain
            .fixture
            .tx("qd-approval", amend_body(&number, rename, earliest));
        chain.apply(&backdated).unwrap();
        let latest = chain.next_context().time + limits::EVENT_SCHEDULING_MS_MAX;
        let scheduled = chain.fixture.tx(
            "qd-approval",
            status_body(&number, StatusAction::Suspend, latest),
        );
        chain.apply(&scheduled).unwrap();
        let standing = chain.licence("business-licence", &number);
        assert_eq!(standing.standing_at(latest - 1).status, Status::Active);
        assert_eq!(standing.standing_at(latest).status, Status::Suspended);
    }

    #[test]
    fn a_licence_number_has_one_canonical_spelling() {
        use super::check_canonical_number;
        let canonical = |text: &str| check_canonical_number(&LicenceNumber(text.into()));
        for good in ["91370200MA00000015", "(2026)0001", "JY-37/02.1", "A", "7"] {
            assert_eq!(canonical(good), Ok(()), "{good}");
        }
        let problem = |text: &str| match canonical(text) {
            Err(RuleError::NonCanonicalNumber { number, problem }) => {
                assert_eq!(number.as_str(), text);
                assert_eq!(
                    RuleError::NonCanonicalNumber { number, problem }.code(),
                    "non_canonical_number"
                );
                problem
            }
            other => panic!("{text}: {other:?}"),
        };
        assert!(problem("91370200ma00000015").contains("lower-case"));
        for marked in ["91370200MA00000015.", "-A1", "A1(", ")A1", "/1", "(", "."] {
            assert!(
                problem(marked).contains("begins or ends with a mark"),
                "{marked}"
            );
        }
        assert!(problem("A 1").contains("only capitals"));
        assert!(problem("A\u{00C4}1").contains("only capitals"));
    }
}
