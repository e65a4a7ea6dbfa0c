//! Every size and count the ledger accepts, in one place.
//!
//! A transaction is checked against [`TX_BYTES_MAX`] before a single byte of it is decoded,
//! and against the rest right after decoding, before any rule looks at it. Blocks are bounded
//! by [`BLOCK_TRANSACTIONS_MAX`] and [`BLOCK_BYTES_MAX`]. The relations between the limits are
//! asserted at compile time below, so that changing one cannot silently break another.

/// Largest canonical encoding of one signed transaction.
pub const TX_BYTES_MAX: usize = 32 * 1024;
/// Longest chain id (it is also length-prefixed with one byte in signed messages).
pub const CHAIN_ID_BYTES_MAX: usize = 64;
/// Longest identifier of an authority, a licence type, or a licence number.
pub const IDENTIFIER_BYTES_MAX: usize = 64;
/// Longest name (Chinese or English) of an authority, a licence type or a field.
pub const NAME_BYTES_MAX: usize = 256;
/// Longest free text: a reason, a scope of use, an objection, a resolution note.
pub const TEXT_BYTES_MAX: usize = 2 * 1024;
/// Longest value of one public face field.
pub const FIELD_VALUE_BYTES_MAX: usize = 2 * 1024;
/// Most face fields in one licence type's schema, and so in one licence.
pub const FIELDS_PER_TYPE_MAX: usize = 64;
/// Most signatures on one transaction (a governance record signed by every governor).
pub const SIGNATURES_PER_TX_MAX: usize = 64;
/// Most governors the registry may hold (every one of them may sign one record).
pub const GOVERNORS_MAX: usize = SIGNATURES_PER_TX_MAX;
/// Most nodes (validators and observers) in the registry.
pub const NODES_MAX: usize = 256;
/// Most node changes in one `ChangeValidators` record.
pub const NODE_CHANGES_PER_TX_MAX: usize = 64;
/// Most keys an authority has had (rotations are rare; the history is kept whole).
pub const KEYS_PER_AUTHORITY_MAX: usize = 64;
/// How far ahead an authority may schedule the rotation of its own key, in blocks (about an
/// hour and a quarter at a block a second). Long enough for a department to hand a new key to
/// its staff; short enough that a stolen key cannot lock the governors out with a rotation of
/// its own that never comes due (ADR 0031).
pub const SELF_ROTATION_DELAY_BLOCKS_MAX: u64 = 4_096;
/// How far ahead the governors' rotation or compromise report ends the keys it replaces, in
/// blocks: at the next block, so that a stolen key signs nothing after the block that records
/// the governors' decision (ADR 0031).
pub const GOVERNOR_ROTATION_DELAY_BLOCKS_MAX: u64 = 1;
/// Most periods one grant may have been in force: each issuance grant opens one, and a
/// revocation closes it. Grants are given and withdrawn by governance decisions, a few in a
/// department's lifetime; a grant revoked and given again every year for sixty years fits.
pub const GRANT_PERIODS_MAX: usize = 64;
/// Most status changes, amendments and annotations recorded on one licence. A licence
/// inspected every year for a century stays well inside it.
pub const EVENTS_PER_LICENCE_MAX: usize = 1024;
/// Most pledges or mortgages registered and not yet released on one licence.
pub const OPEN_PLEDGES_PER_LICENCE_MAX: usize = 64;
/// Most objections open on one licence at once, whoever filed them. Each filer holds at
/// most one of them, and the filers of one region at most
/// [`OPEN_OBJECTIONS_PER_REGION_MAX`], so that at least four regions' filers find room.
pub const OPEN_OBJECTIONS_PER_LICENCE_MAX: usize = 16;
/// Most objections open on one licence at once filed by the departments of one region (a
/// province, or the nation): a quarter of [`OPEN_OBJECTIONS_PER_LICENCE_MAX`], so that one
/// region's filers, however many, cannot take the slots of the others (ADR 0034).
pub const OPEN_OBJECTIONS_PER_REGION_MAX: usize = 4;
/// Most objections one licence records over its life, open and resolved: the licence keeps a
/// mark of each so that a verdict at a past time shows those open then (ADR 0034). As many as
/// a full set of open objections renewed every year for sixteen years; at most
/// [`EVENTS_PER_LICENCE_MAX`].
pub const OBJECTIONS_PER_LICENCE_MAX: usize = 256;
/// Fewest days between the annual inspections a licence type may require (ADR 0033).
pub const ANNUAL_INSPECTION_DAYS_MIN: u64 = 1;
/// Most days between the annual inspections a licence type may require: ten years, the
/// longest interval an inspection regime called annual is stretched to.
pub const ANNUAL_INSPECTION_DAYS_MAX: u64 = 3_660;
/// How long before the block time a new licence's validity may start: fifty years, so that
/// the paper licences of departments converted to the ledger (存量证照转化) keep their own
/// start, while a start at 1970 (a zero left in the field) is refused (ADR 0033).
pub const LICENCE_BACKDATING_MS_MAX: u64 = 18_263 * DAY_MS;
/// How long after the block time a new licence's validity may start: a year, for a licence
/// issued ahead of the day it takes effect. Longer would be a licence nobody can check yet.
pub const LICENCE_SCHEDULING_MS_MAX: u64 = 366 * DAY_MS;
/// How long before the block time a transaction may have been made: three years, far more
/// than collecting the governors' signatures on a governance record or a signer's queue of
/// waiting transactions takes. A transaction made at 0 (1970), a field left empty, is refused
/// (ADR 0033).
pub const TX_AGE_MS_MAX: u64 = 3 * 366 * DAY_MS;
/// Most licences one `transfer_licences` hands to a successor: a department's licences are
/// handed over in batches of this many, so that one transaction stays far below
/// [`TX_BYTES_MAX`] (256 numbers of at most [`IDENTIFIER_BYTES_MAX`] bytes are 16 KiB) and one
/// block's writes stay bounded (ADR 0035).
pub const TRANSFER_LICENCES_MAX: usize = 256;
/// One day in milliseconds, the unit the limits on licence times are counted in.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;
/// Most licence types one recognition attestation may name.
pub const TYPES_PER_RECOGNITION_MAX: usize = 64;
/// Most recognitions one [`crate::records::RecognitionSet`] holds (a region's recognitions of
/// one licence type, ADR 0039). An attestation that finds the set full first drops the entries
/// that have ended; if it is still full, it is refused. A bundle carries every entry about its
/// licence, so this bounds a bundle too.
pub const RECOGNITIONS_PER_SET_MAX: usize = 64;
/// Most entries of one recognizer in one set: half of [`RECOGNITIONS_PER_SET_MAX`], so that one
/// department (or a thief with its key) cannot fill a region's set and keep the others' out.
/// It is one attestation for each of the 31 provincial issuing regions, and one more for the
/// nation's licences.
pub const RECOGNITIONS_PER_RECOGNIZER_IN_SET_MAX: usize = RECOGNITIONS_PER_SET_MAX / 2;
/// Most licences one holder's list holds (一照通查, ADR 0039); an issuance beyond it is refused,
/// so that the list a verifier is shown is never cut short.
pub const LICENCES_PER_HOLDER_MAX: usize = 512;
/// Most change orders pending on the validator set at once.
pub const PENDING_VALIDATOR_CHANGES_MAX: usize = 16;
/// How far ahead a validator-set change may be scheduled, in blocks.
pub const VALIDATOR_CHANGE_DELAY_BLOCKS_MAX: u64 = 1_000_000;

