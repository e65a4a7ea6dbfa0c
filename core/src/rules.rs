//! The rules: one deterministic function that applies a transaction to the state or rejects
//! it with a typed reason (DESIGN.md section 3). It is used both to admit a transaction to the
//! mempool and to execute a block, so that every node accepts exactly the same transactions.
//!
//! A rejected transaction changes nothing: [`apply_transaction`] works on a scratch copy of the
//! records it touches and merges them into the block's [`Overlay`] only when every check
//! passed.
//!
//! Signatures are checked apart from the other rules, for a whole block at once
//! ([`check_signatures`]), because the keys valid at a height never depend on transactions of
//! the same block: a registered key signs from the next height on, and a rotation takes effect
//! at a later height than the block that records it.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ops::Deref;
use std::sync::Arc;

use crate::crypto::{self, PublicKey, SignatureError};
use crate::hash::Hash32;
use crate::ident::{IdentError, RegionCode, Uscc};
use crate::limits;
use crate::records::{
    Authority, AuthorityId, FaceValue, FieldKind, Grant, Height, IllegalTransition, IssuedBy,
    KeyEpoch, Licence, LicenceEvent, LicenceEventKind, LicenceNumber, LicenceType, NodeChange,
    NodeEntry, NodeRegistry, Objection, PendingNodeChange, Recognition, Record, RecordKey,
    Resolution, Role, StatusAction, TimeMs, TypeCode, Visibility, transition,
};
use crate::tx::{
    EncodedTransaction, Transaction, TxBody, TxPayload, ValidUntil, signing_message_of,
};

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Why the state could not be read (the store's own failure, not the transaction's).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("state unavailable: {0}")]
pub struct StateError(pub String);

/// Read access to the committed state, as the rules need it.
pub trait StateReader {
    /// The current record under `key`.
    fn record(&self, key: &RecordKey) -> Result<Option<Record>, StateError>;
    /// Whether a transaction with this id was already committed.
    fn contains_transaction(&self, id: &Hash32) -> Result<bool, StateError>;
}

/// Where a block is being executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context<'a> {
    pub chain_id: &'a str,
    /// The height of the block being executed (genesis is 0).
    pub height: Height,
    /// The block's agreed time.
    pub time: TimeMs,
}

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
    #[error("{authority} holds no grant for {type_code} in {region}")]
    NoSuchGrant {
        authority: AuthorityId,
        type_code: TypeCode,
        region: RegionCode,
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
        expected: crate::records::HolderKind,
        found: crate::records::HolderKind,
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
    #[error(transparent)]
    State(#[from] StateError),
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
            RuleError::TooManyKeys { .. } => "too_many_keys",
            RuleError::TooManyGovernors { .. } => "too_many_governors",
            RuleError::NoGovernorLeft => "no_governor_left",
            RuleError::TypeExists(_) => "type_exists",
            RuleError::UnknownType(_) => "unknown_type",
            RuleError::GrantExists { .. } => "grant_exists",
            RuleError::NoSuchGrant { .. } => "no_such_grant",
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
            RuleError::State(_) => "state_unavailable",
        }
    }

    /// Whether the failure is the node's (its store), not the transaction's.
    pub fn is_internal(&self) -> bool {
        matches!(self, RuleError::State(_))
    }
}

/// The records written by the transactions of one block so far, over the committed state.
#[derive(Debug)]
pub struct Overlay<'a, R: StateReader + ?Sized> {
    base: &'a R,
    writes: BTreeMap<RecordKey, Record>,
    applied: std::collections::HashSet<Hash32>,
    /// Committed records of the kinds that many transactions of a block read (the catalogue,
    /// grants, authorities, governors, the node registry), decoded once per block and shared,
    /// not copied, with the transactions that read them.
    shared_reads: RefCell<HashMap<RecordKey, Option<Arc<Record>>>>,
}

/// A record the rules only read: borrowed from the block's writes, or shared with the
/// overlay's cache of committed records, so that reading it copies nothing.
enum SharedRecord<'r> {
    Borrowed(&'r Record),
    Shared(Arc<Record>),
}

impl Deref for SharedRecord<'_> {
    type Target = Record;

    fn deref(&self) -> &Record {
        match self {
            SharedRecord::Borrowed(record) => record,
            SharedRecord::Shared(record) => record,
        }
    }
}

/// Whether records under `key` are read by many transactions of a block, so that the overlay
/// keeps them decoded; licences, recognitions and objections are read by one or two.
fn is_shared(key: &RecordKey) -> bool {
    matches!(
        key,
        RecordKey::Authority(_)
            | RecordKey::LicenceType(_)
            | RecordKey::Grant(..)
            | RecordKey::Nodes
            | RecordKey::Governors
    )
}

impl<'a, R: StateReader + ?Sized> Overlay<'a, R> {
    pub fn new(base: &'a R) -> Self {
        Overlay {
            base,
            writes: BTreeMap::new(),
            applied: Default::default(),
            shared_reads: RefCell::new(HashMap::new()),
        }
    }

    /// The record under `key`, as the block has left it so far.
    pub fn record(&self, key: &RecordKey) -> Result<Option<Record>, StateError> {
        if !self.writes.contains_key(key) && !is_shared(key) {
            return self.base.record(key);
        }
        Ok(self.shared_record(key)?.map(|record| (*record).clone()))
    }

