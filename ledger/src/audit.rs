//! Independent re-verification of a whole chain from its genesis file (docs/design.md section 7,
//! `docs/adr/0007-audit.md`): nothing the source of the blocks says is trusted.
//!
//! For every block, in order, the [`Auditor`] checks, one section after the other
//! ([`Auditor::verify_block`]):
//!
//! 1. **sequence**: the height follows, the hash the export gives is the header's, the chain
//!    id is the genesis', `prev_hash` is the previous header's hash, time increases;
//! 2. **certificate**: the commit certificate signs this header with more than two thirds of
//!    the voting power of the validator set in force at this height (validator-set changes
//!    are followed as the rules apply them), and the header names that set;
//! 3. **transactions**: every endorsement against the key its authority held at this height,
//!    then the re-execution of every transaction under the rules on a copy of the state built
//!    from genesis; the header's `tx_root`, `log_size`, `log_root` and `state_root` must be
//!    what re-execution gives, so the log is consistent from block to block by construction.
//!
//! A new block section is one more method called from [`Auditor::verify_block`] with its own
//! [`Violation`] variants.
//!
//! The first violation stops the audit; it names the height, the transaction (index and id)
//! where there is one, what was expected and what was found.
//!
//! Signatures are the bulk of the work. [`preverify`] checks the endorsements of a run of
//! blocks in batches on several threads before the blocks are executed, against the key each
//! authority is expected to hold at each height (read from genesis and from the key
//! registrations and rotations of the blocks themselves). That is only a guess made to do the
//! arithmetic early: execution still looks up the key valid at the height in the re-executed
//! state, and checks afresh every endorsement whose (transaction, key) pair the guess did not
//! verify. [`audit`] runs the two stages as a pipeline.
//!
//! No IO here: blocks arrive through an iterator, progress leaves through a callback, and the
//! re-executed state lives in a [`Store`] on the in-memory engine.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::mpsc;

use serde::{Deserialize, Serialize};

pub use crate::limits::{CHUNK_BLOCKS, CHUNK_TRANSACTIONS, EXPORT_LINE_BYTES_MAX, THREADS_MAX};
use crate::limits::{CHUNKS_IN_FLIGHT, DIRECTORY_KEYS_MAX, REPORT_PAGE};
use crate::store::{AuditStore, BlockError, MemoryBackend, PreparedTransactions, Store};
use hutong_core::block::{Block, BlockCertificateError, BlockHeader, verify_block_certificate};
use hutong_core::calendar;
use hutong_core::crypto::{self, PublicKey};
use hutong_core::genesis::Genesis;
use hutong_core::hash::Hash32;
use hutong_core::ident::RegionCode;
use hutong_core::records::{
    AuthorityId, Height, Licence, LicenceEventKind, LicenceNumber, Record, RecordKey, TimeMs,
    TypeCode,
};
use hutong_core::rules::{EvidenceRuleError, RuleError, VerifiedSignatures};
use hutong_core::suite::Suite;
use hutong_core::tx::{Transaction, TxBody, signing_message_of};

/// What an audit found wrong. Each variant names the height and what was expected and found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("entry {position} of the source is unreadable: {problem}")]
    Malformed { position: u64, problem: String },
    #[error(
        "block {height}: the source labels it with hash {found}, but its header hashes to {expected}"
    )]
    HashLabel {
        height: Height,
        expected: Hash32,
        found: Hash32,
    },
    #[error(
        "block {found} arrived where block {expected} was expected (a block is missing, repeated or out of order)"
    )]
    OutOfSequence { expected: Height, found: Height },
    #[error("block {height}: chain id is {found:?}; the genesis file names {expected:?}")]
    ChainId {
        height: Height,
        expected: String,
        found: String,
    },
    #[error(
        "block {height}: prev_hash is {found}, but the verified block {previous} hashes to {expected}"
    )]
    PrevHash {
        height: Height,
        previous: Height,
        expected: Hash32,
        found: Hash32,
    },
    #[error("block {height}: time {found} is not after the previous block's time {previous}")]
    TimeNotIncreasing {
        height: Height,
        previous: TimeMs,
        found: TimeMs,
    },
    #[error(
        "block {height}: validators_hash is {found}, but the validator set in force at this height hashes to {expected}"
    )]
    ValidatorsHash {
        height: Height,
        expected: Hash32,
        found: Hash32,
    },
    #[error(
        "block {height}: the commit certificate does not prove the block: {error} (validator set in force: {validators} validators, total power {total_power})"
    )]
    Certificate {
        height: Height,
        error: BlockCertificateError,
        validators: usize,
        total_power: u64,
    },
    #[error("block {height}, transaction {index} ({id}): {key}")]
    KeyNotValidAtHeight {
        height: Height,
        index: usize,
        id: Hash32,
        key: Box<OutOfTermKey>,
    },
    #[error("block {height}, transaction {index} ({id}) is refused by the rules: {error}")]
    Transaction {
        height: Height,
        index: usize,
        id: Hash32,
        error: Box<RuleError>,
    },
    #[error("block {height}, equivocation evidence item {index} is refused by the rules: {error}")]
    Evidence {
        height: Height,
        index: usize,
        error: Box<EvidenceRuleError>,
    },
    #[error(
        "block {height}: {field} does not match re-execution: the header says {found}, re-execution gives {expected}"
    )]
    Header {
        height: Height,
        field: &'static str,
        expected: String,
        found: String,
    },
    #[error("block {height} breaks a limit: {problem}")]
    Limit { height: Height, problem: String },
    #[error("re-execution could not proceed at block {height}: {problem}")]
    Internal { height: Height, problem: String },
}