/// How far before the block time an event may be dated (a status change, an amendment, a
/// recognition's start or its withdrawal): 30 days. The SAMR plan allows seven working days
/// from an event to its sharing, which a long holiday stretches to about three weeks, and the
/// departments' data quality is assessed month by month (ADR 0032); an event older than this
/// enters only through the governors' `correct_event`. Larger than
/// [`TX_CLOCK_SKEW_MS_MAX`], so that a transaction signed at its limit can be dated when it
/// was signed.
pub const EVENT_BACKDATING_MS_MAX: u64 = 30 * DAY_MS;
/// How far after the block time an event may be dated: 90 days, a quarter, long enough to
/// schedule a suspension's end or a cancellation agreed ahead, short enough that no event can
/// hold a licence's history still for years (an event dated year 2200 refused every later
/// change until then, ADR 0032). Larger than [`TX_CLOCK_SKEW_MS_MAX`].
pub const EVENT_SCHEDULING_MS_MAX: u64 = 90 * DAY_MS;

/// Fewest transactions a write quota may allow per window (ADR 0029): a quota of none would
/// be a suspension, which is the governors' `update_authority` taking the roles away.
pub const WRITE_QUOTA_TRANSACTIONS_MIN: u64 = 1;
/// Fewest blocks in a write quota's window.
pub const WRITE_QUOTA_WINDOW_BLOCKS_MIN: u64 = 1;
/// Most blocks in a write quota's window: an authority that spent its quota writes again
/// within this many blocks (four hours of idle heartbeats at the default 2 s), whatever the
/// governors set.
pub const WRITE_QUOTA_WINDOW_BLOCKS_MAX: u64 = 7_200;
/// Most transactions a write quota may allow per window: as many as full blocks of one signer
/// through the longest window could hold; a larger number could never be reached.
pub const WRITE_QUOTA_TRANSACTIONS_MAX: u64 =
    WRITE_QUOTA_WINDOW_BLOCKS_MAX * BLOCK_TRANSACTIONS_MAX as u64;

