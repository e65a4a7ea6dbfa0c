//! The state tree at the size the ledger expects: a block of 5,000 updates applied to a tree
//! of a million keys (with the page cache warm, and cold so that every page comes from the
//! store), the whole step of a block (apply, persist into a memory store, commit), and a
//! proof built and verified against it. Besides the timings it prints the store writes per
//! update, which the ledger's commit pays for in its storage batch.
//!
//! Run with `cargo bench -p hutong-core --bench smt`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hutong_core::hash::{Hash32, tagged};
use hutong_core::smt::{
    MemorySmtStore, SmtUpdate, SmtWriteSet, SparseMerkleTree, verify_membership,
    verify_non_membership,
};

const TREE_KEYS: u64 = 1_000_000;
const BLOCK_UPDATES: u64 = 5_000;
const BUILD_BATCH_UPDATES: u64 = 100_000;

fn key(number: u64) -> Hash32 {
    tagged("bench/smt/key", &number.to_le_bytes())
}

fn value(number: u64, version: u64) -> Hash32 {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&number.to_le_bytes());
    bytes[8..].copy_from_slice(&version.to_le_bytes());
    tagged("bench/smt/value", &bytes)
}

fn build_tree() -> (SparseMerkleTree, MemorySmtStore) {
    let started = Instant::now();
    let mut tree = SparseMerkleTree::empty(hutong_core::testkit::SUITE);
    let mut store = MemorySmtStore::new();
    for first in (0..TREE_KEYS).step_by(BUILD_BATCH_UPDATES as usize) {
        let updates: Vec<SmtUpdate> = (first..first + BUILD_BATCH_UPDATES)
            .map(|number| (key(number), Some(value(number, 0))))
            .collect();
        let write_set = tree
            .apply(&store, &updates)
            .expect("apply to a memory store");
        store.persist(&write_set);
        tree.commit(write_set)
            .expect("commit the write set just applied");
    }
    println!(
        "built a tree of {TREE_KEYS} keys in {:.1} s: {} pages, {:.1} MiB stored; cache holds {} pages, {:.1} MiB",
        started.elapsed().as_secs_f64(),
        store.len(),
        store.size_bytes() as f64 / (1024.0 * 1024.0),
        tree.cached_pages(),
        tree.cache_size_bytes() as f64 / (1024.0 * 1024.0),
    );
    (tree, store)
}

/// A block as issuance produces it: half new keys, half changes to existing ones; and the
/// block that undoes it (deleting the new keys, restoring the old values).
fn blocks() -> (Vec<SmtUpdate>, Vec<SmtUpdate>) {
    (0..BLOCK_UPDATES)
        .map(|index| {
            if index % 2 == 0 {
                let number = TREE_KEYS + index;
                ((key(number), Some(value(number, 0))), (key(number), None))
            } else {
                let number = (index * 199_999) % TREE_KEYS;
                (
                    (key(number), Some(value(number, 1))),
                    (key(number), Some(value(number, 0))),
                )
            }
        })
        .unzip()
}

/// Applies `block`, persists it and commits it: what the ledger does once per block.
fn apply_persist_commit(
    tree: &mut SparseMerkleTree,
    store: &mut MemorySmtStore,
    block: &[SmtUpdate],
) {
    let write_set = tree.apply(&*store, block).expect("apply");
    store.persist(&write_set);
    tree.commit(write_set).expect("commit");
}

fn report(label: &str, write_set: &SmtWriteSet) {
    let stats = write_set.stats();
    let written_bytes: usize = write_set
        .writes()
        .iter()
        .map(|(key, value)| key.len() + value.len())
        .sum();
    let updates = stats.updates as f64;
    println!(
        "{label}: {} updates -> {} page writes + {} page deletes = {:.2} store writes per update, \
         {:.0} bytes written per update; {} pages read from the store, {} from the cache",
        stats.updates,
        stats.pages_written,
        stats.pages_deleted,
        (stats.pages_written + stats.pages_deleted) as f64 / updates,
        written_bytes as f64 / updates,
        stats.pages_read_from_store,
        stats.pages_read_from_cache,
    );
}

fn benches(criterion: &mut Criterion) {
    let (warm, store) = build_tree();
    let (block, undo) = blocks();
    let cold = SparseMerkleTree::open(hutong_core::testkit::SUITE, &store, warm.root())
        .expect("the store holds the tree");

    report("warm cache", &warm.apply(&store, &block).expect("apply"));
    report("cold cache", &cold.apply(&store, &block).expect("apply"));

    let mut group = criterion.benchmark_group("smt");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("apply_5000_updates_to_1m_keys/warm_cache", |bencher| {
        // Dropping the write set is left out: the ledger hands it to `commit`.
        bencher.iter_with_large_drop(|| warm.apply(&store, black_box(&block)).expect("apply"))
    });
    group.bench_function("apply_5000_updates_to_1m_keys/cold_cache", |bencher| {
        bencher.iter_with_large_drop(|| cold.apply(&store, black_box(&block)).expect("apply"))
    });
    group.finish();

    let member = key(123_456);
    let member_value = value(123_456, 0);
    let absent = key(TREE_KEYS * 2);
    let proof = warm.prove(&store, &member).expect("prove");
    let absent_proof = warm.prove(&store, &absent).expect("prove");
    println!(
        "proofs: membership {} siblings, {} bytes in postcard; non-membership {} siblings",
        proof.siblings.len(),
        postcard::to_stdvec(&proof).expect("encode").len(),
        absent_proof.siblings.len(),
    );
    let root = warm.root();
    let mut group = criterion.benchmark_group("smt");
    group.bench_function("prove_in_1m_keys/warm_cache", |bencher| {
        bencher.iter(|| warm.prove(&store, black_box(&member)).expect("prove"))
    });
    group.bench_function("prove_in_1m_keys/cold_cache", |bencher| {
        bencher.iter(|| cold.prove(&store, black_box(&member)).expect("prove"))
    });
    group.bench_function("verify_membership_in_1m_keys", |bencher| {
        bencher.iter(|| {
            verify_membership(
                hutong_core::testkit::SUITE,
                root,
                black_box(&member),
                &member_value,
                &proof,
            )
        })
    });
    group.bench_function("verify_non_membership_in_1m_keys", |bencher| {
        bencher.iter(|| {
            verify_non_membership(
                hutong_core::testkit::SUITE,
                root,
                black_box(&absent),
                &absent_proof,
            )
        })
    });
    group.finish();

    // The whole step of a block, twice per iteration: the block, then the one undoing it,
    // so that every iteration starts from the same tree.
    let mut tree = warm;
    let mut store = store;
    let mut group = criterion.benchmark_group("smt");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.bench_function(
        "apply_persist_commit_two_blocks_of_5000_updates_to_1m_keys",
        |bencher| {
            bencher.iter(|| {
                apply_persist_commit(&mut tree, &mut store, &block);
                apply_persist_commit(&mut tree, &mut store, &undo);
            })
        },
    );
    group.finish();
    println!(
        "after the block cycles: root unchanged {}, cache holds {} pages, {:.1} MiB",
        tree.root() == root,
        tree.cached_pages(),
        tree.cache_size_bytes() as f64 / (1024.0 * 1024.0),
    );
}

criterion_group!(smt, benches);
criterion_main!(smt);
