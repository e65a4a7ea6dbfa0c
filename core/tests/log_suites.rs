//! The log's proof verification (RFC 9162 with SHA-256, `Sha256Log`) against
//! transparency-dev/merkle's inclusion and consistency probes: valid proofs and valid
//! proofs changed in the way each probe's name says.
//!
//! The files under `vectors/log/transparency-dev/` are converted from the probes by
//! `scripts/vectors/log_suites.py` (source and command in `vectors/README.md`), which also
//! records hutong's verdict, computed from RFC 9162 and the error order documented in
//! `hutong_core::log`, independently of the library. These tests check that the library
//! gives the recorded verdict for every probe, that every valid probe verifies and every
//! invalid one is refused, that each difference from a probe's verdict has a reason, and
//! that the probes have teeth: a hasher that swaps the children of a node, or that gets
//! the empty-tree root wrong, fails them.

use std::collections::BTreeMap;
use std::str::FromStr;

use hutong_core::hash::{Hash32, HashParseError};
use hutong_core::log::{self, ConsistencyProof, InclusionProof, LogError, LogHasher, Sha256Log};
use serde::Deserialize;
use sha2::{Digest, Sha256};

const INCLUSION: &str = include_str!("vectors/log/transparency-dev/inclusion.json");
const CONSISTENCY: &str = include_str!("vectors/log/transparency-dev/consistency.json");

