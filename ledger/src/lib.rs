//! # hutong-ledger
//!
//! The block store of hutong and the audit driver, over the pure rules and proofs of
//! [`hutong_core`]: the store executes a block with the core's rules, commits it atomically
//! and durably to its engine (redb by default, sled selectable), keeps the indexes the API
//! reads, and builds state and log proofs; the audit re-verifies a whole chain from genesis.
//!
//! ```
//! use hutong_ledger::store::{MemoryBackend, Mode, Store};
//! use hutong_core::testkit::{Fixture, GENESIS_TIME};
//!
//! // A chain from a genesis with governors, issuers and four validators.
//! let mut fixture = Fixture::new();
//! let store = Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap();
//!
//! // Qingdao's approval bureau issues a business licence; the block is executed and committed.
//! let issuance = fixture.issue_business_licence("qd-approval", "370200", 1);
//! let proposer = fixture.node_keys[0].public_key();
//! let execution = store.execute(GENESIS_TIME + 1_000, proposer, vec![issuance], Mode::Verify).unwrap();
//! let certificate = fixture.certify(&execution.header);
//! let block = store.commit(execution, certificate).unwrap();
//! assert_eq!(block.header.height, 1);
//! assert_eq!(block.header.log_size, 1);
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod audit;
pub mod limits;
pub mod store;
