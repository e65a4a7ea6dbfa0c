//! Every bound of the testnet, the demo loader and the load generator, in one place: how many
//! nodes, streams and transactions, how long each wait lasts, how large an answer may be.

use std::time::Duration;

/// Most nodes `up` starts.
pub const NODES_MAX: usize = 16;

/// How long `up` waits for the network's first blocks.
pub const START_WAIT: Duration = Duration::from_secs(120);

/// How long a node gets to exit after SIGTERM before SIGKILL.
pub const STOP_WAIT: Duration = Duration::from_secs(20);

/// How long the demo data may take to commit.
pub const DEMO_WAIT: Duration = Duration::from_secs(300);

/// How far ahead of its signer's committed nonce the demo submits a transaction: well inside
/// the window a node admits (`hutong_core::limits::NONCE_AHEAD_MAX`, ADR 0011).
pub const DEMO_NONCES_AHEAD_MAX: u64 = 512;

/// Most streams (requests in flight at once).
pub const STREAMS_MAX: usize = 256;

/// Most transactions or requests in one run.
pub const COUNT_MAX: u64 = 2_000_000;

/// Most seconds a run lasts.
pub const DURATION_SECONDS_MAX: u64 = 3600;

/// How many uncommitted transactions a run asks about at its end.
pub const UNCOMMITTED_SAMPLE_MAX: usize = 200;

/// The largest answer read (a block of 5,000 transactions as JSON is about 8 MiB).
pub const RESPONSE_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Most witnesses a testnet starts.
pub const WITNESSES_MAX: usize = 8;

/// The pause between a testnet witness's rounds, in milliseconds: short, so that a bundle
/// asked with `?witnesses=k` finds its cosignatures well within the node's wait for them
/// (`hutong_api::limits::WITNESSED_WAIT_MS_MAX`, 5 s).
pub const WITNESS_POLL_MS: u64 = 500;

// The demo loader's transactions must all be admitted by the nodes it loads.
const _: () = assert!(DEMO_NONCES_AHEAD_MAX < hutong_core::limits::NONCE_AHEAD_MAX);
