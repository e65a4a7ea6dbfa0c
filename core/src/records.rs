//! The records the ledger holds (docs/design.md section 3): authorities, the licence-type
//! catalogue, issuance grants, licences with their history, recognition attestations,
//! objections and the node registry.
//!
//! Each record has one [`RecordKey`]; the state is the map from keys to current records, and
//! its commitment is a sparse Merkle tree over `state_key_hash(key) -> record_hash(record)`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::calendar;
use crate::crypto::PublicKey;
use crate::hash::Hash32;
use crate::ident::{RegionCode, Uscc};
use crate::suite::Suite;

pub use crate::calendar::TimeMs;
/// A block height; genesis state is height 0, the first block is height 1.
pub type Height = u64;

macro_rules! identifier_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                $name(text.to_owned())
            }
        }
    };
}

identifier_type!(
    /// A department's short identifier on the ledger, e.g. `qingdao-approval`: lowercase ASCII
    /// letters, digits and `-`, as it appears in URLs.
    AuthorityId
);
identifier_type!(
    /// A licence type code in the catalogue, e.g. `business-licence`.
    TypeCode
);
identifier_type!(
    /// A licence number, unique within its type. A new one is written in its canonical form
    /// (`rules::check_canonical_number`): capitals `A-Z`, digits and `- / ( ) .`, beginning
    /// with a capital, a digit or `(`, ending with a capital, a digit or `)`. The numbering
    /// rules beyond that belong to the issuer, or to the type (`number_is_holder_uscc`).
    LicenceNumber
);

/// What an authority may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Approves changes to the authority registry, the catalogue and the validator set.
    Governor,
    /// Issues licences of the types it is granted, in the regions it is granted.
    Issuer,
    /// Changes the status of licences of the types it is granted, in its region.
    Supervisor,
    /// Attests recognition on behalf of its region.
    Recognizer,
}

/// One signing key of an authority and the heights at which it is valid: it signs from
/// `valid_from` on, and stops at `valid_until` (exclusive) once rotated away. A rotation the
/// governors overrode before it took effect keeps its entry with `valid_until ==
/// valid_from`: the key never signed, and stays the authority's for ever.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEpoch {
    pub key: PublicKey,
    pub valid_from: Height,
    pub valid_until: Option<Height>,
    /// Set by the governors' report of a key compromise: from this height on (up to
    /// `valid_until`) what the key signed may have been signed by someone else, and verdicts
    /// on records it signed then say so.
    pub compromised_from: Option<Height>,
}

impl KeyEpoch {
    /// Whether the key may sign a transaction executed at `height`.
    pub fn valid_at(&self, height: Height) -> bool {
        height >= self.valid_from && self.valid_until.is_none_or(|until| height < until)
    }

    /// Whether what the key signed at `height` falls within a reported compromise: the key was
    /// valid then, and the governors reported it compromised from that height or earlier.
    pub fn compromised_at(&self, height: Height) -> bool {
        self.valid_at(height) && self.compromised_from.is_some_and(|from| from <= height)
    }
}

/// A department (docs/design.md section 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authority {
    pub id: AuthorityId,
    pub name_zh: String,
    pub name_en: String,
    pub region: RegionCode,
    pub uscc: Uscc,
    /// Sorted, no duplicates.
    pub roles: Vec<Role>,
    /// Every key it has had, oldest first; at most one has no `valid_until`.
    pub keys: Vec<KeyEpoch>,
    /// The highest nonce of any transaction it submitted (0 before its first).
    pub last_nonce: u64,
    pub registered_at: Height,
}

impl Authority {
    /// Whether it holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The key valid at `height`, if any.
    pub fn key_at(&self, height: Height) -> Option<&PublicKey> {
        self.keys
            .iter()
            .rev()
            .find(|epoch| epoch.valid_at(height))
            .map(|epoch| &epoch.key)
    }

    /// The newest key (the one rotations start from).
    pub fn current_key(&self) -> Option<&KeyEpoch> {
        self.keys.last()
    }

    /// Whether what the authority signed at `height` was signed under a key the governors
    /// reported compromised at that height.
    pub fn signed_compromised_at(&self, height: Height) -> bool {
        self.keys.iter().any(|epoch| epoch.compromised_at(height))
    }
}

/// Which authority a public key belongs to. Written when a key first enters an authority's
/// history (at genesis, registration or rotation) and never removed, so that a key belongs to
/// at most one authority, ever: one department can never sign as another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyOwner {
    pub key: PublicKey,
    pub authority: AuthorityId,
}

/// The data type of one face field (照面信息).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// Any text up to the field limit.
    Text,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// A decimal integer, optionally negative.
    Integer,
    /// A decimal number such as a registered capital, `123.45`.
    Decimal,
    /// A unified social credit code (GB 32100-2015).
    Uscc,
    /// A region code (GB/T 2260).
    Region,
}

/// Orders two values of an integer, decimal or date field, each well formed for `kind`
/// (numbers by their value, so that `1.50` equals `1.5` and `-0` equals `0`; dates by the
/// day). `None` for the other kinds, or when a value is not well formed for `kind`.
pub fn compare_field_values(kind: FieldKind, left: &str, right: &str) -> Option<Ordering> {
    match kind {
        FieldKind::Integer | FieldKind::Decimal => {
            let left = DecimalParts::parse(left, kind == FieldKind::Decimal)?;
            let right = DecimalParts::parse(right, kind == FieldKind::Decimal)?;
            Some(left.cmp_value(&right))
        }
        FieldKind::Date => (calendar::is_calendar_date(left) && calendar::is_calendar_date(right))
            // `YYYY-MM-DD` of the years 1 to 9999 sorts as the days do.
            .then(|| left.cmp(right)),
        FieldKind::Text | FieldKind::Uscc | FieldKind::Region => None,
    }
}

/// A decimal number as its sign, its whole digits without leading zeros and its fraction
/// without trailing zeros.
struct DecimalParts<'t> {
    negative: bool,
    whole: &'t str,
    fraction: &'t str,
}

