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
//! Keys and values are [`Hash32`]: the key is a record key's position (its tagged hash, with
//! the first bit telling the directory from the rest, `RecordKey::state_hash`), the value
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
//! Its 16 *slots* are the subtrees at depth `d + 4`. A slot holds nothing; or its keys
//! themselves, when there are at most 4 ([`SMT_SLOT_KEYS_MAX`]), stored in full (key and
//! value); or the hash of the page at depth `d + 4` below it, which holds its keys when
//! there are more. So the page at depth 0 (the root page) exists exactly when the tree is
//! not empty, any other page exists exactly when its subtree holds more than 4 keys, and
//! the stored form of a tree is a function of its contents alone. The hashes of the nodes
//! inside a page, and of the subtrees of the keys a slot holds, are recomputed from its
//! slots when the page is read and checked against the hash its parent (or the expected
//! root) records, so a store that returns damaged pages is detected
//! ([`SmtError::PageHashMismatch`]).
//!
//! Store keys: one byte `d` (the page's depth in bits: 0, 4, ..., 252), then the first
//! `ceil(d / 8)` bytes of any key below the page, with the bits from `d` on set to zero.
//! The root page's key is the single byte 0x00. The caller may put them under a prefix of
//! its own. Page bytes, [`SMT_PAGE_FORMAT_VERSION`] 1: the version byte 0x01; the number of
//! occupied slots `n` (1..=16) as one byte; then `n` entries by increasing slot, each the
//! slot number (one byte, 0..=15: bits `d..d+4` of the keys below it), a kind byte, and
//! then: for kind 0x00 (one key) the 32 key bytes and the 32 value bytes; for kind 0x02
//! (2 to 4 keys) their count as one byte, then each key's 32 bytes and value's 32 bytes by
//! increasing key; for kind 0x01 (a page below) the 32 bytes of that page's hash.
//!
//! Why this shape: every page on a changed key's path must be rewritten, because each
//! records the hashes of the pages below it, so the number of pages on a path is the number
//! of store writes an update costs. One stored node per binary node would cost about 20
//! writes per update in a tree of a million keys. Pages of height 4 cost about 5 on a path,
//! and in a block the upper pages are shared by many updates; keeping small groups of keys
//! in their parent's slot spares the pages that would hold two or three keys each, the
//! most common kind at the bottom of the tree. Measured by the benchmark: 5,000 updates on
//! a million keys write 1.6 pages per update, about 1,400 bytes. Taller pages would
//! write fewer values but larger ones: a page holds up to `2^height` slots, so pages of
//! height 8 would write about one value per update but up to 17 KiB each once the tree
//! holds tens of millions of keys, while height 4 keeps every value under 4.2 KiB and most
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
//! The handle keeps decoded pages (with the hashes of the nodes inside them, each page a
//! single allocation) up to [`SMT_CACHE_SIZE_BYTES_DEFAULT`] or the limit given to
//! [`SparseMerkleTree::with_cache_limit`]; a tree of a million keys takes about 122 MiB.
//! Pages enter the cache only at `commit`: the pages that block wrote, and the unchanged
//! pages `apply` read on the way; deleted pages leave it. So the cache only ever holds
//! pages as they are persisted at the committed root. When the estimate of its size passes
//! the limit, it drops the pages that were least recently used by a committed block (the
//! deepest first among equals) until it is back under seven eighths of the limit; pages
//! near the root are used by every block and stay. Reads ([`SparseMerkleTree::get`],
//! [`SparseMerkleTree::prove`]) use the cache but do not fill it, so they take `&self` and
//! may run concurrently.
//!
//! # Example
//!
//! ```
//! use hutong_core::smt::{MemorySmtStore, SparseMerkleTree, verify_membership, verify_non_membership};
//! use hutong_core::suite::Suite;
//!
//! let suite = Suite::Ed25519Blake3;
//! let mut store = MemorySmtStore::new();
//! let mut tree = SparseMerkleTree::empty(suite);
//! let key = suite.tagged("example/key", b"licence 1");
//! let value = suite.tagged("example/value", b"valid");
//!
//! let write_set = tree.apply(&store, &[(key, Some(value))])?;
//! store.persist(&write_set); // the ledger writes these together with the block
//! tree.commit(write_set)?;
//!
//! let proof = tree.prove(&store, &key)?;
//! assert_eq!(verify_membership(suite, tree.root(), &key, &value, &proof), Ok(()));
//! let absent = suite.tagged("example/key", b"licence 2");
//! let proof = tree.prove(&store, &absent)?;
//! assert_eq!(verify_non_membership(suite, tree.root(), &absent, &proof), Ok(()));
//! # Ok::<(), hutong_core::smt::SmtError>(())
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::hash::Hash32;
use crate::suite::Suite;

/// Bits in a key, and the depth of the uncompacted tree.
pub const SMT_KEY_BITS: usize = 256;
/// A proof has at most one sibling per key bit.
pub const SMT_PROOF_SIBLINGS_MAX: usize = SMT_KEY_BITS;
/// Levels of the binary tree stored in one page; a page has `2^SMT_PAGE_HEIGHT` slots.
pub const SMT_PAGE_HEIGHT: usize = 4;
/// The first byte of every stored page.
pub const SMT_PAGE_FORMAT_VERSION: u8 = 1;
/// Default bound on the estimated memory of a tree handle's page cache: the pages of about
/// two million keys.
pub const SMT_CACHE_SIZE_BYTES_DEFAULT: usize = 256 * 1024 * 1024;
/// Most keys a slot of a page holds itself; a slot's subtree with more keys gets a page of
/// its own. Small groups of keys (two or three, at the bottom of the tree) are common, and
/// a page for each would cost a store write per update and a cache entry per group.
pub const SMT_SLOT_KEYS_MAX: usize = 4;
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
const PAGE_KIND_LEAVES: u8 = 0x02;
const PAGE_HEADER_BYTES: usize = 2;
const PAGE_LEAF_BYTES: usize = 2 + 64;
const PAGE_CHILD_BYTES: usize = 2 + 32;
/// Slot, kind and count bytes before the keys of a slot holding two keys or more.
const PAGE_LEAVES_HEADER_BYTES: usize = 3;
/// What the cache estimates for a page besides its array of words: the map slot holding
/// the id and the page's fields, with the spare capacity a hash map keeps (half again).
const CACHE_PAGE_OVERHEAD_BYTES: usize = std::mem::size_of::<(PageId, CachedPage)>() * 3 / 2;

// A page's slots and its internal nodes must each fit a `u64` mask, its slot count one
// byte, its depth one byte, and pages must tile the key exactly.
const _: () = assert!(SMT_PAGE_HEIGHT >= 1 && SMT_PAGE_HEIGHT <= 5);
const _: () = assert!(SMT_KEY_BITS.is_multiple_of(SMT_PAGE_HEIGHT));
const _: () = assert!(PAGE_DEPTH_MAX <= u8::MAX as usize);
const _: () = assert!(SMT_PROOF_SIBLINGS_MAX == SMT_KEY_BITS);
// A slot's key count is one byte, and a page's keys are counted in a `u16`.
const _: () = assert!(SMT_SLOT_KEYS_MAX >= 1 && SMT_SLOT_KEYS_MAX <= u8::MAX as usize);
const _: () = assert!(SLOTS_PER_PAGE * SMT_SLOT_KEYS_MAX <= u16::MAX as usize);

