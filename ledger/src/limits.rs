//! Every bound of the block store and the audit, in one place: caches, journal sweeps, scans,
//! pages, threads and export lines. The limits of records, transactions and blocks are the
//! core's (`hutong_core::limits`); these relate to them as asserted below.

use hutong_core::limits as core_limits;

/// Most transactions handed to [`crate::audit::preverify`] at once by [`crate::audit::audit`].
pub const CHUNK_TRANSACTIONS: usize = 8_192;
/// Most blocks handed to [`crate::audit::preverify`] at once by [`crate::audit::audit`].
pub const CHUNK_BLOCKS: usize = 256;
/// Chunks in flight between two stages of [`crate::audit::audit`].
pub const CHUNKS_IN_FLIGHT: usize = 2;
/// Most verifier threads [`crate::audit::preverify`] starts.
pub const THREADS_MAX: usize = 64;

/// Most bytes of one line of an NDJSON export: a block at its size limit, in JSON (every
/// byte of a hash or signature is two hexadecimal characters, and field names repeat), and
/// its certificate.
pub const EXPORT_LINE_BYTES_MAX: usize = 4 * core_limits::BLOCK_BYTES_MAX + (1 << 20);

/// Most keys the directory keeps per authority (older guesses are dropped).
pub const DIRECTORY_KEYS_MAX: usize = 64;

/// Licences read per page while a report scans the state.
pub const REPORT_PAGE: usize = 1_024;

/// Most signatures remembered as verified: a few seconds of admissions at the target rate,
/// more than the mempool holds between its check and the block that carries the transaction.
/// About 8 MiB at the limit (two copies of a 32-byte digest per entry, plus the set's slots).
pub const VERIFIED_SIGNATURES_MAX: usize = 1 << 17;

/// Most recognitions read for one verdict.
pub const RECOGNITIONS_SCAN_MAX: usize = 10_000;

/// redb's page cache; it grows to this as pages are read or written, no further.
pub const REDB_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// Headers below the head whose hash links are checked each time a store is opened: at most
/// this many header reads (a header is a few hundred bytes) whatever the chain's length,
/// which catches damage near the head on an engine without page checksums (sled). No more
/// than the batches a journal sweep waits for ([`JOURNAL_SWEEP_BATCHES`]), so the check costs
/// less than replaying a full journal at the same opening.
pub const OPEN_CHAIN_CHECK_BLOCKS: u64 = 256;

/// Entries read per engine call while replaying the journal (each may be megabytes).
pub const REPLAY_PAGE: usize = 16;

/// The journal's default sweep threshold in bytes held (ADR 0015): the more a sweep gathers,
/// the more keys share each engine page it rewrites.
pub const JOURNAL_SWEEP_BYTES: usize = 64 * 1024 * 1024;
/// The journal's default sweep threshold in batches journaled, however small.
pub const JOURNAL_SWEEP_BATCHES: u64 = 4096;
/// How many commits one sweep is spread over by default.
pub const JOURNAL_SWEEP_STEPS: u32 = 16;
/// The journal's default bound on the bytes it holds in memory; past it a write folds
/// everything ahead of the sweep at once.
pub const JOURNAL_HELD_BYTES_MAX: usize = 256 * 1024 * 1024;

const _: () = {
    // An export line holds a block at its size limit, written as JSON.
    assert!(EXPORT_LINE_BYTES_MAX > 2 * core_limits::BLOCK_BYTES_MAX);
    // A sweep starts before the journal reaches its bound, with room for one more block.
    assert!(JOURNAL_SWEEP_BYTES + core_limits::BLOCK_BYTES_MAX <= JOURNAL_HELD_BYTES_MAX);
    assert!(JOURNAL_SWEEP_STEPS >= 1 && JOURNAL_SWEEP_BATCHES >= 1);
    // The chain check at opening reads the head's neighbourhood, not the chain.
    assert!(OPEN_CHAIN_CHECK_BLOCKS >= 1 && OPEN_CHAIN_CHECK_BLOCKS <= JOURNAL_SWEEP_BATCHES);
    // The audit's pipeline moves something at each stage.
    assert!(CHUNK_TRANSACTIONS >= 1 && CHUNK_BLOCKS >= 1 && CHUNKS_IN_FLIGHT >= 1);
    // The verified-signature memory spans more than one block of signatures.
    assert!(VERIFIED_SIGNATURES_MAX >= core_limits::BLOCK_TRANSACTIONS_MAX);
};