impl<'t> DecimalParts<'t> {
    fn parse(text: &'t str, fraction_allowed: bool) -> Option<Self> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = match digits.split_once('.') {
            Some((whole, fraction)) if fraction_allowed => (whole, fraction),
            Some(_) => return None,
            None => (digits, ""),
        };
        let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        if whole.is_empty()
            || !all_digits(whole)
            || !all_digits(fraction)
            || (digits.contains('.') && fraction.is_empty())
        {
            return None;
        }
        let whole = whole.trim_start_matches('0');
        let fraction = fraction.trim_end_matches('0');
        let zero = whole.is_empty() && fraction.is_empty();
        Some(DecimalParts {
            negative: negative && !zero,
            whole,
            fraction,
        })
    }

    fn cmp_value(&self, other: &Self) -> Ordering {
        let magnitude = self
            .whole
            .len()
            .cmp(&other.whole.len())
            .then_with(|| self.whole.cmp(other.whole))
            .then_with(|| self.fraction.cmp(other.fraction));
        match (self.negative, other.negative) {
            (false, false) => magnitude,
            (true, true) => magnitude.reverse(),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
        }
    }
}

/// Whether a face field is shown in clear on the ledger or only as a salted commitment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Public,
    /// Only `commitment = H("hutong/face/v1", salt || name || value)` is on the ledger; the
    /// holder presents the value and salt to whom they choose.
    Private,
}

/// One face field of a licence type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSchema {
    pub name: String,
    pub name_zh: String,
    pub kind: FieldKind,
    pub required: bool,
    pub visibility: Visibility,
}

/// Who may hold a licence of a type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolderKind {
    /// Identified by a USCC.
    Enterprise,
    /// A natural person, identified only by a salted hash of the resident identity number.
    Person,
}

/// Bounds on the value of one face field of kind integer, decimal or date (ADR 0033): `min`
/// and `max` are written as the field's values are (`0`, `1949-10-01`), and a date bounded
/// by `not_after_block_date` may not be later than the date, in China Standard Time, of the
/// block that writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldBound {
    pub field: String,
    #[serde(default)]
    pub min: Option<String>,
    #[serde(default)]
    pub max: Option<String>,
    #[serde(default)]
    pub not_after_block_date: bool,
}

/// What a licence type requires of its licences beyond the kinds of its fields (ADR 0033),
/// checked at issuance and at every amendment. Every part is optional in a genesis file or
/// a definition, and absent means no constraint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeConstraints {
    /// 一企一照: a holder has at most one licence of the type that has not ended (revoked,
    /// cancelled, abolished or expired).
    #[serde(default)]
    pub unique_per_holder: bool,
    /// The licence number is the holder's USCC (enterprise types only).
    #[serde(default)]
    pub number_is_holder_uscc: bool,
    /// Public USCC fields whose value, when given, must be the holder's own USCC.
    #[serde(default)]
    pub holder_fields: Vec<String>,
    /// Bounds on numeric and date fields, at most one per field.
    #[serde(default)]
    pub bounds: Vec<FieldBound>,
    /// 年检: a licence of the type needs an annual inspection at least every this many days,
    /// counted from its start of validity and then from its last inspection; past that the
    /// verdict finds it overdue. `None`: no inspection is required.
    #[serde(default)]
    pub annual_inspection_days: Option<u32>,
}

impl TypeConstraints {
    /// The bound on the field called `name`, if any.
    pub fn bound(&self, name: &str) -> Option<&FieldBound> {
        self.bounds.iter().find(|bound| bound.field == name)
    }
}

/// A catalogue entry (电子证照目录), in its current version. Each amendment by the governors
/// raises `version` by one and keeps the version it replaces under
/// [`RecordKey::LicenceTypeVersion`]; a licence is read against the version it was issued
/// under (ADR 0033).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenceType {
    pub code: TypeCode,
    pub name_zh: String,
    pub name_en: String,
    pub holder_kind: HolderKind,
    pub fields: Vec<FieldSchema>,
    /// Validity given when an issuance names no end; `None` means long-term (长期).
    pub default_validity_days: Option<u32>,
    /// The status actions a supervisor may take on licences of this type (the issuer may
    /// take every action).
    pub supervisor_actions: Vec<StatusAction>,
    pub defined_at: Height,
    /// What its licences must satisfy beyond the kinds of their fields.
    pub constraints: TypeConstraints,
    /// 1 when defined, one more at each amendment.
    pub version: u32,
    /// The height of the block that made this version.
    pub version_at: Height,
    /// Set when the governors retired the type: no licence of it is issued from this height
    /// on, and those already issued keep their standing.
    pub retired_at: Option<Height>,
}

impl LicenceType {
    /// The schema of the field called `name`.
    pub fn field(&self, name: &str) -> Option<&FieldSchema> {
        self.fields.iter().find(|field| field.name == name)
    }
}

/// "Authority A may issue (and supervise) type T in region R" (责任清单), with the heights
/// between which the grant was in force. A grant revoked and given again keeps its history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub authority: AuthorityId,
    pub type_code: TypeCode,
    pub region: RegionCode,
    /// `(from, until)`: in force for heights `from <= h < until`; the last may be open.
    pub periods: Vec<(Height, Option<Height>)>,
}

impl Grant {
    /// Whether the grant is in force at `height`.
    pub fn in_force_at(&self, height: Height) -> bool {
        self.periods
            .iter()
            .any(|(from, until)| height >= *from && until.is_none_or(|until| height < until))
    }
}

/// Who holds a licence.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holder {
    Enterprise(Uscc),
    /// `H("hutong/person/v1", salt || resident identity number)`; the number itself never
    /// reaches the ledger.
    Person(Hash32),
}

impl Holder {
    pub fn kind(&self) -> HolderKind {
        match self {
            Holder::Enterprise(_) => HolderKind::Enterprise,
            Holder::Person(_) => HolderKind::Person,
        }
    }

    /// The holder as it appears in URLs: the USCC, or the commitment in hex.
    pub fn to_text(&self) -> String {
        match self {
            Holder::Enterprise(uscc) => uscc.to_string(),
            Holder::Person(commitment) => commitment.to_hex(),
        }
    }
}

