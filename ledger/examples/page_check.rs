//! What redb's page check costs at opening (`PageCheck::Full`, ADR 0019): a redb file of about
//! the given size is filled with values of store-like sizes (key order scattered by a
//! deterministic generator), then opened with and without the page check, each twice in turn,
//! and the best times printed as one line of JSON. The file was just written, so its pages are
//! in the operating system's cache: a first start after a reboot adds the time the disk takes
//! to read the file once.
//!
//!     cargo run --release -p hutong-ledger --example page_check -- <dir> [mebibytes]
//!
//! `<dir>` must not hold a store; 1,024 MiB by default.

use std::path::Path;
use std::time::Instant;

use hutong_ledger::store::{Backend, Durability, PageCheck, REDB_FILE, RedbBackend};

/// Values of the sizes a store writes most (state-tree pages, records, transactions).
const VALUE_BYTES: usize = 600;
/// Writes per batch while filling.
const BATCH_WRITES: usize = 20_000;

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        return Err("usage: page_check <dir> [mebibytes]".into());
    };
    let mebibytes: u64 = match args.get(2) {
        Some(text) => text.parse()?,
        None => 1024,
    };
    let dir = Path::new(dir);
    if dir.join(REDB_FILE).exists() {
        return Err(format!("{} already holds a store", dir.display()).into());
    }
    let target_bytes = mebibytes * 1024 * 1024;
    let fill_started = Instant::now();
    {
        let backend = RedbBackend::open_with(dir, Durability::Unsynced)?;
        // splitmix64: deterministic keys spread over the key space.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        while backend.disk_bytes()? < target_bytes {
            let batch = (0..BATCH_WRITES)
                .map(|_| {
                    let key = next().to_be_bytes().to_vec();
                    let value = vec![(next() & 0xff) as u8; VALUE_BYTES];
                    (key, Some(value))
                })
                .collect();
            backend.write(batch)?;
        }
    }
    // One synced commit, so that the file is what a node would have left.
    drop(RedbBackend::open_with(dir, Durability::Synced)?);
    let fill_seconds = fill_started.elapsed().as_secs_f64();
    let size_bytes = std::fs::metadata(dir.join(REDB_FILE))?.len();
    let mut timings = Vec::new();
    for check in [
        PageCheck::None,
        PageCheck::Full,
        PageCheck::None,
        PageCheck::Full,
    ] {
        let started = Instant::now();
        drop(RedbBackend::open_checked(dir, Durability::Synced, check)?);
        timings.push((check, started.elapsed().as_secs_f64()));
    }
    let full: Vec<f64> = timings
        .iter()
        .filter(|(check, _)| *check == PageCheck::Full)
        .map(|(_, seconds)| *seconds)
        .collect();
    let plain: Vec<f64> = timings
        .iter()
        .filter(|(check, _)| *check == PageCheck::None)
        .map(|(_, seconds)| *seconds)
        .collect();
    let best = |times: &[f64]| times.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "{{\"size_bytes\":{size_bytes},\"fill_seconds\":{fill_seconds:.1},\"open_seconds\":{:.3},\"open_with_page_check_seconds\":{:.3},\"page_check_mib_per_second\":{:.0}}}",
        best(&plain),
        best(&full),
        size_bytes as f64 / (1024.0 * 1024.0) / (best(&full) - best(&plain)).max(1e-6),
    );
    Ok(())
}
