//! The write path: executing and committing a block of 1,000 business-licence issuances in a
//! temporary directory, signature checks and the durable commit included, reported as
//! transactions per second. Transactions are signed before the timed section.
//!
//! Cases:
//! - `redb_synced`: the store as a node runs it by default (the block reaches the disk before
//!   `commit` returns), with the store's journal in front of the engine (ADR 0015);
//! - `redb_synced_direct`: the same on the engine alone, without the journal;
//! - `redb_unsynced`: the same without the sync, to measure what the sync costs;
//! - `sled_synced`, `sled_unsynced`: the same on sled, the other engine a node may choose
//!   (docs/adr/0006-redb-default-engine.md);
//! - `memory`: the in-memory engine, what execution and encoding cost without any engine;
//! - `redb_synced_preverified`: signatures already checked by `check_transactions` on
//!   admission (outside the timing), as the mempool does, so that execution skips the curve
//!   arithmetic;
//! - `redb_synced_admitted`: the admission check of the block's transactions in one batch
//!   (`check_transactions`: signatures and rules) inside the timing, then execution and
//!   commit: everything a node does with a transaction it receives, once.
//!
//! The machine the figures come from is shared with other work, so by default criterion is
//! given the CPU time of the benchmark's thread (`/proc/thread-self/schedstat`, Linux) rather
//! than the wall clock: what one core spends on a block, without the time spent waiting for a
//! core, and without the time a synced commit waits for the disk, which the profile below
//! prints apart. `HUTONG_BENCH_CLOCK=wall` gives criterion the wall clock instead.
//!
//! Before criterion runs, a short profile prints how one block's time splits between
//! signature checks, rule application, tree and log updates (execute minus the two), and
//! commit, and how many store writes and bytes each transaction costs, on redb
//! (`HUTONG_BENCH_JOURNAL=off`: on redb without the journal).
//!
//! The benchmark allocates with mimalloc, as the `hutong` binary does (ADR 0010), so that it
//! measures what a node runs.
//!
//! `cargo bench -p hutong-ledger --bench apply`

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use hutong_core::rules::{self, Context, Overlay};
use hutong_core::testkit::{CHAIN_ID, Fixture};
use hutong_core::tx::Transaction;
use hutong_ledger::store::{
    Backend, Durability, Engine, Entry, MemoryBackend, Mode, Store, StoreError, Write,
};

const BLOCK_TRANSACTIONS: u64 = 1_000;
const ISSUER: &str = "qd-approval";
const REGION: &str = "370200";
/// Blocks the profile runs; `HUTONG_PROFILE_BLOCKS` changes it.
const PROFILE_BLOCKS_DEFAULT: u64 = 20;

/// Counts what the store hands its engine, to report writes and bytes per transaction, in
/// all and by key prefix (the kinds of the table in `store/mod.rs`).
#[derive(Debug)]
struct Counting {
    inner: Box<dyn Backend>,
    writes: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    by_prefix: Arc<Mutex<BTreeMap<u8, (u64, u64)>>>,
}

impl Backend for Counting {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }
    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.inner.scan(prefix, after, limit)
    }
    fn write(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        let bytes: usize = batch
            .iter()
            .map(|(key, value)| key.len() + value.as_ref().map_or(0, Vec::len))
            .sum();
        if let Ok(mut by_prefix) = self.by_prefix.lock() {
            for (key, value) in &batch {
                let entry = by_prefix
                    .entry(key.first().copied().unwrap_or(0))
                    .or_default();
                entry.0 += 1;
                entry.1 += (key.len() + value.as_ref().map_or(0, Vec::len)) as u64;
            }
        }
        self.writes.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.inner.write(batch)
    }
    fn disk_bytes(&self) -> Result<u64, StoreError> {
        self.inner.disk_bytes()
    }
}

/// A chain in a temporary directory and the fixture that signs for it.
struct Chain {
    store: Store,
    fixture: Fixture,
    next_number: u64,
    _dir: tempfile::TempDir,
}

impl Chain {
    fn new(engine: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let fixture = Fixture::new();
        let store = Store::create_with(backend(engine, dir.path()), &fixture.genesis)
            .expect("create the store");
        Chain {
            store,
            fixture,
            next_number: 1,
            _dir: dir,
        }
    }

    /// The next block's issuances, signed (outside any timing).
    fn signed_block(&mut self) -> Vec<Transaction> {
        let first = self.next_number;
        self.next_number += BLOCK_TRANSACTIONS;
        (first..first + BLOCK_TRANSACTIONS)
            .map(|number| self.fixture.issue_business_licence(ISSUER, REGION, number))
            .collect()
    }

    fn next_time(&self) -> u64 {
        self.store.head().expect("head").header.time + 1_000
    }

