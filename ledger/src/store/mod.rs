//! The block store: executes blocks against the committed state, commits them atomically and
//! durably, and answers the reads and proofs of docs/design.md sections 4 and 7.
//!
//! Everything of one block — the block itself, its header, the records it changed, the
//! sparse-Merkle nodes and log nodes it made, the transaction locations and the indexes, and
//! the new head — goes to the engine as one batch, applied atomically and made durable before
//! [`Store::commit`] returns. On disk, [`Engine::open`] puts a write-back journal in front of
//! the engine (`journal.rs`): the batch is one journal value, folded into its keys later.
//! In-memory state (the head, the tree cache) changes only after the batch is durable, so a
//! failed commit leaves the store exactly as it was.
//!
//! Key layout (one keyspace, one prefix byte per kind; components separated by 0x00, which no
//! identifier contains; heights and indexes big-endian so that key order is numeric order):
//!
//! | prefix | key | value |
//! |---|---|---|
//! | `M` | `head` | [`Head`] |
//! | `G` | `genesis` | the genesis file (JSON) |
//! | `B` | height | the [`Block`] (canonical) |
//! | `H` | height | its [`BlockHeader`] (canonical) |
//! | `R` | record key bytes | the [`Record`] (canonical) |
//! | `S` | sparse-Merkle node key | node bytes |
//! | `L` | log tile: level (one byte), tile index | up to 16 hashes of that level (see `LogNodes`) |
//! | `T` | transaction id | [`TxLocation`] |
//! | `h` | holder, type, number | — (licences of a holder) |
//! | `i` | issuer, type, number | — (licences of an issuer) |
//! | `r` | region, type, number | — (licences issued in a region) |
//! | `a` | authority, height | (index in the block, transaction id) of each transaction of that block the authority signed, in order (what an authority signed; one value per authority and block) |
//! | `e` | recorded height, evidence record key | — (equivocations by the height that recorded them, ADR 0009) |
//! | `0xff journal` | sequence number | a batch not yet folded into its keys (`journal.rs`, ADR 0015; never seen by the store) |

pub mod backend;
mod journal;
mod lean;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Mutex, RwLock};

use serde::{Deserialize, Serialize};

pub use backend::{
    Backend, Durability, Engine, Entry, MemoryBackend, PageCheck, REDB_FILE, RedbBackend,
    SledBackend, StoreError, Write,
};
pub use journal::{JournalLimits, Journaled};
#[doc(hidden)]
pub use journal::{decode_entry_for_fuzzing, encode_entry_for_fuzzing};
pub use lean::{AuditStore, PreparedTransactions};

use crate::limits::{OPEN_CHAIN_CHECK_BLOCKS, RECOGNITIONS_SCAN_MAX, VERIFIED_SIGNATURES_MAX};
use hutong_core::block::{Block, BlockHeader, CommitCertificate, PROTOCOL_VERSION, tx_root};
use hutong_core::codec;
use hutong_core::crypto::PublicKey;
use hutong_core::evidence::{Evidence, EvidenceKey, EvidenceRecord};
use hutong_core::genesis::Genesis;
use hutong_core::hash::Hash32;
use hutong_core::ident::RegionCode;
use hutong_core::limits;
use hutong_core::log::{
    self as txlog, ConsistencyProof, InclusionProof, LogError, LogHasher, LogNodeStore, NodeKey,
};
use hutong_core::records::{
    Authority, AuthorityId, Grant, Height, Holder, Licence, LicenceNumber, NodeRegistry, Objection,
    Recognition, Record, RecordKey, TimeMs, TypeCode,
};
use hutong_core::records::{key_position, record_hash_of_bytes};
use hutong_core::rules::{
    self, Applied, Context, EvidenceRuleError, Overlay, RuleError, SignatureCandidate, StateError,
    StateReader,
};
use hutong_core::smt::{self, SmtProof};
use hutong_core::suite::Suite;
use hutong_core::tx::{EncodedTransaction, Transaction};
use hutong_core::verdict::{self, StateAt, Verdict, VerdictRecords};

/// Why a block cannot be executed or committed.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error(
        "the block is of protocol version {found}; this build makes and accepts version {expected}"
    )]
    ProtocolVersion { expected: u32, found: u32 },
    #[error("block height {found} does not follow the store's height {head}")]
    WrongHeight { head: Height, found: Height },
    #[error("block time {time} is not after the previous block's time {previous}")]
    TimeNotIncreasing { previous: TimeMs, time: TimeMs },
    #[error("transaction {index} ({id}) is rejected: {error}")]
    InvalidTransaction {
        index: usize,
        id: Hash32,
        error: RuleError,
    },
    #[error("evidence item {index} is rejected: {error}")]
    InvalidEvidence {
        index: usize,
        error: EvidenceRuleError,
    },
    #[error("the block has {count} transactions; the limit is {limit}")]
    TooManyTransactions { count: usize, limit: usize },
    #[error("the block's transactions take {size_bytes} bytes; the limit is {limit_bytes}")]
    TooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    #[error(
        "the header does not match re-execution: {field} is {found}, re-execution gives {expected}"
    )]
    HeaderMismatch {
        field: &'static str,
        expected: String,
        found: String,
    },
    #[error("the store moved on since this block was executed")]
    Stale,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// The store's latest committed block, as recorded with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub header: BlockHeader,
    pub block_hash: Hash32,
    pub genesis_hash: Hash32,
}

pub use hutong_core::block::TxLocation;

/// How to treat transactions the rules reject while executing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Building a proposal: leave rejected transactions out (reported in `rejected`), and stop
    /// adding when the block is full.
    Build,
    /// Checking a proposal or a fetched block: any rejected transaction makes the block invalid.
    Verify,
}

/// A block executed against the committed state, ready to commit.
#[derive(Debug)]
pub struct Execution {
    pub header: BlockHeader,
    pub transactions: Vec<Transaction>,
    /// Transactions left out (build mode only), with why.
    pub rejected: Vec<(Hash32, RuleError)>,
    /// Transactions not considered because the block was full (build mode only).
    pub deferred: Vec<Transaction>,
    /// The equivocation evidence the block records (ADR 0009).
    pub evidence: Vec<Evidence>,
    /// Evidence left out (build mode only), with why.
    pub rejected_evidence: Vec<(EvidenceKey, EvidenceRuleError)>,
    evidence_keys: Vec<EvidenceKey>,
    ids: Vec<Hash32>,
    /// The canonical bytes of `transactions`, encoded once by `execute` and reused for the
    /// block that `commit` stores.
    transaction_bytes: Vec<Vec<u8>>,
    applied: Vec<Applied>,
    /// The changed records as store writes (key and canonical bytes), encoded once.
    record_writes: Vec<Write>,
    tree_writes: smt::SmtWriteSet,
    /// The log tiles the block writes (see [`LogNodes`]).
    log_writes: Vec<Write>,
    signatures: SignatureCounts,
}

/// How the signatures of an executed block were checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignatureCounts {
    /// Endorsements whose arithmetic was skipped: already verified on admission.
    pub already_verified: usize,
    /// Endorsements checked during execution.
    pub checked: usize,
}

impl Execution {
    /// The ids of the transactions in the block, in order.
    pub fn ids(&self) -> &[Hash32] {
        &self.ids
    }

    /// How the block's signatures were checked.
    pub fn signature_counts(&self) -> SignatureCounts {
        self.signatures
    }

    /// The number of key-value writes that committing the block hands the storage engine.
    pub fn store_writes(&self) -> usize {
        // Per transaction: its location, and for an issuance the holder, issuer and region
        // entries; per signer of the block: one action entry.
        let index_writes: usize = self
            .applied
            .iter()
            .zip(&self.transactions)
            .map(|(effects, transaction)| {
                let issuance = effects.licence.is_some()
                    && matches!(
                        transaction.payload.body,
                        hutong_core::tx::TxBody::IssueLicence { .. }
                    );
                1 + if issuance { 3 } else { 0 }
            })
            .sum();
        let signers: HashSet<&AuthorityId> = self
            .applied
            .iter()
            .flat_map(|effects| &effects.authorities)
            .collect();
        let index_writes = index_writes + signers.len();
        // The block, its header, the head record, and an index entry per evidence item.
        3 + self.evidence_keys.len()
            + self.record_writes.len()
            + self.tree_writes.writes().len()
            + self.tree_writes.deletes().len()
            + self.log_writes.len()
            + index_writes
    }
}

/// A record with its sparse-Merkle proof against the state root of `header`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateProof {
    pub key: RecordKey,
    /// `None`: the proof shows there is no such record.
    pub record: Option<Record>,
    pub proof: SmtProof,
    pub header: BlockHeader,
}

/// The block store.
#[derive(Debug)]
pub struct Store {
    backend: Box<dyn Backend>,
    head: RwLock<Head>,
    tree: Mutex<smt::SparseMerkleTree>,
    /// Commits take it for writing; reads that must see one block's state whole (proofs)
    /// take it for reading.
    gate: RwLock<()>,
    chain_id: String,
    /// The chain's algorithm suite (its genesis file's): every hash and signature of the
    /// store's blocks, log and state tree is made and checked under it.
    suite: Suite,
    /// Signatures that passed the admission check, so that executing the block that carries
    /// them does not check them again.
    verified: RwLock<VerifiedSignatureCache>,
    /// Audit mode (see `lean.rs`): `None` for a node's store.
    lean: Option<lean::Lean>,
}

/// A bounded set of (transaction id, public key) pairs whose signature verified, forgetting
/// the oldest first. An entry says nothing about whether the key may sign at a height: the
/// rules look that up in the state every time and consult the set only for the arithmetic.
#[derive(Debug, Default)]
struct VerifiedSignatureCache {
    entries: HashSet<Hash32>,
    order: VecDeque<Hash32>,
}

impl VerifiedSignatureCache {
    fn entry(id: &Hash32, key: &PublicKey) -> Hash32 {
        hutong_core::hash::blake3_parts(&[b"hutong/verified-signature/v1", &id.0, &key.0])
    }

    fn insert(&mut self, id: &Hash32, key: &PublicKey) {
        let entry = Self::entry(id, key);
        if !self.entries.insert(entry) {
            return;
        }
        self.order.push_back(entry);
        while self.order.len() > VERIFIED_SIGNATURES_MAX {
            if let Some(oldest) = self.order.pop_front() {
                self.entries.remove(&oldest);
            }
        }
        debug_assert_eq!(self.entries.len(), self.order.len());
    }
}