    /// The record under `key`, as the block has left it so far, without copying it where the
    /// block wrote it or the overlay keeps it.
    fn shared_record(&self, key: &RecordKey) -> Result<Option<SharedRecord<'_>>, StateError> {
        if let Some(record) = self.writes.get(key) {
            return Ok(Some(SharedRecord::Borrowed(record)));
        }
        if !is_shared(key) {
            return Ok(self
                .base
                .record(key)?
                .map(|record| SharedRecord::Shared(Arc::new(record))));
        }
        if let Some(record) = self.shared_reads.borrow().get(key) {
            return Ok(record.clone().map(SharedRecord::Shared));
        }
        let record = self.base.record(key)?.map(Arc::new);
        self.shared_reads
            .borrow_mut()
            .insert(key.clone(), record.clone());
        Ok(record.map(SharedRecord::Shared))
    }

    /// The records written, by key.
    pub fn writes(&self) -> &BTreeMap<RecordKey, Record> {
        &self.writes
    }

    /// Gives up the writes, for the store to persist.
    pub fn into_writes(self) -> BTreeMap<RecordKey, Record> {
        self.writes
    }

    /// Takes `signer`'s nonces below `nonce` as used, up to `ahead_max` beyond its next one,
    /// for admission: a transaction that waits for its predecessors is checked as if they had
    /// committed. A nonce further ahead is refused ([`RuleError::NonceGap`]); one at or below
    /// the last changes nothing (the rules refuse it).
    pub fn assume_nonces_before(
        &mut self,
        signer: &AuthorityId,
        nonce: u64,
        ahead_max: u64,
    ) -> Result<(), RuleError> {
        let key = RecordKey::Authority(signer.clone());
        let Some(Record::Authority(mut authority)) = self.record(&key)? else {
            return Ok(());
        };
        let expected = authority.last_nonce.saturating_add(1);
        if nonce <= expected {
            return Ok(());
        }
        if nonce - expected > ahead_max {
            return Err(RuleError::NonceGap {
                authority: signer.clone(),
                expected,
                found: nonce,
            });
        }
        authority.last_nonce = nonce - 1;
        self.writes.insert(key, Record::Authority(authority));
        Ok(())
    }

    fn merge(&mut self, writes: BTreeMap<RecordKey, Record>, id: Hash32) {
        self.writes.extend(writes);
        self.applied.insert(id);
    }
}

/// A scratch view for one transaction: reads fall through to the block's overlay, writes stay
/// here until the transaction has passed every rule.
struct Scratch<'o, 'a, R: StateReader + ?Sized> {
    overlay: &'o Overlay<'a, R>,
    writes: BTreeMap<RecordKey, Record>,
}

macro_rules! getter {
    ($name:ident, $variant:ident, $type:ty, $key:ident : $key_type:ty => $make_key:expr) => {
        fn $name(&self, $key: &$key_type) -> Result<Option<$type>, StateError> {
            match self.get(&$make_key)? {
                Some(Record::$variant(value)) => Ok(Some(value)),
                Some(other) => Err(StateError(format!(
                    "record under {:?} has the wrong kind: {:?}",
                    $make_key,
                    other.key()
                ))),
                None => Ok(None),
            }
        }
    };
}

impl<R: StateReader + ?Sized> Scratch<'_, '_, R> {
    fn get(&self, key: &RecordKey) -> Result<Option<Record>, StateError> {
        match self.writes.get(key) {
            Some(record) => Ok(Some(record.clone())),
            None => self.overlay.record(key),
        }
    }

    /// The record under `key` for reading only: borrowed or shared, not copied.
    fn get_shared(&self, key: &RecordKey) -> Result<Option<SharedRecord<'_>>, StateError> {
        match self.writes.get(key) {
            Some(record) => Ok(Some(SharedRecord::Borrowed(record))),
            None => self.overlay.shared_record(key),
        }
    }

    fn put(&mut self, record: Record) {
        self.writes.insert(record.key(), record);
    }

    getter!(authority, Authority, Authority, id: AuthorityId => RecordKey::Authority(id.clone()));
    getter!(licence_type, LicenceType, LicenceType, code: TypeCode => RecordKey::LicenceType(code.clone()));
    getter!(recognition, Recognition, Recognition, id: Hash32 => RecordKey::Recognition(*id));
    getter!(objection, Objection, Objection, id: Hash32 => RecordKey::Objection(*id));

    fn grant(
        &self,
        authority: &AuthorityId,
        type_code: &TypeCode,
        region: &RegionCode,
    ) -> Result<Option<Grant>, StateError> {
        match self.get(&RecordKey::Grant(
            authority.clone(),
            type_code.clone(),
            region.clone(),
        ))? {
            Some(Record::Grant(grant)) => Ok(Some(grant)),
            Some(_) => Err(StateError("grant record has the wrong kind".into())),
            None => Ok(None),
        }
    }

    fn licence(
        &self,
        type_code: &TypeCode,
        number: &LicenceNumber,
    ) -> Result<Option<Licence>, StateError> {
        match self.get(&RecordKey::Licence(type_code.clone(), number.clone()))? {
            Some(Record::Licence(licence)) => Ok(Some(licence)),
            Some(_) => Err(StateError("licence record has the wrong kind".into())),
            None => Ok(None),
        }
    }

    fn governors(&self) -> Result<Vec<AuthorityId>, StateError> {
        match self.get(&RecordKey::Governors)? {
            Some(Record::Governors(list)) => Ok(list),
            Some(_) => Err(StateError("governors record has the wrong kind".into())),
            None => Ok(Vec::new()),
        }
    }

    fn nodes(&self) -> Result<NodeRegistry, StateError> {
        match self.get(&RecordKey::Nodes)? {
            Some(Record::Nodes(registry)) => Ok(registry),
            Some(_) => Err(StateError("node registry has the wrong kind".into())),
            None => Ok(NodeRegistry::default()),
        }
    }

    fn require_authority(&self, id: &AuthorityId) -> Result<Authority, RuleError> {
        self.authority(id)?
            .ok_or_else(|| RuleError::UnknownAuthority(id.clone()))
    }

    fn require_type(&self, code: &TypeCode) -> Result<LicenceType, RuleError> {
        self.licence_type(code)?
            .ok_or_else(|| RuleError::UnknownType(code.clone()))
    }

    fn require_licence(
        &self,
        type_code: &TypeCode,
        number: &LicenceNumber,
    ) -> Result<Licence, RuleError> {
        self.licence(type_code, number)?
            .ok_or_else(|| RuleError::UnknownLicence {
                type_code: type_code.clone(),
                number: number.clone(),
            })
    }

    /// Whether a grant of `type_code` to `authority` is in force at `height` in a region
    /// covering `region` (the region itself, its city, its province, or the nation), read
    /// without copying the grant.
    fn has_covering_grant(
        &self,
        authority: &AuthorityId,
        type_code: &TypeCode,
        region: &RegionCode,
        height: Height,
    ) -> Result<bool, StateError> {
        for candidate in region.covering_regions() {
            let record = self.get_shared(&RecordKey::Grant(
                authority.clone(),
                type_code.clone(),
                candidate,
            ))?;
            match record.as_deref() {
                Some(Record::Grant(grant)) if grant.in_force_at(height) => return Ok(true),
                Some(Record::Grant(_)) | None => {}
                Some(_) => return Err(StateError("grant record has the wrong kind".into())),
            }
        }
        Ok(false)
    }
}

