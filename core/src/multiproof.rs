//! One proof for several keys of the state tree at once (ADR 0041).
//!
//! A proof document proves a handful of records against one state root: a licence, its issuer,
//! its grant, the recognition sets of the regions covering a use. Proved one by one
//! ([`SmtProof`]), the keys repeat the siblings their paths share near the root, and every
//! present record repeats its own key and value hashes in its leaf. An [`SmtMultiProof`] proves
//! all of them together: the verifier walks the union of their paths once, computing every node
//! it can from the keys below it, and reads from the proof only the siblings that no proved key
//! lies under.
//!
//! # The proof
//!
//! It proves a list of *items*, each a key hash and either a value hash (the key holds that
//! value) or nothing (the key holds nothing). It has:
//!
//! - `ends`: for each item, in the items' order, where its path ends: the `depth` of the first
//!   subtree on the path that is empty or holds exactly one key (what a single proof's sibling
//!   count says), and what that subtree holds: `own` (the item's own key and value, for an item
//!   that holds a value), `empty`, or `other` (a leaf of another key and its value, for an item
//!   that holds nothing);
//! - `siblings`: the hashes of the subtrees the walk below does not compute, in the order it
//!   needs them.
//!
//! # Verification
//!
//! Given the signed `root` and the items:
//!
//! 1. There is at least one item and at most [`SMT_MULTIPROOF_KEYS_MAX`]
//!    ([`SmtMultiProofError::KeyCount`]); `ends` has one entry per item
//!    ([`SmtMultiProofError::EndCount`]); no key is listed twice
//!    ([`SmtMultiProofError::DuplicateKey`]); no `depth` exceeds 256
//!    ([`SmtMultiProofError::PathTooLong`]); there are at most 256 siblings per item
//!    ([`SmtMultiProofError::TooManySiblings`]).
//! 2. Each end agrees with its item, as a single proof's leaf does
//!    ([`SmtMultiProofError::Item`] with the item's index and the single proof's error): an item
//!    holding a value ends in `own` (`missing-leaf` for `empty`, `leaf-key-mismatch` for `other`);
//!    an item holding nothing ends in `empty`, or in `other` with a leaf whose key is not the
//!    item's (`key-present` otherwise, and for `own`) and agrees with it on the first `depth`
//!    bits (`leaf-not-on-path`).
//! 3. Sort the items by key. Compute the hash of the subtree at depth 0 holding all of them,
//!    where the hash of the subtree at depth `d` holding the (non-empty, sorted) items `G` is:
//!    - if every item of `G` ends at `d`: the items must all describe the same subtree (one
//!      leaf, or all `empty`), else [`SmtMultiProofError::PathsDisagree`]; the hash is `ZERO`
//!      for empty, else the leaf hash of the key and value (for `own`, the item's own);
//!    - if some but not all end at `d`: [`SmtMultiProofError::PathsDisagree`];
//!    - otherwise split `G` by bit `d` of the keys into `L` (bit 0) and `R` (bit 1). The left
//!      child's hash is the hash of the subtree at `d + 1` holding `L` when `L` is not empty,
//!      else the next unread sibling; then the right child's the same way with `R`
//!      ([`SmtMultiProofError::MissingSiblings`] when none is left). If one child is a subtree
//!      where items end (at `d + 1`) and the other child's hash is `ZERO`, reject
//!      ([`SmtMultiProofError::EmptyLastSibling`]): as for a single proof, the parent of a path's
//!      end holds two keys or more. The hash is `internal_hash(left, right)`.
//! 4. Every sibling must have been read ([`SmtMultiProofError::ExtraSiblings`]), and the hash
//!    computed must be `root` ([`SmtMultiProofError::RootMismatch`]).
//!
//! The siblings are so read depth-first, left before right, and the proof for a set of keys in
//! a tree is unique. The checks run in this order; `docs/proofs.md` section 6 states the same
//! procedure for a second implementation.
//!
//! # Building
//!
//! [`SmtMultiProof::from_proofs`] builds a multiproof from single proofs of the items against
//! one root (what the store already answers), and [`SmtMultiProof::expand`] gives the single
//! proofs back, for a tool that shows one record's path.

use serde::{Deserialize, Serialize};

