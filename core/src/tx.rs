//! Transactions: `{chain_id, signer, nonce, created_at, body}` signed by one or more
//! authorities (docs/design.md section 3).
//!
//! Every endorsement signs the same message, `signing_message("hutong/tx/v1", chain_id,
//! canonical(payload))`. The transaction id is blake3 of the canonical bytes of the whole
//! signed transaction. Decoding checks the size before anything else ([`Transaction::decode`]),
//! then the form of every field ([`Transaction::check_form`]), before any rule runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::crypto::{self, PublicKey, SecretKey, Signature};
use crate::hash::Hash32;
use crate::ident::{RegionCode, Uscc};
use crate::limits;
use crate::records::{
    AuthorityId, CorrectionAction, FaceValue, FieldKind, FieldSchema, Height, Holder, HolderKind,
    IssuedBy, LicenceNumber, LicenceType, NodeChange, ObjectionOutcome, QuotaScope, Role,
    StatusAction, TimeMs, TypeCode, TypeConstraints, Visibility, WriteQuota, compare_field_values,
};
use crate::suite::Suite;

/// What the signers agree to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxPayload {
    pub chain_id: String,
    /// The authority that submits it; its nonce is the one that must increase.
    pub signer: AuthorityId,
    /// Exactly one above the signer's last committed nonce (ADR 0011).
    pub nonce: u64,
    /// When the signer made it; at most [`limits::TX_CLOCK_SKEW_MS_MAX`] after the block time.
    pub created_at: TimeMs,
    pub body: TxBody,
}

/// One authority's signature over the payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endorsement {
    pub authority: AuthorityId,
    pub signature: Signature,
}

/// A signed transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    pub payload: TxPayload,
    /// The signer's first; governance records carry one per approving governor.
    pub signatures: Vec<Endorsement>,
}

/// Until when an issued licence is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidUntil {
    /// The type's default validity, counted from `valid_from`.
    TypeDefault,
    At(TimeMs),
    /// 长期: no end.
    LongTerm,
}

/// A new authority as registered by the governors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityDraft {
    pub id: AuthorityId,
    pub name_zh: String,
    pub name_en: String,
    pub region: RegionCode,
    pub uscc: Uscc,
    pub roles: Vec<Role>,
    pub key: PublicKey,
}

/// A new catalogue entry as defined by the governors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceTypeDraft {
    pub code: TypeCode,
    pub name_zh: String,
    pub name_en: String,
    pub holder_kind: HolderKind,
    pub fields: Vec<FieldSchema>,
    pub default_validity_days: Option<u32>,
    pub supervisor_actions: Vec<StatusAction>,
    /// What its licences must satisfy beyond the kinds of their fields (none when absent).
    #[serde(default)]
    pub constraints: TypeConstraints,
}

impl LicenceTypeDraft {
    /// The catalogue entry it defines at `height`: version 1, not retired.
    pub fn to_type(&self, height: Height) -> LicenceType {
        LicenceType {
            code: self.code.clone(),
            name_zh: self.name_zh.clone(),
            name_en: self.name_en.clone(),
            holder_kind: self.holder_kind,
            fields: self.fields.clone(),
            default_validity_days: self.default_validity_days,
            supervisor_actions: self.supervisor_actions.clone(),
            defined_at: height,
            constraints: self.constraints.clone(),
            version: 1,
            version_at: height,
            retired_at: None,
        }
    }
}

/// The kinds of record (docs/design.md section 3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TxBody {
    /// Governors: add a department.
    RegisterAuthority(AuthorityDraft),
    /// Governors: change a department's names or roles (`None` keeps the current value).
    UpdateAuthority {
        id: AuthorityId,
        name_zh: Option<String>,
        name_en: Option<String>,
        roles: Option<Vec<Role>>,
    },
    /// The authority's current key, or the governors when the key is lost: `new_key` signs
    /// from `effective_height` on, and the old key stops there.
    RotateKey {
        authority: AuthorityId,
        new_key: PublicKey,
        effective_height: Height,
    },
    /// Governors: a catalogue entry.
    DefineLicenceType(LicenceTypeDraft),
    /// Governors: `authority` may issue `type_code` in `region`.
    GrantIssuance {
        authority: AuthorityId,
        type_code: TypeCode,
        region: RegionCode,
    },
    /// Governors: ends a grant from the next height on.
    RevokeGrant {
        authority: AuthorityId,
        type_code: TypeCode,
        region: RegionCode,
    },
    /// An issuer granted the type in the region.
    IssueLicence {
        type_code: TypeCode,
        number: LicenceNumber,
        holder: Holder,
        holder_name: String,
        region: RegionCode,
        face: BTreeMap<String, FaceValue>,
        valid_from: TimeMs,
        valid_until: ValidUntil,
        document_hash: Hash32,
    },
    /// The issuer, or a supervisor of the type in the licence's region.
    ChangeStatus {
        type_code: TypeCode,
        number: LicenceNumber,
        action: StatusAction,
        effective_at: TimeMs,
        reason: String,
    },
    /// The issuer: new values for some face fields (`None` clears an optional field).
    AmendLicence {
        type_code: TypeCode,
        number: LicenceNumber,
        changes: BTreeMap<String, Option<FaceValue>>,
        effective_at: TimeMs,
        reason: String,
    },
    /// A recognizer: its region recognises these types issued in a region or by an authority.
    AttestRecognition {
        recognizing_region: RegionCode,
        type_codes: Vec<TypeCode>,
        issued_by: IssuedBy,
        scope: String,
        valid_from: TimeMs,
        valid_until: Option<TimeMs>,
    },
    /// The recognizer that attested it (or another recognizer of the same region).
    WithdrawRecognition {
        id: Hash32,
        effective_at: TimeMs,
        reason: String,
    },
    /// A department of the licence's province, a supervisor of its type, or a recognizer
    /// naming the attestation by which its region recognises the licence: a dispute on a
    /// licence (ADR 0034).
    FileObjection {
        type_code: TypeCode,
        number: LicenceNumber,
        reason: String,
        /// The recognition a recognizer files under; `None` for the other filers.
        recognition: Option<Hash32>,
    },
    /// A supervisor of the licence's type and region other than its issuer, or more than two
    /// thirds of the governors: the end of an objection. An upheld objection names the event
    /// of the licence's history that corrected it (ADR 0034).
    ResolveObjection {
        id: Hash32,
        outcome: ObjectionOutcome,
        note: String,
        /// The index of the correcting event in the licence's history.
        follow_up: Option<u32>,
    },
    /// Governors: add or remove nodes, or change their power, from a later height.
    ChangeValidators {
        changes: Vec<NodeChange>,
        effective_height: Height,
    },
    /// Governors: the write quota of one authority, or the default of every authority without
    /// one of its own (`None` clears it; ADR 0029).
    SetWriteQuota {
        scope: QuotaScope,
        quota: Option<WriteQuota>,
    },
    /// Governors: what `authority` signed from height `compromised_from` on may have been
    /// signed by someone else (a stolen key). Every key it holds stops at the next height, a
    /// rotation it scheduled never takes effect, verdicts flag what its keys signed from
    /// `compromised_from` up to this report, and `new_key`, when given, signs from the next
    /// height on (ADR 0031).
    ReportKeyCompromise {
        authority: AuthorityId,
        compromised_from: Height,
        new_key: Option<PublicKey>,
    },
    /// Governors: the event at `event` (its index in the licence's history, the issuance
    /// being 0) was entered wrongly; void it or give it its right effective time. The event
    /// stays in the history, marked corrected with `reason` (ADR 0032).
    CorrectEvent {
        type_code: TypeCode,
        number: LicenceNumber,
        event: u32,
        action: CorrectionAction,
        reason: String,
    },
    /// Governors: the next version of a catalogue entry, named by its code (目录动态管理;
    /// ADR 0033). Licences issued before keep the version they were issued under.
    AmendLicenceType(LicenceTypeDraft),
    /// Governors: a catalogue entry issues no licence from the next height on; those issued
    /// keep their standing (ADR 0033).
    RetireLicenceType { type_code: TypeCode, reason: String },
    /// Governors: 颁发机构调整, a dissolved or merged department's licences of one type, and
    /// the issuer's right over them, handed to its successor (at most
    /// [`limits::TRANSFER_LICENCES_MAX`] per transaction; ADR 0035).
    TransferLicences {
        from: AuthorityId,
        to: AuthorityId,
        type_code: TypeCode,
        numbers: Vec<LicenceNumber>,
        reason: String,
    },
}

