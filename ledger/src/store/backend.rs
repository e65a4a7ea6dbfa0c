//! The narrow interface between the block store and the key-value engine under it, and its
//! implementations: redb (the default, docs/adr/0006-redb-default-engine.md), sled (the engine
//! of the design, still selectable), and an in-memory map for tests.
//!
//! The store asks four things of an engine: read a key, scan a key prefix in order, apply a
//! batch of writes atomically (a crash leaves all of the batch or none of it), and make that
//! batch durable before `write` returns.
//!
//! [`StoreError`], the store's error type, is defined here, at the bottom of the store: the
//! engines report their failures in it, and it names the [`Engine`] a directory holds.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use hutong_core::codec::CodecError;
use hutong_core::log::LogError;
use hutong_core::rules::StateError;
use redb::{ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::limits::REDB_CACHE_BYTES;

/// The store's own failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage engine: {0}")]
    Engine(String),
    #[error("a lock was poisoned by a panic in another thread")]
    Poisoned,
    #[error("the store is empty: initialise it from a genesis file first")]
    Uninitialised,
    #[error("the store already holds a chain")]
    AlreadyInitialised,
    #[error("the store is corrupt: {0}; restore it from a backup or resynchronise the node")]
    Corrupt(String),
    /// Another process has the engine's files open (redb's `DatabaseAlreadyOpen`, sled's
    /// lock): nothing was read or written.
    #[error("the store is in use by another process ({0})")]
    InUse(String),
    #[error(
        "the store's directory holds a {found} database, but the {configured} engine was asked for; \
         set the engine to {found}, or move the directory away to start a new store"
    )]
    WrongEngine { configured: Engine, found: Engine },
    #[error("the store holds chain {found:?}, not {expected:?}")]
    WrongChain { expected: String, found: String },
    #[error(
        "the store is in format version {found}, this build reads format version {expected}; \
         run a build of that format, or move the directory away and let the node catch up from \
         its peers (docs/operations.md, upgrades)"
    )]
    FormatVersion { expected: u32, found: u32 },
    #[error("decoding stored data: {0}")]
    Codec(#[from] CodecError),
    #[error("transaction log: {0}")]
    Log(#[from] LogError),
    #[error("state tree: {0}")]
    Tree(String),
    #[error("state: {0}")]
    State(#[from] StateError),
}

impl From<StoreError> for StateError {
    fn from(error: StoreError) -> Self {
        StateError(error.to_string())
    }
}

/// One write of a batch: a value to set, or `None` to delete the key.
pub type Write = (Vec<u8>, Option<Vec<u8>>);

/// One entry of a scan: a key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A key-value engine the store can run on.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The value under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Up to `limit` entries whose keys start with `prefix`, in key order, starting after
    /// `after` when given (for pagination).
    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError>;
    /// Applies every write atomically and durably: when it returns `Ok`, a crash of the
    /// process or of the machine keeps all of them; a crash before that keeps all or none.
    fn write(&self, batch: Vec<Write>) -> Result<(), StoreError>;
    /// [`Backend::write`] for writes the caller keeps: the same atomic, durable batch, read
    /// from borrowed keys and values. Engines that can take them without copying override it.
    fn write_borrowed(&self, batch: &[(&[u8], Option<&[u8]>)]) -> Result<(), StoreError> {
        self.write(
            batch
                .iter()
                .map(|(key, value)| (key.to_vec(), value.map(<[u8]>::to_vec)))
                .collect(),
        )
    }
    /// Bytes the engine uses on disk (0 in memory).
    fn disk_bytes(&self) -> Result<u64, StoreError>;
}

/// One engine shared by several owners (a test that reopens a store on the engine it damaged,
/// a journal opened again on the same engine).
impl<B: Backend + ?Sized> Backend for Arc<B> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get(key)
    }
    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        (**self).scan(prefix, after, limit)
    }
    fn write(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        (**self).write(batch)
    }
    fn write_borrowed(&self, batch: &[(&[u8], Option<&[u8]>)]) -> Result<(), StoreError> {
        (**self).write_borrowed(batch)
    }
    fn disk_bytes(&self) -> Result<u64, StoreError> {
        (**self).disk_bytes()
    }
}

