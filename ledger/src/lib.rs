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
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod hash;