impl rules::VerifiedSignatures for VerifiedSignatureCache {
    fn contains(&self, id: &Hash32, key: &PublicKey) -> bool {
        self.entries.contains(&Self::entry(id, key))
    }
}

const HEAD_KEY: &[u8] = b"Mhead";
/// The key of the store's format version, written once when the store is created.
const FORMAT_KEY: &[u8] = b"Mformat";

/// The format of the keys and values this build writes and reads. A store of another format is
/// refused when opened ([`StoreError::FormatVersion`]), never read as if it were this one.
///
/// 1: stores written before the format was recorded (no format record). 2: block headers carry
/// the protocol version and the genesis file names its algorithm suite (ADR 0016). 3: the state
/// holds the recognition sets and the holders' licence lists (ADR 0039), so a chain's roots
/// differ from those version 2 computed for the same blocks. 4: the keys of the directory sit
/// in the left half of the state tree, every other key in the right half (ADR 0042), so the
/// roots differ again.
pub const STORE_FORMAT_VERSION: u32 = 4;
/// The format of a store that holds data but no format record: written before the version was
/// recorded.
const UNRECORDED_FORMAT_VERSION: u32 = 1;

/// The stored bytes of a format version: four bytes, big-endian, readable by every version.
fn format_version_bytes(version: u32) -> [u8; 4] {
    version.to_be_bytes()
}
const GENESIS_KEY: &[u8] = b"Ggenesis";

fn height_key(prefix: u8, height: Height) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(prefix);
    key.extend_from_slice(&height.to_be_bytes());
    key
}

fn record_key(key: &RecordKey) -> Vec<u8> {
    let mut bytes = vec![b'R'];
    bytes.extend_from_slice(&key.to_bytes());
    bytes
}

fn prefixed(prefix: u8, bytes: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + bytes.len());
    key.push(prefix);
    key.extend_from_slice(bytes);
    key
}

fn joined(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut key = vec![prefix];
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            key.push(0);
        }
        key.extend_from_slice(part);
    }
    key
}

/// Levels of the transaction log stored in one tile (see [`LogNodes`]).
const LOG_TILE_HEIGHT: u8 = 4;
/// Hashes in a full tile: the nodes of its bottom level under one node `LOG_TILE_HEIGHT`
/// levels up.
const LOG_TILE_WIDTH: u64 = 1 << LOG_TILE_HEIGHT;
const LOG_TILE_BYTES_MAX: usize = LOG_TILE_WIDTH as usize * 32;

/// The store key of the log tile whose bottom level is `bottom_level` and which holds the
/// nodes `tile_index * LOG_TILE_WIDTH ..` of that level.
fn log_tile_key(bottom_level: u8, tile_index: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(10);
    key.push(b'L');
    key.push(bottom_level);
    key.extend_from_slice(&tile_index.to_be_bytes());
    key
}

/// Adapts the engine to the log's node reads.
///
/// The log's perfect subtrees are stored in tiles rather than one value per node: a tile holds
/// the hashes of up to [`LOG_TILE_WIDTH`] consecutive nodes of a level that is a multiple of
/// [`LOG_TILE_HEIGHT`] (0, 4, 8, ...), in order, and the nodes of the levels in between are
/// hashed from the tile when read (at most 15 node hashes). A tile that is not full holds the
/// nodes completed so far, and a block rewrites it with the nodes it adds. So a block of a
/// thousand transactions writes about 70 values for its log instead of about 2,000, and a node
/// exists in the store exactly when its subtree is complete, as [`LogNodeStore`] requires.
struct LogNodes<'a>(&'a dyn Backend, Suite);

impl LogNodes<'_> {
    fn tile(&self, bottom_level: u8, tile_index: u64, key: NodeKey) -> Result<Vec<u8>, LogError> {
        let bytes = self
            .0
            .get(&log_tile_key(bottom_level, tile_index))
            .map_err(|error| LogError::StoreRead {
                key,
                reason: error.to_string(),
            })?
            .unwrap_or_default();
        if bytes.len() % 32 != 0 || bytes.len() > LOG_TILE_BYTES_MAX {
            return Err(LogError::StoreRead {
                key,
                reason: format!("its tile is {} bytes long", bytes.len()),
            });
        }
        Ok(bytes)
    }
}

impl LogNodeStore for LogNodes<'_> {
    fn node(&self, key: NodeKey) -> Result<Option<Hash32>, LogError> {
        let height_in_tile = key.level % LOG_TILE_HEIGHT;
        let bottom_level = key.level - height_in_tile;
        let Some(first) = key.index.checked_shl(u32::from(height_in_tile)) else {
            return Ok(None);
        };
        let count = 1usize << height_in_tile;
        let offset = (first % LOG_TILE_WIDTH) as usize;
        let bytes = self.tile(bottom_level, first / LOG_TILE_WIDTH, key)?;
        let Some(run) = bytes.get(offset * 32..(offset + count) * 32) else {
            return Ok(None);
        };
        let mut hashes: Vec<Hash32> = run
            .chunks_exact(32)
            .map(|chunk| {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(chunk);
                Hash32(hash)
            })
            .collect();
        while hashes.len() > 1 {
            hashes = hashes
                .chunks_exact(2)
                .map(|pair| match pair {
                    [left, right] => self.1.node_hash(left, right),
                    _ => Hash32::ZERO,
                })
                .collect();
        }
        Ok(hashes.first().copied())
    }
}

/// The tile writes that store `nodes` (as [`txlog::append`] returns them: completed in order)
/// on top of the tiles in `backend`.
fn log_tile_writes(
    suite: Suite,
    backend: &dyn Backend,
    nodes: &[(NodeKey, Hash32)],
) -> Result<Vec<Write>, StoreError> {
    let mut tiles: BTreeMap<(u8, u64), Vec<u8>> = BTreeMap::new();
    for (key, hash) in nodes {
        if key.level % LOG_TILE_HEIGHT != 0 {
            continue;
        }
        let tile_index = key.index / LOG_TILE_WIDTH;
        let slot = (key.index % LOG_TILE_WIDTH) as usize;
        let tile = match tiles.entry((key.level, tile_index)) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let existing = if slot == 0 {
                    Vec::new()
                } else {
                    LogNodes(backend, suite).tile(key.level, tile_index, *key)?
                };
                entry.insert(existing)
            }
        };
        if tile.len() != slot * 32 {
            return Err(StoreError::Corrupt(format!(
                "log tile at level {} index {tile_index} holds {} nodes, but the next node completed is number {slot}",
                key.level,
                tile.len() / 32
            )));
        }
        tile.extend_from_slice(hash.as_bytes());
    }
    Ok(tiles
        .into_iter()
        .map(|((level, tile_index), bytes)| (log_tile_key(level, tile_index), Some(bytes)))
        .collect())
}

/// Adapts the engine to the tree's node reads.
struct TreeNodes<'a>(&'a dyn Backend);

impl smt::SmtNodeStore for TreeNodes<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, smt::SmtStoreError> {
        self.0
            .get(&prefixed(b'S', key))
            .map_err(|error| smt::SmtStoreError {
                message: error.to_string(),
            })
    }
}