use crate::hash::Hash32;
use crate::limits::SMT_MULTIPROOF_KEYS_MAX;
use crate::smt::{
    SMT_KEY_BITS, SMT_PROOF_SIBLINGS_MAX, SmtLeaf, SmtProof, SmtProofError, internal_hash,
    leaf_hash,
};
use crate::suite::Suite;

/// What the subtree at the end of an item's path holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtEndLeaf {
    /// The item's own key and value (an item that holds a value).
    Own,
    /// Nothing: the subtree is empty.
    Empty,
    /// Another key and its value (an item that holds nothing).
    Other(SmtLeaf),
}

/// Where one item's path ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtPathEnd {
    /// The depth of the end: how many siblings a single proof of the key has.
    pub depth: u16,
    pub leaf: SmtEndLeaf,
}

/// A proof of several keys against one root (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtMultiProof {
    /// One per item, in the items' order.
    pub ends: Vec<SmtPathEnd>,
    /// The siblings no item's path computes, depth-first, left before right.
    pub siblings: Vec<Hash32>,
}

/// One key a multiproof proves: its hash, and the hash of its value, or `None` when the proof
/// shows it holds nothing.
pub type SmtItem = (Hash32, Option<Hash32>);

/// Why a multiproof does not show what it was asked to show. Each variant is one check of the
/// verification procedure in the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtMultiProofError {
    #[error("a multiproof proves 1 to {limit} keys, not {count}")]
    KeyCount { count: usize, limit: usize },
    #[error("the multiproof has {ends} path ends for {items} keys")]
    EndCount { items: usize, ends: usize },
    #[error("key {key} is listed twice")]
    DuplicateKey { key: Hash32 },
    #[error("the path of item {index} ends at depth {depth}, deeper than the tree")]
    PathTooLong { index: usize, depth: u16 },
    #[error("the multiproof has {count} siblings, more than {limit} for its keys")]
    TooManySiblings { count: usize, limit: usize },
    #[error("item {index}: {error}")]
    Item { index: usize, error: SmtProofError },
    #[error("two keys' paths describe the subtree at depth {depth} differently")]
    PathsDisagree { depth: usize },
    #[error("the multiproof has too few siblings")]
    MissingSiblings,
    #[error("{count} siblings of the multiproof are left over")]
    ExtraSiblings { count: usize },
    #[error(
        "a path ends at depth {depth} beside an empty subtree, which a compacted tree never has"
    )]
    EmptyLastSibling { depth: usize },
    #[error("the multiproof leads to root {computed}, not to the expected root {expected}")]
    RootMismatch { expected: Hash32, computed: Hash32 },
}

impl SmtMultiProofError {
    /// A stable kebab-case name for the error, used in test vectors and API problem codes; an
    /// item's error is the single proof's code.
    pub fn code(&self) -> &'static str {
        match self {
            SmtMultiProofError::KeyCount { .. } => "key-count",
            SmtMultiProofError::EndCount { .. } => "end-count",
            SmtMultiProofError::DuplicateKey { .. } => "duplicate-key",
            SmtMultiProofError::PathTooLong { .. } => "path-too-long",
            SmtMultiProofError::TooManySiblings { .. } => "too-many-siblings",
            SmtMultiProofError::Item { error, .. } => error.code(),
            SmtMultiProofError::PathsDisagree { .. } => "paths-disagree",
            SmtMultiProofError::MissingSiblings => "missing-siblings",
            SmtMultiProofError::ExtraSiblings { .. } => "extra-siblings",
            SmtMultiProofError::EmptyLastSibling { .. } => "empty-last-sibling",
            SmtMultiProofError::RootMismatch { .. } => "root-mismatch",
        }
    }
}

/// Checks that `proof` shows every item of `items` against `root`.
pub fn verify_multi(
    suite: Suite,
    root: Hash32,
    items: &[SmtItem],
    proof: &SmtMultiProof,
) -> Result<(), SmtMultiProofError> {
    let computed = walk(suite, items, proof, None)?;
    if computed != root {
        return Err(SmtMultiProofError::RootMismatch {
            expected: root,
            computed,
        });
    }
    Ok(())
}