/// One change to the tree: a key and its new value, or `None` to delete the key.
pub type SmtUpdate = (Hash32, Option<Hash32>);

/// The hash of a subtree holding exactly one key: `H(0x00 || key || value)` under the chain's
/// suite.
pub fn leaf_hash(suite: Suite, key: &Hash32, value: &Hash32) -> Hash32 {
    suite.tree_leaf(key, value)
}

/// The hash of a subtree holding two keys or more: `H(0x01 || left || right)` under the
/// chain's suite.
pub fn internal_hash(suite: Suite, left: &Hash32, right: &Hash32) -> Hash32 {
    suite.tree_node(left, right)
}

/// The root of the tree holding exactly `leaves` (key, value), computed directly from the
/// list: for an auditor who re-derives the state root from an export, without a store.
pub fn root_of_leaves(suite: Suite, mut leaves: Vec<(Hash32, Hash32)>) -> Result<Hash32, SmtError> {
    leaves.sort_unstable_by_key(|leaf| leaf.0);
    if let Some([first, _]) = leaves
        .windows(2)
        .find(|pair| matches!(pair, [first, second] if first.0 == second.0))
    {
        return Err(SmtError::DuplicateKey { key: first.0 });
    }
    let leaves: Vec<SmtLeaf> = leaves
        .into_iter()
        .map(|(key, value)| SmtLeaf { key, value })
        .collect();
    Ok(root_of_sorted_leaves(suite, &leaves, 0))
}