/// A key of an authority's history used at a height where it was not the authority's key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "signed by {authority} with key {key}, valid from height {valid_from}{}; at that height the key of {authority} is {}",
    valid_until.map(|until| format!(" until before height {until}")).unwrap_or_default(),
    expected.map(|key| key.to_string()).unwrap_or_else(|| "none".into())
)]
pub struct OutOfTermKey {
    pub authority: AuthorityId,
    /// The key that made the signature.
    pub key: PublicKey,
    pub valid_from: Height,
    pub valid_until: Option<Height>,
    /// The key valid at the height, if any.
    pub expected: Option<PublicKey>,
}

impl Violation {
    /// The height concerned (0 when the entry could not be read at all).
    pub fn height(&self) -> Height {
        match self {
            Violation::Malformed { .. } => 0,
            Violation::OutOfSequence { found, .. } => *found,
            Violation::HashLabel { height, .. }
            | Violation::ChainId { height, .. }
            | Violation::PrevHash { height, .. }
            | Violation::TimeNotIncreasing { height, .. }
            | Violation::ValidatorsHash { height, .. }
            | Violation::Certificate { height, .. }
            | Violation::KeyNotValidAtHeight { height, .. }
            | Violation::Transaction { height, .. }
            | Violation::Evidence { height, .. }
            | Violation::Header { height, .. }
            | Violation::Limit { height, .. }
            | Violation::Internal { height, .. } => *height,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Violation::Malformed { .. } => "malformed",
            Violation::HashLabel { .. } => "hash_label",
            Violation::OutOfSequence { .. } => "out_of_sequence",
            Violation::ChainId { .. } => "chain_id",
            Violation::PrevHash { .. } => "prev_hash",
            Violation::TimeNotIncreasing { .. } => "time_not_increasing",
            Violation::ValidatorsHash { .. } => "validators_hash",
            Violation::Certificate { .. } => "certificate",
            Violation::KeyNotValidAtHeight { .. } => "key_not_valid_at_height",
            Violation::Transaction { .. } => "transaction",
            Violation::Evidence { .. } => "evidence",
            Violation::Header { .. } => "header_mismatch",
            Violation::Limit { .. } => "limit",
            Violation::Internal { .. } => "internal",
        }
    }
}

/// A block as a source delivers it, with the hash the source claims for it (the export's
/// `hash` field), if it gives one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceBlock {
    pub block: Block,
    pub claimed_hash: Option<Hash32>,
}

/// One line of the NDJSON export (`GET /v1/export`): a block and the hash the source gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportLine {
    pub hash: Hash32,
    pub block: Block,
}

impl ExportLine {
    /// The line of `block` of a chain of `suite`.
    pub fn of(suite: Suite, block: Block) -> Self {
        ExportLine {
            hash: block.hash(suite),
            block,
        }
    }

    /// The line as the export writes it, without its line feed.
    pub fn to_json(&self) -> String {
        // Invariant: blocks serialise to JSON without fail (no non-string map keys).
        #[allow(clippy::expect_used)]
        serde_json::to_string(self).expect("blocks serialise")
    }
}

/// Reads line `position` (counted from 1) of an export.
pub fn parse_export_line(line: &[u8], position: u64) -> Result<SourceBlock, Violation> {
    if line.len() > EXPORT_LINE_BYTES_MAX {
        return Err(Violation::Malformed {
            position,
            problem: format!(
                "the line is {} bytes; the limit is {EXPORT_LINE_BYTES_MAX}",
                line.len()
            ),
        });
    }
    let parsed: ExportLine =
        serde_json::from_slice(line).map_err(|error| Violation::Malformed {
            position,
            problem: error.to_string(),
        })?;
    Ok(SourceBlock {
        block: parsed.block,
        claimed_hash: Some(parsed.hash),
    })
}

/// The last verified header: a checkpoint of the log and of the state, and its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub height: Height,
    pub block_hash: Hash32,
    pub time: TimeMs,
    pub log_size: u64,
    pub log_root: Hash32,
    pub state_root: Hash32,
    pub validators_hash: Hash32,
}

impl AuditSummary {
    /// The summary before any block: the chain of `genesis`, at `checkpoint`.
    fn nothing_verified(genesis: &Genesis, checkpoint: Checkpoint) -> Self {
        AuditSummary {
            chain_id: genesis.chain_id.clone(),
            genesis_hash: genesis.hash(),
            blocks: 0,
            transactions: 0,
            endorsements: 0,
            certificate_signatures: 0,
            signing_authorities: 0,
            validator_set_changes: 0,
            checkpoint,
        }
    }
}

impl Checkpoint {
    /// The checkpoint `header` (of a chain of `suite`) makes.
    pub fn of(suite: Suite, header: &BlockHeader) -> Self {
        Checkpoint {
            height: header.height,
            block_hash: header.hash(suite),
            time: header.time,
            log_size: header.log_size,
            log_root: header.log_root,
            state_root: header.state_root,
            validators_hash: header.validators_hash,
        }
    }
}

/// What an audit verified so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditSummary {
    pub chain_id: String,
    pub genesis_hash: Hash32,
    pub blocks: u64,
    pub transactions: u64,
    /// Endorsements checked (each transaction has one or more).
    pub endorsements: u64,
    /// Precommit signatures of the certificates checked.
    pub certificate_signatures: u64,
    /// Distinct authorities that signed at least one transaction.
    pub signing_authorities: usize,
    /// Blocks at which the validator set changed.
    pub validator_set_changes: u64,
    /// The last verified header.
    pub checkpoint: Checkpoint,
}

