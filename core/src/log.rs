//! The transaction log: every committed transaction, in commit order, is a leaf of one
//! append-only Merkle tree with the structure of RFC 9162 (Certificate Transparency v2),
//! section 2.1. The ledger hashes it with blake3 ([`Blake3Log`]); the same algorithms run
//! with SHA-256 ([`Sha256Log`]) so that they can be checked against the RFC and the
//! Certificate Transparency test data.
//!
//! The module has three layers:
//! - **hashing** behind the small [`LogHasher`] trait;
//! - **verification** ([`verify_inclusion`], [`verify_consistency`] and the methods of
//!   [`InclusionProof`] and [`ConsistencyProof`]): pure functions of their inputs that an
//!   auditor runs offline. They never panic and say what was wrong with a [`LogError`];
//! - **construction** from a store of perfect-subtree hashes ([`LogNodeStore`]):
//!   [`append`] computes the nodes that a block adds, [`root`], [`inclusion_proof`] and
//!   [`consistency_proof`] answer for any tree size up to the current one.
//!
//! # Storage layout
//!
//! The store keeps one hash per *perfect* subtree: the node at `(level, index)` covers the
//! `2^level` leaves `index * 2^level .. (index + 1) * 2^level`, and level 0 holds the leaf
//! hashes. A perfect subtree never changes once its last leaf is appended, so a store that
//! only grows serves every earlier tree size as well; the nodes on the right edge of a tree
//! whose size is not a power of two are not stored but recomputed from at most 64 perfect
//! ones. A log of `n` leaves stores fewer than `2n` nodes. Each node is addressed by a
//! [`NodeKey`], whose 9-byte encoding ([`NodeKey::to_bytes`]) is meant as a sled key.
//!
//! # Example
//!
//! ```
//! use hutong_core::log::{self, Blake3Log, LogHasher, MemoryLogStore};
//!
//! let hasher = Blake3Log;
//! let mut store = MemoryLogStore::new();
//! let leaves: Vec<_> = [b"tx-0", b"tx-1", b"tx-2"].iter().map(|tx| hasher.leaf_hash(*tx)).collect();
//!
//! // Committing a block: compute the new nodes, persist them with the block, atomically.
//! let appended = log::append(&hasher, &store, 0, &leaves)?;
//! store.insert_nodes(appended.nodes);
//! assert_eq!(appended.new_size, 3);
//! assert_eq!(appended.new_root, log::root_from_leaf_hashes(&hasher, &leaves));
//!
//! // Serving and checking a proof that transaction 1 is in the log of size 3.
//! let proof = log::inclusion_proof(&hasher, &store, 1, 3)?;
//! proof.verify(&hasher, &leaves[1], &appended.new_root)?;
//!
//! // And that the log of size 3 extends the log of size 2.
//! let old_root = log::root(&hasher, &store, 2)?;
//! let consistency = log::consistency_proof(&hasher, &store, 2, 3)?;
//! consistency.verify(&hasher, &old_root, &appended.new_root)?;
//! # Ok::<(), hutong_core::log::LogError>(())
//! ```

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::hash::Hash32;

/// The most hashes an inclusion proof holds.
///
/// An inclusion path has one hash per level of the tree at which the leaf's ancestor has a
/// sibling, and a tree of `n` leaves has `ceil(log2(n))` levels above its leaves. Sizes are
/// `u64`, so `n <= 2^64 - 1` and the path has at most 64 hashes; leaf 0 of a tree of
/// `2^64 - 1` leaves needs all 64 (63 inside the perfect left half of `2^63` leaves, then
/// the right half), so the bound is exact.
pub const MAX_INCLUSION_PROOF_HASHES: usize = 64;

/// The most hashes a consistency proof holds.
///
/// For `0 < first_size < second_size`, the proof is the inclusion path, in the tree of
/// `second_size` leaves, of the perfect subtree that ends at `first_size` and is at level
/// `trailing_zeros(first_size)`: at most `64 - trailing_zeros(first_size)` hashes, preceded
/// by that subtree's own hash unless `first_size` is a power of two. An odd `first_size`
/// that is not a power of two gives `1 + 64`; `first_size = 3`, `second_size = 2^64 - 1`
/// reaches it, so the bound is exact (it is not `2 * 64`).
pub const MAX_CONSISTENCY_PROOF_HASHES: usize = MAX_INCLUSION_PROOF_HASHES + 1;

/// The highest level a perfect subtree can have: `2^64` leaves do not fit a `u64` size.
pub const MAX_NODE_LEVEL: u8 = 63;

// ---------------------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------------------

/// The three hashes of an RFC 9162 section 2.1.1 Merkle tree.
pub trait LogHasher {
    /// `MTH({})`, the root of the empty tree: the hash of the empty string.
    fn empty_root(&self) -> Hash32;

    /// `MTH({d}) = HASH(0x00 || d)`, the hash of a leaf whose data is `data`.
    fn leaf_hash(&self, data: &[u8]) -> Hash32;

    /// `HASH(0x01 || left || right)`, the hash of an interior node.
    fn node_hash(&self, left: &Hash32, right: &Hash32) -> Hash32;
}

/// The ledger's log hash: blake3.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Blake3Log;

/// SHA-256, as in Certificate Transparency; the ledger uses it only to check the
/// algorithms against RFC 9162 and its test data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sha256Log;

const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// `0x01 || left || right`, on the stack: node hashing is the inner loop of every append.
fn node_input(left: &Hash32, right: &Hash32) -> [u8; 65] {
    let mut input = [0u8; 65];
    let (prefix, children) = input.split_at_mut(1);
    let (left_part, right_part) = children.split_at_mut(32);
    prefix.copy_from_slice(&[NODE_PREFIX]);
    left_part.copy_from_slice(left.as_bytes());
    right_part.copy_from_slice(right.as_bytes());
    input
}

impl LogHasher for Blake3Log {
    fn empty_root(&self) -> Hash32 {
        blake3::hash(b"").into()
    }

    fn leaf_hash(&self, data: &[u8]) -> Hash32 {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&[LEAF_PREFIX]);
        hasher.update(data);
        hasher.finalize().into()
    }

    fn node_hash(&self, left: &Hash32, right: &Hash32) -> Hash32 {
        blake3::hash(&node_input(left, right)).into()
    }
}

impl LogHasher for Sha256Log {
    fn empty_root(&self) -> Hash32 {
        Hash32(sha2::Sha256::digest(b"").into())
    }

    fn leaf_hash(&self, data: &[u8]) -> Hash32 {
        let mut hasher = sha2::Sha256::new();
        hasher.update([LEAF_PREFIX]);
        hasher.update(data);
        Hash32(hasher.finalize().into())
    }

    fn node_hash(&self, left: &Hash32, right: &Hash32) -> Hash32 {
        Hash32(sha2::Sha256::digest(node_input(left, right)).into())
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why a log proof does not verify, or why the log could not answer.
///
/// Verification returns only the variants up to [`LogError::EqualSizesDifferentRoots`];
/// the others come from the store and from [`append`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("leaf index {leaf_index} is not below the tree size {tree_size}")]
    LeafIndexBeyondSize { leaf_index: u64, tree_size: u64 },

    #[error("the first tree size {first_size} is greater than the second tree size {second_size}")]
    FirstSizeGreaterThanSecond { first_size: u64, second_size: u64 },

    #[error("the proof has {actual} hashes but needs {expected}: it carries trailing garbage")]
    ProofTooLong { expected: usize, actual: usize },

    #[error("the proof has {actual} hashes but needs {expected}: it is truncated")]
    ProofTooShort { expected: usize, actual: usize },

    #[error("the inclusion proof leads to root {computed}, not to the expected root {expected}")]
    RootMismatch { computed: Hash32, expected: Hash32 },

    #[error(
        "the consistency proof leads to first root {computed}, not to the expected first root {expected}"
    )]
    FirstRootMismatch { computed: Hash32, expected: Hash32 },

    #[error(
        "the consistency proof leads to second root {computed}, not to the expected second root {expected}"
    )]
    SecondRootMismatch { computed: Hash32, expected: Hash32 },

    #[error(
        "two trees of the same size {tree_size} cannot have different roots ({first_root} and {second_root})"
    )]
    EqualSizesDifferentRoots {
        tree_size: u64,
        first_root: Hash32,
        second_root: Hash32,
    },

    #[error("appending {appended} leaves to a log of {log_size} leaves overflows the log size")]
    LogSizeOverflow { log_size: u64, appended: usize },

    #[error(
        "the log store has no node at {key}: the log is shorter than the size asked for, or the store is damaged"
    )]
    MissingNode { key: NodeKey },

    #[error("the log store could not read the node at {key}: {reason}")]
    StoreRead { key: NodeKey, reason: String },

    #[error(
        "a log node key is {} bytes, got {length_bytes}",
        NodeKey::ENCODED_LENGTH_BYTES
    )]
    NodeKeyLength { length_bytes: usize },

    #[error("no perfect subtree of a log of at most 2^64 - 1 leaves is at {key}")]
    NodeKeyOutOfRange { key: NodeKey },
}

impl LogError {
    /// A stable machine-readable name of the variant, for API problem documents and test
    /// vectors.
    pub fn code(&self) -> &'static str {
        match self {
            LogError::LeafIndexBeyondSize { .. } => "leaf_index_beyond_size",
            LogError::FirstSizeGreaterThanSecond { .. } => "first_size_greater_than_second",
            LogError::ProofTooLong { .. } => "proof_too_long",
            LogError::ProofTooShort { .. } => "proof_too_short",
            LogError::RootMismatch { .. } => "root_mismatch",
            LogError::FirstRootMismatch { .. } => "first_root_mismatch",
            LogError::SecondRootMismatch { .. } => "second_root_mismatch",
            LogError::EqualSizesDifferentRoots { .. } => "equal_sizes_different_roots",
            LogError::LogSizeOverflow { .. } => "log_size_overflow",
            LogError::MissingNode { .. } => "missing_node",
            LogError::StoreRead { .. } => "store_read",
            LogError::NodeKeyLength { .. } => "node_key_length",
            LogError::NodeKeyOutOfRange { .. } => "node_key_out_of_range",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Proofs and their verification (pure)
// ---------------------------------------------------------------------------------------

/// A proof that the leaf at `leaf_index` is in the tree of `tree_size` leaves: the
/// `PATH(leaf_index, D[tree_size])` of RFC 9162 section 2.1.3.1, hashes ordered from the
/// leaf's sibling up to the child of the root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub path: Vec<Hash32>,
}

impl InclusionProof {
    /// The root that this proof and `leaf_hash` lead to; see [`inclusion_proof_root`].
    pub fn root<H: LogHasher + ?Sized>(
        &self,
        hasher: &H,
        leaf_hash: &Hash32,
    ) -> Result<Hash32, LogError> {
        inclusion_proof_root(
            hasher,
            self.leaf_index,
            self.tree_size,
            leaf_hash,
            &self.path,
        )
    }

