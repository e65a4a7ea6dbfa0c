//! How `hutong run` gets its store: the data directory's lock first, then the store opened
//! and checked, or created from genesis when there is none, and every way that can fail
//! turned into the operator's message and exit code (docs/operations.md, "Damaged stores";
//! docs/adr/0019-store-damage-and-resynchronisation.md).
//!
//! - Another process on the same home: exit 1, naming it.
//! - A store that cannot be opened or fails its checks (a damaged file, a truncated one, an
//!   engine that panics on what it reads): exit 4, with what to do.
//! - No store, or an empty one, beside a signing state of a later height: the store lost
//!   blocks this node had committed and signed for; exit 4 unless the operator asked for a
//!   resynchronisation from genesis (`--resync`).

use std::path::Path;
use std::time::Instant;

use anyhow::anyhow;

use hutong_core::genesis::Genesis;
use hutong_ledger::store::{Engine, PageCheck, REDB_FILE, Store, StoreError};

use crate::config::StorageConfig;
use crate::engine::read_signing_state;
use crate::home_lock::{HomeLock, LockError};
use crate::{Failure, WithCode, exit};

/// What the operator asked of the opening.
#[derive(Debug)]
pub struct Opening<'a> {
    pub home: &'a Path,
    pub data_dir: &'a Path,
    pub storage: &'a StorageConfig,
    pub genesis: &'a Genesis,
    /// Start from genesis even though the signing state is ahead of an empty store.
    pub resync: bool,
}

/// The store, checked, and the lock that keeps other processes off the data directory for as
/// long as it is held.
#[derive(Debug)]
pub struct Opened {
    pub store: Store,
    pub lock: HomeLock,
}

/// Why a store counts as empty.
#[derive(Clone, Copy, Debug)]
enum Empty {
    /// The store's directory holds no engine's files.
    Missing,
    /// redb's file is there but zero bytes long (redb would take it for a new file).
    ZeroLengthFile,
    /// The engine's files are there but hold no chain.
    NoChain,
}

impl Empty {
    fn describe(self) -> &'static str {
        match self {
            Empty::Missing => "is missing",
            Empty::ZeroLengthFile => "is a zero-length file",
            Empty::NoChain => "holds no chain",
        }
    }
}

/// Takes the data directory's lock, then opens the store (see the module's comment).
pub fn open(opening: &Opening<'_>) -> Result<Opened, Failure> {
    std::fs::create_dir_all(opening.data_dir)
        .map_err(|error| anyhow!("creating {}: {error}", opening.data_dir.display()))
        .code(exit::RUNTIME)?;
    let lock = HomeLock::take(opening.data_dir).map_err(|error| match error {
        LockError::Held { path, pid } => in_use(opening.home, &path, pid, None),
        error @ LockError::Io { .. } => Failure::new(exit::RUNTIME, error),
    })?;
    let store_dir = opening.data_dir.join("store");
    let engine = opening.storage.engine;
    let store = match empty_before_opening(&store_dir, engine) {
        Some(empty) => create(opening, &store_dir, empty)?,
        None => match open_checked(opening, &store_dir) {
            Ok(store) => store,
            Err(StoreError::Uninitialised) => create(opening, &store_dir, Empty::NoChain)?,
            Err(StoreError::InUse(detail)) => {
                return Err(in_use(opening.home, &store_dir, None, Some(&detail)));
            }
            Err(error) => return Err(unusable(&store_dir, &error)),
        },
    };
    let stored_genesis = store.head().code(exit::STORE)?.genesis_hash;
    if stored_genesis != opening.genesis.hash() {
        return Err(Failure::new(
            exit::STORE,
            anyhow!(
                "the store in {} belongs to another chain (genesis {stored_genesis}, this genesis file is {}); \
                 point data_dir elsewhere or use the right genesis file",
                store_dir.display(),
                opening.genesis.hash()
            ),
        ));
    }
    Ok(Opened { store, lock })
}

/// An empty store found without opening it: an engine would take these for new files.
fn empty_before_opening(store_dir: &Path, engine: Engine) -> Option<Empty> {
    match Engine::found_in(store_dir) {
        None => Some(Empty::Missing),
        Some(Engine::Redb)
            if engine == Engine::Redb
                && std::fs::metadata(store_dir.join(REDB_FILE))
                    .is_ok_and(|metadata| metadata.len() == 0) =>
        {
            Some(Empty::ZeroLengthFile)
        }
        Some(_) => None,
    }
}

