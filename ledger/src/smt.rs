//! The state commitment: a sparse Merkle tree over blake3, keyed by the hash of a record's
//! key, whose root goes into every block header.
//!
//! One node can prove against a signed state root that a key holds a given value (a
//! licence's current status) or that a key holds nothing (a licence number was never
//! issued). Verification is a pure function of the root, the key, the value and the proof
//! ([`verify_membership`], [`verify_non_membership`]); it allocates nothing, does no IO and
//! never panics.
//!
//! # The tree
//!
//! Keys and values are [`Hash32`]: the key is the tagged hash of a record's key, the value
//! the hash of the record's canonical bytes; the caller computes both. Conceptually the
//! tree is a complete binary tree of depth 256 whose leaf positions are the 2^256 keys; the
//! path from the root to key `k` goes left at depth `i` when bit `i` of `k` is 0 and right
//! when it is 1, bits counted from the most significant bit of byte 0
//! ([`Hash32::bit`]). The tree is *compacted*, which defines the hash of every subtree:
//!
//! - a subtree that holds no key hashes to 32 zero bytes ([`Hash32::ZERO`]);
//! - a subtree that holds exactly one key `k` with value `v` hashes to the leaf hash
//!   `blake3(0x00 || k || v)` (65 bytes: the byte 0x00, the 32 key bytes, the 32 value
//!   bytes), whatever the depth of that subtree;
//! - a subtree that holds two keys or more hashes to the internal hash
//!   `blake3(0x01 || left || right)` (65 bytes: the byte 0x01, the 32 bytes of the left
//!   child's hash, the 32 bytes of the right child's hash), where either child may be empty
//!   (`ZERO`).
//!
//! The root is the hash of the whole tree: `ZERO` for no keys, the leaf hash for one key.
//! "blake3" is the default, unkeyed blake3 hash with 32 bytes of output. A key therefore
//! sits at the shallowest depth where it is alone, so paths are about log2(n) long, not
//! 256; only keys sharing a long prefix make a path longer (two keys that differ only in
//! their last bit sit at depth 256, below 255 internal nodes whose other child is `ZERO`).
//!
//! # Proofs
//!
//! An [`SmtProof`] for key `k` lists the hashes of the siblings along `k`'s path, **from
//! the root downwards**: `siblings[i]` is the hash of the subtree at depth `i + 1` whose
//! path agrees with `k` on bits `0..i` and differs from it at bit `i`. The path ends after
//! `siblings.len()` steps, at the first subtree that is empty or holds exactly one key;
//! `leaf` is that key and its value, or absent if the subtree is empty. In JSON a proof is
//! `{"siblings": ["<64 hex>", ...], "leaf": {"key": "<64 hex>", "value": "<64 hex>"} | null}`;
//! in the binary (postcard) encoding the siblings are 32 raw bytes each. Siblings are not
//! compressed: in a compacted tree an empty sibling occurs only where keys share a prefix
//! longer than the tree is deep on average, so a bitmap would save almost nothing.
//!
//! To verify, given the signed `root`, the key `k`, and for membership the value `v`:
//!
//! 1. If the proof has more than 256 siblings, reject ([`SmtProofError::TooManySiblings`]).
//! 2. Membership: the proof must have a leaf ([`SmtProofError::MissingLeaf`]) whose key is
//!    `k` ([`SmtProofError::LeafKeyMismatch`]) and whose value is `v`
//!    ([`SmtProofError::LeafValueMismatch`]).
//!    Non-membership: the proof has no leaf, or a leaf whose key is not `k`
//!    ([`SmtProofError::KeyPresent`]) and agrees with `k` on the first `siblings.len()`
//!    bits, the path both keys share ([`SmtProofError::LeafNotOnPath`]).
//! 3. If there is at least one sibling, the last one must not be `ZERO`
//!    ([`SmtProofError::EmptyLastSibling`]): the path stopped because the subtree there is
//!    empty or holds one key, so its parent holds two keys or more and the other child of
//!    that parent holds at least one of them. This makes the proof for a key unique.
//! 4. Start from `node = blake3(0x00 || leaf.key || leaf.value)`, or `ZERO` without a
//!    leaf. For `i` from `siblings.len() - 1` down to 0: if bit `i` of `k` is 0,
//!    `node = blake3(0x01 || node || siblings[i])`, otherwise
//!    `node = blake3(0x01 || siblings[i] || node)`.
//! 5. Accept if `node == root`, otherwise reject ([`SmtProofError::RootMismatch`]).
//!
//! The checks run in this order, so each kind of tampering has one expected error; the
//! vectors in `tests/vectors/smt/proofs.json` pin them.
//!
//! # Storage
//!
//! The tree is stored in *pages*: a page is the part of the tree between depth `d` and
//! depth `d + 4` below one node at depth `d`, for `d` a multiple of 4 ([`SMT_PAGE_HEIGHT`]).
//! Its 16 *slots* are the subtrees at depth `d + 4`; a slot holds nothing, one key (its
//! leaf, stored in full), or two keys or more, in which case the page at depth `d + 4`
//! below that slot holds them and the slot stores that page's hash. So the page at depth
//! 0 (the root page) exists exactly when the tree is not empty, and any other page exists
//! exactly when its subtree holds two keys or more; the stored form of a tree is a function
//! of its contents alone. A leaf is stored in the slot its key falls in, even when it sits
//! higher up inside the page because it is alone there; the hashes of the nodes inside a
//! page are recomputed from its slots when the page is read, and checked against the hash
//! its parent (or the expected root) records, so a store that returns damaged pages is
//! detected ([`SmtError::PageHashMismatch`]).
//!
//! Store keys: one byte `d` (the page's depth in bits: 0, 4, ..., 252), then the first
//! `ceil(d / 8)` bytes of any key below the page, with the bits from `d` on set to zero.
//! The root page's key is the single byte 0x00. The caller may put them under a prefix of
//! its own. Page bytes, [`SMT_PAGE_FORMAT_VERSION`] 1: the version byte 0x01; the number of
//! occupied slots `n` (1..=16) as one byte; then `n` entries by increasing slot, each the
//! slot number (one byte, 0..=15: bits `d..d+4` of the keys below it), a kind byte, and
//! either (kind 0x00, a leaf) the 32 key bytes and the 32 value bytes, or (kind 0x01, a
//! page below) the 32 bytes of that page's hash.
//!
//! Why pages of height 4: every page on a changed key's path must be rewritten, because
//! each records the hashes of the pages below it. One stored node per binary node would
//! cost about 20 writes per update in a tree of a million keys; pages of height 4 cost
//! about 5 on a path, and in a block the upper pages are shared by many updates, so 5,000
//! updates on a million keys write about 2.2 pages per update (measured by the benchmark).
//! Taller pages write fewer values but larger ones: a page holds up to `2^height` slots of
//! 66 bytes, so pages of height 8 would write about 1.1 values per update but up to 17 KiB
//! each once the tree holds tens of millions of keys, while height 4 keeps every value
//! under 1.1 KiB. Pages are addressed by position, not by content, so a change overwrites
//! or deletes them in place and no garbage accumulates; only the current state is kept,
//! which is all a proof against the latest signed root needs.
//!
//! # Updating
//!
//! [`SparseMerkleTree`] is a handle holding the current root and a bounded cache of
//! decoded pages. A block's changes go through two steps:
//!
//! 1. [`SparseMerkleTree::apply`] takes the block's updates (key, new value or `None` to
//!    delete), sorts them and walks the tree once, descending only into the pages whose
//!    subtrees hold an updated key and rehashing only the nodes on those paths, each once.
//!    It reads the store but changes neither the store nor the handle, and returns an
//!    [`SmtWriteSet`]: the new root and the exact page writes and deletes.
//! 2. The caller persists those writes and deletes in the same atomic batch as the block,
//!    and only once that batch is durable, calls [`SparseMerkleTree::commit`] with the
//!    write set, which moves the handle to the new root and puts the pages in the cache.
//!
//! If `apply` fails, or the block never becomes durable, the handle and the store are as
//! they were: drop the write set. A write set computed from another root than the
//! handle's is refused by `commit` ([`SmtError::StaleWriteSet`]).
//!
//! # Cache
//!
//! The handle keeps decoded pages (with the hashes of the nodes inside them) up to
//! [`SMT_CACHE_SIZE_BYTES_DEFAULT`] or the limit given to
//! [`SparseMerkleTree::with_cache_limit`]. Pages enter the cache only at `commit`: the
//! pages that block wrote, and the unchanged pages `apply` read on the way; deleted pages
//! leave it. So the cache only ever holds pages as they are persisted at the committed
//! root. When the estimate of its size passes the limit, it drops the pages that were
//! least recently used by a committed block (the deepest first among equals) until it is
//! back under seven eighths of the limit; pages near the root are used by every block and
//! stay. Reads ([`SparseMerkleTree::get`], [`SparseMerkleTree::prove`]) use the cache but
//! do not fill it, so they take `&self` and may run concurrently.
//!
//! # Example
//!
//! ```
//! use hutong_ledger::hash::{Hash32, tagged};
//! use hutong_ledger::smt::{MemorySmtStore, SparseMerkleTree, verify_membership, verify_non_membership};
//!
//! let mut store = MemorySmtStore::new();
//! let mut tree = SparseMerkleTree::empty();
//! let key = tagged("example/key", b"licence 1");
//! let value = tagged("example/value", b"valid");
//!
//! let write_set = tree.apply(&store, &[(key, Some(value))])?;
//! store.persist(&write_set); // the ledger writes these together with the block
//! tree.commit(write_set)?;
//!
//! let proof = tree.prove(&store, &key)?;
//! assert_eq!(verify_membership(tree.root(), &key, &value, &proof), Ok(()));
//! let absent = tagged("example/key", b"licence 2");
//! let proof = tree.prove(&store, &absent)?;
//! assert_eq!(verify_non_membership(tree.root(), &absent, &proof), Ok(()));
//! # Ok::<(), hutong_ledger::smt::SmtError>(())
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::hash::Hash32;

/// Bits in a key, and the depth of the uncompacted tree.
pub const SMT_KEY_BITS: usize = 256;
/// A proof has at most one sibling per key bit.
pub const SMT_PROOF_SIBLINGS_MAX: usize = SMT_KEY_BITS;
/// First byte of the input of a leaf hash: `blake3(0x00 || key || value)`.
pub const SMT_LEAF_DOMAIN: u8 = 0x00;
/// First byte of the input of an internal hash: `blake3(0x01 || left || right)`.
pub const SMT_INTERNAL_DOMAIN: u8 = 0x01;
/// Levels of the binary tree stored in one page; a page has `2^SMT_PAGE_HEIGHT` slots.
pub const SMT_PAGE_HEIGHT: usize = 4;
/// The first byte of every stored page.
pub const SMT_PAGE_FORMAT_VERSION: u8 = 1;
/// Default bound on the estimated memory of a tree handle's page cache.
pub const SMT_CACHE_SIZE_BYTES_DEFAULT: usize = 256 * 1024 * 1024;
/// Most updates one [`SparseMerkleTree::apply`] accepts: far above a block's worth, low
/// enough that the sorted copy of the batch stays a few tens of MiB.
pub const SMT_UPDATES_PER_APPLY_MAX: usize = 1 << 20;

const SLOTS_PER_PAGE: usize = 1 << SMT_PAGE_HEIGHT;
/// Depth of the deepest page: its slots are at depth 256, where a slot holds at most one key.
const PAGE_DEPTH_MAX: usize = SMT_KEY_BITS - SMT_PAGE_HEIGHT;
/// Most pages an apply reserves room for before it starts.
const WALK_PAGES_PRESIZED_MAX: usize = 1 << 16;
const PAGE_KIND_LEAF: u8 = 0x00;
const PAGE_KIND_CHILD: u8 = 0x01;
const PAGE_HEADER_BYTES: usize = 2;
const PAGE_LEAF_BYTES: usize = 2 + 64;
const PAGE_CHILD_BYTES: usize = 2 + 32;
/// What the cache estimates for a page besides its array of words: the map slot holding
/// the id and the page's fields, with the spare capacity a hash map keeps (half again).
const CACHE_PAGE_OVERHEAD_BYTES: usize = std::mem::size_of::<(PageId, CachedPage)>() * 3 / 2;

// A page's slots and its internal nodes must each fit a `u64` mask, its slot count one
// byte, its depth one byte, and pages must tile the key exactly.
const _: () = assert!(SMT_PAGE_HEIGHT >= 1 && SMT_PAGE_HEIGHT <= 5);
const _: () = assert!(SMT_KEY_BITS.is_multiple_of(SMT_PAGE_HEIGHT));
const _: () = assert!(PAGE_DEPTH_MAX <= u8::MAX as usize);
const _: () = assert!(SMT_PROOF_SIBLINGS_MAX == SMT_KEY_BITS);

/// One change to the tree: a key and its new value, or `None` to delete the key.
pub type SmtUpdate = (Hash32, Option<Hash32>);

/// The hash of a subtree holding exactly one key: `blake3(0x00 || key || value)`.
pub fn leaf_hash(key: &Hash32, value: &Hash32) -> Hash32 {
    let mut input = [0u8; 65];
    input[0] = SMT_LEAF_DOMAIN;
    input[1..33].copy_from_slice(key.as_bytes());
    input[33..].copy_from_slice(value.as_bytes());
    blake3::hash(&input).into()
}