/// The re-verification engine: a copy of the state built from genesis, and the last verified
/// header.
#[derive(Debug)]
pub struct Auditor {
    store: Store,
    last: BlockHeader,
    last_hash: Hash32,
    /// Also names the chain and its genesis hash.
    summary: AuditSummary,
    signers: BTreeSet<AuthorityId>,
}

impl Auditor {
    /// Starts from `genesis` (already read and checked with [`Genesis::from_json`]), with a
    /// store in audit mode that keeps no history beyond the state and the log
    /// ([`AuditStore::default`]).
    pub fn new(genesis: &Genesis) -> Result<Self, Violation> {
        Self::with_store(genesis, AuditStore::default())
    }

    /// [`Auditor::new`] keeping what `store` asks for (the blocks and the index of what each
    /// authority signed, for the history queries).
    pub fn with_store(genesis: &Genesis, store: AuditStore) -> Result<Self, Violation> {
        let store = Store::create_for_audit(Box::new(MemoryBackend::new()), genesis, store)
            .map_err(|error| Violation::Internal {
                height: 0,
                problem: error.to_string(),
            })?;
        let head = store.head().map_err(|error| Violation::Internal {
            height: 0,
            problem: error.to_string(),
        })?;
        let summary =
            AuditSummary::nothing_verified(genesis, Checkpoint::of(genesis.suite, &head.header));
        Ok(Auditor {
            last_hash: head.block_hash,
            last: head.header,
            store,
            summary,
            signers: BTreeSet::new(),
        })
    }

    /// The hash of the genesis file the audit started from.
    pub fn genesis_hash(&self) -> Hash32 {
        self.summary.genesis_hash
    }

    /// What was verified so far.
    pub fn summary(&self) -> &AuditSummary {
        &self.summary
    }

    /// The last verified header (the genesis header before the first block).
    pub fn last_header(&self) -> &BlockHeader {
        &self.last
    }

    /// The re-executed state and history, for queries over what was verified.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Verifies the next block. `already_verified` holds endorsements whose arithmetic
    /// [`preverify`] did (pass [`hutong_core::rules::NothingVerified`] to check every one here).
    /// On a violation nothing changes.
    pub fn verify_block(
        &mut self,
        source: &SourceBlock,
        already_verified: &dyn VerifiedSignatures,
    ) -> Result<(), Violation> {
        self.verify_block_inner(source, None, already_verified)
    }

    /// [`Auditor::verify_block`] executing `prepared`, a copy of the block's transactions with
    /// their encodings made ahead ([`PreparedTransactions::new`] of a clone of
    /// `source.block.transactions`; other transactions fail on the header's `tx_root`).
    pub fn verify_prepared(
        &mut self,
        source: &SourceBlock,
        prepared: PreparedTransactions,
        already_verified: &dyn VerifiedSignatures,
    ) -> Result<(), Violation> {
        self.verify_block_inner(source, Some(prepared), already_verified)
    }

    fn verify_block_inner(
        &mut self,
        source: &SourceBlock,
        prepared: Option<PreparedTransactions>,
        already_verified: &dyn VerifiedSignatures,
    ) -> Result<(), Violation> {
        let block = &source.block;
        self.check_sequence(source)?;
        let validators_changed = self.check_certificate(block)?;
        self.execute_transactions(block, prepared, already_verified)?;
        // Further block sections are checked here, before the summary counts the block.
        self.last_hash = block.hash(self.store.suite());
        self.last = block.header.clone();
        self.summary.blocks += 1;
        self.summary.transactions += block.transactions.len() as u64;
        self.summary.endorsements += block
            .transactions
            .iter()
            .map(|transaction| transaction.signatures.len() as u64)
            .sum::<u64>();
        self.summary.certificate_signatures += block.certificate.signatures.len() as u64;
        for transaction in &block.transactions {
            for endorsement in &transaction.signatures {
                if !self.signers.contains(&endorsement.authority) {
                    self.signers.insert(endorsement.authority.clone());
                }
            }
        }
        self.summary.signing_authorities = self.signers.len();
        if validators_changed {
            self.summary.validator_set_changes += 1;
        }
        self.summary.checkpoint = Checkpoint::of(self.store.suite(), &self.last);
        Ok(())
    }

    /// Section 1: the block follows the last verified one.
    fn check_sequence(&self, source: &SourceBlock) -> Result<(), Violation> {
        let header = &source.block.header;
        let expected_height = self.last.height + 1;
        if header.height != expected_height {
            return Err(Violation::OutOfSequence {
                expected: expected_height,
                found: header.height,
            });
        }
        let height = header.height;
        if let Some(claimed) = source.claimed_hash {
            let hash = header.hash(self.store.suite());
            if claimed != hash {
                return Err(Violation::HashLabel {
                    height,
                    expected: hash,
                    found: claimed,
                });
            }
        }
        if header.chain_id != self.summary.chain_id {
            return Err(Violation::ChainId {
                height,
                expected: self.summary.chain_id.clone(),
                found: header.chain_id.clone(),
            });
        }
        if header.prev_hash != self.last_hash {
            return Err(Violation::PrevHash {
                height,
                previous: self.last.height,
                expected: self.last_hash,
                found: header.prev_hash,
            });
        }
        if header.time <= self.last.time {
            return Err(Violation::TimeNotIncreasing {
                height,
                previous: self.last.time,
                found: header.time,
            });
        }
        Ok(())
    }

