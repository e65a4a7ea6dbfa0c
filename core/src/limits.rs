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
/// Most licence types one recognition attestation may name.
pub const TYPES_PER_RECOGNITION_MAX: usize = 64;
/// Most change orders pending on the validator set at once.
pub const PENDING_VALIDATOR_CHANGES_MAX: usize = 16;
/// How far ahead a validator-set change may be scheduled, in blocks.
pub const VALIDATOR_CHANGE_DELAY_BLOCKS_MAX: u64 = 1_000_000;

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

/// How far the `created_at` a signer puts on a transaction may be ahead of the block time.
pub const TX_CLOCK_SKEW_MS_MAX: u64 = 10 * 60 * 1000;

/// How far beyond its signer's next nonce (counting the signer's run of transactions already
/// waiting) a node admits a transaction to wait in its mempool for the ones before it (ADR
/// 0011). Not a rule of blocks, which take each signer's nonces one above the last; clients
/// that submit ahead (the demo loader, the load generator) stay inside it.
pub const NONCE_AHEAD_MAX: u64 = 1024;

// The relations between the limits, checked when the crate compiles.
const _: () = {
    // A block must hold at least one transaction of the largest size.
    assert!(BLOCK_BYTES_MAX >= TX_BYTES_MAX);
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
    // Every compromise report may add a key: the history holds a rotation and many reports.
    assert!(KEYS_PER_AUTHORITY_MAX >= 2);
};