impl Store {
    /// Opens the store in `path` with the engine whose files are there (the default engine,
    /// [`Engine::Redb`], when there are none), checking it (see [`Store::open_with`]).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_engine(path, Engine::found_in(path).unwrap_or_default())
    }

    /// Creates a new store in `path` from a genesis file, on the default engine.
    pub fn create(path: &Path, genesis: &Genesis) -> Result<Self, StoreError> {
        Self::create_engine(path, Engine::default(), genesis)
    }

    /// Opens the store in `path` on `engine`, refusing a directory that holds the other
    /// engine's database ([`StoreError::WrongEngine`]) rather than starting an empty store
    /// beside it.
    pub fn open_engine(path: &Path, engine: Engine) -> Result<Self, StoreError> {
        Self::open_engine_checked(path, engine, PageCheck::None)
    }

    /// [`Store::open_engine`], with the engine's own check of its files first when `check`
    /// asks for it ([`PageCheck::Full`]: every page's checksum, at the cost of reading the
    /// whole file). A panic of the engine on damaged files, while it opens them or while the
    /// store's checks read them, is returned as [`StoreError::Corrupt`]: the store is never
    /// served, and the caller decides how to stop.
    pub fn open_engine_checked(
        path: &Path,
        engine: Engine,
        check: PageCheck,
    ) -> Result<Self, StoreError> {
        Self::check_engine(path, engine)?;
        without_panics("opening", || {
            Self::open_with(engine.open_checked(path, Durability::Synced, check)?)
        })
    }

    /// Creates a new store in `path` on `engine` from a genesis file.
    pub fn create_engine(
        path: &Path,
        engine: Engine,
        genesis: &Genesis,
    ) -> Result<Self, StoreError> {
        Self::check_engine(path, engine)?;
        without_panics("creating", || {
            Self::create_with(engine.open(path, Durability::Synced)?, genesis)
        })
    }

    fn check_engine(path: &Path, engine: Engine) -> Result<(), StoreError> {
        match Engine::found_in(path) {
            Some(found) if found != engine => Err(StoreError::WrongEngine {
                configured: engine,
                found,
            }),
            _ => Ok(()),
        }
    }

    /// Opens a store on `backend` and checks it: the head names a block that is there, whose
    /// hash matches, whose state root is the tree's root and whose log root is the log's root
    /// at its size. A store that fails any check is reported, never served.
    pub fn open_with(backend: Box<dyn Backend>) -> Result<Self, StoreError> {
        let found = match backend.get(FORMAT_KEY)? {
            Some(bytes) => u32::from_be_bytes(bytes.as_slice().try_into().map_err(|_| {
                StoreError::Corrupt(format!("the format record is {} bytes, not 4", bytes.len()))
            })?),
            None if backend.scan(b"", None, 1)?.is_empty() => {
                return Err(StoreError::Uninitialised);
            }
            None => UNRECORDED_FORMAT_VERSION,
        };
        if found != STORE_FORMAT_VERSION {
            return Err(StoreError::FormatVersion {
                expected: STORE_FORMAT_VERSION,
                found,
            });
        }
        let Some(head_bytes) = backend.get(HEAD_KEY)? else {
            return Err(StoreError::Corrupt(
                "data is present but the head record is missing".into(),
            ));
        };
        let head: Head = codec::from_stored(&head_bytes)
            .map_err(|error| StoreError::Corrupt(format!("head record: {error}")))?;
        let suite = stored_genesis(backend.as_ref())?.suite;
        let header_bytes = backend
            .get(&height_key(b'H', head.header.height))?
            .ok_or_else(|| {
                StoreError::Corrupt(format!("header {} is missing", head.header.height))
            })?;
        let header: BlockHeader = codec::from_stored(&header_bytes).map_err(|error| {
            StoreError::Corrupt(format!("header {}: {error}", head.header.height))
        })?;
        if header != head.header || header.hash(suite) != head.block_hash {
            return Err(StoreError::Corrupt(format!(
                "header {} does not match the head record",
                header.height
            )));
        }
        if head.header.height > 0 {
            let block_bytes = backend
                .get(&height_key(b'B', head.header.height))?
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("block {} is missing", head.header.height))
                })?;
            let block: Block = codec::from_stored(&block_bytes).map_err(|error| {
                StoreError::Corrupt(format!("block {}: {error}", head.header.height))
            })?;
            if block.header != header {
                return Err(StoreError::Corrupt(format!(
                    "block {} does not carry its stored header",
                    header.height
                )));
            }
        }
        check_header_chain(backend.as_ref(), suite, &header)?;
        let log_root = txlog::root(&suite, &LogNodes(backend.as_ref(), suite), header.log_size)
            .map_err(|error| StoreError::Corrupt(format!("transaction log: {error}")))?;
        if log_root != header.log_root {
            return Err(StoreError::Corrupt(format!(
                "transaction log root at size {} is {log_root}, the header says {}",
                header.log_size, header.log_root
            )));
        }
        let tree =
            smt::SparseMerkleTree::open(suite, &TreeNodes(backend.as_ref()), header.state_root)
                .map_err(|error| StoreError::Corrupt(format!("state tree: {error}")))?;
        let chain_id = header.chain_id.clone();
        Ok(Store {
            backend,
            head: RwLock::new(head),
            tree: Mutex::new(tree),
            gate: RwLock::new(()),
            chain_id,
            suite,
            verified: RwLock::new(VerifiedSignatureCache::default()),
            lean: None,
        })
    }

    /// Writes the genesis state (height 0) to an empty `backend`.
    pub fn create_with(backend: Box<dyn Backend>, genesis: &Genesis) -> Result<Self, StoreError> {
        if !backend.scan(b"", None, 1)?.is_empty() {
            return Err(StoreError::AlreadyInitialised);
        }
        let suite = genesis.suite;
        let records = genesis.records();
        let mut tree = smt::SparseMerkleTree::empty(suite);
        let updates: Vec<(Hash32, Option<Hash32>)> = records
            .iter()
            .map(|record| {
                (
                    record.key().state_hash(suite),
                    Some(record.state_hash(suite)),
                )
            })
            .collect();
        let tree_writes = tree
            .apply(&TreeNodes(backend.as_ref()), &updates)
            .map_err(|error| StoreError::Tree(error.to_string()))?;
        let registry = records
            .iter()
            .find_map(|record| match record {
                Record::Nodes(registry) => Some(registry.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let header = BlockHeader {
            protocol_version: PROTOCOL_VERSION,
            chain_id: genesis.chain_id.clone(),
            height: 0,
            time: genesis.genesis_time,
            prev_hash: genesis.hash(),
            tx_root: tx_root::<Vec<u8>>(suite, &[]),
            log_size: 0,
            log_root: suite.empty_root(),
            state_root: tree_writes.root(),
            validators_hash: registry.validators_hash(suite),
            proposer: PublicKey([0u8; 32]),
        };
        let head = Head {
            block_hash: header.hash(suite),
            header: header.clone(),
            genesis_hash: genesis.hash(),
        };
        let mut batch: Vec<Write> = Vec::new();
        for record in &records {
            batch.push((record_key(&record.key()), Some(record.to_bytes())));
        }
        for (key, value) in tree_writes.writes() {
            batch.push((prefixed(b'S', key), Some(value.clone())));
        }
        for key in tree_writes.deletes() {
            batch.push((prefixed(b'S', key), None));
        }
        batch.push((
            FORMAT_KEY.to_vec(),
            Some(format_version_bytes(STORE_FORMAT_VERSION).to_vec()),
        ));
        batch.push((GENESIS_KEY.to_vec(), Some(genesis.to_json().into_bytes())));
        batch.push((height_key(b'H', 0), Some(codec::to_canonical(&header))));
        batch.push((HEAD_KEY.to_vec(), Some(codec::to_canonical(&head))));
        backend.write(batch)?;
        tree.commit(tree_writes)
            .map_err(|error| StoreError::Tree(error.to_string()))?;
        Ok(Store {
            backend,
            head: RwLock::new(head),
            tree: Mutex::new(tree),
            gate: RwLock::new(()),
            chain_id: genesis.chain_id.clone(),
            suite,
            verified: RwLock::new(VerifiedSignatureCache::default()),
            lean: None,
        })
    }

    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The latest committed block's head record.
    pub fn head(&self) -> Result<Head, StoreError> {
        Ok(self.head.read().map_err(|_| StoreError::Poisoned)?.clone())
    }

    /// The latest committed height (0 before the first block).
    pub fn height(&self) -> Result<Height, StoreError> {
        Ok(self.head()?.header.height)
    }

    /// The genesis file the store was created from.
    pub fn genesis(&self) -> Result<Genesis, StoreError> {
        stored_genesis(self.backend.as_ref())
    }

    /// The chain's algorithm suite, from its genesis file.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Bytes the store takes on disk.
    pub fn disk_bytes(&self) -> Result<u64, StoreError> {
        self.backend.disk_bytes()
    }

    /// The node registry in force for `height` (the next height at most): the committed
    /// registry with the changes due by then applied. Its validators sign block `height`.
    pub fn registry_for(&self, height: Height) -> Result<NodeRegistry, StoreError> {
        let mut registry = match self.record(&RecordKey::Nodes)? {
            Some(Record::Nodes(registry)) => registry,
            _ => return Err(StoreError::Corrupt("the node registry is missing".into())),
        };
        let (due, later): (Vec<_>, Vec<_>) = registry
            .pending
            .drain(..)
            .partition(|pending| pending.effective_height <= height);
        for pending in due {
            for change in &pending.changes {
                NodeRegistry::apply_change(&mut registry.nodes, change);
            }
        }
        registry.pending = later;
        Ok(registry)
    }

    /// The validator set in force at `height` (at most the next height), if the state still
    /// knows it: the committed registry with the changes due by `height` applied, accepted only
    /// when it hashes to the `validators_hash` that header `height` carries (for the next
    /// height, no header exists yet and the registry is taken as is). `None` when the
    /// validators changed after `height` or the header is missing.
    pub fn validator_set_at(
        &self,
        height: Height,
    ) -> Result<Option<hutong_consensus::ValidatorSet>, StoreError> {
        let registry = self.registry_for(height)?;
        if height <= self.height()? {
            let Some(header) = self.header(height)? else {
                return Ok(None);
            };
            if header.validators_hash != registry.validators_hash(self.suite) {
                return Ok(None);
            }
        }
        Ok(hutong_core::block::validator_set(&registry).ok())
    }

    /// Applies the block's evidence to `overlay` (see [`rules::apply_evidence`]): the items
    /// kept, their keys, and (build mode) those left out with why.
    #[allow(clippy::type_complexity)]
    fn apply_evidence(
        &self,
        overlay: &mut Overlay<'_, Self>,
        context: &Context<'_>,
        evidence: Vec<Evidence>,
        mode: Mode,
    ) -> Result<
        (
            Vec<Evidence>,
            Vec<EvidenceKey>,
            Vec<(EvidenceKey, EvidenceRuleError)>,
        ),
        BlockError,
    > {
        if mode == Mode::Verify && evidence.len() > limits::EVIDENCE_PER_BLOCK_MAX {
            return Err(BlockError::InvalidEvidence {
                index: limits::EVIDENCE_PER_BLOCK_MAX,
                error: EvidenceRuleError::TooMany {
                    count: evidence.len(),
                    limit: limits::EVIDENCE_PER_BLOCK_MAX,
                },
            });
        }
        let mut kept = Vec::new();
        let mut keys = Vec::new();
        let mut rejected = Vec::new();
        for (index, item) in evidence.into_iter().enumerate() {
            if kept.len() == limits::EVIDENCE_PER_BLOCK_MAX {
                rejected.push((
                    EvidenceKey::of(&item),
                    EvidenceRuleError::TooMany {
                        count: index + 1,
                        limit: limits::EVIDENCE_PER_BLOCK_MAX,
                    },
                ));
                continue;
            }
            let outcome = rules::apply_evidence(overlay, context, &item, |height| {
                self.validator_set_at(height).map_err(StateError::from)
            });
            match outcome {
                Ok(key) => {
                    keys.push(key);
                    kept.push(item);
                }
                Err(EvidenceRuleError::State(error)) => return Err(BlockError::State(error)),
                Err(error) => match mode {
                    Mode::Build => rejected.push((EvidenceKey::of(&item), error)),
                    Mode::Verify => return Err(BlockError::InvalidEvidence { index, error }),
                },
            }
        }
        Ok((kept, keys, rejected))
    }

    /// The equivocation recorded for `key`, if any.
    pub fn evidence(&self, key: &EvidenceKey) -> Result<Option<EvidenceRecord>, StoreError> {
        match self.record(&RecordKey::Evidence(key.clone()))? {
            Some(Record::Evidence(record)) => Ok(Some(record)),
            Some(_) => Err(StoreError::Corrupt(format!(
                "the record under evidence key {key:?} is of another kind"
            ))),
            None => Ok(None),
        }
    }

    /// Recorded equivocations in the order they were recorded (by recorded height, then by
    /// key), from block `from_height` on, after the record `after` (a cursor: the recorded
    /// height and key of the last record of the previous page), at most `limit`.
    pub fn evidence_from(
        &self,
        from_height: Height,
        after: Option<(Height, &EvidenceKey)>,
        limit: usize,
    ) -> Result<Vec<EvidenceRecord>, StoreError> {
        // Every entry of `from_height` and later sorts after the bare height key.
        let start = match after {
            Some((height, key)) if height >= from_height => evidence_index_key(height, key),
            _ => height_key(b'e', from_height),
        };
        let mut records = Vec::new();
        for (key, _) in self.backend.scan(b"e", Some(&start), limit)? {
            let Some(record_key_bytes) = key.get(9..) else {
                return Err(StoreError::Corrupt("short evidence index key".into()));
            };
            let record_key: RecordKey = codec::from_stored(record_key_bytes)?;
            match self.record(&record_key)? {
                Some(Record::Evidence(record)) => records.push(record),
                _ => {
                    return Err(StoreError::Corrupt(format!(
                        "evidence index entry {record_key:?} has no evidence record"
                    )));
                }
            }
        }
        Ok(records)
    }

    /// Executes `transactions` as block `height = head + 1` at `time`, proposed by `proposer`.
    pub fn execute(
        &self,
        time: TimeMs,
        proposer: PublicKey,
        transactions: Vec<Transaction>,
        mode: Mode,
    ) -> Result<Execution, BlockError> {
        self.execute_checked(time, proposer, transactions, Vec::new(), mode, None)
    }

    /// [`Store::execute`] for a block that also records equivocation `evidence` (ADR 0009).
    /// In build mode, evidence the rules refuse (or beyond the block's limit) is left out and
    /// reported in `rejected_evidence`; in verify mode it makes the block invalid.
    pub fn execute_with_evidence(
        &self,
        time: TimeMs,
        proposer: PublicKey,
        transactions: Vec<Transaction>,
        evidence: Vec<Evidence>,
        mode: Mode,
    ) -> Result<Execution, BlockError> {
        self.execute_checked(time, proposer, transactions, evidence, mode, None)
    }

    /// [`Store::execute_with_evidence`], skipping the signature arithmetic for the
    /// endorsements that `already_verified` holds (instead of those the admission check
    /// remembered). The key valid at the block's height is looked up as always; see
    /// [`rules::check_candidate_signatures`] for what the set may hold.
    pub fn execute_with(
        &self,
        time: TimeMs,
        proposer: PublicKey,
        transactions: Vec<Transaction>,
        evidence: Vec<Evidence>,
        mode: Mode,
        already_verified: &dyn rules::VerifiedSignatures,
    ) -> Result<Execution, BlockError> {
        self.execute_checked(
            time,
            proposer,
            transactions,
            evidence,
            mode,
            Some(already_verified),
        )
    }

    fn execute_checked(
        &self,
        time: TimeMs,
        proposer: PublicKey,
        transactions: Vec<Transaction>,
        evidence: Vec<Evidence>,
        mode: Mode,
        already_verified: Option<&dyn rules::VerifiedSignatures>,
    ) -> Result<Execution, BlockError> {
        self.execute_inner(
            time,
            proposer,
            transactions,
            None,
            evidence,
            mode,
            already_verified,
        )
    }

    /// Verify-mode execution of transactions prepared ahead.
    fn execute_prepared(
        &self,
        time: TimeMs,
        proposer: PublicKey,
        prepared: PreparedTransactions,
        evidence: Vec<Evidence>,
        already_verified: Option<&dyn rules::VerifiedSignatures>,
    ) -> Result<Execution, BlockError> {
        let PreparedTransactions {
            transactions,
            encoded,
            ids,
            leaf_hashes,
        } = prepared;
        self.execute_inner(
            time,
            proposer,
            transactions,
            Some((encoded, ids, leaf_hashes)),
            evidence,
            Mode::Verify,
            already_verified,
        )
    }

    /// `prepared`: the encodings, ids and leaf hashes of `transactions` (verify mode only).
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn execute_inner(
        &self,
        time: TimeMs,
        proposer: PublicKey,
        transactions: Vec<Transaction>,
        prepared: Option<(Vec<EncodedTransaction>, Vec<Hash32>, Vec<Hash32>)>,
        evidence: Vec<Evidence>,
        mode: Mode,
        already_verified: Option<&dyn rules::VerifiedSignatures>,
    ) -> Result<Execution, BlockError> {
        let _gate = self.gate.read().map_err(|_| StoreError::Poisoned)?;
        let head = self.head()?;
        if time <= head.header.time {
            return Err(BlockError::TimeNotIncreasing {
                previous: head.header.time,
                time,
            });
        }
        let height = head.header.height + 1;
        let context = Context {
            chain_id: &self.chain_id,
            suite: self.suite,
            height,
            time,
        };

        let (encoded, prepared_ids, prepared_leaf_hashes) = match prepared {
            Some((encoded, ids, leaf_hashes))
                if mode == Mode::Verify
                    && encoded.len() == transactions.len()
                    && ids.len() == transactions.len()
                    && leaf_hashes.len() == transactions.len() =>
            {
                (encoded, Some(ids), Some(leaf_hashes))
            }
            _ => (
                transactions.iter().map(Transaction::encode).collect(),
                None,
                None,
            ),
        };
        let (transactions, encoded, deferred) = match mode {
            Mode::Build => fit_block(transactions, encoded),
            Mode::Verify => {
                if transactions.len() > limits::BLOCK_TRANSACTIONS_MAX {
                    return Err(BlockError::TooManyTransactions {
                        count: transactions.len(),
                        limit: limits::BLOCK_TRANSACTIONS_MAX,
                    });
                }
                (transactions, encoded, Vec::new())
            }
        };
        let candidate_ids: Vec<Hash32> = prepared_ids.unwrap_or_else(|| {
            encoded
                .iter()
                .map(|encoded| encoded.id(self.suite))
                .collect()
        });

        let signature_check = {
            let candidates: Vec<SignatureCandidate<'_>> = transactions
                .iter()
                .zip(&encoded)
                .zip(&candidate_ids)
                .map(|((transaction, encoded), id)| SignatureCandidate {
                    transaction,
                    id: *id,
                    payload_bytes: encoded.payload_bytes(),
                })
                .collect();
            match already_verified {
                Some(already_verified) => {
                    rules::check_candidate_signatures(self, &context, &candidates, already_verified)
                }
                None => {
                    let verified = self.verified.read().map_err(|_| StoreError::Poisoned)?;
                    rules::check_candidate_signatures(self, &context, &candidates, &*verified)
                }
            }
        };
        let signatures = SignatureCounts {
            already_verified: signature_check.skipped,
            checked: signature_check.checked,
        };
        let mut overlay = Overlay::new(self);
        rules::begin_block(&mut overlay, &context)?;
        let (evidence, evidence_keys, rejected_evidence) =
            self.apply_evidence(&mut overlay, &context, evidence, mode)?;

        let mut kept = Vec::with_capacity(transactions.len());
        let mut rejected = Vec::new();
        let mut ids = Vec::with_capacity(transactions.len());
        let mut transaction_bytes = Vec::with_capacity(transactions.len());
        let mut applied = Vec::with_capacity(transactions.len());
        let mut total_bytes = 0usize;
        for (index, (((transaction, encoded), id), signatures)) in transactions
            .into_iter()
            .zip(encoded)
            .zip(candidate_ids)
            .zip(signature_check.results)
            .enumerate()
        {
            let outcome = signatures
                .and_then(|()| rules::apply_transaction(&mut overlay, &context, &transaction, id));
            match outcome {
                Ok(effects) => {
                    let bytes = encoded.into_bytes();
                    total_bytes += bytes.len();
                    applied.push(effects);
                    ids.push(id);
                    transaction_bytes.push(bytes);
                    kept.push(transaction);
                }
                Err(error) if error.is_internal() => {
                    return Err(StoreError::State(StateError(error.to_string())).into());
                }
                Err(error) => match mode {
                    Mode::Build => rejected.push((id, error)),
                    Mode::Verify => {
                        return Err(BlockError::InvalidTransaction { index, id, error });
                    }
                },
            }
        }
        if total_bytes > limits::BLOCK_BYTES_MAX {
            return Err(BlockError::TooLarge {
                size_bytes: total_bytes,
                limit_bytes: limits::BLOCK_BYTES_MAX,
            });
        }

        let registry = match overlay.record(&RecordKey::Nodes)? {
            Some(Record::Nodes(registry)) => registry,
            _ => return Err(StoreError::Corrupt("the node registry is missing".into()).into()),
        };
        let records = overlay.into_writes();
        let mut updates: Vec<(Hash32, Option<Hash32>)> = Vec::with_capacity(records.len());
        let mut record_writes: Vec<Write> = Vec::with_capacity(records.len());
        for (key, record) in &records {
            // One encoding of the key and one of the record serve both the tree and the store.
            let key_bytes = key.to_bytes();
            let record_bytes = record.to_bytes();
            updates.push((
                key_position(self.suite, key, &key_bytes),
                Some(record_hash_of_bytes(self.suite, &record_bytes)),
            ));
            record_writes.push((prefixed(b'R', &key_bytes), Some(record_bytes)));
        }
        debug_assert!(
            records
                .iter()
                .zip(&updates)
                .all(|((key, _), (hash, _))| key.state_hash(self.suite) == *hash)
        );
        let tree_writes = {
            let tree = self.tree.lock().map_err(|_| StoreError::Poisoned)?;
            tree.apply(&TreeNodes(self.backend.as_ref()), &updates)
                .map_err(|error| StoreError::Tree(error.to_string()))?
        };
        // Verify mode keeps every transaction or fails: the prepared leaf hashes are in order.
        let leaf_hashes: Vec<Hash32> = match prepared_leaf_hashes {
            Some(leaf_hashes) if leaf_hashes.len() == transaction_bytes.len() => leaf_hashes,
            _ => transaction_bytes
                .iter()
                .map(|bytes| self.suite.leaf_hash(bytes))
                .collect(),
        };
        let log_append = txlog::append(
            &self.suite,
            &LogNodes(self.backend.as_ref(), self.suite),
            head.header.log_size,
            &leaf_hashes,
        )
        .map_err(StoreError::Log)?;
        let log_writes = log_tile_writes(self.suite, self.backend.as_ref(), &log_append.nodes)?;

        let header = BlockHeader {
            protocol_version: PROTOCOL_VERSION,
            chain_id: self.chain_id.clone(),
            height,
            time,
            prev_hash: head.block_hash,
            // The same root as `tx_root(&transaction_bytes)`, from the leaf hashes at hand.
            tx_root: txlog::root_from_leaf_hashes(&self.suite, &leaf_hashes),
            log_size: log_append.new_size,
            log_root: log_append.new_root,
            state_root: tree_writes.root(),
            validators_hash: registry.validators_hash(self.suite),
            proposer,
        };
        debug_assert_eq!(header.tx_root, tx_root(self.suite, &transaction_bytes));
        Ok(Execution {
            header,
            transactions: kept,
            rejected,
            deferred,
            evidence,
            rejected_evidence,
            evidence_keys,
            ids,
            transaction_bytes,
            applied,
            record_writes,
            tree_writes,
            log_writes,
            signatures,
        })
    }

    /// Checks one transaction against the committed state as if it were alone in the next
    /// block at `time`: its form, its signatures with the keys valid at the next height, then
    /// the rules. Nothing is written. This is the mempool's admission check.
    ///
    /// Signatures that pass are remembered (up to [`VERIFIED_SIGNATURES_MAX`]), so that
    /// executing the block that carries the transaction skips their arithmetic.
    pub fn check_transaction(
        &self,
        transaction: &Transaction,
        time: TimeMs,
    ) -> Result<(), RuleError> {
        self.check_transactions(&[transaction], time, 0)
            .into_iter()
            .next()
            .unwrap_or(Ok(()))
    }

    /// [`Store::check_transaction`] for many transactions at once, each checked as if it were
    /// alone in the next block (they do not see each other's effects), with their signatures
    /// in one batch: the admission path at a fraction of the cost per signature.
    ///
    /// `nonce_ahead_max`: how far beyond its signer's next nonce a transaction's nonce may be
    /// (0: exactly the next). One ahead is checked as if the nonces before it had been used:
    /// a node's mempool holds it until its predecessors arrive (ADR 0011).
    pub fn check_transactions(
        &self,
        transactions: &[&Transaction],
        time: TimeMs,
        nonce_ahead_max: u64,
    ) -> Vec<Result<(), RuleError>> {
        let head = match self.head() {
            Ok(head) => head,
            Err(error) => {
                let error = RuleError::State(StateError::from(error));
                return vec![Err(error); transactions.len()];
            }
        };
        let context = Context {
            chain_id: &self.chain_id,
            suite: self.suite,
            height: head.header.height + 1,
            time: time.max(head.header.time + 1),
        };
        let encoded: Vec<EncodedTransaction> = transactions
            .iter()
            .map(|transaction| transaction.encode())
            .collect();
        let candidates: Vec<SignatureCandidate<'_>> = transactions
            .iter()
            .zip(&encoded)
            .map(|(transaction, encoded)| SignatureCandidate {
                transaction,
                id: encoded.id(self.suite),
                payload_bytes: encoded.payload_bytes(),
            })
            .collect();
        let check = match self.verified.read() {
            Ok(verified) => {
                rules::check_candidate_signatures(self, &context, &candidates, &*verified)
            }
            Err(_) => rules::check_candidate_signatures(
                self,
                &context,
                &candidates,
                &rules::NothingVerified,
            ),
        };
        if let Ok(mut verified) = self.verified.write() {
            for ((candidate, result), keys) in
                candidates.iter().zip(&check.results).zip(&check.keys)
            {
                if result.is_ok() {
                    for key in keys {
                        verified.insert(&candidate.id, key);
                    }
                }
            }
        }
        candidates
            .iter()
            .zip(check.results)
            .map(|(candidate, signatures)| {
                signatures?;
                let mut overlay = Overlay::new(self);
                rules::begin_block(&mut overlay, &context)?;
                let payload = &candidate.transaction.payload;
                overlay.assume_nonces_before(&payload.signer, payload.nonce, nonce_ahead_max)?;
                rules::apply_transaction(
                    &mut overlay,
                    &context,
                    candidate.transaction,
                    candidate.id,
                )
                .map(|_| ())
            })
            .collect()
    }

    /// Re-executes a block received from elsewhere and checks its header against the result
    /// (its certificate is the caller's to verify first). Returns the execution to commit.
    pub fn verify_block(&self, block: &Block) -> Result<Execution, BlockError> {
        self.verify_block_checked(block, None)
    }

    /// [`Store::verify_block`] with the signatures of `already_verified` taken as checked
    /// (see [`Store::execute_with`]).
    pub fn verify_block_with(
        &self,
        block: &Block,
        already_verified: &dyn rules::VerifiedSignatures,
    ) -> Result<Execution, BlockError> {
        self.verify_block_checked(block, Some(already_verified))
    }

    fn verify_block_checked(
        &self,
        block: &Block,
        already_verified: Option<&dyn rules::VerifiedSignatures>,
    ) -> Result<Execution, BlockError> {
        self.verify_parts(block, None, already_verified)
    }

    /// Verifies `block`, executing the copy of its transactions that `prepared` holds (see
    /// [`PreparedTransactions`]), or a clone of them.
    fn verify_parts(
        &self,
        block: &Block,
        prepared: Option<PreparedTransactions>,
        already_verified: Option<&dyn rules::VerifiedSignatures>,
    ) -> Result<Execution, BlockError> {
        let head = self.head()?;
        if block.header.protocol_version != PROTOCOL_VERSION {
            return Err(BlockError::ProtocolVersion {
                expected: PROTOCOL_VERSION,
                found: block.header.protocol_version,
            });
        }
        if block.header.height != head.header.height + 1 {
            return Err(BlockError::WrongHeight {
                head: head.header.height,
                found: block.header.height,
            });
        }
        let prepared = prepared
            .unwrap_or_else(|| PreparedTransactions::new(self.suite, block.transactions.clone()));
        let execution = self.execute_prepared(
            block.header.time,
            block.header.proposer,
            prepared,
            block.evidence.clone(),
            already_verified,
        )?;
        let expected = &execution.header;
        let found = &block.header;
        let mismatch =
            |field: &'static str, expected: String, found: String| BlockError::HeaderMismatch {
                field,
                expected,
                found,
            };
        if expected.chain_id != found.chain_id {
            return Err(mismatch(
                "chain_id",
                expected.chain_id.clone(),
                found.chain_id.clone(),
            ));
        }
        let pairs = [
            ("prev_hash", expected.prev_hash, found.prev_hash),
            ("tx_root", expected.tx_root, found.tx_root),
            ("log_root", expected.log_root, found.log_root),
            ("state_root", expected.state_root, found.state_root),
            (
                "validators_hash",
                expected.validators_hash,
                found.validators_hash,
            ),
        ];
        for (field, expected, found) in pairs {
            if expected != found {
                return Err(mismatch(field, expected.to_hex(), found.to_hex()));
            }
        }
        if expected.log_size != found.log_size {
            return Err(mismatch(
                "log_size",
                expected.log_size.to_string(),
                found.log_size.to_string(),
            ));
        }
        Ok(execution)
    }

    /// Commits an executed block with its certificate: one atomic, durable batch. When it
    /// returns `Ok`, the block survives any crash; on `Err` nothing changed.
    pub fn commit(
        &self,
        execution: Execution,
        certificate: CommitCertificate,
    ) -> Result<Block, BlockError> {
        let _gate = self.gate.write().map_err(|_| StoreError::Poisoned)?;
        let head = self.head()?;
        if execution.header.height != head.header.height + 1
            || execution.header.prev_hash != head.block_hash
        {
            return Err(BlockError::Stale);
        }
        let Execution {
            header,
            transactions,
            ids,
            transaction_bytes,
            applied,
            record_writes,
            tree_writes,
            log_writes,
            evidence,
            evidence_keys,
            ..
        } = execution;
        let height = header.height;
        // Audit mode (`lean.rs`) skips the writes that only serving reads.
        let serving = self.lean.is_none();
        let history = self.keeps_history();
        let header_bytes = codec::to_canonical(&header);
        let block_bytes = history
            .then(|| block_bytes(&header_bytes, &transaction_bytes, &certificate, &evidence));
        drop(transaction_bytes);
        let block = Block {
            header: header.clone(),
            transactions,
            certificate,
            evidence,
        };
        debug_assert!(
            block_bytes
                .as_ref()
                .is_none_or(|bytes| *bytes == codec::to_canonical(&block))
        );
        let mut batch: Vec<Write> = Vec::with_capacity(
            record_writes.len()
                + tree_writes.writes().len()
                + tree_writes.deletes().len()
                + log_writes.len()
                // Per transaction: location and licence indexes (serving), signer entries.
                + ids.len() * if serving { 5 } else { usize::from(history) }
                + 4,
        );
        if let Some(block_bytes) = block_bytes {
            batch.push((height_key(b'B', height), Some(block_bytes)));
        }
        batch.push((height_key(b'H', height), Some(header_bytes)));
        batch.extend(record_writes);
        for (key, value) in tree_writes.writes() {
            batch.push((prefixed(b'S', key), Some(value.clone())));
        }
        for key in tree_writes.deletes() {
            batch.push((prefixed(b'S', key), None));
        }
        batch.extend(log_writes);
        for key in evidence_keys.iter().filter(|_| serving) {
            batch.push((evidence_index_key(height, key), Some(Vec::new())));
        }
        let first_log_index = header.log_size - ids.len() as u64;
        let mut lean_locations = Vec::new();
        // One action entry per signer of the block: (index, id) of each transaction it signed.
        let mut actions: BTreeMap<&AuthorityId, Vec<u8>> = BTreeMap::new();
        for (index, (id, effects)) in ids.iter().zip(&applied).enumerate() {
            let location = TxLocation {
                height,
                index: index as u32,
                log_index: first_log_index + index as u64,
            };
            if serving {
                batch.push((prefixed(b'T', &id.0), Some(codec::to_canonical(&location))));
            } else {
                lean_locations.push((*id, location));
            }
            for authority in effects.authorities.iter().filter(|_| history) {
                let entry = actions.entry(authority).or_default();
                entry.extend_from_slice(&(index as u32).to_be_bytes());
                entry.extend_from_slice(&id.0);
            }
            if serving
                && let (Some((type_code, number)), Some(transaction)) =
                    (&effects.licence, block.transactions.get(index))
                && let hutong_core::tx::TxBody::IssueLicence { holder, region, .. } =
                    &transaction.payload.body
            {
                let tail = [type_code.as_str().as_bytes(), number.as_str().as_bytes()];
                let holder_text = holder.to_text();
                batch.push((
                    joined(b'h', &[holder_text.as_bytes(), tail[0], tail[1]]),
                    Some(Vec::new()),
                ));
                batch.push((
                    joined(
                        b'i',
                        &[
                            transaction.payload.signer.as_str().as_bytes(),
                            tail[0],
                            tail[1],
                        ],
                    ),
                    Some(Vec::new()),
                ));
                batch.push((
                    joined(b'r', &[region.as_str().as_bytes(), tail[0], tail[1]]),
                    Some(Vec::new()),
                ));
            }
        }
        for (authority, entry) in actions {
            batch.push((
                joined(
                    b'a',
                    &[authority.as_str().as_bytes(), &height.to_be_bytes()],
                ),
                Some(entry),
            ));
        }
        let new_head = Head {
            block_hash: block.hash(self.suite),
            header,
            genesis_hash: head.genesis_hash,
        };
        batch.push((HEAD_KEY.to_vec(), Some(codec::to_canonical(&new_head))));
        self.backend.write(batch)?;
        // Durable: now the in-memory state may follow.
        if let Some(lean) = &self.lean {
            lean.add(lean_locations)?;
        }
        self.tree
            .lock()
            .map_err(|_| StoreError::Poisoned)?
            .commit(tree_writes)
            .map_err(|error| StoreError::Tree(error.to_string()))?;
        *self.head.write().map_err(|_| StoreError::Poisoned)? = new_head;
        Ok(block)
    }

    /// The block at `height` (1 and above).
    pub fn block(&self, height: Height) -> Result<Option<Block>, StoreError> {
        self.backend
            .get(&height_key(b'B', height))?
            .map(|bytes| codec::from_stored(&bytes).map_err(StoreError::from))
            .transpose()
    }

    /// The header at `height` (0 is the genesis header).
    pub fn header(&self, height: Height) -> Result<Option<BlockHeader>, StoreError> {
        self.backend
            .get(&height_key(b'H', height))?
            .map(|bytes| codec::from_stored(&bytes).map_err(StoreError::from))
            .transpose()
    }

    /// The current record under `key`.
    pub fn record(&self, key: &RecordKey) -> Result<Option<Record>, StoreError> {
        self.backend
            .get(&record_key(key))?
            .map(|bytes| codec::from_stored(&bytes).map_err(StoreError::from))
            .transpose()
    }

    /// A licence by type and number.
    pub fn licence(
        &self,
        type_code: &TypeCode,
        number: &LicenceNumber,
    ) -> Result<Option<Licence>, StoreError> {
        match self.record(&RecordKey::Licence(type_code.clone(), number.clone()))? {
            Some(Record::Licence(licence)) => Ok(Some(licence)),
            Some(_) => Err(StoreError::Corrupt(
                "a licence key holds another kind of record".into(),
            )),
            None => Ok(None),
        }
    }

    /// Where a committed transaction is.
    pub fn transaction_location(&self, id: &Hash32) -> Result<Option<TxLocation>, StoreError> {
        if let Some(lean) = &self.lean {
            return lean.location(id);
        }
        self.backend
            .get(&prefixed(b'T', &id.0))?
            .map(|bytes| codec::from_stored(&bytes).map_err(StoreError::from))
            .transpose()
    }

    /// A committed transaction with its location.
    pub fn transaction(
        &self,
        id: &Hash32,
    ) -> Result<Option<(Transaction, TxLocation)>, StoreError> {
        let Some(location) = self.transaction_location(id)? else {
            return Ok(None);
        };
        let block = self
            .block(location.height)?
            .ok_or_else(|| StoreError::Corrupt(format!("block {} is missing", location.height)))?;
        let transaction = block
            .transactions
            .into_iter()
            .nth(location.index as usize)
            .ok_or_else(|| {
                StoreError::Corrupt(format!("transaction {id} is not at its recorded place"))
            })?;
        Ok(Some((transaction, location)))
    }

    /// The record under `key` (or its absence) with a sparse-Merkle proof against the latest
    /// committed state root, and the header that carries that root.
    pub fn prove(&self, key: &RecordKey) -> Result<StateProof, StoreError> {
        let _gate = self.gate.read().map_err(|_| StoreError::Poisoned)?;
        let header = self.head()?.header;
        let record = self.record(key)?;
        let proof = {
            let tree = self.tree.lock().map_err(|_| StoreError::Poisoned)?;
            tree.prove(
                &TreeNodes(self.backend.as_ref()),
                &key.state_hash(self.suite),
            )
            .map_err(|error| StoreError::Tree(error.to_string()))?
        };
        Ok(StateProof {
            key: key.clone(),
            record,
            proof,
            header,
        })
    }

    /// An inclusion proof for log leaf `index` in the log of size `size`.
    pub fn log_inclusion(&self, index: u64, size: u64) -> Result<InclusionProof, StoreError> {
        Ok(txlog::inclusion_proof(
            &self.suite,
            &LogNodes(self.backend.as_ref(), self.suite),
            index,
            size,
        )?)
    }

    /// A consistency proof between two log sizes.
    pub fn log_consistency(
        &self,
        first_size: u64,
        second_size: u64,
    ) -> Result<ConsistencyProof, StoreError> {
        Ok(txlog::consistency_proof(
            &self.suite,
            &LogNodes(self.backend.as_ref(), self.suite),
            first_size,
            second_size,
        )?)
    }

    /// The log root at any size up to the current one.
    pub fn log_root(&self, size: u64) -> Result<Hash32, StoreError> {
        Ok(txlog::root(
            &self.suite,
            &LogNodes(self.backend.as_ref(), self.suite),
            size,
        )?)
    }

    fn licence_index(
        &self,
        prefix: u8,
        first: &str,
        after: Option<&(TypeCode, LicenceNumber)>,
        limit: usize,
    ) -> Result<Vec<(TypeCode, LicenceNumber)>, StoreError> {
        let mut start = vec![prefix];
        start.extend_from_slice(first.as_bytes());
        start.push(0);
        let after_key = after.map(|(type_code, number)| {
            joined(
                prefix,
                &[
                    first.as_bytes(),
                    type_code.as_str().as_bytes(),
                    number.as_str().as_bytes(),
                ],
            )
        });
        let entries = self.backend.scan(&start, after_key.as_deref(), limit)?;
        entries
            .into_iter()
            .map(|(key, _)| {
                let rest = &key[start.len()..];
                let mut parts = rest.splitn(2, |byte| *byte == 0);
                let type_code = parts.next().unwrap_or_default();
                let number = parts
                    .next()
                    .ok_or_else(|| StoreError::Corrupt("malformed licence index key".into()))?;
                Ok((
                    TypeCode(String::from_utf8_lossy(type_code).into_owned()),
                    LicenceNumber(String::from_utf8_lossy(number).into_owned()),
                ))
            })
            .collect()
    }

    /// Licences of a holder (一照通查), in (type, number) order, after a cursor.
    pub fn licences_of_holder(
        &self,
        holder: &Holder,
        after: Option<&(TypeCode, LicenceNumber)>,
        limit: usize,
    ) -> Result<Vec<(TypeCode, LicenceNumber)>, StoreError> {
        self.licence_index(b'h', &holder.to_text(), after, limit)
    }

    /// Licences issued by an authority.
    pub fn licences_of_issuer(
        &self,
        issuer: &AuthorityId,
        after: Option<&(TypeCode, LicenceNumber)>,
        limit: usize,
    ) -> Result<Vec<(TypeCode, LicenceNumber)>, StoreError> {
        self.licence_index(b'i', issuer.as_str(), after, limit)
    }

    /// Licences issued in a region (exactly that code).
    pub fn licences_in_region(
        &self,
        region: &RegionCode,
        after: Option<&(TypeCode, LicenceNumber)>,
        limit: usize,
    ) -> Result<Vec<(TypeCode, LicenceNumber)>, StoreError> {
        self.licence_index(b'r', region.as_str(), after, limit)
    }

    /// Licences issued in any region that `region` covers (the code itself and, for a
    /// province or a city, every code under it; the nation covers all), in (region, type,
    /// number) order, after a cursor.
    pub fn licences_covered_by(
        &self,
        region: &RegionCode,
        after: Option<&(RegionCode, TypeCode, LicenceNumber)>,
        limit: usize,
    ) -> Result<Vec<(RegionCode, TypeCode, LicenceNumber)>, StoreError> {
        // Every region code has six digits, so the covered prefix selects exactly the
        // region index's keys of the codes covered.
        let start = prefixed(b'r', region.covered_prefix().as_bytes());
        let after_key = after.map(|(region, type_code, number)| {
            joined(
                b'r',
                &[
                    region.as_str().as_bytes(),
                    type_code.as_str().as_bytes(),
                    number.as_str().as_bytes(),
                ],
            )
        });
        let malformed = || StoreError::Corrupt("malformed region index key".into());
        self.backend
            .scan(&start, after_key.as_deref(), limit)?
            .into_iter()
            .map(|(key, _)| {
                let mut parts = key[1..].splitn(3, |byte| *byte == 0);
                let (Some(region), Some(type_code), Some(number)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(malformed());
                };
                let region = std::str::from_utf8(region)
                    .ok()
                    .and_then(|text| RegionCode::parse(text).ok())
                    .ok_or_else(malformed)?;
                Ok((
                    region,
                    TypeCode(String::from_utf8_lossy(type_code).into_owned()),
                    LicenceNumber(String::from_utf8_lossy(number).into_owned()),
                ))
            })
            .collect()
    }

    /// Records of one kind, in key order, after a cursor (a record key).
    pub fn records_with_prefix(
        &self,
        prefix: &RecordKey,
        after: Option<&RecordKey>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        // The key bytes of a record key start with its variant index, followed by its
        // fields: the bytes of a key with empty fields are a prefix of the whole kind only
        // for the variant byte, which is what we take.
        let kind = record_key(prefix);
        let kind_prefix = &kind[..2];
        let after_key = after.map(record_key);
        self.backend
            .scan(kind_prefix, after_key.as_deref(), limit)?
            .into_iter()
            .map(|(_, value)| codec::from_stored(&value).map_err(StoreError::from))
            .collect()
    }

    /// What one authority signed, oldest first: `(height, index, transaction id)`, after a
    /// position `(height, index)` when given.
    pub fn actions_of(
        &self,
        authority: &AuthorityId,
        after: Option<(Height, u32)>,
        limit: usize,
    ) -> Result<Vec<(Height, u32, Hash32)>, StoreError> {
        let mut start = vec![b'a'];
        start.extend_from_slice(authority.as_str().as_bytes());
        start.push(0);
        let block_key = |height: Height| {
            let mut key = start.clone();
            key.extend_from_slice(&height.to_be_bytes());
            key
        };
        let mut out = Vec::new();
        // The rest of the block the cursor is in, then the blocks after it; every entry holds
        // at least one action, so `limit` entries are enough.
        let mut entries: Vec<Entry> = Vec::new();
        if let Some((height, _)) = after {
            let key = block_key(height);
            if let Some(value) = self.backend.get(&key)? {
                entries.push((key, value));
            }
        }
        let after_key = after.map(|(height, _)| block_key(height));
        entries.extend(self.backend.scan(&start, after_key.as_deref(), limit)?);
        for (key, value) in entries {
            let height = key
                .get(start.len()..)
                .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| StoreError::Corrupt("malformed action index key".into()))?;
            if value.is_empty() || !value.len().is_multiple_of(36) {
                return Err(StoreError::Corrupt(format!(
                    "the action index entry of {authority} at height {height} is {} bytes long",
                    value.len()
                )));
            }
            for item in value.chunks_exact(36) {
                let (index, id) = item.split_at(4);
                let index = u32::from_be_bytes(index.try_into().unwrap_or_default());
                if after.is_some_and(|cursor| (height, index) <= cursor) {
                    continue;
                }
                if out.len() >= limit {
                    return Ok(out);
                }
                let id: [u8; 32] = id.try_into().unwrap_or_default();
                out.push((height, index, Hash32(id)));
            }
        }
        Ok(out)
    }
}