impl TxBody {
    /// A stable name of the kind, used in indexes, metrics and the API.
    pub fn kind_name(&self) -> &'static str {
        match self {
            TxBody::RegisterAuthority(_) => "register_authority",
            TxBody::UpdateAuthority { .. } => "update_authority",
            TxBody::RotateKey { .. } => "rotate_key",
            TxBody::DefineLicenceType(_) => "define_licence_type",
            TxBody::GrantIssuance { .. } => "grant_issuance",
            TxBody::RevokeGrant { .. } => "revoke_grant",
            TxBody::IssueLicence { .. } => "issue_licence",
            TxBody::ChangeStatus { .. } => "change_status",
            TxBody::AmendLicence { .. } => "amend_licence",
            TxBody::AttestRecognition { .. } => "attest_recognition",
            TxBody::WithdrawRecognition { .. } => "withdraw_recognition",
            TxBody::FileObjection { .. } => "file_objection",
            TxBody::ResolveObjection { .. } => "resolve_objection",
            TxBody::ChangeValidators { .. } => "change_validators",
            TxBody::SetWriteQuota { .. } => "set_write_quota",
            TxBody::ReportKeyCompromise { .. } => "report_key_compromise",
            TxBody::CorrectEvent { .. } => "correct_event",
            TxBody::AmendLicenceType(_) => "amend_licence_type",
            TxBody::RetireLicenceType { .. } => "retire_licence_type",
            TxBody::TransferLicences { .. } => "transfer_licences",
        }
    }

    /// Whether the record needs the approval of more than two thirds of the governors.
    pub fn is_governance(&self) -> bool {
        matches!(
            self,
            TxBody::RegisterAuthority(_)
                | TxBody::UpdateAuthority { .. }
                | TxBody::DefineLicenceType(_)
                | TxBody::GrantIssuance { .. }
                | TxBody::RevokeGrant { .. }
                | TxBody::ChangeValidators { .. }
                | TxBody::SetWriteQuota { .. }
                | TxBody::ReportKeyCompromise { .. }
                | TxBody::CorrectEvent { .. }
                | TxBody::AmendLicenceType(_)
                | TxBody::RetireLicenceType { .. }
                | TxBody::TransferLicences { .. }
        )
    }

    /// Every text of the body that reaches a record, with the field it is in: names,
    /// reasons, notes, scopes, face fields' names and clear values. The rules refuse a format
    /// character in any of them ([`first_format_character`]).
    pub fn texts(&self) -> Vec<(&'static str, &str)> {
        let mut texts = Vec::new();
        match self {
            TxBody::RegisterAuthority(draft) => {
                texts.push(("name_zh", draft.name_zh.as_str()));
                texts.push(("name_en", draft.name_en.as_str()));
            }
            TxBody::UpdateAuthority {
                name_zh, name_en, ..
            } => {
                texts.extend(name_zh.as_deref().map(|name| ("name_zh", name)));
                texts.extend(name_en.as_deref().map(|name| ("name_en", name)));
            }
            TxBody::DefineLicenceType(draft) | TxBody::AmendLicenceType(draft) => {
                draft_texts(draft, &mut texts)
            }
            TxBody::RetireLicenceType { reason, .. } => texts.push(("reason", reason.as_str())),
            TxBody::CorrectEvent { reason, .. } | TxBody::TransferLicences { reason, .. } => {
                texts.push(("reason", reason.as_str()))
            }
            TxBody::IssueLicence {
                holder_name, face, ..
            } => {
                texts.push(("holder_name", holder_name.as_str()));
                face_texts(
                    face.iter().map(|(name, value)| (name, Some(value))),
                    &mut texts,
                );
            }
            TxBody::ChangeStatus { action, reason, .. } => {
                texts.push(("reason", reason.as_str()));
                match action {
                    StatusAction::PledgeRegistered {
                        secured_party,
                        reference,
                    } => {
                        texts.push(("secured_party", secured_party.as_str()));
                        texts.push(("reference", reference.as_str()));
                    }
                    StatusAction::PledgeReleased { reference } => {
                        texts.push(("reference", reference.as_str()))
                    }
                    _ => {}
                }
            }
            TxBody::AmendLicence {
                changes, reason, ..
            } => {
                texts.push(("reason", reason.as_str()));
                face_texts(
                    changes.iter().map(|(name, value)| (name, value.as_ref())),
                    &mut texts,
                );
            }
            TxBody::AttestRecognition { scope, .. } => texts.push(("scope", scope.as_str())),
            TxBody::WithdrawRecognition { reason, .. } | TxBody::FileObjection { reason, .. } => {
                texts.push(("reason", reason.as_str()))
            }
            TxBody::ResolveObjection { note, .. } => texts.push(("note", note.as_str())),
            TxBody::RotateKey { .. }
            | TxBody::GrantIssuance { .. }
            | TxBody::RevokeGrant { .. }
            | TxBody::ChangeValidators { .. }
            | TxBody::SetWriteQuota { .. }
            | TxBody::ReportKeyCompromise { .. } => {}
        }
        texts
    }

    /// The licence the record is about, if any.
    pub fn licence(&self) -> Option<(&TypeCode, &LicenceNumber)> {
        match self {
            TxBody::IssueLicence {
                type_code, number, ..
            }
            | TxBody::ChangeStatus {
                type_code, number, ..
            }
            | TxBody::AmendLicence {
                type_code, number, ..
            }
            | TxBody::FileObjection {
                type_code, number, ..
            }
            | TxBody::CorrectEvent {
                type_code, number, ..
            } => Some((type_code, number)),
            _ => None,
        }
    }
}

/// The texts of a catalogue entry: its names and its fields' names.
fn draft_texts<'d>(draft: &'d LicenceTypeDraft, texts: &mut Vec<(&'static str, &'d str)>) {
    texts.push(("name_zh", draft.name_zh.as_str()));
    texts.push(("name_en", draft.name_en.as_str()));
    for field in &draft.fields {
        texts.push(("field name", field.name.as_str()));
        texts.push(("field name_zh", field.name_zh.as_str()));
    }
}

/// The texts of face fields: each name, and each value given in clear.
fn face_texts<'f>(
    fields: impl Iterator<Item = (&'f String, Option<&'f FaceValue>)>,
    texts: &mut Vec<(&'static str, &'f str)>,
) {
    for (name, value) in fields {
        texts.push(("face field name", name.as_str()));
        if let Some(FaceValue::Clear(text)) = value {
            texts.push(("face field value", text.as_str()));
        }
    }
}

