//! hutong's signature rule (docs/adr/0002-signature-verification.md) against test suites
//! written elsewhere: RFC 8032 section 7.1, Project Wycheproof, the twelve cases of "Taming
//! the many EdDSAs" (ed25519-speccheck), C2SP's CCTV vectors and ZIP 215's small-order set.
//!
//! The files under `vectors/crypto/` are converted from the suites by
//! `scripts/vectors/signature_suites.py` (sources and commands in `vectors/README.md`). Each
//! vector carries the suite's verdict and hutong's, which the script computes from the ADR
//! with its own implementation of the rule, independently of `hutong_core::crypto`; where
//! the two verdicts differ the vector says why. These tests check that the library gives
//! the recorded verdict for every vector, alone and in batches, that every difference from
//! a suite has a reason, and that the vectors tell rules apart: weakening any clause of
//! the rule, or using ed25519-dalek's cofactorless `verify_strict`, changes some verdict.

use std::collections::BTreeMap;

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use hutong_core::crypto::{
    BatchFailure, PublicKey, SecretKey, Signature, SignatureError, verify, verify_batch,
    verify_batch_with_errors,
};
use serde::Deserialize;
use sha2::{Digest, Sha512};

/// Every suite file, with the counts it must hold: vectors, vectors hutong accepts, vectors
/// on which hutong's verdict differs from the suite's. A truncated or regenerated file that
/// changes them fails here before anything else.
const SUITES: [(&str, &str, Counts); 5] = [
    (
        "rfc8032",
        include_str!("vectors/crypto/rfc8032.json"),
        Counts::new(5, 5, 0),
    ),
    (
        "wycheproof",
        include_str!("vectors/crypto/wycheproof.json"),
        Counts::new(151, 88, 0),
    ),
    (
        "speccheck",
        include_str!("vectors/crypto/speccheck.json"),
        Counts::new(12, 3, 9),
    ),
    (
        "cctv",
        include_str!("vectors/crypto/cctv.json"),
        Counts::new(914, 106, 129),
    ),
    (
        "zip215",
        include_str!("vectors/crypto/zip215.json"),
        Counts::new(196, 0, 196),
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
struct Counts {
    vectors: usize,
    hutong_accepts: usize,
    differ_from_suite: usize,
}

impl Counts {
    const fn new(vectors: usize, hutong_accepts: usize, differ_from_suite: usize) -> Counts {
        Counts {
            vectors,
            hutong_accepts,
            differ_from_suite,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    description: String,
    source: Source,
    command: String,
    counts: Counts,
    #[serde(default)]
    encodings: Vec<String>,
    vectors: Vec<Vector>,
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
#[serde(rename_all = "lowercase")]
enum SuiteAnswer {
    Valid,
    Invalid,
    /// The suite allows either verdict.
    Acceptable,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    id: String,
    #[serde(default)]
    secret_key: Option<String>,
    public_key: String,
    message: String,
    signature: String,
    /// The suite's own fields (verdict, flags, comment), kept for the reader.
    suite: serde_json::Value,
    suite_answer: SuiteAnswer,
    /// `accept` or the name of the `SignatureError` variant.
    hutong: String,
    #[serde(default)]
    reason: Option<String>,
}

impl Vector {
    fn message_bytes(&self) -> Vec<u8> {
        hex::decode(&self.message).expect("messages are hex")
    }

    fn raw_key(&self) -> Vec<u8> {
        hex::decode(&self.public_key).expect("keys are hex")
    }

    fn raw_signature(&self) -> Vec<u8> {
        hex::decode(&self.signature).expect("signatures are hex")
    }

    /// The key and signature as hutong's types, when they have the right lengths.
    fn decoded(&self) -> Result<(PublicKey, Signature), SignatureError> {
        Ok((self.public_key.parse()?, self.signature.parse()?))
    }
}

fn load(name: &str, text: &str) -> SuiteFile {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{name}: {error}"))
}

fn suites() -> Vec<(&'static str, SuiteFile)> {
    SUITES
        .iter()
        .map(|(name, text, _)| (*name, load(name, text)))
        .collect()
}

fn suite(name: &str) -> SuiteFile {
    let (_, text, _) = SUITES
        .iter()
        .find(|(suite_name, _, _)| *suite_name == name)
        .expect("a known suite");
    load(name, text)
}

/// The name a vector file gives an outcome. The match is exhaustive, so that a new variant
/// must be named here before it can appear in a verdict.
fn verdict_name(result: Result<(), SignatureError>) -> &'static str {
    match result {
        Ok(()) => "accept",
        Err(SignatureError::NonCanonicalKey) => "NonCanonicalKey",
        Err(SignatureError::KeyNotOnCurve) => "KeyNotOnCurve",
        Err(SignatureError::SmallOrderKey) => "SmallOrderKey",
        Err(SignatureError::NonCanonicalR) => "NonCanonicalR",
        Err(SignatureError::RNotOnCurve) => "RNotOnCurve",
        Err(SignatureError::SmallOrderR) => "SmallOrderR",
        Err(SignatureError::NonCanonicalS) => "NonCanonicalS",
        Err(SignatureError::Mismatch) => "Mismatch",
        Err(SignatureError::ChainIdLength { .. }) => "ChainIdLength",
        Err(SignatureError::HexLength { .. }) => "HexLength",
        Err(SignatureError::NotHex { .. }) => "NotHex",
    }
}

/// What `hutong_core::crypto` says of a vector: the hex decoders, then `verify`.
fn library_verdict(vector: &Vector) -> &'static str {
    verdict_name(vector.decoded().and_then(|(public_key, signature)| {
        verify(&public_key, &vector.message_bytes(), &signature)
    }))
}

/// The vectors on which `verdict_of` disagrees with the recorded hutong verdict, with both
/// verdicts. `exact` compares the refusal reasons too; otherwise only accept or refuse.
fn disagreements(
    file: &SuiteFile,
    verdict_of: &dyn Fn(&Vector) -> &'static str,
    exact: bool,
) -> Vec<String> {
    file.vectors
        .iter()
        .filter_map(|vector| {
            let verdict = verdict_of(vector);
            let same = if exact {
                verdict == vector.hutong
            } else {
                (verdict == "accept") == (vector.hutong == "accept")
            };
            (!same).then(|| format!("{}: recorded {}, got {verdict}", vector.id, vector.hutong))
        })
        .collect()
}

/// Whether a suite's verdict and hutong's disagree.
fn differs(answer: SuiteAnswer, hutong: &str) -> bool {
    match answer {
        SuiteAnswer::Valid => hutong != "accept",
        SuiteAnswer::Invalid => hutong == "accept",
        SuiteAnswer::Acceptable => false,
    }
}

/// The vectors whose reason is missing where the verdicts differ, present where they agree,
/// or empty.
fn reason_problems(file: &SuiteFile) -> Vec<String> {
    file.vectors
        .iter()
        .filter_map(|vector| {
            let differ = differs(vector.suite_answer, &vector.hutong);
            match (&vector.reason, differ) {
                (None, true) => Some(format!(
                    "{}: the suite says {:?}, hutong {}, and no reason is given",
                    vector.id, vector.suite_answer, vector.hutong
                )),
                (Some(_), false) => Some(format!(
                    "{}: a reason is given but the verdicts agree",
                    vector.id
                )),
                (Some(reason), true) if reason.trim().is_empty() => {
                    Some(format!("{}: the reason is empty", vector.id))
                }
                _ => None,
            }
        })
        .collect()
}

#[test]
fn every_file_names_its_source_and_holds_its_counts() {
    for (name, text, expected) in SUITES {
        let file = load(name, text);
        let source = &file.source;
        assert!(!source.repository.is_empty() && source.repository.contains('/'));
        assert!(
            !source.path.is_empty() && !source.licence.is_empty(),
            "{name}"
        );
        assert!(
            source.commit.len() == 40 && source.commit.bytes().all(|b| b.is_ascii_hexdigit()),
            "{name}: a full commit hash, got {}",
            source.commit
        );
        assert!(
            file.command
                .starts_with("python3 scripts/vectors/signature_suites.py "),
            "{name}"
        );
        assert!(file.description.len() > 100, "{name}");
        let vectors = &file.vectors;
        let counted = Counts {
            vectors: vectors.len(),
            hutong_accepts: vectors.iter().filter(|v| v.hutong == "accept").count(),
            differ_from_suite: vectors.iter().filter(|v| v.reason.is_some()).count(),
        };
        assert_eq!(counted, file.counts, "{name}: the file's own counts");
        assert_eq!(counted, expected, "{name}: the counts this test expects");
        let mut ids: Vec<&str> = vectors.iter().map(|vector| vector.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), vectors.len(), "{name}: ids are unique");
    }
}

#[test]
fn verify_gives_the_recorded_verdict() {
    for (name, file) in suites() {
        let wrong = disagreements(&file, &library_verdict, true);
        assert!(wrong.is_empty(), "{name}: {wrong:#?}");
    }
}

#[test]
fn every_difference_from_a_suite_has_a_reason() {
    for (name, file) in suites() {
        let problems = reason_problems(&file);
        assert!(problems.is_empty(), "{name}: {problems:#?}");
    }
}

/// The reason check on files spoiled on purpose: it must notice each spoiling.
#[test]
fn the_reason_check_catches_planted_mistakes() {
    let speccheck = suite("speccheck");
    let differing = speccheck
        .vectors
        .iter()
        .position(|vector| vector.reason.is_some())
        .expect("speccheck has differences");
    let agreeing = speccheck
        .vectors
        .iter()
        .position(|vector| vector.reason.is_none())
        .expect("speccheck has agreements");

    let mut reason_dropped = speccheck.clone();
    reason_dropped.vectors[differing].reason = None;
    assert_eq!(reason_problems(&reason_dropped).len(), 1);

    let mut reason_added = speccheck.clone();
    reason_added.vectors[agreeing].reason = Some("no difference to explain".to_string());
    assert_eq!(reason_problems(&reason_added).len(), 1);

    let mut reason_emptied = speccheck.clone();
    reason_emptied.vectors[differing].reason = Some(" ".to_string());
    assert_eq!(reason_problems(&reason_emptied).len(), 1);

    // A suite verdict turned over: hutong accepts case 3, which now "should" be refused.
    let mut verdict_flipped = speccheck.clone();
    let case_3 = &mut verdict_flipped.vectors[3];
    assert_eq!(
        (case_3.id.as_str(), case_3.hutong.as_str()),
        ("case 3", "accept")
    );
    case_3.suite_answer = SuiteAnswer::Invalid;
    assert_eq!(reason_problems(&verdict_flipped).len(), 1);

    // And a recorded hutong verdict changed: the verdict check notices.
    let mut hutong_changed = speccheck;
    hutong_changed.vectors[agreeing].hutong = "Mismatch".to_string();
    assert_eq!(
        disagreements(&hutong_changed, &library_verdict, true).len(),
        1
    );
}

#[test]
fn the_rfc8032_signer_reproduces_the_published_keys_and_signatures() {
    let file = suite("rfc8032");
    for vector in &file.vectors {
        let seed: [u8; 32] = hex::decode(vector.secret_key.as_ref().expect("RFC 8032 gives it"))
            .expect("hex")
            .try_into()
            .expect("32 bytes");
        let secret = SecretKey::from_seed(seed);
        let (public_key, signature) = vector.decoded().expect("well-formed");
        assert_eq!(secret.public_key(), public_key, "{}", vector.id);
        assert_eq!(
            secret.sign(&vector.message_bytes()),
            signature,
            "{}",
            vector.id
        );
    }
}

/// The ZIP 215 file is the set of ed25519-zebra's `SMALL_ORDER_SIGS`: the canonical
/// encodings of curve25519-dalek's `EIGHT_TORSION`, in its order, then six non-canonical
/// encodings of small-order points; every (A, R) pair of them with s = 0 on "Zcash".
#[test]
fn the_zip215_file_is_the_small_order_set() {
    let file = suite("zip215");
    let encodings: Vec<[u8; 32]> = file
        .encodings
        .iter()
        .map(|text| {
            hex::decode(text)
                .expect("hex")
                .try_into()
                .expect("32 bytes")
        })
        .collect();
    assert_eq!(encodings.len(), 14);
    for (index, point) in EIGHT_TORSION.iter().enumerate() {
        assert_eq!(encodings[index], point.compress().to_bytes(), "{index}");
    }
    for encoding in &encodings[8..] {
        let point = CompressedEdwardsY(*encoding)
            .decompress()
            .expect("a lenient decoder accepts it");
        assert!(point.is_small_order());
        assert_ne!(point.compress().to_bytes(), *encoding, "non-canonical");
    }
    let mut expected = Vec::new();
    for a in &encodings {
        for r in &encodings {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(r);
            expected.push((hex::encode(a), hex::encode(signature)));
        }
    }
    let actual: Vec<(String, String)> = file
        .vectors
        .iter()
        .map(|vector| {
            assert_eq!(vector.message_bytes(), b"Zcash");
            (vector.public_key.clone(), vector.signature.clone())
        })
        .collect();
    assert_eq!(actual, expected);
}

// ---------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------

/// A vector as batch input, with its recorded verdict.
#[derive(Debug, Clone)]
struct Entry {
    label: String,
    public_key: PublicKey,
    message: Vec<u8>,
    signature: Signature,
    verdict: String,
}

/// The vectors that hutong's types can hold (a key or signature of the wrong length cannot
/// enter a batch), and how many could not.
fn batch_entries(file: &SuiteFile) -> (Vec<Entry>, usize) {
    let mut entries = Vec::new();
    let mut unrepresentable = 0;
    for vector in &file.vectors {
        match vector.decoded() {
            Ok((public_key, signature)) => entries.push(Entry {
                label: vector.id.clone(),
                public_key,
                message: vector.message_bytes(),
                signature,
                verdict: vector.hutong.clone(),
            }),
            Err(error) => {
                assert_eq!(verdict_name(Err(error)), vector.hutong, "{}", vector.id);
                unrepresentable += 1;
            }
        }
    }
    (entries, unrepresentable)
}

/// Honest signatures from three signers, to mix with the vectors.
fn honest_entries(count: usize) -> Vec<Entry> {
    let signers: Vec<SecretKey> = (1..=3u8).map(|n| SecretKey::from_seed([n; 32])).collect();
    (0..count)
        .map(|index| {
            let secret = &signers[index % signers.len()];
            let message = format!("honest signature {index}").into_bytes();
            Entry {
                label: format!("honest {index}"),
                public_key: secret.public_key(),
                signature: secret.sign(&message),
                message,
                verdict: "accept".to_string(),
            }
        })
        .collect()
}

/// Runs one batch and checks that it refuses exactly the entries whose recorded verdict is
/// a refusal, each with its recorded reason, and that `verify_batch` names the same indexes.
fn check_batch(entries: &[Entry]) -> Result<(), String> {
    let items: Vec<(&PublicKey, &[u8], &Signature)> = entries
        .iter()
        .map(|entry| {
            (
                &entry.public_key,
                entry.message.as_slice(),
                &entry.signature,
            )
        })
        .collect();
    let expected: Vec<(usize, String)> = entries
        .iter()
        .enumerate()
        .filter(|(_, entry)| entry.verdict != "accept")
        .map(|(index, entry)| (index, entry.verdict.clone()))
        .collect();
    let actual: Vec<(usize, String)> = match verify_batch_with_errors(&items) {
        Ok(()) => Vec::new(),
        Err(failures) => failures
            .iter()
            .map(|BatchFailure { index, error }| (*index, verdict_name(Err(*error)).to_string()))
            .collect(),
    };
    if actual != expected {
        let labels: Vec<&str> = entries.iter().map(|entry| entry.label.as_str()).collect();
        return Err(format!(
            "batch {labels:?}: expected {expected:?}, got {actual:?}"
        ));
    }
    let indexes: Vec<usize> = expected.iter().map(|(index, _)| *index).collect();
    let batch = verify_batch(&items).err().unwrap_or_default();
    if batch != indexes {
        return Err(format!("verify_batch: expected {indexes:?}, got {batch:?}"));
    }
    Ok(())
}

#[test]
fn batches_agree_with_single_verification() {
    let honest = honest_entries(2048);
    let mut accepted_everywhere = Vec::new();
    for (name, file) in suites() {
        let (entries, unrepresentable) = batch_entries(&file);
        let expected_unrepresentable = if name == "wycheproof" { 12 } else { 0 };
        assert_eq!(unrepresentable, expected_unrepresentable, "{name}");
        let mut problems = Vec::new();
        for entry in &entries {
            // Alone, and between two honest signatures by one signer (whose key the batch
            // then decodes once for both).
            let alone = std::slice::from_ref(entry);
            let between = [honest[0].clone(), entry.clone(), honest[3].clone()];
            for batch in [alone, &between[..]] {
                if let Err(problem) = check_batch(batch) {
                    problems.push(problem);
                }
            }
        }
        // The whole file in one batch, every vector after an honest signature.
        let interleaved: Vec<Entry> = entries
            .iter()
            .zip(&honest)
            .flat_map(|(entry, honest)| [honest.clone(), entry.clone()])
            .collect();
        if let Err(problem) = check_batch(&interleaved) {
            problems.push(problem);
        }
        assert!(problems.is_empty(), "{name}: {problems:#?}");
        accepted_everywhere.extend(
            entries
                .into_iter()
                .filter(|entry| entry.verdict == "accept"),
        );
    }
    // Every accepted vector of every suite, torsion components included, in one batch with
    // honest signatures: the batch equation holds (it is cofactored), so no entry is
    // refused and the fallback to single checks is not what makes the batch pass.
    let accepted_count = accepted_everywhere.len();
    assert_eq!(accepted_count, 5 + 88 + 3 + 106);
    accepted_everywhere.extend(honest.iter().take(64).cloned());
    assert_eq!(check_batch(&accepted_everywhere), Ok(()));
}

/// The batch check on entries whose recorded verdict was changed on purpose: it must notice.
#[test]
fn the_batch_check_catches_planted_mistakes() {
    let (entries, _) = batch_entries(&suite("speccheck"));
    let honest = honest_entries(4);
    let accepted = entries
        .iter()
        .find(|entry| entry.verdict == "accept")
        .expect("speccheck has accepted vectors");
    let refused = entries
        .iter()
        .find(|entry| entry.verdict == "SmallOrderKey")
        .expect("speccheck has a small-order key");
    let mut spoiled = [honest[0].clone(), accepted.clone(), refused.clone()];
    assert_eq!(check_batch(&spoiled), Ok(()));
    spoiled[1].verdict = "Mismatch".to_string();
    assert!(
        check_batch(&spoiled).is_err(),
        "an accepted entry recorded as refused"
    );
    spoiled[1].verdict = "accept".to_string();
    spoiled[2].verdict = "SmallOrderR".to_string();
    assert!(
        check_batch(&spoiled).is_err(),
        "a refusal recorded with another reason"
    );
    spoiled[2].verdict = "accept".to_string();
    assert!(
        check_batch(&spoiled).is_err(),
        "a refused entry recorded as accepted"
    );
}

// ---------------------------------------------------------------------------------------
// The vectors tell rules apart
// ---------------------------------------------------------------------------------------

/// The rule of ADR 0002 written again here with curve25519-dalek, each clause of which can
/// be switched off, to show which vectors notice. With every clause on it must agree with
/// the recorded verdicts; it checks canonical encodings by recompression, not by looking
/// at the bytes as the library does.
#[derive(Debug, Clone, Copy)]
struct Rule {
    canonical_encodings: bool,
    small_order_refused: bool,
    canonical_s: bool,
    cofactored: bool,
}

impl Rule {
    const ADR_0002: Rule = Rule {
        canonical_encodings: true,
        small_order_refused: true,
        canonical_s: true,
        cofactored: true,
    };

    fn decode(&self, bytes: &[u8; 32]) -> Result<EdwardsPoint, Problem> {
        let point = CompressedEdwardsY(*bytes)
            .decompress()
            .ok_or(Problem::NotOnCurve)?;
        if self.canonical_encodings && point.compress().to_bytes() != *bytes {
            return Err(Problem::NonCanonical);
        }
        if self.small_order_refused && point.is_small_order() {
            return Err(Problem::SmallOrder);
        }
        Ok(point)
    }

    fn verdict(&self, vector: &Vector) -> &'static str {
        let (Ok(key_bytes), Ok(signature)) = (
            <[u8; 32]>::try_from(vector.raw_key()),
            <[u8; 64]>::try_from(vector.raw_signature()),
        ) else {
            return "HexLength";
        };
        let mut r_bytes = [0u8; 32];
        r_bytes.copy_from_slice(&signature[..32]);
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(&signature[32..]);

        // A non-canonical y that is off the curve is still non-canonical first.
        let non_canonical_y = |bytes: &[u8; 32]| {
            let mut y = *bytes;
            y[31] &= 0x7f;
            let p_minus_1 = {
                let mut p = [0xffu8; 32];
                p[0] = 0xec;
                p[31] = 0x7f;
                p
            };
            y.iter().rev().cmp(p_minus_1.iter().rev()) == std::cmp::Ordering::Greater
        };
        let key = if self.canonical_encodings && non_canonical_y(&key_bytes) {
            Err(Problem::NonCanonical)
        } else {
            self.decode(&key_bytes)
        };
        let key = match key {
            Ok(key) => key,
            Err(problem) => return problem.of_key(),
        };
        let r = if self.canonical_encodings && non_canonical_y(&r_bytes) {
            Err(Problem::NonCanonical)
        } else {
            self.decode(&r_bytes)
        };
        let r = match r {
            Ok(r) => r,
            Err(problem) => return problem.of_r(),
        };
        let s = if self.canonical_s {
            match Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) {
                Some(s) => s,
                None => return "NonCanonicalS",
            }
        } else {
            Scalar::from_bytes_mod_order(s_bytes)
        };
        let mut hasher = Sha512::new();
        hasher.update(r_bytes);
        hasher.update(key_bytes);
        hasher.update(vector.message_bytes());
        let digest: [u8; 64] = hasher.finalize().into();
        let k = Scalar::from_bytes_mod_order_wide(&digest);
        let difference = ED25519_BASEPOINT_POINT * s - r - key * k;
        let holds = if self.cofactored {
            difference.mul_by_cofactor().is_identity()
        } else {
            difference.is_identity()
        };
        if holds { "accept" } else { "Mismatch" }
    }
}