/// The records a verdict was computed from, with the verdict and the state it was read at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictAnswer {
    pub verdict: Verdict,
    pub licence: Licence,
    pub issuer: Authority,
    pub grant: Option<Grant>,
    /// The recognitions the verdict read (for a region where the licence needs one, those of
    /// the region's recognition sets about the licence, ADR 0039; none otherwise), in force or
    /// not at the time.
    pub recognitions: Vec<Recognition>,
    /// The records of the objections open now and of those open at the verdict's time.
    pub objections: Vec<Objection>,
    pub state: StateAt,
}

impl Store {
    /// The verdict on licence `(type_code, number)` at `at`, in `region` if given, with the
    /// records it was computed from; `None` when there is no such licence.
    pub fn verdict(
        &self,
        type_code: &TypeCode,
        number: &LicenceNumber,
        region: Option<&RegionCode>,
        at: TimeMs,
    ) -> Result<Option<VerdictAnswer>, StoreError> {
        let _gate = self.gate.read().map_err(|_| StoreError::Poisoned)?;
        let header = self.head()?.header;
        let Some(licence) = self.licence(type_code, number)? else {
            return Ok(None);
        };
        // The records the verdict reads are the core's to name (`verdict::input_keys`), so
        // that the answer here, the API's proof bundle and the offline verifier use the same.
        let mut records = Vec::new();
        for key in verdict::input_keys(&licence) {
            if let Some(record) = self.record(&key)? {
                records.push(record);
            }
        }
        // The recognitions are those of the sets of the regions covering the one asked
        // (ADR 0039): the same a bundle proves whole.
        let mut sets = Vec::new();
        for key in verdict::recognition_set_keys(&licence, region) {
            if let Some(Record::RecognitionSet(set)) = self.record(&key)? {
                sets.push(set);
            }
        }
        for id in verdict::recognitions_in_sets(&licence, &sets) {
            if let Some(record) = self.record(&RecordKey::Recognition(id))? {
                records.push(record);
            }
        }
        let inputs = VerdictRecords::collect(&licence, region, records);
        let (Some(verdict), Some(issuer)) =
            (inputs.verdict(&licence, region, at), inputs.issuer.clone())
        else {
            return Err(StoreError::Corrupt(format!(
                "the issuer {} of a licence is missing",
                licence.issuer
            )));
        };
        let VerdictRecords {
            grant,
            recognitions,
            mut objections,
            ..
        } = inputs;
        // At a past time the verdict may count objections resolved since, which are not
        // inputs of the verdict now: their records are read here for the answer's details.
        for id in &verdict.open_objections {
            if objections.iter().all(|objection| objection.id != *id)
                && let Some(Record::Objection(objection)) =
                    self.record(&RecordKey::Objection(*id))?
            {
                objections.push(objection);
            }
        }
        Ok(Some(VerdictAnswer {
            verdict,
            licence,
            issuer,
            grant,
            recognitions,
            objections,
            state: StateAt {
                height: header.height,
                time: header.time,
            },
        }))
    }

