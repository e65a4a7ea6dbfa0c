//! Why the rules refuse a transaction ([`RuleError`]), and why the state could not be read
//! ([`StateError`]). Both sit below every other file of the rules, so that the view of the
//! state and each record family can name them without importing one another.

use crate::crypto::{PublicKey, SignatureError};
use crate::hash::Hash32;
use crate::ident::{IdentError, RegionCode};
use crate::quota::QuotaScope;
use crate::records::{
    AuthorityId, Height, HolderKind, IllegalTransition, LicenceNumber, Role, TimeMs, TypeCode,
};

/// Why the state could not be read (the store's own failure, not the transaction's).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("state unavailable: {0}")]
pub struct StateError(pub String);

/// A transaction the rules reject, and why. Each variant names what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("the transaction is for chain {found:?}, this is chain {expected:?}")]
    WrongChain { expected: String, found: String },
    #[error("transaction {0} was already committed")]
    Replay(Hash32),
    #[error("transaction {0} appears twice in the block")]
    DuplicateInBlock(Hash32),
    #[error("nonce {found} of {authority} does not increase (last used: {last})")]
    NonceNotIncreasing {
        authority: AuthorityId,
        last: u64,
        found: u64,
    },
    #[error(
        "nonce {found} of {authority} skips ahead: the next is {expected} (each nonce is one above the last)"
    )]
    NonceGap {
        authority: AuthorityId,
        expected: u64,
        found: u64,
    },
    #[error("created_at {created_at} is more than {skew_ms} ms after the block time {block_time}")]
    CreatedInFuture {
        created_at: TimeMs,
        block_time: TimeMs,
        skew_ms: u64,
    },
    #[error("unknown authority {0}")]
    UnknownAuthority(AuthorityId),
    #[error("the record names authority {0}, which is not registered")]
    UnknownNamedAuthority(AuthorityId),
    #[error("{authority} has no key valid at height {height}")]
    NoKeyAtHeight {
        authority: AuthorityId,
        height: Height,
    },
    #[error("signature of {authority}: {error}")]
    BadSignature {
        authority: AuthorityId,
        error: SignatureError,
    },
    #[error("{authority} does not hold the role {role:?}")]
    MissingRole { authority: AuthorityId, role: Role },
    #[error("{0} endorsed a governance record but is not a governor")]
    EndorserNotGovernor(AuthorityId),
    #[error("{signed} of {governors} governors signed; more than two thirds ({required}) must")]
    TooFewGovernorSignatures {
        signed: usize,
        governors: usize,
        required: usize,
    },
    #[error("only the signer may sign this record; {0} also signed")]
    UnexpectedEndorser(AuthorityId),
    #[error("authority {0} already exists")]
    AuthorityExists(AuthorityId),
    #[error("key rejected: {0}")]
    KeyRejected(SignatureError),
    #[error("the key is already used by {0}")]
    KeyInUse(AuthorityId),
    #[error(
        "a key rotation must take effect after this height ({height}); it names {effective_height}"
    )]
    RotationNotLater {
        height: Height,
        effective_height: Height,
    },
    #[error("a key rotation is already scheduled for height {effective_height}")]
    RotationPending { effective_height: Height },
    #[error(
        "an authority may schedule its own key rotation at most {limit} blocks after this height ({height}); it names {effective_height}"
    )]
    RotationTooFar {
        height: Height,
        effective_height: Height,
        limit: u64,
    },
    #[error(
        "the governors' key rotation takes effect at the next height ({next}) at the latest; it names {effective_height}"
    )]
    GovernorRotationTooLate {
        next: Height,
        effective_height: Height,
    },
    #[error(
        "{authority} cannot have been compromised from height {compromised_from}: it was registered at {registered_at} and this is height {height}"
    )]
    CompromiseOutOfRange {
        authority: AuthorityId,
        compromised_from: Height,
        registered_at: Height,
        height: Height,
    },

    #[error("{authority} already has {limit} keys in its history")]
    TooManyKeys {
        authority: AuthorityId,
        limit: usize,
    },
    #[error("the registry would have {count} governors; the limit is {limit}")]
    TooManyGovernors { count: usize, limit: usize },
    #[error("the last governor cannot lose the role")]
    NoGovernorLeft,
    #[error("licence type {0} already exists")]
    TypeExists(TypeCode),
    #[error("unknown licence type {0}")]
    UnknownType(TypeCode),
    #[error("{authority} already holds a grant for {type_code} in {region}")]
    GrantExists {
        authority: AuthorityId,
        type_code: TypeCode,
        region: RegionCode,
    },
    #[error(
        "{authority} holds no open grant for {type_code} in {region} (never granted, or already revoked)"
    )]
    NoSuchGrant {
        authority: AuthorityId,
        type_code: TypeCode,
        region: RegionCode,
    },
    #[error(
        "the grant of {type_code} in {region} to {authority} was already given {limit} times; it cannot be given again"
    )]
    TooManyGrantPeriods {
        authority: AuthorityId,
        type_code: TypeCode,
        region: RegionCode,
        limit: usize,
    },
    #[error("{authority} is not granted {type_code} in a region covering {region} at this height")]
    NotGranted {
        authority: AuthorityId,
        type_code: TypeCode,
        region: RegionCode,
    },
    #[error("licence {type_code}/{number} already exists")]
    DuplicateLicence {
        type_code: TypeCode,
        number: LicenceNumber,
    },
    #[error("no licence {type_code}/{number}")]
    UnknownLicence {
        type_code: TypeCode,
        number: LicenceNumber,
    },
    #[error("type {type_code} is held by {expected:?}, not {found:?}")]
    HolderKindMismatch {
        type_code: TypeCode,
        expected: HolderKind,
        found: HolderKind,
    },
    #[error("face field `{field}`: {problem}")]
    Schema { field: String, problem: String },
    #[error("face field `{field}`: {error}")]
    FieldIdentifier { field: String, error: IdentError },
    #[error("valid_until {valid_until} is not after valid_from {valid_from}")]
    EmptyValidity {
        valid_from: TimeMs,
        valid_until: TimeMs,
    },
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    #[error("{authority} may not take the action `{action}` on {type_code} licences")]
    ActionNotPermitted {
        authority: AuthorityId,
        action: &'static str,
        type_code: TypeCode,
    },
    #[error("only the issuer ({issuer}) may do this; {authority} signed")]
    NotIssuer {
        issuer: AuthorityId,
        authority: AuthorityId,
    },
    #[error("effective time {effective_at} is before the licence's last event ({last})")]
    EffectiveTimeBeforeLastEvent { effective_at: TimeMs, last: TimeMs },
    #[error("the licence already has {limit} events; no more can be recorded")]
    TooManyEvents { limit: usize },
    #[error("no pledge or mortgage with reference {0:?} is registered")]
    UnknownPledge(String),
    #[error("a pledge or mortgage with reference {0:?} is already registered")]
    PledgeExists(String),
    #[error("the licence already has {limit} open pledges")]
    TooManyPledges { limit: usize },
    #[error("{0} cannot hand its licences to itself")]
    TransferToItself(AuthorityId),
    #[error(
        "the licence's validity ended at {valid_until}, not after {at}: an ended licence takes no pledge"
    )]
    LicenceExpired { valid_until: TimeMs, at: TimeMs },
    #[error("{authority} (region {authority_region}) cannot act for region {region}")]
    RegionOutsideAuthority {
        authority: AuthorityId,
        authority_region: RegionCode,
        region: RegionCode,
    },
    #[error("no recognition {0}")]
    UnknownRecognition(Hash32),
    #[error("recognition {0} was already withdrawn")]
    AlreadyWithdrawn(Hash32),
    #[error("no objection {0}")]
    UnknownObjection(Hash32),
    #[error("objection {0} was already resolved")]
    AlreadyResolved(Hash32),
    #[error("the licence already has {limit} open objections")]
    TooManyObjections { limit: usize },
    #[error(
        "a validator change must take effect after height {height} and within {limit} blocks; it names {effective_height}"
    )]
    BadEffectiveHeight {
        height: Height,
        effective_height: Height,
        limit: u64,
    },
    #[error("no node with key {0}")]
    UnknownNode(PublicKey),
    #[error("the change would leave no validator")]
    NoValidatorLeft,
    #[error("the registry would hold {count} nodes; the limit is {limit}")]
    TooManyNodes { count: usize, limit: usize },
    #[error("{limit} validator changes are already pending")]
    TooManyPendingChanges { limit: usize },
    #[error(
        "{authority} has written its quota of {limit} transactions in the window of {window_blocks} blocks that ends at height {window_end}; it may write again from height {}", .window_end.saturating_add(1)
    )]
    WriteQuotaExceeded {
        authority: AuthorityId,
        limit: u64,
        window_blocks: u64,
        window_end: Height,
    },
    #[error("{0} has no write quota to clear")]
    NoWriteQuota(QuotaScope),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{filer} already has objection {objection} open on the licence")]
    ObjectionAlreadyOpen {
        filer: AuthorityId,
        objection: Hash32,
    },
    #[error(
        "the departments of region {region} already have {limit} objections open on the licence"
    )]
    TooManyObjectionsFromRegion { region: RegionCode, limit: usize },
    #[error("the licence has recorded {limit} objections, the most one licence keeps")]
    TooManyObjectionsRecorded { limit: usize },
    #[error(
        "{authority} may not object to the licence: it is neither a department of the licence's province, a supervisor of its type there, nor a recognizer of a region that recognises it"
    )]
    NotEntitledToObject { authority: AuthorityId },
    #[error("{authority} issued the licence and may not settle an objection to it alone")]
    IssuerResolvesAlone { authority: AuthorityId },
    #[error(
        "{authority} may not resolve the objection: only a supervisor of the licence's type and region or the governors may"
    )]
    NotEntitledToResolve { authority: AuthorityId },
    #[error("an upheld objection names the event of the licence's history that corrected it")]
    UpheldWithoutFollowUp,
    #[error("event {index} of the licence's history is not a follow-up of the objection: {why}")]
    BadFollowUp { index: u32, why: &'static str },
    #[error(
        "`{field}` {effective_at} is {} ms before the block time {block_time}; an event may be dated at most {limit_ms} ms ({} days) back (older events enter through the governors' correct_event)",
        .block_time.saturating_sub(*.effective_at), .limit_ms / crate::limits::DAY_MS
    )]
    EffectiveTimeTooFarBack {
        field: &'static str,
        effective_at: TimeMs,
        block_time: TimeMs,
        limit_ms: u64,
    },
    #[error(
        "`{field}` {effective_at} is {} ms after the block time {block_time}; an event may be scheduled at most {limit_ms} ms ({} days) ahead",
        .effective_at.saturating_sub(*.block_time), .limit_ms / crate::limits::DAY_MS
    )]
    EffectiveTimeTooFarAhead {
        field: &'static str,
        effective_at: TimeMs,
        block_time: TimeMs,
        limit_ms: u64,
    },
    #[error("licence {type_code}/{number} has {events} events (0 to {}); there is no event {event}", .events.saturating_sub(1))]
    UnknownEvent {
        type_code: TypeCode,
        number: LicenceNumber,
        event: u32,
        events: usize,
    },
    #[error("event {event} ({kind}) cannot be corrected this way: {why}")]
    CorrectionNotAllowed {
        event: u32,
        kind: &'static str,
        why: &'static str,
    },
    #[error("event {event} was already voided")]
    EventAlreadyVoided { event: u32 },
    #[error(
        "event {event} cannot take effect at {effective_at}: the events that count around it take effect from {earliest} to {}", .latest.map_or("no end".to_owned(), |latest| latest.to_string())
    )]
    CorrectionOutOfOrder {
        event: u32,
        effective_at: TimeMs,
        earliest: TimeMs,
        latest: Option<TimeMs>,
    },
    #[error(
        "voiding event {event} leaves event {later} without ground: {problem}; correct event {later} first"
    )]
    CorrectionBreaksHistory {
        event: u32,
        later: u32,
        problem: String,
    },
    #[error(
        "`{field}` holds the invisible format character U+{:04X} (Unicode category Cf), which would make text that looks the same differ or read backwards", u32::from(*.found)
    )]
    FormatCharacter { field: &'static str, found: char },
    #[error("licence number {number:?} is not in its canonical form: {problem}")]
    NonCanonicalNumber {
        number: LicenceNumber,
        problem: &'static str,
    },
    #[error(
        "created_at {created_at} is more than {age_ms_max} ms before the block time {block_time}"
    )]
    CreatedTooLongAgo {
        created_at: TimeMs,
        block_time: TimeMs,
        age_ms_max: u64,
    },
    #[error(
        "valid_from {valid_from} is outside the window a new licence may start in: from {earliest} to {latest} (ms since the epoch)"
    )]
    ValidFromOutOfRange {
        valid_from: TimeMs,
        earliest: TimeMs,
        latest: TimeMs,
    },
    #[error(
        "{holder} already holds {type_code} licence {number}, which has not ended; a type of one licence per holder issues no second"
    )]
    HolderAlreadyLicensed {
        type_code: TypeCode,
        holder: String,
        number: LicenceNumber,
    },
    #[error("licence number {number} must be the holder's USCC {holder}")]
    NumberNotHolderUscc {
        number: LicenceNumber,
        holder: String,
    },
    #[error("face field `{field}` must be the holder's own USCC {holder}")]
    FaceNotHolder { field: String, holder: String },
    #[error("face field `{field}` is {value}, outside its bounds: {bound}")]
    FaceOutOfBounds {
        field: String,
        value: String,
        bound: String,
    },
    #[error("licence type {type_code} was retired at height {retired_at}; it issues no licence")]
    TypeRetired {
        type_code: TypeCode,
        retired_at: Height,
    },
    #[error("the amendment of type {type_code} {problem}: `{field}`")]
    TypeAmendmentNotAllowed {
        type_code: TypeCode,
        field: String,
        problem: &'static str,
    },
    #[error("licence type {type_code} has no version {version}")]
    UnknownTypeVersion { type_code: TypeCode, version: u32 },
    #[error(
        "the recognitions of {type_code} for use in {region} are at their limit of {limit} in \
         force or yet to end; withdraw one first"
    )]
    RecognitionSetFull {
        region: RegionCode,
        type_code: TypeCode,
        limit: usize,
    },
    #[error(
        "{recognizer} already holds {limit} of the recognitions of {type_code} for use in \
         {region} that have not ended, its share of them; withdraw one first"
    )]
    RecognitionShareFull {
        recognizer: AuthorityId,
        region: RegionCode,
        type_code: TypeCode,
        limit: usize,
    },
    #[error("holder {holder} already holds {limit} licences, the most one holder's list may hold")]
    HolderLicencesFull { holder: String, limit: usize },
}