/// One face field's value as written on the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaceValue {
    /// A public field, in clear.
    Clear(String),
    /// A private field: the salted commitment only.
    Committed(Hash32),
}

/// The commitment to a private face field: `H("hutong/face/v1", salt || len(name) || name ||
/// value)`, with `len(name)` one byte.
pub fn face_commitment(suite: Suite, salt: &[u8; 32], name: &str, value: &str) -> Hash32 {
    let mut data = Vec::with_capacity(32 + 1 + name.len() + value.len());
    data.extend_from_slice(salt);
    data.push(name.len().min(255) as u8);
    data.extend_from_slice(name.as_bytes());
    data.extend_from_slice(value.as_bytes());
    suite.tagged("hutong/face/v1", &data)
}

/// A change of status (docs/design.md section 3).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StatusAction {
    /// 暂扣: not valid until reinstated.
    Suspend,
    /// Ends a suspension.
    Reinstate,
    /// 吊销 (terminal).
    Revoke,
    /// 注销, at the holder's request (terminal).
    Cancel,
    /// 废止 (terminal).
    Abolish,
    /// 延期 / renewal: a new end of validity.
    Renew { valid_until: Option<TimeMs> },
    /// 年检 passed.
    AnnualInspection,
    /// 质押 / 抵押 registered, with the secured party. An annotation: validity is unchanged.
    PledgeRegistered {
        secured_party: String,
        reference: String,
    },
    /// A pledge or mortgage released, named by its reference.
    PledgeReleased { reference: String },
}

impl StatusAction {
    /// A stable name, used in reasons and rule errors.
    pub fn name(&self) -> &'static str {
        match self {
            StatusAction::Suspend => "suspend",
            StatusAction::Reinstate => "reinstate",
            StatusAction::Revoke => "revoke",
            StatusAction::Cancel => "cancel",
            StatusAction::Abolish => "abolish",
            StatusAction::Renew { .. } => "renew",
            StatusAction::AnnualInspection => "annual_inspection",
            StatusAction::PledgeRegistered { .. } => "pledge_registered",
            StatusAction::PledgeReleased { .. } => "pledge_released",
        }
    }

    /// Its name in Chinese, as reports and the explorer show it.
    pub fn name_zh(&self) -> &'static str {
        match self {
            StatusAction::Suspend => "暂扣",
            StatusAction::Reinstate => "恢复",
            StatusAction::Revoke => "吊销",
            StatusAction::Cancel => "注销",
            StatusAction::Abolish => "废止",
            StatusAction::Renew { .. } => "延期",
            StatusAction::AnnualInspection => "年检",
            StatusAction::PledgeRegistered { .. } => "质押登记",
            StatusAction::PledgeReleased { .. } => "质押解除",
        }
    }

    /// What it did to the licence, in English, as a licence's history shows it.
    pub fn done_en(&self) -> &'static str {
        match self {
            StatusAction::Suspend => "Suspended",
            StatusAction::Reinstate => "Reinstated",
            StatusAction::Revoke => "Revoked",
            StatusAction::Cancel => "Cancelled",
            StatusAction::Abolish => "Abolished",
            StatusAction::Renew { .. } => "Renewed",
            StatusAction::AnnualInspection => "Annual inspection passed",
            StatusAction::PledgeRegistered { .. } => "Pledge registered",
            StatusAction::PledgeReleased { .. } => "Pledge released",
        }
    }

    /// How a licence's history shows it to people (the explorer's timeline): its Chinese
    /// name, what it did in English, and the data a reader needs, for the actions that carry
    /// any (a renewal's new end, in China Standard Time; a pledge's secured party).
    pub fn label(&self) -> String {
        let label = format!("{} {}", self.name_zh(), self.done_en());
        match self {
            StatusAction::Renew { valid_until } => format!(
                "{label} until {}",
                valid_until.map_or("长期 long-term".into(), calendar::display_china)
            ),
            StatusAction::PledgeRegistered { secured_party, .. } => {
                format!("{label} ({secured_party})")
            }
            _ => label,
        }
    }

    /// Whether it is the same kind of action as `other`, ignoring its data (how a type's list
    /// of supervisor actions is matched).
    pub fn same_kind(&self, other: &StatusAction) -> bool {
        self.name() == other.name()
    }
}

/// The standing of a licence, as the status state machine leaves it. Expiry is not a status:
/// it is computed from the validity window and the time asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Suspended,
    Revoked,
    Cancelled,
    Abolished,
}

impl Status {
    /// Revoked, cancelled and abolished licences never change status again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Revoked | Status::Cancelled | Status::Abolished
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Revoked => "revoked",
            Status::Cancelled => "cancelled",
            Status::Abolished => "abolished",
        }
    }

    /// Its name in Chinese, as the verdict's reasons and the explorer show it.
    pub fn name_zh(self) -> &'static str {
        match self {
            Status::Active => "正常",
            Status::Suspended => "暂扣",
            Status::Revoked => "吊销",
            Status::Cancelled => "注销",
            Status::Abolished => "废止",
        }
    }
}

/// What happened to a licence, in one entry of its history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenceEventKind {
    Issued,
    Status(StatusAction),
    /// 变更: the face fields were changed; `previous` holds the values replaced.
    Amended {
        previous: BTreeMap<String, FaceValue>,
    },
    /// 颁发机构调整: the governors handed the licence, and the issuer's right over it, from
    /// `from` to its successor `to` (ADR 0035).
    Transferred {
        from: AuthorityId,
        to: AuthorityId,
    },
}

impl LicenceEventKind {
    /// Its name in English, as reports and a licence's history document label it: `issued`,
    /// `amended`, `transferred`, or the status action's name ([`StatusAction::name`]).
    pub fn name(&self) -> &'static str {
        match self {
            LicenceEventKind::Issued => "issued",
            LicenceEventKind::Amended { .. } => "amended",
            LicenceEventKind::Transferred { .. } => "transferred",
            LicenceEventKind::Status(action) => action.name(),
        }
    }

    /// Its name in Chinese, as reports and a licence's history document label it.
    pub fn name_zh(&self) -> &'static str {
        match self {
            LicenceEventKind::Issued => "发证",
            LicenceEventKind::Amended { .. } => "变更",
            LicenceEventKind::Transferred { .. } => "颁发机构调整",
            LicenceEventKind::Status(action) => action.name_zh(),
        }
    }
}