    /// Every recognition attestation (there are few: one per region pair and policy), bounded
    /// by [`RECOGNITIONS_SCAN_MAX`].
    pub fn recognitions(&self) -> Result<Vec<Recognition>, StoreError> {
        let records = self.records_with_prefix(
            &RecordKey::Recognition(Hash32::ZERO),
            None,
            RECOGNITIONS_SCAN_MAX,
        )?;
        Ok(records
            .into_iter()
            .filter_map(|record| match record {
                Record::Recognition(recognition) => Some(recognition),
                _ => None,
            })
            .collect())
    }
}

// Audit mode (`lean.rs`, docs/adr/0012-lean-audit-execution.md): what the store does
// differently when it holds a `lean::Lean`.
impl Store {
    /// [`Store::verify_block_with`] for `block` whose transactions `prepared` holds (a copy
    /// made ahead, with their encodings): nothing of it is encoded or hashed again. The
    /// header is checked against the re-execution of `prepared`'s transactions, so any other
    /// transactions than the block's fail on its `tx_root`.
    pub fn verify_block_prepared(
        &self,
        block: &Block,
        prepared: PreparedTransactions,
        already_verified: &dyn rules::VerifiedSignatures,
    ) -> Result<Execution, BlockError> {
        self.verify_parts(block, Some(prepared), Some(already_verified))
    }

