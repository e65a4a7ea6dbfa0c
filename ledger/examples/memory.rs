//! Resident memory of a store of a million licences: while the store is built (blocks of
//! 5,000 issuances, executed and committed as a node does), then in a fresh process after
//! opening it, after point reads, and while applying more blocks. Memory is the process's
//! `VmRSS` (resident now) and `VmHWM` (the peak so far) from `/proc/self/status` (Linux).
//!
//!     cargo run --release -p hutong-ledger --example memory -- build <dir> [licences]
//!     cargo run --release -p hutong-ledger --example memory -- use <dir> [licences]
//!
//! `build` creates the store in `<dir>` (which must not hold one) with `licences` licences
//! (1,000,000 by default); `use` opens it in a new process, reads 100,000 licences and their
//! verdicts at random, then applies 20 blocks of 1,000 issuances. `HUTONG_BENCH_ENGINE=sled`
//! runs either on sled instead of redb.

use std::path::Path;
use std::time::Instant;

use hutong_core::records::{AuthorityId, LicenceNumber, TypeCode};
use hutong_core::testkit::{self, CHAIN_ID, Fixture, GENESIS_TIME};
use hutong_core::tx::{Transaction, TxPayload};
use hutong_ledger::store::{Engine, Mode, Store};

const ISSUER: &str = "qd-approval";
const REGION: &str = "370200";
const BUILD_BLOCK: u64 = 5_000;
const USE_BLOCK: u64 = 1_000;
const USE_BLOCKS: u64 = 20;
const READS: u64 = 100_000;

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: memory build|use <dir> [licences]";
    let (Some(mode), Some(dir)) = (args.get(1), args.get(2)) else {
        return Err(usage.into());
    };
    let licences: u64 = match args.get(3) {
        Some(text) => text.parse()?,
        None => 1_000_000,
    };
    let engine: Engine = match std::env::var("HUTONG_BENCH_ENGINE") {
        Ok(name) => name.parse()?,
        Err(_) => Engine::default(),
    };
    let dir = Path::new(dir);
    report(&format!("start ({engine})"));
    match mode.as_str() {
        "build" => build(dir, engine, licences),
        "use" => use_store(dir, engine, licences),
        _ => Err(usage.into()),
    }
}

/// `VmRSS` and `VmHWM` in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn report(what: &str) {
    let (rss, hwm) = memory();
    println!("{what}: VmRSS {rss:.0} MiB, VmHWM {hwm:.0} MiB");
}

/// Issuance `number` (numbers start at 1; the nonce is the number, so it always increases).
fn issuance(fixture: &Fixture, number: u64) -> Transaction {
    let payload = TxPayload {
        chain_id: CHAIN_ID.into(),
        signer: AuthorityId::from(ISSUER),
        nonce: number,
        created_at: GENESIS_TIME,
        body: testkit::business_licence_body(REGION, number),
    };
    fixture.sign(payload, &[ISSUER])
}

/// Applies issuances `first..=last` as one block.
fn apply(store: &Store, fixture: &Fixture, first: u64, last: u64) -> Result<(), Failure> {
    let transactions: Vec<Transaction> = (first..=last)
        .map(|number| issuance(fixture, number))
        .collect();
    let time = store.head()?.header.time + 1_000;
    let execution = store.execute(
        time,
        fixture.node_keys[0].public_key(),
        transactions,
        Mode::Verify,
    )?;
    let certificate = fixture.certify(&execution.header);
    store.commit(execution, certificate)?;
    Ok(())
}

fn build(dir: &Path, engine: Engine, licences: u64) -> Result<(), Failure> {
    let fixture = Fixture::new();
    let store = Store::create_engine(dir, engine, &fixture.genesis)?;
    report("created");
    let started = Instant::now();
    let mut number = 1;
    while number <= licences {
        let last = (number + BUILD_BLOCK - 1).min(licences);
        apply(&store, &fixture, number, last)?;
        if last.is_multiple_of(100_000) || last == licences {
            report(&format!(
                "applying blocks: {last} licences after {:.0} s",
                started.elapsed().as_secs_f64()
            ));
        }
        number = last + 1;
    }
    println!(
        "disk: {} bytes ({:.0} per licence)",
        store.disk_bytes()?,
        store.disk_bytes()? as f64 / licences as f64
    );
    Ok(())
}

fn use_store(dir: &Path, engine: Engine, licences: u64) -> Result<(), Failure> {
    let fixture = Fixture::new();
    let started = Instant::now();
    let store = Store::open_engine(dir, engine)?;
    report(&format!(
        "opened a store of {licences} licences at height {} in {:.2} s",
        store.height()?,
        started.elapsed().as_secs_f64()
    ));
    let code = TypeCode::from("business-licence");
    // splitmix64: the same numbers on every run.
    let mut state = 7u64;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let started = Instant::now();
    for _ in 0..READS {
        let number = LicenceNumber(testkit::uscc(REGION, 1 + next() % licences).to_string());
        let found = store.licence(&code, &number)?.is_some()
            && store.verdict(&code, &number, None, GENESIS_TIME)?.is_some();
        if !found {
            return Err(format!("licence {number} is missing").into());
        }
    }
    report(&format!(
        "after {READS} random licence and verdict reads ({:.1} us a pair)",
        started.elapsed().as_secs_f64() * 1e6 / READS as f64
    ));
    for block in 0..USE_BLOCKS {
        let first = licences + 1 + block * USE_BLOCK;
        apply(&store, &fixture, first, first + USE_BLOCK - 1)?;
    }
    report(&format!(
        "after applying {USE_BLOCKS} blocks of {USE_BLOCK} issuances"
    ));
    Ok(())
}