/// The entries of a sorted map under `prefix`, in key order, after `after` when given: a
/// [`Backend::scan`] of a map held in memory.
pub(super) fn prefix_range<'m, V>(
    map: &'m BTreeMap<Vec<u8>, V>,
    prefix: &'m [u8],
    after: Option<&[u8]>,
) -> impl Iterator<Item = (&'m Vec<u8>, &'m V)> {
    let start = match after {
        Some(after) => std::ops::Bound::Excluded(after.to_vec()),
        None => std::ops::Bound::Included(prefix.to_vec()),
    };
    map.range((start, std::ops::Bound::Unbounded))
        .take_while(move |(key, _)| key.starts_with(prefix))
}

fn engine_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(error.to_string())
}

/// redb's failures to open a file, by what the operator must do about them: another process
/// holds it, or its content is damaged, or something else (permissions, disk).
fn redb_open_error(error: redb::DatabaseError) -> StoreError {
    match error {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            StoreError::InUse("redb: the database file is already open".into())
        }
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(problem)) => {
            StoreError::Corrupt(format!("redb: {problem}"))
        }
        other => engine_error(other),
    }
}

/// Whether a backend makes each batch durable before `write` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every batch reaches the disk (data, metadata and the device's cache) before `write`
    /// returns. What a node runs.
    #[default]
    Synced,
    /// Batches stay atomic but may sit in the operating system's cache when `write`
    /// returns, so a crash of the machine (not of the process) can lose the latest ones.
    /// Only for measuring what the sync costs, and for tests that do not crash machines.
    Unsynced,
}

/// What the engine checks of its files when it opens them, beyond what every open checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PageCheck {
    /// Nothing more: the engine trusts the file it last wrote.
    #[default]
    None,
    /// redb reads every page of the committed trees and verifies its checksum, so that a file
    /// damaged outside redb is refused as [`StoreError::Corrupt`] instead of being read (where
    /// a damaged page may panic deep in a B-tree cursor). It costs a read of the whole file.
    /// sled keeps no page checksums and has nothing equivalent: for it this is [`None`].
    ///
    /// [`None`]: PageCheck::None
    Full,
}

/// The engines a store on disk can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// redb: one file, copy-on-write B-trees, a checksummed commit synced once per batch.
    #[default]
    Redb,
    /// sled 0.34, with the store's own sync round after each batch.
    Sled,
}

/// The file a redb store keeps everything in, inside the store's directory.
pub const REDB_FILE: &str = "hutong.redb";
/// The file sled writes its configuration to, inside the store's directory.
const SLED_MARKER: &str = "conf";

impl Engine {
    /// Both engines, the default first.
    pub const ALL: [Engine; 2] = [Engine::Redb, Engine::Sled];