    fn execute_and_commit(&self, transactions: Vec<Transaction>) {
        let proposer = self.fixture.node_keys[0].public_key();
        let execution = self
            .store
            .execute(self.next_time(), proposer, transactions, Mode::Verify)
            .expect("the block executes");
        let certificate = self.fixture.certify(&execution.header);
        black_box(
            self.store
                .commit(execution, certificate)
                .expect("the block commits"),
        );
    }
}

fn backend(case: &str, path: &Path) -> Box<dyn Backend> {
    if case == "memory" {
        return Box::new(MemoryBackend::new());
    }
    let engine = if case.starts_with("sled") {
        Engine::Sled
    } else {
        Engine::Redb
    };
    let durability = if case.contains("unsynced") {
        Durability::Unsynced
    } else {
        Durability::Synced
    };
    if case.ends_with("_direct") {
        return engine
            .open_direct(path, durability)
            .expect("open the engine");
    }
    engine.open(path, durability).expect("open the engine")
}

/// What the timed sections are measured with (see the module's comment).
#[derive(Clone, Copy)]
enum Clock {
    ThreadCpu,
    Wall,
}

impl Clock {
    fn from_env() -> Clock {
        match std::env::var("HUTONG_BENCH_CLOCK").as_deref() {
            Ok("wall") => Clock::Wall,
            _ => Clock::ThreadCpu,
        }
    }

    fn now(self) -> Duration {
        match self {
            Clock::ThreadCpu => thread_cpu(),
            Clock::Wall => Duration::from_nanos(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|elapsed| elapsed.as_nanos() as u64)
                    .unwrap_or(0),
            ),
        }
    }
}

/// CPU time the calling thread has used, in nanoseconds, from `/proc/thread-self/schedstat`
/// (its first field; zero where it cannot be read).
fn thread_cpu() -> Duration {
    let nanos = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_nanos(nanos)
}

fn apply_block(c: &mut Criterion) {
    let clock = Clock::from_env();
    let mut group = c.benchmark_group("apply_block_1000_issuances");
    group.throughput(Throughput::Elements(BLOCK_TRANSACTIONS));
    group.sampling_mode(SamplingMode::Flat);
    for engine in [
        "redb_synced",
        "redb_synced_direct",
        "redb_unsynced",
        "sled_synced",
        "sled_unsynced",
        "memory",
    ] {
        let mut chain = Chain::new(engine);
        group.bench_function(engine, |b| {
            b.iter_custom(|iterations| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iterations {
                    let transactions = chain.signed_block();
                    let started = clock.now();
                    chain.execute_and_commit(transactions);
                    elapsed += clock.now().saturating_sub(started);
                }
                elapsed
            })
        });
    }
    let mut chain = Chain::new("redb_synced");
    group.bench_function("redb_synced_preverified", |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                let transactions = chain.signed_block();
                admit(&chain, &transactions);
                let started = clock.now();
                chain.execute_and_commit(transactions);
                elapsed += clock.now().saturating_sub(started);
            }
            elapsed
        })
    });
    let mut chain = Chain::new("redb_synced");
    group.bench_function("redb_synced_admitted", |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                let transactions = chain.signed_block();
                let started = clock.now();
                admit(&chain, &transactions);
                chain.execute_and_commit(transactions);
                elapsed += clock.now().saturating_sub(started);
            }
            elapsed
        })
    });
    group.finish();
}

/// The mempool's admission check of a block's transactions, in one batch.
fn admit(chain: &Chain, transactions: &[Transaction]) {
    let references: Vec<&Transaction> = transactions.iter().collect();
    let results = chain
        .store
        .check_transactions(&references, chain.next_time(), u64::MAX);
    assert!(results.iter().all(Result::is_ok), "admission");
}