impl SmtMultiProof {
    /// The multiproof of `items`, from a single proof of each against one root, in the same
    /// order. The single proofs are taken as the store gave them: one that does not fit its
    /// item, or that disagrees with another, gives a multiproof that does not verify.
    pub fn from_proofs(
        items: &[SmtItem],
        proofs: &[&SmtProof],
    ) -> Result<SmtMultiProof, SmtMultiProofError> {
        check_counts(items.len(), proofs.len())?;
        let mut ends = Vec::with_capacity(items.len());
        for (index, ((key, _), proof)) in items.iter().zip(proofs).enumerate() {
            let depth = proof.siblings.len();
            let depth = u16::try_from(depth)
                .ok()
                .filter(|depth| usize::from(*depth) <= SMT_KEY_BITS)
                .ok_or(SmtMultiProofError::PathTooLong {
                    index,
                    depth: u16::MAX,
                })?;
            let leaf = match proof.leaf {
                None => SmtEndLeaf::Empty,
                Some(leaf) if leaf.key == *key => SmtEndLeaf::Own,
                Some(leaf) => SmtEndLeaf::Other(leaf),
            };
            ends.push(SmtPathEnd { depth, leaf });
        }
        let order = sorted_order(items)?;
        let mut siblings = Vec::new();
        collect_siblings(items, proofs, &ends, &order, 0, &mut siblings);
        Ok(SmtMultiProof { ends, siblings })
    }

    /// The single proof of each item, in the items' order, after checking the multiproof
    /// against `root`.
    pub fn expand(
        &self,
        suite: Suite,
        root: Hash32,
        items: &[SmtItem],
    ) -> Result<Vec<SmtProof>, SmtMultiProofError> {
        let mut paths: Vec<Vec<Hash32>> = vec![Vec::new(); items.len()];
        verify_multi(suite, root, items, self)?;
        walk(suite, items, self, Some(&mut paths))?;
        // The walk records each path's siblings as it returns, from the deepest up.
        for path in &mut paths {
            path.reverse();
        }
        Ok(paths
            .into_iter()
            .zip(items.iter().zip(&self.ends))
            .map(|(siblings, ((key, value), end))| SmtProof {
                siblings,
                leaf: match end.leaf {
                    SmtEndLeaf::Own => value.map(|value| SmtLeaf { key: *key, value }),
                    SmtEndLeaf::Empty => None,
                    SmtEndLeaf::Other(leaf) => Some(leaf),
                },
            })
            .collect())
    }
}

fn check_counts(items: usize, ends: usize) -> Result<(), SmtMultiProofError> {
    if items == 0 || items > SMT_MULTIPROOF_KEYS_MAX {
        return Err(SmtMultiProofError::KeyCount {
            count: items,
            limit: SMT_MULTIPROOF_KEYS_MAX,
        });
    }
    if ends != items {
        return Err(SmtMultiProofError::EndCount { items, ends });
    }
    Ok(())
}

/// The items' indexes sorted by key, refusing a key listed twice.
fn sorted_order(items: &[SmtItem]) -> Result<Vec<usize>, SmtMultiProofError> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_unstable_by_key(|index| items[*index].0);
    if let Some(pair) = order
        .windows(2)
        .find(|pair| items[pair[0]].0 == items[pair[1]].0)
    {
        return Err(SmtMultiProofError::DuplicateKey {
            key: items[pair[0]].0,
        });
    }
    Ok(order)
}

/// Steps 1 to 3 of the verification: the hash the proof computes for the root. With `paths`,
/// also records each item's siblings from the root downwards.
fn walk<'proof>(
    suite: Suite,
    items: &'proof [SmtItem],
    proof: &'proof SmtMultiProof,
    paths: Option<&'proof mut Vec<Vec<Hash32>>>,
) -> Result<Hash32, SmtMultiProofError> {
    check_counts(items.len(), proof.ends.len())?;
    let order = sorted_order(items)?;
    for (index, end) in proof.ends.iter().enumerate() {
        if usize::from(end.depth) > SMT_KEY_BITS {
            return Err(SmtMultiProofError::PathTooLong {
                index,
                depth: end.depth,
            });
        }
    }
    let limit = items.len() * SMT_PROOF_SIBLINGS_MAX;
    if proof.siblings.len() > limit {
        return Err(SmtMultiProofError::TooManySiblings {
            count: proof.siblings.len(),
            limit,
        });
    }
    for (index, (item, end)) in items.iter().zip(&proof.ends).enumerate() {
        check_end(item, end).map_err(|error| SmtMultiProofError::Item { index, error })?;
    }
    let mut walker = Walker {
        suite,
        items,
        ends: &proof.ends,
        siblings: &proof.siblings,
        next: 0,
        paths,
    };
    let (root, _) = walker.subtree(&order, 0)?;
    if walker.next != proof.siblings.len() {
        return Err(SmtMultiProofError::ExtraSiblings {
            count: proof.siblings.len() - walker.next,
        });
    }
    Ok(root)
}