    /// The engine's name as a configuration file spells it.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Redb => "redb",
            Engine::Sled => "sled",
        }
    }

    /// The engine whose files are in `directory`, if any (redb's file first).
    pub fn found_in(directory: &Path) -> Option<Engine> {
        if directory.join(REDB_FILE).is_file() {
            Some(Engine::Redb)
        } else if directory.join(SLED_MARKER).is_file() {
            Some(Engine::Sled)
        } else {
            None
        }
    }

    /// Opens (or creates) this engine's database in `directory` without the journal: for
    /// measuring the engine alone, and for putting a journal with other limits in front.
    pub fn open_direct(
        self,
        directory: &Path,
        durability: Durability,
    ) -> Result<Box<dyn Backend>, StoreError> {
        self.open_direct_checked(directory, durability, PageCheck::None)
    }

    /// [`Engine::open_direct`] with the engine's own check of its files first.
    pub fn open_direct_checked(
        self,
        directory: &Path,
        durability: Durability,
        check: PageCheck,
    ) -> Result<Box<dyn Backend>, StoreError> {
        Ok(match self {
            Engine::Redb => Box::new(RedbBackend::open_checked(directory, durability, check)?),
            Engine::Sled => Box::new(SledBackend::open_with(directory, durability)?),
        })
    }

    /// The file whose size is the engine's database size on disk, when the engine keeps one
    /// (redb's `hutong.redb`; sled spreads its data over several files).
    pub fn data_file(self, directory: &Path) -> Option<PathBuf> {
        match self {
            Engine::Redb => Some(directory.join(REDB_FILE)),
            Engine::Sled => None,
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Engine {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Engine::ALL
            .into_iter()
            .find(|engine| engine.name() == text)
            .ok_or_else(|| {
                StoreError::Engine(format!(
                    "unknown storage engine {text:?}: use \"redb\" or \"sled\""
                ))
            })
    }
}

const REDB_TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("hutong");

/// redb 4 behind the [`Backend`] interface: one file, `hutong.redb`, in the store's directory.
///
/// Each batch is one write transaction committed with `Durability::Immediate`: redb writes the
/// changed pages and then the header slot that makes them current, with checksums, and syncs
/// the file with one `fdatasync` before `commit` returns (a torn commit fails its checksum on
/// the next open and the previous commit stays current). Keys are inserted in key order, which
/// keeps the pages a block touches together.
pub struct RedbBackend {
    database: redb::Database,
    file: PathBuf,
    durability: Durability,
    /// The table as of the latest commit, shared by reads until the next commit replaces it:
    /// beginning a read transaction and opening the table for every read cost more than many
    /// reads themselves.
    reader: RwLock<Option<Arc<ReadOnlyTable>>>,
}

type ReadOnlyTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

impl std::fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbBackend")
            .field("file", &self.file)
            .field("durability", &self.durability)
            .finish()
    }
}

impl RedbBackend {
    /// Opens (or creates) the database in `directory`, syncing every batch.
    pub fn open(directory: &Path) -> Result<Self, StoreError> {
        Self::open_with(directory, Durability::Synced)
    }

    /// Opens (or creates) the database in `directory` with the given durability.
    pub fn open_with(directory: &Path, durability: Durability) -> Result<Self, StoreError> {
        Self::open_checked(directory, durability, PageCheck::None)
    }

    /// Opens (or creates) the database in `directory` with the given durability, verifying
    /// every page's checksum first when `check` asks for it.
    pub fn open_checked(
        directory: &Path,
        durability: Durability,
        check: PageCheck,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(directory).map_err(engine_error)?;
        let file = directory.join(REDB_FILE);
        let created = !file.exists();
        let database = redb::Database::builder()
            .set_cache_size(REDB_CACHE_BYTES)
            .set_check_integrity_on_open(check == PageCheck::Full)
            .create(&file)
            .map_err(redb_open_error)?;
        let transaction = database.begin_write().map_err(engine_error)?;
        transaction.open_table(REDB_TABLE).map_err(engine_error)?;
        transaction.commit().map_err(engine_error)?;
        if created {
            // The new file's directory entry must reach the disk too.
            File::open(directory)
                .and_then(|dir| dir.sync_all())
                .map_err(engine_error)?;
        }
        Ok(RedbBackend {
            database,
            file,
            durability,
            reader: RwLock::new(None),
        })
    }

    /// The table as of the latest commit (see `reader`).
    fn table(&self) -> Result<Arc<ReadOnlyTable>, StoreError> {
        if let Some(table) = self
            .reader
            .read()
            .map_err(|_| StoreError::Poisoned)?
            .as_ref()
        {
            return Ok(Arc::clone(table));
        }
        let mut reader = self.reader.write().map_err(|_| StoreError::Poisoned)?;
        if let Some(table) = reader.as_ref() {
            return Ok(Arc::clone(table));
        }
        let transaction = self.database.begin_read().map_err(engine_error)?;
        let table = Arc::new(transaction.open_table(REDB_TABLE).map_err(engine_error)?);
        *reader = Some(Arc::clone(&table));
        Ok(table)
    }
}