/// The hash of the subtree at `depth` holding `leaves`, sorted by key, distinct, and all on
/// that subtree's path.
fn root_of_sorted_leaves(suite: Suite, leaves: &[SmtLeaf], depth: usize) -> Hash32 {
    match leaves {
        [] => Hash32::ZERO,
        [leaf] => leaf_hash(suite, &leaf.key, &leaf.value),
        _ => {
            // Distinct sorted keys split before depth 256, so `depth` stays a valid bit index.
            assert!(
                depth < SMT_KEY_BITS,
                "two distinct keys agree on all 256 bits"
            );
            let split = leaves.partition_point(|leaf| !leaf.key.bit(depth));
            let (left, right) = leaves.split_at(split);
            internal_hash(
                suite,
                &root_of_sorted_leaves(suite, left, depth + 1),
                &root_of_sorted_leaves(suite, right, depth + 1),
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
    suite: Suite,
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
    check_compact_and_root(suite, root, key, proof)
}

/// Checks that `proof` shows `key` holding nothing in the tree with root `root`.
pub fn verify_non_membership(
    suite: Suite,
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
    check_compact_and_root(suite, root, key, proof)
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
    suite: Suite,
    root: Hash32,
    key: &Hash32,
    proof: &SmtProof,
) -> Result<(), SmtProofError> {
    if proof.siblings.last() == Some(&Hash32::ZERO) {
        return Err(SmtProofError::EmptyLastSibling);
    }
    let mut node = proof.leaf.map_or(Hash32::ZERO, |leaf| {
        leaf_hash(suite, &leaf.key, &leaf.value)
    });
    for (depth, sibling) in proof.siblings.iter().enumerate().rev() {
        node = if key.bit(depth) {
            internal_hash(suite, sibling, &node)
        } else {
            internal_hash(suite, &node, sibling)
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

/// A list of at most `CAPACITY` items kept inline, so that building a page allocates only
/// its final array, of its exact size: a block rebuilds thousands of pages, and the
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
        // The capacities are a page's slot count and a slot's key count; the callers check
        // the counts first, so exceeding one is a bug.
        let place = self.items.get_mut(self.len);
        assert!(
            place.is_some(),
            "an inline list holds at most {CAPACITY} items"
        );
        if let Some(place) = place {
            *place = item;
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[Item] {
        self.items.get(..self.len).unwrap_or(&[])
    }
}

impl<Item: Copy + PartialEq, const CAPACITY: usize> PartialEq for InlineList<Item, CAPACITY> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<Item: Copy + Eq, const CAPACITY: usize> Eq for InlineList<Item, CAPACITY> {}

impl<Item: Copy + fmt::Debug, const CAPACITY: usize> fmt::Debug for InlineList<Item, CAPACITY> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_list().entries(self.as_slice()).finish()
    }
}

/// The keys a slot holds in its page, sorted by key.
type SlotLeaves = InlineList<SmtLeaf, SMT_SLOT_KEYS_MAX>;

fn slot_leaves(leaves: &[SmtLeaf]) -> SlotLeaves {
    let mut list = SlotLeaves::new(FILLER_LEAF);
    for leaf in leaves {
        list.push(*leaf);
    }
    list
}

/// Fills unused places of inline lists; never read.
const FILLER_LEAF: SmtLeaf = SmtLeaf {
    key: Hash32::ZERO,
    value: Hash32::ZERO,
};

/// An occupied slot of a page being built: the hash of the slot's subtree, and the keys the
/// slot holds itself, as a range of its [`PageDraft`]'s leaves (none when they are in the
/// page below). Small, because building a page copies entries around.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PageEntry {
    slot: u8,
    hash: Hash32,
    first_leaf: u16,
    leaf_count: u8,
}

impl PageEntry {
    /// The slot holds exactly one key: then the key sits higher up in the page, where it is
    /// alone.
    fn is_single_leaf(&self) -> bool {
        self.leaf_count == 1
    }
}

/// The entries of a page being built, by increasing slot, and the keys they hold.
#[derive(Clone, Debug, Default)]
struct PageDraft {
    entries: Vec<PageEntry>,
    leaves: Vec<SmtLeaf>,
}

impl PageDraft {
    fn clear(&mut self) {
        self.entries.clear();
        self.leaves.clear();
    }

    fn push_leaves(&mut self, slot: usize, hash: Hash32, leaves: &[SmtLeaf]) {
        self.entries.push(PageEntry {
            slot: slot as u8,
            hash,
            first_leaf: self.leaves.len() as u16,
            leaf_count: leaves.len() as u8,
        });
        self.leaves.extend_from_slice(leaves);
    }

    fn push_page_below(&mut self, slot: usize, hash: Hash32) {
        self.push_leaves(slot, hash, &[]);
    }

    /// Adds a slot as [`Page::slot`] gives it.
    fn push_words(&mut self, slot: usize, hash: Hash32, words: &[Hash32]) {
        self.entries.push(PageEntry {
            slot: slot as u8,
            hash,
            first_leaf: self.leaves.len() as u16,
            leaf_count: (words.len() / 2) as u8,
        });
        self.leaves.extend(leaves_of_words(words));
    }

    fn has_page_below(&self) -> bool {
        self.entries.iter().any(|entry| entry.leaf_count == 0)
    }
}

/// The keys and values stored as consecutive words in a page.
fn leaves_of_words(words: &[Hash32]) -> impl Iterator<Item = SmtLeaf> + '_ {
    words.chunks_exact(2).filter_map(|pair| match pair {
        [key, value] => Some(SmtLeaf {
            key: *key,
            value: *value,
        }),
        _ => None,
    })
}

fn slot_leaves_of_words(words: &[Hash32]) -> SlotLeaves {
    let mut leaves = SlotLeaves::new(FILLER_LEAF);
    for leaf in leaves_of_words(words).take(SMT_SLOT_KEYS_MAX) {
        leaves.push(leaf);
    }
    leaves
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

/// A decoded page, in the compact form the cache keeps: masks of which slots and nodes
/// hold what, and a single array of 32-byte words, so that a page is one allocation.
#[derive(Clone, Debug)]
struct Page {
    /// The hash of the page's subtree.
    hash: Hash32,
    /// Bit `s` is set when slot `s` holds an entry.
    occupied_slots: u64,
    /// How many keys each slot holds itself: 0 for an empty slot or one whose keys are in
    /// the page below.
    leaf_counts: [u8; SLOTS_PER_PAGE],
    /// Bit `i` is set when the node with [`heap_index`] `i` is internal: its subtree holds
    /// two entries or more, or one entry holding two keys or more.
    internal_nodes: u64,
    /// The hash of every entry by increasing slot (the hash of the slot's subtree); then the
    /// hash of every internal node by increasing heap index; then the key and the value of
    /// every key the slots hold, by increasing slot and key.
    words: Box<[Hash32]>,
}

impl Page {
    /// Builds a page from `draft`, reusing the hashes of `previous` for the subtrees in which
    /// no slot of `dirty` lies.
    fn build(suite: Suite, draft: &PageDraft, previous: Option<&Page>, dirty: u64) -> Page {
        let entries = draft.entries.as_slice();
        debug_assert!(
            entries
                .windows(2)
                .all(|pair| matches!(pair, [first, second] if first.slot < second.slot))
        );
        let mut internal = InternalNodes::new();
        let hash = hash_subtree(suite, entries, 0, 0, previous, dirty, &mut internal);
        let mut occupied_slots = 0u64;
        let mut leaf_counts = [0u8; SLOTS_PER_PAGE];
        for entry in entries {
            occupied_slots |= 1 << entry.slot;
            if let Some(count) = leaf_counts.get_mut(usize::from(entry.slot)) {
                *count = entry.leaf_count;
            }
        }
        let mut words = Vec::with_capacity(
            entries.len() + internal.present.count_ones() as usize + 2 * draft.leaves.len(),
        );
        words.extend(entries.iter().map(|entry| entry.hash));
        words.extend(
            set_bits(internal.present).filter_map(|index| internal.hashes.get(index).copied()),
        );
        for entry in entries {
            let first = usize::from(entry.first_leaf);
            let leaves = draft
                .leaves
                .get(first..first + usize::from(entry.leaf_count))
                .unwrap_or(&[]);
            for leaf in leaves {
                words.push(leaf.key);
                words.push(leaf.value);
            }
        }
        Page {
            hash,
            occupied_slots,
            leaf_counts,
            internal_nodes: internal.present,
            words: words.into_boxed_slice(),
        }
    }

    /// The page's content as a draft, from which [`Page::build`] makes it again.
    fn to_draft(&self) -> PageDraft {
        let mut draft = PageDraft::default();
        for (slot, hash, words) in self.slots() {
            draft.push_words(slot, hash, words);
        }
        draft
    }

    fn entry_count(&self) -> usize {
        self.occupied_slots.count_ones() as usize
    }

    /// Where the keys and values start in `words`.
    fn leaves_start(&self) -> usize {
        self.entry_count() + self.internal_nodes.count_ones() as usize
    }

    fn leaf_count_of(&self, slot: usize) -> usize {
        usize::from(self.leaf_counts.get(slot).copied().unwrap_or(0))
    }

    /// The hash of `slot`'s subtree and the words (key, value, key, value, ...) of the keys
    /// the slot holds itself, empty when they are in the page below; `None` if the slot is
    /// empty.
    fn slot(&self, slot: usize) -> Option<(Hash32, &[Hash32])> {
        if slot >= SLOTS_PER_PAGE || self.occupied_slots & (1 << slot) == 0 {
            return None;
        }
        let hash = *self
            .words
            .get((self.occupied_slots & bits_below(slot)).count_ones() as usize)?;
        let keys_before: usize = (0..slot).map(|earlier| self.leaf_count_of(earlier)).sum();
        let start = self.leaves_start() + 2 * keys_before;
        let words = self
            .words
            .get(start..start + 2 * self.leaf_count_of(slot))?;
        Some((hash, words))
    }

    /// Every occupied slot by increasing slot, as [`Page::slot`] gives it.
    fn slots(&self) -> impl Iterator<Item = (usize, Hash32, &[Hash32])> + '_ {
        let entry_hashes = self.words.get(..self.entry_count()).unwrap_or(&[]);
        let mut next_leaf_word = self.leaves_start();
        set_bits(self.occupied_slots)
            .zip(entry_hashes)
            .map(move |(slot, hash)| {
                let word_count = 2 * self.leaf_count_of(slot);
                let words = self
                    .words
                    .get(next_leaf_word..next_leaf_word + word_count)
                    .unwrap_or(&[]);
                next_leaf_word += word_count;
                (slot, *hash, words)
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

    /// The number of occupied slots in `first_slot..end_slot`, and the first of them.
    fn occupied_in(&self, first_slot: usize, end_slot: usize) -> (u32, usize) {
        let in_range = self.occupied_slots & slot_mask(first_slot, end_slot);
        (in_range.count_ones(), in_range.trailing_zeros() as usize)
    }

    /// The hash of the subtree at `level` inside the page whose first slot is `first_slot`.
    fn subtree_hash(&self, suite: Suite, level: usize, first_slot: usize) -> Hash32 {
        let end_slot = first_slot + (1 << (SMT_PAGE_HEIGHT - level));
        let (count, first_occupied) = self.occupied_in(first_slot, end_slot);
        if count == 0 {
            return Hash32::ZERO;
        }
        if count == 1
            && let Some((hash, words)) = self.slot(first_occupied)
            && (level == SMT_PAGE_HEIGHT || words.len() == 2)
        {
            return hash;
        }
        match self.internal_hash(heap_index(level, first_slot)) {
            Some(hash) => hash,
            None => {
                // `build` records every internal node; recomputing keeps a broken invariant
                // from turning into a wrong proof.
                debug_assert!(false, "page lacks the hash of an internal node");
                let draft = self.to_draft();
                let entries: Vec<PageEntry> = draft
                    .entries
                    .iter()
                    .filter(|entry| (first_slot..end_slot).contains(&usize::from(entry.slot)))
                    .copied()
                    .collect();
                hash_subtree(
                    suite,
                    &entries,
                    level,
                    first_slot,
                    None,
                    u64::MAX,
                    &mut InternalNodes::new(),
                )
            }
        }
    }

    fn size_bytes(&self) -> usize {
        CACHE_PAGE_OVERHEAD_BYTES + self.words.len() * std::mem::size_of::<Hash32>()
    }

    fn encode(&self) -> Vec<u8> {
        // Straight from the masks and words: encoding runs for every page a block writes.
        let mut len = PAGE_HEADER_BYTES;
        for slot in set_bits(self.occupied_slots) {
            let count = usize::from(self.leaf_counts.get(slot).copied().unwrap_or(0));
            len += match count {
                0 => PAGE_CHILD_BYTES,
                1 => PAGE_LEAF_BYTES,
                _ => PAGE_LEAVES_HEADER_BYTES + 64 * count,
            };
        }
        let mut bytes = Vec::with_capacity(len);
        bytes.push(SMT_PAGE_FORMAT_VERSION);
        bytes.push(self.entry_count() as u8);
        let entry_hashes = self.words.get(..self.entry_count()).unwrap_or(&[]);
        let mut leaf_words = self.words.get(self.leaves_start()..).unwrap_or(&[]).iter();
        for (slot, hash) in set_bits(self.occupied_slots).zip(entry_hashes) {
            bytes.push(slot as u8);
            let count = usize::from(self.leaf_counts.get(slot).copied().unwrap_or(0));
            match count {
                0 => {
                    bytes.push(PAGE_KIND_CHILD);
                    bytes.extend_from_slice(hash.as_bytes());
                    continue;
                }
                1 => bytes.push(PAGE_KIND_LEAF),
                _ => {
                    bytes.push(PAGE_KIND_LEAVES);
                    bytes.push(count as u8);
                }
            }
            for word in leaf_words.by_ref().take(2 * count) {
                bytes.extend_from_slice(word.as_bytes());
            }
        }
        debug_assert_eq!(bytes.len(), len);
        bytes
    }

    /// Decodes and checks the page stored for `id`; the caller checks its hash.
    fn decode(suite: Suite, id: PageId, bytes: &[u8]) -> Result<Page, SmtError> {
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
        let mut draft = PageDraft::default();
        let mut key_count = 0;
        let mut has_child_pages = false;
        for _ in 0..count {
            let slot = usize::from(
                reader
                    .byte()
                    .ok_or_else(|| id.malformed("truncated entry"))?,
            );
            if slot >= SLOTS_PER_PAGE {
                return Err(id.malformed("slot out of range"));
            }
            if draft
                .entries
                .last()
                .is_some_and(|previous: &PageEntry| usize::from(previous.slot) >= slot)
            {
                return Err(id.malformed("slots not in increasing order"));
            }
            let kind = reader
                .byte()
                .ok_or_else(|| id.malformed("truncated entry"))?;
            match kind {
                PAGE_KIND_LEAF | PAGE_KIND_LEAVES => {
                    let leaf_count = if kind == PAGE_KIND_LEAF {
                        1
                    } else {
                        usize::from(
                            reader
                                .byte()
                                .ok_or_else(|| id.malformed("truncated entry"))?,
                        )
                    };
                    if kind == PAGE_KIND_LEAVES && !(2..=SMT_SLOT_KEYS_MAX).contains(&leaf_count) {
                        return Err(id.malformed("key count of a slot out of range"));
                    }
                    let mut leaves = SlotLeaves::new(FILLER_LEAF);
                    for _ in 0..leaf_count {
                        let key = reader
                            .hash()
                            .ok_or_else(|| id.malformed("truncated leaf"))?;
                        let value = reader
                            .hash()
                            .ok_or_else(|| id.malformed("truncated leaf"))?;
                        if prefix_of(&key, depth) != id.prefix || slot_of(&key, depth) != slot {
                            return Err(id.malformed("leaf key outside its slot"));
                        }
                        if leaves
                            .as_slice()
                            .last()
                            .is_some_and(|previous: &SmtLeaf| previous.key >= key)
                        {
                            return Err(id.malformed("keys of a slot not in increasing order"));
                        }
                        leaves.push(SmtLeaf { key, value });
                    }
                    key_count += leaf_count;
                    let hash =
                        root_of_sorted_leaves(suite, leaves.as_slice(), depth + SMT_PAGE_HEIGHT);
                    draft.push_leaves(slot, hash, leaves.as_slice());
                }
                PAGE_KIND_CHILD => {
                    if depth + SMT_PAGE_HEIGHT > PAGE_DEPTH_MAX {
                        return Err(id.malformed("page below the deepest page"));
                    }
                    let hash = reader
                        .hash()
                        .ok_or_else(|| id.malformed("truncated page hash"))?;
                    has_child_pages = true;
                    draft.push_page_below(slot, hash);
                }
                _ => return Err(id.malformed("unknown entry kind")),
            }
        }
        if !reader.bytes.is_empty() {
            return Err(id.malformed("trailing bytes"));
        }
        if depth != 0 && !has_child_pages && key_count <= SMT_SLOT_KEYS_MAX {
            return Err(id.malformed(
                "a page below the root holding so few keys that its parent's slot should",
            ));
        }
        Ok(Page::build(suite, &draft, None, u64::MAX))
    }
}

/// Hashes the subtree at `level` starting at `first_slot`, holding `entries`, and records
/// the hashes of its internal nodes in `internal`. Subtrees in which no slot of `dirty` lies
/// take their hashes from `previous`.
fn hash_subtree(
    suite: Suite,
    entries: &[PageEntry],
    level: usize,
    first_slot: usize,
    previous: Option<&Page>,
    dirty: u64,
    internal: &mut InternalNodes,
) -> Hash32 {
    match entries {
        [] => return Hash32::ZERO,
        [only] if level >= SMT_PAGE_HEIGHT || only.is_single_leaf() => return only.hash,
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
        suite,
        left_entries,
        level + 1,
        first_slot,
        previous,
        dirty,
        internal,
    );
    let right = hash_subtree(
        suite,
        right_entries,
        level + 1,
        middle_slot,
        previous,
        dirty,
        internal,
    );
    let hash = internal_hash(suite, &left, &right);
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
    /// The chain's suite, whose hashes make every node of the tree.
    suite: Suite,
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
    unchanged_cached_pages: Vec<PageId>,
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
    /// The empty tree (root `ZERO`) of a chain of `suite`, with the default cache limit.
    pub fn empty(suite: Suite) -> Self {
        SparseMerkleTree {
            suite,
            root: Hash32::ZERO,
            cache: PageCache::new(SMT_CACHE_SIZE_BYTES_DEFAULT),
            generation: 0,
        }
    }

    /// A handle on the tree with `root` held by `store` (after a restart, the state root of
    /// the last committed block), with an empty cache. Checks the root page against `root`,
    /// so that a store that does not hold that tree is refused at once.
    pub fn open<Store: SmtNodeStore + ?Sized>(
        suite: Suite,
        store: &Store,
        root: Hash32,
    ) -> Result<Self, SmtError> {
        let tree = SparseMerkleTree {
            root,
            ..SparseMerkleTree::empty(suite)
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
            let Some((hash, words)) = page.slot(slot_of(key, id.depth())) else {
                return Ok(None);
            };
            if !words.is_empty() {
                return Ok(leaves_of_words(words)
                    .find(|leaf| leaf.key == *key)
                    .map(|leaf| leaf.value));
            }
            id = child_page_id(id, key)?;
            page = self.read_page(store, id, hash)?;
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
                let (count, first_occupied) = page.occupied_in(first_slot, first_slot + width);
                if count == 0 {
                    return Ok(SmtProof {
                        siblings,
                        leaf: None,
                    });
                }
                if count == 1
                    && let Some((_, words)) = page.slot(first_occupied)
                    && words.len() == 2
                {
                    // A key alone in this subtree: the path ends here.
                    return Ok(SmtProof {
                        siblings,
                        leaf: leaves_of_words(words).next(),
                    });
                }
                let half = width / 2;
                if key.bit(depth + level) {
                    siblings.push(page.subtree_hash(self.suite, level + 1, first_slot));
                    first_slot += half;
                } else {
                    siblings.push(page.subtree_hash(self.suite, level + 1, first_slot + half));
                }
            }
            let Some((hash, words)) = page.slot(first_slot) else {
                return Ok(SmtProof {
                    siblings,
                    leaf: None,
                });
            };
            if words.is_empty() {
                id = child_page_id(id, key)?;
                page = self.read_page(store, id, hash)?;
                continue;
            }
            // The rest of the path runs through the keys the slot holds.
            let leaves = slot_leaves_of_words(words);
            let mut below = leaves.as_slice();
            let mut bit = depth + SMT_PAGE_HEIGHT;
            loop {
                match below {
                    [] => {
                        return Ok(SmtProof {
                            siblings,
                            leaf: None,
                        });
                    }
                    [leaf] => {
                        return Ok(SmtProof {
                            siblings,
                            leaf: Some(*leaf),
                        });
                    }
                    _ => {
                        // Distinct keys split before bit 256.
                        assert!(bit < SMT_KEY_BITS, "two keys of a slot are equal");
                        let split = below.partition_point(|leaf| !leaf.key.bit(bit));
                        let (left, right) = below.split_at(split);
                        if key.bit(bit) {
                            siblings.push(root_of_sorted_leaves(self.suite, left, bit + 1));
                            below = right;
                        } else {
                            siblings.push(root_of_sorted_leaves(self.suite, right, bit + 1));
                            below = left;
                        }
                        bit += 1;
                    }
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
                Outcome::Page { hash } | Outcome::Leaves { hash, .. } => hash,
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
        for id in &write_set.unchanged_cached_pages {
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
        read_page_from_store(self.suite, store, id, expected_hash).map(PageRef::Loaded)
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
    suite: Suite,
    store: &Store,
    id: PageId,
    expected_hash: Hash32,
) -> Result<Page, SmtError> {
    let bytes = store
        .get(&id.store_key())?
        .ok_or_else(|| SmtError::MissingPage {
            page_key: id.store_key_hex(),
        })?;
    let page = Page::decode(suite, id, &bytes)?;
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

/// Merges the sorted keys of a slot with sorted updates into `sink`, in key order; an update
/// wins over a key it names.
fn merge_leaves(existing: &[SmtLeaf], updates: &[SmtUpdate], mut sink: impl FnMut(SmtLeaf)) {
    let mut old = existing.iter().peekable();
    for (key, value) in updates {
        while let Some(leaf) = old.next_if(|leaf| leaf.key < *key) {
            sink(*leaf);
        }
        old.next_if(|leaf| leaf.key == *key);
        if let Some(value) = value {
            sink(SmtLeaf {
                key: *key,
                value: *value,
            });
        }
    }
    for leaf in old {
        sink(*leaf);
    }
}

/// What a subtree at a slot position becomes after an apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a stack temporary; boxing the keys would allocate per entry, which the inline list exists to avoid"
)]
enum Outcome {
    Empty,
    /// At most [`SMT_SLOT_KEYS_MAX`] keys, sorted: the parent's slot holds them; `hash` is
    /// the hash of their subtree.
    Leaves {
        leaves: SlotLeaves,
        hash: Hash32,
    },
    /// More keys, in a page that hashes to `hash`.
    Page {
        hash: Hash32,
    },
}

impl Outcome {
    /// The outcome for `leaves`, sorted and distinct, in the subtree at `depth`.
    fn of_leaves(suite: Suite, leaves: &[SmtLeaf], depth: usize) -> Outcome {
        if leaves.is_empty() {
            return Outcome::Empty;
        }
        Outcome::Leaves {
            leaves: slot_leaves(leaves),
            hash: root_of_sorted_leaves(suite, leaves, depth),
        }
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
    /// Pages found in the cache that the walk left unchanged.
    unchanged_cached_pages: Vec<PageId>,
    pages_read_from_store: usize,
    pages_read_from_cache: usize,
    /// One reusable draft per page level, so that building pages does not allocate.
    drafts: Vec<PageDraft>,
}

impl<'walk, Store: SmtNodeStore + ?Sized> ApplyWalk<'walk, Store> {
    fn new(tree: &'walk SparseMerkleTree, store: &'walk Store, updates: usize) -> Self {
        // A block touches about two pages per update; sizing the lists up front spares the
        // allocator a series of ever larger copies, which costs more than it seems once the
        // heap holds a large cache.
        let expected_pages = updates.saturating_mul(3).min(WALK_PAGES_PRESIZED_MAX);
        ApplyWalk {
            tree,
            store,
            written_pages: Vec::with_capacity(expected_pages),
            deleted_pages: Vec::new(),
            pages_loaded: Vec::new(),
            unchanged_cached_pages: Vec::new(),
            pages_read_from_store: 0,
            pages_read_from_cache: 0,
            drafts: vec![PageDraft::default(); PAGE_DEPTH_MAX / SMT_PAGE_HEIGHT + 1],
        }
    }

    fn load(&mut self, id: PageId, expected_hash: Hash32) -> Result<PageRef<'walk>, SmtError> {
        if let Some(page) = self.tree.cache.get(&id) {
            self.pages_read_from_cache += 1;
            return Ok(PageRef::Cached(page));
        }
        self.pages_read_from_store += 1;
        read_page_from_store(self.tree.suite, self.store, id, expected_hash).map(PageRef::Loaded)
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
        let page_level = depth / SMT_PAGE_HEIGHT;
        // Pages below this one use other drafts, so this one stays free while they work.
        let mut draft = self
            .drafts
            .get_mut(page_level)
            .map(std::mem::take)
            .unwrap_or_default();
        draft.clear();
        let old = existing.as_deref();
        let mut old_slots = old.into_iter().flat_map(Page::slots).peekable();
        let mut dirty = 0u64;
        let mut rest = updates;
        while let Some((first_key, _)) = rest.first() {
            let slot = slot_of(first_key, depth);
            let group_len = rest.partition_point(|(key, _)| slot_of(key, depth) <= slot);
            let (group, tail) = rest.split_at(group_len);
            rest = tail;
            while let Some((earlier, hash, words)) =
                old_slots.next_if(|(earlier, ..)| *earlier < slot)
            {
                draft.push_words(earlier, hash, words);
            }
            let current = old_slots
                .next_if(|(same, ..)| *same == slot)
                .map(|(_, hash, words)| (hash, words));
            let outcome = match current {
                Some((hash, [])) => {
                    let child_id = child_page_id(id, first_key)?;
                    let child = self.load(child_id, hash)?;
                    self.apply_page(child_id, Some(child), group)?
                }
                Some((hash, words)) => {
                    let leaves = slot_leaves_of_words(words);
                    self.apply_to_slot(id, first_key, Some((leaves, hash)), group)?
                }
                None => self.apply_to_slot(id, first_key, None, group)?,
            };
            // Equal hashes mean equal subtrees, stored alike.
            let new_hash = match &outcome {
                Outcome::Empty => None,
                Outcome::Leaves { hash, .. } | Outcome::Page { hash } => Some(*hash),
            };
            if new_hash != current.map(|(hash, _)| hash) {
                dirty |= 1 << slot;
            }
            match outcome {
                Outcome::Empty => {}
                Outcome::Leaves { leaves, hash } => {
                    draft.push_leaves(slot, hash, leaves.as_slice())
                }
                Outcome::Page { hash } => draft.push_page_below(slot, hash),
            }
        }
        for (later, hash, words) in old_slots {
            draft.push_words(later, hash, words);
        }

        let outcome = if dirty == 0 {
            match existing {
                Some(page) => {
                    let hash = page.hash;
                    // Unchanged pages stay in the cache, or enter it, at commit.
                    match page {
                        PageRef::Loaded(page) => self.pages_loaded.push((id, page)),
                        PageRef::Cached(_) => self.unchanged_cached_pages.push(id),
                    }
                    Outcome::Page { hash }
                }
                None => Outcome::Empty,
            }
        } else if draft.entries.is_empty() {
            if existing.is_some() {
                self.deleted_pages.push(id);
            }
            Outcome::Empty
        } else if depth != 0 && !draft.has_page_below() && draft.leaves.len() <= SMT_SLOT_KEYS_MAX {
            // Below the root, a page exists only for more keys than a slot holds; fewer
            // move up into the parent's slot. Slots follow key order, so the keys are sorted.
            if existing.is_some() {
                self.deleted_pages.push(id);
            }
            Outcome::of_leaves(self.tree.suite, &draft.leaves, depth)
        } else {
            let page = Page::build(self.tree.suite, &draft, old, dirty);
            let hash = page.hash;
            self.written_pages.push((id, page));
            Outcome::Page { hash }
        };
        if let Some(place) = self.drafts.get_mut(page_level) {
            *place = draft;
        }
        Ok(outcome)
    }

    /// Applies `updates` to a slot of page `parent` that holds no page below it but the
    /// keys `existing` (with the hash of their subtree), if any. `first_key` is any key in
    /// the slot.
    fn apply_to_slot(
        &mut self,
        parent: PageId,
        first_key: &Hash32,
        existing: Option<(SlotLeaves, Hash32)>,
        updates: &[SmtUpdate],
    ) -> Result<Outcome, SmtError> {
        let slot_depth = parent.depth() + SMT_PAGE_HEIGHT;
        let existing_leaves = existing
            .as_ref()
            .map_or(&[][..], |(leaves, _)| leaves.as_slice());
        // The common case of a block: one update in a slot that is empty or holds that key
        // alone.
        if let [(key, new_value)] = updates
            && existing_leaves.iter().all(|leaf| leaf.key == *key)
        {
            return Ok(match (new_value, existing) {
                (None, _) => Outcome::Empty,
                (Some(value), Some((leaves, hash)))
                    if leaves.as_slice().first().map(|leaf| &leaf.value) == Some(value) =>
                {
                    Outcome::Leaves { leaves, hash }
                }
                (Some(value), _) => Outcome::of_leaves(
                    self.tree.suite,
                    &[SmtLeaf {
                        key: *key,
                        value: *value,
                    }],
                    slot_depth,
                ),
            });
        }
        if existing_leaves.len() + updates.len() <= SMT_SLOT_KEYS_MAX {
            let mut merged = SlotLeaves::new(FILLER_LEAF);
            merge_leaves(existing_leaves, updates, |leaf| merged.push(leaf));
            return Ok(Outcome::of_leaves(
                self.tree.suite,
                merged.as_slice(),
                slot_depth,
            ));
        }
        let mut merged: Vec<SmtLeaf> = Vec::with_capacity(existing_leaves.len() + updates.len());
        merge_leaves(existing_leaves, updates, |leaf| merged.push(leaf));
        if merged.len() <= SMT_SLOT_KEYS_MAX {
            return Ok(Outcome::of_leaves(self.tree.suite, &merged, slot_depth));
        }
        // More keys than a slot holds share the slot, so it lies above depth 256 and the
        // page below it exists.
        let child_id = child_page_id(parent, first_key)?;
        let inserts: Vec<SmtUpdate> = merged
            .iter()
            .map(|leaf| (leaf.key, Some(leaf.value)))
            .collect();
        self.apply_page(child_id, None, &inserts)
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
            pages_read_from_cache: self.pages_read_from_cache,
        };
        SmtWriteSet {
            previous_root,
            root,
            writes,
            deletes,
            written_pages: self.written_pages,
            deleted_pages: self.deleted_pages,
            pages_loaded: self.pages_loaded,
            unchanged_cached_pages: self.unchanged_cached_pages,
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
                1 => leaf_hash(crate::testkit::SUITE, &leaves[0].0, &leaves[0].1),
                _ => {
                    let (left, right): (Vec<_>, Vec<_>) =
                        leaves.into_iter().partition(|(key, _)| !key.bit(depth));
                    internal_hash(
                        crate::testkit::SUITE,
                        &subtree(left, depth + 1),
                        &subtree(right, depth + 1),
                    )
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
                tree: SparseMerkleTree::empty(crate::testkit::SUITE)
                    .with_cache_limit(cache_size_bytes_max),
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
                assert_eq!(
                    verify_membership(crate::testkit::SUITE, root, key, value, &proof),
                    Ok(())
                );
                assert_eq!(
                    verify_non_membership(crate::testkit::SUITE, root, key, &proof),
                    Err(SmtProofError::KeyPresent)
                );
            }
            for key in absent_keys
                .iter()
                .filter(|key| !self.model.contains_key(key))
            {
                assert_eq!(self.tree.get(&self.store, key).unwrap(), None);
                let proof = self.tree.prove(&self.store, key).unwrap();
                assert_eq!(
                    verify_non_membership(crate::testkit::SUITE, root, key, &proof),
                    Ok(())
                );
                assert!(
                    verify_membership(crate::testkit::SUITE, root, key, &value(0), &proof).is_err()
                );
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
                let rebuilt = Page::build(
                    crate::testkit::SUITE,
                    &cached.page.to_draft(),
                    None,
                    u64::MAX,
                );
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
            Some(value) => verify_membership(crate::testkit::SUITE, root, key, &value, proof),
            None => verify_non_membership(crate::testkit::SUITE, root, key, proof),
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
            Some(value) => verify_membership(crate::testkit::SUITE, wrong_root, key, &value, proof),
            None => verify_non_membership(crate::testkit::SUITE, wrong_root, key, proof),
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
                    verify_membership(crate::testkit::SUITE, root, &other_key, &value, proof),
                    Err(SmtProofError::LeafKeyMismatch {
                        expected: other_key,
                        found: *key
                    })
                );
                let other_value = with_bit_flipped(&value, 9);
                assert_eq!(
                    verify_membership(crate::testkit::SUITE, root, key, &other_value, proof),
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
                    verify_non_membership(crate::testkit::SUITE, root, key, proof),
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
                    crate::testkit::SUITE,
                    root,
                    key,
                    &other_value,
                    &swapped,
                )));
            }
            None => {
                match proof.leaf {
                    Some(leaf) => {
                        assert_eq!(
                            verify_membership(crate::testkit::SUITE, root, key, &leaf.value, proof),
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
                            verify_membership(crate::testkit::SUITE, root, key, &value(0), proof),
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
        match check_compact_and_root(crate::testkit::SUITE, Hash32::ZERO, key, proof) {
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
        assert_eq!(
            verify_non_membership(crate::testkit::SUITE, Hash32::ZERO, &key(1), &proof),
            Ok(())
        );
        assert_eq!(
            verify_membership(
                crate::testkit::SUITE,
                Hash32::ZERO,
                &key(1),
                &value(1),
                &proof
            ),
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
        assert_eq!(
            root_of_leaves(crate::testkit::SUITE, vec![]),
            Ok(Hash32::ZERO)
        );
    }

    #[test]
    fn single_key() {
        let mut fixture = Fixture::new(SMT_CACHE_SIZE_BYTES_DEFAULT);
        let stats = fixture.apply(&[(key(1), Some(value(1)))]);
        assert_eq!((stats.pages_written, stats.pages_deleted), (1, 0));
        assert_eq!(
            fixture.tree.root(),
            leaf_hash(crate::testkit::SUITE, &key(1), &value(1))
        );
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
            leaf_hash(crate::testkit::SUITE, &left, &right),
            Hash32::from(blake3::hash(&leaf_input))
        );
        let mut internal_input = vec![0x01];
        internal_input.extend_from_slice(&[1; 32]);
        internal_input.extend_from_slice(&[2; 32]);
        assert_eq!(
            internal_hash(crate::testkit::SUITE, &left, &right),
            Hash32::from(blake3::hash(&internal_input))
        );
    }

    #[test]
    fn keys_sharing_long_prefixes() {
        let mut fixture = Fixture::new(SMT_CACHE_SIZE_BYTES_DEFAULT);
        let first = key(7);
        let second = with_bit_flipped(&first, 255);
        // Two keys differing in their last bit: one slot of the root page holds both.
        let stats = fixture.apply(&[(first, Some(value(1))), (second, Some(value(2)))]);
        assert_eq!((stats.pages_written, fixture.store.len()), (1, 1));
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

        // More keys than a slot holds, all sharing their first 252 bits: a page at every
        // depth 0, 4, ..., 252.
        let with_last_bits = |bits: u8| {
            let mut bytes = first.0;
            bytes[31] = (bytes[31] & 0xF0) | bits;
            Hash32(bytes)
        };
        let crowd: Vec<Hash32> = (0..16)
            .map(with_last_bits)
            .filter(|key| *key != first && *key != second)
            .take(SMT_SLOT_KEYS_MAX)
            .collect();
        let inserts: Vec<Update> = crowd.iter().map(|key| (*key, Some(value(3)))).collect();
        let stats = fixture.apply(&inserts);
        assert_eq!(stats.pages_written, SMT_KEY_BITS / SMT_PAGE_HEIGHT);
        for key in crowd.iter().chain([&first, &second]) {
            let proof = fixture.tree.prove(&fixture.store, key).unwrap();
            assert!(proof.siblings.len() >= 253);
            check_tampering(
                fixture.tree.root(),
                key,
                fixture.model.get(key).copied(),
                &proof,
            );
        }
        fixture.check_reads(&absent);
        fixture.check_store_is_canonical();

        // Back to a slot's worth of keys: the pages below the root go, and the root page's
        // slot holds the keys again.
        let deletes: Vec<Update> = crowd.iter().map(|key| (*key, None)).collect();
        let stats = fixture.apply(&deletes);
        assert_eq!(
            (stats.pages_written, stats.pages_deleted),
            (1, SMT_KEY_BITS / SMT_PAGE_HEIGHT - 1)
        );
        assert_eq!(fixture.store.len(), 1);
        fixture.check_store_is_canonical();
        fixture.apply(&[(first, None)]);
        assert_eq!(
            fixture.tree.root(),
            leaf_hash(crate::testkit::SUITE, &second, &value(2))
        );
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
                crate::testkit::SUITE,
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
        let pages_on_path = (0..=PAGE_DEPTH_MAX)
            .step_by(SMT_PAGE_HEIGHT)
            .filter(|depth| {
                let id = PageId::of_key(&target, *depth);
                fixture.store.get(&id.store_key()).unwrap().is_some()
            })
            .count();
        assert!(
            pages_on_path >= 3,
            "a tree of 5000 keys is at least 3 pages deep"
        );
        let stats = fixture.apply(&[(target, Some(value(1)))]);
        assert_eq!(stats.pages_written, pages_on_path);
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
        let cold = SparseMerkleTree::open(crate::testkit::SUITE, &fixture.store, root).unwrap();
        let block: Vec<Update> = (250..750)
            .map(|number| (key(number), Some(value(number + 1))))
            .collect();
        let reads_needed = cold
            .apply(&fixture.store, &block)
            .unwrap()
            .stats()
            .pages_read_from_store;
        assert!(reads_needed > 4);
        for reads in [0, 1, reads_needed / 2, reads_needed - 1] {
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
            SparseMerkleTree::open(crate::testkit::SUITE, &fixture.store, Hash32([9; 32])),
            Err(SmtError::PageHashMismatch { expected, found, .. }) if expected == Hash32([9; 32]) && found == root
        ));
        assert_eq!(
            SparseMerkleTree::open(crate::testkit::SUITE, &fixture.store, Hash32::ZERO)
                .unwrap_err(),
            SmtError::UnexpectedRootPage
        );
        assert_eq!(
            SparseMerkleTree::open(crate::testkit::SUITE, &MemorySmtStore::new(), root)
                .unwrap_err(),
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
        let cold = SparseMerkleTree::open(crate::testkit::SUITE, &damaged, root).unwrap();
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
        let cold = SparseMerkleTree::open(crate::testkit::SUITE, &missing, root).unwrap();
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
        let cold = SparseMerkleTree::open(crate::testkit::SUITE, &truncated, root).unwrap();
        assert!(matches!(
            cold.get(&truncated, &key_below),
            Err(SmtError::MalformedPage { .. })
        ));
    }

    #[test]
    fn decoding_rejects_malformed_pages() {
        let id = PageId::of_key(&key(1), 4);
        // A key below page `id` in `slot`, its other bits from `number`.
        let key_in = |slot: u8, number: u64| {
            let mut key = key(number);
            key.0[0] = id.prefix.0[0] | slot;
            key
        };
        let leaf = |slot: u8| {
            let key = key_in(slot, u64::from(slot));
            [
                vec![slot, PAGE_KIND_LEAF],
                key.0.to_vec(),
                value(1).0.to_vec(),
            ]
            .concat()
        };
        let pair = |slot: u8, keys: [Hash32; 2]| {
            let mut bytes = vec![slot, PAGE_KIND_LEAVES, 2];
            for key in keys {
                bytes.extend_from_slice(key.as_bytes());
                bytes.extend_from_slice(value(2).as_bytes());
            }
            bytes
        };
        let (low, high) = {
            let (first, second) = (key_in(2, 100), key_in(2, 101));
            (first.min(second), first.max(second))
        };
        // Five keys, more than a slot holds, so the page must exist.
        let five_leaves = [vec![1, 5], leaf(1), leaf(3), leaf(5), leaf(7), leaf(9)].concat();
        let page = Page::decode(crate::testkit::SUITE, id, &five_leaves).unwrap();
        assert_eq!(page.encode(), five_leaves);
        let with_pair = [vec![1, 4], pair(2, [low, high]), leaf(3), leaf(5), leaf(7)].concat();
        let page = Page::decode(crate::testkit::SUITE, id, &with_pair).unwrap();
        assert_eq!(page.encode(), with_pair);
        assert_eq!(page.entry_count(), 4);

        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "empty"),
            (
                [&[2][..], &five_leaves[1..]].concat(),
                "unknown format version",
            ),
            (vec![1], "no entry count"),
            (vec![1, 0], "entry count out of range"),
            (vec![1, 17], "entry count out of range"),
            (
                [vec![1, 4], leaf(1), leaf(3), leaf(5), leaf(7)].concat(),
                "a page below the root holding so few keys that its parent's slot should",
            ),
            (
                [vec![1, 5], leaf(3), leaf(1), leaf(5), leaf(7), leaf(9)].concat(),
                "slots not in increasing order",
            ),
            ([five_leaves.clone(), vec![0]].concat(), "trailing bytes"),
            (
                five_leaves[..five_leaves.len() - 1].to_vec(),
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
                [
                    vec![1, 5],
                    vec![0],
                    leaf(1)[1..].to_vec(),
                    leaf(3),
                    leaf(5),
                    leaf(7),
                    leaf(9),
                ]
                .concat(),
                "leaf key outside its slot",
            ),
            (
                [vec![1, 4], pair(2, [high, low]), leaf(3), leaf(5), leaf(7)].concat(),
                "keys of a slot not in increasing order",
            ),
            (
                [vec![1, 4], pair(2, [low, low]), leaf(3), leaf(5), leaf(7)].concat(),
                "keys of a slot not in increasing order",
            ),
            (
                [
                    vec![1, 1, 2, PAGE_KIND_LEAVES, 1],
                    low.0.to_vec(),
                    value(2).0.to_vec(),
                ]
                .concat(),
                "key count of a slot out of range",
            ),
            (
                [vec![1, 1, 2, PAGE_KIND_LEAVES, 5], vec![0; 5 * 64]].concat(),
                "key count of a slot out of range",
            ),
        ];
        for (bytes, reason) in cases {
            assert_eq!(
                Page::decode(crate::testkit::SUITE, id, &bytes).unwrap_err(),
                id.malformed(reason),
                "{reason}"
            );
        }
        let deepest = PageId::of_key(&key(1), PAGE_DEPTH_MAX);
        let child = [vec![1, 1, 0, PAGE_KIND_CHILD], vec![5; 32]].concat();
        assert_eq!(
            Page::decode(crate::testkit::SUITE, deepest, &child).unwrap_err(),
            deepest.malformed("page below the deepest page")
        );
        // The root page may hold a single key.
        let root_key = key(3);
        let root_leaf = [
            vec![1, 1, (root_key.0[0] >> 4), PAGE_KIND_LEAF],
            root_key.0.to_vec(),
            value(3).0.to_vec(),
        ]
        .concat();
        assert_eq!(
            Page::decode(crate::testkit::SUITE, PageId::ROOT, &root_leaf)
                .unwrap()
                .hash,
            leaf_hash(crate::testkit::SUITE, &root_key, &value(3))
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
            root_of_leaves(crate::testkit::SUITE, leaves),
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
                Some(value) => verify_membership(crate::testkit::SUITE, root, key, &value, proof),
                None => verify_non_membership(crate::testkit::SUITE, root, key, proof),
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
        assert_eq!(
            root_of_leaves(crate::testkit::SUITE, leaves.clone()),
            Ok(file.root)
        );
        let model: BTreeMap<Hash32, Hash32> = leaves.into_iter().collect();
        assert_eq!(reference_root(&model), file.root);
        let mut codes_seen = std::collections::BTreeSet::new();
        for case in &file.cases {
            let result = match (case.kind.as_str(), case.value) {
                ("membership", Some(value)) => verify_membership(
                    crate::testkit::SUITE,
                    file.root,
                    &case.key,
                    &value,
                    &case.proof,
                ),
                ("non-membership", None) => {
                    verify_non_membership(crate::testkit::SUITE, file.root, &case.key, &case.proof)
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
            let cold = Fixture { tree: SparseMerkleTree::open(crate::testkit::SUITE, &fixture.store, fixture.tree.root()).unwrap(), store: fixture.store.clone(), model: fixture.model.clone() };
            cold.check_reads(&pool);
            // Deleting every key leaves nothing behind: no root, no page.
            let deletes: Vec<Update> = pool.iter().map(|key| (*key, None)).collect();
            fixture.apply(&deletes);
            prop_assert_eq!(fixture.tree.root(), Hash32::ZERO);
            prop_assert!(fixture.store.is_empty());
            prop_assert_eq!(fixture.tree.cached_pages(), 0);
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
            let membership = verify_membership(crate::testkit::SUITE, Hash32(root), &Hash32(key), &Hash32(value), &proof);
            let non_membership = verify_non_membership(crate::testkit::SUITE, Hash32(root), &Hash32(key), &proof);
            prop_assert!(membership.is_err() && non_membership.is_err());
        }

        #[test]
        fn decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600), depth_step in 0..=(PAGE_DEPTH_MAX / SMT_PAGE_HEIGHT), key in any::<[u8; 32]>()) {
            let id = PageId::of_key(&Hash32(key), depth_step * SMT_PAGE_HEIGHT);
            if let Ok(page) = Page::decode(crate::testkit::SUITE, id, &bytes) {
                prop_assert_eq!(page.encode(), bytes);
            }
        }
    }
}