    /// Creates a store in audit mode on an empty `backend` from `genesis` (see `lean.rs`):
    /// blocks execute and commit as in [`Store::create_with`], and every
    /// check and root is the same, but the serving-only writes are skipped.
    pub fn create_for_audit(
        backend: Box<dyn Backend>,
        genesis: &Genesis,
        options: AuditStore,
    ) -> Result<Self, StoreError> {
        let mut store = Self::create_with(backend, genesis)?;
        store.lean = Some(lean::Lean::new(options));
        Ok(store)
    }

    /// Whether the store keeps the licence indexes (by holder, issuer and region): always,
    /// except in audit mode.
    pub fn keeps_licence_indexes(&self) -> bool {
        self.lean.is_none()
    }

    /// Whether the store keeps its blocks and the index of what each authority signed
    /// (always, except in audit mode without [`AuditStore::history`]).
    pub fn keeps_history(&self) -> bool {
        self.lean.as_ref().is_none_or(|lean| lean.history)
    }

    /// Whether the store is in audit mode.
    pub fn is_audit_store(&self) -> bool {
        self.lean.is_some()
    }
}

/// Takes transactions in order while the block stays within its count and byte limits; the
/// rest wait for a later block.
fn fit_block(
    transactions: Vec<Transaction>,
    encoded: Vec<EncodedTransaction>,
) -> (Vec<Transaction>, Vec<EncodedTransaction>, Vec<Transaction>) {
    let mut kept = Vec::new();
    let mut kept_encoded = Vec::new();
    let mut deferred = Vec::new();
    let mut bytes = 0usize;
    for (transaction, encoded) in transactions.into_iter().zip(encoded) {
        let size = encoded.bytes().len();
        if kept.len() < limits::BLOCK_TRANSACTIONS_MAX
            && bytes + size <= limits::BLOCK_BYTES_MAX
            && deferred.is_empty()
        {
            bytes += size;
            kept.push(transaction);
            kept_encoded.push(encoded);
        } else {
            deferred.push(transaction);
        }
    }
    (kept, kept_encoded, deferred)
}