    /// Section 2: the certificate, against the validator set in force at this height.
    /// Returns whether that set differs from the previous block's.
    fn check_certificate(&self, block: &Block) -> Result<bool, Violation> {
        let height = block.header.height;
        let registry = self
            .store
            .registry_for(height)
            .map_err(|error| Violation::Internal {
                height,
                problem: error.to_string(),
            })?;
        let expected = registry.validators_hash(self.store.suite());
        if block.header.validators_hash != expected {
            return Err(Violation::ValidatorsHash {
                height,
                expected,
                found: block.header.validators_hash,
            });
        }
        verify_block_certificate(
            self.store.suite(),
            &block.header,
            &block.certificate,
            &registry,
        )
        .map_err(|error| {
            let validators: Vec<_> = registry.validators().collect();
            Violation::Certificate {
                height,
                error,
                validators: validators.len(),
                total_power: validators.iter().map(|node| node.power).sum(),
            }
        })?;
        Ok(expected != self.last.validators_hash)
    }

    /// Section 3: signatures, rules, and the header's roots against re-execution; commits
    /// the block to the auditor's copy of the state.
    fn execute_transactions(
        &mut self,
        block: &Block,
        prepared: Option<PreparedTransactions>,
        already_verified: &dyn VerifiedSignatures,
    ) -> Result<(), Violation> {
        let height = block.header.height;
        let outcome = match prepared {
            Some(prepared) => self
                .store
                .verify_block_prepared(block, prepared, already_verified),
            None => self.store.verify_block_with(block, already_verified),
        };
        let execution = match outcome {
            Ok(execution) => execution,
            Err(error) => return Err(self.explain(block, error)),
        };
        self.store
            .commit(execution, block.certificate.clone())
            .map_err(|error| Violation::Internal {
                height,
                problem: error.to_string(),
            })?;
        Ok(())
    }

    /// Turns a store's refusal of a block into a violation, finding out, for a signature that
    /// does not verify, whether it was made with a key of the authority that is not valid at
    /// this height (rotated away, or not yet in force).
    fn explain(&self, block: &Block, error: BlockError) -> Violation {
        let height = block.header.height;
        match error {
            BlockError::InvalidTransaction { index, id, error } => {
                if let RuleError::BadSignature { authority, .. }
                | RuleError::NoKeyAtHeight { authority, .. } = &error
                    && let Some(transaction) = block.transactions.get(index)
                    && let Some(found) = self.key_outside_height(transaction, authority, height)
                {
                    return Violation::KeyNotValidAtHeight {
                        height,
                        index,
                        id,
                        key: Box::new(OutOfTermKey {
                            authority: authority.clone(),
                            key: found.0,
                            valid_from: found.1,
                            valid_until: found.2,
                            expected: found.3,
                        }),
                    };
                }
                Violation::Transaction {
                    height,
                    index,
                    id,
                    error: Box::new(error),
                }
            }
            BlockError::InvalidEvidence { index, error } => Violation::Evidence {
                height,
                index,
                error: Box::new(error),
            },
            BlockError::HeaderMismatch {
                field,
                expected,
                found,
            } => Violation::Header {
                height,
                field,
                expected,
                found,
            },
            BlockError::ProtocolVersion { expected, found } => Violation::Header {
                height,
                field: "protocol_version",
                expected: expected.to_string(),
                found: found.to_string(),
            },
            BlockError::WrongHeight { head, found } => Violation::OutOfSequence {
                expected: head + 1,
                found,
            },
            BlockError::TimeNotIncreasing { previous, time } => Violation::TimeNotIncreasing {
                height,
                previous,
                found: time,
            },
            error @ (BlockError::TooManyTransactions { .. } | BlockError::TooLarge { .. }) => {
                Violation::Limit {
                    height,
                    problem: error.to_string(),
                }
            }
            error @ (BlockError::Stale | BlockError::Store(_) | BlockError::State(_)) => {
                Violation::Internal {
                    height,
                    problem: error.to_string(),
                }
            }
        }
    }

    /// The key of `authority`'s history, not valid at `height`, that made its endorsement of
    /// `transaction`: (key, valid from, valid until, key valid at `height`).
    fn key_outside_height(
        &self,
        transaction: &Transaction,
        authority: &AuthorityId,
        height: Height,
    ) -> Option<(PublicKey, Height, Option<Height>, Option<PublicKey>)> {
        let Ok(Some(Record::Authority(record))) =
            self.store.record(&RecordKey::Authority(authority.clone()))
        else {
            return None;
        };
        let endorsement = transaction
            .signatures
            .iter()
            .find(|endorsement| &endorsement.authority == authority)?;
        let encoded = transaction.encode();
        let message =
            signing_message_of(&transaction.payload.chain_id, encoded.payload_bytes()).ok()?;
        let expected = record.key_at(height).copied();
        record
            .keys
            .iter()
            .filter(|epoch| !epoch.valid_at(height))
            .find(|epoch| {
                self.store
                    .suite()
                    .verify(&epoch.key, &message, &endorsement.signature)
                    .is_ok()
            })
            .map(|epoch| (epoch.key, epoch.valid_from, epoch.valid_until, expected))
    }
}

/// Endorsements verified ahead of execution: (transaction id, key) pairs whose signature
/// passed [`crypto::verify_batch_with_errors`] (so [`crypto::verify`] accepts it too).
#[derive(Debug, Default)]
pub struct VerifiedSet {
    pairs: HashSet<(Hash32, PublicKey)>,
}

