//! The API's fixed limits, in one place. What an operator may set (body size, timeouts, rates,
//! page sizes, bundle contents) is in [`crate::config::ApiConfig`], whose `validate` checks
//! those settings against these limits and against the core's and the verifier's.

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

const _: () = {
    assert!(LICENCE_EVENTS_MAX <= REPORT_EVENTS_MAX);
    assert!(CONSISTENT_READ_ATTEMPTS >= 1);
    assert!(ACTIONS_PAGE >= 1);
};