/// One entry of a licence's history: what, when it takes effect, why, by whom, and where on
/// the ledger it was recorded; and, when the governors corrected it, how (ADR 0032).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenceEvent {
    pub kind: LicenceEventKind,
    /// When it takes effect; for a retimed event, the corrected time (the time it was
    /// entered with is kept in its correction).
    pub effective_at: TimeMs,
    pub reason: String,
    pub by: AuthorityId,
    pub height: Height,
    pub tx: Hash32,
    /// The governors' correction of the event, if any.
    pub correction: Option<EventCorrection>,
}

impl LicenceEvent {
    /// Whether the event counts for the licence's standing: every event but a voided one.
    pub fn counts(&self) -> bool {
        self.correction
            .as_ref()
            .is_none_or(|correction| correction.outcome != CorrectionOutcome::Voided)
    }
}

/// What the governors' `correct_event` does to an event entered wrongly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CorrectionAction {
    /// The event stays in the history but no longer counts for the licence's standing.
    Void,
    /// The event takes effect at `effective_at` instead of the time it was entered with.
    Retime { effective_at: TimeMs },
}

/// How an event stands after its correction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrectionOutcome {
    /// It no longer counts.
    Voided,
    /// It counts from its corrected effective time.
    Retimed,
}

/// The governors' correction of one event of a licence's history (ADR 0032): the newest one,
/// with the time the event was first entered with. Every correction is also a transaction
/// in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCorrection {
    pub outcome: CorrectionOutcome,
    /// The effective time the event was entered with, before any correction.
    pub entered_at: TimeMs,
    pub reason: String,
    /// The governor that submitted the correction (the transaction names every endorser).
    pub by: AuthorityId,
    pub height: Height,
    pub tx: Hash32,
}

impl EventCorrection {
    /// How a licence's history shows it to people, in Chinese and English.
    pub fn label(&self) -> String {
        match self.outcome {
            CorrectionOutcome::Voided => format!(
                "更正作废 voided by the governors at height {}: {}",
                self.height, self.reason
            ),
            CorrectionOutcome::Retimed => format!(
                "更正生效时间 retimed by the governors at height {} (entered as {}): {}",
                self.height,
                calendar::display_china(self.entered_at),
                self.reason
            ),
        }
    }
}

/// A licence with its whole history. Status and validity at any time are computed from the
/// history (see [`Licence::standing_at`]), never written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Licence {
    pub type_code: TypeCode,
    pub number: LicenceNumber,
    pub holder: Holder,
    pub holder_name: String,
    pub issuer: AuthorityId,
    /// The region it was issued in (within the issuer's grant).
    pub region: RegionCode,
    pub face: BTreeMap<String, FaceValue>,
    pub valid_from: TimeMs,
    /// `None`: long-term (长期).
    pub valid_until: Option<TimeMs>,
    /// blake3 of the issued document (the signed PDF/OFD file), kept off the ledger.
    pub document_hash: Hash32,
    pub issued_at: Height,
    /// Oldest first; the effective times of the events that count never decrease.
    pub events: Vec<LicenceEvent>,
    /// Every objection filed on it, open or resolved, oldest first (ADR 0034): what a verdict
    /// at any time reads to say which were open then.
    pub objections: Vec<ObjectionMark>,
    /// The version of its type it was issued under, against whose schema its face is read.
    pub type_version: u32,
    /// 年检: the days between annual inspections its type's version required at issuance
    /// (`None`: none), so that a verdict needs no record beyond the licence to tell.
    pub annual_inspection_days: Option<u32>,
    /// Set when the governors handed the licence to a successor of its issuer (颁发机构调整,
    /// `transfer_licences`, ADR 0035): the authority that holds the issuer's right over it
    /// since. `issuer` stays the authority that issued it, whose grant authorised the issuance.
    #[serde(default)]
    pub successor: Option<AuthorityId>,
}

/// One objection as its licence keeps it: who filed it, the region its filer counts in, and
/// when it was filed and resolved. The objection's own record keeps the reason and the
/// resolution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectionMark {
    pub id: Hash32,
    pub filed_by: AuthorityId,
    /// The filer's province, or the nation for a national authority: the region whose
    /// filers share one bound of open objections on the licence.
    pub filer_region: RegionCode,
    pub filed_at: TimeMs,
    /// The block time of its resolution; `None` while it is open.
    pub resolved_at: Option<TimeMs>,
    /// When it was upheld, the index of the event of the licence's history that corrected
    /// the licence (the resolution's follow-up); `None` while open or when dismissed. A
    /// verdict warns of an upheld objection whose follow-up no longer counts or has not taken
    /// effect yet (ADR 0034).
    pub follow_up: Option<u32>,
}

impl ObjectionMark {
    /// Whether it was open at `at`: filed at or before it, and not resolved by then.
    pub fn open_at(&self, at: TimeMs) -> bool {
        self.filed_at <= at && self.resolved_at.is_none_or(|resolved| at < resolved)
    }
}

/// A licence's standing at one moment, computed from its history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    pub status: Status,
    pub valid_until: Option<TimeMs>,
    /// Pledges and mortgages registered and not released: `(reference, secured party)`.
    pub pledges: Vec<(String, String)>,
    pub last_annual_inspection: Option<TimeMs>,
}

impl Licence {
    /// The authority that holds the issuer's right over the licence now: the successor the
    /// governors handed it to, or its issuer.
    pub fn responsible(&self) -> &AuthorityId {
        self.successor.as_ref().unwrap_or(&self.issuer)
    }