/// The canonical bytes of a [`Block`] from its parts' bytes: the canonical encoding of a
/// struct is its fields' encodings in order, and a sequence's is its length (an unsigned
/// varint, the same bytes as a `u64`'s) followed by its items', so the transactions encoded
/// once by `execute` need not be encoded again.
fn block_bytes(
    header_bytes: &[u8],
    transaction_bytes: &[Vec<u8>],
    certificate: &CommitCertificate,
    evidence: &[Evidence],
) -> Vec<u8> {
    let certificate_bytes = codec::to_canonical(certificate);
    let evidence_bytes = codec::to_canonical(&evidence);
    let length_bytes = codec::to_canonical(&(transaction_bytes.len() as u64));
    let total = header_bytes.len()
        + length_bytes.len()
        + transaction_bytes.iter().map(Vec::len).sum::<usize>()
        + certificate_bytes.len()
        + evidence_bytes.len();
    let mut bytes = Vec::with_capacity(total);
    bytes.extend_from_slice(header_bytes);
    bytes.extend_from_slice(&length_bytes);
    for transaction in transaction_bytes {
        bytes.extend_from_slice(transaction);
    }
    bytes.extend_from_slice(&certificate_bytes);
    bytes.extend_from_slice(&evidence_bytes);
    bytes
}

/// The genesis file a store was created from, as it keeps it.
/// Checks that the [`OPEN_CHAIN_CHECK_BLOCKS`] headers below `head` are there and linked: each
/// names the hash of the one below it. Bounded whatever the chain's length (about a
/// millisecond on a store of any size), it catches headers lost or altered near the head,
/// which an engine without page checksums (sled) would otherwise serve.
fn check_header_chain(
    backend: &dyn Backend,
    suite: Suite,
    head: &BlockHeader,
) -> Result<(), StoreError> {
    let lowest = head.height.saturating_sub(OPEN_CHAIN_CHECK_BLOCKS);
    let mut above = head.clone();
    while above.height > lowest {
        let height = above.height - 1;
        let bytes = backend
            .get(&height_key(b'H', height))?
            .ok_or_else(|| StoreError::Corrupt(format!("header {height} is missing")))?;
        let header: BlockHeader = codec::from_stored(&bytes)
            .map_err(|error| StoreError::Corrupt(format!("header {height}: {error}")))?;
        if header.height != height || header.hash(suite) != above.prev_hash {
            return Err(StoreError::Corrupt(format!(
                "header {} does not name the hash of header {height}",
                above.height
            )));
        }
        above = header;
    }
    Ok(())
}