/// Opens the store, with redb's check of every page when the file is within
/// `storage.page_check_bytes_max`.
fn open_checked(opening: &Opening<'_>, store_dir: &Path) -> Result<Store, StoreError> {
    let engine = opening.storage.engine;
    let size_bytes = engine
        .data_file(store_dir)
        .and_then(|file| std::fs::metadata(file).ok())
        .map(|metadata| metadata.len());
    let check = match size_bytes {
        Some(size_bytes) if size_bytes <= opening.storage.page_check_bytes_max => PageCheck::Full,
        Some(size_bytes) => {
            tracing::warn!(
                size_bytes,
                limit_bytes = opening.storage.page_check_bytes_max,
                "the store's file is larger than storage.page_check_bytes_max: its pages are not \
                 checked at this start, only its head"
            );
            PageCheck::None
        }
        // sled keeps no page checksums: the store's own checks of its head are all there is.
        None => PageCheck::None,
    };
    let started = Instant::now();
    let store = Store::open_engine_checked(store_dir, engine, check)?;
    tracing::info!(
        %engine,
        pages_checked = check == PageCheck::Full,
        size_bytes = size_bytes.unwrap_or(0),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "store checked"
    );
    Ok(store)
}

/// Creates the store from genesis in place of an empty one, unless the signing state says
/// that this node signed at a later height than an empty store holds and no resynchronisation
/// was asked for.
fn create(opening: &Opening<'_>, store_dir: &Path, empty: Empty) -> Result<Store, Failure> {
    let signing_state_path = opening.data_dir.join("signing_state.json");
    let signed_height = read_signing_state(&signing_state_path)
        .code(exit::STORE)?
        .map(|state| state.height());
    match signed_height {
        Some(signed_height) if signed_height > 0 && !opening.resync => {
            return Err(Failure::new(
                exit::STORE,
                anyhow!(
                    "the store in {} {} (height 0), but the signing state {} is at height {signed_height}: \
                     the store has lost blocks this node committed. Restore the store from a backup, \
                     or start the node with `hutong run --resync` to rebuild it from genesis and catch up \
                     from its peers (the signing state keeps it from signing anything that conflicts with \
                     what it signed up to height {signed_height})",
                    store_dir.display(),
                    empty.describe(),
                    signing_state_path.display(),
                ),
            ));
        }
        Some(signed_height) if signed_height > 0 => tracing::warn!(
            store = %store_dir.display(),
            signed_height,
            "resynchronising: the store {} and is rebuilt from genesis; the signing state is at \
             height {signed_height}, and nothing that conflicts with it is signed",
            empty.describe()
        ),
        _ => {}
    }
    if let Empty::ZeroLengthFile = empty {
        tracing::warn!(
            store = %store_dir.display(),
            "the store's file is zero bytes long; creating the store from genesis in its place"
        );
    }
    tracing::info!(
        chain = %opening.genesis.chain_id,
        engine = %opening.storage.engine,
        "creating the store from genesis"
    );
    Store::create_engine(store_dir, opening.storage.engine, opening.genesis)
        .map_err(|error| unusable(store_dir, &error))
}

/// Exit 1: the home is another process's.
fn in_use(home: &Path, held: &Path, pid: Option<u32>, detail: Option<&str>) -> Failure {
    let holder = match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_owned(),
    };
    let detail = detail
        .map(|detail| format!(" ({detail})"))
        .unwrap_or_default();
    Failure::new(
        exit::RUNTIME,
        anyhow!(
            "the node's home {} is in use by another process ({holder}): it holds {}{detail}; \
             stop that process first, or give this one a home of its own",
            home.display(),
            held.display()
        ),
    )
}

/// Exit 4: the store cannot be used, with what to do about it.
fn unusable(store_dir: &Path, error: &StoreError) -> Failure {
    // These carry their own advice (another engine, format or chain); every other failure
    // means the store's content is damaged or unreadable.
    let own_advice = matches!(
        error,
        StoreError::Corrupt(_)
            | StoreError::WrongEngine { .. }
            | StoreError::FormatVersion { .. }
            | StoreError::WrongChain { .. }
    );
    let hint = if own_advice {
        ""
    } else {
        "; restore it from a backup or resynchronise the node"
    };
    Failure::new(
        exit::STORE,
        anyhow!(
            "the store in {} cannot be used: {error}{hint} (docs/operations.md, \"Damaged stores\")",
            store_dir.display()
        ),
    )
}