impl VerifiedSet {
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl VerifiedSignatures for VerifiedSet {
    fn contains(&self, id: &Hash32, key: &PublicKey) -> bool {
        self.pairs.contains(&(*id, *key))
    }
}

/// The key each authority is expected to hold from which height on, as genesis and the
/// blocks seen so far say (a guess for [`preverify`]; the rules decide).
#[derive(Clone, Debug)]
pub struct KeyDirectory {
    /// The chain's suite, under which the guessed keys' signatures are checked.
    suite: Suite,
    keys: BTreeMap<AuthorityId, Vec<(Height, PublicKey)>>,
}

impl KeyDirectory {
    pub fn from_genesis(genesis: &Genesis) -> Self {
        let mut directory = KeyDirectory {
            suite: genesis.suite,
            keys: BTreeMap::new(),
        };
        for authority in &genesis.authorities {
            directory.add(&authority.id, 0, authority.key);
        }
        directory
    }

    fn add(&mut self, authority: &AuthorityId, from: Height, key: PublicKey) {
        let keys = self.keys.entry(authority.clone()).or_default();
        let position = keys.partition_point(|(valid_from, _)| *valid_from <= from);
        keys.insert(position, (from, key));
        if keys.len() > DIRECTORY_KEYS_MAX {
            keys.remove(0);
        }
    }

    /// Drops the keys expected for `authority` from `height` on (a rotation the governors
    /// overrode).
    fn forget_after(&mut self, authority: &AuthorityId, height: Height) {
        if let Some(keys) = self.keys.get_mut(authority) {
            keys.retain(|(from, _)| *from < height);
        }
    }

    fn key_at(&self, authority: &AuthorityId, height: Height) -> Option<PublicKey> {
        self.keys
            .get(authority)?
            .iter()
            .rev()
            .find(|(from, _)| *from <= height)
            .map(|(_, key)| *key)
    }

    /// Takes in the key registrations and rotations of a block at `height`.
    fn learn(&mut self, height: Height, transactions: &[Transaction]) {
        for transaction in transactions {
            match &transaction.payload.body {
                TxBody::RegisterAuthority(draft) => self.add(&draft.id, height + 1, draft.key),
                TxBody::RotateKey {
                    authority,
                    new_key,
                    effective_height,
                } => {
                    let by_itself = transaction.signatures.len() == 1
                        && transaction.signatures[0].authority == *authority;
                    if !by_itself {
                        // The governors' rotation overrides what the authority scheduled.
                        self.forget_after(authority, *effective_height);
                    }
                    self.add(authority, *effective_height, *new_key)
                }
                TxBody::ReportKeyCompromise {
                    authority, new_key, ..
                } => {
                    self.forget_after(authority, height + 1);
                    if let Some(new_key) = new_key {
                        self.add(authority, height + 1, *new_key);
                    }
                }
                _ => {}
            }
        }
    }
}

/// Checks the endorsements of `blocks` (consecutive, in order) in batches on up to `threads`
/// threads, against the keys `directory` expects, and learns the blocks' key changes.
pub fn preverify<'a>(
    blocks: impl IntoIterator<Item = &'a Block>,
    directory: &mut KeyDirectory,
    threads: usize,
) -> VerifiedSet {
    preverify_inner(
        blocks.into_iter().map(|block| (block, None)),
        directory,
        threads,
    )
}

/// [`preverify`] taking the encodings and ids of each block's transactions from `prepared`
/// (made from the same transactions by [`PreparedTransactions::new`]).
pub fn preverify_prepared<'a>(
    blocks: impl IntoIterator<Item = (&'a Block, &'a PreparedTransactions)>,
    directory: &mut KeyDirectory,
    threads: usize,
) -> VerifiedSet {
    preverify_inner(
        blocks
            .into_iter()
            .map(|(block, prepared)| (block, Some(prepared))),
        directory,
        threads,
    )
}

fn preverify_inner<'a>(
    blocks: impl Iterator<Item = (&'a Block, Option<&'a PreparedTransactions>)>,
    directory: &mut KeyDirectory,
    threads: usize,
) -> VerifiedSet {
    let mut pairs: Vec<(Hash32, PublicKey)> = Vec::new();
    let mut messages: Vec<Vec<u8>> = Vec::new();
    // Per batch item: (index into pairs and messages, signature).
    let mut items: Vec<(usize, crypto::Signature)> = Vec::new();
    for (block, prepared) in blocks {
        let height = block.header.height;
        // Prepared encodings are used only when they are one per transaction.
        let prepared = prepared.filter(|prepared| prepared.len() == block.transactions.len());
        for (position, transaction) in block.transactions.iter().enumerate() {
            let own;
            let (payload_bytes, id) = match prepared.and_then(|prepared| {
                Some((
                    prepared.encoded().get(position)?,
                    *prepared.ids().get(position)?,
                ))
            }) {
                Some((encoded, id)) => (encoded.payload_bytes(), id),
                None => {
                    own = transaction.encode();
                    (own.payload_bytes(), own.id(directory.suite))
                }
            };
            let Ok(message) = signing_message_of(&transaction.payload.chain_id, payload_bytes)
            else {
                continue;
            };
            let mut message_index = None;
            for endorsement in &transaction.signatures {
                let Some(key) = directory.key_at(&endorsement.authority, height) else {
                    continue;
                };
                let index = *message_index.get_or_insert_with(|| {
                    messages.push(message.clone());
                    messages.len() - 1
                });
                pairs.push((id, key));
                items.push((index, endorsement.signature));
            }
        }
        directory.learn(height, &block.transactions);
    }
    let threads = threads.clamp(1, THREADS_MAX);
    let share = items.len().div_ceil(threads).max(1);
    let suite = directory.suite;
    let accepted: Vec<bool> = std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(share)
            .enumerate()
            .map(|(part, chunk)| {
                let pairs = &pairs;
                let messages = &messages;
                let worker = scope.spawn(move || {
                    let first = part * share;
                    let batch: Vec<(&PublicKey, &[u8], &crypto::Signature)> = chunk
                        .iter()
                        .enumerate()
                        .filter_map(|(offset, (message_index, signature))| {
                            let (_, key) = pairs.get(first + offset)?;
                            let message = messages.get(*message_index)?;
                            Some((key, message.as_slice(), signature))
                        })
                        .collect();
                    let mut accepted = vec![batch.len() == chunk.len(); chunk.len()];
                    if let Err(failures) = suite.verify_batch_with_errors(&batch) {
                        for failure in failures {
                            if let Some(slot) = accepted.get_mut(failure.index) {
                                *slot = false;
                            }
                        }
                    }
                    accepted
                });
                (chunk.len(), worker)
            })
            .collect();
        // A worker that failed leaves its share unverified (checked again on execution),
        // and the others' results stay aligned with their items.
        workers
            .into_iter()
            .flat_map(|(length, worker)| {
                worker
                    .join()
                    .ok()
                    .filter(|accepted| accepted.len() == length)
                    .unwrap_or_else(|| vec![false; length])
            })
            .collect()
    });
    VerifiedSet {
        pairs: pairs
            .into_iter()
            .zip(accepted)
            .filter_map(|(pair, accepted)| accepted.then_some(pair))
            .collect(),
    }
}