#[derive(Debug, Clone, Copy)]
enum Problem {
    NonCanonical,
    NotOnCurve,
    SmallOrder,
}

impl Problem {
    fn of_key(self) -> &'static str {
        match self {
            Problem::NonCanonical => "NonCanonicalKey",
            Problem::NotOnCurve => "KeyNotOnCurve",
            Problem::SmallOrder => "SmallOrderKey",
        }
    }

    fn of_r(self) -> &'static str {
        match self {
            Problem::NonCanonical => "NonCanonicalR",
            Problem::NotOnCurve => "RNotOnCurve",
            Problem::SmallOrder => "SmallOrderR",
        }
    }
}

/// ed25519-dalek's `verify_strict`: cofactorless, and refusing small-order keys and R.
fn dalek_verify_strict(vector: &Vector) -> &'static str {
    dalek_verdict(vector, |key, message, signature| {
        key.verify_strict(message, signature).is_ok()
    })
}

/// ed25519-dalek's plain `verify`: cofactorless, small-order keys allowed.
fn dalek_verify(vector: &Vector) -> &'static str {
    use ed25519_dalek::Verifier;
    dalek_verdict(vector, |key, message, signature| {
        key.verify(message, signature).is_ok()
    })
}

fn dalek_verdict(
    vector: &Vector,
    accepts: impl Fn(&ed25519_dalek::VerifyingKey, &[u8], &ed25519_dalek::Signature) -> bool,
) -> &'static str {
    let (Ok(key_bytes), Ok(signature_bytes)) = (
        <[u8; 32]>::try_from(vector.raw_key()),
        <[u8; 64]>::try_from(vector.raw_signature()),
    ) else {
        return "HexLength";
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&key_bytes) else {
        return "refused";
    };
    let signature = ed25519_dalek::Signature::from_bytes(&signature_bytes);
    if accepts(&key, &vector.message_bytes(), &signature) {
        "accept"
    } else {
        "refused"
    }
}

