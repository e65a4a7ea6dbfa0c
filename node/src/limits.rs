//! Every fixed bound of the node, in one place: message and batch sizes, queue lengths, how
//! many peers and attempts, how long each wait lasts. What an operator may set (mempool size,
//! peers, timeouts of consensus) is in [`crate::config`], checked there against these; the
//! limits of records, transactions and blocks are the core's (`hutong_core::limits`), those of
//! the API its own (`hutong_api::limits`, `hutong_api::ApiConfig`).

use std::time::Duration;

use hutong_core::limits as core_limits;

/// Largest consensus message accepted (a proposal carries its block's header, evidence and
/// transaction ids; the bound also admits a block's worth of bytes).
pub const CONSENSUS_MESSAGE_BYTES_MAX: usize = core_limits::BLOCK_BYTES_MAX + 64 * 1024;

/// Largest transaction batch accepted.
pub const TRANSACTION_BATCH_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Most transactions in one gossiped batch.
pub const TRANSACTION_BATCH_COUNT_MAX: usize = 512;

/// Most blocks asked for or served in one catch-up request.
pub const SYNC_BLOCKS_PER_REQUEST_MAX: u32 = 32;

/// Most bytes of blocks served in one catch-up answer.
pub const SYNC_RESPONSE_BYTES_MAX: usize = 24 * 1024 * 1024;

/// Most proposed blocks kept per height (a Byzantine proposer may send many).
pub const CANDIDATES_MAX: usize = 64;

/// Largest request accepted over request-response (a proposal's missing transaction ids).
pub const SYNC_REQUEST_BYTES_MAX: usize = 512 * 1024;

/// How many peers are asked, one after the other, for a proposal's missing transactions.
pub const TRANSACTION_FETCH_ATTEMPTS_MAX: usize = 3;

/// How often the node tells its peers its height and re-sends its latest consensus messages.
pub const STATUS_INTERVAL: Duration = Duration::from_millis(1000);

/// How long a validator that starts without its signing state for the chain (lost, new, or
/// behind its store, or started with `--resync`) waits to hear a registered peer's committed
/// height before it decides without one (ADR 0028): it signs nothing meanwhile.
pub const CATCH_UP_BEFORE_VOTING_WAIT: Duration = Duration::from_secs(5);