/// Checks every endorsement of `transactions` against the keys valid at `context.height` in
/// `state` (the state before the block), in one batch. Returns, per transaction, whether its
/// signatures hold; the other rules run in [`apply_transaction`].
pub fn check_signatures<R: StateReader + ?Sized>(
    state: &R,
    context: &Context<'_>,
    transactions: &[&Transaction],
) -> Vec<Result<(), RuleError>> {
    let encoded: Vec<EncodedTransaction> = transactions
        .iter()
        .map(|transaction| transaction.encode())
        .collect();
    let candidates: Vec<SignatureCandidate<'_>> = transactions
        .iter()
        .zip(&encoded)
        .map(|(transaction, encoded)| SignatureCandidate {
            transaction,
            id: encoded.id(),
            payload_bytes: encoded.payload_bytes(),
        })
        .collect();
    check_candidate_signatures(state, context, &candidates, &NothingVerified).results
}

/// A transaction whose signatures are to be checked, with what its encoding already gave.
#[derive(Clone, Copy, Debug)]
pub struct SignatureCandidate<'a> {
    pub transaction: &'a Transaction,
    /// Its id ([`Transaction::id`]).
    pub id: Hash32,
    /// Its payload's canonical bytes ([`EncodedTransaction::payload_bytes`]).
    pub payload_bytes: &'a [u8],
}

/// Signatures already found acceptable under hutong's rule, so that a node checks each one
/// once: the transaction id fixes the payload and the signature bytes, so a signature that
/// verified once under a key verifies again under the same key.
pub trait VerifiedSignatures {
    /// Whether the endorsement of transaction `id` under `key` was already verified.
    fn contains(&self, id: &Hash32, key: &PublicKey) -> bool;
}

/// No signature known: every one is checked.
#[derive(Clone, Copy, Debug, Default)]
pub struct NothingVerified;

impl VerifiedSignatures for NothingVerified {
    fn contains(&self, _id: &Hash32, _key: &PublicKey) -> bool {
        false
    }
}

/// The outcome of [`check_candidate_signatures`].
#[derive(Debug)]
pub struct SignatureCheck {
    /// Per candidate, whether its signatures hold.
    pub results: Vec<Result<(), RuleError>>,
    /// Per candidate, the key each endorsement was checked against, in order (empty for a
    /// candidate that failed before its keys were known).
    pub keys: Vec<Vec<PublicKey>>,
    /// Endorsements whose curve arithmetic was skipped because `already_verified` held them.
    pub skipped: usize,
    /// Endorsements checked by the batch equation (or alone after it failed).
    pub checked: usize,
}