    /// Folds the history up to and including `at` (an event takes effect at the millisecond it
    /// names), leaving out the events the governors voided. The events that count are in
    /// effective-time order, which the rules guarantee.
    pub fn standing_at(&self, at: TimeMs) -> Standing {
        let mut standing = Standing {
            status: Status::Active,
            valid_until: self.valid_until,
            pledges: Vec::new(),
            last_annual_inspection: None,
        };
        for event in self
            .counted_events()
            .take_while(|event| event.effective_at <= at)
        {
            if let LicenceEventKind::Status(action) = &event.kind {
                standing.apply(action, event.effective_at);
            }
        }
        standing
    }

    /// The standing after every recorded event, whatever its effective time: what the rules
    /// check a new status change against.
    pub fn final_standing(&self) -> Standing {
        self.standing_at(TimeMs::MAX)
    }

    /// The ids of the objections open now, oldest first.
    pub fn open_objections(&self) -> Vec<Hash32> {
        self.objections
            .iter()
            .filter(|mark| mark.resolved_at.is_none())
            .map(|mark| mark.id)
            .collect()
    }

    /// The ids of the objections that were open at `at`, oldest first.
    pub fn objections_open_at(&self, at: TimeMs) -> Vec<Hash32> {
        self.objections
            .iter()
            .filter(|mark| mark.open_at(at))
            .map(|mark| mark.id)
            .collect()
    }

    /// Whether it has ended by `at`, counting every recorded event: revoked, cancelled or
    /// abolished, or its validity over. A suspended licence has not ended.
    pub fn has_ended_at(&self, at: TimeMs) -> bool {
        let standing = self.final_standing();
        standing.status.is_terminal() || standing.valid_until.is_some_and(|until| until <= at)
    }

    /// The effective time of the newest event that counts (a voided one does not).
    pub fn last_effective_at(&self) -> TimeMs {
        self.counted_events()
            .last()
            .map_or(self.valid_from, |event| event.effective_at)
    }

    /// The events that count for the standing, oldest first: every one but the voided.
    pub fn counted_events(&self) -> impl DoubleEndedIterator<Item = &LicenceEvent> {
        self.events.iter().filter(|event| event.counts())
    }
}

impl Standing {
    /// One step of the status state machine. The rules have already checked that `action` is
    /// legal from the current status (see [`transition`]); an illegal action here leaves the
    /// standing unchanged.
    fn apply(&mut self, action: &StatusAction, at: TimeMs) {
        if let Ok(next) = transition(self.status, action) {
            self.status = next;
        }
        // A licence that ends takes its pledges with it: the history keeps them, the standing
        // no longer lists them.
        if self.status.is_terminal() {
            self.pledges.clear();
        }
        match action {
            StatusAction::Renew { valid_until } => self.valid_until = *valid_until,
            StatusAction::AnnualInspection => self.last_annual_inspection = Some(at),
            StatusAction::PledgeRegistered {
                secured_party,
                reference,
            } => self
                .pledges
                .push((reference.clone(), secured_party.clone())),
            StatusAction::PledgeReleased { reference } => {
                self.pledges.retain(|(existing, _)| existing != reference)
            }
            _ => {}
        }
    }
}

/// The status state machine: the status after `action` from `from`, or why it is illegal.
///
/// - terminal statuses (revoked, cancelled, abolished) accept nothing;
/// - `Suspend` needs an active licence, `Reinstate` a suspended one;
/// - `Revoke`, `Cancel`, `Abolish` end an active or suspended licence;
/// - `Renew`, `AnnualInspection` and registering a pledge need an active licence and leave it
///   active;
/// - releasing a pledge leaves the status as it is, active or suspended: a bank's claim ends
///   whatever the department did to the licence meanwhile.
pub fn transition(from: Status, action: &StatusAction) -> Result<Status, IllegalTransition> {
    use StatusAction as A;
    let illegal = || IllegalTransition {
        from,
        action: action.name(),
    };
    if from.is_terminal() {
        return Err(illegal());
    }
    match (from, action) {
        (Status::Active, A::Suspend) => Ok(Status::Suspended),
        (Status::Suspended, A::Reinstate) => Ok(Status::Active),
        (_, A::Revoke) => Ok(Status::Revoked),
        (_, A::Cancel) => Ok(Status::Cancelled),
        (_, A::Abolish) => Ok(Status::Abolished),
        (
            Status::Active,
            A::Renew { .. }
            | A::AnnualInspection
            | A::PledgeRegistered { .. }
            | A::PledgeReleased { .. },
        ) => Ok(Status::Active),
        (Status::Suspended, A::PledgeReleased { .. }) => Ok(Status::Suspended),
        _ => Err(illegal()),
    }
}

/// A status change the state machine does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a licence that is {} cannot take the action `{action}`", .from.name())]
pub struct IllegalTransition {
    pub from: Status,
    pub action: &'static str,
}

/// Which licences a recognition covers by where they were issued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssuedBy {
    /// Every licence issued in this region (a province code covers its cities).
    Region(RegionCode),
    /// Every licence issued by this authority.
    Authority(AuthorityId),
}

/// "Region B recognises licence types T issued in region A (or by authority X), for a scope
/// of use, from/until a time" (跨地区互通互认). Its id is the hash of the attesting transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recognition {
    pub id: Hash32,
    pub recognizer: AuthorityId,
    /// B: where the licences are recognised; within the recognizer's own region.
    pub recognizing_region: RegionCode,
    pub type_codes: Vec<TypeCode>,
    pub issued_by: IssuedBy,
    pub scope: String,
    pub valid_from: TimeMs,
    pub valid_until: Option<TimeMs>,
    /// Set by a withdrawal: from its time on the attestation no longer applies.
    pub withdrawal: Option<Withdrawal>,
    pub attested_at: Height,
}

/// The end of a recognition: when it stops applying, why, by whom, and where on the ledger
/// it was recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    pub effective_at: TimeMs,
    pub reason: String,
    pub by: AuthorityId,
    pub height: Height,
    pub tx: Hash32,
}

impl Recognition {
    /// Whether it is in force at `at`.
    pub fn in_force_at(&self, at: TimeMs) -> bool {
        at >= self.valid_from
            && self.valid_until.is_none_or(|until| at < until)
            && self.withdrawn_at().is_none_or(|withdrawn| at < withdrawn)
    }