/// For each suite, how many vectors a verifier answers otherwise than recorded.
fn disagreement_counts(
    verdict_of: &dyn Fn(&Vector) -> &'static str,
    exact: bool,
) -> BTreeMap<&'static str, Vec<String>> {
    suites()
        .into_iter()
        .map(|(name, file)| (name, disagreements(&file, verdict_of, exact)))
        .collect()
}

fn counts_of(found: &BTreeMap<&'static str, Vec<String>>) -> Vec<(&'static str, usize)> {
    found
        .iter()
        .map(|(name, list)| (*name, list.len()))
        .collect()
}

#[test]
fn the_rule_written_again_agrees_with_every_recorded_verdict() {
    let found = disagreement_counts(&|vector| Rule::ADR_0002.verdict(vector), true);
    assert!(found.values().all(Vec::is_empty), "{found:#?}");
}

/// Each clause of the rule, switched off alone, changes verdicts the vectors record; the
/// expected counts say which suites notice. A clause whose removal no vector noticed would
/// be a clause these suites do not test.
#[test]
fn each_clause_of_the_rule_is_tested_by_the_suites() {
    let weakened = [
        (
            "no canonical-encoding check",
            Rule {
                canonical_encodings: false,
                ..Rule::ADR_0002
            },
            [
                ("cctv", 402),
                ("rfc8032", 0),
                ("speccheck", 4),
                ("wycheproof", 7),
                ("zip215", 84),
            ],
        ),
        (
            "no small-order check",
            Rule {
                small_order_refused: false,
                ..Rule::ADR_0002
            },
            [
                ("cctv", 406),
                ("rfc8032", 0),
                ("speccheck", 3),
                ("wycheproof", 11),
                ("zip215", 112),
            ],
        ),
        (
            "s reduced instead of refused when s >= l",
            Rule {
                canonical_s: false,
                ..Rule::ADR_0002
            },
            [
                ("cctv", 0),
                ("rfc8032", 0),
                ("speccheck", 2),
                ("wycheproof", 9),
                ("zip215", 0),
            ],
        ),
        (
            "cofactorless equation",
            Rule {
                cofactored: false,
                ..Rule::ADR_0002
            },
            [
                ("cctv", 63),
                ("rfc8032", 0),
                ("speccheck", 2),
                ("wycheproof", 0),
                ("zip215", 0),
            ],
        ),
    ];
    for (label, rule, expected) in weakened {
        let found = disagreement_counts(&|vector| rule.verdict(vector), true);
        assert_eq!(counts_of(&found), expected, "{label}: {found:#?}");
    }
}