/// The hash of a subtree holding two keys or more: `blake3(0x01 || left || right)`.
pub fn internal_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut input = [0u8; 65];
    input[0] = SMT_INTERNAL_DOMAIN;
    input[1..33].copy_from_slice(left.as_bytes());
    input[33..].copy_from_slice(right.as_bytes());
    blake3::hash(&input).into()
}

/// The root of the tree holding exactly `leaves` (key, value), computed directly from the
/// list: for an auditor who re-derives the state root from an export, without a store.
pub fn root_of_leaves(mut leaves: Vec<(Hash32, Hash32)>) -> Result<Hash32, SmtError> {
    leaves.sort_unstable_by_key(|leaf| leaf.0);
    if let Some([first, _]) = leaves
        .windows(2)
        .find(|pair| matches!(pair, [first, second] if first.0 == second.0))
    {
        return Err(SmtError::DuplicateKey { key: first.0 });
    }
    Ok(root_of_sorted_leaves(&leaves, 0))
}

fn root_of_sorted_leaves(leaves: &[(Hash32, Hash32)], depth: usize) -> Hash32 {
    match leaves {
        [] => Hash32::ZERO,
        [(key, value)] => leaf_hash(key, value),
        _ => {
            // Distinct sorted keys split before depth 256, so `depth` stays a valid bit index.
            assert!(
                depth < SMT_KEY_BITS,
                "two distinct keys agree on all 256 bits"
            );
            let split = leaves.partition_point(|(key, _)| !key.bit(depth));
            let (left, right) = leaves.split_at(split);
            internal_hash(
                &root_of_sorted_leaves(left, depth + 1),
                &root_of_sorted_leaves(right, depth + 1),
            )
        }
    }
}

// ---------------------------------------------------------------------------------------
// Proofs
// ---------------------------------------------------------------------------------------

/// A key and its value, as held by a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtLeaf {
    pub key: Hash32,
    pub value: Hash32,
}

/// The path from the root to a key: the siblings from the root downwards, and the leaf the
/// path ends in, if it ends in one (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtProof {
    pub siblings: Vec<Hash32>,
    pub leaf: Option<SmtLeaf>,
}

/// Why a proof does not show what it was asked to show. Each variant is one check of the
/// verification procedure in the module documentation, in the order they run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtProofError {
    #[error("a proof has at most {SMT_PROOF_SIBLINGS_MAX} siblings, this one has {count}")]
    TooManySiblings { count: usize },
    #[error("the proof ends in an empty subtree, so it shows the key is absent")]
    MissingLeaf,
    #[error("the proof's leaf holds key {found}, not the key {expected} it should prove")]
    LeafKeyMismatch { expected: Hash32, found: Hash32 },
    #[error("the proof's leaf holds value {found}, not the value {expected} it should prove")]
    LeafValueMismatch { expected: Hash32, found: Hash32 },
    #[error("the proof's leaf holds the key itself, so it shows the key is present")]
    KeyPresent,
    #[error(
        "the proof's leaf key differs from the key within the first {depth} bits, so it is not on the key's path"
    )]
    LeafNotOnPath { depth: usize },
    #[error("the proof's last sibling is empty, which a compacted tree never has")]
    EmptyLastSibling,
    #[error("the proof leads to root {computed}, not to the expected root {expected}")]
    RootMismatch { expected: Hash32, computed: Hash32 },
}

impl SmtProofError {
    /// A stable kebab-case name for the error, used in test vectors and API problem codes.
    pub fn code(&self) -> &'static str {
        match self {
            SmtProofError::TooManySiblings { .. } => "too-many-siblings",
            SmtProofError::MissingLeaf => "missing-leaf",
            SmtProofError::LeafKeyMismatch { .. } => "leaf-key-mismatch",
            SmtProofError::LeafValueMismatch { .. } => "leaf-value-mismatch",
            SmtProofError::KeyPresent => "key-present",
            SmtProofError::LeafNotOnPath { .. } => "leaf-not-on-path",
            SmtProofError::EmptyLastSibling => "empty-last-sibling",
            SmtProofError::RootMismatch { .. } => "root-mismatch",
        }
    }
}

/// Checks that `proof` shows `key` holding `value` in the tree with root `root`.
pub fn verify_membership(
    root: Hash32,
    key: &Hash32,
    value: &Hash32,
    proof: &SmtProof,
) -> Result<(), SmtProofError> {
    check_sibling_count(proof)?;
    let leaf = proof.leaf.ok_or(SmtProofError::MissingLeaf)?;
    if leaf.key != *key {
        return Err(SmtProofError::LeafKeyMismatch {
            expected: *key,
            found: leaf.key,
        });
    }
    if leaf.value != *value {
        return Err(SmtProofError::LeafValueMismatch {
            expected: *value,
            found: leaf.value,
        });
    }
    check_compact_and_root(root, key, proof)
}

/// Checks that `proof` shows `key` holding nothing in the tree with root `root`.
pub fn verify_non_membership(
    root: Hash32,
    key: &Hash32,
    proof: &SmtProof,
) -> Result<(), SmtProofError> {
    check_sibling_count(proof)?;
    if let Some(leaf) = proof.leaf {
        if leaf.key == *key {
            return Err(SmtProofError::KeyPresent);
        }
        let depth = proof.siblings.len();
        if prefix_of(&leaf.key, depth) != prefix_of(key, depth) {
            return Err(SmtProofError::LeafNotOnPath { depth });
        }
    }
    check_compact_and_root(root, key, proof)
}

fn check_sibling_count(proof: &SmtProof) -> Result<(), SmtProofError> {
    let count = proof.siblings.len();
    if count > SMT_PROOF_SIBLINGS_MAX {
        return Err(SmtProofError::TooManySiblings { count });
    }
    Ok(())
}

/// Steps 3 to 5 of the verification; the caller has checked the sibling count.
fn check_compact_and_root(
    root: Hash32,
    key: &Hash32,
    proof: &SmtProof,
) -> Result<(), SmtProofError> {
    if proof.siblings.last() == Some(&Hash32::ZERO) {
        return Err(SmtProofError::EmptyLastSibling);
    }
    let mut node = proof
        .leaf
        .map_or(Hash32::ZERO, |leaf| leaf_hash(&leaf.key, &leaf.value));
    for (depth, sibling) in proof.siblings.iter().enumerate().rev() {
        node = if key.bit(depth) {
            internal_hash(sibling, &node)
        } else {
            internal_hash(&node, sibling)
        };
    }
    if node != root {
        return Err(SmtProofError::RootMismatch {
            expected: root,
            computed: node,
        });
    }
    Ok(())
}

/// `key` with every bit from `bits` on set to zero (`bits` <= 256).
fn prefix_of(key: &Hash32, bits: usize) -> Hash32 {
    let mut prefix = [0u8; 32];
    for (index, (prefix_byte, key_byte)) in prefix.iter_mut().zip(key.as_bytes()).enumerate() {
        let first_bit = index * 8;
        if first_bit + 8 <= bits {
            *prefix_byte = *key_byte;
        } else if first_bit < bits {
            *prefix_byte = key_byte & (0xFFu8 << (8 - (bits - first_bit)));
        }
    }
    Hash32(prefix)
}

// ---------------------------------------------------------------------------------------
// Errors and the store
// ---------------------------------------------------------------------------------------

/// A failure of the store that holds the tree's pages (IO, corruption the store detects).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the state tree's store failed: {message}")]
pub struct SmtStoreError {
    pub message: String,
}

/// Why a tree operation failed. A failed operation changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtError {
    #[error(transparent)]
    Store(#[from] SmtStoreError),
    #[error("key {key} appears more than once in one batch")]
    DuplicateKey { key: Hash32 },
    #[error("one apply takes at most {max} updates, this one has {count}")]
    TooManyUpdates { count: usize, max: usize },
    #[error(
        "state tree page {page_key} is missing from the store, although its parent or the root refers to it"
    )]
    MissingPage { page_key: String },
    #[error(
        "state tree page {page_key} hashes to {found}, but its parent or the root says {expected}"
    )]
    PageHashMismatch {
        page_key: String,
        expected: Hash32,
        found: Hash32,
    },
    #[error("state tree page {page_key} is malformed: {reason}")]
    MalformedPage {
        page_key: String,
        reason: &'static str,
    },
    #[error("the store holds a root page although the expected root is empty")]
    UnexpectedRootPage,
    #[error(
        "the write set was computed from root {write_set_previous_root}, but the tree is at root {tree_root}"
    )]
    StaleWriteSet {
        tree_root: Hash32,
        write_set_previous_root: Hash32,
    },
}

/// Read access to the tree's pages, implemented by the ledger's store. Keys and values are
/// those of [`SmtWriteSet::writes`].
pub trait SmtNodeStore {
    /// The bytes stored under `key`, or `None` if there are none.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SmtStoreError>;
}

impl<Store: SmtNodeStore + ?Sized> SmtNodeStore for &Store {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SmtStoreError> {
        (**self).get(key)
    }
}

/// A store in memory, for tests, benchmarks and tools that rebuild a state from an export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemorySmtStore {
    pages: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemorySmtStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a write set's writes and deletes, as the ledger's store does in its batch.
    pub fn persist(&mut self, write_set: &SmtWriteSet) {
        for (key, value) in &write_set.writes {
            self.pages.insert(key.clone(), value.clone());
        }
        for key in &write_set.deletes {
            self.pages.remove(key);
        }
    }

    /// Number of stored pages.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Sum of the lengths of the stored keys and values.
    pub fn size_bytes(&self) -> usize {
        self.pages
            .iter()
            .map(|(key, value)| key.len() + value.len())
            .sum()
    }
}

impl SmtNodeStore for MemorySmtStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SmtStoreError> {
        Ok(self.pages.get(key).cloned())
    }
}

// ---------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------

/// The position of a page: its depth and the key bits above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PageId {
    depth: u8,
    /// The first `depth` bits of the keys below the page; the other bits are zero.
    prefix: Hash32,
}

impl std::hash::Hash for PageId {
    fn hash<Hasher: std::hash::Hasher>(&self, state: &mut Hasher) {
        // Only the bytes the prefix can occupy: the cache hashes an id on every page it
        // visits, and most of the 32 bytes are zero.
        state.write_u8(self.depth);
        let prefix_bytes = self.depth().div_ceil(8);
        state.write(self.prefix.as_bytes().get(..prefix_bytes).unwrap_or(&[]));
    }
}

impl PageId {
    const ROOT: PageId = PageId {
        depth: 0,
        prefix: Hash32::ZERO,
    };

    /// The page at `depth` on `key`'s path (`depth` <= [`PAGE_DEPTH_MAX`]).
    fn of_key(key: &Hash32, depth: usize) -> PageId {
        debug_assert!(depth <= PAGE_DEPTH_MAX && depth.is_multiple_of(SMT_PAGE_HEIGHT));
        PageId {
            depth: depth as u8,
            prefix: prefix_of(key, depth),
        }
    }

    fn depth(&self) -> usize {
        usize::from(self.depth)
    }

    fn store_key(&self) -> Vec<u8> {
        let prefix_bytes = self.depth().div_ceil(8);
        let mut key = Vec::with_capacity(1 + prefix_bytes);
        key.push(self.depth);
        key.extend(self.prefix.as_bytes().iter().take(prefix_bytes));
        key
    }

    fn store_key_hex(&self) -> String {
        hex::encode(self.store_key())
    }

    fn malformed(&self, reason: &'static str) -> SmtError {
        SmtError::MalformedPage {
            page_key: self.store_key_hex(),
            reason,
        }
    }
}