/// Step 2: the end agrees with its item.
fn check_end((key, value): &SmtItem, end: &SmtPathEnd) -> Result<(), SmtProofError> {
    match (value, end.leaf) {
        (Some(_), SmtEndLeaf::Own) | (None, SmtEndLeaf::Empty) => Ok(()),
        (Some(_), SmtEndLeaf::Empty) => Err(SmtProofError::MissingLeaf),
        (Some(_), SmtEndLeaf::Other(leaf)) => Err(SmtProofError::LeafKeyMismatch {
            expected: *key,
            found: leaf.key,
        }),
        (None, SmtEndLeaf::Own) => Err(SmtProofError::KeyPresent),
        (None, SmtEndLeaf::Other(leaf)) => {
            if leaf.key == *key {
                return Err(SmtProofError::KeyPresent);
            }
            let depth = usize::from(end.depth);
            if !agree_on_prefix(&leaf.key, key, depth) {
                return Err(SmtProofError::LeafNotOnPath { depth });
            }
            Ok(())
        }
    }
}

/// Whether `a` and `b` agree on their first `bits` bits (`bits` <= 256).
fn agree_on_prefix(a: &Hash32, b: &Hash32, bits: usize) -> bool {
    (0..bits).all(|bit| a.bit(bit) == b.bit(bit))
}

struct Walker<'proof> {
    suite: Suite,
    items: &'proof [SmtItem],
    ends: &'proof [SmtPathEnd],
    siblings: &'proof [Hash32],
    next: usize,
    paths: Option<&'proof mut Vec<Vec<Hash32>>>,
}

impl Walker<'_> {
    /// The hash of the subtree at `depth` holding the items `group` (indexes, sorted by key,
    /// non-empty), and whether items end there.
    fn subtree(
        &mut self,
        group: &[usize],
        depth: usize,
    ) -> Result<(Hash32, bool), SmtMultiProofError> {
        let ending = group
            .iter()
            .filter(|index| usize::from(self.ends[**index].depth) == depth)
            .count();
        if ending == group.len() {
            let mut described = None;
            for index in group {
                let leaf = match self.ends[*index].leaf {
                    SmtEndLeaf::Own => {
                        let (key, value) = self.items[*index];
                        value.map(|value| SmtLeaf { key, value })
                    }
                    SmtEndLeaf::Empty => None,
                    SmtEndLeaf::Other(leaf) => Some(leaf),
                };
                match described {
                    None => described = Some(leaf),
                    Some(first) if first == leaf => {}
                    Some(_) => return Err(SmtMultiProofError::PathsDisagree { depth }),
                }
            }
            let hash = described.flatten().map_or(Hash32::ZERO, |leaf| {
                leaf_hash(self.suite, &leaf.key, &leaf.value)
            });
            return Ok((hash, true));
        }
        if ending > 0 || depth >= SMT_KEY_BITS {
            return Err(SmtMultiProofError::PathsDisagree { depth });
        }
        let split = group.partition_point(|index| !self.items[*index].0.bit(depth));
        let (left, right) = group.split_at(split);
        let (left_hash, left_ends) = self.child(left, depth + 1)?;
        let (right_hash, right_ends) = self.child(right, depth + 1)?;
        if (left_ends && right_hash == Hash32::ZERO) || (right_ends && left_hash == Hash32::ZERO) {
            return Err(SmtMultiProofError::EmptyLastSibling { depth: depth + 1 });
        }
        if let Some(paths) = self.paths.as_deref_mut() {
            for index in left {
                paths[*index].push(right_hash);
            }
            for index in right {
                paths[*index].push(left_hash);
            }
        }
        Ok((internal_hash(self.suite, &left_hash, &right_hash), false))
    }

    /// A child's hash: computed from its items, or the next sibling when it has none.
    fn child(
        &mut self,
        group: &[usize],
        depth: usize,
    ) -> Result<(Hash32, bool), SmtMultiProofError> {
        if group.is_empty() {
            let sibling = *self
                .siblings
                .get(self.next)
                .ok_or(SmtMultiProofError::MissingSiblings)?;
            self.next += 1;
            Ok((sibling, false))
        } else {
            self.subtree(group, depth)
        }
    }
}