impl Backend for RedbBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let table = self.table()?;
        Ok(table
            .get(key)
            .map_err(engine_error)?
            .map(|value| value.value().to_vec()))
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let table = self.table()?;
        let start: Vec<u8> = match after {
            Some(after) => {
                let mut start = after.to_vec();
                start.push(0);
                start
            }
            None => prefix.to_vec(),
        };
        let mut out = Vec::new();
        for entry in table
            .range::<&[u8]>(start.as_slice()..)
            .map_err(engine_error)?
        {
            let (key, value) = entry.map_err(engine_error)?;
            if !key.value().starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((key.value().to_vec(), value.value().to_vec()));
        }
        Ok(out)
    }

    fn write(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        let borrowed: Vec<(&[u8], Option<&[u8]>)> = batch
            .iter()
            .map(|(key, value)| (key.as_slice(), value.as_deref()))
            .collect();
        self.write_borrowed(&borrowed)
    }

    fn write_borrowed(&self, batch: &[(&[u8], Option<&[u8]>)]) -> Result<(), StoreError> {
        // A stable sort: a key written twice keeps its last value.
        let mut batch = batch.to_vec();
        batch.sort_by(|left, right| left.0.cmp(right.0));
        let mut transaction = self.database.begin_write().map_err(engine_error)?;
        if self.durability == Durability::Unsynced {
            transaction
                .set_durability(redb::Durability::None)
                .map_err(engine_error)?;
        }
        {
            let mut table = transaction.open_table(REDB_TABLE).map_err(engine_error)?;
            for (key, value) in batch {
                match value {
                    Some(value) => {
                        table.insert(key, value).map_err(engine_error)?;
                    }
                    None => {
                        table.remove(key).map_err(engine_error)?;
                    }
                }
            }
        }
        transaction.commit().map_err(engine_error)?;
        // Reads begun from now on see this commit; those under way keep their snapshot.
        *self.reader.write().map_err(|_| StoreError::Poisoned)? = None;
        Ok(())
    }

    fn disk_bytes(&self) -> Result<u64, StoreError> {
        std::fs::metadata(&self.file)
            .map(|metadata| metadata.len())
            .map_err(engine_error)
    }
}

/// sled 0.34 behind the [`Backend`] interface.
///
/// sled's `flush` writes its log with `sync_file_range`, which neither writes the file's
/// metadata nor flushes the device's cache, and it writes large values to separate blob files
/// without syncing them (see docs/adr/0001-storage-engine.md). After each batch this backend
/// therefore calls `fsync` itself on the data file, on every blob file written since the last
/// sync, and on the blob directory: one round of syncs per block, not per transaction.
#[derive(Debug)]
pub struct SledBackend {
    db: sled::Db,
    tree: sled::Tree,
    path: PathBuf,
    /// The highest blob file name already synced.
    synced_blob: Mutex<u64>,
    durability: Durability,
}

impl SledBackend {
    /// Opens (or creates) the sled database in `path`, syncing every batch.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Synced)
    }

    /// Opens (or creates) the sled database in `path` with the given durability.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        // A database this process just dropped stays locked until sled's background flusher
        // lets go of it, a moment later: wait for that, boundedly. A lock another process
        // holds is still an error, after the wait.
        const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(256 * 1024 * 1024);
        let started = std::time::Instant::now();
        let db = loop {
            match config.open() {
                // sled reports a held lock as an `Other` I/O error with this message.
                Err(sled::Error::Io(error))
                    if error.to_string().starts_with("could not acquire lock")
                        && started.elapsed() < LOCK_WAIT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(sled::Error::Io(error))
                    if error.to_string().starts_with("could not acquire lock") =>
                {
                    return Err(StoreError::InUse(format!("sled: {error}")));
                }
                Err(error @ sled::Error::Corruption { .. }) => {
                    return Err(StoreError::Corrupt(format!("sled: {error}")));
                }
                result => break result.map_err(engine_error)?,
            }
        };
        let tree = db.open_tree("hutong").map_err(engine_error)?;
        Ok(SledBackend {
            db,
            tree,
            path: path.to_path_buf(),
            synced_blob: Mutex::new(0),
            durability,
        })
    }

    fn sync_files(&self) -> Result<(), StoreError> {
        File::open(self.path.join("db"))
            .and_then(|file| file.sync_all())
            .map_err(engine_error)?;
        let blobs = self.path.join("blobs");
        if blobs.is_dir() {
            let mut synced = self.synced_blob.lock().map_err(|_| StoreError::Poisoned)?;
            let mut highest = *synced;
            for entry in std::fs::read_dir(&blobs).map_err(engine_error)? {
                let entry = entry.map_err(engine_error)?;
                let id: u64 = entry.file_name().to_string_lossy().parse().unwrap_or(0);
                if id > *synced {
                    File::open(entry.path())
                        .and_then(|file| file.sync_all())
                        .map_err(engine_error)?;
                    highest = highest.max(id);
                }
            }
            File::open(&blobs)
                .and_then(|dir| dir.sync_all())
                .map_err(engine_error)?;
            *synced = highest;
        }
        File::open(&self.path)
            .and_then(|dir| dir.sync_all())
            .map_err(engine_error)
    }
}