impl RuleError {
    /// A stable machine-readable code for the API and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            RuleError::WrongChain { .. } => "wrong_chain",
            RuleError::Replay(_) | RuleError::DuplicateInBlock(_) => "replay",
            RuleError::NonceNotIncreasing { .. } => "nonce_not_increasing",
            RuleError::NonceGap { .. } => "nonce_gap",
            RuleError::CreatedInFuture { .. } => "created_in_future",
            RuleError::UnknownAuthority(_) => "unknown_authority",
            RuleError::UnknownNamedAuthority(_) => "unknown_named_authority",
            RuleError::NoKeyAtHeight { .. } => "key_not_valid",
            RuleError::BadSignature { .. } => "bad_signature",
            RuleError::MissingRole { .. } => "missing_role",
            RuleError::EndorserNotGovernor(_) => "endorser_not_governor",
            RuleError::TooFewGovernorSignatures { .. } => "too_few_governor_signatures",
            RuleError::UnexpectedEndorser(_) => "unexpected_endorser",
            RuleError::AuthorityExists(_) => "authority_exists",
            RuleError::KeyRejected(_) => "key_rejected",
            RuleError::KeyInUse(_) => "key_in_use",
            RuleError::RotationNotLater { .. } => "rotation_not_later",
            RuleError::RotationPending { .. } => "rotation_pending",
            RuleError::RotationTooFar { .. } => "rotation_too_far",
            RuleError::GovernorRotationTooLate { .. } => "governor_rotation_too_late",
            RuleError::CompromiseOutOfRange { .. } => "compromise_out_of_range",
            RuleError::TooManyKeys { .. } => "too_many_keys",
            RuleError::TooManyGovernors { .. } => "too_many_governors",
            RuleError::NoGovernorLeft => "no_governor_left",
            RuleError::TypeExists(_) => "type_exists",
            RuleError::UnknownType(_) => "unknown_type",
            RuleError::GrantExists { .. } => "grant_exists",
            RuleError::NoSuchGrant { .. } => "no_such_grant",
            RuleError::TooManyGrantPeriods { .. } => "too_many_grant_periods",
            RuleError::NotGranted { .. } => "not_granted",
            RuleError::DuplicateLicence { .. } => "duplicate_licence",
            RuleError::UnknownLicence { .. } => "unknown_licence",
            RuleError::HolderKindMismatch { .. } => "holder_kind_mismatch",
            RuleError::Schema { .. } => "schema_violation",
            RuleError::FieldIdentifier { .. } => "bad_identifier",
            RuleError::EmptyValidity { .. } => "empty_validity",
            RuleError::IllegalTransition(_) => "illegal_transition",
            RuleError::ActionNotPermitted { .. } => "action_not_permitted",
            RuleError::NotIssuer { .. } => "not_issuer",
            RuleError::EffectiveTimeBeforeLastEvent { .. } => "effective_time_before_last_event",
            RuleError::TooManyEvents { .. } => "too_many_events",
            RuleError::UnknownPledge(_) => "unknown_pledge",
            RuleError::PledgeExists(_) => "pledge_exists",
            RuleError::TooManyPledges { .. } => "too_many_pledges",
            RuleError::TransferToItself(_) => "transfer_to_itself",
            RuleError::LicenceExpired { .. } => "licence_expired",
            RuleError::RegionOutsideAuthority { .. } => "region_outside_authority",
            RuleError::UnknownRecognition(_) => "unknown_recognition",
            RuleError::AlreadyWithdrawn(_) => "already_withdrawn",
            RuleError::UnknownObjection(_) => "unknown_objection",
            RuleError::AlreadyResolved(_) => "already_resolved",
            RuleError::TooManyObjections { .. } => "too_many_objections",
            RuleError::BadEffectiveHeight { .. } => "bad_effective_height",
            RuleError::UnknownNode(_) => "unknown_node",
            RuleError::NoValidatorLeft => "no_validator_left",
            RuleError::TooManyNodes { .. } => "too_many_nodes",
            RuleError::TooManyPendingChanges { .. } => "too_many_pending_changes",
            RuleError::WriteQuotaExceeded { .. } => "write_quota_exceeded",
            RuleError::NoWriteQuota(_) => "no_write_quota",
            RuleError::State(_) => "state_unavailable",
            RuleError::ObjectionAlreadyOpen { .. } => "objection_already_open",
            RuleError::TooManyObjectionsFromRegion { .. } => "too_many_objections_from_region",
            RuleError::TooManyObjectionsRecorded { .. } => "too_many_objections_recorded",
            RuleError::NotEntitledToObject { .. } => "not_entitled_to_object",
            RuleError::IssuerResolvesAlone { .. } => "issuer_resolves_alone",
            RuleError::NotEntitledToResolve { .. } => "not_entitled_to_resolve",
            RuleError::UpheldWithoutFollowUp => "upheld_without_follow_up",
            RuleError::BadFollowUp { .. } => "bad_follow_up",
            RuleError::EffectiveTimeTooFarBack { .. } => "effective_time_too_far_back",
            RuleError::EffectiveTimeTooFarAhead { .. } => "effective_time_too_far_ahead",
            RuleError::UnknownEvent { .. } => "unknown_event",
            RuleError::CorrectionNotAllowed { .. } => "correction_not_allowed",
            RuleError::EventAlreadyVoided { .. } => "event_already_voided",
            RuleError::CorrectionOutOfOrder { .. } => "correction_out_of_order",
            RuleError::CorrectionBreaksHistory { .. } => "correction_breaks_history",
            RuleError::FormatCharacter { .. } => "format_character",
            RuleError::NonCanonicalNumber { .. } => "non_canonical_number",
            RuleError::CreatedTooLongAgo { .. } => "created_too_long_ago",
            RuleError::ValidFromOutOfRange { .. } => "valid_from_out_of_range",
            RuleError::HolderAlreadyLicensed { .. } => "holder_already_licensed",
            RuleError::NumberNotHolderUscc { .. } => "number_not_holder_uscc",
            RuleError::FaceNotHolder { .. } => "face_not_holder",
            RuleError::FaceOutOfBounds { .. } => "face_out_of_bounds",
            RuleError::TypeRetired { .. } => "type_retired",
            RuleError::TypeAmendmentNotAllowed { .. } => "type_amendment_not_allowed",
            RuleError::UnknownTypeVersion { .. } => "unknown_type_version",
            RuleError::RecognitionSetFull { .. } => "recognition_set_full",
            RuleError::RecognitionShareFull { .. } => "recognition_share_full",
            RuleError::HolderLicencesFull { .. } => "holder_licences_full",
        }
    }

    /// Whether the failure is the node's (its store), not the transaction's.
    pub fn is_internal(&self) -> bool {
        matches!(self, RuleError::State(_))
    }
}
