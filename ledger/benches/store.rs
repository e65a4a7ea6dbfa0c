//! Reads on a store of a million licences: the store is built once, in blocks of 5,000
//! issuances on redb (the default engine) in a temporary directory (how long that took is printed, not measured by
//! criterion), then criterion measures the point reads a verifier makes (`licence`,
//! `verdict`), building and verifying a state proof (`prove` + `smt::verify_membership`) and a
//! log inclusion proof (`log_inclusion` + `InclusionProof::verify`). It also prints the disk
//! bytes per licence.
//!
//! `cargo bench -p hutong-ledger --bench store`; `HUTONG_BENCH_LICENCES=100000` builds a
//! smaller store for a quick look, and `HUTONG_BENCH_ENGINE=sled` runs the same on sled for
//! the engine comparison of docs/adr/0006-redb-default-engine.md.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hutong_core::hash::Hash32;
use hutong_core::log::{Blake3Log, LogHasher};
use hutong_core::records::{LicenceNumber, RecordKey, TypeCode};
use hutong_core::smt;
use hutong_core::testkit::{self, Fixture, GENESIS_TIME};
use hutong_core::tx::Transaction;
use hutong_ledger::store::{Backend, Durability, Engine, Mode, Store};

const LICENCES_DEFAULT: u64 = 1_000_000;
const BUILD_BLOCK_TRANSACTIONS: u64 = 5_000;
const ISSUER: &str = "qd-approval";
const REGION: &str = "370200";
/// Distinct licences the read benchmarks cycle through, so that reads do not all hit one key.
const SAMPLES: usize = 4_096;

/// A small deterministic generator (splitmix64), so that every run reads the same licences.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn licence_count() -> u64 {
    std::env::var("HUTONG_BENCH_LICENCES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(LICENCES_DEFAULT)
}

fn type_code() -> TypeCode {
    TypeCode::from("business-licence")
}

/// Licence `number` of the build (numbers start at 1).
fn licence_number(number: u64) -> LicenceNumber {
    LicenceNumber(testkit::uscc(REGION, number).to_string())
}

/// Bytes of every file under `path`.
fn directory_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(metadata) if metadata.is_dir() => directory_bytes(&entry.path()),
            Ok(metadata) => metadata.len(),
            Err(_) => 0,
        })
        .sum()
}

fn engine() -> Engine {
    std::env::var("HUTONG_BENCH_ENGINE")
        .map(|name| name.parse().expect("HUTONG_BENCH_ENGINE is redb or sled"))
        .unwrap_or_default()
}

fn backend(path: &Path) -> Box<dyn Backend> {
    engine()
        .open(path, Durability::Synced)
        .expect("open the engine")
}

fn build(path: &Path, licences: u64) -> (Store, Fixture) {
    let mut fixture = Fixture::new();
    let store = Store::create_with(backend(path), &fixture.genesis).expect("create the store");
    let started = Instant::now();
    let mut signing = Duration::ZERO;
    let mut number = 1;
    while number <= licences {
        let last = (number + BUILD_BLOCK_TRANSACTIONS - 1).min(licences);
        let signing_started = Instant::now();
        let transactions: Vec<Transaction> = (number..=last)
            .map(|number| fixture.issue_business_licence(ISSUER, REGION, number))
            .collect();
        signing += signing_started.elapsed();
        let head = store.head().expect("head");
        let execution = store
            .execute(
                head.header.time + 1_000,
                fixture.node_keys[0].public_key(),
                transactions,
                Mode::Verify,
            )
            .expect("the block executes");
        let certificate = fixture.certify(&execution.header);
        store
            .commit(execution, certificate)
            .expect("the block commits");
        number = last + 1;
    }
    let elapsed = started.elapsed();
    let applying = elapsed.saturating_sub(signing);
    println!(
        "built a store of {licences} licences in {:.1} s ({:.1} s signing, {:.1} s executing and committing: {:.0} tx/s) at height {}",
        elapsed.as_secs_f64(),
        signing.as_secs_f64(),
        applying.as_secs_f64(),
        licences as f64 / applying.as_secs_f64(),
        store.height().expect("height"),
    );
    (store, fixture)
}