/// Where an audit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub height: Height,
    pub blocks: u64,
    pub transactions: u64,
}

/// How [`audit`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditOptions {
    /// Threads checking signatures ahead of execution (execution runs on the calling thread).
    pub threads: usize,
    /// What the auditor's store keeps beside the state and the log: the blocks and the index
    /// of what each authority signed only when the history queries need them.
    pub store: AuditStore,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            threads: 1,
            store: AuditStore::default(),
        }
    }
}

/// An audit that stopped at a violation, with what was verified before it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{violation}")]
pub struct AuditFailure {
    pub violation: Violation,
    pub verified: Box<AuditSummary>,
}

/// A run of consecutive blocks on its way through the pipeline of [`audit`], and the source's
/// failure that ended it, if any (after its blocks).
struct Chunk {
    blocks: Vec<SourceBlock>,
    error: Option<Violation>,
}

/// Re-verifies every block `blocks` yields, from genesis, in order, as a pipeline of three
/// threads: one pulls blocks from `blocks` (reading and decoding them there), one checks the
/// signatures of each run of blocks ([`preverify`], itself on `options.threads` threads),
/// and the calling thread executes them. Calls `progress` after every run. Stops at the
/// first violation, or at the first entry the source could not read (after verifying every
/// block before it). Returns the auditor, holding the re-executed state, with its summary.
pub fn audit<I>(
    genesis: &Genesis,
    blocks: I,
    options: AuditOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Auditor, AuditFailure>
where
    I: Iterator<Item = Result<SourceBlock, Violation>> + Send,
{
    let mut auditor =
        Auditor::with_store(genesis, options.store).map_err(|violation| AuditFailure {
            violation,
            // Not even the genesis state could be built: no checkpoint to name.
            verified: Box::new(AuditSummary::nothing_verified(
                genesis,
                Checkpoint {
                    height: 0,
                    block_hash: Hash32([0; 32]),
                    time: genesis.genesis_time,
                    log_size: 0,
                    log_root: Hash32([0; 32]),
                    state_root: Hash32([0; 32]),
                    validators_hash: Hash32([0; 32]),
                },
            )),
        })?;
    let suite = genesis.suite;
    let mut directory = KeyDirectory::from_genesis(genesis);
    let threads = options.threads;
    let outcome = std::thread::scope(|scope| -> Result<(), Violation> {
        let (to_verifier, verifier_in) = mpsc::sync_channel::<Chunk>(CHUNKS_IN_FLIGHT);
        let (verifier_out, from_verifier) =
            mpsc::sync_channel::<(Chunk, VerifiedSet, Vec<PreparedTransactions>)>(CHUNKS_IN_FLIGHT);
        scope.spawn(move || {
            let mut blocks = blocks;
            loop {
                let mut chunk = Chunk {
                    blocks: Vec::new(),
                    error: None,
                };
                let mut transactions = 0usize;
                let mut finished = false;
                while chunk.blocks.len() < CHUNK_BLOCKS && transactions < CHUNK_TRANSACTIONS {
                    match blocks.next() {
                        Some(Ok(source)) => {
                            transactions += source.block.transactions.len();
                            chunk.blocks.push(source);
                        }
                        Some(Err(violation)) => {
                            chunk.error = Some(violation);
                            finished = true;
                            break;
                        }
                        None => {
                            finished = true;
                            break;
                        }
                    }
                }
                if (!chunk.blocks.is_empty() || chunk.error.is_some())
                    && to_verifier.send(chunk).is_err()
                {
                    return;
                }
                if finished {
                    return;
                }
            }
        });
        scope.spawn(move || {
            for chunk in verifier_in {
                // What does not depend on the state is computed here, off the execution
                // thread: a copy of the transactions to execute, their encodings, ids and
                // leaf hashes (the copy leaves the block whole for explaining a violation).
                let prepared: Vec<PreparedTransactions> = chunk
                    .blocks
                    .iter()
                    .map(|source| {
                        PreparedTransactions::new(suite, source.block.transactions.clone())
                    })
                    .collect();
                let verified = preverify_prepared(
                    chunk
                        .blocks
                        .iter()
                        .map(|source| &source.block)
                        .zip(&prepared),
                    &mut directory,
                    threads,
                );
                if verifier_out.send((chunk, verified, prepared)).is_err() {
                    return;
                }
            }
        });
        // Dropping the receiver on a violation stops the two other threads at their next send.
        for (chunk, verified, prepared) in from_verifier {
            for (source, prepared) in chunk.blocks.iter().zip(prepared) {
                auditor.verify_prepared(source, prepared, &verified)?;
            }
            let summary = auditor.summary();
            progress(&Progress {
                height: summary.checkpoint.height,
                blocks: summary.blocks,
                transactions: summary.transactions,
            });
            if let Some(violation) = chunk.error {
                return Err(violation);
            }
        }
        Ok(())
    });
    match outcome {
        Ok(()) => Ok(auditor),
        Err(violation) => Err(AuditFailure {
            violation,
            verified: Box::new(auditor.summary().clone()),
        }),
    }
}

/// Which licence events a report covers: effective in `[from, to)`, optionally of one type
/// and in regions that `region` covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFilter {
    pub from: TimeMs,
    pub to: TimeMs,
    pub type_code: Option<TypeCode>,
    pub region: Option<RegionCode>,
}

