//! The transaction log at one million leaves: appending them block by block, and building
//! and verifying inclusion and consistency proofs at that size.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hutong_core::hash::Hash32;
use hutong_core::log::{
    self, Blake3Log, ConsistencyProof, InclusionProof, LogHasher, MemoryLogStore,
};

const LOG_SIZE: u64 = 1_000_000;
/// Leaves per append call, as a block of that many transactions would.
const BLOCK_LEAVES: usize = 1_000;

fn leaf_hashes() -> Vec<Hash32> {
    (0..LOG_SIZE)
        .map(|index| Blake3Log.leaf_hash(&index.to_le_bytes()))
        .collect()
}

/// Appends `leaves` to an empty memory store in blocks of [`BLOCK_LEAVES`].
fn append_in_blocks(leaves: &[Hash32]) -> (MemoryLogStore, Hash32) {
    let mut store = MemoryLogStore::new();
    let mut size = 0;
    let mut root = Blake3Log.empty_root();
    for block in leaves.chunks(BLOCK_LEAVES) {
        let appended = log::append(&Blake3Log, &store, size, block).expect("append");
        store.insert_nodes(appended.nodes);
        size = appended.new_size;
        root = appended.new_root;
    }
    (store, root)
}

fn append(criterion: &mut Criterion) {
    let leaves = leaf_hashes();
    let mut group = criterion.benchmark_group("log_append");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(LOG_SIZE));

    // The node hashes alone: one call, the nodes are dropped.
    group.bench_function("1m_leaves_nodes_only", |bench| {
        bench.iter(|| {
            let appended = log::append(&Blake3Log, &MemoryLogStore::new(), 0, black_box(&leaves))
                .expect("append");
            black_box(appended.new_root)
        })
    });
    // What a node does: one append per block of 1000 leaves, the nodes kept in a map.
    group.bench_function("1m_leaves_blocks_of_1000_into_memory_store", |bench| {
        bench.iter(|| black_box(append_in_blocks(black_box(&leaves)).1))
    });
    group.finish();
}

fn proofs(criterion: &mut Criterion) {
    let leaves = leaf_hashes();
    let (store, root) = append_in_blocks(&leaves);
    // A leaf far from the right edge, and an odd first size, so that the proofs are long and
    // need the recomputed right-edge node.
    let leaf_index = 123_457;
    let first_size = 999_999;
    let first_root = log::root(&Blake3Log, &store, first_size).expect("root");

    let mut group = criterion.benchmark_group("log_proofs_at_1m");
    group.bench_function("root", |bench| {
        bench.iter(|| log::root(&Blake3Log, &store, black_box(LOG_SIZE)).expect("root"))
    });
    group.bench_function("inclusion_build", |bench| {
        bench.iter(|| {
            log::inclusion_proof(&Blake3Log, &store, black_box(leaf_index), LOG_SIZE)
                .expect("proof")
        })
    });
    let inclusion: InclusionProof =
        log::inclusion_proof(&Blake3Log, &store, leaf_index, LOG_SIZE).expect("proof");
    let leaf = leaves[leaf_index as usize];
    group.bench_function("inclusion_verify", |bench| {
        bench.iter(|| {
            black_box(&inclusion)
                .verify(&Blake3Log, &leaf, &root)
                .expect("verify")
        })
    });
    group.bench_function("consistency_build", |bench| {
        bench.iter(|| {
            log::consistency_proof(&Blake3Log, &store, black_box(first_size), LOG_SIZE)
                .expect("proof")
        })
    });
    let consistency: ConsistencyProof =
        log::consistency_proof(&Blake3Log, &store, first_size, LOG_SIZE).expect("proof");
    group.bench_function("consistency_verify", |bench| {
        bench.iter(|| {
            black_box(&consistency)
                .verify(&Blake3Log, &first_root, &root)
                .expect("verify")
        })
    });
    group.finish();
    println!(
        "proof sizes at {LOG_SIZE} leaves: inclusion of leaf {leaf_index} {} hashes, consistency from {first_size} {} hashes",
        inclusion.path.len(),
        consistency.path.len()
    );
}

criterion_group!(benches, append, proofs);
criterion_main!(benches);