fn reads(c: &mut Criterion) {
    let licences = licence_count();
    let dir = tempfile::tempdir().expect("temporary directory");
    let (store, _fixture) = build(dir.path(), licences);
    let engine_bytes = store.disk_bytes().expect("disk bytes");
    let files_bytes = directory_bytes(dir.path());
    println!(
        "disk ({}): the engine reports {engine_bytes} bytes ({:.0} per licence); the files take {files_bytes} bytes ({:.0} per licence)",
        engine(),
        engine_bytes as f64 / licences as f64,
        files_bytes as f64 / licences as f64,
    );

    let mut sequence = Sequence(7);
    let numbers: Vec<LicenceNumber> = (0..SAMPLES)
        .map(|_| licence_number(1 + sequence.next() % licences))
        .collect();
    let code = type_code();
    let head = store.head().expect("head");
    let at = GENESIS_TIME + 1_000;

    // The first read of each sampled licence comes from the disk; time it apart, then let
    // criterion measure reads of a warm engine cache, as a node serving verifiers has.
    let started = Instant::now();
    for number in &numbers {
        assert!(store.licence(&code, number).expect("read").is_some());
    }
    println!(
        "first (cold) read of {SAMPLES} licences: {:.1} us each",
        started.elapsed().as_secs_f64() * 1e6 / SAMPLES as f64
    );

    let mut group = c.benchmark_group(format!("store_{}_{licences}_licences", engine()));
    let mut cursor = 0usize;
    group.bench_function("licence", |b| {
        b.iter(|| {
            cursor = (cursor + 1) % SAMPLES;
            let licence = store.licence(&code, &numbers[cursor]).expect("read");
            assert!(licence.is_some());
            black_box(licence)
        })
    });
    group.bench_function("verdict", |b| {
        b.iter(|| {
            cursor = (cursor + 1) % SAMPLES;
            let answer = store
                .verdict(&code, &numbers[cursor], None, at)
                .expect("read");
            assert!(answer.is_some());
            black_box(answer)
        })
    });

    let keys: Vec<RecordKey> = numbers
        .iter()
        .map(|number| RecordKey::Licence(code.clone(), number.clone()))
        .collect();
    group.bench_function("state_proof_build", |b| {
        b.iter(|| {
            cursor = (cursor + 1) % SAMPLES;
            black_box(store.prove(&keys[cursor]).expect("prove"))
        })
    });
    let proofs: Vec<(Hash32, Hash32, smt::SmtProof)> = keys
        .iter()
        .take(256)
        .map(|key| {
            let proof = store.prove(key).expect("prove");
            let record = proof.record.as_ref().expect("the licence exists");
            (
                key.state_hash(hutong_core::testkit::SUITE),
                record.state_hash(hutong_core::testkit::SUITE),
                proof.proof,
            )
        })
        .collect();
    let siblings: usize = proofs
        .iter()
        .map(|(_, _, proof)| proof.siblings.len())
        .sum();
    println!(
        "state proofs: {:.1} siblings on average",
        siblings as f64 / proofs.len() as f64
    );
    group.bench_function("state_proof_verify", |b| {
        b.iter(|| {
            cursor = (cursor + 1) % proofs.len();
            let (key, value, proof) = &proofs[cursor];
            smt::verify_membership(
                hutong_core::testkit::SUITE,
                head.header.state_root,
                key,
                value,
                proof,
            )
            .expect("verifies")
        })
    });

    let log_size = head.header.log_size;
    let leaves: Vec<(u64, Hash32)> = (0..256)
        .map(|_| {
            let index = sequence.next() % log_size;
            let height = 1 + index / BUILD_BLOCK_TRANSACTIONS;
            let block = store.block(height).expect("read").expect("block exists");
            let position = (index % BUILD_BLOCK_TRANSACTIONS) as usize;
            let bytes = block.transactions[position].to_bytes();
            (index, Blake3Log.leaf_hash(&bytes))
        })
        .collect();
    group.bench_function("log_inclusion_build", |b| {
        b.iter(|| {
            cursor = (cursor + 1) % leaves.len();
            black_box(
                store
                    .log_inclusion(leaves[cursor].0, log_size)
                    .expect("proof"),
            )
        })
    });
    let inclusion: Vec<_> = leaves
        .iter()
        .map(|(index, leaf)| (store.log_inclusion(*index, log_size).expect("proof"), *leaf))
        .collect();
    group.bench_function("log_inclusion_verify", |b| {
        b.iter(|| {
            cursor = (cursor + 1) % inclusion.len();
            let (proof, leaf) = &inclusion[cursor];
            proof
                .verify(&Blake3Log, leaf, &head.header.log_root)
                .expect("verifies")
        })
    });
    group.finish();
}

fn configured() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = store;
    config = configured();
    targets = reads
}
criterion_main!(store);