/// The building side of [`Walker::subtree`]: appends the siblings the walk of `group` at
/// `depth` reads, taken from the items' single proofs.
fn collect_siblings(
    items: &[SmtItem],
    proofs: &[&SmtProof],
    ends: &[SmtPathEnd],
    group: &[usize],
    depth: usize,
    siblings: &mut Vec<Hash32>,
) {
    if group.is_empty()
        || depth >= SMT_KEY_BITS
        || group
            .iter()
            .any(|index| usize::from(ends[*index].depth) <= depth)
    {
        return;
    }
    let split = group.partition_point(|index| !items[*index].0.bit(depth));
    let (left, right) = group.split_at(split);
    let sibling_of = |index: usize| proofs[index].siblings.get(depth).copied();
    for (side, other) in [(left, right), (right, left)] {
        if side.is_empty() {
            if let Some(sibling) = other.first().and_then(|index| sibling_of(*index)) {
                siblings.push(sibling);
            }
        } else {
            collect_siblings(items, proofs, ends, side, depth + 1, siblings);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::smt::{MemorySmtStore, SparseMerkleTree, verify_membership, verify_non_membership};

    const SUITE: Suite = Suite::Ed25519Blake3;

    fn key(number: u64) -> Hash32 {
        SUITE.tagged("test/multiproof/key", &number.to_le_bytes())
    }

    fn value(number: u64) -> Hash32 {
        SUITE.tagged("test/multiproof/value", &number.to_le_bytes())
    }

    /// A tree holding keys `0..size` (each `key(n)` with `value(n)`).
    fn tree_of(size: u64) -> (SparseMerkleTree, MemorySmtStore) {
        let mut store = MemorySmtStore::new();
        let mut tree = SparseMerkleTree::empty(SUITE);
        let updates: Vec<_> = (0..size).map(|n| (key(n), Some(value(n)))).collect();
        if !updates.is_empty() {
            let write_set = tree.apply(&store, &updates).expect("apply");
            store.persist(&write_set);
            tree.commit(write_set).expect("commit");
        }
        (tree, store)
    }

    /// Items for the numbers asked: present below `size`, absent from it on.
    fn items_of(size: u64, numbers: &[u64]) -> Vec<SmtItem> {
        numbers
            .iter()
            .map(|n| (key(*n), (*n < size).then(|| value(*n))))
            .collect()
    }

    fn multiproof(
        tree: &SparseMerkleTree,
        store: &MemorySmtStore,
        items: &[SmtItem],
    ) -> (SmtMultiProof, Vec<SmtProof>) {
        let proofs: Vec<SmtProof> = items
            .iter()
            .map(|(key, _)| tree.prove(store, key).expect("prove"))
            .collect();
        let references: Vec<&SmtProof> = proofs.iter().collect();
        (
            SmtMultiProof::from_proofs(items, &references).expect("build"),
            proofs,
        )
    }

    proptest! {
        /// For any tree and any keys, present or not, the multiproof built from the single
        /// proofs verifies, gives them back, and never has more siblings than they have.
        #[test]
        fn a_multiproof_proves_what_the_single_proofs_prove(
            size in 0u64..300,
            numbers in proptest::collection::btree_set(0u64..400, 1..24),
        ) {
            let (tree, store) = tree_of(size);
            let numbers: Vec<u64> = numbers.into_iter().collect();
            let items = items_of(size, &numbers);
            let (proof, singles) = multiproof(&tree, &store, &items);
            prop_assert_eq!(verify_multi(SUITE, tree.root(), &items, &proof), Ok(()));
            prop_assert_eq!(&proof.expand(SUITE, tree.root(), &items).expect("expand"), &singles);
            let single_siblings: usize = singles.iter().map(|proof| proof.siblings.len()).sum();
            prop_assert!(proof.siblings.len() <= single_siblings);
            for (item, single) in items.iter().zip(&singles) {
                let verified = match item.1 {
                    Some(value) => verify_membership(SUITE, tree.root(), &item.0, &value, single),
                    None => verify_non_membership(SUITE, tree.root(), &item.0, single),
                };
                prop_assert_eq!(verified, Ok(()));
            }
        }

        /// Changing any one sibling, or any one item's claim, makes the proof fail.
        #[test]
        fn any_changed_sibling_or_claim_is_refused(
            size in 2u64..200,
            numbers in proptest::collection::btree_set(0u64..260, 1..12),
            pick in any::<prop::sample::Index>(),
            bit in 0usize..256,
        ) {
            let (tree, store) = tree_of(size);
            let numbers: Vec<u64> = numbers.into_iter().collect();
            let items = items_of(size, &numbers);
            let (proof, _) = multiproof(&tree, &store, &items);
            if !proof.siblings.is_empty() {
                let mut tampered = proof.clone();
                let index = pick.index(tampered.siblings.len());
                tampered.siblings[index].0[bit / 8] ^= 0x80 >> (bit % 8);
                prop_assert!(verify_multi(SUITE, tree.root(), &items, &tampered).is_err());
            }
            let mut claims = items.clone();
            let index = pick.index(claims.len());
            claims[index].1 = match claims[index].1 {
                Some(found) => {
                    let mut other = found;
                    other.0[bit / 8] ^= 0x80 >> (bit % 8);
                    if bit % 2 == 0 { Some(other) } else { None }
                }
                None => Some(value(numbers[index])),
            };
            prop_assert!(verify_multi(SUITE, tree.root(), &claims, &proof).is_err());
        }
    }

    #[test]
    fn the_upper_siblings_are_carried_once() {
        let (tree, store) = tree_of(10_000);
        let numbers: Vec<u64> = (0..8).map(|n| n * 997).collect();
        let items = items_of(10_000, &numbers);
        let (proof, singles) = multiproof(&tree, &store, &items);
        let single_siblings: usize = singles.iter().map(|proof| proof.siblings.len()).sum();
        // Eight keys under one root share the three levels above their first branches: the
        // multiproof needs at least 14 fewer siblings (two per branch point below the root,
        // and more where paths run together).
        assert!(
            proof.siblings.len() + 14 <= single_siblings,
            "{} siblings in the multiproof, {single_siblings} in the single proofs",
            proof.siblings.len()
        );
        assert_eq!(verify_multi(SUITE, tree.root(), &items, &proof), Ok(()));
    }

    #[test]
    fn each_malformation_has_its_error() {
        let (tree, store) = tree_of(500);
        let root = tree.root();
        // Two present keys and two absent ones.
        let items = items_of(500, &[3, 77, 600, 601]);
        let (proof, _) = multiproof(&tree, &store, &items);
        let refused = |items: &[SmtItem], proof: &SmtMultiProof| {
            verify_multi(SUITE, root, items, proof)
                .expect_err("refused")
                .code()
        };

        assert_eq!(refused(&[], &SmtMultiProof::default()), "key-count");
        assert_eq!(refused(&items[..3], &proof), "end-count");
        let mut twice = items.clone();
        twice[1] = twice[0];
        assert_eq!(refused(&twice, &proof), "duplicate-key");
        let mut deep = proof.clone();
        deep.ends[0].depth = 257;
        assert_eq!(refused(&items, &deep), "path-too-long");
        let mut crowded = proof.clone();
        crowded.siblings = vec![Hash32::ZERO; 4 * 256 + 1];
        assert_eq!(refused(&items, &crowded), "too-many-siblings");

        // An item's end that does not fit it is named by the item.
        let mut absent_claimed = proof.clone();
        absent_claimed.ends[0].leaf = SmtEndLeaf::Empty;
        assert_eq!(
            verify_multi(SUITE, root, &items, &absent_claimed),
            Err(SmtMultiProofError::Item {
                index: 0,
                error: SmtProofError::MissingLeaf
            })
        );
        let mut present_claimed = proof.clone();
        present_claimed.ends[2].leaf = SmtEndLeaf::Own;
        assert_eq!(refused(&items, &present_claimed), "key-present");
        let mut off_path = proof.clone();
        off_path.ends[2].leaf = SmtEndLeaf::Other(SmtLeaf {
            key: Hash32([0xFF; 32]),
            value: value(1),
        });
        off_path.ends[2].depth = off_path.ends[2].depth.max(1);
        let first_bit_zero = !key(600).bit(0);
        if first_bit_zero {
            assert_eq!(refused(&items, &off_path), "leaf-not-on-path");
        }

        // A path that ends early or late disagrees with the others, or runs out of siblings.
        let mut short = proof.clone();
        short.ends[1].depth -= 1;
        assert!(matches!(
            refused(&items, &short),
            "paths-disagree"
                | "missing-siblings"
                | "extra-siblings"
                | "root-mismatch"
                | "empty-last-sibling"
        ));
        let mut fewer = proof.clone();
        fewer.siblings.pop();
        assert_eq!(refused(&items, &fewer), "missing-siblings");
        let mut more = proof.clone();
        more.siblings.push(value(9));
        assert_eq!(refused(&items, &more), "extra-siblings");
        let mut swapped = proof.clone();
        swapped.siblings.swap(0, 1);
        assert_eq!(refused(&items, &swapped), "root-mismatch");
        assert_eq!(
            verify_multi(SUITE, value(0), &items, &proof)
                .expect_err("other root")
                .code(),
            "root-mismatch"
        );
    }

    #[test]
    fn two_absent_keys_may_end_in_one_leaf_and_must_agree_on_it() {
        // In a tree of one key, every absent key's path ends at the root, in that key's leaf.
        let (tree, store) = tree_of(1);
        let items = items_of(1, &[0, 5, 6]);
        let (proof, _) = multiproof(&tree, &store, &items);
        assert!(proof.siblings.is_empty());
        assert_eq!(verify_multi(SUITE, tree.root(), &items, &proof), Ok(()));
        let mut disagreeing = proof.clone();
        disagreeing.ends[2].leaf = SmtEndLeaf::Empty;
        assert_eq!(
            verify_multi(SUITE, tree.root(), &items, &disagreeing),
            Err(SmtMultiProofError::PathsDisagree { depth: 0 })
        );
        // And in the empty tree every key ends in the empty root.
        let (empty, store) = tree_of(0);
        let items = items_of(0, &[1, 2]);
        let (proof, _) = multiproof(&empty, &store, &items);
        assert_eq!(verify_multi(SUITE, Hash32::ZERO, &items, &proof), Ok(()));
    }

    #[test]
    fn a_path_ending_beside_an_empty_subtree_is_refused() {
        // A tree of two keys: each alone below the root's first split. A forged proof claims
        // the second is absent by ending its path in an empty subtree beside the first leaf,
        // computing its own root: it must fail the compactness check before the root check.
        let first = SmtLeaf {
            key: key(0),
            value: value(0),
        };
        let absent = if key(0).bit(0) {
            Hash32([0x00; 32])
        } else {
            Hash32([0xFF; 32])
        };
        let items = [(first.key, Some(first.value)), (absent, None)];
        let proof = SmtMultiProof {
            ends: vec![
                SmtPathEnd {
                    depth: 1,
                    leaf: SmtEndLeaf::Own,
                },
                SmtPathEnd {
                    depth: 1,
                    leaf: SmtEndLeaf::Empty,
                },
            ],
            siblings: vec![],
        };
        let leaf = leaf_hash(SUITE, &first.key, &first.value);
        let forged_root = if first.key.bit(0) {
            internal_hash(SUITE, &Hash32::ZERO, &leaf)
        } else {
            internal_hash(SUITE, &leaf, &Hash32::ZERO)
        };
        assert_eq!(
            verify_multi(SUITE, forged_root, &items, &proof),
            Err(SmtMultiProofError::EmptyLastSibling { depth: 1 })
        );
    }
}