/// The slot of `key` in a page at `depth`: key bits `depth..depth + SMT_PAGE_HEIGHT`.
fn slot_of(key: &Hash32, depth: usize) -> usize {
    debug_assert!(depth <= PAGE_DEPTH_MAX);
    (0..SMT_PAGE_HEIGHT).fold(0, |slot, bit| {
        (slot << 1) | usize::from(key.bit(depth + bit))
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryContent {
    /// The slot's subtree holds exactly this key; `hash` is its leaf hash.
    Leaf {
        key: Hash32,
        value: Hash32,
        hash: Hash32,
    },
    /// The slot's subtree holds two keys or more, in the page below, which hashes to `hash`.
    Child { hash: Hash32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PageEntry {
    slot: u8,
    content: EntryContent,
}

impl PageEntry {
    fn leaf(slot: usize, key: Hash32, value: Hash32) -> PageEntry {
        PageEntry {
            slot: slot as u8,
            content: EntryContent::Leaf {
                key,
                value,
                hash: leaf_hash(&key, &value),
            },
        }
    }

    fn hash(&self) -> Hash32 {
        match self.content {
            EntryContent::Leaf { hash, .. } | EntryContent::Child { hash } => hash,
        }
    }

    fn is_leaf(&self) -> bool {
        matches!(self.content, EntryContent::Leaf { .. })
    }

    fn as_leaf(&self) -> Option<SmtLeaf> {
        match self.content {
            EntryContent::Leaf { key, value, .. } => Some(SmtLeaf { key, value }),
            EntryContent::Child { .. } => None,
        }
    }
}

/// The index of a node inside a page in heap order: 1 for the page's top node, `2i` and
/// `2i + 1` for the children of node `i`; the slots of node `(level, first_slot)` start at
/// `first_slot`.
fn heap_index(level: usize, first_slot: usize) -> usize {
    (1 << level) + (first_slot >> (SMT_PAGE_HEIGHT - level))
}

/// The bits of the slots `first..end` in a slot mask.
fn slot_mask(first: usize, end: usize) -> u64 {
    let width = end - first;
    if width >= 64 {
        u64::MAX
    } else {
        ((1u64 << width) - 1) << first
    }
}

/// The bits below bit `index` (`index` < 64).
fn bits_below(index: usize) -> u64 {
    (1u64 << index) - 1
}

/// The set bits of `mask`, lowest first.
fn set_bits(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if mask == 0 {
            return None;
        }
        let index = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        Some(index)
    })
}

/// Fills unused places of an [`InlineList`] of entries; never read.
const FILLER_ENTRY: PageEntry = PageEntry {
    slot: 0,
    content: EntryContent::Child { hash: Hash32::ZERO },
};

/// A list of at most `CAPACITY` items kept inline, so that building a page allocates only
/// its final arrays, each of its exact size: a block rebuilds thousands of pages, and the
/// allocator's work for growing and shrinking vectors otherwise outweighs the hashing.
#[derive(Clone, Copy)]
struct InlineList<Item: Copy, const CAPACITY: usize> {
    items: [Item; CAPACITY],
    len: usize,
}

impl<Item: Copy, const CAPACITY: usize> InlineList<Item, CAPACITY> {
    fn new(filler: Item) -> Self {
        InlineList {
            items: [filler; CAPACITY],
            len: 0,
        }
    }

    fn push(&mut self, item: Item) {
        // The capacity is the number of slots of a page; exceeding it means two entries
        // share a slot, which the callers rule out.
        let place = self.items.get_mut(self.len);
        assert!(place.is_some(), "a page holds at most {CAPACITY} entries");
        if let Some(place) = place {
            *place = item;
            self.len += 1;
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn as_slice(&self) -> &[Item] {
        self.items.get(..self.len).unwrap_or(&[])
    }
}

type EntryList = InlineList<PageEntry, SLOTS_PER_PAGE>;

/// The hashes of a page's internal nodes while it is built, by heap index.
struct InternalNodes {
    hashes: [Hash32; SLOTS_PER_PAGE],
    /// Bit `i` is set when node `i` is internal and `hashes[i]` holds its hash.
    present: u64,
}

impl InternalNodes {
    fn new() -> Self {
        InternalNodes {
            hashes: [Hash32::ZERO; SLOTS_PER_PAGE],
            present: 0,
        }
    }

    fn set(&mut self, index: usize, hash: Hash32) {
        if let Some(place) = self.hashes.get_mut(index) {
            *place = hash;
            self.present |= 1 << index;
        }
    }

    /// Copies from `previous` the hashes of the internal nodes of the subtree at `level`
    /// starting at `first_slot`, whose entries did not change.
    fn copy_subtree(&mut self, previous: &Page, level: usize, first_slot: usize) {
        for sublevel in level..SMT_PAGE_HEIGHT {
            let first_index = heap_index(sublevel, first_slot);
            for index in first_index..first_index + (1 << (sublevel - level)) {
                if let Some(hash) = previous.internal_hash(index) {
                    self.set(index, hash);
                }
            }
        }
    }
}

/// What a range of a page's slots holds.
enum RangeContent {
    Empty,
    One(PageEntry),
    Several,
}

/// A decoded page, in the compact form the cache keeps: masks of which slots and nodes
/// hold what, and a single array of 32-byte words, so that a page is one allocation.
#[derive(Clone, Debug)]
struct Page {
    /// The hash of the page's subtree.
    hash: Hash32,
    /// Bit `s` is set when slot `s` holds an entry.
    occupied_slots: u64,
    /// Bit `s` is set when slot `s` holds a leaf; a subset of `occupied_slots`.
    leaf_slots: u64,
    /// Bit `i` is set when the node with [`heap_index`] `i` is internal: its subtree holds
    /// two entries or more, or one page below it.
    internal_nodes: u64,
    /// The hash of every entry by increasing slot (a leaf's hash, or the hash of the page
    /// below); then the hash of every internal node by increasing heap index; then the key
    /// and the value of every leaf by increasing slot.
    words: Box<[Hash32]>,
}

impl Page {
    /// Builds a page from its entries (by increasing slot), reusing the hashes of
    /// `previous` for the subtrees in which no slot of `dirty` lies.
    fn build(entries: &[PageEntry], previous: Option<&Page>, dirty: u64) -> Page {
        debug_assert!(
            entries
                .windows(2)
                .all(|pair| matches!(pair, [first, second] if first.slot < second.slot))
        );
        let mut internal = InternalNodes::new();
        let hash = hash_subtree(entries, 0, 0, previous, dirty, &mut internal);
        let mut occupied_slots = 0u64;
        let mut leaf_slots = 0u64;
        let mut leaf_count = 0;
        for entry in entries {
            occupied_slots |= 1 << entry.slot;
            if entry.is_leaf() {
                leaf_slots |= 1 << entry.slot;
                leaf_count += 1;
            }
        }
        let mut words = Vec::with_capacity(
            entries.len() + internal.present.count_ones() as usize + 2 * leaf_count,
        );
        words.extend(entries.iter().map(PageEntry::hash));
        words.extend(
            set_bits(internal.present).filter_map(|index| internal.hashes.get(index).copied()),
        );
        for leaf in entries.iter().filter_map(PageEntry::as_leaf) {
            words.push(leaf.key);
            words.push(leaf.value);
        }
        Page {
            hash,
            occupied_slots,
            leaf_slots,
            internal_nodes: internal.present,
            words: words.into_boxed_slice(),
        }
    }

    fn entry_count(&self) -> usize {
        self.occupied_slots.count_ones() as usize
    }

    fn leaf_count(&self) -> usize {
        self.leaf_slots.count_ones() as usize
    }

    /// Where the leaves' keys and values start in `words`.
    fn leaves_start(&self) -> usize {
        self.entry_count() + self.internal_nodes.count_ones() as usize
    }

    /// The entry in `slot`, if any.
    fn entry(&self, slot: usize) -> Option<PageEntry> {
        if slot >= SLOTS_PER_PAGE || self.occupied_slots & (1 << slot) == 0 {
            return None;
        }
        let hash = *self
            .words
            .get((self.occupied_slots & bits_below(slot)).count_ones() as usize)?;
        let content = if self.leaf_slots & (1 << slot) == 0 {
            EntryContent::Child { hash }
        } else {
            let leaf_index = (self.leaf_slots & bits_below(slot)).count_ones() as usize;
            let key_index = self.leaves_start() + 2 * leaf_index;
            EntryContent::Leaf {
                key: *self.words.get(key_index)?,
                value: *self.words.get(key_index + 1)?,
                hash,
            }
        };
        Some(PageEntry {
            slot: slot as u8,
            content,
        })
    }

    /// The entries by increasing slot.
    fn entries(&self) -> impl Iterator<Item = PageEntry> + '_ {
        let entry_hashes = self.words.get(..self.entry_count()).unwrap_or(&[]);
        let mut leaf_words = self
            .words
            .get(self.leaves_start()..)
            .unwrap_or(&[])
            .chunks_exact(2);
        set_bits(self.occupied_slots)
            .zip(entry_hashes)
            .filter_map(move |(slot, hash)| {
                let content = if self.leaf_slots & (1 << slot) == 0 {
                    EntryContent::Child { hash: *hash }
                } else {
                    let [key, value] = leaf_words.next()? else {
                        return None;
                    };
                    EntryContent::Leaf {
                        key: *key,
                        value: *value,
                        hash: *hash,
                    }
                };
                Some(PageEntry {
                    slot: slot as u8,
                    content,
                })
            })
    }

    /// The hash of internal node `index`, if it is one.
    fn internal_hash(&self, index: usize) -> Option<Hash32> {
        if index >= 64 || self.internal_nodes & (1 << index) == 0 {
            return None;
        }
        let position =
            self.entry_count() + (self.internal_nodes & bits_below(index)).count_ones() as usize;
        self.words.get(position).copied()
    }

    fn range_content(&self, first_slot: usize, end_slot: usize) -> RangeContent {
        let in_range = self.occupied_slots & slot_mask(first_slot, end_slot);
        match in_range.count_ones() {
            0 => RangeContent::Empty,
            1 => self
                .entry(in_range.trailing_zeros() as usize)
                .map_or(RangeContent::Empty, RangeContent::One),
            _ => RangeContent::Several,
        }
    }

    /// The hash of the subtree at `level` inside the page whose first slot is `first_slot`.
    fn subtree_hash(&self, level: usize, first_slot: usize) -> Hash32 {
        let end_slot = first_slot + (1 << (SMT_PAGE_HEIGHT - level));
        match self.range_content(first_slot, end_slot) {
            RangeContent::Empty => Hash32::ZERO,
            RangeContent::One(entry) if level == SMT_PAGE_HEIGHT || entry.is_leaf() => entry.hash(),
            _ => match self.internal_hash(heap_index(level, first_slot)) {
                Some(hash) => hash,
                None => {
                    // `build` records every internal node; recomputing keeps a broken
                    // invariant from turning into a wrong proof.
                    debug_assert!(false, "page lacks the hash of an internal node");
                    let entries: Vec<PageEntry> = self
                        .entries()
                        .filter(|entry| (first_slot..end_slot).contains(&usize::from(entry.slot)))
                        .collect();
                    hash_subtree(
                        &entries,
                        level,
                        first_slot,
                        None,
                        u64::MAX,
                        &mut InternalNodes::new(),
                    )
                }
            },
        }
    }

    fn size_bytes(&self) -> usize {
        CACHE_PAGE_OVERHEAD_BYTES + self.words.len() * std::mem::size_of::<Hash32>()
    }

    fn encode(&self) -> Vec<u8> {
        let leaf_count = self.leaf_count();
        let child_count = self.entry_count() - leaf_count;
        let len = PAGE_HEADER_BYTES + leaf_count * PAGE_LEAF_BYTES + child_count * PAGE_CHILD_BYTES;
        let mut bytes = Vec::with_capacity(len);
        bytes.push(SMT_PAGE_FORMAT_VERSION);
        bytes.push(self.entry_count() as u8);
        for entry in self.entries() {
            bytes.push(entry.slot);
            match &entry.content {
                EntryContent::Leaf { key, value, .. } => {
                    bytes.push(PAGE_KIND_LEAF);
                    bytes.extend_from_slice(key.as_bytes());
                    bytes.extend_from_slice(value.as_bytes());
                }
                EntryContent::Child { hash } => {
                    bytes.push(PAGE_KIND_CHILD);
                    bytes.extend_from_slice(hash.as_bytes());
                }
            }
        }
        debug_assert_eq!(bytes.len(), len);
        bytes
    }

    /// Decodes and checks the page stored for `id`; the caller checks its hash.
    fn decode(id: PageId, bytes: &[u8]) -> Result<Page, SmtError> {
        let mut reader = Reader { bytes };
        if reader.byte().ok_or_else(|| id.malformed("empty"))? != SMT_PAGE_FORMAT_VERSION {
            return Err(id.malformed("unknown format version"));
        }
        let count = usize::from(
            reader
                .byte()
                .ok_or_else(|| id.malformed("no entry count"))?,
        );
        if count == 0 || count > SLOTS_PER_PAGE {
            return Err(id.malformed("entry count out of range"));
        }
        let depth = id.depth();
        let mut entries = EntryList::new(FILLER_ENTRY);
        for _ in 0..count {
            let slot = usize::from(
                reader
                    .byte()
                    .ok_or_else(|| id.malformed("truncated entry"))?,
            );
            if slot >= SLOTS_PER_PAGE {
                return Err(id.malformed("slot out of range"));
            }
            if entries
                .as_slice()
                .last()
                .is_some_and(|previous: &PageEntry| usize::from(previous.slot) >= slot)
            {
                return Err(id.malformed("slots not in increasing order"));
            }
            let entry = match reader
                .byte()
                .ok_or_else(|| id.malformed("truncated entry"))?
            {
                PAGE_KIND_LEAF => {
                    let key = reader
                        .hash()
                        .ok_or_else(|| id.malformed("truncated leaf"))?;
                    let value = reader
                        .hash()
                        .ok_or_else(|| id.malformed("truncated leaf"))?;
                    if prefix_of(&key, depth) != id.prefix || slot_of(&key, depth) != slot {
                        return Err(id.malformed("leaf key outside its slot"));
                    }
                    PageEntry::leaf(slot, key, value)
                }
                PAGE_KIND_CHILD => {
                    if depth + SMT_PAGE_HEIGHT > PAGE_DEPTH_MAX {
                        return Err(id.malformed("page below the deepest page"));
                    }
                    let hash = reader
                        .hash()
                        .ok_or_else(|| id.malformed("truncated page hash"))?;
                    PageEntry {
                        slot: slot as u8,
                        content: EntryContent::Child { hash },
                    }
                }
                _ => return Err(id.malformed("unknown entry kind")),
            };
            entries.push(entry);
        }
        if !reader.bytes.is_empty() {
            return Err(id.malformed("trailing bytes"));
        }
        let holds_two_keys = entries.len() >= 2
            || entries
                .as_slice()
                .first()
                .is_some_and(|entry| !entry.is_leaf());
        if depth != 0 && !holds_two_keys {
            return Err(id.malformed("a page below the root holding fewer than two keys"));
        }
        Ok(Page::build(entries.as_slice(), None, u64::MAX))
    }
}

/// Hashes the subtree at `level` starting at `first_slot`, holding `entries`, and records
/// the hashes of its internal nodes in `internal`. Subtrees in which no slot of `dirty` lies
/// take their hashes from `previous`.
fn hash_subtree(
    entries: &[PageEntry],
    level: usize,
    first_slot: usize,
    previous: Option<&Page>,
    dirty: u64,
    internal: &mut InternalNodes,
) -> Hash32 {
    match entries {
        [] => return Hash32::ZERO,
        [only] if level >= SMT_PAGE_HEIGHT || only.is_leaf() => return only.hash(),
        _ => {}
    }
    // Slots are distinct, so a one-slot subtree never holds two entries.
    assert!(level < SMT_PAGE_HEIGHT, "two entries in one slot");
    let end_slot = first_slot + (1 << (SMT_PAGE_HEIGHT - level));
    let index = heap_index(level, first_slot);
    if dirty & slot_mask(first_slot, end_slot) == 0
        && let Some(previous) = previous
        && let Some(hash) = previous.internal_hash(index)
    {
        internal.copy_subtree(previous, level, first_slot);
        return hash;
    }
    let middle_slot = first_slot + (1 << (SMT_PAGE_HEIGHT - level - 1));
    let split = entries.partition_point(|entry| usize::from(entry.slot) < middle_slot);
    let (left_entries, right_entries) = entries.split_at(split);
    let left = hash_subtree(
        left_entries,
        level + 1,
        first_slot,
        previous,
        dirty,
        internal,
    );
    let right = hash_subtree(
        right_entries,
        level + 1,
        middle_slot,
        previous,
        dirty,
        internal,
    );
    let hash = internal_hash(&left, &right);
    internal.set(index, hash);
    hash
}

struct Reader<'bytes> {
    bytes: &'bytes [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(*first)
    }

    fn hash(&mut self) -> Option<Hash32> {
        let (first, rest) = self.bytes.split_first_chunk::<32>()?;
        self.bytes = rest;
        Some(Hash32(*first))
    }
}

// ---------------------------------------------------------------------------------------
// The cache
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct CachedPage {
    page: Page,
    /// The number of the last committed block that read or wrote the page.
    generation: u64,
    size_bytes: usize,
}

#[derive(Clone, Debug)]
struct PageCache {
    pages: HashMap<PageId, CachedPage>,
    size_bytes: usize,
    size_bytes_max: usize,
}

impl PageCache {
    fn new(size_bytes_max: usize) -> Self {
        PageCache {
            pages: HashMap::new(),
            size_bytes: 0,
            size_bytes_max,
        }
    }

    fn get(&self, id: &PageId) -> Option<&Page> {
        self.pages.get(id).map(|cached| &cached.page)
    }

    fn insert(&mut self, id: PageId, page: Page, generation: u64) {
        let size_bytes = page.size_bytes();
        self.size_bytes += size_bytes;
        if let Some(old) = self.pages.insert(
            id,
            CachedPage {
                page,
                generation,
                size_bytes,
            },
        ) {
            self.size_bytes -= old.size_bytes;
        }
    }

    fn touch(&mut self, id: &PageId, generation: u64) {
        if let Some(cached) = self.pages.get_mut(id) {
            cached.generation = generation;
        }
    }

    fn remove(&mut self, id: &PageId) {
        if let Some(old) = self.pages.remove(id) {
            self.size_bytes -= old.size_bytes;
        }
    }

    fn evict_over_limit(&mut self) {
        if self.size_bytes <= self.size_bytes_max {
            return;
        }
        // Evicting to below the limit, not just to it, makes the sort below rare.
        let target_bytes = self.size_bytes_max - self.size_bytes_max / 8;
        let mut order: Vec<(u64, Reverse<u8>, PageId)> = self
            .pages
            .iter()
            .map(|(id, cached)| (cached.generation, Reverse(id.depth), *id))
            .collect();
        order.sort_unstable();
        for (_, _, id) in order {
            if self.size_bytes <= target_bytes {
                break;
            }
            self.remove(&id);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The tree handle
// ---------------------------------------------------------------------------------------

/// A handle on the tree: the committed root and a bounded cache of its pages. See the
/// module documentation for the apply, persist, commit sequence.
#[derive(Clone)]
pub struct SparseMerkleTree {
    root: Hash32,
    cache: PageCache,
    /// Counts commits; orders pages in the cache by last use.
    generation: u64,
}

impl fmt::Debug for SparseMerkleTree {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SparseMerkleTree")
            .field("root", &self.root)
            .field("cached_pages", &self.cache.pages.len())
            .field("cache_size_bytes", &self.cache.size_bytes)
            .field("cache_size_bytes_max", &self.cache.size_bytes_max)
            .finish()
    }
}

/// What an apply did, for metrics and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmtApplyStats {
    /// Updates in the batch.
    pub updates: usize,
    /// Pages the caller must write.
    pub pages_written: usize,
    /// Pages the caller must delete.
    pub pages_deleted: usize,
    /// Pages read from the store because the cache lacked them.
    pub pages_read_from_store: usize,
    /// Pages found in the cache.
    pub pages_read_from_cache: usize,
}

/// The outcome of [`SparseMerkleTree::apply`]: the new root and the exact store changes
/// that produce it. The caller must write [`writes`](Self::writes) and delete
/// [`deletes`](Self::deletes) in one atomic batch with the block, and only once that batch
/// is durable, pass this to [`SparseMerkleTree::commit`]; if the block does not persist,
/// drop it.
pub struct SmtWriteSet {
    previous_root: Hash32,
    root: Hash32,
    writes: Vec<(Vec<u8>, Vec<u8>)>,
    deletes: Vec<Vec<u8>>,
    written_pages: Vec<(PageId, Page)>,
    deleted_pages: Vec<PageId>,
    pages_loaded: Vec<(PageId, Page)>,
    pages_from_cache: Vec<PageId>,
    stats: SmtApplyStats,
}

impl fmt::Debug for SmtWriteSet {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SmtWriteSet")
            .field("previous_root", &self.previous_root)
            .field("root", &self.root)
            .field("stats", &self.stats)
            .finish()
    }
}

impl SmtWriteSet {
    /// The root the write set applies to.
    pub fn previous_root(&self) -> Hash32 {
        self.previous_root
    }

    /// The root after the write set.
    pub fn root(&self) -> Hash32 {
        self.root
    }

    /// (store key, page bytes) to write.
    pub fn writes(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.writes
    }

    /// Store keys to delete; disjoint from the keys written.
    pub fn deletes(&self) -> &[Vec<u8>] {
        &self.deletes
    }

    pub fn stats(&self) -> SmtApplyStats {
        self.stats
    }
}

impl SparseMerkleTree {
    /// The empty tree (root `ZERO`), with the default cache limit.
    pub fn empty() -> Self {
        SparseMerkleTree {
            root: Hash32::ZERO,
            cache: PageCache::new(SMT_CACHE_SIZE_BYTES_DEFAULT),
            generation: 0,
        }
    }

    /// A handle on the tree with `root` held by `store` (after a restart, the state root of
    /// the last committed block), with an empty cache. Checks the root page against `root`,
    /// so that a store that does not hold that tree is refused at once.
    pub fn open<Store: SmtNodeStore + ?Sized>(
        store: &Store,
        root: Hash32,
    ) -> Result<Self, SmtError> {
        let tree = SparseMerkleTree {
            root,
            ..SparseMerkleTree::empty()
        };
        if root == Hash32::ZERO {
            if store.get(&PageId::ROOT.store_key())?.is_some() {
                return Err(SmtError::UnexpectedRootPage);
            }
        } else {
            tree.read_page(store, PageId::ROOT, root)?;
        }
        Ok(tree)
    }

    /// The same handle with its cache bounded by `cache_size_bytes_max` (0 disables it).
    pub fn with_cache_limit(mut self, cache_size_bytes_max: usize) -> Self {
        self.cache.size_bytes_max = cache_size_bytes_max;
        self.cache.evict_over_limit();
        self
    }

    /// The committed root.
    pub fn root(&self) -> Hash32 {
        self.root
    }

    /// Estimated memory held by the cache.
    pub fn cache_size_bytes(&self) -> usize {
        self.cache.size_bytes
    }

    /// Pages held by the cache.
    pub fn cached_pages(&self) -> usize {
        self.cache.pages.len()
    }

    /// The value `key` holds at the committed root, if any.
    pub fn get<Store: SmtNodeStore + ?Sized>(
        &self,
        store: &Store,
        key: &Hash32,
    ) -> Result<Option<Hash32>, SmtError> {
        if self.root == Hash32::ZERO {
            return Ok(None);
        }
        let mut id = PageId::ROOT;
        let mut page = self.read_page(store, id, self.root)?;
        loop {
            let depth = id.depth();
            let content = page.entry(slot_of(key, depth)).map(|entry| entry.content);
            match content {
                None => return Ok(None),
                Some(EntryContent::Leaf {
                    key: leaf_key,
                    value,
                    ..
                }) => return Ok((leaf_key == *key).then_some(value)),
                Some(EntryContent::Child { hash }) => {
                    id = child_page_id(id, key)?;
                    page = self.read_page(store, id, hash)?;
                }
            }
        }
    }

    /// A proof of `key`'s value, or of its absence, at the committed root.
    pub fn prove<Store: SmtNodeStore + ?Sized>(
        &self,
        store: &Store,
        key: &Hash32,
    ) -> Result<SmtProof, SmtError> {
        let mut siblings = Vec::new();
        if self.root == Hash32::ZERO {
            return Ok(SmtProof {
                siblings,
                leaf: None,
            });
        }
        let mut id = PageId::ROOT;
        let mut page = self.read_page(store, id, self.root)?;
        loop {
            let depth = id.depth();
            let mut first_slot = 0;
            for level in 0..SMT_PAGE_HEIGHT {
                let width = 1 << (SMT_PAGE_HEIGHT - level);
                match page.range_content(first_slot, first_slot + width) {
                    RangeContent::Empty => {
                        return Ok(SmtProof {
                            siblings,
                            leaf: None,
                        });
                    }
                    RangeContent::One(only) if only.is_leaf() => {
                        return Ok(SmtProof {
                            siblings,
                            leaf: only.as_leaf(),
                        });
                    }
                    RangeContent::One(_) | RangeContent::Several => {}
                }
                let half = width / 2;
                if key.bit(depth + level) {
                    siblings.push(page.subtree_hash(level + 1, first_slot));
                    first_slot += half;
                } else {
                    siblings.push(page.subtree_hash(level + 1, first_slot + half));
                }
            }
            let content = page.entry(first_slot).map(|entry| entry.content);
            match content {
                None => {
                    return Ok(SmtProof {
                        siblings,
                        leaf: None,
                    });
                }
                Some(EntryContent::Leaf { key, value, .. }) => {
                    return Ok(SmtProof {
                        siblings,
                        leaf: Some(SmtLeaf { key, value }),
                    });
                }
                Some(EntryContent::Child { hash }) => {
                    id = child_page_id(id, key)?;
                    page = self.read_page(store, id, hash)?;
                }
            }
        }
    }

    /// Computes the effect of `updates` (key, new value, or `None` to delete) on the
    /// committed tree, reading `store` but changing neither it nor the handle. Deleting an
    /// absent key, or setting a key to the value it holds, changes nothing. A key may
    /// appear once per batch.
    pub fn apply<Store: SmtNodeStore + ?Sized>(
        &self,
        store: &Store,
        updates: &[SmtUpdate],
    ) -> Result<SmtWriteSet, SmtError> {
        if updates.len() > SMT_UPDATES_PER_APPLY_MAX {
            return Err(SmtError::TooManyUpdates {
                count: updates.len(),
                max: SMT_UPDATES_PER_APPLY_MAX,
            });
        }
        let mut sorted = updates.to_vec();
        sorted.sort_unstable_by_key(|update| update.0);
        if let Some([first, _]) = sorted
            .windows(2)
            .find(|pair| matches!(pair, [first, second] if first.0 == second.0))
        {
            return Err(SmtError::DuplicateKey { key: first.0 });
        }
        let mut walk = ApplyWalk::new(self, store, updates.len());
        let root = if sorted.is_empty() {
            self.root
        } else {
            let existing = if self.root == Hash32::ZERO {
                None
            } else {
                Some(walk.load(PageId::ROOT, self.root)?)
            };
            match walk.apply_page(PageId::ROOT, existing, &sorted)? {
                Outcome::Empty => Hash32::ZERO,
                Outcome::Page { hash } | Outcome::Leaf { hash, .. } => hash,
            }
        };
        Ok(walk.finish(self.root, root, updates.len()))
    }

    /// Moves the handle to the write set's root, once the caller has persisted it, and puts
    /// the pages it read and wrote in the cache.
    pub fn commit(&mut self, write_set: SmtWriteSet) -> Result<(), SmtError> {
        if write_set.previous_root != self.root {
            return Err(SmtError::StaleWriteSet {
                tree_root: self.root,
                write_set_previous_root: write_set.previous_root,
            });
        }
        self.generation += 1;
        let generation = self.generation;
        for id in &write_set.pages_from_cache {
            self.cache.touch(id, generation);
        }
        // The unchanged pages read from the store, and the pages written: disjoint sets.
        for (id, page) in write_set
            .pages_loaded
            .into_iter()
            .chain(write_set.written_pages)
        {
            self.cache.insert(id, page, generation);
        }
        for id in &write_set.deleted_pages {
            self.cache.remove(id);
        }
        self.root = write_set.root;
        self.cache.evict_over_limit();
        Ok(())
    }

    /// The page `id` from the cache, or from the store checked against `expected_hash`.
    fn read_page<Store: SmtNodeStore + ?Sized>(
        &self,
        store: &Store,
        id: PageId,
        expected_hash: Hash32,
    ) -> Result<PageRef<'_>, SmtError> {
        if let Some(page) = self.cache.get(&id) {
            return Ok(PageRef::Cached(page));
        }
        read_page_from_store(store, id, expected_hash).map(PageRef::Loaded)
    }
}

/// A page found in the cache, or read from the store for this operation only.
enum PageRef<'tree> {
    Cached(&'tree Page),
    Loaded(Page),
}

impl Deref for PageRef<'_> {
    type Target = Page;

    fn deref(&self) -> &Page {
        match self {
            PageRef::Cached(page) => page,
            PageRef::Loaded(page) => page,
        }
    }
}