    /// Checks that `leaf_hash` is at `leaf_index` in the tree of `tree_size` leaves whose
    /// root is `root`; see [`verify_inclusion`].
    pub fn verify<H: LogHasher + ?Sized>(
        &self,
        hasher: &H,
        leaf_hash: &Hash32,
        root: &Hash32,
    ) -> Result<(), LogError> {
        verify_inclusion(
            hasher,
            self.leaf_index,
            self.tree_size,
            leaf_hash,
            &self.path,
            root,
        )
    }
}

/// A proof that the tree of `second_size` leaves extends the tree of `first_size` leaves:
/// the `PROOF(first_size, D[second_size])` of RFC 9162 section 2.1.4.1 (empty when the
/// sizes are equal or `first_size` is 0).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    pub first_size: u64,
    pub second_size: u64,
    pub path: Vec<Hash32>,
}

impl ConsistencyProof {
    /// Checks that the tree of `first_size` leaves with root `first_root` is a prefix of
    /// the tree of `second_size` leaves with root `second_root`; see [`verify_consistency`].
    pub fn verify<H: LogHasher + ?Sized>(
        &self,
        hasher: &H,
        first_root: &Hash32,
        second_root: &Hash32,
    ) -> Result<(), LogError> {
        verify_consistency(
            hasher,
            self.first_size,
            self.second_size,
            first_root,
            second_root,
            &self.path,
        )
    }
}

/// The number of hashes in the inclusion path of node `index` among the nodes
/// `0..=last_index` of one level. Below the highest bit where `index` and `last_index`
/// differ, the node sits in a perfect subtree with a sibling at every level (`inner`
/// hashes); above it, the node's ancestor is on the right edge and has a left sibling
/// exactly where `index` has a one bit.
fn path_length(index: u64, last_index: u64) -> usize {
    debug_assert!(
        index <= last_index,
        "node {index} beyond the last node {last_index}"
    );
    let inner = u64::BITS - (index ^ last_index).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// The number of hashes in the inclusion proof of `leaf_index` in the tree of `tree_size`
/// leaves (at most [`MAX_INCLUSION_PROOF_HASHES`]).
pub fn inclusion_proof_length(leaf_index: u64, tree_size: u64) -> Result<usize, LogError> {
    if leaf_index >= tree_size {
        return Err(LogError::LeafIndexBeyondSize {
            leaf_index,
            tree_size,
        });
    }
    Ok(path_length(leaf_index, tree_size - 1))
}

/// The number of hashes in the consistency proof from `first_size` to `second_size`
/// (at most [`MAX_CONSISTENCY_PROOF_HASHES`]).
pub fn consistency_proof_length(first_size: u64, second_size: u64) -> Result<usize, LogError> {
    if first_size > second_size {
        return Err(LogError::FirstSizeGreaterThanSecond {
            first_size,
            second_size,
        });
    }
    if first_size == 0 || first_size == second_size {
        return Ok(0);
    }
    let level = first_size.trailing_zeros();
    let index = (first_size >> level) - 1;
    let last_index = (second_size - 1) >> level;
    let own_hash = usize::from(!first_size.is_power_of_two());
    Ok(own_hash + path_length(index, last_index))
}

fn check_proof_length(expected: usize, actual: usize) -> Result<(), LogError> {
    if actual > expected {
        Err(LogError::ProofTooLong { expected, actual })
    } else if actual < expected {
        Err(LogError::ProofTooShort { expected, actual })
    } else {
        Ok(())
    }
}

/// The root that an inclusion proof leads to, by the algorithm of RFC 9162 section
/// 2.1.3.2. For callers that compare the root themselves, for instance with the roots of
/// several checkpoints; [`verify_inclusion`] compares it with one root.
///
/// Fails with [`LogError::LeafIndexBeyondSize`] when `leaf_index >= tree_size`, and with
/// [`LogError::ProofTooLong`] or [`LogError::ProofTooShort`] when `path` does not have
/// exactly [`inclusion_proof_length`] hashes.
pub fn inclusion_proof_root<H: LogHasher + ?Sized>(
    hasher: &H,
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: &Hash32,
    path: &[Hash32],
) -> Result<Hash32, LogError> {
    // Step 1 (index beyond size), and the length that steps 4a and 5 would find wrong,
    // checked first so that the error says which.
    let expected_length = inclusion_proof_length(leaf_index, tree_size)?;
    check_proof_length(expected_length, path.len())?;

    // Step 2: `node_index` and `last_index` are the RFC's `fn` and `sn`, the indexes of the
    // leaf's ancestor and of the last node at the current level.
    let mut node_index = leaf_index;
    let mut last_index = tree_size - 1;
    // Step 3.
    let mut computed = *leaf_hash;
    // Step 4.
    for sibling in path {
        // 4a.
        if last_index == 0 {
            return Err(LogError::ProofTooLong {
                expected: expected_length,
                actual: path.len(),
            });
        }
        // 4b.
        if node_index & 1 == 1 || node_index == last_index {
            computed = hasher.node_hash(sibling, &computed);
            // A right-edge node without a right sibling moves up unchanged.
            if node_index & 1 == 0 {
                while node_index & 1 == 0 && node_index != 0 {
                    node_index >>= 1;
                    last_index >>= 1;
                }
            }
        } else {
            computed = hasher.node_hash(&computed, sibling);
        }
        // 4c.
        node_index >>= 1;
        last_index >>= 1;
    }
    // Step 5, the size half; the caller compares the root.
    if last_index != 0 {
        return Err(LogError::ProofTooShort {
            expected: expected_length,
            actual: path.len(),
        });
    }
    Ok(computed)
}

/// Checks that `leaf_hash` is the leaf at `leaf_index` in the tree of `tree_size` leaves
/// whose root is `root` (RFC 9162 section 2.1.3.2). Pure; never panics.
///
/// Errors: those of [`inclusion_proof_root`], and [`LogError::RootMismatch`] when the proof
/// leads to another root.
pub fn verify_inclusion<H: LogHasher + ?Sized>(
    hasher: &H,
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: &Hash32,
    path: &[Hash32],
    root: &Hash32,
) -> Result<(), LogError> {
    let computed = inclusion_proof_root(hasher, leaf_index, tree_size, leaf_hash, path)?;
    // Step 5, the root half.
    if computed != *root {
        return Err(LogError::RootMismatch {
            computed,
            expected: *root,
        });
    }
    Ok(())
}

/// Checks that the tree of `first_size` leaves with root `first_root` is a prefix of the
/// tree of `second_size` leaves with root `second_root`, given the consistency proof
/// `path`. Pure; never panics.
///
/// For `0 < first_size < second_size` this is the algorithm of RFC 9162 section 2.1.4.2.
/// The RFC defines proofs only for that case (section 2.1.4); the others follow from its
/// definition of `PROOF` and `MTH`:
/// - `first_size == 0`: the proof is empty and `first_root` must be the empty-tree root
///   (every tree extends the empty tree, and nothing is checked about `second_root` unless
///   `second_size` is 0 too);
/// - `first_size == second_size`: the proof is empty and the roots must be equal.
///
/// Errors, checked in this order: [`LogError::FirstSizeGreaterThanSecond`],
/// [`LogError::ProofTooLong`] / [`LogError::ProofTooShort`] (the path does not have exactly
/// [`consistency_proof_length`] hashes), [`LogError::FirstRootMismatch`],
/// [`LogError::SecondRootMismatch`], and [`LogError::EqualSizesDifferentRoots`].
pub fn verify_consistency<H: LogHasher + ?Sized>(
    hasher: &H,
    first_size: u64,
    second_size: u64,
    first_root: &Hash32,
    second_root: &Hash32,
    path: &[Hash32],
) -> Result<(), LogError> {
    let expected_length = consistency_proof_length(first_size, second_size)?;
    check_proof_length(expected_length, path.len())?;

    if first_size == 0 {
        let empty_root = hasher.empty_root();
        if *first_root != empty_root {
            return Err(LogError::FirstRootMismatch {
                computed: empty_root,
                expected: *first_root,
            });
        }
        if second_size == 0 && *second_root != empty_root {
            return Err(LogError::SecondRootMismatch {
                computed: empty_root,
                expected: *second_root,
            });
        }
        return Ok(());
    }
    if first_size == second_size {
        if first_root != second_root {
            return Err(LogError::EqualSizesDifferentRoots {
                tree_size: first_size,
                first_root: *first_root,
                second_root: *second_root,
            });
        }
        return Ok(());
    }

    // RFC 9162 section 2.1.4.2, for 0 < first_size < second_size.
    // Step 1 (an empty path fails) is covered by the length check: the length is >= 1 here.
    // Step 2: when `first_size` is a power of two, the first tree is a node of the second
    // and its root starts the path; otherwise the proof starts with the hash of the
    // largest perfect subtree that ends at `first_size`.
    let (start, rest) = if first_size.is_power_of_two() {
        (*first_root, path)
    } else {
        match path.split_first() {
            Some((start, rest)) => (*start, rest),
            None => {
                return Err(LogError::ProofTooShort {
                    expected: expected_length,
                    actual: 0,
                });
            }
        }
    };
    // Step 3: `node_index` and `last_index` are the RFC's `fn` and `sn`.
    let mut node_index = first_size - 1;
    let mut last_index = second_size - 1;
    // Step 4: skip the levels inside the perfect subtree that `start` covers.
    while node_index & 1 == 1 {
        node_index >>= 1;
        last_index >>= 1;
    }
    // Step 5: `first_computed` and `second_computed` are the RFC's `fr` and `sr`.
    let mut first_computed = start;
    let mut second_computed = start;
    // Step 6.
    for sibling in rest {
        // 6a.
        if last_index == 0 {
            return Err(LogError::ProofTooLong {
                expected: expected_length,
                actual: path.len(),
            });
        }
        // 6b.
        if node_index & 1 == 1 || node_index == last_index {
            first_computed = hasher.node_hash(sibling, &first_computed);
            second_computed = hasher.node_hash(sibling, &second_computed);
            if node_index & 1 == 0 {
                while node_index & 1 == 0 && node_index != 0 {
                    node_index >>= 1;
                    last_index >>= 1;
                }
            }
        } else {
            second_computed = hasher.node_hash(&second_computed, sibling);
        }
        // 6c.
        node_index >>= 1;
        last_index >>= 1;
    }
    // Step 7.
    if last_index != 0 {
        return Err(LogError::ProofTooShort {
            expected: expected_length,
            actual: path.len(),
        });
    }
    if first_computed != *first_root {
        return Err(LogError::FirstRootMismatch {
            computed: first_computed,
            expected: *first_root,
        });
    }
    if second_computed != *second_root {
        return Err(LogError::SecondRootMismatch {
            computed: second_computed,
            expected: *second_root,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Roots from leaves (pure)
// ---------------------------------------------------------------------------------------

/// The roots of the perfect subtrees that make up a tree of `size` leaves, one per one bit
/// of `size` (the largest on the left), kept while leaves are appended: a binary counter
/// whose carries are the new interior nodes.
struct Frontier {
    size: u64,
    /// `roots[level]` is meaningful where bit `level` of `size` is set.
    roots: [Hash32; 64],
}

impl Frontier {
    fn empty() -> Self {
        Frontier {
            size: 0,
            roots: [Hash32::ZERO; 64],
        }
    }

    /// Reads the perfect subtrees of a tree of `size` leaves: at most 64 reads.
    fn load<S: LogNodeStore + ?Sized>(store: &S, size: u64) -> Result<Self, LogError> {
        let mut frontier = Frontier {
            size,
            roots: [Hash32::ZERO; 64],
        };
        for (level, root) in (0u8..).zip(frontier.roots.iter_mut()) {
            if (size >> level) & 1 == 1 {
                *root = read_node(
                    store,
                    NodeKey {
                        level,
                        index: (size >> level) - 1,
                    },
                )?;
            }
        }
        Ok(frontier)
    }

    /// Appends one leaf and reports the leaf and every perfect subtree that it completes,
    /// lowest level first. The caller keeps `size < u64::MAX`.
    fn push<H: LogHasher + ?Sized>(
        &mut self,
        hasher: &H,
        leaf_hash: Hash32,
        mut completed: impl FnMut(NodeKey, Hash32),
    ) {
        assert!(
            self.size < u64::MAX,
            "the caller checks the log size before appending"
        );
        let leaf_index = self.size;
        let mut carry = leaf_hash;
        completed(
            NodeKey {
                level: 0,
                index: leaf_index,
            },
            carry,
        );
        // `leaf_index` has a zero bit below bit 64, so the carry stops at level 63 at most.
        let mut level = 0u8;
        while (leaf_index >> level) & 1 == 1 {
            carry = hasher.node_hash(&self.roots[usize::from(level)], &carry);
            level += 1;
            completed(
                NodeKey {
                    level,
                    index: leaf_index >> level,
                },
                carry,
            );
        }
        self.roots[usize::from(level)] = carry;
        self.size += 1;
    }

    /// `MTH` of the whole tree: the perfect subtrees folded from the right (RFC 9162
    /// section 2.1.1 splits off the largest power of two on the left at every step).
    fn root<H: LogHasher + ?Sized>(&self, hasher: &H) -> Hash32 {
        let mut folded: Option<Hash32> = None;
        for (level, root) in self.roots.iter().enumerate() {
            if (self.size >> level) & 1 == 1 {
                folded = Some(match folded {
                    None => *root,
                    Some(right) => hasher.node_hash(root, &right),
                });
            }
        }
        folded.unwrap_or_else(|| hasher.empty_root())
    }
}

/// `MTH(D[n])` of RFC 9162 section 2.1.1 for the leaves whose data is `leaves`, in one
/// pass with no allocation.
pub fn root_from_leaves<H, D>(hasher: &H, leaves: &[D]) -> Hash32
where
    H: LogHasher + ?Sized,
    D: AsRef<[u8]>,
{
    let mut frontier = Frontier::empty();
    for leaf in leaves {
        frontier.push(hasher, hasher.leaf_hash(leaf.as_ref()), |_, _| {});
    }
    frontier.root(hasher)
}

/// `MTH(D[n])` for leaves given by their leaf hashes ([`LogHasher::leaf_hash`]).
pub fn root_from_leaf_hashes<H: LogHasher + ?Sized>(hasher: &H, leaf_hashes: &[Hash32]) -> Hash32 {
    let mut frontier = Frontier::empty();
    for leaf_hash in leaf_hashes {
        frontier.push(hasher, *leaf_hash, |_, _| {});
    }
    frontier.root(hasher)
}

// ---------------------------------------------------------------------------------------
// Storage of perfect subtrees
// ---------------------------------------------------------------------------------------

/// The address of a perfect subtree: the `2^level` leaves starting at `index * 2^level`.
/// Level 0 holds the leaf hashes.
///
/// Encoded for a store as 9 bytes: `level` then `index` as a big-endian `u64`
/// ([`NodeKey::to_bytes`]), so that a store's byte order sorts the nodes by level, then by
/// position, and the leaf hashes form one contiguous range. A store that shares a keyspace
/// puts its own prefix in front.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct NodeKey {
    pub level: u8,
    pub index: u64,
}

impl NodeKey {
    /// The length of [`NodeKey::to_bytes`].
    pub const ENCODED_LENGTH_BYTES: usize = 9;

    /// `level || big-endian index`.
    pub fn to_bytes(self) -> [u8; NodeKey::ENCODED_LENGTH_BYTES] {
        let mut bytes = [0u8; NodeKey::ENCODED_LENGTH_BYTES];
        let (level_part, index_part) = bytes.split_at_mut(1);
        level_part.copy_from_slice(&[self.level]);
        index_part.copy_from_slice(&self.index.to_be_bytes());
        bytes
    }

    /// The inverse of [`NodeKey::to_bytes`]; rejects keys of another length and nodes that
    /// no log of at most `2^64 - 1` leaves has.
    pub fn from_bytes(bytes: &[u8]) -> Result<NodeKey, LogError> {
        let length_error = LogError::NodeKeyLength {
            length_bytes: bytes.len(),
        };
        let Some((&level, index_bytes)) = bytes.split_first() else {
            return Err(length_error);
        };
        let index_bytes: [u8; 8] = index_bytes.try_into().map_err(|_| length_error)?;
        let key = NodeKey {
            level,
            index: u64::from_be_bytes(index_bytes),
        };
        if level > MAX_NODE_LEVEL {
            return Err(LogError::NodeKeyOutOfRange { key });
        }
        // The node's last leaf, `(index + 1) * 2^level - 1`, must be a leaf index, that is
        // below `u64::MAX` (at most 2^64 * 2^63, no overflow in u128).
        let last_leaf = ((u128::from(key.index) + 1) << level) - 1;
        if last_leaf >= u128::from(u64::MAX) {
            return Err(LogError::NodeKeyOutOfRange { key });
        }
        Ok(key)
    }
}

impl fmt::Display for NodeKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "level {}, index {}", self.level, self.index)
    }
}

/// Read access to the hashes of the log's perfect subtrees.
///
/// The store only grows: [`append`] returns the nodes to add and the caller writes them
/// in the same atomic batch as the block that carries the leaves. A store does not know
/// the log's size; a question about a size beyond the appended leaves ends in
/// [`LogError::MissingNode`] wherever it needs a node that is not there, so callers check
/// sizes against the current log size first.
pub trait LogNodeStore {
    /// The hash of the perfect subtree at `key`, or `None` if the store has no such node.
    /// A failure of the store itself is [`LogError::StoreRead`].
    fn node(&self, key: NodeKey) -> Result<Option<Hash32>, LogError>;
}

impl<S: LogNodeStore + ?Sized> LogNodeStore for &S {
    fn node(&self, key: NodeKey) -> Result<Option<Hash32>, LogError> {
        (**self).node(key)
    }
}

fn read_node<S: LogNodeStore + ?Sized>(store: &S, key: NodeKey) -> Result<Hash32, LogError> {
    store.node(key)?.ok_or(LogError::MissingNode { key })
}

/// A [`LogNodeStore`] in memory, for tests and for callers that keep the log in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryLogStore {
    nodes: HashMap<NodeKey, Hash32>,
}