/// One licence event with where it is recorded on the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenceEventRow {
    pub type_code: TypeCode,
    pub number: LicenceNumber,
    pub region: RegionCode,
    pub issuer: AuthorityId,
    pub holder: String,
    /// `issued`, `amended`, or the status action's name (`revoke`, `suspend`, ...).
    pub event: String,
    /// The same in Chinese (发证, 变更, 吊销, ...).
    pub event_zh: String,
    pub effective_at: TimeMs,
    pub by: AuthorityId,
    pub reason: String,
    pub height: Height,
    pub transaction_id: Hash32,
    /// The transaction's leaf index in the log: with an inclusion proof against a
    /// checkpoint's `log_root`, it proves the row.
    pub log_index: u64,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the report would hold more than {limit} events; narrow the time range or filters")]
    TooManyEvents { limit: usize },
    #[error("the store could not be read: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("transaction {0} of a licence's history is not in the log")]
    MissingTransaction(Hash32),
}

/// The name of a licence event in a report.
pub fn event_name(kind: &LicenceEventKind) -> &'static str {
    kind.name()
}

/// The Chinese name of a licence event in a report.
pub fn event_name_zh(kind: &LicenceEventKind) -> &'static str {
    kind.name_zh()
}

/// Every licence event `filter` selects, in (effective time, height, transaction) order, at
/// most `limit` of them, from the state of `store`. With a region below the nation, the
/// licences come from the store's region index (only those the region covers are read);
/// otherwise, and on a store in audit mode, which keeps no such index, every licence is.
pub fn licence_events(
    store: &Store,
    filter: &EventFilter,
    limit: usize,
) -> Result<Vec<LicenceEventRow>, ReportError> {
    let mut rows = Vec::new();
    let region = filter
        .region
        .as_ref()
        .filter(|region| **region != RegionCode::NATIONAL && store.keeps_licence_indexes());
    if let Some(region) = region {
        let mut after = None;
        loop {
            let page = store.licences_covered_by(region, after.as_ref(), REPORT_PAGE)?;
            let full = page.len() == REPORT_PAGE;
            for (_, type_code, number) in &page {
                if filter
                    .type_code
                    .as_ref()
                    .is_some_and(|code| code != type_code)
                {
                    continue;
                }
                let licence = store
                    .licence(type_code, number)?
                    .ok_or_else(|| crate::store::StoreError::Corrupt(format!(
                        "the region index names licence {type_code}/{number}, which is not in the state"
                    )))?;
                add_licence_events(store, filter, &licence, limit, &mut rows)?;
            }
            after = page.into_iter().next_back();
            if !full {
                break;
            }
        }
    } else {
        let prefix = RecordKey::Licence(TypeCode(String::new()), LicenceNumber(String::new()));
        let mut after: Option<RecordKey> = None;
        loop {
            let page = store.records_with_prefix(&prefix, after.as_ref(), REPORT_PAGE)?;
            let Some(last) = page.last() else { break };
            after = Some(last.key());
            let full = page.len() == REPORT_PAGE;
            for record in page {
                if let Record::Licence(licence) = record {
                    add_licence_events(store, filter, &licence, limit, &mut rows)?;
                }
            }
            if !full {
                break;
            }
        }
    }
    rows.sort_by(|a, b| {
        (a.effective_at, a.height, a.log_index).cmp(&(b.effective_at, b.height, b.log_index))
    });
    Ok(rows)
}

/// Adds to `rows` the events of `licence` that `filter` selects.
fn add_licence_events(
    store: &Store,
    filter: &EventFilter,
    licence: &Licence,
    limit: usize,
    rows: &mut Vec<LicenceEventRow>,
) -> Result<(), ReportError> {
    if filter
        .type_code
        .as_ref()
        .is_some_and(|code| code != &licence.type_code)
        || filter
            .region
            .as_ref()
            .is_some_and(|region| !region.covers(&licence.region))
    {
        return Ok(());
    }
    for event in &licence.events {
        if event.effective_at < filter.from || event.effective_at >= filter.to {
            continue;
        }
        if rows.len() >= limit {
            return Err(ReportError::TooManyEvents { limit });
        }
        let location = store
            .transaction_location(&event.tx)?
            .ok_or(ReportError::MissingTransaction(event.tx))?;
        rows.push(LicenceEventRow {
            type_code: licence.type_code.clone(),
            number: licence.number.clone(),
            region: licence.region.clone(),
            issuer: licence.issuer.clone(),
            holder: licence.holder.to_text(),
            event: event_name(&event.kind).to_owned(),
            event_zh: event_name_zh(&event.kind).to_owned(),
            effective_at: event.effective_at,
            by: event.by.clone(),
            reason: event.reason.clone(),
            height: event.height,
            transaction_id: event.tx,
            log_index: location.log_index,
        });
    }
    Ok(())
}