fn read_page_from_store<Store: SmtNodeStore + ?Sized>(
    store: &Store,
    id: PageId,
    expected_hash: Hash32,
) -> Result<Page, SmtError> {
    let bytes = store
        .get(&id.store_key())?
        .ok_or_else(|| SmtError::MissingPage {
            page_key: id.store_key_hex(),
        })?;
    let page = Page::decode(id, &bytes)?;
    if page.hash != expected_hash {
        return Err(SmtError::PageHashMismatch {
            page_key: id.store_key_hex(),
            expected: expected_hash,
            found: page.hash,
        });
    }
    Ok(page)
}

/// The page below `parent` on `key`'s path.
fn child_page_id(parent: PageId, key: &Hash32) -> Result<PageId, SmtError> {
    let depth = parent.depth() + SMT_PAGE_HEIGHT;
    if depth > PAGE_DEPTH_MAX {
        return Err(parent.malformed("page below the deepest page"));
    }
    Ok(PageId::of_key(key, depth))
}

/// What a subtree at a slot position becomes after an apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Empty,
    /// Exactly one key: it moves up into the parent's slot.
    Leaf {
        key: Hash32,
        value: Hash32,
        hash: Hash32,
    },
    /// Two keys or more, in a page that hashes to `hash`.
    Page {
        hash: Hash32,
    },
}