/// Runs an engine call whose panic (a damaged file can make an engine panic rather than
/// return an error) must become a typed error: the call's partial state is dropped with its
/// stack, and the caller gets [`StoreError::Corrupt`] naming the engine's message.
fn without_panics<T>(
    doing: &str,
    call: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        Err(StoreError::Corrupt(format!(
            "the storage engine panicked {doing} the store ({message})"
        )))
    })
}

fn stored_genesis(backend: &dyn Backend) -> Result<Genesis, StoreError> {
    let bytes = backend
        .get(GENESIS_KEY)?
        .ok_or_else(|| StoreError::Corrupt("the genesis file is missing".into()))?;
    serde_json::from_slice(&bytes).map_err(|error| StoreError::Corrupt(format!("genesis: {error}")))
}

/// The store key of the evidence index: recorded height, then the record key's bytes.
fn evidence_index_key(height: Height, key: &EvidenceKey) -> Vec<u8> {
    let mut bytes = height_key(b'e', height);
    bytes.extend_from_slice(&RecordKey::Evidence(key.clone()).to_bytes());
    bytes
}

impl StateReader for Store {
    fn record(&self, key: &RecordKey) -> Result<Option<Record>, StateError> {
        Store::record(self, key).map_err(StateError::from)
    }

    fn contains_transaction(&self, id: &Hash32) -> Result<bool, StateError> {
        if let Some(lean) = &self.lean {
            return Ok(lean.location(id)?.is_some());
        }
        Ok(self
            .backend
            .get(&prefixed(b'T', &id.0))
            .map_err(StateError::from)?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hutong_core::log::{Blake3Log, MemoryLogStore};
    use hutong_core::testkit::{Fixture, GENESIS_TIME, SUITE};

    fn leaf(number: u64) -> Hash32 {
        Blake3Log.leaf_hash(&number.to_be_bytes())
    }

    /// Appends blocks of the given sizes both to tiles in a memory engine and to the log's own
    /// memory store, and checks after each block that every node, proof and root agree.
    fn check_tiles_against_plain_nodes(block_sizes: &[u64]) {
        let backend = MemoryBackend::new();
        let mut plain = MemoryLogStore::new();
        let mut size = 0u64;
        for block_size in block_sizes {
            let leaves: Vec<Hash32> = (size..size + block_size).map(leaf).collect();
            let tiled =
                txlog::append(&Blake3Log, &LogNodes(&backend, SUITE), size, &leaves).unwrap();
            let reference = txlog::append(&Blake3Log, &plain, size, &leaves).unwrap();
            assert_eq!(tiled, reference);
            backend
                .write(
                    log_tile_writes(hutong_core::testkit::SUITE, &backend, &tiled.nodes).unwrap(),
                )
                .unwrap();
            plain.insert_nodes(reference.nodes);
            size = tiled.new_size;
            for level in 0..8u8 {
                for index in 0..(size >> level) + 2 {
                    let key = NodeKey { level, index };
                    assert_eq!(
                        LogNodes(&backend, SUITE).node(key).unwrap(),
                        plain.node(key).unwrap(),
                        "node {key} at size {size}"
                    );
                }
            }
            for index in [0, size / 2, size.saturating_sub(1)] {
                if index < size {
                    assert_eq!(
                        txlog::inclusion_proof(&Blake3Log, &LogNodes(&backend, SUITE), index, size)
                            .unwrap(),
                        txlog::inclusion_proof(&Blake3Log, &plain, index, size).unwrap()
                    );
                }
            }
            assert_eq!(
                txlog::root(&Blake3Log, &LogNodes(&backend, SUITE), size).unwrap(),
                txlog::root(&Blake3Log, &plain, size).unwrap()
            );
        }
    }

    #[test]
    fn log_tiles_hold_the_same_nodes_as_one_value_per_node() {
        check_tiles_against_plain_nodes(&[1, 1, 1, 13, 16, 17, 5, 100, 3, 255, 1]);
        check_tiles_against_plain_nodes(&[300]);
        check_tiles_against_plain_nodes(&[16, 16, 32, 64, 128]);
    }

    #[test]
    fn a_tile_of_the_wrong_length_is_reported() {
        let backend = MemoryBackend::new();
        backend
            .write(vec![(log_tile_key(0, 0), Some(vec![0u8; 33]))])
            .unwrap();
        assert!(matches!(
            LogNodes(&backend, SUITE).node(NodeKey { level: 0, index: 0 }),
            Err(LogError::StoreRead { .. })
        ));
    }

    #[test]
    fn block_bytes_are_the_canonical_encoding_of_the_block() {
        let mut fixture = Fixture::new();
        let store = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
        let transactions: Vec<Transaction> = (0..3)
            .map(|number| fixture.issue_business_licence("qd-approval", "370200", number))
            .collect();
        let execution = store
            .execute(
                GENESIS_TIME + 1_000,
                fixture.node_keys[0].public_key(),
                transactions,
                Mode::Verify,
            )
            .unwrap();
        let certificate = fixture.certify(&execution.header);
        let header_bytes = codec::to_canonical(&execution.header);
        let bytes = block_bytes(
            &header_bytes,
            &execution.transaction_bytes,
            &certificate,
            &[],
        );
        let block = Block {
            header: execution.header.clone(),
            transactions: execution.transactions.clone(),
            certificate,
            evidence: Vec::new(),
        };
        assert_eq!(bytes, codec::to_canonical(&block));
        let empty = Block {
            transactions: Vec::new(),
            ..block
        };
        assert_eq!(
            block_bytes(&header_bytes, &[], &empty.certificate, &[]),
            codec::to_canonical(&empty)
        );
    }

    #[test]
    fn admitted_signatures_are_not_checked_again_by_execution() {
        let mut fixture = Fixture::new();
        let store = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
        let transactions: Vec<Transaction> = (0..4)
            .map(|number| fixture.issue_business_licence("qd-approval", "370200", number))
            .collect();
        let admitted: Vec<&Transaction> = transactions.iter().take(3).collect();
        let results = store.check_transactions(&admitted, GENESIS_TIME + 1_000, 8);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let execution = store
            .execute(
                GENESIS_TIME + 1_000,
                fixture.node_keys[0].public_key(),
                transactions,
                Mode::Verify,
            )
            .unwrap();
        assert_eq!(
            execution.signature_counts(),
            SignatureCounts {
                already_verified: 3,
                checked: 1
            }
        );
        assert!(execution.store_writes() > 4 * 5);
    }

    #[test]
    fn a_remembered_signature_does_not_excuse_another_key() {
        let mut fixture = Fixture::new();
        let store = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
        let transaction = fixture.issue_business_licence("qd-approval", "370200", 1);
        // The cache holds the transaction under some other key: execution must still verify
        // the signature against the key the state names.
        let other = hutong_core::testkit::secret("someone-else").public_key();
        store
            .verified
            .write()
            .unwrap()
            .insert(&transaction.id(hutong_core::testkit::SUITE), &other);
        let mut forged = transaction.clone();
        if let Some(endorsement) = forged.signatures.first_mut() {
            endorsement.signature.0[0] ^= 1;
        }
        store
            .verified
            .write()
            .unwrap()
            .insert(&forged.id(hutong_core::testkit::SUITE), &other);
        let result = store.execute(
            GENESIS_TIME + 1_000,
            fixture.node_keys[0].public_key(),
            vec![forged],
            Mode::Verify,
        );
        assert!(matches!(
            result,
            Err(BlockError::InvalidTransaction {
                error: RuleError::BadSignature { .. },
                ..
            })
        ));
        assert_eq!(
            store.check_transactions(&[&transaction], GENESIS_TIME + 1_000, 0),
            vec![Ok(())]
        );
    }

    #[test]
    fn actions_are_indexed_once_per_block_and_page_in_order() {
        let mut fixture = Fixture::new();
        let store = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
        let mut expected = Vec::new();
        for block in 0..3u64 {
            let transactions: Vec<Transaction> = (0..4)
                .map(|number| {
                    fixture.issue_business_licence("qd-approval", "370200", block * 10 + number)
                })
                .collect();
            let execution = store
                .execute(
                    store.head().unwrap().header.time + 1_000,
                    fixture.node_keys[0].public_key(),
                    transactions,
                    Mode::Verify,
                )
                .unwrap();
            // Four locations, twelve query index entries, one action entry for the signer.
            let writes = execution.store_writes();
            let height = execution.header.height;
            for (index, id) in execution.ids().iter().enumerate() {
                expected.push((height, index as u32, *id));
            }
            let certificate = fixture.certify(&execution.header);
            store.commit(execution, certificate).unwrap();
            assert!(writes >= 4 + 12 + 1 + 3, "{writes}");
        }
        let authority = AuthorityId::from("qd-approval");
        assert_eq!(store.actions_of(&authority, None, 100).unwrap(), expected);
        for limit in [1, 3, 5] {
            let mut paged = Vec::new();
            let mut after = None;
            loop {
                let page = store.actions_of(&authority, after, limit).unwrap();
                assert!(page.len() <= limit);
                let Some(last) = page.last() else { break };
                after = Some((last.0, last.1));
                paged.extend(page);
            }
            assert_eq!(paged, expected, "pages of {limit}");
        }
        assert!(
            store
                .actions_of(&AuthorityId::from("nobody"), None, 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_verified_signature_cache_is_bounded() {
        let mut cache = VerifiedSignatureCache::default();
        let key = hutong_core::testkit::secret("k").public_key();
        for number in 0..(VERIFIED_SIGNATURES_MAX as u64 + 10) {
            cache.insert(
                &hutong_core::hash::tagged("id", &number.to_be_bytes()),
                &key,
            );
        }
        assert_eq!(cache.entries.len(), VERIFIED_SIGNATURES_MAX);
        use rules::VerifiedSignatures;
        assert!(!cache.contains(&hutong_core::hash::tagged("id", &0u64.to_be_bytes()), &key));
        assert!(cache.contains(
            &hutong_core::hash::tagged("id", &(VERIFIED_SIGNATURES_MAX as u64 + 9).to_be_bytes()),
            &key
        ));
    }
}
