//! # hutong-consensus
//!
//! Tendermint BFT as a pure state machine. Not built yet: see the consensus issue.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