    /// From when a withdrawal ends it, if one was recorded.
    pub fn withdrawn_at(&self) -> Option<TimeMs> {
        self.withdrawal
            .as_ref()
            .map(|withdrawal| withdrawal.effective_at)
    }

    /// Whether it covers `licence` for use in `region` (ignoring time).
    pub fn covers(&self, licence: &Licence, region: &RegionCode) -> bool {
        self.recognizing_region.covers(region)
            && self.type_codes.contains(&licence.type_code)
            && self.issued_by.covers(licence)
    }

    /// When it stops applying: the earlier of its end of validity and its withdrawal.
    pub fn ends_at(&self) -> Option<TimeMs> {
        match (self.valid_until, self.withdrawn_at()) {
            (Some(until), Some(withdrawn)) => Some(until.min(withdrawn)),
            (until, withdrawn) => until.or(withdrawn),
        }
    }
}

/// How an objection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectionOutcome {
    /// The objection was right, and the licence was corrected: the resolution names the
    /// event of its history that corrected it (ADR 0034).
    Upheld,
    Dismissed,
}

/// Why an authority may object to a licence (ADR 0034).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectionBasis {
    /// A department of the province the licence was issued in (of the nation, for a licence
    /// issued nationally), where the licence is used without a recognition.
    IssuingProvince,
    /// A supervisor of the licence's type with a grant covering its region.
    Supervisor,
    /// A recognizer of a region that recognises the licence, by this attestation.
    Recognition(Hash32),
}

/// The end of an objection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub by: AuthorityId,
    pub outcome: ObjectionOutcome,
    pub note: String,
    pub at: TimeMs,
    pub height: Height,
    /// Whether more than two thirds of the governors signed it (else a supervisor did).
    pub by_governors: bool,
    /// The index, in the licence's history, of the event that corrected the licence after
    /// the objection was filed; always given when the objection was upheld.
    pub follow_up: Option<u32>,
}

/// A dispute on a licence (异议). Its id is the hash of the filing transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objection {
    pub id: Hash32,
    pub type_code: TypeCode,
    pub number: LicenceNumber,
    pub filed_by: AuthorityId,
    pub reason: String,
    pub filed_at: TimeMs,
    pub height: Height,
    pub resolution: Option<Resolution>,
    /// Why the filer may object.
    pub basis: ObjectionBasis,
    /// How many events the licence's history held when it was filed: a follow-up is an
    /// event at this index or later.
    pub events_at_filing: u32,
}

/// A node that replicates the ledger: a validator when its voting power is above zero, an
/// observer otherwise. Its key is both its libp2p identity and its consensus key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub key: PublicKey,
    pub authority: AuthorityId,
    pub power: u64,
}

/// A change to the node registry scheduled at a height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingNodeChange {
    pub effective_height: Height,
    pub changes: Vec<NodeChange>,
}

/// Add a node or change its power (power 0 makes it an observer), or remove it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum NodeChange {
    Set(NodeEntry),
    Remove(PublicKey),
}

/// The registry of nodes: the set in force and the changes scheduled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRegistry {
    /// Sorted by key.
    pub nodes: Vec<NodeEntry>,
    /// Sorted by effective height.
    pub pending: Vec<PendingNodeChange>,
}

impl NodeRegistry {
    /// The validators (power above zero), sorted by key.
    pub fn validators(&self) -> impl Iterator<Item = &NodeEntry> {
        self.nodes.iter().filter(|node| node.power > 0)
    }

    /// Applies one change to the set in force.
    pub fn apply_change(nodes: &mut Vec<NodeEntry>, change: &NodeChange) {
        match change {
            NodeChange::Set(entry) => match nodes.binary_search_by(|node| node.key.cmp(&entry.key))
            {
                Ok(index) => nodes[index] = entry.clone(),
                Err(index) => nodes.insert(index, entry.clone()),
            },
            NodeChange::Remove(key) => nodes.retain(|node| node.key != *key),
        }
    }

    /// The hash of the validator set in force, as it goes into block headers: `H("hutong/
    /// validators/v1", canonical bytes of the (key, power) list sorted by key)`.
    pub fn validators_hash(&self, suite: Suite) -> Hash32 {
        let set: Vec<(&PublicKey, u64)> = self
            .validators()
            .map(|node| (&node.key, node.power))
            .collect();
        suite.tagged("hutong/validators/v1", &crate::codec::to_canonical(&set))
    }
}

/// The key of one record in the state.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RecordKey {
    Authority(AuthorityId),
    LicenceType(TypeCode),
    Grant(AuthorityId, TypeCode, RegionCode),
    Licence(TypeCode, LicenceNumber),
    Recognition(Hash32),
    Objection(Hash32),
    Nodes,
    Governors,
    /// An equivocation recorded on the ledger (ADR 0009).
    Evidence(crate::evidence::EvidenceKey),
    /// A write quota set by the governors (ADR 0029).
    WriteQuota(QuotaScope),
    /// An authority's count of transactions in its quota's window (ADR 0029).
    WriteCount(AuthorityId),
    /// The owner of an authority's public key (ADR 0031).
    KeyOwner(PublicKey),
    /// A version of a licence type that a later amendment replaced (ADR 0033).
    LicenceTypeVersion(TypeCode, u32),
    /// The licence of a type held by one holder that has not ended, for the types that allow
    /// one per holder (一企一照, ADR 0033).
    HolderLicence(TypeCode, Holder),
    /// The recognitions attested for use in a region for one licence type (ADR 0039): the
    /// whole set, so that a bundle proves which recognitions exist, not only some of them.
    RecognitionSet(RegionCode, TypeCode),
    /// Every licence issued to one holder (一照通查, ADR 0039).
    HolderLicences(Holder),
}

