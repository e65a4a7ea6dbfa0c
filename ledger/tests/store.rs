//! The block store: reopening, failed writes, corruption detection, proofs, replay of blocks
//! on another store.

use hutong_core::log::{Blake3Log, LogHasher};
use hutong_core::records::{LicenceNumber, RecordKey};
use hutong_core::smt;
use hutong_core::testkit::{Fixture, GENESIS_TIME};
use hutong_ledger::store::{
    Backend, BlockError, Engine, MemoryBackend, Mode, STORE_FORMAT_VERSION, SledBackend, Store,
    StoreError,
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

#[test]
fn reopen_gives_the_same_head_and_roots() {
    let dir = tempfile::tempdir().unwrap();
    let mut fixture = Fixture::new();
    let head = {
        let store = Store::create(dir.path(), &fixture.genesis).unwrap();
        commit_blocks(&store, &mut fixture, 5, 20);
        store.head().unwrap()
    };
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.head().unwrap(), head);
    assert_eq!(store.height().unwrap(), 5);
    assert_eq!(
        store.log_root(head.header.log_size).unwrap(),
        head.header.log_root
    );
    // And it keeps going from there.
    commit_blocks(&store, &mut fixture, 1, 5);
    assert_eq!(store.height().unwrap(), 6);
}

#[test]
fn each_engine_reopens_its_own_store_and_refuses_the_other() {
    for engine in Engine::ALL {
        let dir = tempfile::tempdir().unwrap();
        let mut fixture = Fixture::new();
        let head = {
            let store = Store::create_engine(dir.path(), engine, &fixture.genesis).unwrap();
            commit_blocks(&store, &mut fixture, 3, 10);
            store.head().unwrap()
        };
        assert_eq!(Engine::found_in(dir.path()), Some(engine));
        let other = Engine::ALL
            .into_iter()
            .find(|candidate| *candidate != engine)
            .unwrap();
        match Store::open_engine(dir.path(), other) {
            Err(StoreError::WrongEngine { configured, found }) => {
                assert_eq!((configured, found), (other, engine))
            }
            result => panic!("{other} opened a {engine} store: {:?}", result.map(|_| ())),
        }
        assert!(matches!(
            Store::create_engine(dir.path(), other, &fixture.genesis),
            Err(StoreError::WrongEngine { .. })
        ));
        // Nothing of the other engine was left behind by the refusals.
        assert_eq!(Engine::found_in(dir.path()), Some(engine));
        assert_eq!(
            Store::open_engine(dir.path(), engine)
                .unwrap()
                .head()
                .unwrap(),
            head
        );
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.head().unwrap(), head);
        commit_blocks(&store, &mut fixture, 1, 5);
        assert_eq!(store.height().unwrap(), 4);
    }
    assert_eq!("sled".parse::<Engine>().unwrap(), Engine::Sled);
    assert_eq!("redb".parse::<Engine>().unwrap(), Engine::default());
    assert!("rocksdb".parse::<Engine>().is_err());
}

#[test]
fn opening_an_empty_directory_asks_for_genesis() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::Uninitialised)
    ));
    let fixture = Fixture::new();
    Store::create(dir.path(), &fixture.genesis).unwrap();
    assert!(matches!(
        Store::create(dir.path(), &fixture.genesis),
        Err(StoreError::AlreadyInitialised)
    ));
}

/// A backend shared between two `Store`s, so a test can damage what the first wrote.
type Shared = std::sync::Arc<MemoryBackend>;

#[test]
fn failed_write_changes_nothing() {
    let mut fixture = Fixture::new();
    let backend = Shared::new(MemoryBackend::new());
    let store = Store::create_with(Box::new(backend.clone()), &fixture.genesis).unwrap();
    commit_blocks(&store, &mut fixture, 2, 3);
    let head = store.head().unwrap();
    let transaction = fixture.issue_business_licence("qd-approval", "370200", 99);
    let execution = store
        .execute(
            GENESIS_TIME + 10_000,
            fixture.node_keys[0].public_key(),
            vec![transaction.clone()],
            Mode::Verify,
        )
        .unwrap();
    backend.fail_next_write();
    let header = execution.header.clone();
    assert!(store.commit(execution, fixture.certify(&header)).is_err());
    assert_eq!(store.head().unwrap(), head);
    assert!(
        store
            .transaction_location(&transaction.id(hutong_core::testkit::SUITE))
            .unwrap()
            .is_none()
    );
    // The same block commits on the next try, and a reopened store agrees.
    let execution = store
        .execute(
            GENESIS_TIME + 10_000,
            fixture.node_keys[0].public_key(),
            vec![transaction.clone()],
            Mode::Verify,
        )
        .unwrap();
    let header = execution.header.clone();
    store.commit(execution, fixture.certify(&header)).unwrap();
    let reopened = Store::open_with(Box::new(backend)).unwrap();
    assert_eq!(reopened.head().unwrap(), store.head().unwrap());
    assert!(
        reopened
            .transaction_location(&transaction.id(hutong_core::testkit::SUITE))
            .unwrap()
            .is_some()
    );
}

