//! The API's fixed limits, in one place. What an operator may set (body size, timeouts, rates,
//! page sizes, bundle contents) is in [`crate::config::ApiConfig`], whose `validate` checks
//! those settings against these limits and against the core's and the verifier's; the
//! defaults of the connection and request limits are here too.

use std::time::Duration;

/// Most catalogue entries listed by `/v1/licence-types` (the catalogue is small and governed).
pub const CATALOGUE_ENTRIES_MAX: usize = 4096;
/// Most licence events `GET /v1/licence-events` returns.
pub const LICENCE_EVENTS_MAX: usize = 10_000;
/// Most licence events one CSV report holds.
pub const REPORT_EVENTS_MAX: usize = 100_000;
/// How many times a proof is rebuilt when a block commits while it is being read.
pub const CONSISTENT_READ_ATTEMPTS: usize = 4;
/// How many actions are read per page while scanning a governor's history.
pub const ACTIONS_PAGE: usize = 256;

/// `Retry-After` of a 503 `stale`: long enough for a node that lost its peers to dial them
/// again, short enough that a client asking another node meanwhile loses little.
pub const STALE_RETRY_AFTER_SECONDS: u64 = 5;

/// Default of [`crate::ApiConfig::connections_max`] (a node computes its own from its file
/// limit; see `hutong_node::files`).
pub const CONNECTIONS_MAX_DEFAULT: usize = 1024;
/// Fewest connections a configuration may allow: the probes' pool and a few clients besides.
pub const CONNECTIONS_MIN: usize = PROBE_REQUESTS_MAX_DEFAULT + 16;
/// Default of [`crate::ApiConfig::idle_timeout_ms`]: how long a connection may wait for its
/// next request (or its first).
pub const IDLE_TIMEOUT_MS_DEFAULT: u64 = 15_000;
/// Default of [`crate::ApiConfig::header_read_timeout_ms`]: how long a request head may take
/// from its first byte (a head is at most [`CONNECTION_READ_BUFFER_BYTES_MAX`]).
pub const HEADER_READ_TIMEOUT_MS_DEFAULT: u64 = 5_000;
/// Default of [`crate::ApiConfig::body_read_timeout_ms`]: how long a whole request body may
/// take to arrive (at most `body_bytes_max`, 128 KiB by default, which a slow link still sends in time).
pub const BODY_READ_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// Longest any of the three connection deadlines may be set to.
pub const CONNECTION_TIMEOUT_MS_MAX: u64 = 600_000;
/// Default of [`crate::ApiConfig::probe_requests_max`]: `/healthz`, `/readyz` and `/metrics`
/// served at once, from a pool of their own.
pub const PROBE_REQUESTS_MAX_DEFAULT: usize = 32;
/// Default of [`crate::ApiConfig::body_reads_max`]: request bodies being received at once
/// (each at most `body_bytes_max`, so this bounds the memory they hold).
pub const BODY_READS_MAX_DEFAULT: usize = 256;
/// The read buffer of one connection, which bounds a request head (hyper's minimum is 8 KiB).
pub const CONNECTION_READ_BUFFER_BYTES_MAX: usize = 64 * 1024;
/// How often a connection that is serving a request checks its deadlines again (they start
/// when the answer is produced); the lateness of a deadline is at most this.
pub const CONNECTION_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// Pause after a failed `accept` (out of descriptors, most often) before the next one, so that
/// the loop does not spin while descriptors are short.
pub const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(20);
/// Failed accepts are logged at most once per this interval (with the count not logged).
pub const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Log sizes whose witness cosignatures a node keeps (besides each accepted witness's latest,
/// always kept): the most recent ones, older ones forgotten first.
pub const COSIGNED_SIZES_MAX: usize = 256;
/// Largest body of `POST /v1/log/cosignatures` (a note and one cosignature are a few hundred
/// bytes).
pub const COSIGNATURE_BODY_BYTES_MAX: usize = 4 * 1024;
/// Longest a bundle asked with `?witnesses=k` waits for `k` cosignatures of a log at least
/// as large as its header's (witnesses trail the head by their poll interval), before 503
/// `not_witnessed`; never more than half the request time limit.
pub const WITNESSED_WAIT_MS_MAX: u64 = 5_000;
/// How often that wait looks at the cosignatures again.
pub const WITNESSED_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// `Retry-After` of a 503 `not_witnessed`.
pub const NOT_WITNESSED_RETRY_AFTER_SECONDS: u64 = 5;

/// Most reverse proxies `[api] trusted_proxies` may name.
pub const TRUSTED_PROXIES_MAX: usize = 64;
/// Most addresses of one `X-Forwarded-For` header read, from its end: a chain of proxies is a
/// few hops; a longer header is read as far as this and keyed on the last address read.
pub const FORWARDED_HOPS_MAX: usize = 16;

const _: () = {
    assert!(FORWARDED_HOPS_MAX >= 2);
    assert!(COSIGNED_SIZES_MAX >= 1);
    assert!(WITNESSED_POLL_INTERVAL.as_millis() < WITNESSED_WAIT_MS_MAX as u128);
    assert!(NOT_WITNESSED_RETRY_AFTER_SECONDS >= 1);
    assert!(CONNECTIONS_MAX_DEFAULT >= CONNECTIONS_MIN);
    assert!(BODY_READS_MAX_DEFAULT <= CONNECTIONS_MAX_DEFAULT);
    assert!(HEADER_READ_TIMEOUT_MS_DEFAULT <= CONNECTION_TIMEOUT_MS_MAX);
    assert!(IDLE_TIMEOUT_MS_DEFAULT <= CONNECTION_TIMEOUT_MS_MAX);
    assert!(BODY_READ_TIMEOUT_MS_DEFAULT <= CONNECTION_TIMEOUT_MS_MAX);
    assert!(CONNECTION_READ_BUFFER_BYTES_MAX >= 8 * 1024);
    assert!(ACCEPT_ERROR_PAUSE.as_millis() < ACCEPT_ERROR_LOG_INTERVAL.as_millis());
    assert!(LICENCE_EVENTS_MAX <= REPORT_EVENTS_MAX);
    assert!(CONSISTENT_READ_ATTEMPTS >= 1);
    assert!(ACTIONS_PAGE >= 1);
};