impl MemoryLogStore {
    /// An empty store: the log of size 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds nodes, as returned in [`LogAppend::nodes`].
    pub fn insert_nodes(&mut self, nodes: impl IntoIterator<Item = (NodeKey, Hash32)>) {
        self.nodes.extend(nodes);
    }

    /// The number of nodes stored.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node is stored.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

impl LogNodeStore for MemoryLogStore {
    fn node(&self, key: NodeKey) -> Result<Option<Hash32>, LogError> {
        Ok(self.nodes.get(&key).copied())
    }
}

// ---------------------------------------------------------------------------------------
// Construction from the store
// ---------------------------------------------------------------------------------------

/// What appending leaves to the log produces.
///
/// Persist-before-acknowledge: the caller writes every entry of `nodes` (key
/// [`NodeKey::to_bytes`], value the 32 hash bytes) in the same atomic batch as the block
/// whose transactions are the leaves, and records `new_size` with it; until then the store
/// still describes the log of the old size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogAppend {
    /// The log size after the append.
    pub new_size: u64,
    /// `MTH` of the log after the append (the block header's `log_root`).
    pub new_root: Hash32,
    /// The perfect subtrees completed by the append, leaves included, in the order they
    /// were completed.
    pub nodes: Vec<(NodeKey, Hash32)>,
}

