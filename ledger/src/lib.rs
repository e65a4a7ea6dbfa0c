//! # hutong-ledger
//!
//! The ledger of hutong: records, their canonical encoding and signatures, the rules that
//! apply a transaction to the state, the verdict on a licence, the append-only transaction
//! log (RFC 9162 structure, blake3), the sparse-Merkle state commitment, blocks, genesis and
//! the block store.
//!
//! Nothing here does IO other than the store, and nothing reads a clock or a global random
//! source: time and randomness arrive as inputs, so that every node computes the same
//! result from the same inputs and an auditor can re-run everything offline.
//!
//! ```
//! use hutong_ledger::store::{MemoryBackend, Mode, Store};
//! use hutong_ledger::testkit::{Fixture, GENESIS_TIME};
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
pub mod block;
pub mod codec;
pub mod crypto;
pub mod evidence;
pub mod genesis;
pub mod hash;
pub mod ident;
pub mod keyfile;
pub mod limits;
pub mod log;
pub mod records;
pub mod rules;
pub mod smt;
pub mod store;
pub mod testkit;
pub mod tx;
pub mod verdict;