/// Most transactions in one block.
pub const BLOCK_TRANSACTIONS_MAX: usize = 10_000;
/// Largest block body (the transactions' canonical bytes together).
pub const BLOCK_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most equivocation evidence items in one block (ADR 0009).
pub const EVIDENCE_PER_BLOCK_MAX: usize = 16;
/// Evidence of height `h` may be recorded in blocks `h + 1 ..= h + EVIDENCE_AGE_BLOCKS_MAX`.
pub const EVIDENCE_AGE_BLOCKS_MAX: u64 = 1000;
/// Largest genesis file.
pub const GENESIS_BYTES_MAX: usize = 4 * 1024 * 1024;

/// The shortest heartbeat a genesis file may promise (`Freshness::heartbeat_ms_max`): below
/// it an idle chain would make blocks faster than its validators can agree on them.
pub const HEARTBEAT_MS_MIN: u64 = 100;
/// The default of `Freshness::heartbeat_ms_max`: an idle chain makes a block at least this
/// often (a node's `consensus.heartbeat_ms` may not exceed it).
pub const HEARTBEAT_MS_MAX_DEFAULT: u64 = 10_000;
/// A proof's header may be at most this many promised heartbeats old
/// (`Freshness::proof_age_ms_max >= PROOF_AGE_HEARTBEATS_MIN * heartbeat_ms_max`), so that a
/// live chain whose proposers are slow for a few rounds never looks stale.
pub const PROOF_AGE_HEARTBEATS_MIN: u64 = 10;
/// The default of `Freshness::proof_age_ms_max`: five minutes, thirty default heartbeats.
pub const PROOF_AGE_MS_MAX_DEFAULT: u64 = 5 * 60 * 1000;
/// The most a genesis file may allow a proof's header to age (one day): a verifier that needs an
/// older one asks for a historical check.
pub const PROOF_AGE_MS_MAX_LIMIT: u64 = 24 * 60 * 60 * 1000;

/// How far the `created_at` a signer puts on a transaction may be ahead of the block time.
pub const TX_CLOCK_SKEW_MS_MAX: u64 = 10 * 60 * 1000;

/// How far beyond its signer's next nonce (counting the signer's run of transactions already
/// waiting) a node admits a transaction to wait in its mempool for the ones before it (ADR
/// 0011). Not a rule of blocks, which take each signer's nonces one above the last; clients
/// that submit ahead (the demo loader, the load generator) stay inside it.
pub const NONCE_AHEAD_MAX: u64 = 1024;

/// The earliest genesis time a genesis file may give: 2020-01-01T00:00Z, in milliseconds. An
/// earlier one is a time in seconds, or the default of a tool, never a chain's start.
pub const GENESIS_TIME_MS_MIN: u64 = 1_577_836_800_000;
/// The latest genesis time a genesis file may give: 2100-01-01T00:00Z, in milliseconds.
pub const GENESIS_TIME_MS_MAX: u64 = 4_102_444_800_000;

/// Most keys one state multiproof proves together ([`crate::multiproof`]): a holder's list and
/// every licence on it (一照通查) fit, with room to spare.
pub const SMT_MULTIPROOF_KEYS_MAX: usize = 1024;

