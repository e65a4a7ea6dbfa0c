//! The rules' view of the state: [`StateReader`] (what a store or the in-memory test state
//! provides), the block's [`Overlay`] of writes over it, and the per-transaction [`Scratch`]
//! that holds a transaction's writes until it has passed every rule.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Deref;
use std::sync::Arc;

use super::error::{RuleError, StateError};
use crate::hash::Hash32;
use crate::ident::RegionCode;
use crate::records::{
    Authority, AuthorityId, Grant, Height, Licence, LicenceNumber, LicenceType, NodeRegistry,
    Objection, Recognition, Record, RecordKey, TimeMs, TypeCode,
};
use crate::suite::Suite;

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
    /// The chain's algorithm suite (from its genesis file): every signature the rules check
    /// is checked under it.
    pub suite: Suite,
    /// The height of the block being executed (genesis is 0).
    pub height: Height,
    /// The block's agreed time.
    pub time: TimeMs,
}

/// What every rule knows of the transaction it applies: where the block runs, who signed it,
/// and its id (which also names the recognitions and objections it creates, and goes into
/// each licence event it records).
#[derive(Clone, Copy, Debug)]
pub(super) struct Origin<'t> {
    pub context: &'t Context<'t>,
    pub signer: &'t AuthorityId,
    pub id: Hash32,
}

/// The records written by the transactions of one block so far, over the committed state.
#[derive(Debug)]
pub struct Overlay<'a, R: StateReader + ?Sized> {
    base: &'a R,
    writes: BTreeMap<RecordKey, Record>,
    applied: HashSet<Hash32>,
    /// Committed records of the kinds that many transactions of a block read (the catalogue,
    /// grants, authorities, governors, the node registry), decoded once per block and shared,
    /// not copied, with the transactions that read them.
    shared_reads: RefCell<HashMap<RecordKey, Option<Arc<Record>>>>,
}

/// A record the rules only read: borrowed from the block's writes, or shared with the
/// overlay's cache of committed records, so that reading it copies nothing.
pub(super) enum SharedRecord<'r> {
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
            | RecordKey::WriteQuota(_)
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

    /// Whether transaction `id` was already applied in this block.
    pub(super) fn has_applied(&self, id: &Hash32) -> bool {
        self.applied.contains(id)
    }

    /// Takes a transaction's writes into the block, once it has passed every rule.
    pub(super) fn merge(&mut self, writes: BTreeMap<RecordKey, Record>, id: Hash32) {
        self.writes.extend(writes);
        self.applied.insert(id);
    }

    /// Writes a record that belongs to the block rather than to one of its transactions: a
    /// validator-set change falling due, an equivocation recorded.
    pub(super) fn write(&mut self, record: Record) {
        self.writes.insert(record.key(), record);
    }
}

/// A scratch view for one transaction: reads fall through to the block's overlay, writes stay
/// here until the transaction has passed every rule.
pub(super) struct Scratch<'o, 'a, R: StateReader + ?Sized> {
    overlay: &'o Overlay<'a, R>,
    writes: BTreeMap<RecordKey, Record>,
}

macro_rules! getter {
    ($name:ident, $variant:ident, $type:ty, $key:ident : $key_type:ty => $make_key:expr) => {
        pub(super) fn $name(&self, $key: &$key_type) -> Result<Option<$type>, StateError> {
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

impl<'o, 'a, R: StateReader + ?Sized> Scratch<'o, 'a, R> {
    /// An empty scratch over the block's overlay.
    pub(super) fn new(overlay: &'o Overlay<'a, R>) -> Self {
        Scratch {
            overlay,
            writes: BTreeMap::new(),
        }
    }

    /// The transaction's writes, for the overlay to merge.
    pub(super) fn into_writes(self) -> BTreeMap<RecordKey, Record> {
        self.writes
    }

    /// Whether transaction `id` is in the committed state (not the block's).
    pub(super) fn is_committed(&self, id: &Hash32) -> Result<bool, StateError> {
        self.overlay.base.contains_transaction(id)
    }

    pub(super) fn get(&self, key: &RecordKey) -> Result<Option<Record>, StateError> {
        match self.writes.get(key) {
            Some(record) => Ok(Some(record.clone())),
            None => self.overlay.record(key),
        }
    }

    /// The record under `key` for reading only: borrowed or shared, not copied.
    pub(super) fn get_shared(
        &self,
        key: &RecordKey,
    ) -> Result<Option<SharedRecord<'_>>, StateError> {
        match self.writes.get(key) {
            Some(record) => Ok(Some(SharedRecord::Borrowed(record))),
            None => self.overlay.shared_record(key),
        }
    }

    pub(super) fn put(&mut self, record: Record) {
        self.writes.insert(record.key(), record);
    }

    getter!(authority, Authority, Authority, id: AuthorityId => RecordKey::Authority(id.clone()));
    getter!(licence_type, LicenceType, LicenceType, code: TypeCode => RecordKey::LicenceType(code.clone()));
    getter!(recognition, Recognition, Recognition, id: Hash32 => RecordKey::Recognition(*id));
    getter!(objection, Objection, Objection, id: Hash32 => RecordKey::Objection(*id));

    pub(super) fn grant(
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

    pub(super) fn licence(
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

    pub(super) fn governors(&self) -> Result<Vec<AuthorityId>, StateError> {
        match self.get(&RecordKey::Governors)? {
            Some(Record::Governors(list)) => Ok(list),
            Some(_) => Err(StateError("governors record has the wrong kind".into())),
            None => Ok(Vec::new()),
        }
    }

    pub(super) fn nodes(&self) -> Result<NodeRegistry, StateError> {
        match self.get(&RecordKey::Nodes)? {
            Some(Record::Nodes(registry)) => Ok(registry),
            Some(_) => Err(StateError("node registry has the wrong kind".into())),
            None => Ok(NodeRegistry::default()),
        }
    }

    pub(super) fn require_authority(&self, id: &AuthorityId) -> Result<Authority, RuleError> {
        self.authority(id)?
            .ok_or_else(|| RuleError::UnknownAuthority(id.clone()))
    }

    /// An authority a record names but that did not sign it (a grant's, an attestation's
    /// issuer, a node's, a rotation's): unknown, it is the record's fault, not the signer's
    /// standing, and the answer says so.
    pub(super) fn require_named_authority(&self, id: &AuthorityId) -> Result<Authority, RuleError> {
        self.authority(id)?
            .ok_or_else(|| RuleError::UnknownNamedAuthority(id.clone()))
    }

    pub(super) fn require_type(&self, code: &TypeCode) -> Result<LicenceType, RuleError> {
        self.licence_type(code)?
            .ok_or_else(|| RuleError::UnknownType(code.clone()))
    }

    pub(super) fn require_licence(
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
    pub(super) fn has_covering_grant(
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

/// The error for a record found under `key` that is not of the key's kind (a corrupt store).
pub(super) fn wrong_kind(key: &RecordKey) -> StateError {
    StateError(format!("the record under {key:?} has the wrong kind"))
}
