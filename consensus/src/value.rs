//! What consensus agrees on.

use std::fmt::Debug;
use std::hash::Hash;

/// A value the validators agree on. The node uses the 32-byte hash of a block; the
/// simulation uses small test values.
///
/// `canonical_bytes` is what goes into the sign bytes of votes and proposals, so it must be
/// deterministic, injective (two different values never share bytes) and at most
/// [`crate::limits::MAX_VALUE_BYTES`] long; longer values are refused by the state machine.
pub trait ConsensusValue: Clone + Eq + Ord + Hash + Debug {
    /// The value's canonical encoding for signing.
    fn canonical_bytes(&self) -> Vec<u8>;
}

/// A block hash (or any 32-byte digest) is its own canonical encoding. The ledger's
/// `Hash32` converts to and from `[u8; 32]`.
impl ConsensusValue for [u8; 32] {
    fn canonical_bytes(&self) -> Vec<u8> {
        self.to_vec()
    }
}