/// A plain cofactorless verifier answers otherwise on the vectors that separate the
/// equations: ed25519-dalek's `verify_strict` refuses speccheck cases 4 and 5 (A and R with
/// torsion components that do not cancel), which hutong accepts, and the CCTV vectors
/// flagged `low_order_residue` that hutong accepts; its plain `verify` also accepts
/// small-order keys and R, which hutong refuses.
#[test]
fn a_cofactorless_verifier_gives_other_verdicts() {
    let strict = disagreement_counts(&dalek_verify_strict, false);
    assert_eq!(
        strict["speccheck"],
        [
            "case 4: recorded accept, got refused",
            "case 5: recorded accept, got refused"
        ]
    );
    assert_eq!(
        counts_of(&strict),
        [
            ("cctv", 63),
            ("rfc8032", 0),
            ("speccheck", 2),
            ("wycheproof", 0),
            ("zip215", 0),
        ]
    );
    let cctv = suite("cctv");
    for line in &strict["cctv"] {
        let id = line.split(':').next().expect("an id");
        let vector = cctv
            .vectors
            .iter()
            .find(|vector| vector.id == id)
            .expect("a vector");
        let flags = vector.suite["flags"].as_array().expect("flags");
        assert!(
            flags.iter().any(|flag| flag == "low_order_residue"),
            "{id}: {flags:?}"
        );
    }

    // The plain verify answers as the speccheck README's results table says "Dalek" does
    // (V on cases 0-3 and 11, X elsewhere): it differs from hutong on 0, 1, 2, 4, 5, 11.
    let lenient = disagreement_counts(&dalek_verify, false);
    let differing_cases: Vec<&str> = lenient["speccheck"]
        .iter()
        .map(|line| line.split(':').next().expect("an id"))
        .collect();
    assert_eq!(
        differing_cases,
        ["case 0", "case 1", "case 2", "case 4", "case 5", "case 11"]
    );
    assert_eq!(
        counts_of(&lenient),
        [
            ("cctv", 228),
            ("rfc8032", 0),
            ("speccheck", 6),
            ("wycheproof", 0),
            ("zip215", 12),
        ]
    );
}