impl Outcome {
    fn into_entry(self, slot: usize) -> Option<PageEntry> {
        let content = match self {
            Outcome::Empty => return None,
            Outcome::Leaf { key, value, hash } => EntryContent::Leaf { key, value, hash },
            Outcome::Page { hash } => EntryContent::Child { hash },
        };
        Some(PageEntry {
            slot: slot as u8,
            content,
        })
    }
}

/// One walk of the tree by [`SparseMerkleTree::apply`], collecting the store changes.
struct ApplyWalk<'walk, Store: ?Sized> {
    tree: &'walk SparseMerkleTree,
    store: &'walk Store,
    written_pages: Vec<(PageId, Page)>,
    deleted_pages: Vec<PageId>,
    /// Pages read from the store that the walk left unchanged.
    pages_loaded: Vec<(PageId, Page)>,
    pages_from_cache: Vec<PageId>,
    pages_read_from_store: usize,
}

impl<'walk, Store: SmtNodeStore + ?Sized> ApplyWalk<'walk, Store> {
    fn new(tree: &'walk SparseMerkleTree, store: &'walk Store, updates: usize) -> Self {
        // A block touches two to three pages per update; sizing the lists up front spares
        // the allocator a series of ever larger copies, which costs more than it seems
        // once the heap holds a large cache.
        let expected_pages = updates.saturating_mul(3).min(WALK_PAGES_PRESIZED_MAX);
        ApplyWalk {
            tree,
            store,
            written_pages: Vec::with_capacity(expected_pages),
            deleted_pages: Vec::new(),
            pages_loaded: Vec::new(),
            pages_from_cache: Vec::with_capacity(expected_pages),
            pages_read_from_store: 0,
        }
    }

