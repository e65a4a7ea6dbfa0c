//! The audit engine's speed from an export file: builds a chain of blocks of 1,000
//! business-licence issuances (signed, executed, certified and committed by a store on the
//! in-memory engine), writes it as an NDJSON export with its genesis file, then re-verifies the
//! file from genesis with `audit::audit` (reading and parsing the lines included) and reports
//! transactions per second, once per number of signature threads.
//!
//! `cargo bench -p hutong-ledger --bench audit`
//!
//! `HUTONG_AUDIT_BENCH_BLOCKS` sets the number of blocks (default 100);
//! `HUTONG_AUDIT_BENCH_DIR` keeps the files in that directory (default: a temporary one), so
//! that `hutong audit --export DIR/export.ndjson --genesis DIR/genesis.json` can be timed on
//! the same chain.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use hutong_core::testkit::{Fixture, GENESIS_TIME};
use hutong_ledger::audit::{self, AuditOptions, ExportLine, parse_export_line};
use hutong_ledger::store::{MemoryBackend, Mode, PreparedTransactions, Store};

const BLOCK_TRANSACTIONS: u64 = 1_000;

fn main() {
    // `cargo bench` passes `--bench`; a filter argument would be ignored.
    let blocks: u64 = std::env::var("HUTONG_AUDIT_BENCH_BLOCKS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(100);
    let temporary = tempfile::tempdir().expect("temporary directory");
    let dir = std::env::var("HUTONG_AUDIT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| temporary.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("bench directory");
    let genesis_path = dir.join("genesis.json");
    let export_path = dir.join("export.ndjson");

    let mut fixture = Fixture::new();
    if std::env::var("HUTONG_AUDIT_BENCH_REUSE").is_ok() && export_path.exists() {
        // The fixture is deterministic: the same genesis, the same chain.
        measure(&fixture, &export_path);
        return;
    }
    std::fs::write(&genesis_path, fixture.genesis.to_json()).expect("genesis file");
    let store = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
    let proposer = fixture.node_keys[0].public_key();
    let mut out = BufWriter::new(std::fs::File::create(&export_path).expect("export file"));
    let started = Instant::now();
    for height in 1..=blocks {
        let transactions = (0..BLOCK_TRANSACTIONS)
            .map(|index| {
                let number = height * BLOCK_TRANSACTIONS + index;
                fixture.issue_business_licence("qd-approval", "370200", number)
            })
            .collect();
        let execution = store
            .execute(
                GENESIS_TIME + height * 1_000,
                proposer,
                transactions,
                Mode::Verify,
            )
            .unwrap();
        let certificate = fixture.certify(&execution.header);
        let block = store.commit(execution, certificate).unwrap();
        out.write_all(
            ExportLine::of(hutong_core::testkit::SUITE, block)
                .to_json()
                .as_bytes(),
        )
        .unwrap();
        out.write_all(b"\n").unwrap();
    }
    out.flush().unwrap();
    drop(out);
    let size = std::fs::metadata(&export_path).unwrap().len();
    let total = blocks * BLOCK_TRANSACTIONS;
    println!(
        "built {blocks} blocks, {total} transactions in {:.1} s; export {} bytes ({} per transaction)",
        started.elapsed().as_secs_f64(),
        size,
        size / total.max(1)
    );
    println!(
        "files: {} {}",
        genesis_path.display(),
        export_path.display()
    );
    measure(&fixture, &export_path);
}

fn measure(fixture: &Fixture, export_path: &std::path::Path) {
    profile(fixture, export_path);

    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    for threads in [1, cores.max(2)] {
        let file = std::fs::File::open(export_path).unwrap();
        let reader = BufReader::with_capacity(1 << 20, file);
        let lines = reader.split(b'\n').enumerate().map(|(index, line)| {
            let line = line.expect("read");
            parse_export_line(&line, index as u64 + 1)
        });
        let started = Instant::now();
        let cpu = cpu_seconds();
        let auditor = audit::audit(
            &fixture.genesis,
            lines,
            AuditOptions {
                threads,
                ..AuditOptions::default()
            },
            &mut |_| {},
        )
        .expect("the chain verifies");
        let seconds = started.elapsed().as_secs_f64();
        let summary = auditor.summary();
        let cpu = cpu_seconds() - cpu;
        println!(
            "audit, {threads} signature thread(s) beside execution: {} transactions in {seconds:.2} s: {:.0} tx/s ({:.1} us of CPU per transaction)",
            summary.transactions,
            summary.transactions as f64 / seconds,
            cpu * 1e6 / summary.transactions as f64
        );
    }
}

/// CPU time the process has used so far, in seconds (Linux: user and system time from
/// `/proc/self/stat`, in clock ticks of 10 ms); 0 where it cannot be read.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The fields after the command name (which ends with the last ')').
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// Times the stages apart, one after the other: reading and parsing the lines, preparing the
/// transactions (a copy to execute, encodings, ids, leaf hashes), checking the signatures
/// ahead (one thread), and executing with every signature already checked. The pipeline runs
/// the second and third on the verifier thread, the last on the execution thread. Wall time
/// on a shared machine depends on the load; CPU time does not.
fn profile(fixture: &Fixture, export_path: &std::path::Path) {
    let cpu = cpu_seconds();
    let started = Instant::now();
    let file = std::fs::File::open(export_path).unwrap();
    let sources: Vec<_> = BufReader::with_capacity(1 << 20, file)
        .split(b'\n')
        .enumerate()
        .map(|(index, line)| parse_export_line(&line.unwrap(), index as u64 + 1).unwrap())
        .collect();
    let parse = started.elapsed().as_secs_f64();
    let parse_cpu = cpu_seconds() - cpu;
    let cpu = cpu_seconds();
    let transactions: usize = sources
        .iter()
        .map(|source| source.block.transactions.len())
        .sum();
    let started = Instant::now();
    let prepared: Vec<PreparedTransactions> = sources
        .iter()
        .map(|source| {
            PreparedTransactions::new(
                hutong_core::testkit::SUITE,
                source.block.transactions.clone(),
            )
        })
        .collect();
    let prepare = started.elapsed().as_secs_f64();
    let prepare_cpu = cpu_seconds() - cpu;
    let cpu = cpu_seconds();
    let started = Instant::now();
    let mut directory = audit::KeyDirectory::from_genesis(&fixture.genesis);
    let verified = audit::preverify_prepared(
        sources.iter().map(|source| &source.block).zip(&prepared),
        &mut directory,
        1,
    );
    let signatures = started.elapsed().as_secs_f64();
    let signatures_cpu = cpu_seconds() - cpu;
    let cpu = cpu_seconds();
    assert_eq!(verified.len(), transactions);
    let started = Instant::now();
    let mut auditor = audit::Auditor::new(&fixture.genesis).unwrap();
    for (source, prepared) in sources.iter().zip(prepared) {
        auditor
            .verify_prepared(source, prepared, &verified)
            .unwrap();
    }
    let execute = started.elapsed().as_secs_f64();
    let execute_cpu = cpu_seconds() - cpu;
    let per = |seconds: f64| seconds * 1e6 / transactions as f64;
    println!(
        "profile per transaction, wall (CPU): parse {:.1} us ({:.1}), prepare {:.1} us ({:.1}), signatures {:.1} us ({:.1}), execute {:.1} us ({:.1})",
        per(parse),
        per(parse_cpu),
        per(prepare),
        per(prepare_cpu),
        per(signatures),
        per(signatures_cpu),
        per(execute),
        per(execute_cpu)
    );
}