// The relations between the limits, checked when the crate compiles.
const _: () = {
    assert!(GENESIS_TIME_MS_MIN < GENESIS_TIME_MS_MAX);
    // A holder's whole list of licences is proved in one multiproof.
    assert!(SMT_MULTIPROOF_KEYS_MAX > LICENCES_PER_HOLDER_MAX);
    // The default freshness is one a genesis file may state.
    assert!(HEARTBEAT_MS_MAX_DEFAULT >= HEARTBEAT_MS_MIN);
    assert!(PROOF_AGE_MS_MAX_DEFAULT >= PROOF_AGE_HEARTBEATS_MIN * HEARTBEAT_MS_MAX_DEFAULT);
    assert!(PROOF_AGE_MS_MAX_DEFAULT <= PROOF_AGE_MS_MAX_LIMIT);
    // A block must hold at least one transaction of the largest size.
    assert!(BLOCK_BYTES_MAX >= TX_BYTES_MAX);
    assert!(TRANSFER_LICENCES_MAX * IDENTIFIER_BYTES_MAX <= TX_BYTES_MAX / 2);
    // A full governance record (every governor signing) fits in a transaction.
    assert!(GOVERNORS_MAX * (64 + IDENTIFIER_BYTES_MAX + 2) < TX_BYTES_MAX);
    // Chain ids are length-prefixed with one byte in signed messages.
    assert!(CHAIN_ID_BYTES_MAX <= u8::MAX as usize);
    // A licence with every field at its largest value cannot exceed a transaction, so it is
    // the transaction limit, not the field limits, that bounds an issuance.
    assert!(FIELDS_PER_TYPE_MAX * FIELD_VALUE_BYTES_MAX > TX_BYTES_MAX);
    assert!(NODE_CHANGES_PER_TX_MAX <= NODES_MAX);
    // A revoked grant can be given again at least once: the grant keeps its history.
    assert!(GRANT_PERIODS_MAX >= 2);
    assert!(BLOCK_TRANSACTIONS_MAX * 64 <= BLOCK_BYTES_MAX);
    // A write quota allows at least one transaction in a window of at least one block, and
    // its largest allowance is what the longest window's blocks can hold, no more.
    assert!(WRITE_QUOTA_TRANSACTIONS_MIN >= 1 && WRITE_QUOTA_WINDOW_BLOCKS_MIN >= 1);
    assert!(WRITE_QUOTA_TRANSACTIONS_MIN <= WRITE_QUOTA_TRANSACTIONS_MAX);
    assert!(WRITE_QUOTA_WINDOW_BLOCKS_MIN <= WRITE_QUOTA_WINDOW_BLOCKS_MAX);
    assert!(
        WRITE_QUOTA_TRANSACTIONS_MAX
            == WRITE_QUOTA_WINDOW_BLOCKS_MAX * BLOCK_TRANSACTIONS_MAX as u64
    );
    // A rotation takes effect after the block that records it; the governors' path ends a
    // stolen key no later than any rotation the key itself may schedule.
    assert!(GOVERNOR_ROTATION_DELAY_BLOCKS_MAX >= 1);
    assert!(GOVERNOR_ROTATION_DELAY_BLOCKS_MAX <= SELF_ROTATION_DELAY_BLOCKS_MAX);
    // A self-rotation is scheduled well inside the window a validator change may use.
    assert!(SELF_ROTATION_DELAY_BLOCKS_MAX < VALIDATOR_CHANGE_DELAY_BLOCKS_MAX);
    // One region's filers fill at most a quarter of a licence's open objections, and each of
    // them holds at least one; a licence's life holds many full sets of open objections, and
    // no more marks than events.
    assert!(OPEN_OBJECTIONS_PER_REGION_MAX >= 1);
    assert!(OPEN_OBJECTIONS_PER_REGION_MAX * 4 <= OPEN_OBJECTIONS_PER_LICENCE_MAX);
    assert!(OBJECTIONS_PER_LICENCE_MAX >= 8 * OPEN_OBJECTIONS_PER_LICENCE_MAX);
    assert!(OBJECTIONS_PER_LICENCE_MAX <= EVENTS_PER_LICENCE_MAX);
    // A recognizer may name every provincial issuing region and the nation in one set, and
    // two recognizers' full shares fit in it.
    assert!(RECOGNITIONS_PER_RECOGNIZER_IN_SET_MAX > 31);
    assert!(2 * RECOGNITIONS_PER_RECOGNIZER_IN_SET_MAX <= RECOGNITIONS_PER_SET_MAX);
    // Every compromise report may add a key: the history holds a rotation and many reports.
    assert!(KEYS_PER_AUTHORITY_MAX >= 2);
    // A transaction may be dated at its own creation time, whichever way its signer's clock
    // is off; the window reaches at least a day each way, so that a time zone or a late
    // evening never matters; and an event may be scheduled at least as far as it may be
    // backdated (a scheduled end is planned; a late entry is a delay to keep short).
    assert!(EVENT_BACKDATING_MS_MAX > TX_CLOCK_SKEW_MS_MAX);
    assert!(EVENT_SCHEDULING_MS_MAX > TX_CLOCK_SKEW_MS_MAX);
    assert!(EVENT_BACKDATING_MS_MAX >= DAY_MS && EVENT_SCHEDULING_MS_MAX >= DAY_MS);
    assert!(EVENT_SCHEDULING_MS_MAX >= EVENT_BACKDATING_MS_MAX);
    // An inspection period is at least a day; a licence may start before the block time by
    // more than it may be scheduled ahead (paper-era licences are converted), and either
    // window is far wider than the clock skew a transaction may show.
    assert!(ANNUAL_INSPECTION_DAYS_MIN >= 1);
    assert!(ANNUAL_INSPECTION_DAYS_MIN <= ANNUAL_INSPECTION_DAYS_MAX);
    assert!(LICENCE_SCHEDULING_MS_MAX < LICENCE_BACKDATING_MS_MAX);
    assert!(TX_CLOCK_SKEW_MS_MAX < LICENCE_SCHEDULING_MS_MAX);
    assert!(TX_CLOCK_SKEW_MS_MAX < TX_AGE_MS_MAX);
};