#[test]
fn stale_execution_is_refused() {
    let mut fixture = Fixture::new();
    let store = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
    let proposer = fixture.node_keys[0].public_key();
    let first = store
        .execute(GENESIS_TIME + 1000, proposer, vec![], Mode::Build)
        .unwrap();
    let second = store
        .execute(
            GENESIS_TIME + 1000,
            proposer,
            vec![fixture.issue_business_licence("qd-approval", "370200", 1)],
            Mode::Build,
        )
        .unwrap();
    {
        let certificate = fixture.certify(&first.header);
        store.commit(first, certificate)
    }
    .unwrap();
    assert!(matches!(
        {
            let certificate = fixture.certify(&second.header);
            store.commit(second, certificate)
        },
        Err(BlockError::Stale)
    ));
}

#[test]
fn block_time_must_increase() {
    let fixture = Fixture::new();
    let store = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
    let proposer = fixture.node_keys[0].public_key();
    assert!(matches!(
        store.execute(GENESIS_TIME, proposer, vec![], Mode::Build),
        Err(BlockError::TimeNotIncreasing { .. })
    ));
}

#[test]
fn corruption_is_reported_on_open() {
    let mut fixture = Fixture::new();
    let backend = Shared::new(MemoryBackend::new());
    let store = Store::create_with(Box::new(backend.clone()), &fixture.genesis).unwrap();
    commit_blocks(&store, &mut fixture, 3, 4);
    drop(store);

    // A damaged log node: the tile of level 0 that holds the hashes of leaves 0..12, from
    // which the root at size 12 is built (key: `L`, the level, the tile index).
    let key = [b"L".as_slice(), &[0u8], &0u64.to_be_bytes()].concat();
    let value = backend.get(&key).unwrap().unwrap();
    let mut damaged = value.clone();
    damaged[0] ^= 1;
    backend.write(vec![(key.clone(), Some(damaged))]).unwrap();
    let error = Store::open_with(Box::new(backend.clone())).unwrap_err();
    assert!(
        matches!(error, StoreError::Corrupt(ref text) if text.contains("log")),
        "{error}"
    );
    backend.write(vec![(key, Some(value))]).unwrap();
    Store::open_with(Box::new(backend.clone())).unwrap();

    // A missing block.
    let head_height = 3u64;
    let mut block_key = vec![b'B'];
    block_key.extend_from_slice(&head_height.to_be_bytes());
    let block = backend.get(&block_key).unwrap();
    backend.write(vec![(block_key.clone(), None)]).unwrap();
    let error = Store::open_with(Box::new(backend.clone())).unwrap_err();
    assert!(
        matches!(error, StoreError::Corrupt(ref text) if text.contains("block 3")),
        "{error}"
    );
    backend.write(vec![(block_key, block)]).unwrap();

    // A garbled head record.
    backend
        .write(vec![(b"Mhead".to_vec(), Some(vec![1, 2, 3]))])
        .unwrap();
    assert!(matches!(
        Store::open_with(Box::new(backend.clone())),
        Err(StoreError::Corrupt(_))
    ));

    // Data without a head.
    backend.write(vec![(b"Mhead".to_vec(), None)]).unwrap();
    assert!(matches!(
        Store::open_with(Box::new(backend)),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn a_store_of_another_format_is_refused_naming_both_versions() {
    let mut fixture = Fixture::new();
    let backend = Shared::new(MemoryBackend::new());
    let store = Store::create_with(Box::new(backend.clone()), &fixture.genesis).unwrap();
    commit_blocks(&store, &mut fixture, 2, 3);
    let head = store.head().unwrap();
    drop(store);
    let format_key = b"Mformat".to_vec();
    let recorded = backend.get(&format_key).unwrap().unwrap();
    assert_eq!(recorded, STORE_FORMAT_VERSION.to_be_bytes().to_vec());

    // A store written before the format was recorded is format 1.
    backend.write(vec![(format_key.clone(), None)]).unwrap();
    let error = Store::open_with(Box::new(backend.clone())).unwrap_err();
    assert!(
        matches!(error, StoreError::FormatVersion { expected, found: 1 } if expected == STORE_FORMAT_VERSION),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("format version 1")
            && message.contains(&format!("format version {STORE_FORMAT_VERSION}")),
        "{message}"
    );

    // A store of a later format.
    let later = STORE_FORMAT_VERSION + 1;
    backend
        .write(vec![(
            format_key.clone(),
            Some(later.to_be_bytes().to_vec()),
        )])
        .unwrap();
    assert!(matches!(
        Store::open_with(Box::new(backend.clone())),
        Err(StoreError::FormatVersion { found, .. }) if found == later
    ));

    // A format record that is not four bytes is damage, not a version.
    backend
        .write(vec![(format_key.clone(), Some(vec![0, 0, 2]))])
        .unwrap();
    assert!(matches!(
        Store::open_with(Box::new(backend.clone())),
        Err(StoreError::Corrupt(ref text)) if text.contains("format record")
    ));

    // Put back, the store opens where it was.
    backend.write(vec![(format_key, Some(recorded))]).unwrap();
    assert_eq!(
        Store::open_with(Box::new(backend)).unwrap().head().unwrap(),
        head
    );
}

#[test]
fn state_proofs_verify_against_the_header() {
    let mut fixture = Fixture::new();
    let store = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
    commit_blocks(&store, &mut fixture, 2, 10);
    let licence = store
        .licences_of_issuer(&"qd-approval".into(), None, 1)
        .unwrap()[0]
        .clone();
    let key = RecordKey::Licence(licence.0.clone(), licence.1.clone());
    let proof = store.prove(&key).unwrap();
    let record = proof.record.clone().unwrap();
    smt::verify_membership(
        hutong_core::testkit::SUITE,
        proof.header.state_root,
        &key.state_hash(hutong_core::testkit::SUITE),
        &record.state_hash(hutong_core::testkit::SUITE),
        &proof.proof,
    )
    .unwrap();
    // The same proof does not prove another value.
    let mut other = record.clone();
    if let hutong_core::records::Record::Licence(licence) = &mut other {
        licence.holder_name.push('x');
    }
    assert!(
        smt::verify_membership(
            hutong_core::testkit::SUITE,
            proof.header.state_root,
            &key.state_hash(hutong_core::testkit::SUITE),
            &other.state_hash(hutong_core::testkit::SUITE),
            &proof.proof
        )
        .is_err()
    );

    // A number never issued: non-membership.
    let absent = RecordKey::Licence("business-licence".into(), LicenceNumber("NOPE".into()));
    let proof = store.prove(&absent).unwrap();
    assert!(proof.record.is_none());
    smt::verify_non_membership(
        hutong_core::testkit::SUITE,
        proof.header.state_root,
        &absent.state_hash(hutong_core::testkit::SUITE),
        &proof.proof,
    )
    .unwrap();
    assert!(
        smt::verify_non_membership(
            hutong_core::testkit::SUITE,
            proof.header.state_root,
            &key.state_hash(hutong_core::testkit::SUITE),
            &proof.proof
        )
        .is_err()
    );
}

#[test]
fn transactions_have_inclusion_proofs_and_logs_are_consistent() {
    let mut fixture = Fixture::new();
    let store = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
    commit_blocks(&store, &mut fixture, 1, 5);
    let first_header = store.head().unwrap().header;
    commit_blocks(&store, &mut fixture, 3, 7);
    let header = store.head().unwrap().header;
    let block = store.block(2).unwrap().unwrap();
    let transaction = &block.transactions[3];
    let (found, location) = store
        .transaction(&transaction.id(hutong_core::testkit::SUITE))
        .unwrap()
        .unwrap();
    assert_eq!(&found, transaction);
    assert_eq!(location.height, 2);
    assert_eq!(location.index, 3);
    assert_eq!(location.log_index, 5 + 3);
    let proof = store
        .log_inclusion(location.log_index, header.log_size)
        .unwrap();
    let leaf = Blake3Log.leaf_hash(&transaction.to_bytes());
    proof.verify(&Blake3Log, &leaf, &header.log_root).unwrap();
    let consistency = store
        .log_consistency(first_header.log_size, header.log_size)
        .unwrap();
    consistency
        .verify(&Blake3Log, &first_header.log_root, &header.log_root)
        .unwrap();
}

#[test]
fn blocks_replay_on_another_store_and_tampering_is_caught() {
    let mut fixture = Fixture::new();
    let source = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
    commit_blocks(&source, &mut fixture, 3, 6);
    let replica = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
    let block = source.block(1).unwrap().unwrap();

    let mut tampered = block.clone();
    tampered.header.state_root.0[0] ^= 1;
    assert!(matches!(
        replica.verify_block(&tampered),
        Err(BlockError::HeaderMismatch {
            field: "state_root",
            ..
        })
    ));
    let mut dropped = block.clone();
    dropped.transactions.pop();
    assert!(matches!(
        replica.verify_block(&dropped),
        Err(BlockError::HeaderMismatch { .. })
    ));
    // Reordered: the signer's nonces no longer follow one another, so the block does not
    // execute (the first already skips one).
    let mut reordered = block.clone();
    reordered.transactions.swap(0, 1);
    assert!(matches!(
        replica.verify_block(&reordered),
        Err(BlockError::InvalidTransaction { index: 0, .. })
    ));
    // A block of another protocol version is refused by name, before it is executed.
    let mut other_version = block.clone();
    other_version.header.protocol_version += 1;
    let refusal = replica.verify_block(&other_version).unwrap_err();
    assert!(
        matches!(
            refusal,
            BlockError::ProtocolVersion {
                expected: 1,
                found: 2
            }
        ),
        "{refusal}"
    );
    assert_eq!(replica.height().unwrap(), 0);
    let mut wrong_size = block.clone();
    wrong_size.header.log_size += 1;
    assert!(matches!(
        replica.verify_block(&wrong_size),
        Err(BlockError::HeaderMismatch {
            field: "log_size",
            ..
        })
    ));

    for height in 1..=3 {
        let block = source.block(height).unwrap().unwrap();
        let execution = replica.verify_block(&block).unwrap();
        replica.commit(execution, block.certificate).unwrap();
    }
    assert_eq!(replica.head().unwrap(), source.head().unwrap());
}

#[test]
fn sled_backend_scans_in_order_with_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let backend = SledBackend::open(dir.path()).unwrap();
    backend
        .write(vec![
            (b"a1".to_vec(), Some(vec![1])),
            (b"a2".to_vec(), Some(vec![2])),
            (b"a3".to_vec(), Some(vec![3])),
            (b"b1".to_vec(), Some(vec![4])),
        ])
        .unwrap();
    let all = backend.scan(b"a", None, 10).unwrap();
    assert_eq!(all.len(), 3);
    let after = backend.scan(b"a", Some(b"a1"), 10).unwrap();
    assert_eq!(
        after.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        vec![b"a2".to_vec(), b"a3".to_vec()]
    );
    let limited = backend.scan(b"a", None, 2).unwrap();
    assert_eq!(limited.len(), 2);
    backend.write(vec![(b"a2".to_vec(), None)]).unwrap();
    assert_eq!(backend.get(b"a2").unwrap(), None);
}

#[test]
fn block_certificates_verify_against_the_registry() {
    use hutong_core::block::{BlockCertificateError, certify, verify_block_certificate};
    let mut fixture = Fixture::new();
    let store = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
    commit_blocks(&store, &mut fixture, 1, 2);
    let block = store.block(1).unwrap().unwrap();
    let registry = store.registry_for(1).unwrap();
    verify_block_certificate(
        hutong_core::testkit::SUITE,
        &block.header,
        &block.certificate,
        &registry,
    )
    .unwrap();

    // Two of four validators are not more than two thirds.
    let two: Vec<_> = fixture.node_keys.iter().take(2).collect();
    let weak = certify(hutong_core::testkit::SUITE, &block.header, 0, &two);
    assert!(matches!(
        verify_block_certificate(hutong_core::testkit::SUITE, &block.header, &weak, &registry),
        Err(BlockCertificateError::Certificate(_))
    ));
    // Three of four are.
    let three: Vec<_> = fixture.node_keys.iter().take(3).collect();
    verify_block_certificate(
        hutong_core::testkit::SUITE,
        &block.header,
        &certify(hutong_core::testkit::SUITE, &block.header, 0, &three),
        &registry,
    )
    .unwrap();
    // A certificate for another header.
    let mut other = block.header.clone();
    other.time += 1;
    assert!(matches!(
        verify_block_certificate(
            hutong_core::testkit::SUITE,
            &other,
            &block.certificate,
            &registry
        ),
        Err(BlockCertificateError::WrongBlock { .. })
    ));
    // A forged signature.
    let mut forged = block.certificate.clone();
    forged.signatures[0].signature.0[5] ^= 1;
    assert!(
        verify_block_certificate(
            hutong_core::testkit::SUITE,
            &block.header,
            &forged,
            &registry
        )
        .is_err()
    );
    // Signers outside the set.
    let stranger = hutong_core::testkit::secret("stranger");
    let outsiders = certify(
        hutong_core::testkit::SUITE,
        &block.header,
        0,
        &[&stranger, &fixture.node_keys[0], &fixture.node_keys[1]],
    );
    assert!(
        verify_block_certificate(
            hutong_core::testkit::SUITE,
            &block.header,
            &outsiders,
            &registry
        )
        .is_err()
    );
}
