//! Damaged stores are refused at opening with a typed error, never served and never a panic:
//! pages overwritten inside redb's file (caught by the page check), headers altered below the
//! head (caught by the chain check, the only check an engine without page checksums gets), a
//! head block that does not carry its header.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use hutong_core::block::BlockHeader;
use hutong_core::codec;
use hutong_core::testkit::{Fixture, GENESIS_TIME};
use hutong_ledger::store::{
    Backend, Engine, MemoryBackend, Mode, PageCheck, REDB_FILE, Store, StoreError,
};

fn commit_blocks(store: &Store, fixture: &mut Fixture, blocks: u64, per_block: u64) {
    for _ in 0..blocks {
        let height = store.height().unwrap() + 1;
        let transactions = (0..per_block)
            .map(|index| {
                fixture.issue_business_licence("qd-approval", "370200", height * 1000 + index)
            })
            .collect();
        let execution = store
            .execute(
                GENESIS_TIME + height * 1000,
                fixture.node_keys[0].public_key(),
                transactions,
                Mode::Verify,
            )
            .unwrap();
        let header = execution.header.clone();
        store.commit(execution, fixture.certify(&header)).unwrap();
    }
}

/// The store key of the header at `height` (the store's `H` prefix and the height, big-endian).
fn header_key(height: u64) -> Vec<u8> {
    let mut key = vec![b'H'];
    key.extend_from_slice(&height.to_be_bytes());
    key
}

/// Overwrites 64 bytes in every 4 KiB page of the middle half of `file`.
fn damage_middle(file: &Path) {
    let length = std::fs::metadata(file).unwrap().len();
    let mut handle = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    let mut offset = length / 4;
    while offset + 4096 < length * 3 / 4 {
        handle.seek(SeekFrom::Start(offset + 1024)).unwrap();
        handle.write_all(&[0xA5; 64]).unwrap();
        offset += 4096;
    }
    handle.sync_all().unwrap();
}

#[test]
fn a_header_altered_below_the_head_is_refused_at_opening() {
    let mut fixture = Fixture::new();
    let backend = Arc::new(MemoryBackend::new());
    let store = Store::create_with(Box::new(Arc::clone(&backend)), &fixture.genesis).unwrap();
    commit_blocks(&store, &mut fixture, 6, 3);
    drop(store);
    // Header 3 with another time: still a well-formed header, no longer the one header 4
    // names.
    let bytes = backend.get(&header_key(3)).unwrap().unwrap();
    let mut header: BlockHeader = codec::from_stored(&bytes).unwrap();
    header.time += 1;
    backend
        .write(vec![(header_key(3), Some(codec::to_canonical(&header)))])
        .unwrap();
    match Store::open_with(Box::new(Arc::clone(&backend))) {
        Err(StoreError::Corrupt(problem)) => {
            assert!(problem.contains("header 4"), "{problem}")
        }
        other => panic!("expected the altered header to be refused, got {other:?}"),
    }
    // A header missing below the head is refused too.
    backend.write(vec![(header_key(2), None)]).unwrap();
    match Store::open_with(Box::new(Arc::clone(&backend))) {
        Err(StoreError::Corrupt(problem)) => assert!(
            problem.contains("header 2 is missing") || problem.contains("header 4"),
            "{problem}"
        ),
        other => panic!("expected the missing header to be refused, got {other:?}"),
    }
}

#[test]
fn a_head_block_that_does_not_carry_its_header_is_refused() {
    let mut fixture = Fixture::new();
    let backend = Arc::new(MemoryBackend::new());
    let store = Store::create_with(Box::new(Arc::clone(&backend)), &fixture.genesis).unwrap();
    commit_blocks(&store, &mut fixture, 3, 2);
    let mut block = store.block(3).unwrap().unwrap();
    drop(store);
    block.header.time += 1;
    let mut key = vec![b'B'];
    key.extend_from_slice(&3u64.to_be_bytes());
    backend
        .write(vec![(key, Some(codec::to_canonical(&block)))])
        .unwrap();
    match Store::open_with(Box::new(Arc::clone(&backend))) {
        Err(StoreError::Corrupt(problem)) => assert!(problem.contains("block 3"), "{problem}"),
        other => panic!("expected the head block to be refused, got {other:?}"),
    }
}

#[test]
fn damaged_redb_pages_are_refused_by_the_page_check_and_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut fixture = Fixture::new();
    {
        let store = Store::create_engine(dir.path(), Engine::Redb, &fixture.genesis).unwrap();
        commit_blocks(&store, &mut fixture, 20, 100);
    }
    // Intact, the store passes the page check.
    drop(Store::open_engine_checked(dir.path(), Engine::Redb, PageCheck::Full).unwrap());

    damage_middle(&dir.path().join(REDB_FILE));
    // Without the page check the engine may read a damaged page and panic: the store turns
    // that into an error (or, had the damage missed every page it reads, opens); it never
    // unwinds into the caller.
    let unchecked = std::panic::catch_unwind(|| {
        Store::open_engine_checked(dir.path(), Engine::Redb, PageCheck::None).map(drop)
    });
    assert!(unchecked.is_ok(), "the open panicked");
    match Store::open_engine_checked(dir.path(), Engine::Redb, PageCheck::Full) {
        Err(StoreError::Corrupt(problem)) => {
            assert!(
                problem.contains("redb") || problem.contains("panicked"),
                "{problem}"
            )
        }
        other => panic!("expected the damaged file to be refused, got {other:?}"),
    }
}