impl RecordKey {
    /// The key's canonical bytes (also the store's key for the record).
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::codec::to_canonical(self)
    }

    /// Whether the key is of the directory (ADR 0042): the records that say who the
    /// authorities are, what each may issue where, what is recognised where, and who governs
    /// and validates. They are what a verdict reads besides the licence's own records, few
    /// beside the licences, and their positions share the left half of the state tree.
    pub fn in_directory(&self) -> bool {
        match self {
            RecordKey::Authority(_)
            | RecordKey::LicenceType(_)
            | RecordKey::LicenceTypeVersion(..)
            | RecordKey::Grant(..)
            | RecordKey::Recognition(_)
            | RecordKey::RecognitionSet(..)
            | RecordKey::Nodes
            | RecordKey::Governors => true,
            RecordKey::Licence(..)
            | RecordKey::Objection(_)
            | RecordKey::Evidence(_)
            | RecordKey::WriteQuota(_)
            | RecordKey::WriteCount(_)
            | RecordKey::KeyOwner(_)
            | RecordKey::HolderLicence(..)
            | RecordKey::HolderLicences(_) => false,
        }
    }

    /// Where the record sits in the sparse Merkle tree: `H("hutong/state-key/v1", bytes)` with
    /// its first bit set to 0 for a key of the directory ([`RecordKey::in_directory`]) and to 1
    /// for every other key (ADR 0042).
    pub fn state_hash(&self, suite: Suite) -> Hash32 {
        key_position(suite, self, &self.to_bytes())
    }
}

/// [`RecordKey::state_hash`] of `key`, from its canonical bytes `bytes` (which the caller has
/// at hand).
pub fn key_position(suite: Suite, key: &RecordKey, bytes: &[u8]) -> Hash32 {
    let mut position = suite.tagged("hutong/state-key/v1", bytes);
    if key.in_directory() {
        position.0[0] &= 0x7F;
    } else {
        position.0[0] |= 0x80;
    }
    position
}

/// A record of the state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    Authority(Authority),
    LicenceType(LicenceType),
    Grant(Grant),
    Licence(Licence),
    Recognition(Recognition),
    Objection(Objection),
    Nodes(NodeRegistry),
    /// The authorities holding the governor role, sorted: who counts for "more than two
    /// thirds of the governors".
    Governors(Vec<AuthorityId>),
    /// An equivocation recorded on the ledger (ADR 0009).
    Evidence(crate::evidence::EvidenceRecord),
    /// A write quota set by the governors (ADR 0029).
    WriteQuota(WriteQuotaRecord),
    /// An authority's count of transactions in its quota's window (ADR 0029).
    WriteCount(WriteCount),
    /// The owner of an authority's public key (ADR 0031).
    KeyOwner(KeyOwner),
    /// A version of a licence type that a later amendment replaced (ADR 0033).
    LicenceTypeVersion(LicenceType),
    /// The licence of a type that a holder holds (ADR 0033).
    HolderLicence(HolderLicence),
    /// The recognitions attested for use in a region for one licence type (ADR 0039).
    RecognitionSet(RecognitionSet),
    /// Every licence issued to one holder (ADR 0039).
    HolderLicences(HolderLicences),
}

impl Record {
    /// The key this record is stored under.
    pub fn key(&self) -> RecordKey {
        match self {
            Record::Authority(authority) => RecordKey::Authority(authority.id.clone()),
            Record::LicenceType(licence_type) => RecordKey::LicenceType(licence_type.code.clone()),
            Record::Grant(grant) => RecordKey::Grant(
                grant.authority.clone(),
                grant.type_code.clone(),
                grant.region.clone(),
            ),
            Record::Licence(licence) => {
                RecordKey::Licence(licence.type_code.clone(), licence.number.clone())
            }
            Record::Recognition(recognition) => RecordKey::Recognition(recognition.id),
            Record::Objection(objection) => RecordKey::Objection(objection.id),
            Record::Nodes(_) => RecordKey::Nodes,
            Record::Governors(_) => RecordKey::Governors,
            Record::Evidence(record) => RecordKey::Evidence(record.key.clone()),
            Record::WriteQuota(record) => RecordKey::WriteQuota(record.scope.clone()),
            Record::WriteCount(count) => RecordKey::WriteCount(count.authority.clone()),
            Record::KeyOwner(owner) => RecordKey::KeyOwner(owner.key),
            Record::LicenceTypeVersion(version) => {
                RecordKey::LicenceTypeVersion(version.code.clone(), version.version)
            }
            Record::HolderLicence(entry) => {
                RecordKey::HolderLicence(entry.type_code.clone(), entry.holder.clone())
            }
            Record::RecognitionSet(set) => {
                RecordKey::RecognitionSet(set.recognizing_region.clone(), set.type_code.clone())
            }
            Record::HolderLicences(list) => RecordKey::HolderLicences(list.holder.clone()),
        }
    }

    /// The record's canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::codec::to_canonical(self)
    }

    /// The leaf value in the sparse Merkle tree: `H("hutong/record/v1", bytes)`.
    pub fn state_hash(&self, suite: Suite) -> Hash32 {
        record_hash_of_bytes(suite, &self.to_bytes())
    }
}

/// [`Record::state_hash`] from the record's canonical bytes.
pub fn record_hash_of_bytes(suite: Suite, bytes: &[u8]) -> Hash32 {
    suite.tagged("hutong/record/v1", bytes)
}

/// Which licence of a type a holder holds, for the types that allow one per holder: the
/// last issued to it. A new one may be issued once this one has ended (ADR 0033).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderLicence {
    pub type_code: TypeCode,
    pub holder: Holder,
    pub number: LicenceNumber,
}

/// The recognitions attested for use in `recognizing_region` that name `type_code` (ADR 0039):
/// every one the ledger holds, but for those that ended before `pruned_before`. The rules keep
/// it whole at every attestation and withdrawal, so a proof of this one record (or of its
/// absence) shows a verifier every recognition that could make a licence of the type usable
/// there, and a bundle cannot leave one out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecognitionSet {
    pub recognizing_region: RegionCode,
    pub type_code: TypeCode,
    /// In the order attested.
    pub entries: Vec<RecognitionEntry>,
    /// Entries that had ended were dropped to make room (each set holds at most
    /// [`crate::limits::RECOGNITIONS_PER_SET_MAX`]); the latest end among them. Before this
    /// time the set no longer says which recognitions were in force.
    pub pruned_before: TimeMs,
}