/// [`check_signatures`] on transactions encoded by the caller, skipping the arithmetic for
/// endorsements that `already_verified` holds under the key valid at `context.height`. The
/// key lookups, the chain and the encoding checks run for every candidate all the same, so
/// the results are exactly those of [`check_signatures`] whenever `already_verified` holds
/// only signatures that passed [`crate::crypto::verify`].
pub fn check_candidate_signatures<R: StateReader + ?Sized>(
    state: &R,
    context: &Context<'_>,
    candidates: &[SignatureCandidate<'_>],
    already_verified: &dyn VerifiedSignatures,
) -> SignatureCheck {
    let mut results: Vec<Result<(), RuleError>> = Vec::with_capacity(candidates.len());
    let mut keys_used: Vec<Vec<PublicKey>> = Vec::with_capacity(candidates.len());
    // One per endorsement that goes into the batch: (candidate index, endorsement index).
    let mut owners: Vec<(usize, usize)> = Vec::new();
    let mut keys: Vec<PublicKey> = Vec::new();
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut message_of_item: Vec<usize> = Vec::new();
    let mut key_cache: BTreeMap<AuthorityId, Option<PublicKey>> = BTreeMap::new();
    let mut skipped = 0usize;

    for (index, candidate) in candidates.iter().enumerate() {
        let transaction = candidate.transaction;
        let prepared = (|| -> Result<Vec<PublicKey>, RuleError> {
            let payload = &transaction.payload;
            if payload.chain_id != context.chain_id {
                return Err(RuleError::WrongChain {
                    expected: context.chain_id.to_owned(),
                    found: payload.chain_id.clone(),
                });
            }
            // The signing message carries the chain id's length in one byte.
            let length_bytes = payload.chain_id.len();
            if !(1..=crypto::CHAIN_ID_BYTES_MAX).contains(&length_bytes) {
                return Err(RuleError::BadSignature {
                    authority: payload.signer.clone(),
                    error: SignatureError::ChainIdLength { length_bytes },
                });
            }
            let mut endorsement_keys = Vec::with_capacity(transaction.signatures.len());
            for endorsement in &transaction.signatures {
                let key = match key_cache.get(&endorsement.authority) {
                    Some(key) => *key,
                    None => {
                        let key = match state
                            .record(&RecordKey::Authority(endorsement.authority.clone()))?
                        {
                            Some(Record::Authority(authority)) => {
                                authority.key_at(context.height).copied()
                            }
                            _ => None,
                        };
                        key_cache.insert(endorsement.authority.clone(), key);
                        key
                    }
                };
                let Some(key) = key else {
                    let known = matches!(
                        state.record(&RecordKey::Authority(endorsement.authority.clone()))?,
                        Some(Record::Authority(_))
                    );
                    return Err(if known {
                        RuleError::NoKeyAtHeight {
                            authority: endorsement.authority.clone(),
                            height: context.height,
                        }
                    } else {
                        RuleError::UnknownAuthority(endorsement.authority.clone())
                    });
                };
                endorsement_keys.push(key);
            }
            Ok(endorsement_keys)
        })();
        match prepared {
            Ok(endorsement_keys) => {
                let mut message_index = None;
                for (endorsement_index, key) in endorsement_keys.iter().enumerate() {
                    if already_verified.contains(&candidate.id, key) {
                        skipped += 1;
                        continue;
                    }
                    let message_index = match message_index {
                        Some(message_index) => message_index,
                        None => {
                            match signing_message_of(
                                &transaction.payload.chain_id,
                                candidate.payload_bytes,
                            ) {
                                Ok(message) => messages.push(message),
                                // Checked above; an error here would be the same one.
                                Err(_) => messages.push(Vec::new()),
                            }
                            let created = messages.len() - 1;
                            message_index = Some(created);
                            created
                        }
                    };
                    owners.push((index, endorsement_index));
                    keys.push(*key);
                    message_of_item.push(message_index);
                }
                keys_used.push(endorsement_keys);
                results.push(Ok(()));
            }
            Err(error) => {
                keys_used.push(Vec::new());
                results.push(Err(error));
            }
        }
    }

    let mut items: Vec<(&PublicKey, &[u8], &crypto::Signature)> = Vec::with_capacity(keys.len());
    for (item, (candidate_index, endorsement_index)) in owners.iter().enumerate() {
        let signature = candidates
            .get(*candidate_index)
            .and_then(|candidate| candidate.transaction.signatures.get(*endorsement_index))
            .map(|endorsement| &endorsement.signature);
        let message = message_of_item
            .get(item)
            .and_then(|message_index| messages.get(*message_index));
        if let (Some(key), Some(message), Some(signature)) = (keys.get(item), message, signature) {
            items.push((key, message.as_slice(), signature));
        }
    }
    debug_assert_eq!(items.len(), owners.len(), "every batch item has its parts");
    let checked = items.len();
    for failure in crypto::verify_batch_with_errors(&items)
        .err()
        .unwrap_or_default()
    {
        let Some((candidate_index, endorsement_index)) = owners.get(failure.index) else {
            continue;
        };
        let authority = candidates
            .get(*candidate_index)
            .and_then(|candidate| candidate.transaction.signatures.get(*endorsement_index))
            .map(|endorsement| endorsement.authority.clone());
        if let (Some(result), Some(authority)) = (results.get_mut(*candidate_index), authority)
            && result.is_ok()
        {
            *result = Err(RuleError::BadSignature {
                authority,
                error: failure.error,
            });
        }
    }
    SignatureCheck {
        results,
        keys: keys_used,
        skipped,
        checked,
    }
}

/// What a transaction did, for the store's indexes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The licence it issued or changed, if any.
    pub licence: Option<(TypeCode, LicenceNumber)>,
    /// Every authority that signed it.
    pub authorities: Vec<AuthorityId>,
}

/// Applies every validator-set change scheduled for `context.height`, before the block's
/// transactions run. The registry after it is the set that signs this block.
pub fn begin_block<R: StateReader + ?Sized>(
    overlay: &mut Overlay<'_, R>,
    context: &Context<'_>,
) -> Result<(), StateError> {
    let mut registry = match overlay.record(&RecordKey::Nodes)? {
        Some(Record::Nodes(registry)) => registry,
        Some(_) => return Err(StateError("node registry has the wrong kind".into())),
        None => return Ok(()),
    };
    if registry
        .pending
        .first()
        .is_none_or(|pending| pending.effective_height > context.height)
    {
        return Ok(());
    }
    let (due, later): (Vec<PendingNodeChange>, Vec<PendingNodeChange>) = registry
        .pending
        .drain(..)
        .partition(|pending| pending.effective_height <= context.height);
    for pending in due {
        for change in &pending.changes {
            NodeRegistry::apply_change(&mut registry.nodes, change);
        }
    }
    registry.pending = later;
    overlay
        .writes
        .insert(RecordKey::Nodes, Record::Nodes(registry));
    Ok(())
}

/// Records one equivocation carried by the block (ADR 0009). The evidence authenticates
/// itself: its age is checked against the block's height, both signatures against
/// `validator_set_at(height)` (the validator set in force at the equivocation's height, or
/// `None` when the state no longer knows it), and its slot must not be recorded yet (in the
/// state or earlier in this block). On error nothing is written.
pub fn apply_evidence<R: StateReader + ?Sized>(
    overlay: &mut Overlay<'_, R>,
    context: &Context<'_>,
    evidence: &crate::evidence::Evidence,
    validator_set_at: impl Fn(Height) -> Result<Option<hutong_consensus::ValidatorSet>, StateError>,
) -> Result<crate::evidence::EvidenceKey, crate::evidence::EvidenceRuleError> {
    use crate::evidence::{self, EvidenceKey, EvidenceRecord, EvidenceRuleError};
    let key = EvidenceKey::of(evidence);
    evidence::check_age(key.height, context.height)?;
    let Some(set) = validator_set_at(key.height)? else {
        return Err(EvidenceRuleError::ValidatorSetUnavailable { height: key.height });
    };
    let key = evidence::check_evidence(evidence, context.chain_id, context.height, &set)?;
    let record_key = RecordKey::Evidence(key.clone());
    if overlay.record(&record_key)?.is_some() {
        return Err(EvidenceRuleError::AlreadyRecorded {
            validator: key.validator,
            height: key.height,
            round: key.round,
            kind: key.kind.as_str(),
        });
    }
    overlay.writes.insert(
        record_key,
        Record::Evidence(EvidenceRecord {
            key: key.clone(),
            evidence: evidence.clone(),
            recorded_at: context.height,
        }),
    );
    Ok(key)
}