impl Backend for SledBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree
            .get(key)
            .map_err(engine_error)?
            .map(|value| value.to_vec()))
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        let iter = match after {
            Some(after) => {
                let mut start = after.to_vec();
                start.push(0);
                self.tree.range(start..)
            }
            None => self.tree.range(prefix.to_vec()..),
        };
        for entry in iter {
            let (key, value) = entry.map_err(engine_error)?;
            if !key.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((key.to_vec(), value.to_vec()));
        }
        Ok(out)
    }

    fn write(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        let mut sled_batch = sled::Batch::default();
        for (key, value) in batch {
            match value {
                Some(value) => sled_batch.insert(key, value),
                None => sled_batch.remove(key),
            }
        }
        self.tree.apply_batch(sled_batch).map_err(engine_error)?;
        if self.durability == Durability::Unsynced {
            return Ok(());
        }
        self.db.flush().map_err(engine_error)?;
        self.sync_files()
    }

    fn disk_bytes(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(engine_error)
    }
}

/// An in-memory engine for tests. Its `fail_next_write` switch makes the next batch fail
/// before anything is applied, as a crash between preparing and applying would.
#[derive(Default)]
pub struct MemoryBackend {
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
    fail_next_write: Mutex<bool>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `write` fail without applying anything.
    pub fn fail_next_write(&self) {
        if let Ok(mut fail) = self.fail_next_write.lock() {
            *fail = true;
        }
    }
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.map.read().map(|map| map.len()).unwrap_or(0);
        f.debug_struct("MemoryBackend")
            .field("entries", &entries)
            .finish()
    }
}

impl Backend for MemoryBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let map = self.map.read().map_err(|_| StoreError::Poisoned)?;
        Ok(map.get(key).cloned())
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let map = self.map.read().map_err(|_| StoreError::Poisoned)?;
        Ok(prefix_range(&map, prefix, after)
            .take(limit)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect())
    }

    fn write(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        {
            let mut fail = self
                .fail_next_write
                .lock()
                .map_err(|_| StoreError::Poisoned)?;
            if *fail {
                *fail = false;
                return Err(StoreError::Engine("injected write failure".into()));
            }
        }
        let mut map = self.map.write().map_err(|_| StoreError::Poisoned)?;
        for (key, value) in batch {
            match value {
                Some(value) => map.insert(key, value),
                None => map.remove(&key),
            };
        }
        Ok(())
    }

    fn disk_bytes(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sled_waits_for_a_lock_released_a_moment_later_but_not_forever() {
        let dir = tempfile::tempdir().unwrap();
        let first = SledBackend::open(dir.path()).unwrap();
        let holder = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(first);
        });
        // Opened once the holder lets go, within the wait.
        let second = SledBackend::open(dir.path()).unwrap();
        holder.join().unwrap();
        // A lock that is kept is still an error after the wait.
        let started = std::time::Instant::now();
        let error = SledBackend::open(dir.path()).unwrap_err();
        assert!(
            matches!(&error, StoreError::InUse(detail) if detail.contains("could not acquire lock")),
            "{error}"
        );
        assert!(started.elapsed() >= std::time::Duration::from_secs(2));
        drop(second);
    }
}
