//! Witnesses: parties outside the validators (an auditor, a court, another province) that
//! follow a chain's signed checkpoints, check that each new log extends the last one they
//! cosigned, and cosign it. A verifier that requires cosignatures of `k` witnesses it names
//! cannot be shown a log (a *split view*) that those witnesses did not all see as the one
//! append-only log of the chain.
//!
//! The formats are the public C2SP ones where they fit (docs/proofs.md section 14):
//!
//! - the **checkpoint note** (c2sp.org/tlog-checkpoint): three lines, the origin
//!   (`hutong/<chain_id>`, [`origin`]), the log size in decimal and the log root in standard
//!   base64, each ending in a newline ([`CheckpointNote::body`]);
//! - the **cosignature** (c2sp.org/tlog-cosignature, `cosignature/v1`, Ed25519): the witness
//!   signs `"cosignature/v1\ntime <seconds>\n"` followed by the note body
//!   ([`cosigned_message`]); its key id is the first four bytes of
//!   SHA-256(name || 0x0A || 0x04 || public key) ([`key_id`]); as a note signature line it is
//!   `— <name> base64(key id || timestamp, 8 bytes big-endian || signature)`
//!   ([`Cosignature::note_line`]);
//! - the **split-view proof** (`crate::split_view`, `hutong-split-view/v1`): two checkpoints
//!   the validators signed that cannot both be true, checked offline.
//!
//! The key id is a digest of the note format, not of the chain: it is SHA-256 whatever the
//! chain's suite, and never enters a block. The signature is Ed25519, checked by the
//! acceptance rule of the ed25519 suite (ADR 0002), which accepts every signature RFC 8032
//! produces.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hutong_core::crypto::{PublicKey, SecretKey, Signature};
use hutong_core::hash::Hash32;
use hutong_core::log::{ConsistencyProof, LogError};
use hutong_core::suite::Suite;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::limits::{COSIGNATURES_MAX, WITNESS_KEYS_MAX, WITNESS_NAME_BYTES_MAX};

/// The header line of an Ed25519 cosignature's signed message (c2sp.org/tlog-cosignature).
pub const COSIGNATURE_HEADER: &str = "cosignature/v1";
/// The signature type byte of an Ed25519 cosignature key (its key id and its vkey).
pub const COSIGNATURE_KEY_TYPE: u8 = 0x04;
/// The `format` of a verifier's list of witness keys (`hutong verify --witness-keys FILE`).
pub const WITNESS_KEYS_FORMAT: &str = "hutong-witness-keys/v1";
/// The suite whose signature rule checks cosignatures: `cosignature/v1` is Ed25519 whatever
/// the chain's suite.
const COSIGNATURE_SUITE: Suite = Suite::Ed25519Blake3;

/// The checkpoint origin of a chain: `hutong/` followed by its chain id. The prefix keeps a
/// hutong chain's origin apart from other logs' a witness may follow.
pub fn origin(chain_id: &str) -> String {
    format!("hutong/{chain_id}")
}

/// The three lines of a checkpoint (c2sp.org/tlog-checkpoint) that a cosignature signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointNote {
    pub origin: String,
    pub log_size: u64,
    pub log_root: Hash32,
}

impl CheckpointNote {
    /// The note of the log of `log_size` leaves with root `log_root` of the chain `chain_id`.
    pub fn new(chain_id: &str, log_size: u64, log_root: Hash32) -> Self {
        CheckpointNote {
            origin: origin(chain_id),
            log_size,
            log_root,
        }
    }

    /// The note body: origin, size in decimal, root in standard base64, each line ending in
    /// a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.log_size,
            BASE64.encode(self.log_root.0)
        )
    }
}

/// A witness's name and public key, as a verifier or a node is configured with them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessKey {
    /// The key name of the note signature (a schema-less URL is customary, e.g.
    /// `witness.court.example/hutong`): 1 to [`WITNESS_NAME_BYTES_MAX`] bytes, no white
    /// space, no `+`.
    pub name: String,
    pub public_key: PublicKey,
}

impl WitnessKey {
    /// Checks the name's form.
    pub fn check(&self) -> Result<(), WitnessError> {
        check_name(&self.name)
    }

    /// This key's id ([`key_id`]).
    pub fn key_id(&self) -> [u8; 4] {
        key_id(&self.name, &self.public_key)
    }