/// The tag of the stand-ins that replace values of the wrong length (see the script).
const STAND_IN_TAG: &[u8] = b"hutong/vectors/stand-in/v1";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeFile<P> {
    description: String,
    source: Source,
    command: String,
    counts: Counts,
    probes: Vec<P>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    repository: String,
    path: String,
    commit: String,
    licence: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Counts {
    probes: usize,
    valid: usize,
    hutong_ok: usize,
    differ_from_suite: usize,
}

/// What every probe carries besides its proof.
#[derive(Debug, Clone, Deserialize)]
struct Verdicts {
    id: String,
    desc: String,
    want_err: bool,
    /// `ok`, a `LogError::code`, or `hash_length`.
    hutong: String,
    #[serde(default)]
    stand_ins: BTreeMap<String, String>,
    #[serde(default)]
    hutong_on_stand_ins: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct InclusionProbe {
    #[serde(flatten)]
    verdicts: Verdicts,
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: String,
    path: Vec<String>,
    root: String,
}

#[derive(Debug, Clone, Deserialize)]
struct ConsistencyProbe {
    #[serde(flatten)]
    verdicts: Verdicts,
    first_size: u64,
    second_size: u64,
    first_root: String,
    second_root: String,
    path: Vec<String>,
}

/// A probe whose verdict can be computed by some hasher.
trait Probe {
    fn verdicts(&self) -> &Verdicts;

    /// The verdict of hutong's verifier with `hasher`, each hex value first passed through
    /// `replace` (the identity, or the stand-ins) and then hutong's hash decoder.
    fn verdict(&self, hasher: &dyn LogHasher, replace: &dyn Fn(&str) -> String) -> String;
}

/// The name a vector file gives an outcome.
fn verdict_name(result: Result<(), LogError>) -> String {
    match result {
        Ok(()) => "ok".to_string(),
        Err(error) => error.code().to_string(),
    }
}

fn parse(text: &str) -> Result<Hash32, HashParseError> {
    Hash32::from_str(text)
}

fn parse_all<'a>(
    texts: impl IntoIterator<Item = &'a String>,
    replace: &dyn Fn(&str) -> String,
) -> Result<Vec<Hash32>, HashParseError> {
    texts
        .into_iter()
        .map(|text| parse(&replace(text)))
        .collect()
}

fn decoding_verdict(error: HashParseError) -> String {
    match error {
        HashParseError::Length(_) => "hash_length".to_string(),
        other => panic!("the probes are hex: {other}"),
    }
}

impl Probe for InclusionProbe {
    fn verdicts(&self) -> &Verdicts {
        &self.verdicts
    }

    fn verdict(&self, hasher: &dyn LogHasher, replace: &dyn Fn(&str) -> String) -> String {
        let decoded = parse_all([&self.leaf_hash, &self.root], replace)
            .and_then(|pair| Ok((pair, parse_all(&self.path, replace)?)));
        let ([leaf_hash, root], path) = match decoded {
            Ok((pair, path)) => (<[Hash32; 2]>::try_from(pair).expect("two values"), path),
            Err(error) => return decoding_verdict(error),
        };
        let result = log::verify_inclusion(
            hasher,
            self.leaf_index,
            self.tree_size,
            &leaf_hash,
            &path,
            &root,
        );
        // The proof type and the root-only function say the same.
        let proof = InclusionProof {
            leaf_index: self.leaf_index,
            tree_size: self.tree_size,
            path,
        };
        assert_eq!(
            proof.verify(hasher, &leaf_hash, &root),
            result,
            "{}",
            self.verdicts.id
        );
        let computed = proof.root(hasher, &leaf_hash);
        match &result {
            Ok(()) => assert_eq!(computed, Ok(root)),
            Err(LogError::RootMismatch {
                computed: found, ..
            }) => {
                assert_eq!(computed.as_ref(), Ok(found))
            }
            Err(error) => assert_eq!(computed.as_ref(), Err(error)),
        }
        verdict_name(result)
    }
}

impl Probe for ConsistencyProbe {
    fn verdicts(&self) -> &Verdicts {
        &self.verdicts
    }

    fn verdict(&self, hasher: &dyn LogHasher, replace: &dyn Fn(&str) -> String) -> String {
        let decoded = parse_all([&self.first_root, &self.second_root], replace)
            .and_then(|pair| Ok((pair, parse_all(&self.path, replace)?)));
        let ([first_root, second_root], path) = match decoded {
            Ok((pair, path)) => (<[Hash32; 2]>::try_from(pair).expect("two values"), path),
            Err(error) => return decoding_verdict(error),
        };
        let result = log::verify_consistency(
            hasher,
            self.first_size,
            self.second_size,
            &first_root,
            &second_root,
            &path,
        );
        let proof = ConsistencyProof {
            first_size: self.first_size,
            second_size: self.second_size,
            path,
        };
        assert_eq!(
            proof.verify(hasher, &first_root, &second_root),
            result,
            "{}",
            self.verdicts.id
        );
        verdict_name(result)
    }
}

fn inclusion() -> ProbeFile<InclusionProbe> {
    serde_json::from_str(INCLUSION).expect("inclusion.json")
}

fn consistency() -> ProbeFile<ConsistencyProbe> {
    serde_json::from_str(CONSISTENCY).expect("consistency.json")
}

fn as_given(text: &str) -> String {
    text.to_string()
}

/// The probes on which `hasher` gives other verdicts than the recorded ones, as given and
/// on stand-ins.
fn disagreements<P: Probe>(file: &ProbeFile<P>, hasher: &dyn LogHasher) -> Vec<String> {
    let mut found = Vec::new();
    for probe in &file.probes {
        let verdicts = probe.verdicts();
        let given = probe.verdict(hasher, &as_given);
        if given != verdicts.hutong {
            found.push(format!(
                "{}: recorded {}, got {given}",
                verdicts.id, verdicts.hutong
            ));
        }
        let replace = |text: &str| {
            verdicts
                .stand_ins
                .get(text)
                .cloned()
                .unwrap_or_else(|| text.to_string())
        };
        let on_stand_ins = probe.verdict(hasher, &replace);
        let recorded = verdicts
            .hutong_on_stand_ins
            .as_deref()
            .unwrap_or(&verdicts.hutong);
        if on_stand_ins != recorded {
            found.push(format!(
                "{} (stand-ins): recorded {recorded}, got {on_stand_ins}",
                verdicts.id
            ));
        }
    }
    found
}

/// The probes whose reason is missing where a verdict differs from `want_err`, present
/// where none does, or empty.
fn reason_problems<P: Probe>(file: &ProbeFile<P>) -> Vec<String> {
    file.probes
        .iter()
        .filter_map(|probe| {
            let verdicts = probe.verdicts();
            let differ = std::iter::once(&verdicts.hutong)
                .chain(&verdicts.hutong_on_stand_ins)
                .any(|verdict| (verdict == "ok") == verdicts.want_err);
            match (&verdicts.reason, differ) {
                (None, true) => Some(format!("{}: differs without a reason", verdicts.id)),
                (Some(_), false) => Some(format!("{}: a reason but no difference", verdicts.id)),
                (Some(reason), true) if reason.trim().is_empty() => {
                    Some(format!("{}: an empty reason", verdicts.id))
                }
                _ => None,
            }
        })
        .collect()
}

fn check_header<P: Probe>(file: &ProbeFile<P>, kind: &str, expected: Counts) {
    let source = &file.source;
    assert_eq!(source.repository, "transparency-dev/merkle");
    assert_eq!(source.path, format!("testdata/{kind}/"));
    assert_eq!(source.licence, "Apache-2.0");
    assert!(source.commit.len() == 40 && source.commit.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(
        file.command
            .starts_with("python3 scripts/vectors/log_suites.py ")
    );
    assert!(file.description.contains(kind));
    let probes: Vec<&Verdicts> = file.probes.iter().map(Probe::verdicts).collect();
    let counted = Counts {
        probes: probes.len(),
        valid: probes.iter().filter(|probe| !probe.want_err).count(),
        hutong_ok: probes.iter().filter(|probe| probe.hutong == "ok").count(),
        differ_from_suite: probes.iter().filter(|probe| probe.reason.is_some()).count(),
    };
    assert_eq!(counted, file.counts, "{kind}: the file's own counts");
    assert_eq!(counted, expected, "{kind}: the counts this test expects");
    for probe in &probes {
        assert!(
            probe.id.starts_with(&format!("{kind}/")) && probe.id.ends_with(".json"),
            "{}",
            probe.id
        );
        assert!(!probe.desc.is_empty(), "{}", probe.id);
        // Stand-ins exist exactly for the probes refused at decoding, and are what the
        // script says they are.
        assert_eq!(
            probe.hutong == "hash_length",
            !probe.stand_ins.is_empty() && probe.hutong_on_stand_ins.is_some(),
            "{}",
            probe.id
        );
        for (value, stand_in) in &probe.stand_ins {
            let bytes = hex::decode(value).expect("hex");
            assert_ne!(bytes.len(), 32, "{}", probe.id);
            let expected = Sha256::digest([STAND_IN_TAG, &bytes].concat());
            assert_eq!(*stand_in, hex::encode(expected), "{}", probe.id);
        }
    }
}

#[test]
fn the_files_name_their_source_and_hold_their_counts() {
    let counts = |probes, valid, hutong_ok, differ_from_suite| Counts {
        probes,
        valid,
        hutong_ok,
        differ_from_suite,
    };
    check_header(&inclusion(), "inclusion", counts(98, 6, 6, 1));
    check_header(&consistency(), "consistency", counts(98, 6, 5, 2));
}

#[test]
fn sha256_log_gives_the_recorded_verdicts() {
    let found = disagreements(&inclusion(), &Sha256Log);
    assert!(found.is_empty(), "inclusion: {found:#?}");
    let found = disagreements(&consistency(), &Sha256Log);
    assert!(found.is_empty(), "consistency: {found:#?}");
}

/// Every valid probe verifies and every invalid one is refused, except where the file says
/// why not: one valid consistency probe whose roots are placeholders (it verifies on
/// stand-ins).
#[test]
fn valid_probes_verify_and_invalid_ones_are_refused() {
    fn check<P: Probe>(file: &ProbeFile<P>) -> Vec<String> {
        let mut exceptions = Vec::new();
        for probe in &file.probes {
            let verdicts = probe.verdicts();
            let as_given = probe.verdict(&Sha256Log, &as_given);
            if verdicts.want_err {
                assert_ne!(as_given, "ok", "{}: an invalid probe verifies", verdicts.id);
            } else if as_given != "ok" {
                assert_eq!(as_given, "hash_length", "{}", verdicts.id);
                assert_eq!(verdicts.hutong_on_stand_ins.as_deref(), Some("ok"));
                assert!(verdicts.reason.is_some(), "{}", verdicts.id);
                exceptions.push(verdicts.id.clone());
            }
        }
        exceptions
    }
    assert!(check(&inclusion()).is_empty());
    assert_eq!(
        check(&consistency()),
        ["consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"]
    );
}

#[test]
fn every_difference_from_a_probe_has_a_reason() {
    let problems = reason_problems(&inclusion());
    assert!(problems.is_empty(), "inclusion: {problems:#?}");
    let problems = reason_problems(&consistency());
    assert!(problems.is_empty(), "consistency: {problems:#?}");

    // The check itself notices a dropped reason and a reason without a difference.
    let mut spoiled = consistency();
    let differing = spoiled
        .probes
        .iter()
        .position(|probe| probe.verdicts.reason.is_some())
        .expect("a difference");
    spoiled.probes[differing].verdicts.reason = None;
    spoiled.probes[0].verdicts.reason = Some("nothing to explain".to_string());
    assert_eq!(reason_problems(&spoiled).len(), 2);
}

/// The one behaviour in which hutong's verifier and transparency-dev's Go verifier differ:
/// from the empty tree, hutong accepts an empty proof when the first root is the empty
/// root, whatever the second tree; Go refuses `size1 = 0`.
#[test]
fn consistency_from_the_empty_tree_needs_only_the_empty_root() {
    let probe = consistency()
        .probes
        .into_iter()
        .find(|probe| {
            probe.verdicts.id == "consistency/additional/size1-is-zero-and-size2-is-not-zero.json"
        })
        .expect("the probe");
    assert!(probe.verdicts.want_err);
    assert_eq!(probe.verdicts.hutong_on_stand_ins.as_deref(), Some("ok"));
    let empty_root = Sha256Log.empty_root();
    assert_eq!(parse(&probe.first_root), Ok(empty_root));
    for second_root in [Hash32([0x5a; 32]), Sha256Log.leaf_hash(b"anything")] {
        assert_eq!(
            log::verify_consistency(&Sha256Log, 0, 1, &empty_root, &second_root, &[]),
            Ok(())
        );
    }
    assert!(matches!(
        log::verify_consistency(&Sha256Log, 0, 1, &Hash32([0x5a; 32]), &empty_root, &[]),
        Err(LogError::FirstRootMismatch { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Wrong hashers fail the probes
// ---------------------------------------------------------------------------------------

/// SHA-256 with the children of every node swapped: a bug that a test built only from
/// the verifier's own proofs would not see.
#[derive(Debug)]
struct SwappedChildren;

impl LogHasher for SwappedChildren {
    fn empty_root(&self) -> Hash32 {
        Sha256Log.empty_root()
    }

    fn leaf_hash(&self, data: &[u8]) -> Hash32 {
        Sha256Log.leaf_hash(data)
    }

    fn node_hash(&self, left: &Hash32, right: &Hash32) -> Hash32 {
        Sha256Log.node_hash(right, left)
    }
}

/// SHA-256 with all-zero bytes as the root of the empty tree.
#[derive(Debug)]
struct ZeroEmptyRoot;

impl LogHasher for ZeroEmptyRoot {
    fn empty_root(&self) -> Hash32 {
        Hash32([0; 32])
    }

    fn leaf_hash(&self, data: &[u8]) -> Hash32 {
        Sha256Log.leaf_hash(data)
    }

    fn node_hash(&self, left: &Hash32, right: &Hash32) -> Hash32 {
        Sha256Log.node_hash(left, right)
    }
}

fn valid_probes_failing<P: Probe>(file: &ProbeFile<P>, hasher: &dyn LogHasher) -> Vec<String> {
    file.probes
        .iter()
        .filter(|probe| !probe.verdicts().want_err && probe.verdicts().hutong == "ok")
        .filter(|probe| probe.verdict(hasher, &as_given) != "ok")
        .map(|probe| probe.verdicts().id.clone())
        .collect()
}

#[test]
fn a_hasher_that_swaps_children_fails_the_valid_probes() {
    // Every valid proof that hashes at least one node fails; the one-leaf trees, whose
    // proofs are empty, cannot tell.
    assert_eq!(
        valid_probes_failing(&inclusion(), &SwappedChildren),
        [
            "inclusion/1/happy-path.json",
            "inclusion/2/happy-path.json",
            "inclusion/3/happy-path.json",
            "inclusion/4/happy-path.json",
        ]
    );
    assert_eq!(
        valid_probes_failing(&consistency(), &SwappedChildren),
        [
            "consistency/1/happy-path.json",
            "consistency/2/happy-path.json",
            "consistency/3/happy-path.json",
            "consistency/4/happy-path.json",
        ]
    );
    // And the general check reports them, along with invalid probes refused otherwise.
    assert!(disagreements(&inclusion(), &SwappedChildren).len() >= 3);
    assert!(disagreements(&consistency(), &SwappedChildren).len() >= 4);
}

#[test]
fn a_wrong_empty_root_is_noticed_by_the_size_zero_probes() {
    assert!(disagreements(&inclusion(), &ZeroEmptyRoot).is_empty());
    // Only the probes from the empty tree notice, and only with stand-ins in place of
    // their placeholder roots: as given they are refused at decoding.
    assert_eq!(
        disagreements(&consistency(), &ZeroEmptyRoot),
        [
            "consistency/additional/roots-do-not-match-and-sizes-are-zero.json (stand-ins): \
             recorded second_root_mismatch, got first_root_mismatch",
            "consistency/additional/size1-is-zero-and-size2-is-not-zero.json (stand-ins): \
             recorded ok, got first_root_mismatch",
        ]
    );
}