/// One recognition in a [`RecognitionSet`]: enough to know which licences it is about and
/// whose it is without reading it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecognitionEntry {
    pub id: Hash32,
    pub recognizer: AuthorityId,
    pub issued_by: IssuedBy,
    /// When it stops applying: the earlier of its end of validity and its withdrawal.
    pub ends_at: Option<TimeMs>,
}

impl RecognitionEntry {
    /// Whether it is about `licence` (by where or by whom the licence was issued).
    pub fn is_about(&self, licence: &Licence) -> bool {
        self.issued_by.covers(licence)
    }

    /// Whether it has stopped applying by `time`.
    pub fn has_ended_at(&self, time: TimeMs) -> bool {
        self.ends_at.is_some_and(|end| end <= time)
    }
}

impl IssuedBy {
    /// Whether `licence` was issued where (or by whom) this names.
    pub fn covers(&self, licence: &Licence) -> bool {
        match self {
            IssuedBy::Region(issued_in) => issued_in.covers(&licence.region),
            IssuedBy::Authority(authority) => *authority == licence.issuer,
        }
    }
}

/// Every licence issued to one holder, in the order issued (一照通查, ADR 0039): a proof of this
/// record shows a verifier the holder's whole list. At most
/// [`crate::limits::LICENCES_PER_HOLDER_MAX`]; an issuance beyond it is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderLicences {
    pub holder: Holder,
    pub licences: Vec<(TypeCode, LicenceNumber)>,
}

// Write quotas (ADR 0029; the windows and the rule are in `quota.rs`).

/// Whom a quota applies to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaScope {
    /// Every authority without a quota of its own.
    Default,
    /// One authority, whatever the default says.
    Authority(AuthorityId),
}

impl std::fmt::Display for QuotaScope {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuotaScope::Default => formatter.write_str("the default"),
            QuotaScope::Authority(authority) => write!(formatter, "{authority}"),
        }
    }
}

/// What a quota allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WriteQuota {
    /// At most `max_transactions` counted transactions in each window of `window_blocks`
    /// blocks.
    Limited {
        max_transactions: u64,
        window_blocks: u64,
    },
    /// No bound: an authority exempted from the default (a registry's bulk migration, say).
    Unlimited,
}

/// The quota record of one scope. A cleared quota stays as a record with `quota: None` (the
/// state has no deletions); for the rules it is as if there were none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteQuotaRecord {
    pub scope: QuotaScope,
    pub quota: Option<WriteQuota>,
    /// The height of the block that set it last.
    pub set_at: Height,
}

/// How many counted transactions an authority has written since `window_start`, a height
/// inside the window of the quota in force when they were written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteCount {
    pub authority: AuthorityId,
    pub window_start: Height,
    pub transactions: u64,
}

#[cfg(test)]
mod tests {
    use super::{RecordKey, StatusAction};
    use crate::hash::Hash32;
    use crate::suite::Suite;

    #[test]
    fn directory_keys_sit_in_the_left_half_of_the_state_tree_and_the_others_in_the_right() {
        let suite = Suite::Ed25519Blake3;
        let type_code = || crate::records::TypeCode::from("business-licence");
        let region = || crate::ident::RegionCode::parse("370200").expect("region");
        let directory = [
            RecordKey::Authority("qd-approval".into()),
            RecordKey::LicenceType(type_code()),
            RecordKey::LicenceTypeVersion(type_code(), 1),
            RecordKey::Grant("qd-approval".into(), type_code(), region()),
            RecordKey::Recognition(Hash32([7; 32])),
            RecordKey::RecognitionSet(region(), type_code()),
            RecordKey::Nodes,
            RecordKey::Governors,
        ];
        let entries = [
            RecordKey::Licence(type_code(), "91370200MA0010001W".into()),
            RecordKey::Objection(Hash32([7; 32])),
            RecordKey::WriteCount("qd-approval".into()),
        ];
        for key in &directory {
            assert!(key.in_directory(), "{key:?}");
            assert!(!key.state_hash(suite).bit(0), "{key:?}");
        }
        for key in &entries {
            assert!(!key.in_directory(), "{key:?}");
            assert!(key.state_hash(suite).bit(0), "{key:?}");
        }
        // Apart from the first bit, the position is the tagged hash of the key's bytes.
        let key = &entries[0];
        let mut tagged = suite.tagged("hutong/state-key/v1", &key.to_bytes());
        tagged.0[0] |= 0x80;
        assert_eq!(key.state_hash(suite), tagged);
    }

    #[test]
    fn each_action_has_its_label_and_renewals_and_pledges_show_their_data() {
        assert_eq!(StatusAction::Suspend.label(), "暂扣 Suspended");
        assert_eq!(StatusAction::Reinstate.label(), "恢复 Reinstated");
        assert_eq!(StatusAction::Revoke.label(), "吊销 Revoked");
        assert_eq!(StatusAction::Cancel.label(), "注销 Cancelled");
        assert_eq!(StatusAction::Abolish.label(), "废止 Abolished");
        // 2026-01-01T00:00Z, 08:00 in Beijing.
        assert_eq!(
            StatusAction::Renew {
                valid_until: Some(1_767_225_600_000)
            }
            .label(),
            "延期 Renewed until 2026-01-01 08:00"
        );
        assert_eq!(
            StatusAction::Renew { valid_until: None }.label(),
            "延期 Renewed until 长期 long-term"
        );
        assert_eq!(
            StatusAction::AnnualInspection.label(),
            "年检 Annual inspection passed"
        );
        assert_eq!(
            StatusAction::PledgeRegistered {
                secured_party: "青岛银行".into(),
                reference: "DY-1".into(),
            }
            .label(),
            "质押登记 Pledge registered (青岛银行)"
        );
        assert_eq!(
            StatusAction::PledgeReleased {
                reference: "DY-1".into()
            }
            .label(),
            "质押解除 Pledge released"
        );
    }
}
