//! # hutong-core
//!
//! The pure core of hutong: records, their canonical encoding and signatures, identifiers,
//! the rules that apply a transaction to the state, the verdict on a licence, the
//! append-only transaction log (RFC 9162 structure, blake3), the sparse-Merkle state
//! commitment, blocks, evidence and genesis.
//!
//! Nothing here does IO, and nothing reads a clock or a global random source: time and
//! randomness arrive as inputs, so that every node computes the same result from the same
//! inputs and an auditor or a verifier can re-run everything offline. The rules read the
//! committed state through [`rules::StateReader`]; the block store of `hutong-ledger` is one
//! implementation of it, the in-memory [`testkit::MemoryState`] another.
//!
//! ```
//! use hutong_core::records::{Record, RecordKey};
//! use hutong_core::rules::{self, Context, Overlay};
//! use hutong_core::testkit::{Fixture, GENESIS_TIME};
//!
//! // The state of a genesis with governors, issuers and four validators.
//! let mut fixture = Fixture::new();
//! let state = fixture.genesis_state();
//!
//! // Qingdao's approval bureau issues a business licence, and the rules apply it.
//! let issuance = fixture.issue_business_licence("qd-approval", "370200", 1);
//! let context = Context {
//!     chain_id: &fixture.genesis.chain_id,
//!     suite: fixture.suite(),
//!     height: 1,
//!     time: GENESIS_TIME + 1_000,
//! };
//! let mut overlay = Overlay::new(&state);
//! let id = issuance.id(fixture.suite());
//! let applied = rules::apply_transaction(&mut overlay, &context, &issuance, id).unwrap();
//! let (type_code, number) = applied.licence.unwrap();
//! assert!(matches!(
//!     overlay.record(&RecordKey::Licence(type_code, number)).unwrap(),
//!     Some(Record::Licence(_))
//! ));
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod block;
pub mod calendar;
pub mod codec;
pub mod crypto;
pub mod evidence;
pub mod genesis;
pub mod hash;
pub mod ident;
pub mod keyfile;
pub mod limits;
pub mod log;
pub mod multiproof;
pub mod quota;
pub mod records;
pub mod rules;
pub mod smt;
pub mod suite;
pub mod testkit;
pub mod tx;
pub mod verdict;