/// Appends `new_leaf_hashes` ([`LogHasher::leaf_hash`] of each transaction, in order) to
/// the log of `current_size` leaves held by `store`, which this reads but does not change.
///
/// Reads at most 64 nodes (the perfect subtrees of the current tree), computes one node
/// hash per new interior node (fewer than one per leaf on average), and allocates once for
/// the returned nodes. Calling it with nothing to append returns the current root.
///
/// Errors: [`LogError::LogSizeOverflow`]; [`LogError::MissingNode`] when the store does not
/// hold a log of `current_size` leaves; [`LogError::StoreRead`].
pub fn append<H, S>(
    hasher: &H,
    store: &S,
    current_size: u64,
    new_leaf_hashes: &[Hash32],
) -> Result<LogAppend, LogError>
where
    H: LogHasher + ?Sized,
    S: LogNodeStore + ?Sized,
{
    let overflow = LogError::LogSizeOverflow {
        log_size: current_size,
        appended: new_leaf_hashes.len(),
    };
    let appended = u64::try_from(new_leaf_hashes.len()).map_err(|_| overflow.clone())?;
    let new_size = current_size.checked_add(appended).ok_or(overflow)?;

    let mut frontier = Frontier::load(store, current_size)?;
    // Each level gains one node per `2^level` leaves crossed.
    let node_count: u64 = (0..u64::BITS)
        .map(|level| (new_size >> level) - (current_size >> level))
        .sum();
    let mut nodes = Vec::with_capacity(usize::try_from(node_count).unwrap_or(0));
    for leaf_hash in new_leaf_hashes {
        frontier.push(hasher, *leaf_hash, |key, hash| nodes.push((key, hash)));
    }
    debug_assert_eq!(nodes.len() as u64, node_count);
    debug_assert_eq!(frontier.size, new_size);
    Ok(LogAppend {
        new_size,
        new_root: frontier.root(hasher),
        nodes,
    })
}

/// `MTH(D[start..start + count])` for a range that starts on a multiple of the largest
/// power of two not above `count`: the range is one perfect subtree followed by smaller
/// ones (one per one bit of `count`), folded from the right as in RFC 9162 section 2.1.1.
/// Reads one node per one bit of `count`; recursion depth at most 64.
fn range_hash<H, S>(hasher: &H, store: &S, start: u64, count: u64) -> Result<Hash32, LogError>
where
    H: LogHasher + ?Sized,
    S: LogNodeStore + ?Sized,
{
    debug_assert!(count > 0, "an empty range has no node");
    let level = u64::BITS - 1 - count.leading_zeros();
    debug_assert_eq!(start % (1u64 << level), 0, "range start not aligned");
    let left = read_node(
        store,
        NodeKey {
            level: level as u8,
            index: start >> level,
        },
    )?;
    let rest = count - (1u64 << level);
    if rest == 0 {
        return Ok(left);
    }
    let right = range_hash(hasher, store, start + (1u64 << level), rest)?;
    Ok(hasher.node_hash(&left, &right))
}

/// Pushes onto `path` the inclusion path of the node at (`level`, `index`) in the tree of
/// `tree_size` leaves: for each level from `level` up, the hash of the ancestor's sibling,
/// where it has one. Left siblings are perfect and read; a right sibling on the right edge
/// may be partial and is recomputed by [`range_hash`].
fn push_path<H, S>(
    hasher: &H,
    store: &S,
    level: u32,
    index: u64,
    tree_size: u64,
    path: &mut Vec<Hash32>,
) -> Result<(), LogError>
where
    H: LogHasher + ?Sized,
    S: LogNodeStore + ?Sized,
{
    debug_assert!(tree_size > 0 && level < u64::BITS);
    for current_level in level..u64::BITS {
        let last_index = (tree_size - 1) >> current_level;
        if last_index == 0 {
            break;
        }
        let node_index = index >> (current_level - level);
        let sibling_index = node_index ^ 1;
        if sibling_index > last_index {
            // A right-edge node without a sibling moves up unchanged (RFC 9162 section
            // 2.1.1 never splits a tree into an empty half).
            continue;
        }
        let sibling = if sibling_index < node_index {
            read_node(
                store,
                NodeKey {
                    level: current_level as u8,
                    index: sibling_index,
                },
            )?
        } else {
            let start = sibling_index << current_level;
            let count = (tree_size - start).min(1u64 << current_level);
            range_hash(hasher, store, start, count)?
        };
        path.push(sibling);
    }
    Ok(())
}

/// `MTH(D[tree_size])`: the root of the log when it had `tree_size` leaves, for any size up
/// to the current one. Reads one node per one bit of `tree_size`.
pub fn root<H, S>(hasher: &H, store: &S, tree_size: u64) -> Result<Hash32, LogError>
where
    H: LogHasher + ?Sized,
    S: LogNodeStore + ?Sized,
{
    if tree_size == 0 {
        return Ok(hasher.empty_root());
    }
    range_hash(hasher, store, 0, tree_size)
}

/// The inclusion proof of the leaf at `leaf_index` in the log of `tree_size` leaves
/// (RFC 9162 section 2.1.3.1), for any size up to the current one. At most 129 reads: the
/// leaf itself (so that a proof is never made for a leaf that is not in the store), one per
/// left sibling, and the perfect subtrees of one partial right sibling.
///
/// Errors: [`LogError::LeafIndexBeyondSize`]; [`LogError::MissingNode`] when the log is
/// shorter than `tree_size`; [`LogError::StoreRead`].
pub fn inclusion_proof<H, S>(
    hasher: &H,
    store: &S,
    leaf_index: u64,
    tree_size: u64,
) -> Result<InclusionProof, LogError>
where
    H: LogHasher + ?Sized,
    S: LogNodeStore + ?Sized,
{
    let length = inclusion_proof_length(leaf_index, tree_size)?;
    read_node(
        store,
        NodeKey {
            level: 0,
            index: leaf_index,
        },
    )?;
    let mut path = Vec::with_capacity(length);
    push_path(hasher, store, 0, leaf_index, tree_size, &mut path)?;
    debug_assert_eq!(path.len(), length);
    Ok(InclusionProof {
        leaf_index,
        tree_size,
        path,
    })
}