    fn load(&mut self, id: PageId, expected_hash: Hash32) -> Result<PageRef<'walk>, SmtError> {
        if let Some(page) = self.tree.cache.get(&id) {
            self.pages_from_cache.push(id);
            return Ok(PageRef::Cached(page));
        }
        self.pages_read_from_store += 1;
        read_page_from_store(self.store, id, expected_hash).map(PageRef::Loaded)
    }

    /// Applies `updates` (sorted, distinct, all below page `id`) to the page `existing`, or
    /// to a page that does not exist yet.
    fn apply_page(
        &mut self,
        id: PageId,
        existing: Option<PageRef<'walk>>,
        updates: &[SmtUpdate],
    ) -> Result<Outcome, SmtError> {
        let depth = id.depth();
        let mut old_entries = existing
            .as_deref()
            .into_iter()
            .flat_map(Page::entries)
            .peekable();
        let mut entries = EntryList::new(FILLER_ENTRY);
        let mut dirty = 0u64;
        let mut rest = updates;
        while let Some((first_key, _)) = rest.first() {
            let slot = slot_of(first_key, depth);
            let group_len = rest.partition_point(|(key, _)| slot_of(key, depth) <= slot);
            let (group, tail) = rest.split_at(group_len);
            rest = tail;
            while let Some(entry) = old_entries.next_if(|entry| usize::from(entry.slot) < slot) {
                entries.push(entry);
            }
            let current = old_entries.next_if(|entry| usize::from(entry.slot) == slot);
            let outcome = match current.map(|entry| entry.content) {
                Some(EntryContent::Child { hash }) => {
                    let child_id = child_page_id(id, first_key)?;
                    let child = self.load(child_id, hash)?;
                    self.apply_page(child_id, Some(child), group)?
                }
                Some(EntryContent::Leaf { key, value, hash }) => {
                    self.apply_to_slot(id, first_key, Some((key, value, hash)), group)?
                }
                None => self.apply_to_slot(id, first_key, None, group)?,
            };
            let new_entry = outcome.into_entry(slot);
            if new_entry != current {
                dirty |= 1 << slot;
            }
            if let Some(entry) = new_entry {
                entries.push(entry);
            }
        }
        for entry in old_entries {
            entries.push(entry);
        }

        if dirty == 0 {
            return Ok(match existing {
                Some(page) => {
                    let hash = page.hash;
                    // An unchanged page read from the store goes into the cache at commit.
                    if let PageRef::Loaded(page) = page {
                        self.pages_loaded.push((id, page));
                    }
                    Outcome::Page { hash }
                }
                None => Outcome::Empty,
            });
        }
        let outcome = match entries.as_slice() {
            [] => Outcome::Empty,
            [
                PageEntry {
                    content: EntryContent::Leaf { key, value, hash },
                    ..
                },
            ] if depth != 0 => Outcome::Leaf {
                key: *key,
                value: *value,
                hash: *hash,
            },
            _ => {
                let page = Page::build(entries.as_slice(), existing.as_deref(), dirty);
                let hash = page.hash;
                self.written_pages.push((id, page));
                return Ok(Outcome::Page { hash });
            }
        };
        if existing.is_some() {
            self.deleted_pages.push(id);
        }
        Ok(outcome)
    }

    /// Applies `updates` to a slot of page `parent` that holds no page below it: nothing, or
    /// the one leaf `existing`. `first_key` is any key in the slot.
    fn apply_to_slot(
        &mut self,
        parent: PageId,
        first_key: &Hash32,
        existing: Option<(Hash32, Hash32, Hash32)>,
        updates: &[SmtUpdate],
    ) -> Result<Outcome, SmtError> {
        let leaf = |key: &Hash32, value: &Hash32| Outcome::Leaf {
            key: *key,
            value: *value,
            hash: leaf_hash(key, value),
        };
        // The common cases of a block: one update in a slot that is empty or holds that key.
        match (updates, existing) {
            ([(key, new_value)], None) => {
                return Ok(new_value.map_or(Outcome::Empty, |value| leaf(key, &value)));
            }
            ([(key, new_value)], Some((existing_key, existing_value, existing_hash)))
                if *key == existing_key =>
            {
                return Ok(match new_value {
                    None => Outcome::Empty,
                    Some(value) if *value == existing_value => Outcome::Leaf {
                        key: *key,
                        value: *value,
                        hash: existing_hash,
                    },
                    Some(value) => leaf(key, value),
                });
            }
            _ => {}
        }
        let mut leaves: Vec<(Hash32, Option<Hash32>)> = Vec::with_capacity(updates.len() + 1);
        let mut existing = existing.map(|(key, value, _)| (key, value));
        for (key, value) in updates {
            if let Some((existing_key, existing_value)) = existing {
                if existing_key < *key {
                    leaves.push((existing_key, Some(existing_value)));
                    existing = None;
                } else if existing_key == *key {
                    existing = None;
                }
            }
            if value.is_some() {
                leaves.push((*key, *value));
            }
        }
        if let Some((existing_key, existing_value)) = existing {
            leaves.push((existing_key, Some(existing_value)));
        }
        match leaves.as_slice() {
            [] => Ok(Outcome::Empty),
            [(key, Some(value))] => Ok(leaf(key, value)),
            _ => {
                // Two distinct keys (every value here is `Some`) share the slot, so it lies
                // above depth 256 and the page below it exists.
                let child_id = child_page_id(parent, first_key)?;
                self.apply_page(child_id, None, &leaves)
            }
        }
    }

    fn finish(self, previous_root: Hash32, root: Hash32, updates: usize) -> SmtWriteSet {
        let writes = self
            .written_pages
            .iter()
            .map(|(id, page)| (id.store_key(), page.encode()))
            .collect();
        let deletes = self.deleted_pages.iter().map(PageId::store_key).collect();
        let stats = SmtApplyStats {
            updates,
            pages_written: self.written_pages.len(),
            pages_deleted: self.deleted_pages.len(),
            pages_read_from_store: self.pages_read_from_store,
            pages_read_from_cache: self.pages_from_cache.len(),
        };
        SmtWriteSet {
            previous_root,
            root,
            writes,
            deletes,
            written_pages: self.written_pages,
            deleted_pages: self.deleted_pages,
            pages_loaded: self.pages_loaded,
            pages_from_cache: self.pages_from_cache,
            stats,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::hash::tagged;

    type Update = SmtUpdate;

    fn key(number: u64) -> Hash32 {
        tagged("test/smt/key", &number.to_le_bytes())
    }

    fn value(number: u64) -> Hash32 {
        tagged("test/smt/value", &number.to_le_bytes())
    }

    fn with_bit_flipped(key: &Hash32, bit: usize) -> Hash32 {
        let mut bytes = key.0;
        bytes[bit / 8] ^= 0x80 >> (bit % 8);
        Hash32(bytes)
    }

    /// The reference model's root: the definition of the compacted tree, applied literally.
    fn reference_root(model: &BTreeMap<Hash32, Hash32>) -> Hash32 {
        fn subtree(leaves: Vec<(Hash32, Hash32)>, depth: usize) -> Hash32 {
            match leaves.len() {
                0 => Hash32::ZERO,
                1 => leaf_hash(&leaves[0].0, &leaves[0].1),
                _ => {
                    let (left, right): (Vec<_>, Vec<_>) =
                        leaves.into_iter().partition(|(key, _)| !key.bit(depth));
                    internal_hash(&subtree(left, depth + 1), &subtree(right, depth + 1))
                }
            }
        }
        subtree(model.iter().map(|(key, value)| (*key, *value)).collect(), 0)
    }

    /// A tree, its store and the reference model, kept in step.
    struct Fixture {
        tree: SparseMerkleTree,
        store: MemorySmtStore,
        model: BTreeMap<Hash32, Hash32>,
    }

    impl Fixture {
        fn new(cache_size_bytes_max: usize) -> Self {
            Fixture {
                tree: SparseMerkleTree::empty().with_cache_limit(cache_size_bytes_max),
                store: MemorySmtStore::new(),
                model: BTreeMap::new(),
            }
        }

        fn apply(&mut self, updates: &[Update]) -> SmtApplyStats {
            let write_set = self.tree.apply(&self.store, updates).unwrap();
            let stats = write_set.stats();
            assert_eq!(stats.pages_written, write_set.writes().len());
            assert_eq!(stats.pages_deleted, write_set.deletes().len());
            self.store.persist(&write_set);
            self.tree.commit(write_set).unwrap();
            for (key, value) in updates {
                match value {
                    Some(value) => self.model.insert(*key, *value),
                    None => self.model.remove(key),
                };
            }
            assert_eq!(self.tree.root(), reference_root(&self.model));
            assert!(self.tree.cache_size_bytes() <= self.tree.cache.size_bytes_max);
            stats
        }

        /// Checks `get` and both proofs for every key of the model and for `absent_keys`.
        fn check_reads(&self, absent_keys: &[Hash32]) {
            let root = self.tree.root();
            for (key, value) in &self.model {
                assert_eq!(self.tree.get(&self.store, key).unwrap(), Some(*value));
                let proof = self.tree.prove(&self.store, key).unwrap();
                assert_eq!(verify_membership(root, key, value, &proof), Ok(()));
                assert_eq!(
                    verify_non_membership(root, key, &proof),
                    Err(SmtProofError::KeyPresent)
                );
            }
            for key in absent_keys
                .iter()
                .filter(|key| !self.model.contains_key(key))
            {
                assert_eq!(self.tree.get(&self.store, key).unwrap(), None);
                let proof = self.tree.prove(&self.store, key).unwrap();
                assert_eq!(verify_non_membership(root, key, &proof), Ok(()));
                assert!(verify_membership(root, key, &value(0), &proof).is_err());
            }
        }

        /// The store holds exactly the pages of a tree built from the model in one batch, and
        /// every cached page equals its stored form.
        fn check_store_is_canonical(&self) {
            let mut fresh = Fixture::new(0);
            let inserts: Vec<Update> = self
                .model
                .iter()
                .map(|(key, value)| (*key, Some(*value)))
                .collect();
            fresh.apply(&inserts);
            assert_eq!(fresh.store, self.store);
            for (id, cached) in &self.tree.cache.pages {
                let stored = self.store.get(&id.store_key()).unwrap().unwrap();
                assert_eq!(cached.page.encode(), stored);
                let entries: Vec<PageEntry> = cached.page.entries().collect();
                let rebuilt = Page::build(&entries, None, u64::MAX);
                assert_eq!(rebuilt.internal_nodes, cached.page.internal_nodes);
                assert_eq!(rebuilt.words, cached.page.words);
                assert_eq!(rebuilt.hash, cached.page.hash);
            }
        }
    }

    /// A store whose reads fail once `reads_left` reaches zero.
    struct FailingStore<'store> {
        inner: &'store MemorySmtStore,
        reads_left: Cell<usize>,
    }

    impl SmtNodeStore for FailingStore<'_> {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SmtStoreError> {
            if self.reads_left.get() == 0 {
                return Err(SmtStoreError {
                    message: "disk on fire".into(),
                });
            }
            self.reads_left.set(self.reads_left.get() - 1);
            self.inner.get(key)
        }
    }

    /// Every way of tampering with an honest proof fails with the error the verification
    /// order assigns to it. `value` is `Some` for a membership proof of `key`.
    fn check_tampering(root: Hash32, key: &Hash32, member_value: Option<Hash32>, proof: &SmtProof) {
        let verify = |proof: &SmtProof| match member_value {
            Some(value) => verify_membership(root, key, &value, proof),
            None => verify_non_membership(root, key, proof),
        };
        assert_eq!(verify(proof), Ok(()));
        let root_mismatch = |computed| SmtProofError::RootMismatch {
            expected: root,
            computed,
        };
        let is_root_mismatch = |result: Result<(), SmtProofError>| {
            matches!(result, Err(SmtProofError::RootMismatch { .. }))
        };

        // Every sibling of a short proof, three bits each; of a long one (keys sharing long
        // prefixes), the first and last few and every 31st, one bit each, to stay fast.
        let count = proof.siblings.len();
        for index in 0..count {
            let bits = if count <= 32 {
                vec![0, (index * 37 + 11) % 256, 255]
            } else if index < 4 || index + 4 >= count || index % 31 == 0 {
                vec![index % 256]
            } else {
                continue;
            };
            for bit in bits {
                let mut tampered = proof.clone();
                tampered.siblings[index] = with_bit_flipped(&tampered.siblings[index], bit);
                assert!(
                    is_root_mismatch(verify(&tampered)),
                    "sibling {index} bit {bit}"
                );
            }
        }
        if let Some(last) = proof.siblings.len().checked_sub(1) {
            let mut truncated = proof.clone();
            truncated.siblings.truncate(last);
            let result = verify(&truncated);
            if truncated.siblings.last() == Some(&Hash32::ZERO) {
                assert_eq!(result, Err(SmtProofError::EmptyLastSibling));
            } else {
                assert!(is_root_mismatch(result));
            }
        }
        let mut extra = proof.clone();
        extra.siblings.push(*key);
        let mut extra_empty = proof.clone();
        extra_empty.siblings.push(Hash32::ZERO);
        let longer = proof.siblings.len() + 1;
        // A non-membership proof's leaf must also agree with the key on the added bit.
        let leaf_leaves_path = member_value.is_none()
            && proof
                .leaf
                .is_some_and(|leaf| prefix_of(&leaf.key, longer) != prefix_of(key, longer));
        if longer > SMT_PROOF_SIBLINGS_MAX {
            let too_many = Err(SmtProofError::TooManySiblings { count: longer });
            assert_eq!(verify(&extra), too_many);
            assert_eq!(verify(&extra_empty), too_many);
        } else if leaf_leaves_path {
            let not_on_path = Err(SmtProofError::LeafNotOnPath { depth: longer });
            assert_eq!(verify(&extra), not_on_path);
            assert_eq!(verify(&extra_empty), not_on_path);
        } else {
            assert!(is_root_mismatch(verify(&extra)));
            assert_eq!(verify(&extra_empty), Err(SmtProofError::EmptyLastSibling));
        }
        let mut too_many = proof.clone();
        too_many
            .siblings
            .resize(SMT_PROOF_SIBLINGS_MAX + 1, value(1));
        assert_eq!(
            verify(&too_many),
            Err(SmtProofError::TooManySiblings {
                count: SMT_PROOF_SIBLINGS_MAX + 1
            })
        );
        let wrong_root = Hash32([0xAB; 32]);
        let computed = match member_value {
            Some(value) => verify_membership(wrong_root, key, &value, proof),
            None => verify_non_membership(wrong_root, key, proof),
        };
        assert_eq!(
            computed,
            Err(SmtProofError::RootMismatch {
                expected: wrong_root,
                computed: root
            })
        );

        match member_value {
            Some(value) => {
                let leaf = proof.leaf.unwrap();
                let other_key = with_bit_flipped(key, 3);
                assert_eq!(
                    verify_membership(root, &other_key, &value, proof),
                    Err(SmtProofError::LeafKeyMismatch {
                        expected: other_key,
                        found: *key
                    })
                );
                let other_value = with_bit_flipped(&value, 9);
                assert_eq!(
                    verify_membership(root, key, &other_value, proof),
                    Err(SmtProofError::LeafValueMismatch {
                        expected: other_value,
                        found: value
                    })
                );
                let without_leaf = SmtProof {
                    leaf: None,
                    ..proof.clone()
                };
                assert_eq!(verify(&without_leaf), Err(SmtProofError::MissingLeaf));
                assert_eq!(
                    verify_non_membership(root, key, proof),
                    Err(SmtProofError::KeyPresent)
                );
                // A changed leaf presented as proof of another value under the same key.
                let swapped = SmtProof {
                    leaf: Some(SmtLeaf {
                        key: leaf.key,
                        value: other_value,
                    }),
                    ..proof.clone()
                };
                assert!(is_root_mismatch(verify_membership(
                    root,
                    key,
                    &other_value,
                    &swapped
                )));
            }
            None => {
                match proof.leaf {
                    Some(leaf) => {
                        assert_eq!(
                            verify_membership(root, key, &leaf.value, proof),
                            Err(SmtProofError::LeafKeyMismatch {
                                expected: *key,
                                found: leaf.key
                            })
                        );
                        let swapped_value = SmtProof {
                            leaf: Some(SmtLeaf {
                                value: with_bit_flipped(&leaf.value, 0),
                                ..leaf
                            }),
                            ..proof.clone()
                        };
                        assert!(is_root_mismatch(verify(&swapped_value)));
                        let removed = SmtProof {
                            leaf: None,
                            ..proof.clone()
                        };
                        assert!(is_root_mismatch(verify(&removed)));
                        let the_key = SmtProof {
                            leaf: Some(SmtLeaf { key: *key, ..leaf }),
                            ..proof.clone()
                        };
                        assert_eq!(verify(&the_key), Err(SmtProofError::KeyPresent));
                    }
                    None => {
                        assert_eq!(
                            verify_membership(root, key, &value(0), proof),
                            Err(SmtProofError::MissingLeaf)
                        );
                        let added = SmtLeaf {
                            key: with_bit_flipped(key, 255),
                            value: value(0),
                        };
                        let with_leaf = SmtProof {
                            leaf: Some(added),
                            ..proof.clone()
                        };
                        assert_eq!(
                            verify(&with_leaf),
                            Err(root_mismatch(with_leaf_root(key, &with_leaf)))
                        );
                    }
                }
                if !proof.siblings.is_empty() {
                    let off_path = SmtLeaf {
                        key: with_bit_flipped(key, 0),
                        value: value(0),
                    };
                    let moved = SmtProof {
                        leaf: Some(off_path),
                        ..proof.clone()
                    };
                    assert_eq!(
                        verify(&moved),
                        Err(SmtProofError::LeafNotOnPath {
                            depth: proof.siblings.len()
                        })
                    );
                }
            }
        }
    }

    /// The root a proof leads to, whatever it is.
    fn with_leaf_root(key: &Hash32, proof: &SmtProof) -> Hash32 {
        match check_compact_and_root(Hash32::ZERO, key, proof) {
            Err(SmtProofError::RootMismatch { computed, .. }) => computed,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn empty_tree() {
        let fixture = Fixture::new(SMT_CACHE_SIZE_BYTES_DEFAULT);
        assert_eq!(fixture.tree.root(), Hash32::ZERO);
        let proof = fixture.tree.prove(&fixture.store, &key(1)).unwrap();
        assert_eq!(
            proof,
            SmtProof {
                siblings: vec![],
                leaf: None
            }
        );
        assert_eq!(verify_non_membership(Hash32::ZERO, &key(1), &proof), Ok(()));
        assert_eq!(
            verify_membership(Hash32::ZERO, &key(1), &value(1), &proof),
            Err(SmtProofError::MissingLeaf)
        );
        assert_eq!(fixture.tree.get(&fixture.store, &key(1)).unwrap(), None);
        let write_set = fixture.tree.apply(&fixture.store, &[]).unwrap();
        assert_eq!(
            (
                write_set.root(),
                write_set.writes().len(),
                write_set.deletes().len()
            ),
            (Hash32::ZERO, 0, 0)
        );
        let write_set = fixture
            .tree
            .apply(&fixture.store, &[(key(1), None)])
            .unwrap();
        assert_eq!(
            (
                write_set.root(),
                write_set.writes().len(),
                write_set.deletes().len()
            ),
            (Hash32::ZERO, 0, 0)
        );
        assert_eq!(root_of_leaves(vec![]), Ok(Hash32::ZERO));
    }

    #[test]
    fn single_key() {
        let mut fixture = Fixture::new(SMT_CACHE_SIZE_BYTES_DEFAULT);
        let stats = fixture.apply(&[(key(1), Some(value(1)))]);
        assert_eq!((stats.pages_written, stats.pages_deleted), (1, 0));
        assert_eq!(fixture.tree.root(), leaf_hash(&key(1), &value(1)));
        let proof = fixture.tree.prove(&fixture.store, &key(1)).unwrap();
        assert_eq!(
            proof,
            SmtProof {
                siblings: vec![],
                leaf: Some(SmtLeaf {
                    key: key(1),
                    value: value(1)
                })
            }
        );
        check_tampering(fixture.tree.root(), &key(1), Some(value(1)), &proof);
        let absent = fixture.tree.prove(&fixture.store, &key(2)).unwrap();
        assert_eq!(absent, proof);
        check_tampering(fixture.tree.root(), &key(2), None, &absent);
        fixture.check_reads(&[key(2)]);
        fixture.check_store_is_canonical();
    }

    #[test]
    fn leaf_and_internal_hashes_are_blake3_of_the_documented_bytes() {
        let (left, right) = (Hash32([1; 32]), Hash32([2; 32]));
        let mut leaf_input = vec![0x00];
        leaf_input.extend_from_slice(&[1; 32]);
        leaf_input.extend_from_slice(&[2; 32]);
        assert_eq!(
            leaf_hash(&left, &right),
            Hash32::from(blake3::hash(&leaf_input))
        );
        let mut internal_input = vec![0x01];
        internal_input.extend_from_slice(&[1; 32]);
        internal_input.extend_from_slice(&[2; 32]);
        assert_eq!(
            internal_hash(&left, &right),
            Hash32::from(blake3::hash(&internal_input))
        );
    }

    #[test]
    fn two_keys_sharing_255_bits() {
        let mut fixture = Fixture::new(SMT_CACHE_SIZE_BYTES_DEFAULT);
        let first = key(7);
        let second = with_bit_flipped(&first, 255);
        let stats = fixture.apply(&[(first, Some(value(1))), (second, Some(value(2)))]);
        // One page at every depth 0, 4, ..., 252.
        assert_eq!(stats.pages_written, SMT_KEY_BITS / SMT_PAGE_HEIGHT);
        for (key, value) in [(first, value(1)), (second, value(2))] {
            let proof = fixture.tree.prove(&fixture.store, &key).unwrap();
            assert_eq!(proof.siblings.len(), 256);
            assert!(
                proof.siblings[..255]
                    .iter()
                    .all(|sibling| *sibling == Hash32::ZERO)
            );
            check_tampering(fixture.tree.root(), &key, Some(value), &proof);
        }
        // Absent keys diverging at bits 254, 100 and 0 end in empty subtrees or in the
        // other key's leaf.
        let absent: Vec<Hash32> = [254, 100, 0]
            .iter()
            .map(|bit| with_bit_flipped(&first, *bit))
            .collect();
        for key in &absent {
            let proof = fixture.tree.prove(&fixture.store, key).unwrap();
            check_tampering(fixture.tree.root(), key, None, &proof);
        }
        fixture.check_reads(&absent);
        fixture.check_store_is_canonical();
        // Deleting one key lifts the other to the root, and deletes all pages but the root.
        let stats = fixture.apply(&[(first, None)]);
        assert_eq!(
            (stats.pages_written, stats.pages_deleted),
            (1, SMT_KEY_BITS / SMT_PAGE_HEIGHT - 1)
        );
        assert_eq!(fixture.tree.root(), leaf_hash(&second, &value(2)));
        assert_eq!(fixture.store.len(), 1);
        fixture.check_store_is_canonical();
    }

    #[test]
    fn many_keys_then_delete_back_to_empty() {
        let mut fixture = Fixture::new(SMT_CACHE_SIZE_BYTES_DEFAULT);
        let keys: Vec<Hash32> = (0..3000).map(key).collect();
        for chunk in keys.chunks(1000) {
            let updates: Vec<Update> = chunk.iter().map(|key| (*key, Some(value(7)))).collect();
            fixture.apply(&updates);
        }
        let absent: Vec<Hash32> = (5000..5100).map(key).collect();
        fixture.check_reads(&absent);
        fixture.check_store_is_canonical();
        assert_eq!(
            root_of_leaves(
                fixture
                    .model
                    .iter()
                    .map(|(key, value)| (*key, *value))
                    .collect()
            ),
            Ok(fixture.tree.root())
        );

        // Change a third, delete a third.
        let updates: Vec<Update> = keys
            .iter()
            .enumerate()
            .filter(|(index, _)| index % 3 != 0)
            .map(|(index, key)| (*key, (index % 3 == 1).then(|| value(8))))
            .collect();
        fixture.apply(&updates);
        fixture.check_reads(&keys[..300]);
        fixture.check_store_is_canonical();

        let deletes: Vec<Update> = keys.iter().map(|key| (*key, None)).collect();
        for chunk in deletes.chunks(700) {
            fixture.apply(chunk);
        }
        assert_eq!(fixture.tree.root(), Hash32::ZERO);
        assert!(fixture.store.is_empty());
        assert_eq!(fixture.tree.cached_pages(), 0);
        assert_eq!(fixture.tree.cache_size_bytes(), 0);
        fixture.check_reads(&keys[..10]);
    }

    #[test]
    fn one_update_writes_the_pages_on_its_path() {
        let mut fixture = Fixture::new(SMT_CACHE_SIZE_BYTES_DEFAULT);
        let updates: Vec<Update> = (0..5000)
            .map(|number| (key(number), Some(value(number))))
            .collect();
        fixture.apply(&updates);
        let target = key(42);
        let proof = fixture.tree.prove(&fixture.store, &target).unwrap();
        let stats = fixture.apply(&[(target, Some(value(1)))]);
        // The leaf sits at depth `siblings.len()`, in the page just above it.
        assert_eq!(
            stats.pages_written,
            proof.siblings.len().div_ceil(SMT_PAGE_HEIGHT).max(1)
        );
        assert_eq!(stats.pages_deleted, 0);
        assert_eq!(stats.pages_read_from_store, 0);
        // Setting the value it already holds writes nothing.
        let write_set = fixture
            .tree
            .apply(
                &fixture.store,
                &[(target, Some(value(1))), (key(99_999), None)],
            )
            .unwrap();
        assert_eq!(
            (
                write_set.root(),
                write_set.writes().len(),
                write_set.deletes().len()
            ),
            (fixture.tree.root(), 0, 0)
        );
    }

    #[test]
    fn failed_apply_and_stale_commit_change_nothing() {
        let mut fixture = Fixture::new(SMT_CACHE_SIZE_BYTES_DEFAULT);
        let updates: Vec<Update> = (0..500)
            .map(|number| (key(number), Some(value(number))))
            .collect();
        fixture.apply(&updates);
        let root = fixture.tree.root();

        // A cold handle whose store fails part way.
        let cold = SparseMerkleTree::open(&fixture.store, root).unwrap();
        let block: Vec<Update> = (250..750)
            .map(|number| (key(number), Some(value(number + 1))))
            .collect();
        for reads in [0, 1, 5, 40] {
            let failing = FailingStore {
                inner: &fixture.store,
                reads_left: Cell::new(reads),
            };
            let error = cold.apply(&failing, &block).unwrap_err();
            assert_eq!(
                error,
                SmtError::Store(SmtStoreError {
                    message: "disk on fire".into()
                })
            );
            assert_eq!(cold.root(), root);
            assert_eq!(cold.cached_pages(), 0);
        }
        let duplicate = [(key(1), Some(value(1))), (key(2), None), (key(1), None)];
        assert_eq!(
            fixture.tree.apply(&fixture.store, &duplicate).unwrap_err(),
            SmtError::DuplicateKey { key: key(1) }
        );
        let too_many = vec![(key(1), None); SMT_UPDATES_PER_APPLY_MAX + 1];
        assert_eq!(
            fixture.tree.apply(&fixture.store, &too_many).unwrap_err(),
            SmtError::TooManyUpdates {
                count: SMT_UPDATES_PER_APPLY_MAX + 1,
                max: SMT_UPDATES_PER_APPLY_MAX
            }
        );

        // Two write sets from one root: the second commit is refused and changes nothing.
        let first = fixture.tree.apply(&fixture.store, &block).unwrap();
        let second = fixture
            .tree
            .apply(&fixture.store, &[(key(1), None)])
            .unwrap();
        fixture.store.persist(&first);
        let new_root = first.root();
        fixture.tree.commit(first).unwrap();
        let pages_before = fixture.tree.cached_pages();
        assert_eq!(
            fixture.tree.commit(second).unwrap_err(),
            SmtError::StaleWriteSet {
                tree_root: new_root,
                write_set_previous_root: root
            }
        );
        assert_eq!(fixture.tree.root(), new_root);
        assert_eq!(fixture.tree.cached_pages(), pages_before);
        for (key, value) in &block {
            fixture.model.insert(*key, value.unwrap());
        }
        assert_eq!(new_root, reference_root(&fixture.model));
        fixture.check_reads(&[key(10_000)]);
        fixture.check_store_is_canonical();
    }

    #[test]
    fn damaged_stores_are_detected() {
        let mut fixture = Fixture::new(SMT_CACHE_SIZE_BYTES_DEFAULT);
        let updates: Vec<Update> = (0..300)
            .map(|number| (key(number), Some(value(number))))
            .collect();
        fixture.apply(&updates);
        let root = fixture.tree.root();

        assert!(matches!(
            SparseMerkleTree::open(&fixture.store, Hash32([9; 32])),
            Err(SmtError::PageHashMismatch { expected, found, .. }) if expected == Hash32([9; 32]) && found == root
        ));
        assert_eq!(
            SparseMerkleTree::open(&fixture.store, Hash32::ZERO).unwrap_err(),
            SmtError::UnexpectedRootPage
        );
        assert_eq!(
            SparseMerkleTree::open(&MemorySmtStore::new(), root).unwrap_err(),
            SmtError::MissingPage {
                page_key: "00".into()
            }
        );

        // Change one value byte of a leaf in a page below the root.
        let (page_key, page_bytes) = fixture
            .store
            .pages
            .iter()
            .find(|(key, _)| key[0] == 4)
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap();
        let mut damaged = fixture.store.clone();
        let mut bytes = page_bytes.clone();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        damaged.pages.insert(page_key.clone(), bytes);
        let cold = SparseMerkleTree::open(&damaged, root).unwrap();
        let key_below = fixture
            .model
            .keys()
            .find(|key| PageId::of_key(key, 4).store_key() == page_key)
            .copied()
            .unwrap();
        assert!(matches!(
            cold.get(&damaged, &key_below),
            Err(SmtError::PageHashMismatch { .. })
        ));
        assert!(matches!(
            cold.prove(&damaged, &key_below),
            Err(SmtError::PageHashMismatch { .. })
        ));
        assert!(matches!(
            cold.apply(&damaged, &[(key_below, None)]),
            Err(SmtError::PageHashMismatch { .. })
        ));

        let mut missing = fixture.store.clone();
        missing.pages.remove(&page_key);
        let cold = SparseMerkleTree::open(&missing, root).unwrap();
        assert_eq!(
            cold.get(&missing, &key_below).unwrap_err(),
            SmtError::MissingPage {
                page_key: hex::encode(&page_key)
            }
        );

        let mut truncated = fixture.store.clone();
        truncated.pages.insert(
            page_key.clone(),
            page_bytes[..page_bytes.len() - 1].to_vec(),
        );
        let cold = SparseMerkleTree::open(&truncated, root).unwrap();
        assert!(matches!(
            cold.get(&truncated, &key_below),
            Err(SmtError::MalformedPage { .. })
        ));
    }

    #[test]
    fn decoding_rejects_malformed_pages() {
        let id = PageId::of_key(&key(1), 4);
        let leaf = |number: u64| {
            let mut key = key(number);
            key.0[0] = id.prefix.0[0] | (key.0[0] & 0x0F);
            let mut bytes = vec![(key.0[0] & 0x0F), PAGE_KIND_LEAF];
            bytes.extend_from_slice(key.as_bytes());
            bytes.extend_from_slice(value(number).as_bytes());
            (key, bytes)
        };
        let (first_key, first) = leaf(1);
        let (second_key, second) = leaf(2);
        let (first, second) = if first_key < second_key {
            (first, second)
        } else {
            (second, first)
        };
        let valid = [vec![1, 2], first.clone(), second.clone()].concat();
        if first[0] != second[0] {
            assert!(Page::decode(id, &valid).is_ok());
        }
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "empty"),
            (
                [vec![2, 2], first.clone(), second.clone()].concat(),
                "unknown format version",
            ),
            (vec![1], "no entry count"),
            (vec![1, 0], "entry count out of range"),
            (vec![1, 17], "entry count out of range"),
            (
                [vec![1, 1], first.clone()].concat(),
                "a page below the root holding fewer than two keys",
            ),
            (
                [vec![1, 2], second.clone(), first.clone()].concat(),
                "slots not in increasing order",
            ),
            (
                [vec![1, 2], first.clone(), second.clone(), vec![0]].concat(),
                "trailing bytes",
            ),
            (
                [vec![1, 2], first.clone(), second[..40].to_vec()].concat(),
                "truncated leaf",
            ),
            (
                [vec![1, 1], vec![16, PAGE_KIND_CHILD], vec![0; 32]].concat(),
                "slot out of range",
            ),
            (
                [vec![1, 1], vec![3, 7], vec![0; 32]].concat(),
                "unknown entry kind",
            ),
            (
                [vec![1, 1], vec![(first[0] + 1) % 16], first[1..].to_vec()].concat(),
                "leaf key outside its slot",
            ),
        ];
        for (bytes, reason) in cases {
            if reason == "slots not in increasing order" && first[0] == second[0] {
                continue;
            }
            assert_eq!(
                Page::decode(id, &bytes).unwrap_err(),
                id.malformed(reason),
                "{reason}"
            );
        }
        let deepest = PageId::of_key(&key(1), PAGE_DEPTH_MAX);
        let child = [vec![1, 1, 0, PAGE_KIND_CHILD], vec![5; 32]].concat();
        assert_eq!(
            Page::decode(deepest, &child).unwrap_err(),
            deepest.malformed("page below the deepest page")
        );
    }

    #[test]
    fn cache_stays_within_its_limit_and_correct() {
        let limit = 64 * 1024;
        let mut fixture = Fixture::new(limit);
        for batch in 0..6u64 {
            let updates: Vec<Update> = (batch * 400..batch * 400 + 600)
                .map(|number| (key(number), Some(value(number + batch))))
                .collect();
            fixture.apply(&updates);
            assert!(fixture.tree.cache_size_bytes() <= limit);
            assert!(fixture.tree.cached_pages() > 0);
        }
        // The root page is used by every block, so it survives eviction.
        assert!(fixture.tree.cache.get(&PageId::ROOT).is_some());
        let keys: Vec<Hash32> = (0..3000).map(key).collect();
        fixture.check_reads(&keys[2600..]);
        fixture.check_store_is_canonical();
        let shrunk = fixture.tree.clone().with_cache_limit(0);
        assert_eq!((shrunk.cached_pages(), shrunk.cache_size_bytes()), (0, 0));
    }

    #[test]
    fn proofs_serialize_as_documented() {
        let proof = SmtProof {
            siblings: vec![Hash32([1; 32]), Hash32::ZERO],
            leaf: Some(SmtLeaf {
                key: Hash32([2; 32]),
                value: Hash32([3; 32]),
            }),
        };
        let json = serde_json::to_value(&proof).unwrap();
        assert_eq!(
            json,
            json!({
                "siblings": ["01".repeat(32), "00".repeat(32)],
                "leaf": {"key": "02".repeat(32), "value": "03".repeat(32)},
            })
        );
        assert_eq!(serde_json::from_value::<SmtProof>(json).unwrap(), proof);
        let empty = SmtProof {
            siblings: vec![],
            leaf: None,
        };
        assert_eq!(
            serde_json::to_value(&empty).unwrap(),
            json!({"siblings": [], "leaf": null})
        );
        let bytes = postcard::to_stdvec(&proof).unwrap();
        assert_eq!(bytes.len(), 1 + 64 + 1 + 64);
        assert_eq!(postcard::from_bytes::<SmtProof>(&bytes).unwrap(), proof);
    }

    #[test]
    fn root_of_leaves_refuses_duplicates() {
        let leaves = vec![(key(1), value(1)), (key(2), value(2)), (key(1), value(3))];
        assert_eq!(
            root_of_leaves(leaves),
            Err(SmtError::DuplicateKey { key: key(1) })
        );
    }

    // -----------------------------------------------------------------------------------
    // Vectors
    // -----------------------------------------------------------------------------------

    #[derive(Deserialize)]
    struct VectorFile {
        leaves: Vec<SmtLeaf>,
        root: Hash32,
        cases: Vec<VectorCase>,
    }

    #[derive(Deserialize)]
    struct VectorCase {
        name: String,
        kind: String,
        key: Hash32,
        value: Option<Hash32>,
        proof: SmtProof,
        error: Option<String>,
    }

    fn vector_leaves() -> Vec<(Hash32, Hash32)> {
        let mut leaves: Vec<(Hash32, Hash32)> = (0..6u8)
            .map(|index| {
                (
                    tagged("hutong/test/smt-vector/key", &[index]),
                    tagged("hutong/test/smt-vector/value", &[index]),
                )
            })
            .collect();
        // A key sharing 12 bits with the first one, so that paths cross empty siblings.
        leaves.push((
            with_bit_flipped(&leaves[0].0, 12),
            tagged("hutong/test/smt-vector/value", &[6]),
        ));
        leaves
    }

    /// The vector file's content, generated from the code.
    fn generate_vectors() -> serde_json::Value {
        let leaves = vector_leaves();
        let mut fixture = Fixture::new(SMT_CACHE_SIZE_BYTES_DEFAULT);
        let inserts: Vec<Update> = leaves
            .iter()
            .map(|(key, value)| (*key, Some(*value)))
            .collect();
        fixture.apply(&inserts);
        let root = fixture.tree.root();
        let prove = |key: &Hash32| fixture.tree.prove(&fixture.store, key).unwrap();

        let (member_key, member_value) = leaves[0];
        let membership = prove(&member_key);
        let candidates =
            (0u32..).map(|number| tagged("hutong/test/smt-vector/absent", &number.to_le_bytes()));
        let absent_at_leaf = candidates
            .clone()
            .find(|key| prove(key).leaf.is_some())
            .unwrap();
        let absent_at_empty = candidates
            .clone()
            .find(|key| prove(key).leaf.is_none())
            .unwrap();
        let at_leaf = prove(&absent_at_leaf);
        let at_empty = prove(&absent_at_empty);

        let mut cases = Vec::new();
        let mut case = |name: String, key: &Hash32, value: Option<Hash32>, proof: &SmtProof| {
            let result = match value {
                Some(value) => verify_membership(root, key, &value, proof),
                None => verify_non_membership(root, key, proof),
            };
            cases.push(json!({
                "name": name,
                "kind": if value.is_some() { "membership" } else { "non-membership" },
                "key": key,
                "value": value,
                "proof": proof,
                "error": result.err().map(|error| error.code()),
            }));
        };
        case(
            "membership".into(),
            &member_key,
            Some(member_value),
            &membership,
        );
        case(
            "non-membership-ending-in-leaf".into(),
            &absent_at_leaf,
            None,
            &at_leaf,
        );
        case(
            "non-membership-ending-in-empty".into(),
            &absent_at_empty,
            None,
            &at_empty,
        );

        for (label, key, value, proof) in [
            ("membership", member_key, Some(member_value), &membership),
            (
                "non-membership-ending-in-leaf",
                absent_at_leaf,
                None,
                &at_leaf,
            ),
            (
                "non-membership-ending-in-empty",
                absent_at_empty,
                None,
                &at_empty,
            ),
        ] {
            for index in 0..proof.siblings.len() {
                let mut tampered = proof.clone();
                tampered.siblings[index] = with_bit_flipped(&tampered.siblings[index], 0);
                case(
                    format!("{label}/modified-sibling[{index}]-bit-0"),
                    &key,
                    value,
                    &tampered,
                );
            }
            let mut truncated = proof.clone();
            truncated.siblings.pop();
            case(format!("{label}/truncated"), &key, value, &truncated);
            let mut extra = proof.clone();
            extra
                .siblings
                .push(tagged("hutong/test/smt-vector/extra", b""));
            case(format!("{label}/extra-sibling"), &key, value, &extra);
            let mut extra_empty = proof.clone();
            extra_empty.siblings.push(Hash32::ZERO);
            case(
                format!("{label}/extra-empty-sibling"),
                &key,
                value,
                &extra_empty,
            );
            if value.is_some() {
                // Once is enough: the siblings make it the bulk of the file.
                let mut too_many = proof.clone();
                too_many
                    .siblings
                    .resize(SMT_PROOF_SIBLINGS_MAX + 1, Hash32::ZERO);
                case(format!("{label}/too-many-siblings"), &key, value, &too_many);
            }
            match value {
                Some(value) => {
                    case(
                        format!("{label}/wrong-key"),
                        &leaves[1].0,
                        Some(value),
                        proof,
                    );
                    case(
                        format!("{label}/wrong-value"),
                        &key,
                        Some(leaves[1].1),
                        proof,
                    );
                    case(
                        format!("{label}/leaf-removed"),
                        &key,
                        Some(value),
                        &SmtProof {
                            leaf: None,
                            ..proof.clone()
                        },
                    );
                    case(
                        format!("{label}/presented-as-non-membership"),
                        &key,
                        None,
                        proof,
                    );
                }
                None => {
                    let leaf = proof.leaf.unwrap_or(SmtLeaf {
                        key: with_bit_flipped(&key, 255),
                        value: leaves[1].1,
                    });
                    let swapped = SmtLeaf {
                        value: leaves[2].1,
                        ..leaf
                    };
                    case(
                        format!("{label}/leaf-swapped"),
                        &key,
                        None,
                        &SmtProof {
                            leaf: Some(swapped),
                            ..proof.clone()
                        },
                    );
                    case(
                        format!("{label}/leaf-replaced-by-the-key"),
                        &key,
                        None,
                        &SmtProof {
                            leaf: Some(SmtLeaf { key, ..leaf }),
                            ..proof.clone()
                        },
                    );
                    let off_path = SmtLeaf {
                        key: with_bit_flipped(&key, 0),
                        ..leaf
                    };
                    case(
                        format!("{label}/leaf-not-on-path"),
                        &key,
                        None,
                        &SmtProof {
                            leaf: Some(off_path),
                            ..proof.clone()
                        },
                    );
                    if proof.leaf.is_some() {
                        case(
                            format!("{label}/leaf-removed"),
                            &key,
                            None,
                            &SmtProof {
                                leaf: None,
                                ..proof.clone()
                            },
                        );
                    }
                    case(
                        format!("{label}/presented-as-membership"),
                        &key,
                        Some(leaf.value),
                        proof,
                    );
                }
            }
        }

        json!({
            "description": "hutong sparse Merkle tree (state commitment) proof vectors. Keys are bit strings, most significant bit of byte 0 first. Empty subtree = 32 zero bytes; one-key subtree = blake3(0x00 || key || value); other subtrees = blake3(0x01 || left || right). Siblings are listed from the root downwards. A case verifies if and only if error is null; otherwise error names the first check that fails, in the order of the verification procedure.",
            "leaves": leaves.iter().map(|(key, value)| SmtLeaf { key: *key, value: *value }).collect::<Vec<_>>(),
            "root": root,
            "cases": cases,
        })
    }

    #[test]
    #[ignore = "prints tests/vectors/smt/proofs.json; run by hand when the format changes on purpose"]
    fn print_proof_vectors() {
        println!(
            "{}",
            serde_json::to_string_pretty(&generate_vectors()).unwrap()
        );
    }

    #[test]
    fn proof_vectors() {
        let text = include_str!("../tests/vectors/smt/proofs.json");
        let file: VectorFile = serde_json::from_str(text).unwrap();
        let leaves: Vec<(Hash32, Hash32)> = file
            .leaves
            .iter()
            .map(|leaf| (leaf.key, leaf.value))
            .collect();
        assert_eq!(root_of_leaves(leaves.clone()), Ok(file.root));
        let model: BTreeMap<Hash32, Hash32> = leaves.into_iter().collect();
        assert_eq!(reference_root(&model), file.root);
        let mut codes_seen = std::collections::BTreeSet::new();
        for case in &file.cases {
            let result = match (case.kind.as_str(), case.value) {
                ("membership", Some(value)) => {
                    verify_membership(file.root, &case.key, &value, &case.proof)
                }
                ("non-membership", None) => {
                    verify_non_membership(file.root, &case.key, &case.proof)
                }
                other => panic!("case {} has kind and value {other:?}", case.name),
            };
            assert_eq!(
                result.err().map(|error| error.code().to_string()),
                case.error,
                "case {}",
                case.name
            );
            codes_seen.extend(case.error.clone());
        }
        assert!(
            file.cases
                .iter()
                .filter(|case| case.error.is_none())
                .count()
                == 3
        );
        assert_eq!(
            codes_seen.len(),
            8,
            "every error appears in the vectors: {codes_seen:?}"
        );
        // The file is what the code generates: proofs built by `prove` match it exactly.
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(text).unwrap(),
            generate_vectors()
        );
    }

    // -----------------------------------------------------------------------------------
    // Properties
    // -----------------------------------------------------------------------------------

    /// A pool of keys: random ones, and neighbours of them that differ in one bit, so that
    /// keys share long prefixes (up to 255 bits) and pages chain.
    fn key_pool() -> impl Strategy<Value = Vec<Hash32>> {
        (
            prop::collection::vec(any::<[u8; 32]>(), 1..10),
            prop::collection::vec(
                (any::<usize>(), prop_oneof![0..256usize, 248..256usize]),
                0..8,
            ),
        )
            .prop_map(|(bases, neighbours)| {
                let mut pool: Vec<Hash32> = bases.into_iter().map(Hash32).collect();
                for (index, bit) in neighbours {
                    let base = pool[index % pool.len()];
                    pool.push(with_bit_flipped(&base, bit));
                }
                pool.sort();
                pool.dedup();
                pool
            })
    }

    fn batches() -> impl Strategy<Value = Vec<Vec<(usize, Option<u8>)>>> {
        prop::collection::vec(
            prop::collection::vec((any::<usize>(), prop::option::weighted(0.7, 0..4u8)), 0..12),
            1..8,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 96,
            // Failures print their seed; nothing is written into the source tree.
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn matches_the_reference_model(
            pool in key_pool(),
            batches in batches(),
            cache_size_bytes_max in prop_oneof![Just(0usize), Just(4096), Just(SMT_CACHE_SIZE_BYTES_DEFAULT)],
        ) {
            let mut fixture = Fixture::new(cache_size_bytes_max);
            for batch in batches {
                // One update per key and batch: the last one wins.
                let updates: BTreeMap<Hash32, Option<Hash32>> =
                    batch.into_iter().map(|(index, value_number)| (pool[index % pool.len()], value_number.map(|number| value(u64::from(number))))).collect();
                let updates: Vec<Update> = updates.into_iter().rev().collect();
                fixture.apply(&updates);
                fixture.check_reads(&pool);
            }
            fixture.check_store_is_canonical();
            let cold = Fixture { tree: SparseMerkleTree::open(&fixture.store, fixture.tree.root()).unwrap(), store: fixture.store.clone(), model: fixture.model.clone() };
            cold.check_reads(&pool);
        }

        #[test]
        fn root_is_independent_of_order_and_batching(
            pool in key_pool(),
            seed in any::<u64>(),
            chunk_size in 1..5usize,
        ) {
            let leaves: Vec<Update> = pool.iter().enumerate().map(|(index, key)| (*key, Some(value(index as u64)))).collect();
            let mut all_at_once = Fixture::new(SMT_CACHE_SIZE_BYTES_DEFAULT);
            all_at_once.apply(&leaves);
            let mut shuffled = leaves.clone();
            // A seeded Fisher-Yates shuffle; the seed is in the failure report.
            let mut state = seed;
            for index in (1..shuffled.len()).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(index, (state >> 33) as usize % (index + 1));
            }
            let mut in_chunks = Fixture::new(0);
            for chunk in shuffled.chunks(chunk_size) {
                in_chunks.apply(chunk);
            }
            prop_assert_eq!(in_chunks.tree.root(), all_at_once.tree.root());
            prop_assert_eq!(&in_chunks.store, &all_at_once.store);
        }

        #[test]
        fn tampered_proofs_fail(pool in key_pool(), absent in prop::collection::vec(any::<[u8; 32]>(), 1..4)) {
            let mut fixture = Fixture::new(SMT_CACHE_SIZE_BYTES_DEFAULT);
            let leaves: Vec<Update> = pool.iter().enumerate().map(|(index, key)| (*key, Some(value(index as u64)))).collect();
            fixture.apply(&leaves);
            let root = fixture.tree.root();
            for (key, value) in &fixture.model {
                let proof = fixture.tree.prove(&fixture.store, key).unwrap();
                check_tampering(root, key, Some(*value), &proof);
            }
            let neighbours = pool.iter().map(|key| with_bit_flipped(key, 200));
            for key in absent.into_iter().map(Hash32).chain(neighbours) {
                if !fixture.model.contains_key(&key) {
                    let proof = fixture.tree.prove(&fixture.store, &key).unwrap();
                    check_tampering(root, &key, None, &proof);
                }
            }
        }

        #[test]
        fn verification_never_panics(
            root in any::<[u8; 32]>(),
            key in any::<[u8; 32]>(),
            value in any::<[u8; 32]>(),
            siblings in prop::collection::vec(prop_oneof![Just([0u8; 32]), any::<[u8; 32]>()], 0..300),
            leaf in prop::option::of((any::<[u8; 32]>(), any::<[u8; 32]>())),
        ) {
            let proof = SmtProof {
                siblings: siblings.into_iter().map(Hash32).collect(),
                leaf: leaf.map(|(key, value)| SmtLeaf { key: Hash32(key), value: Hash32(value) }),
            };
            let membership = verify_membership(Hash32(root), &Hash32(key), &Hash32(value), &proof);
            let non_membership = verify_non_membership(Hash32(root), &Hash32(key), &proof);
            prop_assert!(membership.is_err() && non_membership.is_err());
        }

        #[test]
        fn decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600), depth_step in 0..=(PAGE_DEPTH_MAX / SMT_PAGE_HEIGHT), key in any::<[u8; 32]>()) {
            let id = PageId::of_key(&Hash32(key), depth_step * SMT_PAGE_HEIGHT);
            if let Ok(page) = Page::decode(id, &bytes) {
                prop_assert_eq!(page.encode(), bytes);
            }
        }
    }
}