/// Applies one transaction whose signatures [`check_signatures`] accepted. On error nothing
/// is written.
pub fn apply_transaction<R: StateReader + ?Sized>(
    overlay: &mut Overlay<'_, R>,
    context: &Context<'_>,
    transaction: &Transaction,
    id: Hash32,
) -> Result<Applied, RuleError> {
    if overlay.applied.contains(&id) {
        return Err(RuleError::DuplicateInBlock(id));
    }
    let mut scratch = Scratch {
        overlay,
        writes: BTreeMap::new(),
    };
    let applied = execute(&mut scratch, context, transaction, id)?;
    let writes = scratch.writes;
    overlay.merge(writes, id);
    Ok(applied)
}

fn execute<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    context: &Context<'_>,
    transaction: &Transaction,
    id: Hash32,
) -> Result<Applied, RuleError> {
    let payload = &transaction.payload;
    if payload.chain_id != context.chain_id {
        return Err(RuleError::WrongChain {
            expected: context.chain_id.to_owned(),
            found: payload.chain_id.clone(),
        });
    }
    if payload.created_at > context.time.saturating_add(limits::TX_CLOCK_SKEW_MS_MAX) {
        return Err(RuleError::CreatedInFuture {
            created_at: payload.created_at,
            block_time: context.time,
            skew_ms: limits::TX_CLOCK_SKEW_MS_MAX,
        });
    }
    let mut signer = state.require_authority(&payload.signer)?;
    // Each of a signer's nonces is exactly one above its last (ADR 0011): a block can never
    // hold a signer's later transaction without the earlier ones.
    if payload.nonce <= signer.last_nonce {
        // Only here can the transaction be one already committed: it moved the signer's
        // nonce to its own, so a replay always lands in this branch, and the location index
        // is read for the few transactions that reach it rather than for every one.
        if state.overlay.base.contains_transaction(&id)? {
            return Err(RuleError::Replay(id));
        }
        return Err(RuleError::NonceNotIncreasing {
            authority: signer.id.clone(),
            last: signer.last_nonce,
            found: payload.nonce,
        });
    }
    if payload.nonce - signer.last_nonce > 1 {
        return Err(RuleError::NonceGap {
            authority: signer.id.clone(),
            expected: signer.last_nonce + 1,
            found: payload.nonce,
        });
    }
    let endorsers: Vec<AuthorityId> = transaction
        .signatures
        .iter()
        .map(|endorsement| endorsement.authority.clone())
        .collect();
    authorise(state, payload, &endorsers)?;

    // The nonce moves first, so that a body that rewrites the signer's own record (a key
    // rotation, a role change) starts from the updated nonce.
    signer.last_nonce = payload.nonce;
    state.put(Record::Authority(signer));

    let licence = execute_body(state, context, payload, id)?;
    Ok(Applied {
        licence,
        authorities: endorsers,
    })
}

/// Who must sign: governance records need more than two thirds of the governors; a key
/// rotation needs the authority itself or the governors; everything else is signed by the
/// signer alone.
fn authorise<R: StateReader + ?Sized>(
    state: &Scratch<'_, '_, R>,
    payload: &TxPayload,
    endorsers: &[AuthorityId],
) -> Result<(), RuleError> {
    let by_governors = match &payload.body {
        body if body.is_governance() => true,
        TxBody::RotateKey { authority, .. } => {
            !(endorsers.len() == 1 && endorsers.first() == Some(authority))
        }
        _ => false,
    };
    if !by_governors {
        if let Some(extra) = endorsers
            .iter()
            .find(|endorser| **endorser != payload.signer)
        {
            return Err(RuleError::UnexpectedEndorser(extra.clone()));
        }
        return Ok(());
    }
    let governors = state.governors()?;
    for endorser in endorsers {
        if governors.binary_search(endorser).is_err() {
            return Err(RuleError::EndorserNotGovernor(endorser.clone()));
        }
    }
    let required = governors.len() * 2 / 3 + 1;
    if endorsers.len() < required {
        return Err(RuleError::TooFewGovernorSignatures {
            signed: endorsers.len(),
            governors: governors.len(),
            required,
        });
    }
    Ok(())
}

/// The error for a record found under `key` that is not of the key's kind (a corrupt store).
fn wrong_kind(key: &RecordKey) -> StateError {
    StateError(format!("the record under {key:?} has the wrong kind"))
}

fn require_role(authority: &Authority, role: Role) -> Result<(), RuleError> {
    if authority.has_role(role) {
        Ok(())
    } else {
        Err(RuleError::MissingRole {
            authority: authority.id.clone(),
            role,
        })
    }
}

fn sorted_roles(roles: &[Role]) -> Vec<Role> {
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    roles
}