/// Where one block's time goes, measured phase by phase on redb with the sync.
fn profile() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let writes = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let mut fixture = Fixture::new();
    let by_prefix = Arc::new(Mutex::new(BTreeMap::new()));
    let counting = Counting {
        // `HUTONG_BENCH_JOURNAL=off` profiles the engine without the store's journal.
        inner: if std::env::var("HUTONG_BENCH_JOURNAL").as_deref() == Ok("off") {
            Engine::Redb.open_direct(dir.path(), Durability::Synced)
        } else {
            Engine::Redb.open(dir.path(), Durability::Synced)
        }
        .expect("open redb"),
        writes: Arc::clone(&writes),
        bytes: Arc::clone(&bytes),
        by_prefix: Arc::clone(&by_prefix),
    };
    let store = Store::create_with(Box::new(counting), &fixture.genesis).expect("create");
    let profile_blocks: u64 = std::env::var("HUTONG_PROFILE_BLOCKS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(PROFILE_BLOCKS_DEFAULT);
    let cpu_before = process_cpu_seconds();
    let wall_before = Instant::now();
    let mut chain_number = 1;
    let (mut signatures, mut rules_time, mut execute, mut commit, mut commit_wall) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    writes.store(0, Ordering::Relaxed);
    bytes.store(0, Ordering::Relaxed);
    by_prefix.lock().expect("counter lock").clear();
    for _ in 0..profile_blocks {
        let transactions: Vec<Transaction> = (chain_number..chain_number + BLOCK_TRANSACTIONS)
            .map(|number| fixture.issue_business_licence(ISSUER, REGION, number))
            .collect();
        chain_number += BLOCK_TRANSACTIONS;
        let head = store.head().expect("head");
        let context = Context {
            chain_id: CHAIN_ID,
            suite: hutong_core::testkit::SUITE,
            height: head.header.height + 1,
            time: head.header.time + 1_000,
        };

        // The same calls execute makes, timed apart (their results are thrown away).
        let references: Vec<&Transaction> = transactions.iter().collect();
        let started = thread_cpu();
        let results = rules::check_signatures(&store, &context, &references);
        signatures += thread_cpu().saturating_sub(started);
        assert!(results.iter().all(Result::is_ok));
        let started = thread_cpu();
        let mut overlay = Overlay::new(&store);
        rules::begin_block(&mut overlay, &context).expect("begin block");
        for transaction in &transactions {
            rules::apply_transaction(
                &mut overlay,
                &context,
                transaction,
                transaction.id(hutong_core::testkit::SUITE),
            )
            .expect("applies");
        }
        rules_time += thread_cpu().saturating_sub(started);
        drop(overlay);

        let started = thread_cpu();
        let execution = store
            .execute(
                context.time,
                fixture.node_keys[0].public_key(),
                transactions,
                Mode::Verify,
            )
            .expect("executes");
        execute += thread_cpu().saturating_sub(started);
        let certificate = fixture.certify(&execution.header);
        let (started, started_wall) = (thread_cpu(), Instant::now());
        store.commit(execution, certificate).expect("commits");
        commit += thread_cpu().saturating_sub(started);
        commit_wall += started_wall.elapsed();
    }
    let wall_seconds = wall_before.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_seconds() - cpu_before;
    let transactions = (profile_blocks * BLOCK_TRANSACTIONS) as f64;
    let per_transaction_us = |duration: Duration| duration.as_secs_f64() * 1e6 / transactions;
    let tree_and_log = execute.saturating_sub(signatures + rules_time);
    println!(
        "profile of {profile_blocks} blocks of {BLOCK_TRANSACTIONS} issuances on redb (synced), CPU time of the thread per transaction:"
    );
    println!(
        "  signature check {:.1} us, rules {:.1} us, tree + log + ids {:.1} us (execute {:.1} us), commit {:.1} us; total {:.1} us = {:.0} tx/s on one core",
        per_transaction_us(signatures),
        per_transaction_us(rules_time),
        per_transaction_us(tree_and_log),
        per_transaction_us(execute),
        per_transaction_us(commit),
        per_transaction_us(execute + commit),
        transactions / (execute + commit).as_secs_f64(),
    );
    println!(
        "  commit by the wall clock (the sync's wait for the disk and any wait for a core included): {:.1} us per transaction, {:.1} ms per block",
        per_transaction_us(commit_wall),
        commit_wall.as_secs_f64() * 1e3 / profile_blocks as f64,
    );
    println!(
        "  store writes per transaction {:.2}, bytes written per transaction {:.0}, disk bytes after {} transactions: {}",
        writes.load(Ordering::Relaxed) as f64 / transactions,
        bytes.load(Ordering::Relaxed) as f64 / transactions,
        transactions,
        store.disk_bytes().expect("disk bytes"),
    );
    let kinds: Vec<String> = by_prefix
        .lock()
        .expect("counter lock")
        .iter()
        .map(|(prefix, (count, bytes))| {
            format!(
                "{}: {:.3} writes, {:.0} bytes",
                char::from(*prefix),
                *count as f64 / transactions,
                *bytes as f64 / transactions
            )
        })
        .collect();
    println!("  per transaction by kind: {}", kinds.join("; "));
    println!(
        "  the profile loop (signing and the phases above timed twice included) used {cpu_seconds:.2} s of CPU in {wall_seconds:.2} s: on a loaded machine the wall-clock figures above stretch by about their ratio ({:.2})",
        wall_seconds / cpu_seconds.max(1e-9),
    );
}

/// CPU time (user and system) the process used so far, from `/proc/self/stat` (Linux; 0
/// elsewhere), so that a profile taken while other work shares the machine can tell waiting
/// for a core from working.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The command name (field 2) is in parentheses and may hold spaces; fields 14 and 15,
    // utime and stime in clock ticks, follow it.
    let Some(after_name) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the name, field 3 (state) is at index 0, so utime (14) and stime (15) are at 11
    // and 12. Linux reports them in USER_HZ, which is 100 on every architecture it supports.
    (ticks(11) + ticks(12)) / 100.0
}

fn configured() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8))
}

fn benches(c: &mut Criterion) {
    profile();
    apply_block(c);
}

criterion_group! {
    name = apply;
    config = configured();
    targets = benches
}
criterion_main!(apply);