/// The consistency proof from the log of `first_size` leaves to the log of `second_size`
/// leaves (RFC 9162 section 2.1.4.1), for any sizes up to the current one. Empty when
/// `first_size` is 0 or equal to `second_size` (no store read then). At most 130 reads.
///
/// The proof is the inclusion path, in the second tree, of the largest perfect subtree that
/// ends at `first_size`, preceded by that subtree's hash unless it is the whole first tree
/// (`first_size` a power of two), which is what `SUBPROOF` collects.
///
/// Errors: [`LogError::FirstSizeGreaterThanSecond`]; [`LogError::MissingNode`] when the log
/// is shorter than `second_size`; [`LogError::StoreRead`].
pub fn consistency_proof<H, S>(
    hasher: &H,
    store: &S,
    first_size: u64,
    second_size: u64,
) -> Result<ConsistencyProof, LogError>
where
    H: LogHasher + ?Sized,
    S: LogNodeStore + ?Sized,
{
    let length = consistency_proof_length(first_size, second_size)?;
    let mut path = Vec::with_capacity(length);
    if first_size != 0 && first_size != second_size {
        let level = first_size.trailing_zeros();
        let index = (first_size >> level) - 1;
        if !first_size.is_power_of_two() {
            path.push(read_node(
                store,
                NodeKey {
                    level: level as u8,
                    index,
                },
            )?);
        }
        push_path(hasher, store, level, index, second_size, &mut path)?;
    }
    debug_assert_eq!(path.len(), length);
    Ok(ConsistencyProof {
        first_size,
        second_size,
        path,
    })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// RFC 9162 section 2.1 written out as defined: `MTH`, `PATH` and `PROOF`/`SUBPROOF`
    /// over leaf data, recursive and slow, sharing nothing with the module but the hashes.
    mod reference {
        use super::super::LogHasher;
        use crate::hash::Hash32;

        /// The largest power of two smaller than `n` (`n > 1`).
        fn split(n: usize) -> usize {
            assert!(n > 1);
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            k
        }

        /// Section 2.1.1.
        pub fn mth<H: LogHasher>(hasher: &H, leaves: &[Vec<u8>]) -> Hash32 {
            match leaves {
                [] => hasher.empty_root(),
                [leaf] => hasher.leaf_hash(leaf),
                _ => {
                    let k = split(leaves.len());
                    hasher.node_hash(&mth(hasher, &leaves[..k]), &mth(hasher, &leaves[k..]))
                }
            }
        }

        /// Section 2.1.3.1, `PATH(m, D_n)`.
        pub fn path<H: LogHasher>(hasher: &H, m: usize, leaves: &[Vec<u8>]) -> Vec<Hash32> {
            let n = leaves.len();
            assert!(m < n);
            if n == 1 {
                return Vec::new();
            }
            let k = split(n);
            if m < k {
                let mut path = path(hasher, m, &leaves[..k]);
                path.push(mth(hasher, &leaves[k..]));
                path
            } else {
                let mut path = path(hasher, m - k, &leaves[k..]);
                path.push(mth(hasher, &leaves[..k]));
                path
            }
        }

        /// Section 2.1.4.1, `PROOF(m, D_n)`, for `0 < m <= n`.
        pub fn proof<H: LogHasher>(hasher: &H, m: usize, leaves: &[Vec<u8>]) -> Vec<Hash32> {
            assert!(0 < m && m <= leaves.len());
            subproof(hasher, m, leaves, true)
        }

        fn subproof<H: LogHasher>(
            hasher: &H,
            m: usize,
            leaves: &[Vec<u8>],
            whole: bool,
        ) -> Vec<Hash32> {
            let n = leaves.len();
            if m == n {
                return if whole {
                    Vec::new()
                } else {
                    vec![mth(hasher, leaves)]
                };
            }
            let k = split(n);
            if m <= k {
                let mut proof = subproof(hasher, m, &leaves[..k], whole);
                proof.push(mth(hasher, &leaves[k..]));
                proof
            } else {
                let mut proof = subproof(hasher, m - k, &leaves[k..], false);
                proof.push(mth(hasher, &leaves[..k]));
                proof
            }
        }
    }

    fn leaf_data(count: usize) -> Vec<Vec<u8>> {
        (0..count as u64)
            .map(|index| format!("transaction {index}").into_bytes())
            .collect()
    }

    fn leaf_hashes<H: LogHasher>(hasher: &H, leaves: &[Vec<u8>]) -> Vec<Hash32> {
        leaves.iter().map(|leaf| hasher.leaf_hash(leaf)).collect()
    }

    /// A store holding `leaves`, appended in batches whose sizes cycle through
    /// `batch_sizes`.
    fn build_store<H: LogHasher>(
        hasher: &H,
        leaves: &[Vec<u8>],
        batch_sizes: &[usize],
    ) -> MemoryLogStore {
        let hashes = leaf_hashes(hasher, leaves);
        let mut store = MemoryLogStore::new();
        let mut size = 0usize;
        for batch_size in batch_sizes.iter().cycle() {
            if size == hashes.len() {
                break;
            }
            let end = (size + batch_size).min(hashes.len());
            let appended = append(hasher, &store, size as u64, &hashes[size..end]).unwrap();
            assert_eq!(appended.new_size, end as u64);
            assert_eq!(appended.new_root, reference::mth(hasher, &leaves[..end]));
            store.insert_nodes(appended.nodes);
            size = end;
        }
        store
    }

    fn flip_bit(hash: &Hash32) -> Hash32 {
        let mut bytes = hash.0;
        bytes[0] ^= 1;
        Hash32(bytes)
    }

    const GARBAGE: Hash32 = Hash32([0xab; 32]);

    #[test]
    fn hashers_follow_rfc_9162_section_2_1_1() {
        let concatenated = |parts: &[&[u8]]| parts.concat();
        let left = Hash32([1; 32]);
        let right = Hash32([2; 32]);

        assert_eq!(
            Sha256Log.empty_root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            Sha256Log.leaf_hash(b"abc").0,
            <[u8; 32]>::from(sha2::Sha256::digest(concatenated(&[&[0], b"abc"])))
        );
        assert_eq!(
            Sha256Log.node_hash(&left, &right).0,
            <[u8; 32]>::from(sha2::Sha256::digest(concatenated(&[
                &[1],
                &left.0,
                &right.0
            ])))
        );

        assert_eq!(
            Blake3Log.empty_root().to_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(
            Blake3Log.leaf_hash(b"abc"),
            blake3::hash(&concatenated(&[&[0], b"abc"])).into()
        );
        assert_eq!(
            Blake3Log.node_hash(&left, &right),
            blake3::hash(&concatenated(&[&[1], &left.0, &right.0])).into()
        );
    }

    /// Every size 0..=70, every leaf, every pair of sizes, from one store of 70 leaves.
    fn check_all_small_trees<H: LogHasher>(hasher: &H) {
        const SIZE_MAX: usize = 70;
        let leaves = leaf_data(SIZE_MAX);
        let hashes = leaf_hashes(hasher, &leaves);
        let store = build_store(hasher, &leaves, &[1]);
        for second in 0..=SIZE_MAX {
            let prefix = &leaves[..second];
            let second_size = second as u64;
            let second_root = reference::mth(hasher, prefix);
            assert_eq!(
                root(hasher, &store, second_size).unwrap(),
                second_root,
                "size {second}"
            );
            assert_eq!(root_from_leaves(hasher, prefix), second_root);
            assert_eq!(
                root_from_leaf_hashes(hasher, &hashes[..second]),
                second_root
            );

            for (index, leaf_hash) in hashes[..second].iter().enumerate() {
                let proof = inclusion_proof(hasher, &store, index as u64, second_size).unwrap();
                assert_eq!(
                    proof.path,
                    reference::path(hasher, index, prefix),
                    "{index} in {second}"
                );
                assert_eq!(
                    inclusion_proof_length(index as u64, second_size),
                    Ok(proof.path.len())
                );
                assert!(proof.path.len() <= MAX_INCLUSION_PROOF_HASHES);
                assert_eq!(proof.root(hasher, leaf_hash), Ok(second_root));
                proof.verify(hasher, leaf_hash, &second_root).unwrap();
            }

            for first in 0..=second {
                let first_size = first as u64;
                let first_root = reference::mth(hasher, &leaves[..first]);
                let proof = consistency_proof(hasher, &store, first_size, second_size).unwrap();
                let expected = if first == 0 {
                    Vec::new()
                } else {
                    reference::proof(hasher, first, prefix)
                };
                assert_eq!(proof.path, expected, "{first} to {second}");
                assert_eq!(
                    consistency_proof_length(first_size, second_size),
                    Ok(expected.len())
                );
                assert!(proof.path.len() <= MAX_CONSISTENCY_PROOF_HASHES);
                proof.verify(hasher, &first_root, &second_root).unwrap();
            }
        }
    }

    #[test]
    fn every_tree_up_to_70_leaves_matches_the_reference_blake3() {
        check_all_small_trees(&Blake3Log);
    }

    #[test]
    fn every_tree_up_to_70_leaves_matches_the_reference_sha256() {
        check_all_small_trees(&Sha256Log);
    }

    #[test]
    fn batch_boundaries_do_not_change_the_stored_nodes() {
        let leaves = leaf_data(70);
        let one_by_one = build_store(&Blake3Log, &leaves, &[1]);
        let all_at_once = build_store(&Blake3Log, &leaves, &[70]);
        let uneven = build_store(&Blake3Log, &leaves, &[3, 1, 7, 0, 16, 5]);
        assert_eq!(one_by_one.nodes, all_at_once.nodes);
        assert_eq!(one_by_one.nodes, uneven.nodes);
        // One node per leaf, plus one per interior perfect subtree: 2n - popcount(n).
        assert_eq!(one_by_one.len(), 2 * 70 - 70u32.count_ones() as usize);
        for (key, hash) in &one_by_one.nodes {
            let first_leaf = (key.index << key.level) as usize;
            let leaf_count = 1usize << key.level;
            let expected = reference::mth(&Blake3Log, &leaves[first_leaf..first_leaf + leaf_count]);
            assert_eq!(*hash, expected, "node {key}");
        }
    }

    #[test]
    fn appending_nothing_returns_the_current_root() {
        let leaves = leaf_data(5);
        let store = build_store(&Blake3Log, &leaves, &[5]);
        let appended = append(&Blake3Log, &store, 5, &[]).unwrap();
        assert_eq!(appended.new_size, 5);
        assert_eq!(appended.new_root, reference::mth(&Blake3Log, &leaves));
        assert!(appended.nodes.is_empty());
        let empty = append(&Blake3Log, &MemoryLogStore::new(), 0, &[]).unwrap();
        assert_eq!(empty.new_root, Blake3Log.empty_root());
    }

    fn check_against_reference<H: LogHasher>(hasher: &H, size: usize, index: usize, first: usize) {
        let leaves = leaf_data(size);
        let store = build_store(hasher, &leaves, &[97, 1, 1000]);
        let hashes = leaf_hashes(hasher, &leaves);
        let root_hash = reference::mth(hasher, &leaves);
        assert_eq!(root(hasher, &store, size as u64).unwrap(), root_hash);

        let proof = inclusion_proof(hasher, &store, index as u64, size as u64).unwrap();
        assert_eq!(proof.path, reference::path(hasher, index, &leaves));
        proof.verify(hasher, &hashes[index], &root_hash).unwrap();

        let proof = consistency_proof(hasher, &store, first as u64, size as u64).unwrap();
        assert_eq!(proof.path, reference::proof(hasher, first, &leaves));
        let first_root = reference::mth(hasher, &leaves[..first]);
        proof.verify(hasher, &first_root, &root_hash).unwrap();
    }

    fn config(cases: u32) -> ProptestConfig {
        ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config(48))]

        #[test]
        fn larger_trees_match_the_reference(
            size in 71usize..3000,
            index_fraction in 0.0f64..1.0,
            first_fraction in 0.0f64..1.0,
        ) {
            let index = ((size as f64 * index_fraction) as usize).min(size - 1);
            let first = ((size as f64 * first_fraction) as usize).clamp(1, size);
            check_against_reference(&Blake3Log, size, index, first);
            check_against_reference(&Sha256Log, size, index, first);
        }
    }

    /// Sizes that reach the edges of `u64`.
    fn any_size() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0u64),
            Just(1u64),
            Just(u64::MAX),
            Just(u64::MAX - 1),
            0u64..300,
            any::<u64>(),
            (0u32..64).prop_map(|shift| 1u64 << shift),
        ]
    }

    proptest! {
        #![proptest_config(config(2000))]

        #[test]
        fn verification_never_panics_and_checks_the_length(
            first in any_size(),
            second in any_size(),
            path in prop::collection::vec(any::<[u8; 32]>().prop_map(Hash32), 0..140),
            leaf_or_root in any::<[u8; 32]>().prop_map(Hash32),
            other_root in any::<[u8; 32]>().prop_map(Hash32),
        ) {
            for hasher in [&Blake3Log as &dyn LogHasher, &Sha256Log] {
                let inclusion = verify_inclusion(hasher, first, second, &leaf_or_root, &path, &other_root);
                match inclusion_proof_length(first, second) {
                    Ok(length) => {
                        prop_assert!(length <= MAX_INCLUSION_PROOF_HASHES);
                        if path.len() != length {
                            let length_error = matches!(
                                inclusion,
                                Err(LogError::ProofTooLong { .. } | LogError::ProofTooShort { .. })
                            );
                            prop_assert!(length_error);
                        }
                    }
                    Err(error) => prop_assert_eq!(inclusion, Err(error)),
                }
                let consistency = verify_consistency(hasher, first, second, &leaf_or_root, &other_root, &path);
                match consistency_proof_length(first, second) {
                    Ok(length) => {
                        prop_assert!(length <= MAX_CONSISTENCY_PROOF_HASHES);
                        if path.len() != length {
                            let length_error = matches!(
                                consistency,
                                Err(LogError::ProofTooLong { .. } | LogError::ProofTooShort { .. })
                            );
                            prop_assert!(length_error);
                        }
                    }
                    Err(error) => prop_assert_eq!(consistency, Err(error)),
                }
            }
        }
    }

    /// A log whose leaves all have the same hash, so that the node at level `l` is the same
    /// at every index and the store can answer for any size, up to `2^64 - 1` leaves.
    /// It counts its reads.
    struct UniformStore {
        levels: Vec<Hash32>,
        reads: Cell<usize>,
    }

    impl UniformStore {
        fn new() -> Self {
            let mut levels = vec![Blake3Log.leaf_hash(b"same")];
            for level in 1..=usize::from(MAX_NODE_LEVEL) {
                let below = levels[level - 1];
                levels.push(Blake3Log.node_hash(&below, &below));
            }
            UniformStore {
                levels,
                reads: Cell::new(0),
            }
        }

        fn take_reads(&self) -> usize {
            self.reads.replace(0)
        }
    }

    impl LogNodeStore for UniformStore {
        fn node(&self, key: NodeKey) -> Result<Option<Hash32>, LogError> {
            self.reads.set(self.reads.get() + 1);
            Ok(self.levels.get(usize::from(key.level)).copied())
        }
    }

    #[test]
    fn the_proof_length_bounds_are_reached_at_the_largest_size() {
        let store = UniformStore::new();
        let leaf = store.levels[0];
        let size = u64::MAX;
        let root_hash = root(&Blake3Log, &store, size).unwrap();

        let proof = inclusion_proof(&Blake3Log, &store, 0, size).unwrap();
        assert_eq!(proof.path.len(), MAX_INCLUSION_PROOF_HASHES);
        proof.verify(&Blake3Log, &leaf, &root_hash).unwrap();
        let last = inclusion_proof(&Blake3Log, &store, size - 1, size).unwrap();
        assert_eq!(last.path.len(), 63);
        last.verify(&Blake3Log, &leaf, &root_hash).unwrap();

        let first_root = root(&Blake3Log, &store, 3).unwrap();
        let proof = consistency_proof(&Blake3Log, &store, 3, size).unwrap();
        assert_eq!(proof.path.len(), MAX_CONSISTENCY_PROOF_HASHES);
        proof.verify(&Blake3Log, &first_root, &root_hash).unwrap();
    }

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn huge_logs_prove_in_logarithmic_reads(
            size in any_size().prop_filter("non-empty", |size| *size > 0),
            index_seed in any::<u64>(),
            first_seed in any::<u64>(),
        ) {
            let store = UniformStore::new();
            let hasher = Blake3Log;
            let index = index_seed % size;
            let first = first_seed % (size + (size < u64::MAX) as u64);

            let root_hash = root(&hasher, &store, size).unwrap();
            prop_assert_eq!(store.take_reads(), size.count_ones() as usize);

            let proof = inclusion_proof(&hasher, &store, index, size).unwrap();
            prop_assert!(store.take_reads() <= 1 + 2 * 64);
            proof.verify(&hasher, &store.levels[0], &root_hash).unwrap();

            let first_root = root(&hasher, &store, first).unwrap();
            store.take_reads();
            let proof = consistency_proof(&hasher, &store, first, size).unwrap();
            prop_assert!(store.take_reads() <= 2 * 64 + 1);
            proof.verify(&hasher, &first_root, &root_hash).unwrap();

            if size < u64::MAX {
                let appended = append(&hasher, &store, size - 1, &[store.levels[0]]).unwrap();
                prop_assert_eq!(store.take_reads(), (size - 1).count_ones() as usize);
                prop_assert_eq!(appended.new_root, root_hash);
            }
        }
    }

    #[test]
    fn empty_tree() {
        let store = MemoryLogStore::new();
        let empty_root = Blake3Log.empty_root();
        assert_eq!(root(&Blake3Log, &store, 0), Ok(empty_root));
        assert_eq!(root_from_leaf_hashes(&Blake3Log, &[]), empty_root);
        assert_eq!(root_from_leaves::<_, &[u8]>(&Blake3Log, &[]), empty_root);
        let beyond = LogError::LeafIndexBeyondSize {
            leaf_index: 0,
            tree_size: 0,
        };
        assert_eq!(
            inclusion_proof(&Blake3Log, &store, 0, 0),
            Err(beyond.clone())
        );
        assert_eq!(
            verify_inclusion(&Blake3Log, 0, 0, &empty_root, &[], &empty_root),
            Err(beyond)
        );

        let proof = consistency_proof(&Blake3Log, &store, 0, 0).unwrap();
        assert!(proof.path.is_empty());
        assert_eq!(proof.verify(&Blake3Log, &empty_root, &empty_root), Ok(()));
        assert_eq!(
            proof.verify(&Blake3Log, &empty_root, &GARBAGE),
            Err(LogError::SecondRootMismatch {
                computed: empty_root,
                expected: GARBAGE
            })
        );
        assert_eq!(
            verify_consistency(&Blake3Log, 0, 5, &GARBAGE, &GARBAGE, &[]),
            Err(LogError::FirstRootMismatch {
                computed: empty_root,
                expected: GARBAGE
            })
        );
        assert_eq!(
            verify_consistency(&Blake3Log, 0, 5, &empty_root, &GARBAGE, &[]),
            Ok(())
        );
        assert_eq!(
            verify_consistency(&Blake3Log, 0, 5, &empty_root, &GARBAGE, &[GARBAGE]),
            Err(LogError::ProofTooLong {
                expected: 0,
                actual: 1
            })
        );
    }

    #[test]
    fn tree_of_one_leaf() {
        let leaves = leaf_data(1);
        let store = build_store(&Blake3Log, &leaves, &[1]);
        let leaf = Blake3Log.leaf_hash(&leaves[0]);
        assert_eq!(root(&Blake3Log, &store, 1), Ok(leaf));
        let proof = inclusion_proof(&Blake3Log, &store, 0, 1).unwrap();
        assert!(proof.path.is_empty());
        assert_eq!(proof.verify(&Blake3Log, &leaf, &leaf), Ok(()));
        assert_eq!(
            verify_inclusion(&Blake3Log, 0, 1, &leaf, &[GARBAGE], &leaf),
            Err(LogError::ProofTooLong {
                expected: 0,
                actual: 1
            })
        );
        assert_eq!(
            verify_inclusion(&Blake3Log, 1, 1, &leaf, &[], &leaf),
            Err(LogError::LeafIndexBeyondSize {
                leaf_index: 1,
                tree_size: 1
            })
        );
        let proof = consistency_proof(&Blake3Log, &store, 1, 1).unwrap();
        assert!(proof.path.is_empty());
        assert_eq!(proof.verify(&Blake3Log, &leaf, &leaf), Ok(()));
    }

    #[test]
    fn last_leaf_and_equal_sizes() {
        let leaves = leaf_data(7);
        let store = build_store(&Blake3Log, &leaves, &[7]);
        let hashes = leaf_hashes(&Blake3Log, &leaves);
        let root_hash = root(&Blake3Log, &store, 7).unwrap();
        // Leaf 6 of 7 has no right sibling at level 0: the path is MTH(D[4:6]), MTH(D[0:4]).
        let proof = inclusion_proof(&Blake3Log, &store, 6, 7).unwrap();
        assert_eq!(
            proof.path,
            vec![
                reference::mth(&Blake3Log, &leaves[4..6]),
                reference::mth(&Blake3Log, &leaves[0..4])
            ]
        );
        proof.verify(&Blake3Log, &hashes[6], &root_hash).unwrap();

        let proof = consistency_proof(&Blake3Log, &store, 7, 7).unwrap();
        assert!(proof.path.is_empty());
        proof.verify(&Blake3Log, &root_hash, &root_hash).unwrap();
        assert_eq!(
            proof.verify(&Blake3Log, &root_hash, &GARBAGE),
            Err(LogError::EqualSizesDifferentRoots {
                tree_size: 7,
                first_root: root_hash,
                second_root: GARBAGE
            })
        );
        assert_eq!(
            verify_consistency(&Blake3Log, 7, 7, &root_hash, &root_hash, &[GARBAGE]),
            Err(LogError::ProofTooLong {
                expected: 0,
                actual: 1
            })
        );
    }

    /// An inclusion proof and what is checked with it, changed by one named mutation.
    #[derive(Debug, Clone)]
    struct InclusionCase {
        name: &'static str,
        leaf_index: u64,
        tree_size: u64,
        leaf_hash: Hash32,
        root: Hash32,
        path: Vec<Hash32>,
        error: &'static str,
    }

    impl InclusionCase {
        fn verify<H: LogHasher>(&self, hasher: &H) -> Result<(), LogError> {
            let Self {
                leaf_index,
                tree_size,
                leaf_hash,
                root,
                path,
                ..
            } = self;
            verify_inclusion(hasher, *leaf_index, *tree_size, leaf_hash, path, root)
        }
    }

    /// A consistency proof and the roots checked with it, changed by one named mutation.
    #[derive(Debug, Clone)]
    struct ConsistencyCase {
        name: &'static str,
        first_size: u64,
        second_size: u64,
        first_root: Hash32,
        second_root: Hash32,
        path: Vec<Hash32>,
        error: &'static str,
    }

    impl ConsistencyCase {
        fn verify<H: LogHasher>(&self, hasher: &H) -> Result<(), LogError> {
            let Self {
                first_size,
                second_size,
                first_root,
                second_root,
                path,
                ..
            } = self;
            verify_consistency(
                hasher,
                *first_size,
                *second_size,
                first_root,
                second_root,
                path,
            )
        }
    }

    /// The negative vectors: valid proofs built with the reference from `leaves` (at least
    /// 8), then each changed in one way. The expected error of each is worked out by hand
    /// from the algorithm, not by running it.
    fn invalid_inclusion_cases<H: LogHasher>(hasher: &H, leaves: &[Vec<u8>]) -> Vec<InclusionCase> {
        let base = |name, leaf_index: usize, tree_size: usize, error| InclusionCase {
            name,
            leaf_index: leaf_index as u64,
            tree_size: tree_size as u64,
            leaf_hash: hasher.leaf_hash(&leaves[leaf_index]),
            root: reference::mth(hasher, &leaves[..tree_size]),
            path: reference::path(hasher, leaf_index, &leaves[..tree_size]),
            error,
        };
        let with = |mut case: InclusionCase, change: &dyn Fn(&mut InclusionCase)| {
            change(&mut case);
            case
        };
        // Leaf 5 of 8: path of 3; leaf 6 of 7 (the last leaf): path of 2.
        vec![
            with(
                base("modified-proof[0]-bit", 5, 8, "root_mismatch"),
                &|case| case.path[0] = flip_bit(&case.path[0]),
            ),
            with(
                base("modified-proof[last]-bit", 5, 8, "root_mismatch"),
                &|case| {
                    let last = case.path.len() - 1;
                    case.path[last] = flip_bit(&case.path[last])
                },
            ),
            with(
                base("swapped-proof[0]-proof[1]", 5, 8, "root_mismatch"),
                &|case| case.path.swap(0, 1),
            ),
            with(base("trailing-garbage", 5, 8, "proof_too_long"), &|case| {
                case.path.push(GARBAGE)
            }),
            with(base("truncated", 5, 8, "proof_too_short"), &|case| {
                case.path.pop();
            }),
            with(base("empty-proof", 5, 8, "proof_too_short"), &|case| {
                case.path.clear()
            }),
            with(
                base("modified-leaf-hash-bit", 5, 8, "root_mismatch"),
                &|case| case.leaf_hash = flip_bit(&case.leaf_hash),
            ),
            with(base("modified-root-bit", 5, 8, "root_mismatch"), &|case| {
                case.root = flip_bit(&case.root)
            }),
            with(base("wrong-leaf-index", 5, 8, "root_mismatch"), &|case| {
                case.leaf_index = 4
            }),
            with(
                base("leaf-index-equals-size", 5, 8, "leaf_index_beyond_size"),
                &|case| case.leaf_index = 8,
            ),
            // Leaf 5 of 6 is the last leaf, with a path of 2.
            with(base("wrong-size", 5, 8, "proof_too_long"), &|case| {
                case.tree_size = 6
            }),
            with(base("size-zero", 5, 8, "leaf_index_beyond_size"), &|case| {
                case.tree_size = 0
            }),
            with(
                base("last-leaf-trailing-garbage", 6, 7, "proof_too_long"),
                &|case| case.path.push(GARBAGE),
            ),
            with(
                base("last-leaf-modified-proof[0]-bit", 6, 7, "root_mismatch"),
                &|case| case.path[0] = flip_bit(&case.path[0]),
            ),
            // Leaf 6 of 8 needs 3 hashes.
            with(
                base("last-leaf-wrong-size", 6, 7, "proof_too_short"),
                &|case| case.tree_size = 8,
            ),
        ]
    }

    fn invalid_consistency_cases<H: LogHasher>(
        hasher: &H,
        leaves: &[Vec<u8>],
    ) -> Vec<ConsistencyCase> {
        let base = |name, first_size: usize, second_size: usize, error| ConsistencyCase {
            name,
            first_size: first_size as u64,
            second_size: second_size as u64,
            first_root: reference::mth(hasher, &leaves[..first_size]),
            second_root: reference::mth(hasher, &leaves[..second_size]),
            path: if first_size == 0 {
                Vec::new()
            } else {
                reference::proof(hasher, first_size, &leaves[..second_size])
            },
            error,
        };
        let with = |mut case: ConsistencyCase, change: &dyn Fn(&mut ConsistencyCase)| {
            change(&mut case);
            case
        };
        // 3 to 7: [D[2], D[3], MTH(D[0:2]), MTH(D[4:7])]. The first hash enters both roots
        // (the first root is compared first); the last is a right sibling and enters only
        // the second root. 4 to 8: [MTH(D[4:8])], a right sibling.
        vec![
            with(
                base("modified-proof[0]-bit", 3, 7, "first_root_mismatch"),
                &|case| case.path[0] = flip_bit(&case.path[0]),
            ),
            with(
                base("modified-proof[last]-bit", 3, 7, "second_root_mismatch"),
                &|case| {
                    let last = case.path.len() - 1;
                    case.path[last] = flip_bit(&case.path[last])
                },
            ),
            with(base("trailing-garbage", 3, 7, "proof_too_long"), &|case| {
                case.path.push(GARBAGE)
            }),
            with(base("truncated", 3, 7, "proof_too_short"), &|case| {
                case.path.pop();
            }),
            with(base("empty-proof", 3, 7, "proof_too_short"), &|case| {
                case.path.clear()
            }),
            with(
                base("swapped-sizes", 3, 7, "first_size_greater_than_second"),
                &|case| {
                    std::mem::swap(&mut case.first_size, &mut case.second_size);
                    std::mem::swap(&mut case.first_root, &mut case.second_root);
                },
            ),
            with(
                base("modified-first-root-bit", 3, 7, "first_root_mismatch"),
                &|case| case.first_root = flip_bit(&case.first_root),
            ),
            with(
                base("modified-second-root-bit", 3, 7, "second_root_mismatch"),
                &|case| case.second_root = flip_bit(&case.second_root),
            ),
            // 5 to 7 also takes 4 hashes, and the last one then enters the first root.
            with(
                base("wrong-first-size", 3, 7, "first_root_mismatch"),
                &|case| case.first_size = 5,
            ),
            with(
                base(
                    "first-size-power-of-two-modified-proof[0]-bit",
                    4,
                    8,
                    "second_root_mismatch",
                ),
                &|case| case.path[0] = flip_bit(&case.path[0]),
            ),
            with(
                base("first-root-prepended", 4, 8, "proof_too_long"),
                &|case| case.path.insert(0, case.first_root),
            ),
            with(
                base("equal-sizes-with-proof", 7, 7, "proof_too_long"),
                &|case| case.path.push(GARBAGE),
            ),
            with(
                base(
                    "equal-sizes-different-roots",
                    7,
                    7,
                    "equal_sizes_different_roots",
                ),
                &|case| case.second_root = flip_bit(&case.second_root),
            ),
            with(
                base("first-size-zero-with-proof", 0, 7, "proof_too_long"),
                &|case| case.path.push(GARBAGE),
            ),
            with(
                base(
                    "first-size-zero-wrong-first-root",
                    0,
                    7,
                    "first_root_mismatch",
                ),
                &|case| case.first_root = GARBAGE,
            ),
        ]
    }

    fn check_invalid_cases<H: LogHasher>(hasher: &H) {
        let leaves = leaf_data(8);
        for case in invalid_inclusion_cases(hasher, &leaves) {
            let error = case.verify(hasher).expect_err(case.name);
            assert_eq!(error.code(), case.error, "{}: {error}", case.name);
        }
        for case in invalid_consistency_cases(hasher, &leaves) {
            let error = case.verify(hasher).expect_err(case.name);
            assert_eq!(error.code(), case.error, "{}: {error}", case.name);
        }
    }

    #[test]
    fn mutated_proofs_fail_with_the_named_error() {
        check_invalid_cases(&Blake3Log);
        check_invalid_cases(&Sha256Log);
    }

    #[test]
    fn mutated_proofs_report_the_numbers() {
        let leaves = leaf_data(8);
        let cases = invalid_inclusion_cases(&Blake3Log, &leaves);
        let find = |name| cases.iter().find(|case| case.name == name).unwrap();
        assert_eq!(
            find("trailing-garbage").verify(&Blake3Log),
            Err(LogError::ProofTooLong {
                expected: 3,
                actual: 4
            })
        );
        assert_eq!(
            find("truncated").verify(&Blake3Log),
            Err(LogError::ProofTooShort {
                expected: 3,
                actual: 2
            })
        );
        assert_eq!(
            find("leaf-index-equals-size").verify(&Blake3Log),
            Err(LogError::LeafIndexBeyondSize {
                leaf_index: 8,
                tree_size: 8
            })
        );
        let modified = find("modified-root-bit");
        assert_eq!(
            modified.verify(&Blake3Log),
            Err(LogError::RootMismatch {
                computed: reference::mth(&Blake3Log, &leaves),
                expected: modified.root
            })
        );
        let cases = invalid_consistency_cases(&Blake3Log, &leaves);
        let swapped = cases
            .iter()
            .find(|case| case.name == "swapped-sizes")
            .unwrap();
        assert_eq!(
            swapped.verify(&Blake3Log),
            Err(LogError::FirstSizeGreaterThanSecond {
                first_size: 7,
                second_size: 3
            })
        );
    }

    // -----------------------------------------------------------------------------------
    // SHA-256 vectors
    // -----------------------------------------------------------------------------------

    const SHA256_VECTORS: &str = include_str!("../tests/vectors/log/sha256.json");

    /// The leaves of the Certificate Transparency reference test suite.
    fn ct_leaves() -> Vec<Vec<u8>> {
        vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            (0x50..=0x57).collect(),
            (0x60..=0x6f).collect(),
        ]
    }

    /// The content of `sha256.json`, computed with the reference functions.
    fn sha256_vectors() -> serde_json::Value {
        let hasher = Sha256Log;
        let leaves = ct_leaves();
        let size_max = leaves.len();
        let roots: Vec<_> = (0..=size_max)
            .map(|size| json!({ "tree_size": size, "root": reference::mth(&hasher, &leaves[..size]) }))
            .collect();
        let mut inclusion = Vec::new();
        let mut consistency = Vec::new();
        for second in 0..=size_max {
            let prefix = &leaves[..second];
            for index in 0..second {
                inclusion.push(json!(InclusionProof {
                    leaf_index: index as u64,
                    tree_size: second as u64,
                    path: reference::path(&hasher, index, prefix),
                }));
            }
            for first in 0..=second {
                consistency.push(json!(ConsistencyProof {
                    first_size: first as u64,
                    second_size: second as u64,
                    path: if first == 0 {
                        Vec::new()
                    } else {
                        reference::proof(&hasher, first, prefix)
                    },
                }));
            }
        }
        let invalid_inclusion: Vec<_> = invalid_inclusion_cases(&hasher, &leaves)
            .into_iter()
            .map(|case| {
                json!({
                    "name": case.name,
                    "leaf_index": case.leaf_index,
                    "tree_size": case.tree_size,
                    "leaf_hash": case.leaf_hash,
                    "root": case.root,
                    "path": case.path,
                    "error": case.error,
                })
            })
            .collect();
        let invalid_consistency: Vec<_> = invalid_consistency_cases(&hasher, &leaves)
            .into_iter()
            .map(|case| {
                json!({
                    "name": case.name,
                    "first_size": case.first_size,
                    "second_size": case.second_size,
                    "first_root": case.first_root,
                    "second_root": case.second_root,
                    "path": case.path,
                    "error": case.error,
                })
            })
            .collect();
        json!({
            "description": "RFC 9162 section 2.1 Merkle tree with SHA-256: leaf hash SHA-256(0x00 || leaf), node hash SHA-256(0x01 || left || right), empty tree SHA-256(\"\"). Leaves are those of the Certificate Transparency test suite. Roots for every size 0..=8, every inclusion proof and every consistency proof between those sizes (paths ordered from the bottom of the tree up), computed with a direct recursive transcription of RFC 9162 MTH, PATH and PROOF. Invalid cases are valid ones changed in the way their name says; error is the code of the verification error they must produce.",
            "hash": "sha256",
            "leaves": leaves.iter().map(hex::encode).collect::<Vec<_>>(),
            "roots": roots,
            "inclusion": inclusion,
            "consistency": consistency,
            "invalid_inclusion": invalid_inclusion,
            "invalid_consistency": invalid_consistency,
        })
    }

    /// Rewrites the vector file: `LOG_VECTORS_OUT=<path to sha256.json> cargo test --
    /// --ignored write_sha256_vectors`.
    #[test]
    #[ignore = "writes the vector file"]
    fn write_sha256_vectors() {
        let path = std::env::var("LOG_VECTORS_OUT").expect("LOG_VECTORS_OUT names the file");
        let text = serde_json::to_string_pretty(&sha256_vectors()).unwrap();
        std::fs::write(path, text + "\n").unwrap();
    }

    #[derive(Deserialize)]
    struct VectorRoot {
        tree_size: u64,
        root: Hash32,
    }

    #[derive(Deserialize)]
    struct InvalidInclusion {
        name: String,
        leaf_index: u64,
        tree_size: u64,
        leaf_hash: Hash32,
        root: Hash32,
        path: Vec<Hash32>,
        error: String,
    }

    #[derive(Deserialize)]
    struct InvalidConsistency {
        name: String,
        first_size: u64,
        second_size: u64,
        first_root: Hash32,
        second_root: Hash32,
        path: Vec<Hash32>,
        error: String,
    }

    #[derive(Deserialize)]
    struct Vectors {
        leaves: Vec<String>,
        roots: Vec<VectorRoot>,
        inclusion: Vec<InclusionProof>,
        consistency: Vec<ConsistencyProof>,
        invalid_inclusion: Vec<InvalidInclusion>,
        invalid_consistency: Vec<InvalidConsistency>,
    }

    #[test]
    fn sha256_vector_file_matches_the_reference() {
        let file: serde_json::Value = serde_json::from_str(SHA256_VECTORS).unwrap();
        assert!(
            file == sha256_vectors(),
            "sha256.json is stale: see write_sha256_vectors"
        );
    }

    #[test]
    fn sha256_vectors_verify() {
        let hasher = Sha256Log;
        let vectors: Vectors = serde_json::from_str(SHA256_VECTORS).unwrap();
        let leaves: Vec<Vec<u8>> = vectors
            .leaves
            .iter()
            .map(|leaf| hex::decode(leaf).unwrap())
            .collect();
        let hashes = leaf_hashes(&hasher, &leaves);
        let store = build_store(&hasher, &leaves, &[3]);
        let roots: Vec<Hash32> = vectors.roots.iter().map(|entry| entry.root).collect();
        for (size, entry) in vectors.roots.iter().enumerate() {
            assert_eq!(entry.tree_size, size as u64);
            assert_eq!(root(&hasher, &store, entry.tree_size), Ok(entry.root));
        }
        // Roots of the CT leaves as published with the CT reference implementation's tests.
        assert_eq!(
            roots[8].to_hex(),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        );
        assert_eq!(
            roots[1].to_hex(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(vectors.inclusion.len(), 36);
        for proof in &vectors.inclusion {
            let index = proof.leaf_index as usize;
            proof
                .verify(&hasher, &hashes[index], &roots[proof.tree_size as usize])
                .unwrap();
            let built =
                inclusion_proof(&hasher, &store, proof.leaf_index, proof.tree_size).unwrap();
            assert_eq!(&built, proof);
        }
        assert_eq!(vectors.consistency.len(), 45);
        for proof in &vectors.consistency {
            let first_root = &roots[proof.first_size as usize];
            proof
                .verify(&hasher, first_root, &roots[proof.second_size as usize])
                .unwrap();
            let built =
                consistency_proof(&hasher, &store, proof.first_size, proof.second_size).unwrap();
            assert_eq!(&built, proof);
        }
        assert!(!vectors.invalid_inclusion.is_empty());
        for case in &vectors.invalid_inclusion {
            let error = verify_inclusion(
                &hasher,
                case.leaf_index,
                case.tree_size,
                &case.leaf_hash,
                &case.path,
                &case.root,
            )
            .expect_err(&case.name);
            assert_eq!(error.code(), case.error, "{}", case.name);
        }
        assert!(!vectors.invalid_consistency.is_empty());
        for case in &vectors.invalid_consistency {
            let error = verify_consistency(
                &hasher,
                case.first_size,
                case.second_size,
                &case.first_root,
                &case.second_root,
                &case.path,
            )
            .expect_err(&case.name);
            assert_eq!(error.code(), case.error, "{}", case.name);
        }
    }

    // -----------------------------------------------------------------------------------
    // Encodings and store failures
    // -----------------------------------------------------------------------------------

    #[test]
    fn node_keys_encode_as_level_then_big_endian_index() {
        let key = NodeKey {
            level: 3,
            index: 0x0102_0304_0506_0708,
        };
        assert_eq!(key.to_bytes(), [3, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(NodeKey::from_bytes(&key.to_bytes()), Ok(key));

        let mut keys = vec![
            NodeKey { level: 1, index: 0 },
            NodeKey {
                level: 0,
                index: 256,
            },
            NodeKey { level: 0, index: 1 },
            NodeKey { level: 2, index: 5 },
            NodeKey {
                level: 0,
                index: u64::MAX - 1,
            },
        ];
        let mut encoded: Vec<_> = keys.iter().map(|key| key.to_bytes()).collect();
        keys.sort();
        encoded.sort();
        let decoded: Vec<_> = encoded
            .iter()
            .map(|bytes| NodeKey::from_bytes(bytes).unwrap())
            .collect();
        assert_eq!(decoded, keys);

        assert_eq!(
            NodeKey::from_bytes(&[0; 8]),
            Err(LogError::NodeKeyLength { length_bytes: 8 })
        );
        assert_eq!(
            NodeKey::from_bytes(&[]),
            Err(LogError::NodeKeyLength { length_bytes: 0 })
        );
        for out_of_range in [
            NodeKey {
                level: 64,
                index: 0,
            },
            NodeKey {
                level: 255,
                index: u64::MAX,
            },
            NodeKey {
                level: 0,
                index: u64::MAX,
            },
            NodeKey {
                level: 63,
                index: 1,
            },
            NodeKey {
                level: 1,
                index: u64::MAX >> 1,
            },
        ] {
            assert_eq!(
                NodeKey::from_bytes(&out_of_range.to_bytes()),
                Err(LogError::NodeKeyOutOfRange { key: out_of_range })
            );
        }
        for largest in [
            NodeKey {
                level: 63,
                index: 0,
            },
            NodeKey {
                level: 1,
                index: (u64::MAX >> 1) - 1,
            },
        ] {
            assert_eq!(NodeKey::from_bytes(&largest.to_bytes()), Ok(largest));
        }
    }

    #[test]
    fn proofs_have_a_stable_json_form() {
        let proof = InclusionProof {
            leaf_index: 5,
            tree_size: 8,
            path: vec![Hash32([1; 32])],
        };
        let text = serde_json::to_string(&proof).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"leaf_index":5,"tree_size":8,"path":["{}"]}}"#,
                "01".repeat(32)
            )
        );
        assert_eq!(
            serde_json::from_str::<InclusionProof>(&text).unwrap(),
            proof
        );
        let binary = postcard::to_stdvec(&proof).unwrap();
        assert_eq!(
            postcard::from_bytes::<InclusionProof>(&binary).unwrap(),
            proof
        );

        let proof = ConsistencyProof {
            first_size: 3,
            second_size: 7,
            path: vec![],
        };
        let text = serde_json::to_string(&proof).unwrap();
        assert_eq!(text, r#"{"first_size":3,"second_size":7,"path":[]}"#);
        assert_eq!(
            serde_json::from_str::<ConsistencyProof>(&text).unwrap(),
            proof
        );

        let extra = r#"{"first_size":3,"second_size":7,"path":[],"root":"00"}"#;
        assert!(serde_json::from_str::<ConsistencyProof>(extra).is_err());
    }

    #[test]
    fn sizes_beyond_the_log_are_missing_nodes() {
        let hasher = Blake3Log;
        let leaves = leaf_data(5);
        let store = build_store(&hasher, &leaves, &[2]);
        let missing = |level, index| {
            Some(LogError::MissingNode {
                key: NodeKey { level, index },
            })
        };
        assert_eq!(root(&hasher, &store, 6).err(), missing(1, 2));
        assert_eq!(inclusion_proof(&hasher, &store, 5, 6).err(), missing(0, 5));
        assert_eq!(inclusion_proof(&hasher, &store, 0, 6).err(), missing(1, 2));
        assert_eq!(
            consistency_proof(&hasher, &store, 2, 6).err(),
            missing(1, 2)
        );
        // Wrong current size: the perfect subtrees of a log of 6 leaves are not all there.
        assert_eq!(append(&hasher, &store, 6, &[GARBAGE]).err(), missing(1, 2));
    }

    struct FailingStore;

    impl LogNodeStore for FailingStore {
        fn node(&self, key: NodeKey) -> Result<Option<Hash32>, LogError> {
            Err(LogError::StoreRead {
                key,
                reason: "disk on fire".into(),
            })
        }
    }

    #[test]
    fn store_failures_and_overflow_are_reported() {
        let hasher = Blake3Log;
        let failed = Some(LogError::StoreRead {
            key: NodeKey { level: 2, index: 0 },
            reason: "disk on fire".into(),
        });
        assert_eq!(root(&hasher, &FailingStore, 4).err(), failed);
        assert_eq!(append(&hasher, &FailingStore, 4, &[GARBAGE]).err(), failed);
        let error = root(&hasher, &FailingStore, 4).unwrap_err();
        assert_eq!(error.code(), "store_read");
        assert_eq!(
            error.to_string(),
            "the log store could not read the node at level 2, index 0: disk on fire"
        );

        assert_eq!(
            append(&hasher, &FailingStore, u64::MAX, &[GARBAGE]).err(),
            Some(LogError::LogSizeOverflow {
                log_size: u64::MAX,
                appended: 1
            })
        );
        assert_eq!(
            append(&hasher, &FailingStore, u64::MAX - 1, &[GARBAGE, GARBAGE]).err(),
            Some(LogError::LogSizeOverflow {
                log_size: u64::MAX - 1,
                appended: 2
            })
        );
    }

    #[test]
    fn appending_reports_every_completed_subtree_in_order() {
        let hashes = leaf_hashes(&Blake3Log, &leaf_data(4));
        let appended = append(&Blake3Log, &MemoryLogStore::new(), 0, &hashes).unwrap();
        let keys: Vec<_> = appended
            .nodes
            .iter()
            .map(|(key, _)| (key.level, key.index))
            .collect();
        assert_eq!(
            keys,
            vec![(0, 0), (0, 1), (1, 0), (0, 2), (0, 3), (1, 1), (2, 0)]
        );
        let (_, top) = appended.nodes[6];
        assert_eq!(top, appended.new_root);
    }
}