/// The header row of the CSV report: Chinese and English in each column name.
pub const CSV_COLUMNS: [&str; 14] = [
    "证照类型 type",
    "证照编号 number",
    "行政区划 region",
    "发证机关 issuer",
    "持证主体 holder",
    "事项 event",
    "事项(中文) event_zh",
    "生效时间 effective_at (UTC)",
    "生效时间毫秒 effective_at_ms",
    "操作机关 by",
    "事由 reason",
    "区块高度 height",
    "交易标识 transaction_id",
    "日志序号 log_index",
];

/// Quotes one CSV field (RFC 4180): always quoted, quotes doubled.
fn csv_field(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        if character == '"' {
            out.push('"');
        }
        out.push(character);
    }
    out.push('"');
    out
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the Unix epoch. A time after the year
/// 9999, which only a mistyped validity or range can give, shows as its milliseconds
/// ([`calendar::display_utc`]).
pub fn utc_text(ms: TimeMs) -> String {
    calendar::display_utc(ms)
}

/// The CSV report of `rows` (UTF-8 with a byte-order mark, so that spreadsheet programs read
/// the Chinese column names), ending with the checkpoint it was taken against: every row's
/// transaction is in the log of that checkpoint, at its `log_index`.
pub fn licence_events_csv(
    rows: &[LicenceEventRow],
    filter: &EventFilter,
    checkpoint: &Checkpoint,
) -> String {
    let mut out = String::from("\u{feff}");
    out.push_str(
        &CSV_COLUMNS
            .iter()
            .map(|column| csv_field(column))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.push_str("\r\n");
    for row in rows {
        let fields = [
            row.type_code.to_string(),
            row.number.to_string(),
            row.region.to_string(),
            row.issuer.to_string(),
            row.holder.clone(),
            row.event.clone(),
            row.event_zh.clone(),
            utc_text(row.effective_at),
            row.effective_at.to_string(),
            row.by.to_string(),
            row.reason.clone(),
            row.height.to_string(),
            row.transaction_id.to_hex(),
            row.log_index.to_string(),
        ];
        out.push_str(
            &fields
                .iter()
                .map(|field| csv_field(field))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    let trailer = format!(
        "# 报告范围 range: {} .. {} (UTC){}{}; 检查点 checkpoint: height {} block {} log_size {} log_root {} state_root {}",
        utc_text(filter.from),
        if filter.to == TimeMs::MAX {
            "无截止 no end".to_owned()
        } else {
            utc_text(filter.to)
        },
        filter
            .type_code
            .as_ref()
            .map(|code| format!(", type {code}"))
            .unwrap_or_default(),
        filter
            .region
            .as_ref()
            .map(|region| format!(", region {region}"))
            .unwrap_or_default(),
        checkpoint.height,
        checkpoint.block_hash,
        checkpoint.log_size,
        checkpoint.log_root,
        checkpoint.state_root,
    );
    out.push_str(&csv_field(&trailer));
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The report's UTC text as it was computed by hand before the calendar module: the
    /// calendar must print the same.
    fn hand_written_utc_text(ms: TimeMs) -> String {
        let days = (ms / 86_400_000) as i64;
        let in_day = ms % 86_400_000;
        let shifted = days + 719_468;
        let era = shifted.div_euclid(146_097);
        let day_of_era = shifted.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_from_march = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
        let month = (month_from_march + 2) % 12 + 1;
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            in_day / 3_600_000,
            in_day / 60_000 % 60,
            in_day / 1_000 % 60,
            in_day % 1_000
        )
    }

    #[test]
    fn utc_texts_are_as_before_at_the_edges() {
        let edges = [
            0,
            1,
            999,
            86_399_999,
            86_400_000,
            // 1999-12-31T23:59:59.999Z, and the millisecond after.
            946_684_799_999,
            946_684_800_000,
            // 2000-02-29, a leap day of a year divisible by 400, and the day after.
            951_782_400_123,
            951_868_800_000,
            // 2100-02-28T23:59:59.999Z: 2100 is no leap year, so 1 March follows.
            4_107_542_399_999,
            4_107_542_400_000,
            // The last millisecond of the year 9999.
            calendar::TIME_MS_MAX,
        ];
        for ms in edges {
            assert_eq!(utc_text(ms), hand_written_utc_text(ms), "{ms}");
        }
        assert_eq!(utc_text(946_684_799_999), "1999-12-31T23:59:59.999Z");
        assert_eq!(utc_text(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(utc_text(calendar::TIME_MS_MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn utc_texts_after_the_year_9999_show_their_milliseconds() {
        // Before the calendar module these printed a five-digit year.
        let first_beyond = calendar::TIME_MS_MAX + 1;
        assert_eq!(
            hand_written_utc_text(first_beyond),
            "10000-01-01T00:00:00.000Z"
        );
        assert_eq!(utc_text(first_beyond), "253402300800000 ms since the epoch");
        assert_eq!(
            utc_text(TimeMs::MAX),
            "18446744073709551615 ms since the epoch"
        );
    }

    #[test]
    fn every_day_to_2100_is_as_before() {
        // One millisecond in each day from 1970 to 2100, at a different time of day each.
        let day_ms: TimeMs = 86_400_000;
        for day in 0..47_482u64 {
            let ms = day * day_ms + (day * 7_919_993) % day_ms;
            assert_eq!(utc_text(ms), hand_written_utc_text(ms), "{ms}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn utc_texts_are_as_before(ms in 0..=calendar::TIME_MS_MAX) {
            prop_assert_eq!(utc_text(ms), hand_written_utc_text(ms));
        }
    }
}