    /// The key as a C2SP verifier key: `<name>+<key id hex>+<base64(0x04 || public key)>`.
    pub fn vkey(&self) -> String {
        let mut material = Vec::with_capacity(33);
        material.push(COSIGNATURE_KEY_TYPE);
        material.extend_from_slice(self.public_key.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex_of(&self.key_id()),
            BASE64.encode(material)
        )
    }
}

/// A verifier's list of witness keys, as `hutong verify --witness-keys FILE` reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessKeys {
    /// [`WITNESS_KEYS_FORMAT`].
    pub format: String,
    pub witnesses: Vec<WitnessKey>,
}

impl WitnessKeys {
    /// Reads and checks a key list: its format, at most [`WITNESS_KEYS_MAX`] keys, each name
    /// well formed and named once.
    pub fn from_json(bytes: &[u8]) -> Result<Vec<WitnessKey>, WitnessError> {
        let keys: WitnessKeys =
            serde_json::from_slice(bytes).map_err(|error| WitnessError::Json(error.to_string()))?;
        if keys.format != WITNESS_KEYS_FORMAT {
            return Err(WitnessError::UnsupportedFormat { found: keys.format });
        }
        check_keys(&keys.witnesses)?;
        Ok(keys.witnesses)
    }
}

/// Checks a list of witness keys: at most [`WITNESS_KEYS_MAX`], each name well formed and
/// named once.
pub fn check_keys(keys: &[WitnessKey]) -> Result<(), WitnessError> {
    if keys.len() > WITNESS_KEYS_MAX {
        return Err(WitnessError::TooMany {
            what: "witness keys",
            count: keys.len(),
            limit: WITNESS_KEYS_MAX,
        });
    }
    let mut names = BTreeSet::new();
    for key in keys {
        key.check()?;
        if !names.insert(key.name.as_str()) {
            return Err(WitnessError::DuplicateWitness {
                name: key.name.clone(),
            });
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), WitnessError> {
    let bad = |reason: &'static str| WitnessError::BadName {
        name: name.chars().take(WITNESS_NAME_BYTES_MAX).collect(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > WITNESS_NAME_BYTES_MAX {
        return Err(bad("it is longer than the limit"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it holds white space or a control character"));
    }
    if name.contains('+') {
        return Err(bad("it holds a '+'"));
    }
    Ok(())
}

/// The key id of an Ed25519 cosigner: the first four bytes of
/// SHA-256(name || 0x0A || 0x04 || public key) (c2sp.org/tlog-cosignature).
pub fn key_id(name: &str, public_key: &PublicKey) -> [u8; 4] {
    let mut hasher = sha2::Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', COSIGNATURE_KEY_TYPE]);
    hasher.update(public_key.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The message an Ed25519 cosignature signs: `cosignature/v1`, `time <seconds>` (decimal, no
/// leading zeros), each ending in a newline, then the note body.
pub fn cosigned_message(time_seconds: u64, note: &CheckpointNote) -> Vec<u8> {
    format!("{COSIGNATURE_HEADER}\ntime {time_seconds}\n{}", note.body()).into_bytes()
}

/// One witness's cosignature of a checkpoint note, as the API carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cosignature {
    /// The witness's key name.
    pub witness: String,
    /// [`key_id`] of the witness's name and key, hexadecimal (8 characters).
    pub key_id: String,
    /// When the witness cosigned, in seconds since 1970 (at most 2^63 − 1).
    pub time: u64,
    /// Ed25519 over [`cosigned_message`].
    pub signature: Signature,
}

impl Cosignature {
    /// `witness` (its name and secret key) cosigns `note` at `time_seconds`.
    pub fn sign(
        name: &str,
        key: &SecretKey,
        time_seconds: u64,
        note: &CheckpointNote,
    ) -> Result<Self, WitnessError> {
        check_name(name)?;
        if time_seconds > i64::MAX as u64 {
            return Err(WitnessError::TimeOutOfRange { time: time_seconds });
        }
        Ok(Cosignature {
            witness: name.to_owned(),
            key_id: hex_of(&key_id(name, &key.public_key())),
            time: time_seconds,
            signature: COSIGNATURE_SUITE.sign(key, &cosigned_message(time_seconds, note)),
        })
    }

    /// The note signature line: `— <name> base64(key id || timestamp || signature)`.
    pub fn note_line(&self) -> Result<String, WitnessError> {
        let id = parse_key_id(&self.key_id)?;
        let mut bytes = Vec::with_capacity(4 + 8 + 64);
        bytes.extend_from_slice(&id);
        bytes.extend_from_slice(&self.time.to_be_bytes());
        bytes.extend_from_slice(self.signature.as_bytes());
        Ok(format!(
            "\u{2014} {} {}",
            self.witness,
            BASE64.encode(bytes)
        ))
    }

    /// Reads a note signature line back (the inverse of [`Cosignature::note_line`]).
    pub fn from_note_line(line: &str) -> Result<Self, WitnessError> {
        let malformed = |reason: &'static str| WitnessError::MalformedNoteLine { reason };
        let rest = line
            .strip_prefix("\u{2014} ")
            .ok_or_else(|| malformed("it does not start with an em dash and a space"))?;
        let (name, encoded) = rest
            .split_once(' ')
            .ok_or_else(|| malformed("no space between name and signature"))?;
        check_name(name)?;
        let bytes = BASE64
            .decode(encoded.trim_end_matches('\n'))
            .map_err(|_| malformed("the signature is not standard base64"))?;
        if bytes.len() != 4 + 8 + 64 {
            return Err(malformed(
                "the signature is not 76 bytes (key id, timestamp, Ed25519 signature)",
            ));
        }
        let mut time = [0u8; 8];
        time.copy_from_slice(&bytes[4..12]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&bytes[12..]);
        Ok(Cosignature {
            witness: name.to_owned(),
            key_id: hex_of(&bytes[..4]),
            time: u64::from_be_bytes(time),
            signature: Signature(signature),
        })
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn parse_key_id(text: &str) -> Result<[u8; 4], WitnessError> {
    let bad = || WitnessError::MalformedKeyId {
        found: text.chars().take(16).collect(),
    };
    if text.len() != 8 || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut id = [0u8; 4];
    for (index, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * index..2 * index + 2], 16).map_err(|_| bad())?;
    }
    Ok(id)
}

/// Checks one cosignature of `note` by `witness`: the name and the key id are the witness's,
/// the time is within range, and the signature verifies under its key.
pub fn verify_cosignature(
    witness: &WitnessKey,
    cosignature: &Cosignature,
    note: &CheckpointNote,
) -> Result<(), WitnessError> {
    if cosignature.witness != witness.name {
        return Err(WitnessError::WrongWitness {
            expected: witness.name.clone(),
            found: cosignature.witness.clone(),
        });
    }
    let id = parse_key_id(&cosignature.key_id)?;
    if id != witness.key_id() {
        return Err(WitnessError::KeyIdMismatch {
            witness: witness.name.clone(),
            expected: hex_of(&witness.key_id()),
            found: cosignature.key_id.clone(),
        });
    }
    if cosignature.time > i64::MAX as u64 {
        return Err(WitnessError::TimeOutOfRange {
            time: cosignature.time,
        });
    }
    COSIGNATURE_SUITE
        .verify(
            &witness.public_key,
            &cosigned_message(cosignature.time, note),
            &cosignature.signature,
        )
        .map_err(|_| WitnessError::BadSignature {
            witness: witness.name.clone(),
        })
}

/// The `witnessed` section of a licence proof bundle (`?witnesses=k`): a checkpoint note of a
/// log at least as large as the bundle header's, cosigned by witnesses, and the proof that the
/// header's log is a prefix of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Witnessed {
    pub note: CheckpointNote,
    /// At most [`COSIGNATURES_MAX`].
    pub cosignatures: Vec<Cosignature>,
    /// From the bundle header's `log_size` to `note.log_size`.
    pub consistency: ConsistencyProof,
}

/// What a verifier requires of a bundle's witnesses: cosignatures of at least `required` of
/// `keys`, each witness counted once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WitnessPolicy {
    pub required: usize,
    pub keys: Vec<WitnessKey>,
}

/// What a verified `witnessed` section establishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedWitnessed {
    /// The size of the witnessed log (at least the header's).
    pub log_size: u64,
    pub log_root: Hash32,
    /// The named witnesses whose cosignature verified, sorted.
    pub witnesses: Vec<String>,
    pub required: usize,
}

/// Checks a bundle's `witnessed` section against its verified header's log (`header_log_size`
/// leaves, root `header_log_root`, of the chain `chain_id`) and the verifier's policy
/// (docs/proofs.md section 14): the note's origin is the chain's, its log is at least the
/// header's and extends it by the consistency proof, and at least `policy.required` distinct
/// named witnesses cosigned the note. The error names the witnesses that did not cosign and
/// those whose cosignature failed.
pub fn verify_witnessed(
    suite: Suite,
    chain_id: &str,
    header_log_size: u64,
    header_log_root: &Hash32,
    witnessed: Option<&Witnessed>,
    policy: &WitnessPolicy,
) -> Result<VerifiedWitnessed, WitnessError> {
    check_keys(&policy.keys)?;
    if policy.required > policy.keys.len() {
        return Err(WitnessError::PolicyUnsatisfiable {
            required: policy.required,
            named: policy.keys.len(),
        });
    }
    let Some(witnessed) = witnessed else {
        return Err(WitnessError::NotWitnessed {
            required: policy.required,
        });
    };
    let note = &witnessed.note;
    let expected_origin = origin(chain_id);
    if note.origin != expected_origin {
        return Err(WitnessError::OriginMismatch {
            expected: expected_origin,
            found: note.origin.clone(),
        });
    }
    if note.log_size < header_log_size {
        return Err(WitnessError::SizeBelowHeader {
            header_size: header_log_size,
            witnessed_size: note.log_size,
        });
    }
    if witnessed.cosignatures.len() > COSIGNATURES_MAX {
        return Err(WitnessError::TooMany {
            what: "cosignatures",
            count: witnessed.cosignatures.len(),
            limit: COSIGNATURES_MAX,
        });
    }
    let proof = &witnessed.consistency;
    if (proof.first_size, proof.second_size) != (header_log_size, note.log_size) {
        return Err(WitnessError::ConsistencySizes {
            header_size: header_log_size,
            witnessed_size: note.log_size,
            first_size: proof.first_size,
            second_size: proof.second_size,
        });
    }
    proof
        .verify(&suite, header_log_root, &note.log_root)
        .map_err(WitnessError::Consistency)?;

    let mut cosigned = BTreeSet::new();
    let mut failed = BTreeSet::new();
    for key in &policy.keys {
        // Every cosignature under this name is tried; one that verifies counts the witness
        // once, however many it has.
        let mut found = false;
        for cosignature in witnessed
            .cosignatures
            .iter()
            .filter(|cosignature| cosignature.witness == key.name)
        {
            found = true;
            if verify_cosignature(key, cosignature, note).is_ok() {
                cosigned.insert(key.name.clone());
                break;
            }
        }
        if found && !cosigned.contains(&key.name) {
            failed.insert(key.name.clone());
        }
    }
    if cosigned.len() < policy.required {
        let missing = policy
            .keys
            .iter()
            .map(|key| key.name.clone())
            .filter(|name| !cosigned.contains(name) && !failed.contains(name))
            .collect();
        return Err(WitnessError::TooFewCosignatures {
            required: policy.required,
            valid: cosigned.into_iter().collect(),
            missing,
            failed: failed.into_iter().collect(),
        });
    }
    Ok(VerifiedWitnessed {
        log_size: note.log_size,
        log_root: note.log_root,
        witnesses: cosigned.into_iter().collect(),
        required: policy.required,
    })
}

/// Why a cosignature, a `witnessed` section, a witness key list or a split-view document is
/// refused. [`WitnessError::code`] gives a stable name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    #[error("the document is not JSON of the expected shape: {0}")]
    Json(String),
    #[error("unsupported format {found:?}")]
    UnsupportedFormat { found: String },
    #[error("{count} {what}; the limit is {limit}")]
    TooMany {
        what: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("witness name {name:?} is not a key name: {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("witness {name:?} is named twice")]
    DuplicateWitness { name: String },
    #[error("the key id {found:?} is not 8 hexadecimal characters")]
    MalformedKeyId { found: String },
    #[error("the note signature line is malformed: {reason}")]
    MalformedNoteLine { reason: &'static str },
    #[error("the cosignature time {time} is beyond 2^63 - 1")]
    TimeOutOfRange { time: u64 },
    #[error("the cosignature is by {found:?}, not by witness {expected:?}")]
    WrongWitness { expected: String, found: String },
    #[error("the cosignature of {witness:?} carries key id {found}, its key's id is {expected}")]
    KeyIdMismatch {
        witness: String,
        expected: String,
        found: String,
    },
    #[error("the cosignature of {witness:?} does not verify under its key")]
    BadSignature { witness: String },
    #[error(
        "{required} witness cosignatures are required and the document carries no witnessed \
         checkpoint; ask for it with ?witnesses={required}"
    )]
    NotWitnessed { required: usize },
    #[error("{required} witnesses are required but only {named} are named")]
    PolicyUnsatisfiable { required: usize, named: usize },
    #[error("the witnessed checkpoint is of origin {found:?}, this chain's is {expected:?}")]
    OriginMismatch { expected: String, found: String },
    #[error(
        "the witnessed log has {witnessed_size} transactions, fewer than the header's {header_size}"
    )]
    SizeBelowHeader {
        header_size: u64,
        witnessed_size: u64,
    },
    #[error(
        "the consistency proof is from {first_size} to {second_size}; the header's log has \
         {header_size} transactions and the witnessed one {witnessed_size}"
    )]
    ConsistencySizes {
        header_size: u64,
        witnessed_size: u64,
        first_size: u64,
        second_size: u64,
    },
    #[error("the header's log is not a prefix of the witnessed log: {0}")]
    Consistency(LogError),
    #[error(
        "{required} witness cosignatures are required, {} verified ({}); missing: {}; failed: {}",
        valid.len(), names(valid), names(missing), names(failed)
    )]
    TooFewCosignatures {
        required: usize,
        valid: Vec<String>,
        missing: Vec<String>,
        failed: Vec<String>,
    },
    #[error("the document does not show a split view of kind {kind}: {reason}")]
    NotASplitView { kind: &'static str, reason: String },
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

impl WitnessError {
    /// A stable kebab-case name of what failed.
    pub fn code(&self) -> String {
        match self {
            WitnessError::Json(_) => "json".into(),
            WitnessError::UnsupportedFormat { .. } => "unsupported-format".into(),
            WitnessError::TooMany { .. } => "too-many".into(),
            WitnessError::BadName { .. } => "bad-witness-name".into(),
            WitnessError::DuplicateWitness { .. } => "duplicate-witness".into(),
            WitnessError::MalformedKeyId { .. } => "malformed-key-id".into(),
            WitnessError::MalformedNoteLine { .. } => "malformed-note-line".into(),
            WitnessError::TimeOutOfRange { .. } => "cosignature-time-out-of-range".into(),
            WitnessError::WrongWitness { .. } => "wrong-witness".into(),
            WitnessError::KeyIdMismatch { .. } => "key-id-mismatch".into(),
            WitnessError::BadSignature { .. } => "cosignature-bad-signature".into(),
            WitnessError::NotWitnessed { .. } => "not-witnessed".into(),
            WitnessError::PolicyUnsatisfiable { .. } => "witness-policy-unsatisfiable".into(),
            WitnessError::OriginMismatch { .. } => "witness-origin-mismatch".into(),
            WitnessError::SizeBelowHeader { .. } => "witnessed-size-below-header".into(),
            WitnessError::ConsistencySizes { .. } => "witnessed-consistency-sizes".into(),
            WitnessError::Consistency(error) => format!("witnessed-consistency/{}", error.code()),
            WitnessError::TooFewCosignatures { .. } => "too-few-cosignatures".into(),
            WitnessError::NotASplitView { .. } => "not-a-split-view".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VerifiedCheckpoint;
    use hutong_core::testkit::secret;

    fn verify(
        suite: Suite,
        header: &VerifiedCheckpoint,
        witnessed: Option<&Witnessed>,
        policy: &WitnessPolicy,
    ) -> Result<VerifiedWitnessed, WitnessError> {
        verify_witnessed(
            suite,
            &header.chain_id,
            header.log_size,
            &header.log_root,
            witnessed,
            policy,
        )
    }

    fn witness(name: &str) -> (WitnessKey, SecretKey) {
        let key = secret(name);
        (
            WitnessKey {
                name: name.into(),
                public_key: key.public_key(),
            },
            key,
        )
    }

    fn note(size: u64, root: u8) -> CheckpointNote {
        CheckpointNote {
            origin: origin("hutong-test"),
            log_size: size,
            log_root: Hash32([root; 32]),
        }
    }

    /// The key id by the C2SP definition: SHA-256 of "example.com/w1", a newline, 0x04 and
    /// 32 bytes of 0x01, first four bytes; the known answer was computed apart from this
    /// code, with coreutils `sha256sum` over the same bytes.
    #[test]
    fn key_id_is_the_first_four_bytes_of_sha256_over_name_newline_type_key() {
        let key = PublicKey([1u8; 32]);
        let mut input = b"example.com/w1\n\x04".to_vec();
        input.extend_from_slice(&[1u8; 32]);
        let digest: [u8; 32] = sha2::Sha256::digest(&input).into();
        assert_eq!(key_id("example.com/w1", &key), digest[..4]);
        assert_eq!(hex_of(&key_id("example.com/w1", &key)), KNOWN_KEY_ID);
    }

    /// `printf 'example.com/w1\n\004' ; printf '\001%.0s' $(seq 32)` piped to `sha256sum`,
    /// first 8 hexadecimal characters.
    const KNOWN_KEY_ID: &str = "d0637a92";

    /// Vectors computed apart from this code (`scripts/vectors/witness.py`, with Python's
    /// `cryptography` Ed25519 and `hashlib`): the same notes, key ids, messages, signatures,
    /// note lines and vkeys, and every signature accepted.
    #[test]
    fn independent_vectors_match() {
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../tests/vectors/witness.json")).unwrap();
        let cases = vectors["cases"].as_array().unwrap();
        assert!(cases.len() >= 3);
        let hex32 = |value: &serde_json::Value| -> [u8; 32] {
            let text = value.as_str().unwrap();
            let mut bytes = [0u8; 32];
            for (index, byte) in bytes.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&text[2 * index..2 * index + 2], 16).unwrap();
            }
            bytes
        };
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let key = SecretKey::from_seed(hex32(&case["seed"]));
            assert_eq!(key.public_key().0, hex32(&case["public_key"]), "{name}");
            let witness = WitnessKey {
                name: name.into(),
                public_key: key.public_key(),
            };
            let note = CheckpointNote::new(
                case["chain_id"].as_str().unwrap(),
                case["log_size"].as_u64().unwrap(),
                Hash32(hex32(&case["log_root"])),
            );
            let time = case["time"].as_u64().unwrap();
            assert_eq!(note.body(), case["note_body"].as_str().unwrap());
            assert_eq!(
                String::from_utf8(cosigned_message(time, &note)).unwrap(),
                case["signed_message"].as_str().unwrap()
            );
            assert_eq!(hex_of(&witness.key_id()), case["key_id"].as_str().unwrap());
            assert_eq!(witness.vkey(), case["vkey"].as_str().unwrap());
            let ours = Cosignature::sign(name, &key, time, &note).unwrap();
            assert_eq!(ours.signature.to_hex(), case["signature"].as_str().unwrap());
            assert_eq!(
                ours.note_line().unwrap(),
                case["note_line"].as_str().unwrap()
            );
            let theirs = Cosignature::from_note_line(case["note_line"].as_str().unwrap()).unwrap();
            verify_cosignature(&witness, &theirs, &note).unwrap();
        }
    }

    #[test]
    fn note_body_and_signed_message_follow_the_c2sp_texts() {
        let note = CheckpointNote {
            origin: "hutong/hutong-test".into(),
            log_size: 20852163,
            log_root: Hash32([0; 32]),
        };
        assert_eq!(
            note.body(),
            "hutong/hutong-test\n20852163\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
        );
        assert_eq!(
            String::from_utf8(cosigned_message(1679315147, &note)).unwrap(),
            "cosignature/v1\ntime 1679315147\nhutong/hutong-test\n20852163\n\
             AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
        );
    }

    #[test]
    fn a_cosignature_round_trips_through_its_note_line_and_verifies() {
        let (key, secret_key) = witness("witness.court.example/hutong");
        let note = note(42, 7);
        let cosignature = Cosignature::sign(&key.name, &secret_key, 1_700_000_000, &note).unwrap();
        assert_eq!(cosignature.key_id, hex_of(&key.key_id()));
        verify_cosignature(&key, &cosignature, &note).unwrap();
        let line = cosignature.note_line().unwrap();
        assert!(line.starts_with("\u{2014} witness.court.example/hutong "));
        let read = Cosignature::from_note_line(&line).unwrap();
        assert_eq!(read, cosignature);
        // The signature line carries key id, timestamp and signature: 76 bytes.
        let encoded = line.rsplit(' ').next().unwrap();
        assert_eq!(BASE64.decode(encoded).unwrap().len(), 76);
        // The serde form round-trips too.
        let json = serde_json::to_string(&cosignature).unwrap();
        assert_eq!(
            serde_json::from_str::<Cosignature>(&json).unwrap(),
            cosignature
        );
        assert!(key.vkey().starts_with("witness.court.example/hutong+"));
    }

    #[test]
    fn a_tampered_cosignature_is_refused() {
        let (key, secret_key) = witness("w1.example");
        let note = note(42, 7);
        let cosignature = Cosignature::sign(&key.name, &secret_key, 1_700_000_000, &note).unwrap();
        let mut flipped = cosignature.clone();
        flipped.signature.0[10] ^= 1;
        assert_eq!(
            verify_cosignature(&key, &flipped, &note)
                .unwrap_err()
                .code(),
            "cosignature-bad-signature"
        );
        let mut retimed = cosignature.clone();
        retimed.time += 1;
        assert!(verify_cosignature(&key, &retimed, &note).is_err());
        // Another note (another root, another size) is not what was cosigned.
        assert!(verify_cosignature(&key, &cosignature, &self::note(42, 8)).is_err());
        assert!(verify_cosignature(&key, &cosignature, &self::note(43, 7)).is_err());
        let mut renamed = cosignature.clone();
        renamed.key_id = "00000000".into();
        assert_eq!(
            verify_cosignature(&key, &renamed, &note)
                .unwrap_err()
                .code(),
            "key-id-mismatch"
        );
        // Signed by another key under the same name.
        let (_, other) = witness("someone-else");
        let forged = Cosignature::sign(&key.name, &other, 1_700_000_000, &note).unwrap();
        assert!(verify_cosignature(&key, &forged, &note).is_err());
    }

    #[test]
    fn bad_names_are_refused() {
        for name in ["", "a b", "a+b", "tab\there"] {
            assert_eq!(
                check_name(name).unwrap_err().code(),
                "bad-witness-name",
                "{name:?}"
            );
        }
        assert!(check_name(&"x".repeat(WITNESS_NAME_BYTES_MAX + 1)).is_err());
    }

    fn log_root(suite: Suite, size: u64) -> Hash32 {
        hutong_core::testkit::counted_log_root(suite, size)
    }

    fn consistency(suite: Suite, first: u64, second: u64) -> ConsistencyProof {
        hutong_core::testkit::counted_log_consistency(suite, first, second)
    }

    fn verified(size: u64, root: Hash32) -> VerifiedCheckpoint {
        VerifiedCheckpoint {
            chain_id: "hutong-test".into(),
            height: 5,
            time: 0,
            block_hash: Hash32([9; 32]),
            state_root: Hash32([8; 32]),
            log_size: size,
            log_root: root,
            validator_changes: 0,
        }
    }

    #[test]
    fn k_of_n_counts_distinct_named_witnesses() {
        let suite = Suite::Ed25519Blake3;
        let header = verified(5, log_root(suite, 5));
        let note = CheckpointNote {
            origin: origin("hutong-test"),
            log_size: 9,
            log_root: log_root(suite, 9),
        };
        let (a, a_key) = witness("a.example");
        let (b, b_key) = witness("b.example");
        let (c, _) = witness("c.example");
        let (stranger, stranger_key) = witness("stranger.example");
        let sign = |key: &WitnessKey, secret: &SecretKey, time: u64| {
            Cosignature::sign(&key.name, secret, time, &note).unwrap()
        };
        let policy = |required: usize| WitnessPolicy {
            required,
            keys: vec![a.clone(), b.clone(), c.clone()],
        };
        let witnessed = |cosignatures: Vec<Cosignature>| Witnessed {
            note: note.clone(),
            cosignatures,
            consistency: consistency(suite, 5, 9),
        };
        // a twice counts once: two of three are not met by a alone.
        let twice = witnessed(vec![sign(&a, &a_key, 1), sign(&a, &a_key, 2)]);
        let error = verify(suite, &header, Some(&twice), &policy(2)).unwrap_err();
        assert_eq!(error.code(), "too-few-cosignatures");
        let message = error.to_string();
        assert!(
            message.contains("missing: b.example, c.example"),
            "{message}"
        );
        assert!(
            verify(suite, &header, Some(&twice), &policy(1)).is_ok(),
            "one of three is met by a"
        );
        // A stranger's cosignature does not count.
        let with_stranger = witnessed(vec![sign(&a, &a_key, 1), sign(&stranger, &stranger_key, 1)]);
        assert!(verify(suite, &header, Some(&with_stranger), &policy(2)).is_err());
        // b's cosignature with a flipped bit is named as failed.
        let mut bad = sign(&b, &b_key, 1);
        bad.signature.0[0] ^= 1;
        let error = verify(
            suite,
            &header,
            Some(&witnessed(vec![sign(&a, &a_key, 1), bad])),
            &policy(2),
        )
        .unwrap_err();
        assert!(error.to_string().contains("failed: b.example"), "{error}");
        // a and b: two of three.
        let two = witnessed(vec![sign(&a, &a_key, 1), sign(&b, &b_key, 1)]);
        let ok = verify(suite, &header, Some(&two), &policy(2)).unwrap();
        assert_eq!(ok.witnesses, ["a.example", "b.example"]);
        assert_eq!(ok.log_size, 9);
        // Three of three required, two given.
        assert!(verify(suite, &header, Some(&two), &policy(3)).is_err());
        // No section at all.
        assert_eq!(
            verify(suite, &header, None, &policy(1)).unwrap_err().code(),
            "not-witnessed"
        );
    }

    #[test]
    fn a_forged_consistency_or_a_foreign_note_is_caught() {
        let suite = Suite::Ed25519Blake3;
        let header = verified(5, log_root(suite, 5));
        let (a, a_key) = witness("a.example");
        let policy = WitnessPolicy {
            required: 1,
            keys: vec![a.clone()],
        };
        let build = |note: CheckpointNote, proof: ConsistencyProof| {
            let cosignature = Cosignature::sign(&a.name, &a_key, 1, &note).unwrap();
            Witnessed {
                note,
                cosignatures: vec![cosignature],
                consistency: proof,
            }
        };
        let good_note = CheckpointNote {
            origin: origin("hutong-test"),
            log_size: 9,
            log_root: log_root(suite, 9),
        };
        assert!(
            verify(
                suite,
                &header,
                Some(&build(good_note.clone(), consistency(suite, 5, 9))),
                &policy
            )
            .is_ok()
        );
        // A cosigned log the header's is not a prefix of: another log of 9 leaves.
        let other = CheckpointNote {
            log_root: Hash32([3; 32]),
            ..good_note.clone()
        };
        let error = verify(
            suite,
            &header,
            Some(&build(other, consistency(suite, 5, 9))),
            &policy,
        )
        .unwrap_err();
        assert!(
            error.code().starts_with("witnessed-consistency/"),
            "{error}"
        );
        // A proof with one hash changed.
        let mut forged = consistency(suite, 5, 9);
        forged.path[0].0[0] ^= 1;
        assert!(
            verify(
                suite,
                &header,
                Some(&build(good_note.clone(), forged)),
                &policy
            )
            .unwrap_err()
            .code()
            .starts_with("witnessed-consistency/")
        );
        // Another chain's origin.
        let foreign = CheckpointNote {
            origin: origin("another-chain"),
            ..good_note.clone()
        };
        assert_eq!(
            verify(
                suite,
                &header,
                Some(&build(foreign, consistency(suite, 5, 9))),
                &policy
            )
            .unwrap_err()
            .code(),
            "witness-origin-mismatch"
        );
        // A witnessed log smaller than the header's.
        let smaller = CheckpointNote {
            log_size: 4,
            log_root: log_root(suite, 4),
            ..good_note
        };
        assert_eq!(
            verify(
                suite,
                &header,
                Some(&build(smaller, consistency(suite, 4, 5))),
                &policy
            )
            .unwrap_err()
            .code(),
            "witnessed-size-below-header"
        );
    }
}