/// A transaction whose form is wrong, found before any rule runs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("transaction encoding: {0}")]
    Encoding(#[from] CodecError),
    #[error("`{field}` is {size_bytes} bytes long; the limit is {limit_bytes}")]
    TooLong {
        field: &'static str,
        size_bytes: usize,
        limit_bytes: usize,
    },
    #[error("`{field}` is empty")]
    Empty { field: &'static str },
    #[error("`{field}` has {count} entries; the limit is {limit}")]
    TooMany {
        field: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("`{field}` contains {found:?}, which is not allowed there ({allowed})")]
    BadCharacter {
        field: &'static str,
        found: char,
        allowed: &'static str,
    },
    #[error("the transaction carries no signature")]
    Unsigned,
    #[error("the first signature must be the signer's ({signer}), found {found}")]
    FirstSignatureNotSigner { signer: String, found: String },
    #[error("{0} signed twice")]
    DuplicateEndorsement(String),
    #[error("`{field}` lists {value} twice")]
    Duplicate { field: &'static str, value: String },
    #[error("`{field}` is {value}; it must be between {min} and {max}")]
    OutOfRange {
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("the default write quota cannot be unlimited: clear it (`quota: null`) instead")]
    UnlimitedDefaultQuota,
    #[error("the constraint on `{field}` {problem}")]
    BadConstraint {
        field: String,
        problem: &'static str,
    },
}

/// The characters of Unicode's general category Cf (format), as ranges, from the Unicode
/// Character Database 15.1. They draw nothing: a right-to-left override turns a name around
/// on the screen, a zero-width space or a byte-order mark makes two names that look the same
/// different records. No text of the ledger may hold one (ADR 0033: a table here rather than
/// a crate, since the category changes rarely and the core takes no dependency for it).
const FORMAT_CHARACTERS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// Whether `character` is of Unicode's general category Cf (format).
pub fn is_format_character(character: char) -> bool {
    FORMAT_CHARACTERS
        .binary_search_by(|(first, last)| {
            if *last < character {
                std::cmp::Ordering::Less
            } else if *first > character {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// The first format character (category Cf) in `text`, if any.
pub fn first_format_character(text: &str) -> Option<char> {
    text.chars()
        .find(|character| is_format_character(*character))
}

const IDENTIFIER_ALLOWED: &str = "lowercase letters a-z, digits 0-9 and '-'";
const NUMBER_ALLOWED: &str = "letters, digits and - / ( ) .";

fn check_text(field: &'static str, text: &str, limit_bytes: usize) -> Result<(), FormError> {
    if text.len() > limit_bytes {
        return Err(FormError::TooLong {
            field,
            size_bytes: text.len(),
            limit_bytes,
        });
    }
    if let Some(found) = text.chars().find(|c| c.is_control() && *c != '\n') {
        return Err(FormError::BadCharacter {
            field,
            found,
            allowed: "printable text",
        });
    }
    Ok(())
}

fn check_nonempty_text(
    field: &'static str,
    text: &str,
    limit_bytes: usize,
) -> Result<(), FormError> {
    if text.trim().is_empty() {
        return Err(FormError::Empty { field });
    }
    check_text(field, text, limit_bytes)
}

/// Authority ids and type codes: `[a-z0-9-]`, 1 to 64 bytes, not starting with `-`.
pub fn check_identifier(field: &'static str, text: &str) -> Result<(), FormError> {
    if text.is_empty() {
        return Err(FormError::Empty { field });
    }
    check_text(field, text, limit_bytes_identifier())?;
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if let Some(found) = text
        .chars()
        .find(|c| !allowed(*c))
        .or_else(|| text.chars().next().filter(|c| *c == '-'))
    {
        return Err(FormError::BadCharacter {
            field,
            found,
            allowed: IDENTIFIER_ALLOWED,
        });
    }
    Ok(())
}

/// Licence numbers: ASCII letters, digits and `- / ( ) .`, 1 to 64 bytes.
pub fn check_licence_number(text: &str) -> Result<(), FormError> {
    let field = "number";
    if text.is_empty() {
        return Err(FormError::Empty { field });
    }
    check_text(field, text, limit_bytes_identifier())?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-/().".contains(c);
    if let Some(found) = text.chars().find(|c| !allowed(*c)) {
        return Err(FormError::BadCharacter {
            field,
            found,
            allowed: NUMBER_ALLOWED,
        });
    }
    Ok(())
}

fn limit_bytes_identifier() -> usize {
    limits::IDENTIFIER_BYTES_MAX
}

fn check_count(field: &'static str, count: usize, limit: usize) -> Result<(), FormError> {
    if count > limit {
        return Err(FormError::TooMany {
            field,
            count,
            limit,
        });
    }
    Ok(())
}

fn check_unique<T: Ord + std::fmt::Debug>(
    field: &'static str,
    items: &[T],
) -> Result<(), FormError> {
    let mut sorted: Vec<&T> = items.iter().collect();
    sorted.sort();
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(FormError::Duplicate {
            field,
            value: format!("{:?}", pair[0]),
        });
    }
    Ok(())
}

fn check_face(face: &BTreeMap<String, FaceValue>) -> Result<(), FormError> {
    check_count("face", face.len(), limits::FIELDS_PER_TYPE_MAX)?;
    for (name, value) in face {
        check_nonempty_text("face field name", name, limits::NAME_BYTES_MAX)?;
        if let FaceValue::Clear(text) = value {
            check_text("face field value", text, limits::FIELD_VALUE_BYTES_MAX)?;
        }
    }
    Ok(())
}

fn check_status_action(action: &StatusAction) -> Result<(), FormError> {
    match action {
        StatusAction::PledgeRegistered {
            secured_party,
            reference,
        } => {
            check_nonempty_text("secured_party", secured_party, limits::NAME_BYTES_MAX)?;
            check_nonempty_text("reference", reference, limits::IDENTIFIER_BYTES_MAX)
        }
        StatusAction::PledgeReleased { reference } => {
            check_nonempty_text("reference", reference, limits::IDENTIFIER_BYTES_MAX)
        }
        _ => Ok(()),
    }
}

/// A type's constraints against its own schema (ADR 0033): every field they name exists and
/// has a kind they can apply to, each bound is well formed for its field's kind with its
/// minimum not above its maximum, a field is bound once, the holder's USCC is asked for only
/// of enterprise types, and an annual inspection period is within its limits.
fn check_constraints(draft: &LicenceTypeDraft) -> Result<(), FormError> {
    let constraints = &draft.constraints;
    let bad = |field: &str, problem| FormError::BadConstraint {
        field: field.to_owned(),
        problem,
    };
    let enterprise = draft.holder_kind == HolderKind::Enterprise;
    if constraints.number_is_holder_uscc && !enterprise {
        return Err(bad(
            "number",
            "asks for the holder's USCC of a type held by persons",
        ));
    }
    let schema = |name: &str| draft.fields.iter().find(|field| field.name == name);
    check_count(
        "constraints.holder_fields",
        constraints.holder_fields.len(),
        limits::FIELDS_PER_TYPE_MAX,
    )?;
    check_unique("constraints.holder_fields", &constraints.holder_fields)?;
    for name in &constraints.holder_fields {
        let Some(field) = schema(name) else {
            return Err(bad(name, "names no field of the type"));
        };
        if !enterprise || field.kind != FieldKind::Uscc || field.visibility != Visibility::Public {
            return Err(bad(
                name,
                "binds to the holder a field that is not a public USCC field of an enterprise type",
            ));
        }
    }
    check_count(
        "constraints.bounds",
        constraints.bounds.len(),
        limits::FIELDS_PER_TYPE_MAX,
    )?;
    let bounded: Vec<&String> = constraints
        .bounds
        .iter()
        .map(|bound| &bound.field)
        .collect();
    check_unique("constraints.bounds", &bounded)?;
    for bound in &constraints.bounds {
        let Some(field) = schema(&bound.field) else {
            return Err(bad(&bound.field, "names no field of the type"));
        };
        let comparable = matches!(
            field.kind,
            FieldKind::Integer | FieldKind::Decimal | FieldKind::Date
        );
        if !comparable || field.visibility != Visibility::Public {
            return Err(bad(
                &bound.field,
                "bounds a field that is not a public integer, decimal or date",
            ));
        }
        if bound.not_after_block_date && field.kind != FieldKind::Date {
            return Err(bad(
                &bound.field,
                "keeps a field that is not a date from the future",
            ));
        }
        for limit in [&bound.min, &bound.max].into_iter().flatten() {
            check_text("constraints.bounds", limit, limits::FIELD_VALUE_BYTES_MAX)?;
            if compare_field_values(field.kind, limit, limit).is_none() {
                return Err(bad(
                    &bound.field,
                    "has a bound not written as the field's values are",
                ));
            }
        }
        if let (Some(min), Some(max)) = (&bound.min, &bound.max)
            && compare_field_values(field.kind, min, max) == Some(std::cmp::Ordering::Greater)
        {
            return Err(bad(&bound.field, "has a minimum above its maximum"));
        }
    }
    if let Some(days) = constraints.annual_inspection_days {
        check_range(
            "constraints.annual_inspection_days",
            u64::from(days),
            limits::ANNUAL_INSPECTION_DAYS_MIN,
            limits::ANNUAL_INSPECTION_DAYS_MAX,
        )?;
    }
    Ok(())
}

impl TxBody {
    /// Field sizes, counts and character sets; nothing that needs the state.
    pub fn check_form(&self) -> Result<(), FormError> {
        match self {
            TxBody::RegisterAuthority(draft) => {
                check_identifier("id", draft.id.as_str())?;
                check_nonempty_text("name_zh", &draft.name_zh, limits::NAME_BYTES_MAX)?;
                check_nonempty_text("name_en", &draft.name_en, limits::NAME_BYTES_MAX)?;
                check_unique("roles", &draft.roles)
            }
            TxBody::UpdateAuthority {
                id,
                name_zh,
                name_en,
                roles,
            } => {
                check_identifier("id", id.as_str())?;
                if let Some(name) = name_zh {
                    check_nonempty_text("name_zh", name, limits::NAME_BYTES_MAX)?;
                }
                if let Some(name) = name_en {
                    check_nonempty_text("name_en", name, limits::NAME_BYTES_MAX)?;
                }
                if let Some(roles) = roles {
                    check_unique("roles", roles)?;
                }
                Ok(())
            }
            TxBody::RotateKey { authority, .. } | TxBody::ReportKeyCompromise { authority, .. } => {
                check_identifier("authority", authority.as_str())
            }
            TxBody::RetireLicenceType { type_code, reason } => {
                check_identifier("type_code", type_code.as_str())?;
                check_nonempty_text("reason", reason, limits::TEXT_BYTES_MAX)
            }
            TxBody::DefineLicenceType(draft) | TxBody::AmendLicenceType(draft) => {
                check_identifier("code", draft.code.as_str())?;
                check_nonempty_text("name_zh", &draft.name_zh, limits::NAME_BYTES_MAX)?;
                check_nonempty_text("name_en", &draft.name_en, limits::NAME_BYTES_MAX)?;
                check_count("fields", draft.fields.len(), limits::FIELDS_PER_TYPE_MAX)?;
                for field in &draft.fields {
                    check_nonempty_text("field name", &field.name, limits::NAME_BYTES_MAX)?;
                    check_nonempty_text("field name_zh", &field.name_zh, limits::NAME_BYTES_MAX)?;
                }
                let names: Vec<&String> = draft.fields.iter().map(|field| &field.name).collect();
                check_unique("fields", &names)?;
                let actions: Vec<&str> = draft
                    .supervisor_actions
                    .iter()
                    .map(StatusAction::name)
                    .collect();
                check_unique("supervisor_actions", &actions)?;
                check_constraints(draft)
            }
            TxBody::GrantIssuance {
                authority,
                type_code,
                ..
            }
            | TxBody::RevokeGrant {
                authority,
                type_code,
                ..
            } => {
                check_identifier("authority", authority.as_str())?;
                check_identifier("type_code", type_code.as_str())
            }
            TxBody::IssueLicence {
                type_code,
                number,
                holder_name,
                face,
                ..
            } => {
                check_identifier("type_code", type_code.as_str())?;
                check_licence_number(number.as_str())?;
                check_nonempty_text("holder_name", holder_name, limits::NAME_BYTES_MAX)?;
                check_face(face)
            }
            TxBody::ChangeStatus {
                type_code,
                number,
                action,
                reason,
                ..
            } => {
                check_identifier("type_code", type_code.as_str())?;
                check_licence_number(number.as_str())?;
                check_status_action(action)?;
                check_nonempty_text("reason", reason, limits::TEXT_BYTES_MAX)
            }
            TxBody::AmendLicence {
                type_code,
                number,
                changes,
                reason,
                ..
            } => {
                check_identifier("type_code", type_code.as_str())?;
                check_licence_number(number.as_str())?;
                if changes.is_empty() {
                    return Err(FormError::Empty { field: "changes" });
                }
                check_count("changes", changes.len(), limits::FIELDS_PER_TYPE_MAX)?;
                for (name, value) in changes {
                    check_nonempty_text("face field name", name, limits::NAME_BYTES_MAX)?;
                    if let Some(FaceValue::Clear(text)) = value {
                        check_text("face field value", text, limits::FIELD_VALUE_BYTES_MAX)?;
                    }
                }
                check_nonempty_text("reason", reason, limits::TEXT_BYTES_MAX)
            }
            TxBody::AttestRecognition {
                type_codes,
                issued_by,
                scope,
                ..
            } => {
                if type_codes.is_empty() {
                    return Err(FormError::Empty {
                        field: "type_codes",
                    });
                }
                check_count(
                    "type_codes",
                    type_codes.len(),
                    limits::TYPES_PER_RECOGNITION_MAX,
                )?;
                for code in type_codes {
                    check_identifier("type_codes", code.as_str())?;
                }
                check_unique("type_codes", type_codes)?;
                if let IssuedBy::Authority(authority) = issued_by {
                    check_identifier("issued_by", authority.as_str())?;
                }
                check_nonempty_text("scope", scope, limits::TEXT_BYTES_MAX)
            }
            TxBody::WithdrawRecognition { reason, .. } => {
                check_nonempty_text("reason", reason, limits::TEXT_BYTES_MAX)
            }
            TxBody::FileObjection {
                type_code,
                number,
                reason,
                ..
            } => {
                check_identifier("type_code", type_code.as_str())?;
                check_licence_number(number.as_str())?;
                check_nonempty_text("reason", reason, limits::TEXT_BYTES_MAX)
            }
            TxBody::ResolveObjection { note, .. } => {
                check_nonempty_text("note", note, limits::TEXT_BYTES_MAX)
            }
            TxBody::ChangeValidators { changes, .. } => {
                if changes.is_empty() {
                    return Err(FormError::Empty { field: "changes" });
                }
                check_count("changes", changes.len(), limits::NODE_CHANGES_PER_TX_MAX)?;
                let keys: Vec<&PublicKey> = changes
                    .iter()
                    .map(|change| match change {
                        NodeChange::Set(entry) => &entry.key,
                        NodeChange::Remove(key) => key,
                    })
                    .collect();
                check_unique("changes", &keys)?;
                for change in changes {
                    if let NodeChange::Set(entry) = change {
                        check_identifier("authority", entry.authority.as_str())?;
                    }
                }
                Ok(())
            }
            TxBody::SetWriteQuota { scope, quota } => check_quota_form(scope, quota.as_ref()),
            TxBody::CorrectEvent {
                type_code,
                number,
                reason,
                ..
            } => {
                check_identifier("type_code", type_code.as_str())?;
                check_licence_number(number.as_str())?;
                check_nonempty_text("reason", reason, limits::TEXT_BYTES_MAX)
            }
            TxBody::TransferLicences {
                from,
                to,
                type_code,
                numbers,
                reason,
            } => {
                check_identifier("from", from.as_str())?;
                check_identifier("to", to.as_str())?;
                check_identifier("type_code", type_code.as_str())?;
                check_count("numbers", numbers.len(), limits::TRANSFER_LICENCES_MAX)?;
                if numbers.is_empty() {
                    return Err(FormError::Empty { field: "numbers" });
                }
                for number in numbers {
                    check_licence_number(number.as_str())?;
                }
                let keys: Vec<&str> = numbers.iter().map(LicenceNumber::as_str).collect();
                check_unique("numbers", &keys)?;
                check_nonempty_text("reason", reason, limits::TEXT_BYTES_MAX)
            }
        }
    }
}

impl TxPayload {
    /// The bytes every endorsement signs.
    pub fn signing_message(&self) -> Result<Vec<u8>, crypto::SignatureError> {
        signing_message_of(&self.chain_id, &codec::to_canonical(self))
    }
}

/// The bytes every endorsement signs, from the payload's chain id and canonical bytes (so
/// that a caller who has encoded the payload does not encode it again).
pub fn signing_message_of(
    chain_id: &str,
    payload_bytes: &[u8],
) -> Result<Vec<u8>, crypto::SignatureError> {
    crypto::signing_message(crypto::TX_DOMAIN, chain_id, payload_bytes)
}

/// A transaction's canonical bytes, encoded once, with where its payload's bytes end: the
/// canonical encoding of a struct is its fields' encodings one after the other, so the
/// payload's canonical bytes (what endorsements sign) are a prefix of the transaction's
/// (what its id hashes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedTransaction {
    bytes: Vec<u8>,
    payload_length_bytes: usize,
}

impl EncodedTransaction {
    /// The transaction's canonical bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The payload's canonical bytes.
    pub fn payload_bytes(&self) -> &[u8] {
        self.bytes.get(..self.payload_length_bytes).unwrap_or(&[])
    }

    /// The transaction id under the chain's suite.
    pub fn id(&self, suite: Suite) -> Hash32 {
        tx_id_of_bytes(suite, &self.bytes)
    }

    /// Gives up the bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl Transaction {
    /// Signs `payload` with the given authorities' keys; the first is the signer's.
    pub fn sign(
        suite: Suite,
        payload: TxPayload,
        signers: &[(&AuthorityId, &SecretKey)],
    ) -> Result<Self, crypto::SignatureError> {
        let message = payload.signing_message()?;
        let signatures = signers
            .iter()
            .map(|(authority, key)| Endorsement {
                authority: (*authority).clone(),
                signature: suite.sign(key, &message),
            })
            .collect();
        Ok(Transaction {
            payload,
            signatures,
        })
    }

    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::to_canonical(self)
    }

    /// The canonical bytes, knowing where the payload's end (see [`EncodedTransaction`]).
    pub fn encode(&self) -> EncodedTransaction {
        let mut bytes = codec::to_canonical(&self.payload);
        let payload_length_bytes = bytes.len();
        codec::append_canonical(&mut bytes, &self.signatures);
        debug_assert_eq!(bytes, codec::to_canonical(self));
        EncodedTransaction {
            bytes,
            payload_length_bytes,
        }
    }

    /// The id: the hash of the canonical bytes under the chain's suite.
    pub fn id(&self, suite: Suite) -> Hash32 {
        tx_id_of_bytes(suite, &self.to_bytes())
    }

    /// Decodes canonical bytes: the size is checked first, then the encoding, then the form.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormError> {
        let transaction: Transaction = codec::from_canonical(bytes, limits::TX_BYTES_MAX)?;
        transaction.check_form()?;
        Ok(transaction)
    }

    /// Sizes, counts and character sets of every field; the signer's signature first and
    /// no authority twice. A transaction built in memory (from JSON) must pass this and
    /// [`limits::TX_BYTES_MAX`] too, which [`Transaction::check_size_and_form`] does.
    pub fn check_form(&self) -> Result<(), FormError> {
        let payload = &self.payload;
        check_nonempty_text("chain_id", &payload.chain_id, limits::CHAIN_ID_BYTES_MAX)?;
        check_identifier("signer", payload.signer.as_str())?;
        let Some(first) = self.signatures.first() else {
            return Err(FormError::Unsigned);
        };
        if first.authority != payload.signer {
            return Err(FormError::FirstSignatureNotSigner {
                signer: payload.signer.to_string(),
                found: first.authority.to_string(),
            });
        }
        check_count(
            "signatures",
            self.signatures.len(),
            limits::SIGNATURES_PER_TX_MAX,
        )?;
        let mut authorities: Vec<&AuthorityId> =
            self.signatures.iter().map(|e| &e.authority).collect();
        authorities.sort();
        if let Some(pair) = authorities.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(FormError::DuplicateEndorsement(pair[0].to_string()));
        }
        for endorsement in &self.signatures {
            check_identifier("signatures.authority", endorsement.authority.as_str())?;
        }
        payload.body.check_form()
    }

    /// For transactions that arrive as JSON: the canonical size limit, then the form.
    pub fn check_size_and_form(&self) -> Result<Vec<u8>, FormError> {
        let bytes = self.to_bytes();
        if bytes.len() > limits::TX_BYTES_MAX {
            return Err(FormError::Encoding(CodecError::TooLarge {
                size_bytes: bytes.len(),
                limit_bytes: limits::TX_BYTES_MAX,
            }));
        }
        self.check_form()?;
        Ok(bytes)
    }
}

/// The id of a transaction from its canonical bytes, under the chain's suite.
pub fn tx_id_of_bytes(suite: Suite, bytes: &[u8]) -> Hash32 {
    suite.digest(bytes)
}

/// The form of a quota: its bounds ([`limits::WRITE_QUOTA_TRANSACTIONS_MIN`] to
/// [`limits::WRITE_QUOTA_TRANSACTIONS_MAX`], [`limits::WRITE_QUOTA_WINDOW_BLOCKS_MIN`] to
/// [`limits::WRITE_QUOTA_WINDOW_BLOCKS_MAX`]), and no unlimited default (which would be a
/// second spelling of no default at all).
pub fn check_quota_form(scope: &QuotaScope, quota: Option<&WriteQuota>) -> Result<(), FormError> {
    if let QuotaScope::Authority(authority) = scope {
        check_identifier("scope", authority.as_str())?;
    }
    match quota {
        None => Ok(()),
        Some(WriteQuota::Unlimited) => match scope {
            QuotaScope::Default => Err(FormError::UnlimitedDefaultQuota),
            QuotaScope::Authority(_) => Ok(()),
        },
        Some(WriteQuota::Limited {
            max_transactions,
            window_blocks,
        }) => {
            check_range(
                "max_transactions",
                *max_transactions,
                limits::WRITE_QUOTA_TRANSACTIONS_MIN,
                limits::WRITE_QUOTA_TRANSACTIONS_MAX,
            )?;
            check_range(
                "window_blocks",
                *window_blocks,
                limits::WRITE_QUOTA_WINDOW_BLOCKS_MIN,
                limits::WRITE_QUOTA_WINDOW_BLOCKS_MAX,
            )
        }
    }
}

fn check_range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), FormError> {
    if value < min || value > max {
        return Err(FormError::OutOfRange {
            field,
            value,
            min,
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod text_tests {
    use super::{FORMAT_CHARACTERS, first_format_character, is_format_character};

    #[test]
    fn the_format_characters_are_category_cf_and_nothing_else() {
        // Sorted and apart, as the binary search needs.
        for pair in FORMAT_CHARACTERS.windows(2) {
            assert!(pair[0].0 <= pair[0].1 && pair[0].1 < pair[1].0, "{pair:?}");
        }
        for hidden in [
            '\u{00AD}',
            '\u{061C}',
            '\u{200B}',
            '\u{200D}',
            '\u{200F}',
            '\u{202A}',
            '\u{202E}',
            '\u{2060}',
            '\u{2064}',
            '\u{2066}',
            '\u{206F}',
            '\u{FEFF}',
            '\u{FFF9}',
            '\u{FFFB}',
            '\u{E0001}',
            '\u{E007F}',
        ] {
            assert!(is_format_character(hidden), "{:04X}", u32::from(hidden));
        }
        for shown in [
            'A',
            'z',
            '0',
            ' ',
            '-',
            '.',
            '青',
            '岛',
            '\u{00AC}',
            '\u{00AE}',
            '\u{200A}',
            '\u{2010}',
            '\u{2065}',
            '\u{3000}',
            '\u{FFFC}',
            '\u{FEFE}',
            '\u{E0080}',
        ] {
            assert!(!is_format_character(shown), "{:04X}", u32::from(shown));
        }
        assert_eq!(
            first_format_character("青岛\u{202E}公司\u{200B}"),
            Some('\u{202E}')
        );
        assert_eq!(first_format_character("青岛市行政审批服务局"), None);
    }
}

#[cfg(test)]
mod constraint_tests {
    use std::cmp::Ordering;

    use super::{FormError, TxBody};
    use crate::records::{FieldBound, FieldKind, compare_field_values};
    use crate::testkit;

    fn bound(field: &str, min: Option<&str>, max: Option<&str>, today: bool) -> FieldBound {
        FieldBound {
            field: field.into(),
            min: min.map(str::to_owned),
            max: max.map(str::to_owned),
            not_after_block_date: today,
        }
    }

    fn problem(change: impl FnOnce(&mut crate::tx::LicenceTypeDraft)) -> String {
        let mut draft = testkit::business_licence_type();
        change(&mut draft);
        match TxBody::DefineLicenceType(draft).check_form() {
            Err(FormError::BadConstraint { field, problem }) => format!("{field}: {problem}"),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn the_fixture_constraints_pass_and_bad_ones_name_their_field() {
        assert_eq!(
            TxBody::DefineLicenceType(testkit::business_licence_type()).check_form(),
            Ok(())
        );
        assert_eq!(
            problem(|draft| draft
                .constraints
                .bounds
                .push(bound("nowhere", None, None, false))),
            "nowhere: names no field of the type"
        );
        assert_eq!(
            problem(|draft| draft.constraints.bounds = vec![bound("name", Some("0"), None, false)]),
            "name: bounds a field that is not a public integer, decimal or date"
        );
        assert_eq!(
            problem(|draft| {
                draft.constraints.bounds = vec![bound("registered_capital", None, None, true)]
            }),
            "registered_capital: keeps a field that is not a date from the future"
        );
        assert_eq!(
            problem(|draft| {
                draft.constraints.bounds =
                    vec![bound("established", Some("1949-10-32"), None, false)]
            }),
            "established: has a bound not written as the field's values are"
        );
        assert_eq!(
            problem(|draft| {
                draft.constraints.bounds =
                    vec![bound("registered_capital", Some("10"), Some("9.99"), false)]
            }),
            "registered_capital: has a minimum above its maximum"
        );
        assert_eq!(
            problem(|draft| draft.constraints.holder_fields = vec!["name".into()]),
            "name: binds to the holder a field that is not a public USCC field of an enterprise type"
        );
        let mut persons = testkit::qualification_type();
        persons.constraints.number_is_holder_uscc = true;
        assert!(matches!(
            TxBody::DefineLicenceType(persons).check_form(),
            Err(FormError::BadConstraint { .. })
        ));
        let mut inspected = testkit::business_licence_type();
        inspected.constraints.annual_inspection_days = Some(0);
        assert!(matches!(
            TxBody::DefineLicenceType(inspected).check_form(),
            Err(FormError::OutOfRange { .. })
        ));
    }

    #[test]
    fn numbers_and_dates_compare_by_their_value() {
        let decimal = |a, b| compare_field_values(FieldKind::Decimal, a, b);
        assert_eq!(decimal("1.50", "1.5"), Some(Ordering::Equal));
        assert_eq!(decimal("-0", "0.00"), Some(Ordering::Equal));
        assert_eq!(decimal("-0.01", "0"), Some(Ordering::Less));
        assert_eq!(decimal("-2", "-10"), Some(Ordering::Greater));
        assert_eq!(decimal("010", "9.999"), Some(Ordering::Greater));
        assert_eq!(decimal("1.", "1"), None);
        assert_eq!(
            compare_field_values(FieldKind::Integer, "1.5", "1"),
            None,
            "an integer has no fraction"
        );
        let date = |a, b| compare_field_values(FieldKind::Date, a, b);
        assert_eq!(date("1949-10-01", "2026-01-01"), Some(Ordering::Less));
        assert_eq!(date("2026-02-30", "2026-01-01"), None);
        assert_eq!(compare_field_values(FieldKind::Text, "a", "b"), None);
    }
}

#[cfg(test)]
mod encoding_tests {
    use crate::testkit::Fixture;

    #[test]
    fn one_encoding_gives_the_id_and_the_signed_payload() {
        let mut fixture = Fixture::new();
        for transaction in [
            fixture.issue_business_licence("qd-approval", "370200", 7),
            fixture.governance(
                crate::tx::TxBody::RevokeGrant {
                    authority: "qd-approval".into(),
                    type_code: "business-licence".into(),
                    region: crate::testkit::region("370200"),
                },
                3,
            ),
        ] {
            let encoded = transaction.encode();
            assert_eq!(encoded.bytes(), transaction.to_bytes().as_slice());
            assert_eq!(
                encoded.id(crate::testkit::SUITE),
                transaction.id(crate::testkit::SUITE)
            );
            assert_eq!(
                super::signing_message_of(&transaction.payload.chain_id, encoded.payload_bytes()),
                transaction.payload.signing_message()
            );
        }
    }
}

/// Whole transactions of every body kind, with their endorsements, through the canonical
/// encoding: decoding gives the transaction back, encoding it again gives the same bytes, and
/// bytes that are not the canonical encoding of a transaction are refused.
#[cfg(test)]
mod canonical_properties {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;
    use crate::records::{FieldKind, NodeEntry, Visibility};

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    fn identifier() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9-]{0,15}"
    }

    fn authority() -> impl Strategy<Value = AuthorityId> {
        identifier().prop_map(AuthorityId)
    }

    fn type_code() -> impl Strategy<Value = TypeCode> {
        identifier().prop_map(TypeCode)
    }

    fn number() -> impl Strategy<Value = LicenceNumber> {
        "[A-Za-z0-9][A-Za-z0-9/().-]{0,20}".prop_map(LicenceNumber)
    }

    /// Non-empty printable text, Chinese included.
    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z\u{4e00}-\u{4e2f}][a-zA-Z0-9 \u{4e00}-\u{4e2f},.]{0,24}"
    }

    fn region() -> impl Strategy<Value = RegionCode> {
        prop_oneof![
            Just(RegionCode::NATIONAL),
            "[1-9][0-9]{5}".prop_filter_map("six digits", |code| RegionCode::parse(&code).ok()),
        ]
    }

    fn uscc() -> impl Strategy<Value = Uscc> {
        "[0-9]{2}[1-9][0-9]{5}[0-9A-H]{9}"
            .prop_filter_map("a USCC body", |body| Uscc::with_check(&body).ok())
    }

    fn hash() -> impl Strategy<Value = Hash32> {
        any::<[u8; 32]>().prop_map(Hash32)
    }

    fn key() -> impl Strategy<Value = PublicKey> {
        any::<[u8; 32]>().prop_map(PublicKey)
    }

    fn time() -> impl Strategy<Value = TimeMs> {
        prop_oneof![0u64..4_000_000_000_000, any::<u64>()]
    }

    fn roles() -> impl Strategy<Value = Vec<Role>> {
        proptest::sample::subsequence(
            vec![
                Role::Governor,
                Role::Issuer,
                Role::Supervisor,
                Role::Recognizer,
            ],
            0..=4,
        )
    }

    fn status_action() -> impl Strategy<Value = StatusAction> {
        prop_oneof![
            Just(StatusAction::Suspend),
            Just(StatusAction::Reinstate),
            Just(StatusAction::Revoke),
            Just(StatusAction::Cancel),
            Just(StatusAction::Abolish),
            proptest::option::of(time())
                .prop_map(|valid_until| StatusAction::Renew { valid_until }),
            Just(StatusAction::AnnualInspection),
            (text(), identifier()).prop_map(|(secured_party, reference)| {
                StatusAction::PledgeRegistered {
                    secured_party,
                    reference,
                }
            }),
            identifier().prop_map(|reference| StatusAction::PledgeReleased { reference }),
        ]
    }

    fn face_value() -> impl Strategy<Value = FaceValue> {
        prop_oneof![
            "[a-zA-Z0-9 \u{4e00}-\u{4e2f}]{0,30}".prop_map(FaceValue::Clear),
            hash().prop_map(FaceValue::Committed),
        ]
    }

    fn holder() -> impl Strategy<Value = Holder> {
        prop_oneof![
            uscc().prop_map(Holder::Enterprise),
            hash().prop_map(Holder::Person)
        ]
    }

    fn field_schema() -> impl Strategy<Value = FieldSchema> {
        (
            text(),
            proptest::sample::select(vec![
                FieldKind::Text,
                FieldKind::Date,
                FieldKind::Integer,
                FieldKind::Decimal,
                FieldKind::Uscc,
                FieldKind::Region,
            ]),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(name_zh, kind, required, private)| FieldSchema {
                name: String::new(),
                name_zh,
                kind,
                required,
                visibility: if private {
                    Visibility::Private
                } else {
                    Visibility::Public
                },
            })
    }

    fn licence_type_draft() -> impl Strategy<Value = LicenceTypeDraft> {
        (
            type_code(),
            text(),
            text(),
            any::<bool>(),
            proptest::collection::btree_map(identifier(), field_schema(), 0..5),
            proptest::option::of(any::<u32>()),
            proptest::collection::vec(status_action(), 0..5),
        )
            .prop_map(
                |(code, name_zh, name_en, enterprise, fields, default_validity_days, actions)| {
                    let mut seen = BTreeSet::new();
                    LicenceTypeDraft {
                        code,
                        name_zh,
                        name_en,
                        holder_kind: if enterprise {
                            HolderKind::Enterprise
                        } else {
                            HolderKind::Person
                        },
                        fields: fields
                            .into_iter()
                            .map(|(name, schema)| FieldSchema { name, ..schema })
                            .collect(),
                        default_validity_days,
                        supervisor_actions: actions
                            .into_iter()
                            .filter(|action| seen.insert(action.name()))
                            .collect(),
                        constraints: TypeConstraints::default(),
                    }
                },
            )
    }

    fn issue_licence() -> impl Strategy<Value = TxBody> {
        (
            (type_code(), number(), holder(), text(), region()),
            (
                proptest::collection::btree_map(identifier(), face_value(), 0..6),
                time(),
                prop_oneof![
                    Just(ValidUntil::TypeDefault),
                    time().prop_map(ValidUntil::At),
                    Just(ValidUntil::LongTerm),
                ],
                hash(),
            ),
        )
            .prop_map(
                |(
                    (type_code, number, holder, holder_name, region),
                    (face, valid_from, valid_until, document_hash),
                )| TxBody::IssueLicence {
                    type_code,
                    number,
                    holder,
                    holder_name,
                    region,
                    face,
                    valid_from,
                    valid_until,
                    document_hash,
                },
            )
    }

    fn node_changes() -> impl Strategy<Value = Vec<NodeChange>> {
        proptest::collection::btree_map(
            any::<[u8; 32]>(),
            proptest::option::of((authority(), any::<u64>())),
            1..5,
        )
        .prop_map(|changes| {
            changes
                .into_iter()
                .map(|(key, set)| match set {
                    Some((authority, power)) => NodeChange::Set(NodeEntry {
                        key: PublicKey(key),
                        authority,
                        power,
                    }),
                    None => NodeChange::Remove(PublicKey(key)),
                })
                .collect()
        })
    }

    /// A write quota within its bounds, of one authority or the default.
    fn write_quota() -> impl Strategy<Value = TxBody> {
        (
            proptest::option::of(authority()),
            limits::WRITE_QUOTA_TRANSACTIONS_MIN..=limits::WRITE_QUOTA_TRANSACTIONS_MAX,
            limits::WRITE_QUOTA_WINDOW_BLOCKS_MIN..=limits::WRITE_QUOTA_WINDOW_BLOCKS_MAX,
            0u8..3,
        )
            .prop_map(|(authority, max_transactions, window_blocks, choice)| {
                let scope = authority.map_or(QuotaScope::Default, QuotaScope::Authority);
                let quota = match (choice, &scope) {
                    (0, _) => None,
                    (1, QuotaScope::Authority(_)) => Some(WriteQuota::Unlimited),
                    _ => Some(WriteQuota::Limited {
                        max_transactions,
                        window_blocks,
                    }),
                };
                TxBody::SetWriteQuota { scope, quota }
            })
    }

    /// Every kind of body.
    fn body() -> impl Strategy<Value = TxBody> {
        prop_oneof![
            (
                authority(),
                text(),
                text(),
                region(),
                uscc(),
                roles(),
                key()
            )
                .prop_map(|(id, name_zh, name_en, region, uscc, roles, key)| {
                    TxBody::RegisterAuthority(AuthorityDraft {
                        id,
                        name_zh,
                        name_en,
                        region,
                        uscc,
                        roles,
                        key,
                    })
                }),
            (
                authority(),
                proptest::option::of(text()),
                proptest::option::of(text()),
                proptest::option::of(roles())
            )
                .prop_map(|(id, name_zh, name_en, roles)| TxBody::UpdateAuthority {
                    id,
                    name_zh,
                    name_en,
                    roles,
                }),
            (authority(), key(), any::<u64>()).prop_map(
                |(authority, new_key, effective_height)| TxBody::RotateKey {
                    authority,
                    new_key,
                    effective_height,
                }
            ),
            licence_type_draft().prop_map(TxBody::DefineLicenceType),
            licence_type_draft().prop_map(TxBody::AmendLicenceType),
            (type_code(), text())
                .prop_map(|(type_code, reason)| TxBody::RetireLicenceType { type_code, reason }),
            (authority(), type_code(), region()).prop_map(|(authority, type_code, region)| {
                TxBody::GrantIssuance {
                    authority,
                    type_code,
                    region,
                }
            }),
            (authority(), type_code(), region()).prop_map(|(authority, type_code, region)| {
                TxBody::RevokeGrant {
                    authority,
                    type_code,
                    region,
                }
            }),
            issue_licence(),
            (type_code(), number(), status_action(), time(), text()).prop_map(
                |(type_code, number, action, effective_at, reason)| TxBody::ChangeStatus {
                    type_code,
                    number,
                    action,
                    effective_at,
                    reason,
                }
            ),
            (
                type_code(),
                number(),
                proptest::collection::btree_map(
                    identifier(),
                    proptest::option::of(face_value()),
                    1..5
                ),
                time(),
                text()
            )
                .prop_map(|(type_code, number, changes, effective_at, reason)| {
                    TxBody::AmendLicence {
                        type_code,
                        number,
                        changes,
                        effective_at,
                        reason,
                    }
                }),
            (
                region(),
                proptest::collection::btree_set(type_code(), 1..5),
                prop_oneof![
                    region().prop_map(IssuedBy::Region),
                    authority().prop_map(IssuedBy::Authority)
                ],
                text(),
                time(),
                proptest::option::of(time())
            )
                .prop_map(
                    |(
                        recognizing_region,
                        type_codes,
                        issued_by,
                        scope,
                        valid_from,
                        valid_until,
                    )| {
                        TxBody::AttestRecognition {
                            recognizing_region,
                            type_codes: type_codes.into_iter().collect(),
                            issued_by,
                            scope,
                            valid_from,
                            valid_until,
                        }
                    }
                ),
            (hash(), time(), text()).prop_map(|(id, effective_at, reason)| {
                TxBody::WithdrawRecognition {
                    id,
                    effective_at,
                    reason,
                }
            }),
            (type_code(), number(), text(), proptest::option::of(hash())).prop_map(
                |(type_code, number, reason, recognition)| TxBody::FileObjection {
                    type_code,
                    number,
                    reason,
                    recognition,
                }
            ),
            (
                hash(),
                any::<bool>(),
                text(),
                proptest::option::of(any::<u32>())
            )
                .prop_map(|(id, upheld, note, follow_up)| TxBody::ResolveObjection {
                    id,
                    outcome: if upheld {
                        ObjectionOutcome::Upheld
                    } else {
                        ObjectionOutcome::Dismissed
                    },
                    note,
                    follow_up,
                }),
            (node_changes(), any::<u64>()).prop_map(|(changes, effective_height)| {
                TxBody::ChangeValidators {
                    changes,
                    effective_height,
                }
            }),
            write_quota(),
            (
                type_code(),
                number(),
                any::<u32>(),
                proptest::option::of(time()),
                text()
            )
                .prop_map(|(type_code, number, event, retime, reason)| {
                    TxBody::CorrectEvent {
                        type_code,
                        number,
                        event,
                        action: retime.map_or(CorrectionAction::Void, |effective_at| {
                            CorrectionAction::Retime { effective_at }
                        }),
                        reason,
                    }
                }),
        ]
    }

    /// A signed-looking transaction: the signer's endorsement first, then up to four more
    /// from other authorities (the signatures are arbitrary bytes: encoding does not check
    /// them).
    fn transaction() -> impl Strategy<Value = Transaction> {
        (
            "[a-z][a-z0-9-]{0,20}",
            authority(),
            any::<u64>(),
            time(),
            body(),
            proptest::collection::btree_map(authority(), any::<[u8; 32]>(), 0..5),
            any::<[u8; 32]>(),
        )
            .prop_map(
                |(chain_id, signer, nonce, created_at, body, others, half)| {
                    let signature = |seed: [u8; 32]| {
                        let mut bytes = [0u8; 64];
                        bytes[..32].copy_from_slice(&seed);
                        bytes[32..].copy_from_slice(&half);
                        crate::crypto::Signature(bytes)
                    };
                    let mut signatures = vec![Endorsement {
                        authority: signer.clone(),
                        signature: signature(half),
                    }];
                    signatures.extend(others.into_iter().filter(|(id, _)| *id != signer).map(
                        |(authority, seed)| Endorsement {
                            authority,
                            signature: signature(seed),
                        },
                    ));
                    Transaction {
                        payload: TxPayload {
                            chain_id,
                            signer,
                            nonce,
                            created_at,
                            body,
                        },
                        signatures,
                    }
                },
            )
    }

    /// The bytes of an unsigned varint of `value` made one byte longer than it must be (a
    /// continuation bit on the last byte, then a zero byte): the same number, another spelling.
    fn overlong_varint(bytes: &[u8]) -> Option<(usize, Vec<u8>)> {
        let length = bytes.iter().position(|byte| byte & 0x80 == 0)? + 1;
        let mut longer = bytes[..length].to_vec();
        *longer.last_mut()? |= 0x80;
        longer.push(0);
        Some((length, longer))
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn every_transaction_round_trips_and_re_encodes_byte_for_byte(
            transaction in transaction()
        ) {
            prop_assert_eq!(transaction.check_form(), Ok(()));
            let bytes = transaction.to_bytes();
            let decoded = Transaction::decode(&bytes).unwrap();
            prop_assert_eq!(&decoded, &transaction);
            prop_assert_eq!(decoded.to_bytes(), bytes.clone());
            let encoded = decoded.encode();
            prop_assert_eq!(encoded.bytes(), bytes.as_slice());
            prop_assert_eq!(encoded.id(crate::testkit::SUITE), transaction.id(crate::testkit::SUITE));
            let payload_bytes = codec::to_canonical(&transaction.payload);
            prop_assert_eq!(encoded.payload_bytes(), payload_bytes.as_slice());
            // The JSON form (the API's) carries the same transaction.
            let json = serde_json::to_string(&transaction).unwrap();
            let from_json: Transaction = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(from_json.to_bytes(), bytes);
        }

        #[test]
        fn trailing_bytes_and_truncations_are_refused(
            transaction in transaction(),
            extra in proptest::collection::vec(any::<u8>(), 1..4),
            cut in any::<proptest::sample::Index>(),
        ) {
            let bytes = transaction.to_bytes();
            let mut longer = bytes.clone();
            longer.extend_from_slice(&extra);
            prop_assert_eq!(
                Transaction::decode(&longer),
                Err(FormError::Encoding(CodecError::TrailingBytes(extra.len())))
            );
            let shorter = &bytes[..cut.index(bytes.len())];
            prop_assert!(Transaction::decode(shorter).is_err());
        }

        #[test]
        fn over_long_lengths_and_integers_are_refused(transaction in transaction()) {
            let bytes = transaction.to_bytes();
            // The chain id's length prefix comes first, the nonce after the chain id and the
            // signer (each a length and its bytes).
            let chain_id_end = codec::to_canonical(&transaction.payload.chain_id).len();
            let nonce_start =
                chain_id_end + codec::to_canonical(&transaction.payload.signer).len();
            for start in [0, nonce_start] {
                let (length, longer) = overlong_varint(&bytes[start..]).unwrap();
                let mut spelled = bytes[..start].to_vec();
                spelled.extend_from_slice(&longer);
                spelled.extend_from_slice(&bytes[start + length..]);
                let decoded = Transaction::decode(&spelled);
                prop_assert!(
                    matches!(
                        decoded,
                        Err(FormError::Encoding(
                            CodecError::NonCanonical | CodecError::Malformed(_)
                        ))
                    ),
                    "an over-long varint at byte {} was accepted: {:?}", start, decoded
                );
            }
        }

        #[test]
        fn whatever_decodes_is_the_canonical_encoding_of_what_it_decodes_to(
            transaction in transaction(),
            position in any::<proptest::sample::Index>(),
            mask in 1u8..=255,
        ) {
            // Any change to the bytes is refused, or decodes to a transaction whose canonical
            // bytes are exactly the changed bytes: one transaction, one spelling.
            let mut bytes = transaction.to_bytes();
            let index = position.index(bytes.len());
            bytes[index] ^= mask;
            if let Ok(decoded) = Transaction::decode(&bytes) {
                prop_assert_eq!(decoded.to_bytes(), bytes);
                prop_assert_ne!(decoded, transaction);
            }
        }

        #[test]
        fn maps_out_of_key_order_are_refused(
            transaction in issue_licence()
                .prop_filter("two face fields at least", |body| matches!(
                    body, TxBody::IssueLicence { face, .. } if face.len() >= 2
                ))
                .prop_map(|body| Transaction {
                    payload: TxPayload {
                        chain_id: "hutong-test".into(),
                        signer: AuthorityId::from("qd-approval"),
                        nonce: 1,
                        created_at: 0,
                        body,
                    },
                    signatures: vec![Endorsement {
                        authority: AuthorityId::from("qd-approval"),
                        signature: crate::crypto::Signature([7u8; 64]),
                    }],
                })
        ) {
            // The face map's entries, encoded one by one, appear in key order in the bytes;
            // writing the first two the other way round must be refused.
            let TxBody::IssueLicence { face, .. } = &transaction.payload.body else {
                unreachable!("filtered above");
            };
            let entries: Vec<Vec<u8>> = face
                .iter()
                .map(|(name, value)| {
                    let mut entry = codec::to_canonical(name);
                    codec::append_canonical(&mut entry, value);
                    entry
                })
                .collect();
            let first_two: Vec<u8> = entries[0].iter().chain(&entries[1]).copied().collect();
            let swapped: Vec<u8> = entries[1].iter().chain(&entries[0]).copied().collect();
            let bytes = transaction.to_bytes();
            let start = bytes
                .windows(first_two.len())
                .position(|window| window == first_two.as_slice())
                .unwrap();
            let mut reordered = bytes.clone();
            reordered[start..start + first_two.len()].copy_from_slice(&swapped);
            prop_assert_eq!(
                Transaction::decode(&reordered),
                Err(FormError::Encoding(CodecError::NonCanonical))
            );
        }
    }
}