/// How long the core waits for the answer to a catch-up request before it counts the request
/// as failed and asks another peer (ADR 0036). Above the network's default request timeout
/// (10 s, `network.request_timeout`) and [`REQUEST_REPLY_SLACK`], so that the network's own
/// failure normally comes first; this bounds the wait should it never come.
pub const CATCH_UP_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The wait before the first catch-up request after a failed one (an error, a timeout, a
/// refused certificate or block, an answer with nothing at the next height); doubled after
/// each further failure in a row up to [`CATCH_UP_RETRY_MAX`] (ADR 0036).
pub const CATCH_UP_RETRY_FIRST: Duration = Duration::from_millis(100);

/// The longest wait between two catch-up requests after failures: two status intervals, so
/// that a node that failed often still asks as soon as fresh statuses have arrived.
pub const CATCH_UP_RETRY_MAX: Duration = Duration::from_millis(2000);

/// Failed catch-up requests in a row that the core retries by itself; beyond them it asks
/// again only when a peer reports its height, at most every [`CATCH_UP_RETRY_MAX`]. A success
/// resets the count.
pub const CATCH_UP_RETRIES_MAX: u32 = 8;

/// How long a peer whose catch-up answer failed is not asked again while another peer can be
/// (ADR 0036): several retries long, so that the retries go to the other peers first.
pub const CATCH_UP_PEER_SKIP: Duration = Duration::from_secs(10);

/// Commands the engine may queue for the network's sender before further ones are dropped
/// and counted (`outgoing_queue_full`).
pub const ENGINE_NETWORK_QUEUE_CAPACITY: usize = 4096;

/// Network events and request answers queued for the engine.
pub const ENGINE_EVENT_QUEUE_CAPACITY: usize = 4096;

/// Most equivocation evidence items held for a block to record (ADR 0009).
pub const PENDING_EVIDENCE_MAX: usize = 64;

/// Most transactions admitted in one call of [`Shared::admit_batch`] (one batched
/// signature check).
pub const ADMISSION_BATCH_MAX: usize = 512;

/// Most submissions waiting for the admission thread; beyond it a submission is answered
/// "busy".
pub const ADMISSION_QUEUE_MAX: usize = 4096;

/// How long a submission waits in the queue before it is answered "busy" (and withdrawn):
/// under the API's default request timeout (10 s), so that a full queue is answered as such.
pub const ADMISSION_WAIT: Duration = Duration::from_secs(5);

/// How long a submission the admission thread has taken waits for its decision beyond
/// [`ADMISSION_WAIT`]. One batch is at most [`ADMISSION_BATCH_MAX`] transactions, decided in
/// well under a second; this bounds the wait if the node stalls.
pub const DECISION_WAIT: Duration = Duration::from_secs(30);

/// The share of the mempool one signer may hold unless `mempool.signer_share_percent` says
/// otherwise: a quarter of its transactions and of its bytes, so that at least four signers
/// fill it before eviction levels them (ADR 0020).
pub const MEMPOOL_SIGNER_SHARE_PERCENT_DEFAULT: usize = 25;

/// The `Retry-After` of a 429 `write_quota_exceeded` (ADR 0029). A quota's window ends at a
/// height, not a time, and the answer names that height; a client that retries sooner than
/// this is told the same again.
pub const WRITE_QUOTA_RETRY_AFTER_SECONDS: u64 = 10;

/// Most transactions one admission evicts from the full mempool to make room (ADR 0020): with
/// transactions of at least a few hundred bytes, enough to make room for the largest one
/// ([`core_limits::TX_BYTES_MAX`]); it bounds the work one submission can cause.
pub const EVICTIONS_PER_ADMISSION_MAX: usize = 256;

/// The share of a block one signer's transactions may take unless
/// `consensus.block_signer_share_percent` says otherwise: half of
/// `consensus.block_transactions_max`, taken round-robin with the other signers' (ADR 0020).
pub const BLOCK_SIGNER_SHARE_PERCENT_DEFAULT: usize = 50;
/// Most copies of one transaction waiting for the first copy's decision (they hold no place
/// in the admission queue); beyond it a copy is answered "busy". The API's concurrency limit
/// bounds them too; this keeps one transaction from taking every waiting place by itself.
pub const ADMISSION_COPIES_WAITING_MAX: usize = 1024;

/// How long a copy of a transaction being decided waits for the first copy's outcome: beyond
/// the longest the first copy itself waits ([`ADMISSION_WAIT`] then [`DECISION_WAIT`]), so
/// that a copy always hears the outcome the first copy heard.
pub const COPY_WAIT: Duration = Duration::from_secs(36);

/// How long a transaction that waits for an earlier nonce of its signer stays in the pool.
pub const WAITING_MS_MAX: u64 = 10 * 60 * 1000;

/// How long the gossip batcher waits to fill a batch of transactions.
pub const GOSSIP_BATCH_WAIT: Duration = Duration::from_millis(20);

/// Capacity of the queue of transactions waiting to be gossiped.
pub const GOSSIP_QUEUE_CAPACITY: usize = 16_384;

/// Connections to one peer: two, because two nodes that dial each other at once both
/// succeed, and refusing the second would make one of them see a failure.
pub const CONNECTIONS_PER_PEER_MAX: u32 = 2;

/// Connections in their handshake at once (accepted on a p2p port, remote key not yet known):
/// what any host that can reach the port can make the node spend. Above
/// [`HANDSHAKE_SLOTS_RESERVED`] plus a stranger's share, so that strangers and registered
/// peers both find room (ADR 0018).
pub const HANDSHAKES_PENDING_MAX: u32 = 64;

/// Of [`HANDSHAKES_PENDING_MAX`], the slots only connections from a registered peer's address
/// may take (an address a registered peer was dialled at, reported through identify, or
/// connected from): however many handshakes strangers hold, a validator's peers still get in.
/// Sized for a network of a few dozen nodes that all reconnect at once after a restart.
pub const HANDSHAKE_SLOTS_RESERVED: u32 = 32;

/// Handshakes one IP address that is not a registered peer's may hold at once. A node dials a
/// peer once (twice when both dial at once, see [`CONNECTIONS_PER_PEER_MAX`]); a few more cover
/// several nodes behind one address. Past it, one host cannot take the strangers' share alone.
pub const HANDSHAKES_PER_ADDRESS_MAX: u32 = 4;

/// How long a connection may take from TCP accept (or dial) to an authenticated, multiplexed
/// connection (Noise and Yamux negotiated). A registered peer on a continental link needs well
/// under a second; an idle socket is closed at this age and its slot freed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// Log lines of one kind of refused connection (or any repeated network event) written per
/// [`REPEATED_LOG_INTERVAL`]; the rest are counted and summarised once the interval ends.
pub const REPEATED_LOG_LINES_MAX: u32 = 5;

/// The interval over which [`REPEATED_LOG_LINES_MAX`] applies.
pub const REPEATED_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Kinds of line the repeated-line limiter tracks at once; past it, new kinds are written
/// without a limit until an interval ends (the kinds are a fixed enumeration, far fewer).
pub const REPEATED_LOG_KINDS_MAX: usize = 64;

/// Addresses remembered per peer (bootstrap entries and identify reports, newest first).
pub const ADDRESSES_PER_PEER_MAX: usize = 8;

/// Connections with no open stream are kept this long. Registered peers are meant to stay
/// connected, so this is long; the re-dial loop restores any that close anyway.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Bytes a gossipsub frame adds around a payload: the author's peer id, sequence number,
/// topic name, signature and protobuf tags. About 200 bytes in practice; the margin keeps a
/// payload at its limit from being refused by the frame limit.
pub const GOSSIP_ENVELOPE_BYTES: usize = 1024;

/// Room the handle gives the event loop, beyond the request timeout, to report a request's
/// outcome before the handle gives up on it. The event loop's own timer (libp2p's) fires
/// first; this only matters if the loop is stalled.
pub const REQUEST_REPLY_SLACK: Duration = Duration::from_secs(1);

/// Largest body `hutong tx` reads: far above any record the node accepts.
pub const TX_BODY_FILE_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// The default of `storage.page_check_bytes_max`: a redb store file up to this size has every
/// page's checksum verified at each start. The check reads the whole file once (measured in
/// docs/operations.md, "Damaged stores"), so this bounds the start's delay for the stores of
/// most departments; a larger store is checked at its head alone unless the operator raises
/// the bound.
pub const PAGE_CHECK_BYTES_MAX_DEFAULT: u64 = 8 * 1024 * 1024 * 1024;

/// The highest `storage.page_check_bytes_max` an operator may set: a start never spends more
/// than a read of this many bytes checking pages.
pub const PAGE_CHECK_BYTES_MAX_CEILING: u64 = 256 * 1024 * 1024 * 1024;

/// Most bytes read from the data directory's `LOCK` file, which holds one process id.
pub const LOCK_FILE_BYTES_MAX: u64 = 64;
/// Largest signing state file read (`signing_state.rs`): the last signed message, the lock,
/// the valid value and its prevotes, at most one per validator, each well under 2 KiB of JSON.
pub const SIGNING_STATE_BYTES_MAX: usize = 1024 * 1024;

/// Largest key file read (`keys.rs`): a kind, a public key and a seed in JSON, under 200
/// bytes.
pub const KEY_FILE_BYTES_MAX: usize = 4 * 1024;

/// Largest `config.toml` read: a few hundred peers and allowed keys with their comments fit in
/// a small fraction of it.
pub const CONFIG_FILE_BYTES_MAX: usize = 1024 * 1024;
/// File descriptors kept for the store: redb holds one file, sled a few, and the journal and
/// its sweep a few more; the margin covers an engine's files opened while it compacts.
pub const FILE_DESCRIPTORS_STORE: u64 = 32;

/// File descriptors kept for the signing state: the temporary file, the directory synced after
/// the rename, and a read at start, with a margin.
pub const FILE_DESCRIPTORS_SIGNING_STATE: u64 = 8;

/// File descriptors kept for the p2p side: every established connection the network allows
/// (two per node of the largest registry, [`CONNECTIONS_PER_PEER_MAX`] each), the incoming
/// handshakes it allows at once (64), and its listeners and dials in progress.
pub const FILE_DESCRIPTORS_P2P: u64 =
    CONNECTIONS_PER_PEER_MAX as u64 * core_limits::NODES_MAX as u64 + 64 + 32;

/// File descriptors kept for the rest of the process: standard streams, the runtime's
/// epoll and wake-up descriptors, the API listener, key and config files, log output.
pub const FILE_DESCRIPTORS_PROCESS: u64 = 64;

/// File descriptors kept for API connections accepted beyond the cap for the moment it takes
/// to close them, or closing after they gave way to a new one.
pub const FILE_DESCRIPTORS_ACCEPT_SLACK: u64 = 32;

/// Every descriptor kept for something other than open API connections: the API's cap
/// (`api.connections_max`) must fit under the file limit with these beside it.
pub const FILE_DESCRIPTORS_RESERVED: u64 = FILE_DESCRIPTORS_STORE
    + FILE_DESCRIPTORS_SIGNING_STATE
    + FILE_DESCRIPTORS_P2P
    + FILE_DESCRIPTORS_PROCESS
    + FILE_DESCRIPTORS_ACCEPT_SLACK;

/// Most API connections allowed when the cap is computed from a large file limit: each costs
/// buffers (up to 64 KiB of read buffer, hyper's write buffer, the task), so a very large
/// limit is not all spent on them.
pub const API_CONNECTIONS_COMPUTED_MAX: usize = 16_384;

/// First wait before writing the signing state again after a failure; doubled after each
/// failure up to [`SIGNING_STATE_RETRY_MAX`]. The node signs nothing until a write succeeds.
pub const SIGNING_STATE_RETRY_FIRST: Duration = Duration::from_millis(50);

/// Longest wait between two attempts to write the signing state: under a round's shortest
/// timeout by default (500 ms in tests, 1 s in a new config), so a validator rejoins its round soon
/// after the file can be written again.
pub const SIGNING_STATE_RETRY_MAX: Duration = Duration::from_millis(400);

/// Failures to write the signing state are logged at most once per this interval (with the
/// count not logged); every one is counted in the metrics.
pub const SIGNING_STATE_FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// `hutong witness`: the shortest and longest pause between two rounds of reading the
/// followed nodes' checkpoints (`--poll-ms` must lie within them), and the default.
pub const WITNESS_POLL_MIN: Duration = Duration::from_millis(200);
pub const WITNESS_POLL_MAX: Duration = Duration::from_secs(3600);
pub const WITNESS_POLL_DEFAULT: Duration = Duration::from_secs(2);
/// How long one HTTP request of a witness to a node may take, whole.
pub const WITNESS_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times in a row a witness tries a request to a node that fails (no answer, or an
/// error status) before it gives up on that node for the round.
pub const WITNESS_REQUEST_ATTEMPTS: usize = 3;
/// The pause between two attempts of one request.
pub const WITNESS_RETRY_PAUSE: Duration = Duration::from_millis(250);
/// Most nodes one witness follows.
pub const WITNESS_NODES_MAX: usize = 64;
/// Largest answer a witness reads from a node (a checkpoint with its hand-overs): the largest
/// proof document a verifier reads.
pub const WITNESS_ANSWER_BYTES_MAX: usize = hutong_verify::PROOF_DOCUMENT_BYTES_MAX;
/// Largest witness state file read (it holds the last cosigned checkpoint).
pub const WITNESS_STATE_BYTES_MAX: usize = hutong_verify::PROOF_DOCUMENT_BYTES_MAX + 64 * 1024;

const _: () = {
    assert!(WITNESS_POLL_MIN.as_millis() <= WITNESS_POLL_DEFAULT.as_millis());
    assert!(WITNESS_POLL_DEFAULT.as_millis() <= WITNESS_POLL_MAX.as_millis());
    assert!(WITNESS_REQUEST_ATTEMPTS >= 1);
    assert!(WITNESS_RETRY_PAUSE.as_millis() < WITNESS_REQUEST_TIMEOUT.as_millis());
    assert!(WITNESS_STATE_BYTES_MAX > WITNESS_ANSWER_BYTES_MAX);
    // The most common soft file limit (1,024) leaves room for the fewest API connections
    // a configuration may allow.
    assert!(FILE_DESCRIPTORS_RESERVED + hutong_api::limits::CONNECTIONS_MIN as u64 <= 1024);
    assert!(API_CONNECTIONS_COMPUTED_MAX >= hutong_api::limits::CONNECTIONS_MIN);
    assert!(SIGNING_STATE_RETRY_FIRST.as_millis() <= SIGNING_STATE_RETRY_MAX.as_millis());
    assert!(SIGNING_STATE_RETRY_MAX.as_millis() < SIGNING_STATE_FAILURE_LOG_INTERVAL.as_millis());
    // Peers announce their height once per status interval: the wait hears several rounds
    // of announcements before it gives up on them.
    assert!(CATCH_UP_BEFORE_VOTING_WAIT.as_millis() >= 3 * STATUS_INTERVAL.as_millis());
    // The core's own bound on a catch-up request is the backstop of the network's.
    assert!(CATCH_UP_REQUEST_TIMEOUT.as_millis() > 10_000 + REQUEST_REPLY_SLACK.as_millis());
    assert!(CATCH_UP_RETRY_FIRST.as_millis() <= CATCH_UP_RETRY_MAX.as_millis());
    assert!(CATCH_UP_RETRY_MAX.as_millis() == 2 * STATUS_INTERVAL.as_millis());
    assert!(CATCH_UP_RETRIES_MAX >= 1);
    // A skipped peer stays skipped while the retries in a row reach their longest wait.
    assert!(CATCH_UP_PEER_SKIP.as_millis() > 4 * CATCH_UP_RETRY_MAX.as_millis());
    assert!(ENGINE_NETWORK_QUEUE_CAPACITY >= CANDIDATES_MAX);
    assert!(ENGINE_EVENT_QUEUE_CAPACITY >= CANDIDATES_MAX);
    // A proposal, a gossiped batch and a catch-up answer each hold at least one of the
    // largest items they carry.
    assert!(CONSENSUS_MESSAGE_BYTES_MAX >= core_limits::BLOCK_BYTES_MAX);
    assert!(TRANSACTION_BATCH_BYTES_MAX >= core_limits::TX_BYTES_MAX);
    assert!(SYNC_RESPONSE_BYTES_MAX >= core_limits::BLOCK_BYTES_MAX);
    assert!(SYNC_BLOCKS_PER_REQUEST_MAX >= 1);
    // The admission thread takes at most a batch from a queue that holds at least one.
    assert!(ADMISSION_BATCH_MAX <= ADMISSION_QUEUE_MAX);
    // A submission taken by the admission thread is decided before it is given up on.
    assert!(DECISION_WAIT.as_millis() > ADMISSION_WAIT.as_millis());
    // Registered peers and strangers each have handshake slots; one stranger address cannot
    // take the strangers' share alone, and a registered peer's two connections always fit.
    assert!(HANDSHAKE_SLOTS_RESERVED < HANDSHAKES_PENDING_MAX);
    assert!(HANDSHAKES_PER_ADDRESS_MAX < HANDSHAKES_PENDING_MAX - HANDSHAKE_SLOTS_RESERVED);
    assert!(HANDSHAKE_SLOTS_RESERVED >= CONNECTIONS_PER_PEER_MAX);
    assert!(HANDSHAKES_PER_ADDRESS_MAX >= CONNECTIONS_PER_PEER_MAX);
    assert!(REPEATED_LOG_LINES_MAX >= 1);
    // Shares are percentages of a whole, and a signer may always hold something.
    assert!(
        MEMPOOL_SIGNER_SHARE_PERCENT_DEFAULT >= 1 && MEMPOOL_SIGNER_SHARE_PERCENT_DEFAULT <= 100
    );
    assert!(BLOCK_SIGNER_SHARE_PERCENT_DEFAULT >= 1 && BLOCK_SIGNER_SHARE_PERCENT_DEFAULT <= 100);
    // A quota's 429 asks for a wait of at least a second, like the other 429s.
    assert!(WRITE_QUOTA_RETRY_AFTER_SECONDS >= 1);
    // Evicting up to the bound frees room for the largest transaction when the evicted ones
    // are of the smallest useful size (an issuance is several hundred bytes).
    assert!(EVICTIONS_PER_ADMISSION_MAX * 128 >= core_limits::TX_BYTES_MAX);
    // A copy waits longer than the first copy's two bounded waits.
    assert!(COPY_WAIT.as_millis() > ADMISSION_WAIT.as_millis() + DECISION_WAIT.as_millis());
    assert!(ADMISSION_COPIES_WAITING_MAX >= 1);
    // A `hutong tx` body file can hold the largest transaction, however it is written.
    assert!(TX_BODY_FILE_BYTES_MAX >= 4 * core_limits::TX_BYTES_MAX as u64);
    // The default page check is one an operator could have set.
    assert!(PAGE_CHECK_BYTES_MAX_DEFAULT <= PAGE_CHECK_BYTES_MAX_CEILING);
    // A process id (at most 2^22 on Linux, ten digits for any u32) and a newline fit.
    assert!(LOCK_FILE_BYTES_MAX >= 11);
    // A signing state holds a prevote of every validator the registry may list.
    assert!(SIGNING_STATE_BYTES_MAX >= core_limits::NODES_MAX * 2048);
    // A configuration can name every node of the registry as a peer and as an allowed key
    // (a peer entry is a 64-character key, `@` and a multiaddress, under 256 bytes).
    assert!(CONFIG_FILE_BYTES_MAX >= core_limits::NODES_MAX * 2 * 256);
};
