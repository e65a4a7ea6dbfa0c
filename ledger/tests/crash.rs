//! Crash consistency of the block store, on each engine (redb and sled): a writer process commits blocks and reports
//! each one after `commit` returns; it is killed with SIGKILL at a random moment (mid-block,
//! mid-write, between blocks); the store is reopened and must (1) open without complaint,
//! (2) hold every block the writer reported, and (3) be exactly what replaying its blocks
//! from genesis gives: same state root, same log root, same block hashes.
//!
//! Reproduce a run with `HUTONG_CRASH_SEED=<seed> cargo test -p hutong-ledger --test crash`
//! (add the test's name to run one engine); `HUTONG_CRASH_ROUNDS` sets how many kills per
//! engine (default 8).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hutong_core::hash::Hash32;
use hutong_core::records::AuthorityId;
use hutong_core::testkit::{self, CHAIN_ID, Fixture, GENESIS_TIME};
use hutong_core::tx::{Transaction, TxPayload};
use hutong_ledger::store::{
    Durability, Engine, JournalLimits, Journaled, MemoryBackend, Mode, Store,
};

const TRANSACTIONS_PER_BLOCK: u64 = 100;
const CHILD_BLOCKS_MAX: u64 = 400;
const JOURNAL_LIMITS: JournalLimits = JournalLimits {
    sweep_bytes: 1024 * 1024,
    sweep_batches: 5,
    sweep_steps: 3,
    held_bytes_max: 4 * 1024 * 1024,
};

fn block_transactions(fixture: &Fixture, height: u64) -> Vec<Transaction> {
    (0..TRANSACTIONS_PER_BLOCK)
        .map(|index| {
            let number = height * 1000 + index;
            let payload = TxPayload {
                chain_id: CHAIN_ID.into(),
                signer: AuthorityId::from("qd-approval"),
                // One signer's nonces follow one another across blocks.
                nonce: (height - 1) * TRANSACTIONS_PER_BLOCK + index + 1,
                created_at: GENESIS_TIME,
                body: testkit::business_licence_body("370200", number),
            };
            fixture.sign(payload, &["qd-approval"])
        })
        .collect()
}

fn commit_next(store: &Store, fixture: &Fixture) -> (u64, Hash32) {
    let height = store.height().unwrap() + 1;
    let execution = store
        .execute(
            GENESIS_TIME + height * 1000,
            fixture.node_keys[0].public_key(),
            block_transactions(fixture, height),
            Mode::Verify,
        )
        .unwrap();
    let header = execution.header.clone();
    let block = store.commit(execution, fixture.certify(&header)).unwrap();
    (height, block.hash(hutong_core::testkit::SUITE))
}

/// The writer: runs only when the parent test starts it with HUTONG_CRASH_DIR set.
#[test]
#[ignore = "started by the crash_at_random_points tests"]
fn crash_child_writer() {
    let Ok(dir) = std::env::var("HUTONG_CRASH_DIR") else {
        return;
    };
    let engine: Engine = std::env::var("HUTONG_CRASH_ENGINE")
        .unwrap()
        .parse()
        .unwrap();
    let fixture = Fixture::new();
    let path = std::path::Path::new(&dir);
    // The store's journal with small limits, so that kills also land before, during and
    // after its folds (a sweep of three steps every few blocks here; the parent reopens with the
    // default limits).
    let journaled = || {
        Box::new(
            Journaled::open(
                engine.open_direct(path, Durability::Synced).unwrap(),
                JOURNAL_LIMITS,
            )
            .unwrap(),
        )
    };
    let store = match Store::open_with(journaled()) {
        Ok(store) => store,
        Err(hutong_ledger::store::StoreError::Uninitialised) => {
            Store::create_with(journaled(), &fixture.genesis).unwrap()
        }
        Err(error) => panic!("writer could not open the store: {error}"),
    };
    use std::io::Write;
    let stdout = std::io::stdout();
    for _ in 0..CHILD_BLOCKS_MAX {
        let (height, hash) = commit_next(&store, &fixture);
        let mut out = stdout.lock();
        writeln!(out, "committed {height} {hash}").unwrap();
        out.flush().unwrap();
    }
}

/// A small deterministic generator (splitmix64) so that every random choice follows the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[test]
fn crash_at_random_points_keeps_every_reported_block_on_redb() {
    crash_at_random_points(Engine::Redb);
}

#[test]
fn crash_at_random_points_keeps_every_reported_block_on_sled() {
    crash_at_random_points(Engine::Sled);
}

fn crash_at_random_points(engine: Engine) {
    let seed: u64 = std::env::var("HUTONG_CRASH_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos() as u64)
                .unwrap_or(1)
        });
    let rounds: u64 = std::env::var("HUTONG_CRASH_ROUNDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(8);
    eprintln!(
        "crash test on {engine}, seed {seed}: reproduce with HUTONG_CRASH_SEED={seed} cargo test -p hutong-ledger --test crash"
    );
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let fixture = Fixture::new();
    let mut reported: Vec<(u64, Hash32)> = Vec::new();
    let executable = std::env::current_exe().unwrap();

    for round in 0..rounds {
        let mut child = Command::new(&executable)
            .args([
                "--exact",
                "crash_child_writer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("HUTONG_CRASH_DIR", dir.path())
            .env("HUTONG_CRASH_ENGINE", engine.name())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split_whitespace();
                if parts.next() == Some("committed") {
                    let height: u64 = parts.next().unwrap().parse().unwrap();
                    let hash: Hash32 = parts.next().unwrap().parse().unwrap();
                    lines.push((height, hash));
                }
            }
            lines
        });
        // Let it commit a few blocks first, then kill it at a random moment.
        let delay_ms = 150 + rng.next() % 900;
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        eprintln!(
            "{engine} round {round}: killed after {} ms, writer reported {} blocks",
            started.elapsed().as_millis(),
            lines.len()
        );
        reported.extend(lines);

        let store = Store::open_engine(dir.path(), engine).unwrap_or_else(|error| {
            panic!("{engine} seed {seed} round {round}: store does not reopen: {error}")
        });
        let head = store.head().unwrap();
        if let Some((height, hash)) = reported.last() {
            assert!(
                head.header.height >= *height,
                "{engine} seed {seed} round {round}: block {height} was reported committed but the store is at {}",
                head.header.height
            );
            for (height, hash_reported) in &reported {
                assert_eq!(
                    store
                        .header(*height)
                        .unwrap()
                        .map(|header| header.hash(hutong_core::testkit::SUITE))
                        .as_ref(),
                    Some(hash_reported),
                    "{engine} seed {seed}: block {height} changed or vanished"
                );
            }
            let _ = hash;
        }
        drop(store);
    }

    // Replay every stored block from genesis in memory: same roots, same hashes.
    assert_eq!(Engine::found_in(dir.path()), Some(engine));
    let store = Store::open_engine(dir.path(), engine).unwrap();
    let replay = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
    let height = store.height().unwrap();
    for h in 1..=height {
        let block = store
            .block(h)
            .unwrap()
            .unwrap_or_else(|| panic!("{engine} seed {seed}: block {h} missing"));
        let execution = replay.verify_block(&block).unwrap();
        replay.commit(execution, block.certificate.clone()).unwrap();
    }
    assert_eq!(
        replay.head().unwrap(),
        store.head().unwrap(),
        "{engine} seed {seed}: replay differs"
    );
    assert!(
        height > 0,
        "{engine} seed {seed}: the writer never committed a block"
    );
}