fn execute_body<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    context: &Context<'_>,
    payload: &TxPayload,
    id: Hash32,
) -> Result<Option<(TypeCode, LicenceNumber)>, RuleError> {
    let signer_id = &payload.signer;
    match &payload.body {
        TxBody::RegisterAuthority(draft) => {
            if state.authority(&draft.id)?.is_some() {
                return Err(RuleError::AuthorityExists(draft.id.clone()));
            }
            draft.key.validate().map_err(RuleError::KeyRejected)?;
            let authority = Authority {
                id: draft.id.clone(),
                name_zh: draft.name_zh.clone(),
                name_en: draft.name_en.clone(),
                region: draft.region.clone(),
                uscc: draft.uscc.clone(),
                roles: sorted_roles(&draft.roles),
                // The new key signs from the next block on (see the module docs).
                keys: vec![KeyEpoch {
                    key: draft.key,
                    valid_from: context.height + 1,
                    valid_until: None,
                }],
                last_nonce: 0,
                registered_at: context.height,
            };
            update_governors(state, &authority.id, authority.has_role(Role::Governor))?;
            state.put(Record::Authority(authority));
            Ok(None)
        }
        TxBody::UpdateAuthority {
            id: target,
            name_zh,
            name_en,
            roles,
        } => {
            let mut authority = state.require_authority(target)?;
            if let Some(name) = name_zh {
                authority.name_zh = name.clone();
            }
            if let Some(name) = name_en {
                authority.name_en = name.clone();
            }
            if let Some(roles) = roles {
                authority.roles = sorted_roles(roles);
                update_governors(state, target, authority.has_role(Role::Governor))?;
            }
            state.put(Record::Authority(authority));
            Ok(None)
        }
        TxBody::RotateKey {
            authority: target,
            new_key,
            effective_height,
        } => {
            let mut authority = state.require_authority(target)?;
            new_key.validate().map_err(RuleError::KeyRejected)?;
            if *effective_height <= context.height {
                return Err(RuleError::RotationNotLater {
                    height: context.height,
                    effective_height: *effective_height,
                });
            }
            if authority.keys.iter().any(|epoch| epoch.key == *new_key) {
                return Err(RuleError::KeyInUse(target.clone()));
            }
            if authority.keys.len() >= limits::KEYS_PER_AUTHORITY_MAX {
                return Err(RuleError::TooManyKeys {
                    authority: target.clone(),
                    limit: limits::KEYS_PER_AUTHORITY_MAX,
                });
            }
            if let Some(scheduled) = authority
                .keys
                .last()
                .filter(|epoch| epoch.valid_from > context.height)
            {
                return Err(RuleError::RotationPending {
                    effective_height: scheduled.valid_from,
                });
            }
            if let Some(current) = authority.keys.last_mut() {
                current.valid_until = Some(*effective_height);
            }
            authority.keys.push(KeyEpoch {
                key: *new_key,
                valid_from: *effective_height,
                valid_until: None,
            });
            state.put(Record::Authority(authority));
            Ok(None)
        }
        TxBody::DefineLicenceType(draft) => {
            if state.licence_type(&draft.code)?.is_some() {
                return Err(RuleError::TypeExists(draft.code.clone()));
            }
            state.put(Record::LicenceType(LicenceType {
                code: draft.code.clone(),
                name_zh: draft.name_zh.clone(),
                name_en: draft.name_en.clone(),
                holder_kind: draft.holder_kind,
                fields: draft.fields.clone(),
                default_validity_days: draft.default_validity_days,
                supervisor_actions: draft.supervisor_actions.clone(),
                defined_at: context.height,
            }));
            Ok(None)
        }
        TxBody::GrantIssuance {
            authority,
            type_code,
            region,
        } => {
            state.require_authority(authority)?;
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
            if grant.periods.len() >= limits::KEYS_PER_AUTHORITY_MAX {
                return Err(RuleError::TooManyEvents {
                    limit: limits::KEYS_PER_AUTHORITY_MAX,
                });
            }
            grant.periods.push((context.height, None));
            state.put(Record::Grant(grant));
            Ok(None)
        }
        TxBody::RevokeGrant {
            authority,
            type_code,
            region,
        } => {
            let no_grant = || RuleError::NoSuchGrant {
                authority: authority.clone(),
                type_code: type_code.clone(),
                region: region.clone(),
            };
            let mut grant = state
                .grant(authority, type_code, region)?
                .ok_or_else(no_grant)?;
            match grant.periods.last_mut() {
                Some((_, until @ None)) => *until = Some(context.height + 1),
                _ => return Err(no_grant()),
            }
            state.put(Record::Grant(grant));
            Ok(None)
        }
        TxBody::IssueLicence {
            type_code,
            number,
            holder,
            holder_name,
            region,
            face,
            valid_from,
            valid_until,
            document_hash,
        } => {
            // The issuer's and the type's records are read in place, not copied: an issuance
            // only looks at them.
            let issuer_record = state.get_shared(&RecordKey::Authority(signer_id.clone()))?;
            let issuer = match issuer_record.as_deref() {
                Some(Record::Authority(issuer)) => issuer,
                Some(_) => return Err(wrong_kind(&RecordKey::Authority(signer_id.clone())).into()),
                None => return Err(RuleError::UnknownAuthority(signer_id.clone())),
            };
            require_role(issuer, Role::Issuer)?;
            let type_record = state.get_shared(&RecordKey::LicenceType(type_code.clone()))?;
            let licence_type = match type_record.as_deref() {
                Some(Record::LicenceType(licence_type)) => licence_type,
                Some(_) => {
                    return Err(wrong_kind(&RecordKey::LicenceType(type_code.clone())).into());
                }
                None => return Err(RuleError::UnknownType(type_code.clone())),
            };
            if !state.has_covering_grant(signer_id, type_code, region, context.height)? {
                return Err(RuleError::NotGranted {
                    authority: signer_id.clone(),
                    type_code: type_code.clone(),
                    region: region.clone(),
                });
            }
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
            let valid_until = match valid_until {
                ValidUntil::TypeDefault => licence_type
                    .default_validity_days
                    .map(|days| valid_from.saturating_add(u64::from(days) * DAY_MS)),
                ValidUntil::At(until) => Some(*until),
                ValidUntil::LongTerm => None,
            };
            if let Some(until) = valid_until
                && until <= *valid_from
            {
                return Err(RuleError::EmptyValidity {
                    valid_from: *valid_from,
                    valid_until: until,
                });
            }
            let licence = Licence {
                type_code: type_code.clone(),
                number: number.clone(),
                holder: holder.clone(),
                holder_name: holder_name.clone(),
                issuer: signer_id.clone(),
                region: region.clone(),
                face: face.clone(),
                valid_from: *valid_from,
                valid_until,
                document_hash: *document_hash,
                issued_at: context.height,
                events: vec![LicenceEvent {
                    kind: LicenceEventKind::Issued,
                    effective_at: *valid_from,
                    reason: String::new(),
                    by: signer_id.clone(),
                    height: context.height,
                    tx: id,
                }],
                open_objections: Vec::new(),
            };
            drop((issuer_record, type_record));
            state.put(Record::Licence(licence));
            Ok(Some((type_code.clone(), number.clone())))
        }
        TxBody::ChangeStatus {
            type_code,
            number,
            action,
            effective_at,
            reason,
        } => {
            let mut licence = state.require_licence(type_code, number)?;
            let actor = state.require_authority(signer_id)?;
            if actor.id != licence.issuer {
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
                if !state.has_covering_grant(
                    &actor.id,
                    type_code,
                    &licence.region,
                    context.height,
                )? {
                    return Err(RuleError::NotGranted {
                        authority: actor.id.clone(),
                        type_code: type_code.clone(),
                        region: licence.region.clone(),
                    });
                }
            }
            let standing = licence.final_standing();
            transition(standing.status, action)?;
            match action {
                StatusAction::PledgeRegistered { reference, .. } => {
                    if standing
                        .pledges
                        .iter()
                        .any(|(existing, _)| existing == reference)
                    {
                        return Err(RuleError::PledgeExists(reference.clone()));
                    }
                    if standing.pledges.len() >= limits::OPEN_PLEDGES_PER_LICENCE_MAX {
                        return Err(RuleError::TooManyPledges {
                            limit: limits::OPEN_PLEDGES_PER_LICENCE_MAX,
                        });
                    }
                }
                StatusAction::PledgeReleased { reference }
                    if !standing
                        .pledges
                        .iter()
                        .any(|(existing, _)| existing == reference) =>
                {
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
                (*effective_at, reason, signer_id),
                context,
                id,
            )?;
            state.put(Record::Licence(licence));
            Ok(Some((type_code.clone(), number.clone())))
        }
        TxBody::AmendLicence {
            type_code,
            number,
            changes,
            effective_at,
            reason,
        } => {
            let mut licence = state.require_licence(type_code, number)?;
            if *signer_id != licence.issuer {
                return Err(RuleError::NotIssuer {
                    issuer: licence.issuer.clone(),
                    authority: signer_id.clone(),
                });
            }
            let status = licence.final_standing().status;
            if status.is_terminal() {
                return Err(IllegalTransition {
                    from: status,
                    action: "amend",
                }
                .into());
            }
            let licence_type = state.require_type(type_code)?;
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
            licence.face = face;
            push_event(
                &mut licence,
                LicenceEventKind::Amended { previous },
                (*effective_at, reason, signer_id),
                context,
                id,
            )?;
            state.put(Record::Licence(licence));
            Ok(Some((type_code.clone(), number.clone())))
        }
        TxBody::AttestRecognition {
            recognizing_region,
            type_codes,
            issued_by,
            scope,
            valid_from,
            valid_until,
        } => {
            let recognizer = state.require_authority(signer_id)?;
            require_role(&recognizer, Role::Recognizer)?;
            require_region(&recognizer, recognizing_region)?;
            for code in type_codes {
                state.require_type(code)?;
            }
            if let IssuedBy::Authority(authority) = issued_by {
                state.require_authority(authority)?;
            }
            if let Some(until) = valid_until
                && *until <= *valid_from
            {
                return Err(RuleError::EmptyValidity {
                    valid_from: *valid_from,
                    valid_until: *until,
                });
            }
            state.put(Record::Recognition(Recognition {
                id,
                recognizer: signer_id.clone(),
                recognizing_region: recognizing_region.clone(),
                type_codes: type_codes.clone(),
                issued_by: issued_by.clone(),
                scope: scope.clone(),
                valid_from: *valid_from,
                valid_until: *valid_until,
                withdrawn_at: None,
                attested_at: context.height,
            }));
            Ok(None)
        }
        TxBody::WithdrawRecognition {
            id: recognition_id,
            effective_at,
            ..
        } => {
            let mut recognition = state
                .recognition(recognition_id)?
                .ok_or(RuleError::UnknownRecognition(*recognition_id))?;
            let actor = state.require_authority(signer_id)?;
            require_role(&actor, Role::Recognizer)?;
            require_region(&actor, &recognition.recognizing_region)?;
            if recognition.withdrawn_at.is_some() {
                return Err(RuleError::AlreadyWithdrawn(*recognition_id));
            }
            recognition.withdrawn_at = Some(*effective_at);
            state.put(Record::Recognition(recognition));
            Ok(None)
        }
        TxBody::FileObjection {
            type_code,
            number,
            reason,
        } => {
            let mut licence = state.require_licence(type_code, number)?;
            if licence.open_objections.len() >= limits::OPEN_OBJECTIONS_PER_LICENCE_MAX {
                return Err(RuleError::TooManyObjections {
                    limit: limits::OPEN_OBJECTIONS_PER_LICENCE_MAX,
                });
            }
            licence.open_objections.push(id);
            state.put(Record::Licence(licence));
            state.put(Record::Objection(Objection {
                id,
                type_code: type_code.clone(),
                number: number.clone(),
                filed_by: signer_id.clone(),
                reason: reason.clone(),
                filed_at: context.time,
                height: context.height,
                resolution: None,
            }));
            Ok(Some((type_code.clone(), number.clone())))
        }
        TxBody::ResolveObjection {
            id: objection_id,
            outcome,
            note,
        } => {
            let mut objection = state
                .objection(objection_id)?
                .ok_or(RuleError::UnknownObjection(*objection_id))?;
            if objection.resolution.is_some() {
                return Err(RuleError::AlreadyResolved(*objection_id));
            }
            let mut licence = state.require_licence(&objection.type_code, &objection.number)?;
            if *signer_id != licence.issuer {
                return Err(RuleError::NotIssuer {
                    issuer: licence.issuer.clone(),
                    authority: signer_id.clone(),
                });
            }
            licence.open_objections.retain(|open| open != objection_id);
            objection.resolution = Some(Resolution {
                by: signer_id.clone(),
                outcome: *outcome,
                note: note.clone(),
                at: context.time,
                height: context.height,
            });
            let key = (objection.type_code.clone(), objection.number.clone());
            state.put(Record::Licence(licence));
            state.put(Record::Objection(objection));
            Ok(Some(key))
        }
        TxBody::ChangeValidators {
            changes,
            effective_height,
        } => {
            if *effective_height <= context.height
                || *effective_height - context.height > limits::VALIDATOR_CHANGE_DELAY_BLOCKS_MAX
            {
                return Err(RuleError::BadEffectiveHeight {
                    height: context.height,
                    effective_height: *effective_height,
                    limit: limits::VALIDATOR_CHANGE_DELAY_BLOCKS_MAX,
                });
            }
            let mut registry = state.nodes()?;
            if registry.pending.len() >= limits::PENDING_VALIDATOR_CHANGES_MAX {
                return Err(RuleError::TooManyPendingChanges {
                    limit: limits::PENDING_VALIDATOR_CHANGES_MAX,
                });
            }
            // The set as it will be at the effective height, with this change applied.
            let mut future: Vec<NodeEntry> = registry.nodes.clone();
            for pending in registry
                .pending
                .iter()
                .filter(|p| p.effective_height <= *effective_height)
            {
                for change in &pending.changes {
                    NodeRegistry::apply_change(&mut future, change);
                }
            }
            for change in changes {
                match change {
                    NodeChange::Set(entry) => {
                        entry.key.validate().map_err(RuleError::KeyRejected)?;
                        state.require_authority(&entry.authority)?;
                    }
                    NodeChange::Remove(key) => {
                        if !future.iter().any(|node| node.key == *key) {
                            return Err(RuleError::UnknownNode(*key));
                        }
                    }
                }
                NodeRegistry::apply_change(&mut future, change);
            }
            if future.len() > limits::NODES_MAX {
                return Err(RuleError::TooManyNodes {
                    count: future.len(),
                    limit: limits::NODES_MAX,
                });
            }
            if !future.iter().any(|node| node.power > 0) {
                return Err(RuleError::NoValidatorLeft);
            }
            let position = registry
                .pending
                .partition_point(|pending| pending.effective_height <= *effective_height);
            registry.pending.insert(
                position,
                PendingNodeChange {
                    effective_height: *effective_height,
                    changes: changes.clone(),
                },
            );
            state.put(Record::Nodes(registry));
            Ok(None)
        }
    }
}

fn require_region(authority: &Authority, region: &RegionCode) -> Result<(), RuleError> {
    if authority.region.covers(region) {
        Ok(())
    } else {
        Err(RuleError::RegionOutsideAuthority {
            authority: authority.id.clone(),
            authority_region: authority.region.clone(),
            region: region.clone(),
        })
    }
}

fn update_governors<R: StateReader + ?Sized>(
    state: &mut Scratch<'_, '_, R>,
    id: &AuthorityId,
    is_governor: bool,
) -> Result<(), RuleError> {
    let mut governors = state.governors()?;
    match (governors.binary_search(id), is_governor) {
        (Err(position), true) => {
            if governors.len() >= limits::GOVERNORS_MAX {
                return Err(RuleError::TooManyGovernors {
                    count: governors.len() + 1,
                    limit: limits::GOVERNORS_MAX,
                });
            }
            governors.insert(position, id.clone());
        }
        (Ok(position), false) => {
            if governors.len() == 1 {
                return Err(RuleError::NoGovernorLeft);
            }
            governors.remove(position);
        }
        _ => return Ok(()),
    }
    state.put(Record::Governors(governors));
    Ok(())
}

/// Appends one event to a licence's history: `(effective time, reason, signer)`, recorded at
/// `context.height` by transaction `id`. Effective times never decrease.
fn push_event(
    licence: &mut Licence,
    kind: LicenceEventKind,
    (effective_at, reason, by): (TimeMs, &str, &AuthorityId),
    context: &Context<'_>,
    id: Hash32,
) -> Result<(), RuleError> {
    let event = LicenceEvent {
        kind,
        effective_at,
        reason: reason.to_owned(),
        by: by.clone(),
        height: context.height,
        tx: id,
    };
    let last = licence.last_effective_at();
    if event.effective_at < last {
        return Err(RuleError::EffectiveTimeBeforeLastEvent {
            effective_at: event.effective_at,
            last,
        });
    }
    if licence.events.len() >= limits::EVENTS_PER_LICENCE_MAX {
        return Err(RuleError::TooManyEvents {
            limit: limits::EVENTS_PER_LICENCE_MAX,
        });
    }
    licence.events.push(event);
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
                return Err(schema_error("is empty"));
            }
        }
        FieldKind::Date => {
            if !is_calendar_date(text) {
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
                return Err(schema_error("must be a decimal number such as 1000.50"));
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

/// `YYYY-MM-DD` naming a real day of the Gregorian calendar.
pub fn is_calendar_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    year >= 1 && day >= 1 && day <= days_in_month
}
