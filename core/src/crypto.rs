//! Keys, signatures, and the one rule by which every node decides whether a signature is
//! acceptable.
//!
//! Signatures are ed25519 (RFC 8032) over a domain-separated message
//! ([`signing_message`]). Acceptance is decided by a single predicate, written down in
//! `docs/adr/0002-signature-verification.md`, that [`verify`] (one signature) and
//! [`verify_batch`] (many signatures, one multi-scalar equation) compute identically:
//!
//! 1. the public key is the canonical encoding of a curve point that is not of small order;
//! 2. R is the canonical encoding of a curve point that is not of small order;
//! 3. s is a canonical scalar (s < l);
//! 4. `[8]([s]B - R - [k]A)` is the identity, with `k = SHA-512(R || A || M) mod l`.
//!
//! The equation is the cofactored one. ed25519-dalek's `verify_strict` checks the
//! cofactorless equation `[s]B - [k]A == R`, and no batch equation with random coefficients
//! can reproduce that check exactly: a signature whose R or key carries a small torsion
//! component could pass or fail a batch depending on its neighbours. Multiplying by the
//! cofactor removes every torsion component, so a batch accepts exactly when every entry
//! would be accepted alone (except with probability 2^-128, see [`verify_batch`]), whatever
//! else the batch holds, on every node.
//!
//! Batch coefficients come from blake3 over the whole batch, not from a random generator:
//! the ledger reads no global random source, and the outcome must be reproducible offline.
//!
//! ```
//! use hutong_core::crypto::{SecretKey, TX_DOMAIN, signing_message, verify, verify_batch};
//!
//! let key = SecretKey::from_seed([7; 32]);
//! let public_key = key.public_key();
//! public_key.validate()?;
//! let message = signing_message(TX_DOMAIN, "hutong-testnet", b"canonical transaction bytes")?;
//! let signature = key.sign(&message);
//! verify(&public_key, &message, &signature)?;
//! assert_eq!(verify_batch(&[(&public_key, message.as_slice(), &signature)]), Ok(()));
//! # Ok::<(), hutong_core::crypto::SignatureError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::Signer;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha512};

/// Domain of a transaction signature.
pub const TX_DOMAIN: &str = "hutong/tx/v1";
/// Domain of the issuer's signature carried in a licence QR code.
pub const QR_DOMAIN: &str = "hutong/qr/v1";
/// Domain of a validator's signature on a log checkpoint (block header).
pub const CHECKPOINT_DOMAIN: &str = "hutong/checkpoint/v1";

/// The longest chain id, in bytes; its length is written in one byte of the signing message.
pub const CHAIN_ID_BYTES_MAX: usize = 64;

/// The most signatures checked by one batch equation; [`verify_batch`] splits longer inputs.
/// Past a few thousand points the multi-scalar multiplication gains little per signature,
/// while the memory it holds grows linearly.
pub const BATCH_ENTRIES_MAX: usize = 4096;

/// Length of a public key, in bytes.
pub const PUBLIC_KEY_BYTES: usize = 32;
/// Length of a signature (R then s), in bytes.
pub const SIGNATURE_BYTES: usize = 64;

/// Tag of the blake3 hash that derives batch coefficients. Changing the derivation is a
/// consensus change, hence the version.
const BATCH_COEFFICIENT_TAG: &[u8] = b"hutong/batch-verify/v1";

const _: () = assert!(CHAIN_ID_BYTES_MAX <= u8::MAX as usize);
const _: () = assert!(BATCH_ENTRIES_MAX >= 1);

/// Why a signature, a key or a signing input was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "public key is not the canonical encoding of a curve point (y >= p or a negative zero x)"
    )]
    NonCanonicalKey,
    #[error("public key does not decode to a point of the ed25519 curve")]
    KeyNotOnCurve,
    #[error(
        "public key is a point of small order (it would let one signature verify for many messages)"
    )]
    SmallOrderKey,
    #[error(
        "signature R is not the canonical encoding of a curve point (y >= p or a negative zero x)"
    )]
    NonCanonicalR,
    #[error("signature R does not decode to a point of the ed25519 curve")]
    RNotOnCurve,
    #[error("signature R is a point of small order")]
    SmallOrderR,
    #[error("signature s is not a canonical scalar (s >= l, the group order)")]
    NonCanonicalS,
    #[error(
        "signature does not verify: [8]([s]B - R - [k]A) is not the identity for this key and message"
    )]
    Mismatch,
    #[error("a chain id is 1 to {CHAIN_ID_BYTES_MAX} bytes, got {length_bytes}")]
    ChainIdLength { length_bytes: usize },
    #[error("a {what} is {expected} hexadecimal characters, got {found}")]
    HexLength {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("a {what} is hexadecimal (0-9, a-f), found {found:?}")]
    NotHex { what: &'static str, found: char },
}

/// An ed25519 public key: the 32-byte compressed point, as it appears on the ledger.
///
/// Holding a `PublicKey` says nothing about its validity; [`PublicKey::validate`] checks it
/// the way [`verify`] does, and should be called before a key is registered.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; PUBLIC_KEY_BYTES]);

/// An ed25519 signature: R (32 bytes, a compressed point) then s (32 bytes, a scalar).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signature(pub [u8; SIGNATURE_BYTES]);

impl PublicKey {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_BYTES] {
        &self.0
    }

    /// Lowercase hexadecimal, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The checks [`verify`] applies to the key alone: a canonical encoding of a curve point
    /// that is not of small order. A key that fails here can never sign anything acceptable.
    pub fn validate(&self) -> Result<(), SignatureError> {
        decode_key(&self.0).map(|_| ())
    }
}

impl Signature {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; SIGNATURE_BYTES] {
        &self.0
    }

    /// Lowercase hexadecimal, 128 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The encoding of R, the first half.
    pub fn r_bytes(&self) -> [u8; 32] {
        let (r, _) = self.0.split_at(32);
        let mut out = [0u8; 32];
        out.copy_from_slice(r);
        out
    }

    /// The encoding of s, the second half.
    pub fn s_bytes(&self) -> [u8; 32] {
        let (_, s) = self.0.split_at(32);
        let mut out = [0u8; 32];
        out.copy_from_slice(s);
        out
    }
}

/// A signing key. Its `Debug` shows the public key only, so that logging a structure that
/// holds one cannot leak it.
#[derive(Clone)]
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    /// The key whose RFC 8032 secret (seed) is `seed`. Callers make new keys from 32 bytes of
    /// operating-system randomness; this module reads no random source itself.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SecretKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The seed this key was made from, for writing the key to its file.
    pub fn to_seed_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// The RFC 8032 signature of `message` (deterministic: the same key and message give the
    /// same signature). Build `message` with [`signing_message`].
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// The bytes that are signed: `domain || len(chain_id) as one byte || chain_id || payload`.
///
/// `domain` is one of this module's `*_DOMAIN` constants (or another constant of the same
/// shape); no domain may be a prefix of another, which is why each ends in a version.
/// The chain id is 1 to [`CHAIN_ID_BYTES_MAX`] bytes; its length byte keeps a chain id
/// from running into the payload.
pub fn signing_message(
    domain: &str,
    chain_id: &str,
    payload: &[u8],
) -> Result<Vec<u8>, SignatureError> {
    debug_assert!(
        !domain.is_empty(),
        "signing domains are non-empty constants"
    );
    let length_bytes = chain_id.len();
    let length_byte = match u8::try_from(length_bytes) {
        Ok(byte) if (1..=CHAIN_ID_BYTES_MAX).contains(&length_bytes) => byte,
        _ => return Err(SignatureError::ChainIdLength { length_bytes }),
    };
    let mut message = Vec::with_capacity(domain.len() + 1 + length_bytes + payload.len());
    message.extend_from_slice(domain.as_bytes());
    message.push(length_byte);
    message.extend_from_slice(chain_id.as_bytes());
    message.extend_from_slice(payload);
    Ok(message)
}

/// Checks `signature` on `message` under `public_key` by hutong's rule (see the module
/// documentation). The checks run in the order of the error variants: key, R, s, equation;
/// the first that fails is returned.
pub fn verify(
    public_key: &PublicKey,
    message: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    let key = decode_key(&public_key.0)?;
    let parts = decode_signature(signature)?;
    let challenge = challenge(&parts.r_bytes, &public_key.0, message);
    if cofactored_equation_holds(&key, &parts.r, &parts.s, &challenge) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Checks many signatures at once: `Ok(())` if every entry is acceptable, otherwise the
/// indexes of the refused entries in increasing order. [`verify_batch_with_errors`] also says
/// why each was refused.
///
/// The result is the result of calling [`verify`] on each entry, except that a batch
/// equation may accept a set holding a bad signature with probability at most 2^-128
/// (coefficients are 128 bits). Entries that fail the encoding checks are set aside first;
/// the rest go into one equation per [`BATCH_ENTRIES_MAX`] entries; when an equation fails,
/// each of its entries is checked alone, reusing the points already decoded, so the failures
/// are named exactly. An empty input is `Ok(())`.
pub fn verify_batch(items: &[(&PublicKey, &[u8], &Signature)]) -> Result<(), Vec<usize>> {
    verify_batch_with_errors(items)
        .map_err(|failures| failures.iter().map(|failure| failure.index).collect())
}

/// [`verify_batch`], with the error [`verify`] returns for each refused entry.
pub fn verify_batch_with_errors(
    items: &[(&PublicKey, &[u8], &Signature)],
) -> Result<(), Vec<BatchFailure>> {
    let mut failures = Vec::new();
    let mut first_index = 0;
    for chunk in items.chunks(BATCH_ENTRIES_MAX) {
        verify_chunk(chunk, first_index, &mut failures);
        first_index += chunk.len();
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

/// One refused entry of a batch: its index in the input and the reason [`verify`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchFailure {
    pub index: usize,
    pub error: SignatureError,
}

/// A signature that passed the encoding checks, with what the equation needs.
struct Prepared {
    index: usize,
    key_slot: usize,
    r: EdwardsPoint,
    r_bytes: [u8; 32],
    s: Scalar,
    challenge: Scalar,
}

/// A chunk after the encoding checks: the decoded distinct keys, the entries that go into
/// the equation, and the refusals found so far (one slot per entry).
struct PreparedChunk {
    key_points: Vec<EdwardsPoint>,
    prepared: Vec<Prepared>,
    outcomes: Vec<Option<SignatureError>>,
}

fn prepare_chunk(chunk: &[(&PublicKey, &[u8], &Signature)]) -> PreparedChunk {
    // One authority signs many transactions: decoding each distinct key once, and summing
    // the coefficients of equal keys, shortens both the decoding and the multiplication.
    let mut key_slots: BTreeMap<[u8; 32], Result<usize, SignatureError>> = BTreeMap::new();
    let mut key_points: Vec<EdwardsPoint> = Vec::new();
    let mut outcomes: Vec<Option<SignatureError>> = vec![None; chunk.len()];
    let mut prepared: Vec<Prepared> = Vec::with_capacity(chunk.len());

    for (index, (public_key, message, signature)) in chunk.iter().enumerate() {
        let key_slot = *key_slots.entry(public_key.0).or_insert_with(|| {
            decode_key(&public_key.0).map(|point| {
                key_points.push(point);
                key_points.len() - 1
            })
        });
        let checked =
            key_slot.and_then(|slot| decode_signature(signature).map(|parts| (slot, parts)));
        match checked {
            Ok((key_slot, parts)) => prepared.push(Prepared {
                index,
                key_slot,
                challenge: challenge(&parts.r_bytes, &public_key.0, message),
                r: parts.r,
                r_bytes: parts.r_bytes,
                s: parts.s,
            }),
            Err(error) => {
                if let Some(outcome) = outcomes.get_mut(index) {
                    *outcome = Some(error);
                }
            }
        }
    }
    PreparedChunk {
        key_points,
        prepared,
        outcomes,
    }
}

/// Verifies at most [`BATCH_ENTRIES_MAX`] entries, appending failures (indexes offset by
/// `first_index`) in input order.
fn verify_chunk(
    chunk: &[(&PublicKey, &[u8], &Signature)],
    first_index: usize,
    failures: &mut Vec<BatchFailure>,
) {
    debug_assert!(chunk.len() <= BATCH_ENTRIES_MAX);
    let PreparedChunk {
        key_points,
        prepared,
        mut outcomes,
    } = prepare_chunk(chunk);
    let batch_holds = match prepared.as_slice() {
        [] => true,
        // One signature: the batch equation would be the single one times a coefficient.
        [only] => single_holds(only, &key_points),
        _ => batch_equation_holds(chunk, &prepared, &key_points),
    };
    if !batch_holds {
        for entry in &prepared {
            if !single_holds(entry, &key_points)
                && let Some(outcome) = outcomes.get_mut(entry.index)
            {
                *outcome = Some(SignatureError::Mismatch);
            }
        }
    }

    failures.extend(
        outcomes
            .into_iter()
            .enumerate()
            .filter_map(|(index, outcome)| {
                outcome.map(|error| BatchFailure {
                    index: first_index + index,
                    error,
                })
            }),
    );
}

fn single_holds(entry: &Prepared, key_points: &[EdwardsPoint]) -> bool {
    match key_points.get(entry.key_slot) {
        Some(key) => cofactored_equation_holds(key, &entry.r, &entry.s, &entry.challenge),
        None => {
            debug_assert!(false, "every prepared entry has a decoded key");
            false
        }
    }
}

/// `[8](-(sum z_i s_i) B + sum z_i R_i + sum_keys (sum of z_i k_i for that key) A)` is the
/// identity, with the z_i derived from the whole batch.
fn batch_equation_holds(
    chunk: &[(&PublicKey, &[u8], &Signature)],
    prepared: &[Prepared],
    key_points: &[EdwardsPoint],
) -> bool {
    let coefficients = batch_coefficients(chunk, prepared);
    let mut basepoint_coefficient = Scalar::ZERO;
    let mut key_coefficients = vec![Scalar::ZERO; key_points.len()];
    for (entry, coefficient) in prepared.iter().zip(&coefficients) {
        basepoint_coefficient -= coefficient * entry.s;
        if let Some(key_coefficient) = key_coefficients.get_mut(entry.key_slot) {
            *key_coefficient += coefficient * entry.challenge;
        }
    }
    let scalars = std::iter::once(&basepoint_coefficient)
        .chain(coefficients.iter())
        .chain(key_coefficients.iter());
    let points = std::iter::once(&curve25519_dalek::constants::ED25519_BASEPOINT_POINT)
        .chain(prepared.iter().map(|entry| &entry.r))
        .chain(key_points.iter());
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

/// The 128-bit coefficient z_i of each prepared entry: blake3, under its own tag, over every
/// prepared entry's (A, R, s, len(M), M) in order, read as an output stream 16 bytes per
/// entry. A forger would have to choose the whole batch before learning its coefficients.
fn batch_coefficients(
    chunk: &[(&PublicKey, &[u8], &Signature)],
    prepared: &[Prepared],
) -> Vec<Scalar> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[BATCH_COEFFICIENT_TAG.len() as u8]);
    hasher.update(BATCH_COEFFICIENT_TAG);
    hasher.update(&(prepared.len() as u64).to_le_bytes());
    for entry in prepared {
        if let Some((public_key, message, _)) = chunk.get(entry.index) {
            hasher.update(&public_key.0);
            hasher.update(&entry.r_bytes);
            hasher.update(entry.s.as_bytes());
            hasher.update(&(message.len() as u64).to_le_bytes());
            hasher.update(message);
        }
    }
    let mut stream = hasher.finalize_xof();
    prepared
        .iter()
        .map(|_| {
            let mut bytes = [0u8; 16];
            stream.fill(&mut bytes);
            Scalar::from(u128::from_le_bytes(bytes))
        })
        .collect()
}

/// The decoded halves of a signature that passed the encoding checks.
struct SignatureParts {
    r: EdwardsPoint,
    r_bytes: [u8; 32],
    s: Scalar,
}

fn decode_key(bytes: &[u8; 32]) -> Result<EdwardsPoint, SignatureError> {
    if !is_canonical_point_encoding(bytes) {
        return Err(SignatureError::NonCanonicalKey);
    }
    let point = CompressedEdwardsY(*bytes)
        .decompress()
        .ok_or(SignatureError::KeyNotOnCurve)?;
    if point.is_small_order() {
        return Err(SignatureError::SmallOrderKey);
    }
    Ok(point)
}

fn decode_signature(signature: &Signature) -> Result<SignatureParts, SignatureError> {
    let r_bytes = signature.r_bytes();
    if !is_canonical_point_encoding(&r_bytes) {
        return Err(SignatureError::NonCanonicalR);
    }
    let r = CompressedEdwardsY(r_bytes)
        .decompress()
        .ok_or(SignatureError::RNotOnCurve)?;
    if r.is_small_order() {
        return Err(SignatureError::SmallOrderR);
    }
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(signature.s_bytes()))
        .ok_or(SignatureError::NonCanonicalS)?;
    Ok(SignatureParts { r, r_bytes, s })
}

/// k = SHA-512(R || A || M) reduced mod l (RFC 8032, section 5.1.7).
fn challenge(r_bytes: &[u8; 32], key_bytes: &[u8; 32], message: &[u8]) -> Scalar {
    let mut hasher = Sha512::new();
    hasher.update(r_bytes);
    hasher.update(key_bytes);
    hasher.update(message);
    let digest: [u8; 64] = hasher.finalize().into();
    Scalar::from_bytes_mod_order_wide(&digest)
}

/// `[8]([s]B - R - [k]A)` is the identity.
fn cofactored_equation_holds(
    key: &EdwardsPoint,
    r: &EdwardsPoint,
    s: &Scalar,
    challenge: &Scalar,
) -> bool {
    let s_b_minus_k_a = EdwardsPoint::vartime_double_scalar_mul_basepoint(challenge, &-key, s);
    (s_b_minus_k_a - r).mul_by_cofactor().is_identity()
}

/// Whether `bytes` is the only encoding of the point it names (RFC 8032, section 5.1.3):
/// y below p = 2^255 - 19, and the sign bit clear when x is zero. The decoder accepts the
/// other encodings too (it reduces y mod p and flips a zero x to itself), so a point would
/// otherwise have more than one accepted spelling, and a signed key or R more than one form.
fn is_canonical_point_encoding(bytes: &[u8; 32]) -> bool {
    let sign_bit_set = bytes[31] & 0x80 != 0;
    let top_byte = bytes[31] & 0x7f;
    let middle_all_ones = bytes[1..31].iter().all(|&byte| byte == 0xff);
    let middle_all_zeros = bytes[1..31].iter().all(|&byte| byte == 0);
    // p = 0x7fff...ffed in little-endian: y >= p exactly when the top byte is 0x7f, the
    // middle bytes are 0xff and the low byte is at least 0xed.
    let y_at_least_p = top_byte == 0x7f && middle_all_ones && bytes[0] >= 0xed;
    // x is zero only where y^2 = 1, that is y = 1 or y = p - 1.
    let y_is_one = bytes[0] == 0x01 && middle_all_zeros && top_byte == 0;
    let y_is_p_minus_one = bytes[0] == 0xec && middle_all_ones && top_byte == 0x7f;
    !(y_at_least_p || (sign_bit_set && (y_is_one || y_is_p_minus_one)))
}

fn parse_hex<const N: usize>(text: &str, what: &'static str) -> Result<[u8; N], SignatureError> {
    if text.len() != 2 * N {
        return Err(SignatureError::HexLength {
            what,
            expected: 2 * N,
            found: text.chars().count(),
        });
    }
    if let Some(found) = text.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(SignatureError::NotHex { what, found });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|_| SignatureError::HexLength {
        what,
        expected: 2 * N,
        found: text.len(),
    })?;
    Ok(out)
}

impl FromStr for PublicKey {
    type Err = SignatureError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_hex(text, "public key").map(PublicKey)
    }
}

impl FromStr for Signature {
    type Err = SignatureError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_hex(text, "signature").map(Signature)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

impl From<[u8; PUBLIC_KEY_BYTES]> for PublicKey {
    fn from(bytes: [u8; PUBLIC_KEY_BYTES]) -> Self {
        PublicKey(bytes)
    }
}

impl From<[u8; SIGNATURE_BYTES]> for Signature {
    fn from(bytes: [u8; SIGNATURE_BYTES]) -> Self {
        Signature(bytes)
    }
}

// JSON carries keys and signatures as lowercase hex; binary formats carry the raw bytes as a
// fixed-length tuple (no length prefix), like `Hash32`.

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; PUBLIC_KEY_BYTES]>::deserialize(deserializer).map(PublicKey)
        }
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            let mut tuple = serializer.serialize_tuple(SIGNATURE_BYTES)?;
            for byte in &self.0 {
                tuple.serialize_element(byte)?;
            }
            tuple.end()
        }
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            deserializer.deserialize_tuple(SIGNATURE_BYTES, SignatureBytesVisitor)
        }
    }
}

struct SignatureBytesVisitor;

impl<'de> serde::de::Visitor<'de> for SignatureBytesVisitor {
    type Value = Signature;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SIGNATURE_BYTES} signature bytes")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Signature, A::Error> {
        let mut bytes = [0u8; SIGNATURE_BYTES];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = seq
                .next_element()?
                .ok_or_else(|| serde::de::Error::invalid_length(index, &self))?;
        }
        Ok(Signature(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::traits::Identity;
    use proptest::prelude::*;

    /// The group order l, little-endian.
    const GROUP_ORDER: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x10,
    ];

    fn name(result: Result<(), SignatureError>) -> &'static str {
        match result {
            Ok(()) => "ok",
            Err(SignatureError::NonCanonicalKey) => "NonCanonicalKey",
            Err(SignatureError::KeyNotOnCurve) => "KeyNotOnCurve",
            Err(SignatureError::SmallOrderKey) => "SmallOrderKey",
            Err(SignatureError::NonCanonicalR) => "NonCanonicalR",
            Err(SignatureError::RNotOnCurve) => "RNotOnCurve",
            Err(SignatureError::SmallOrderR) => "SmallOrderR",
            Err(SignatureError::NonCanonicalS) => "NonCanonicalS",
            Err(SignatureError::Mismatch) => "Mismatch",
            Err(other) => panic!("not a verification outcome: {other:?}"),
        }
    }

    /// What ed25519-dalek's `verify_strict` says of the same input.
    fn dalek_strict(public_key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&public_key.0) else {
            return false;
        };
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &signature).is_ok()
    }

    /// A point of order exactly 8, found deterministically: [l]P for a decodable P lies in
    /// the torsion subgroup.
    fn order_eight_point() -> EdwardsPoint {
        for counter in 0u32.. {
            let candidate = *blake3::hash(&counter.to_le_bytes()).as_bytes();
            let Some(point) = CompressedEdwardsY(candidate).decompress() else {
                continue;
            };
            let torsion = point * -Scalar::ONE + point;
            if !(torsion * Scalar::from(4u8)).is_identity() {
                assert!(torsion.is_small_order());
                return torsion;
            }
        }
        unreachable!()
    }

    fn seed(label: &str) -> [u8; 32] {
        *blake3::hash(label.as_bytes()).as_bytes()
    }

    fn nonce(label: &str) -> Scalar {
        Scalar::from_bytes_mod_order(seed(label))
    }

    /// A signature made by hand: `s = r + k a` for the given R (whose discrete log minus any
    /// torsion is `r`) and the key encoding `key_bytes` (whose discrete log minus any torsion
    /// is `a`).
    fn sign_raw(
        a: &Scalar,
        key_bytes: &[u8; 32],
        r: &Scalar,
        r_point: &EdwardsPoint,
        message: &[u8],
    ) -> Signature {
        let r_bytes = r_point.compress().to_bytes();
        let k = challenge(&r_bytes, key_bytes, message);
        let s = r + k * a;
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&r_bytes);
        bytes[32..].copy_from_slice(s.as_bytes());
        Signature(bytes)
    }

    fn with_r(signature: &Signature, r: [u8; 32]) -> Signature {
        let mut bytes = signature.0;
        bytes[..32].copy_from_slice(&r);
        Signature(bytes)
    }

    fn with_s(signature: &Signature, s: [u8; 32]) -> Signature {
        let mut bytes = signature.0;
        bytes[32..].copy_from_slice(&s);
        Signature(bytes)
    }

    /// s + l as a 256-bit integer: the same scalar mod l, in a non-canonical encoding.
    fn plus_group_order(s: [u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for index in 0..32 {
            let sum = u16::from(s[index]) + u16::from(GROUP_ORDER[index]) + carry;
            out[index] = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        out
    }

    fn flip_bit(bytes: &[u8], bit: usize) -> Vec<u8> {
        let mut out = bytes.to_vec();
        out[bit / 8] ^= 1 << (bit % 8);
        out
    }

    fn mixed_torsion_key(secret: &SecretKey) -> [u8; 32] {
        let a = secret.0.to_scalar();
        (ED25519_BASEPOINT_POINT * a + order_eight_point())
            .compress()
            .to_bytes()
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    struct Vector {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<String>,
        public_key: PublicKey,
        message: String,
        signature: Signature,
        /// `ok` or the name of the `SignatureError` variant.
        expected: String,
        /// What ed25519-dalek's `verify_strict` says: `ok` or `rejected`.
        dalek_verify_strict: String,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    struct VectorFile {
        description: String,
        vectors: Vec<Vector>,
    }

    const VECTOR_FILE_DESCRIPTION: &str = "ed25519 signatures under hutong's rule \
        (docs/adr/0002-signature-verification.md). `expected` is `ok` or the SignatureError \
        variant verify returns; `dalek_verify_strict` is what ed25519-dalek's verify_strict \
        says, to show where the cofactored rule differs from the cofactorless one. Honest \
        vectors carry the RFC 8032 seed that signs them.";

    fn vector(
        name: &str,
        seed: Option<[u8; 32]>,
        public_key: PublicKey,
        message: &[u8],
        signature: Signature,
    ) -> Vector {
        let expected = name_of(verify(&public_key, message, &signature));
        let dalek = if dalek_strict(&public_key, message, &signature) {
            "ok"
        } else {
            "rejected"
        };
        Vector {
            name: name.to_string(),
            seed: seed.map(hex::encode),
            public_key,
            message: hex::encode(message),
            signature,
            expected: expected.to_string(),
            dalek_verify_strict: dalek.to_string(),
        }
    }

    fn name_of(result: Result<(), SignatureError>) -> &'static str {
        name(result)
    }

    /// Builds every vector from first principles; the file must equal this list, and each
    /// vector's expectations are also asserted one by one in `vectors_hold`.
    fn build_vectors() -> Vec<Vector> {
        let mut vectors = Vec::new();
        let rfc_seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let rfc = SecretKey::from_seed(rfc_seed);
        vectors.push(vector(
            "honest/rfc8032-test-1-empty-message",
            Some(rfc_seed),
            rfc.public_key(),
            b"",
            rfc.sign(b""),
        ));
        let rfc2_seed: [u8; 32] =
            hex::decode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
                .unwrap()
                .try_into()
                .unwrap();
        let rfc2 = SecretKey::from_seed(rfc2_seed);
        vectors.push(vector(
            "honest/rfc8032-test-2-one-byte",
            Some(rfc2_seed),
            rfc2.public_key(),
            &[0x72],
            rfc2.sign(&[0x72]),
        ));

        let signer_seed = seed("hutong vector signer");
        let signer = SecretKey::from_seed(signer_seed);
        let public_key = signer.public_key();
        let tx_message =
            signing_message(TX_DOMAIN, "hutong-testnet", b"licence 370202-0001").unwrap();
        let honest = signer.sign(&tx_message);
        vectors.push(vector(
            "honest/tx-domain",
            Some(signer_seed),
            public_key,
            &tx_message,
            honest,
        ));
        let long_message: Vec<u8> = (0..1024u32).map(|index| (index % 251) as u8).collect();
        vectors.push(vector(
            "honest/1024-byte-message",
            Some(signer_seed),
            public_key,
            &long_message,
            signer.sign(&long_message),
        ));

        vectors.push(vector(
            "modified-message[0]-bit-0",
            None,
            public_key,
            &flip_bit(&tx_message, 0),
            honest,
        ));
        let qr_message =
            signing_message(QR_DOMAIN, "hutong-testnet", b"licence 370202-0001").unwrap();
        vectors.push(vector(
            "signed-in-qr-domain-presented-as-tx",
            None,
            public_key,
            &tx_message,
            signer.sign(&qr_message),
        ));
        let other_chain =
            signing_message(TX_DOMAIN, "hutong-other", b"licence 370202-0001").unwrap();
        vectors.push(vector(
            "signed-for-another-chain",
            None,
            public_key,
            &tx_message,
            signer.sign(&other_chain),
        ));
        let stranger = SecretKey::from_seed(seed("hutong vector stranger"));
        vectors.push(vector(
            "wrong-public-key",
            None,
            stranger.public_key(),
            &tx_message,
            honest,
        ));

        // Bit flips in R: the first flip that still decodes to a curve point, and the first
        // that does not.
        let mut found_point = false;
        let mut found_not_point = false;
        for bit in 0..255 {
            let flipped = Signature(flip_bit(&honest.0, bit).try_into().unwrap());
            match verify(&public_key, &tx_message, &flipped) {
                Err(SignatureError::Mismatch) if !found_point => {
                    found_point = true;
                    let name = format!("modified-r-bit-{bit}-still-a-point");
                    vectors.push(vector(&name, None, public_key, &tx_message, flipped));
                }
                Err(SignatureError::RNotOnCurve) if !found_not_point => {
                    found_not_point = true;
                    let name = format!("modified-r-bit-{bit}-not-a-point");
                    vectors.push(vector(&name, None, public_key, &tx_message, flipped));
                }
                _ => {}
            }
        }
        assert!(found_point && found_not_point);
        vectors.push(vector(
            "modified-s-bit-0",
            None,
            public_key,
            &tx_message,
            Signature(flip_bit(&honest.0, 256).try_into().unwrap()),
        ));
        vectors.push(vector(
            "non-canonical-s-plus-l",
            None,
            public_key,
            &tx_message,
            with_s(&honest, plus_group_order(honest.s_bytes())),
        ));
        vectors.push(vector(
            "non-canonical-s-equal-to-l",
            None,
            public_key,
            &tx_message,
            with_s(&honest, GROUP_ORDER),
        ));
        let mut high_s = honest.s_bytes();
        high_s[31] |= 0x80;
        vectors.push(vector(
            "non-canonical-s-high-bit-set",
            None,
            public_key,
            &tx_message,
            with_s(&honest, high_s),
        ));

        // A small-order key with a small-order R and s = 0 satisfies the cofactored equation
        // for every message: the reason such keys are refused.
        let torsion = order_eight_point();
        let torsion_bytes = torsion.compress().to_bytes();
        let universal = with_s(&with_r(&honest, torsion_bytes), [0u8; 32]);
        vectors.push(vector(
            "small-order-key-order-8-universal-signature",
            None,
            PublicKey(torsion_bytes),
            b"any message at all",
            universal,
        ));
        let identity_bytes = EdwardsPoint::identity().compress().to_bytes();
        vectors.push(vector(
            "small-order-key-identity",
            None,
            PublicKey(identity_bytes),
            b"any message at all",
            with_s(&with_r(&honest, identity_bytes), [0u8; 32]),
        ));
        let mut negative_zero_identity = identity_bytes;
        negative_zero_identity[31] |= 0x80;
        vectors.push(vector(
            "non-canonical-key-identity-with-sign-bit",
            None,
            PublicKey(negative_zero_identity),
            b"any message at all",
            with_s(&with_r(&honest, identity_bytes), [0u8; 32]),
        ));
        let non_canonical_y = non_canonical_encoding_of_ordinary_point();
        vectors.push(vector(
            "non-canonical-key-y-at-least-p",
            None,
            PublicKey(non_canonical_y),
            &tx_message,
            honest,
        ));
        vectors.push(vector(
            "key-not-on-curve",
            None,
            PublicKey(first_non_point()),
            &tx_message,
            honest,
        ));
        vectors.push(vector(
            "non-canonical-r-y-at-least-p",
            None,
            public_key,
            &tx_message,
            with_r(&honest, non_canonical_y),
        ));
        vectors.push(vector(
            "non-canonical-r-identity-with-sign-bit",
            None,
            public_key,
            &tx_message,
            with_r(&honest, negative_zero_identity),
        ));
        vectors.push(vector(
            "r-not-on-curve",
            None,
            public_key,
            &tx_message,
            with_r(&honest, first_non_point()),
        ));
        // R of small order with s = k a: the cofactored equation holds, only the R check
        // refuses it.
        let a = signer.0.to_scalar();
        vectors.push(vector(
            "small-order-r-equation-holds",
            None,
            public_key,
            &tx_message,
            sign_raw(&a, &public_key.0, &Scalar::ZERO, &torsion, &tx_message),
        ));

        // Torsion components that the cofactored rule ignores and verify_strict does not.
        let r = nonce("hutong vector nonce");
        let mixed_r = ED25519_BASEPOINT_POINT * r + torsion;
        vectors.push(vector(
            "mixed-torsion-r",
            None,
            public_key,
            &tx_message,
            sign_raw(&a, &public_key.0, &r, &mixed_r, &tx_message),
        ));
        let mixed_key = mixed_torsion_key(&signer);
        let r_point = ED25519_BASEPOINT_POINT * r;
        let mut cofactorless_fails = false;
        let mut cofactorless_passes = false;
        for counter in 0u32..64 {
            let message = format!("mixed-torsion key message {counter}").into_bytes();
            let signature = sign_raw(&a, &mixed_key, &r, &r_point, &message);
            let k = challenge(&signature.r_bytes(), &mixed_key, &message);
            // verify_strict sees [s]B - [k]A = R - [k]T, equal to R only when k = 0 mod 8.
            let k_kills_torsion = (torsion * k).is_identity();
            if !k_kills_torsion && !cofactorless_fails {
                cofactorless_fails = true;
                vectors.push(vector(
                    "mixed-torsion-key-cofactorless-check-fails",
                    None,
                    PublicKey(mixed_key),
                    &message,
                    signature,
                ));
            }
            if k_kills_torsion && !cofactorless_passes {
                cofactorless_passes = true;
                vectors.push(vector(
                    "mixed-torsion-key-cofactorless-check-passes",
                    None,
                    PublicKey(mixed_key),
                    &message,
                    signature,
                ));
            }
        }
        assert!(cofactorless_fails && cofactorless_passes);
        vectors
    }

    /// The encoding y + p of the first y in 2..19 that decodes to a point of large order.
    fn non_canonical_encoding_of_ordinary_point() -> [u8; 32] {
        for y in 2u8..19 {
            let mut bytes = [0xffu8; 32];
            bytes[31] = 0x7f;
            bytes[0] = 0xed + y;
            if let Some(point) = CompressedEdwardsY(bytes).decompress()
                && !point.is_small_order()
            {
                return bytes;
            }
        }
        panic!("some y below 19 names an ordinary point");
    }

    /// The smallest canonical y that is not the y-coordinate of any curve point.
    fn first_non_point() -> [u8; 32] {
        for y in 0u8..=255 {
            let mut bytes = [0u8; 32];
            bytes[0] = y;
            if CompressedEdwardsY(bytes).decompress().is_none() {
                return bytes;
            }
        }
        panic!("some small y is off the curve");
    }

    const VECTORS_JSON: &str = include_str!("../tests/vectors/crypto/signatures.json");

    /// Rewrites the vector file from `build_vectors`:
    /// `cargo test -- --ignored write_signature_vectors`.
    #[test]
    #[ignore = "rewrites tests/vectors/crypto/signatures.json"]
    fn write_signature_vectors() {
        let file = VectorFile {
            description: VECTOR_FILE_DESCRIPTION.to_string(),
            vectors: build_vectors(),
        };
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/crypto/signatures.json"
        );
        let path = std::env::var("HUTONG_SIGNATURE_VECTORS").unwrap_or(path.to_string());
        let text = serde_json::to_string_pretty(&file).unwrap() + "\n";
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn vectors_hold() {
        let file: VectorFile = serde_json::from_str(VECTORS_JSON).unwrap();
        assert_eq!(file.vectors, build_vectors(), "vector file is stale");
        let mut batch_messages = Vec::new();
        for vector in &file.vectors {
            let message = hex::decode(&vector.message).unwrap();
            let outcome = verify(&vector.public_key, &message, &vector.signature);
            assert_eq!(name(outcome), vector.expected, "{}", vector.name);
            let dalek = dalek_strict(&vector.public_key, &message, &vector.signature);
            assert_eq!(dalek, vector.dalek_verify_strict == "ok", "{}", vector.name);
            if let Some(seed_hex) = &vector.seed {
                let secret =
                    SecretKey::from_seed(hex::decode(seed_hex).unwrap().try_into().unwrap());
                assert_eq!(secret.public_key(), vector.public_key, "{}", vector.name);
                assert_eq!(secret.sign(&message), vector.signature, "{}", vector.name);
                assert_eq!(vector.expected, "ok");
            }
            if vector.name.starts_with("honest/") {
                assert_eq!(vector.expected, "ok");
                assert_eq!(vector.dalek_verify_strict, "ok");
            }
            batch_messages.push(message);
        }
        // Where the two rules differ, it is only because of torsion components.
        for vector in &file.vectors {
            let differs = (vector.expected == "ok") != (vector.dalek_verify_strict == "ok");
            let torsion_case = vector.name.starts_with("mixed-torsion");
            assert!(!differs || torsion_case, "{}", vector.name);
            if vector.name == "mixed-torsion-r"
                || vector.name == "mixed-torsion-key-cofactorless-check-fails"
            {
                assert!(differs, "{}", vector.name);
            }
        }
        // The same vectors as one batch give the same verdicts.
        let items: Vec<(&PublicKey, &[u8], &Signature)> = file
            .vectors
            .iter()
            .zip(&batch_messages)
            .map(|(vector, message)| (&vector.public_key, message.as_slice(), &vector.signature))
            .collect();
        let failures = verify_batch_with_errors(&items).unwrap_err();
        let expected: Vec<(usize, &str)> = file
            .vectors
            .iter()
            .enumerate()
            .filter(|(_, vector)| vector.expected != "ok")
            .map(|(index, vector)| (index, vector.expected.as_str()))
            .collect();
        let found: Vec<(usize, &str)> = failures
            .iter()
            .map(|failure| (failure.index, name(Err(failure.error))))
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn rfc8032_public_keys_and_signatures() {
        // RFC 8032 section 7.1, tests 1 and 2: the wrapped key signs exactly as the RFC says.
        let secret = SecretKey::from_seed(
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap(),
        );
        assert_eq!(
            secret.public_key().to_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            secret.sign(b"").to_hex(),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        let secret = SecretKey::from_seed(
            hex::decode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
                .unwrap()
                .try_into()
                .unwrap(),
        );
        assert_eq!(
            secret.public_key().to_hex(),
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
        );
        assert_eq!(
            secret.sign(&[0x72]).to_hex(),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        );
    }

    #[test]
    fn signing_message_layout() {
        let message = signing_message(TX_DOMAIN, "abc", &[1, 2]).unwrap();
        let mut expected = b"hutong/tx/v1".to_vec();
        expected.extend_from_slice(&[3, b'a', b'b', b'c', 1, 2]);
        assert_eq!(message, expected);
        let longest = "c".repeat(CHAIN_ID_BYTES_MAX);
        let message = signing_message(CHECKPOINT_DOMAIN, &longest, b"").unwrap();
        assert_eq!(
            message.len(),
            CHECKPOINT_DOMAIN.len() + 1 + CHAIN_ID_BYTES_MAX
        );
        assert_eq!(
            signing_message(TX_DOMAIN, &"c".repeat(65), b""),
            Err(SignatureError::ChainIdLength { length_bytes: 65 })
        );
        assert_eq!(
            signing_message(TX_DOMAIN, "", b""),
            Err(SignatureError::ChainIdLength { length_bytes: 0 })
        );
        // A chain id cannot run into the payload.
        assert_ne!(
            signing_message(TX_DOMAIN, "ab", b"c").unwrap(),
            signing_message(TX_DOMAIN, "a", b"bc").unwrap()
        );
    }

    #[test]
    fn domains_are_prefix_free() {
        let domains = [TX_DOMAIN, QR_DOMAIN, CHECKPOINT_DOMAIN];
        for first in domains {
            for second in domains {
                assert!(first == second || !first.starts_with(second));
            }
        }
    }

    #[test]
    fn canonical_encoding_check_matches_recompression() {
        // Every encoding near the edges: y in 0..64 and y in p-64..2^255, both sign bits.
        let mut encodings = Vec::new();
        for low in 0u8..64 {
            let mut bytes = [0u8; 32];
            bytes[0] = low;
            encodings.push(bytes);
            let mut bytes = [0xffu8; 32];
            bytes[31] = 0x7f;
            bytes[0] = 0xff - low;
            encodings.push(bytes);
        }
        for bytes in encodings.clone() {
            let mut signed = bytes;
            signed[31] |= 0x80;
            encodings.push(signed);
        }
        let mut non_canonical_points = 0;
        for bytes in encodings {
            if let Some(point) = CompressedEdwardsY(bytes).decompress() {
                let canonical = point.compress().to_bytes() == bytes;
                assert_eq!(
                    is_canonical_point_encoding(&bytes),
                    canonical,
                    "{}",
                    hex::encode(bytes)
                );
                non_canonical_points += usize::from(!canonical);
            }
        }
        assert!(non_canonical_points >= 2);
    }

    #[test]
    fn small_order_points_are_refused_as_keys() {
        let torsion = order_eight_point();
        let mut point = EdwardsPoint::identity();
        for _ in 0..8 {
            let key = PublicKey(point.compress().to_bytes());
            assert_eq!(key.validate(), Err(SignatureError::SmallOrderKey), "{key}");
            point += torsion;
        }
        assert!(point.is_identity());
        let ordinary = SecretKey::from_seed([7u8; 32]).public_key();
        assert_eq!(ordinary.validate(), Ok(()));
        assert_eq!(
            PublicKey(first_non_point()).validate(),
            Err(SignatureError::KeyNotOnCurve)
        );
        assert_eq!(
            PublicKey(non_canonical_encoding_of_ordinary_point()).validate(),
            Err(SignatureError::NonCanonicalKey)
        );
    }

    #[test]
    fn hex_and_serde_round_trips() {
        let secret = SecretKey::from_seed([9u8; 32]);
        let public_key = secret.public_key();
        let signature = secret.sign(b"round trip");

        let json = serde_json::to_string(&public_key).unwrap();
        assert_eq!(json, format!("\"{}\"", public_key.to_hex()));
        assert_eq!(
            serde_json::from_str::<PublicKey>(&json).unwrap(),
            public_key
        );
        let json = serde_json::to_string(&signature).unwrap();
        assert_eq!(json, format!("\"{}\"", signature.to_hex()));
        assert_eq!(serde_json::from_str::<Signature>(&json).unwrap(), signature);

        let bytes = postcard::to_stdvec(&public_key).unwrap();
        assert_eq!(bytes, public_key.0.to_vec());
        assert_eq!(
            postcard::from_bytes::<PublicKey>(&bytes).unwrap(),
            public_key
        );
        let bytes = postcard::to_stdvec(&signature).unwrap();
        assert_eq!(bytes, signature.0.to_vec(), "raw bytes, no length prefix");
        assert_eq!(
            postcard::from_bytes::<Signature>(&bytes).unwrap(),
            signature
        );
        assert!(postcard::from_bytes::<Signature>(&bytes[..63]).is_err());

        assert_eq!(public_key.to_string().parse::<PublicKey>(), Ok(public_key));
        assert_eq!(signature.to_string().parse::<Signature>(), Ok(signature));
        assert_eq!(
            "ab".parse::<PublicKey>(),
            Err(SignatureError::HexLength {
                what: "public key",
                expected: 64,
                found: 2
            })
        );
        let bad = format!("{}z", &signature.to_hex()[..127]);
        assert_eq!(
            bad.parse::<Signature>(),
            Err(SignatureError::NotHex {
                what: "signature",
                found: 'z'
            })
        );
        assert!(serde_json::from_str::<PublicKey>("\"00\"").is_err());
    }

    #[test]
    fn secret_key_debug_hides_the_seed() {
        let seed = [0x5au8; 32];
        let secret = SecretKey::from_seed(seed);
        let shown = format!("{secret:?}");
        assert!(!shown.contains(&hex::encode(seed)));
        assert!(!shown.contains("5a5a5a"));
        assert!(shown.contains(&secret.public_key().to_hex()));
        assert_eq!(secret.to_seed_bytes(), seed);
    }

    #[test]
    fn torsion_components_do_not_disturb_the_batch_equation() {
        use Twist::{MixedTorsionKey, MixedTorsionR};
        let batches: [&[Twist]; 4] = [
            &[Twist::None, MixedTorsionR, Twist::None],
            &[Twist::None, MixedTorsionKey, Twist::None],
            &[MixedTorsionKey, MixedTorsionR],
            &[
                Twist::None,
                MixedTorsionR,
                MixedTorsionKey,
                Twist::None,
                MixedTorsionKey,
            ],
        ];
        for twists in batches {
            let built: Vec<_> = twists
                .iter()
                .enumerate()
                .map(|(index, twist)| make_entry(index % 2, vec![index as u8; 10], *twist))
                .collect();
            let items: Vec<(&PublicKey, &[u8], &Signature)> = built
                .iter()
                .map(|(key, message, signature)| (key, message.as_slice(), signature))
                .collect();
            let chunk = prepare_chunk(&items);
            assert_eq!(chunk.prepared.len(), twists.len());
            assert!(
                batch_equation_holds(&items, &chunk.prepared, &chunk.key_points),
                "{twists:?}"
            );
            assert_eq!(verify_batch(&items), Ok(()));
            // ed25519-dalek's cofactorless check refuses at least one of them.
            assert!(
                items
                    .iter()
                    .any(|(key, message, signature)| !dalek_strict(key, message, signature)),
                "{twists:?}"
            );
        }
    }

    #[test]
    fn small_order_key_would_accept_anything_without_its_check() {
        let torsion = order_eight_point();
        let r = torsion + torsion;
        for message in [b"one".as_slice(), b"another"] {
            let k = challenge(
                &r.compress().to_bytes(),
                &torsion.compress().to_bytes(),
                message,
            );
            assert!(cofactored_equation_holds(&torsion, &r, &Scalar::ZERO, &k));
        }
    }

    #[test]
    fn empty_batch_is_accepted() {
        assert_eq!(verify_batch(&[]), Ok(()));
        assert_eq!(verify_batch_with_errors(&[]), Ok(()));
    }

    #[test]
    fn batch_names_a_single_bad_entry() {
        let secret = SecretKey::from_seed([1u8; 32]);
        let public_key = secret.public_key();
        let messages: Vec<Vec<u8>> = (0..20u8).map(|index| vec![index; 40]).collect();
        let mut signatures: Vec<Signature> = messages.iter().map(|m| secret.sign(m)).collect();
        signatures[13].0[40] ^= 1;
        let items: Vec<_> = messages
            .iter()
            .zip(&signatures)
            .map(|(message, signature)| (&public_key, message.as_slice(), signature))
            .collect();
        assert_eq!(
            verify_batch_with_errors(&items),
            Err(vec![BatchFailure {
                index: 13,
                error: SignatureError::Mismatch
            }])
        );
    }

    #[test]
    fn batches_longer_than_the_limit_are_split() {
        let secret = SecretKey::from_seed([2u8; 32]);
        let public_key = secret.public_key();
        let count = BATCH_ENTRIES_MAX + 3;
        let messages: Vec<[u8; 8]> = (0..count as u64).map(u64::to_le_bytes).collect();
        let mut signatures: Vec<Signature> = messages.iter().map(|m| secret.sign(m)).collect();
        signatures[5].0[0] ^= 4;
        signatures[BATCH_ENTRIES_MAX + 1] = signatures[0];
        let items: Vec<_> = messages
            .iter()
            .zip(&signatures)
            .map(|(message, signature)| (&public_key, message.as_slice(), signature))
            .collect();
        let failures = verify_batch_with_errors(&items).unwrap_err();
        let indexes: Vec<usize> = failures.iter().map(|failure| failure.index).collect();
        assert_eq!(indexes, vec![5, BATCH_ENTRIES_MAX + 1]);
        assert_eq!(failures[1].error, SignatureError::Mismatch);
        for failure in failures {
            let (key, message, signature) = items[failure.index];
            assert_eq!(verify(key, message, signature), Err(failure.error));
        }
    }

    #[test]
    fn coefficients_depend_on_the_whole_batch() {
        let secret = SecretKey::from_seed([3u8; 32]);
        let public_key = secret.public_key();
        let messages = [b"first".to_vec(), b"second".to_vec()];
        let signatures: Vec<Signature> = messages.iter().map(|m| secret.sign(m)).collect();
        let coefficients_of = |messages: &[Vec<u8>]| {
            let items: Vec<_> = messages
                .iter()
                .zip(&signatures)
                .map(|(message, signature)| (&public_key, message.as_slice(), signature))
                .collect();
            batch_coefficients(&items, &prepare_chunk(&items).prepared)
        };
        let coefficients = coefficients_of(&messages);
        assert_eq!(coefficients, coefficients_of(&messages), "deterministic");
        assert_ne!(coefficients[0], coefficients[1]);
        let changed = coefficients_of(&[b"first".to_vec(), b"second!".to_vec()]);
        assert_ne!(
            coefficients[0], changed[0],
            "every entry's coefficient moves"
        );
    }

    /// How a property-test entry is spoiled (or, for the torsion cases, made unusual but
    /// acceptable).
    #[derive(Debug, Clone, Copy)]
    enum Twist {
        None,
        FlipMessageBit(usize),
        FlipSignatureBit(usize),
        MixedTorsionR,
        MixedTorsionKey,
        SmallOrderKey,
        SmallOrderR,
        NonCanonicalS,
        WrongKey,
    }

    fn twist_strategy() -> impl Strategy<Value = Twist> {
        prop_oneof![
            6 => Just(Twist::None),
            1 => (0usize..256).prop_map(Twist::FlipMessageBit),
            1 => (0usize..512).prop_map(Twist::FlipSignatureBit),
            2 => Just(Twist::MixedTorsionR),
            2 => Just(Twist::MixedTorsionKey),
            1 => Just(Twist::SmallOrderKey),
            1 => Just(Twist::SmallOrderR),
            1 => Just(Twist::NonCanonicalS),
            1 => Just(Twist::WrongKey),
        ]
    }

    fn make_entry(
        signer_index: usize,
        message: Vec<u8>,
        twist: Twist,
    ) -> (PublicKey, Vec<u8>, Signature) {
        let secret = SecretKey::from_seed(seed(&format!("property signer {signer_index}")));
        let public_key = secret.public_key();
        let a = secret.0.to_scalar();
        let torsion = order_eight_point();
        let r = nonce(&format!("property nonce {}", hex::encode(&message)));
        match twist {
            Twist::None => {
                let signature = secret.sign(&message);
                (public_key, message, signature)
            }
            Twist::FlipMessageBit(bit) => {
                let signature = secret.sign(&message);
                let message = flip_bit(&message, bit % (8 * message.len()));
                (public_key, message, signature)
            }
            Twist::FlipSignatureBit(bit) => {
                let signature = secret.sign(&message);
                let flipped = Signature(flip_bit(&signature.0, bit).try_into().unwrap());
                (public_key, message, flipped)
            }
            Twist::MixedTorsionR => {
                let r_point = ED25519_BASEPOINT_POINT * r + torsion;
                let signature = sign_raw(&a, &public_key.0, &r, &r_point, &message);
                (public_key, message, signature)
            }
            Twist::MixedTorsionKey => {
                let key = mixed_torsion_key(&secret);
                let r_point = ED25519_BASEPOINT_POINT * r;
                let signature = sign_raw(&a, &key, &r, &r_point, &message);
                (PublicKey(key), message, signature)
            }
            Twist::SmallOrderKey => {
                let torsion_bytes = torsion.compress().to_bytes();
                let signature = with_s(&with_r(&secret.sign(&message), torsion_bytes), [0; 32]);
                (PublicKey(torsion_bytes), message, signature)
            }
            Twist::SmallOrderR => {
                let signature = sign_raw(&a, &public_key.0, &Scalar::ZERO, &torsion, &message);
                (public_key, message, signature)
            }
            Twist::NonCanonicalS => {
                let signature = secret.sign(&message);
                let s = plus_group_order(signature.s_bytes());
                (public_key, message, with_s(&signature, s))
            }
            Twist::WrongKey => {
                let signature = secret.sign(&message);
                let other = SecretKey::from_seed(seed("property stranger")).public_key();
                (other, message, signature)
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn honest_signatures_verify(seed in any::<[u8; 32]>(), message in proptest::collection::vec(any::<u8>(), 0..300)) {
            let secret = SecretKey::from_seed(seed);
            let signature = secret.sign(&message);
            prop_assert_eq!(secret.public_key().validate(), Ok(()));
            prop_assert_eq!(verify(&secret.public_key(), &message, &signature), Ok(()));
            prop_assert!(dalek_strict(&secret.public_key(), &message, &signature));
        }

        #[test]
        fn canonical_check_matches_recompression_on_random_bytes(bytes in any::<[u8; 32]>()) {
            if let Some(point) = CompressedEdwardsY(bytes).decompress() {
                prop_assert_eq!(is_canonical_point_encoding(&bytes), point.compress().to_bytes() == bytes);
            }
        }

        #[test]
        fn batch_and_single_agree(
            entries in proptest::collection::vec(
                (0usize..3, proptest::collection::vec(any::<u8>(), 1..64), twist_strategy()),
                0..24,
            )
        ) {
            let built: Vec<(PublicKey, Vec<u8>, Signature)> = entries
                .into_iter()
                .map(|(signer, message, twist)| make_entry(signer, message, twist))
                .collect();
            let items: Vec<(&PublicKey, &[u8], &Signature)> = built
                .iter()
                .map(|(key, message, signature)| (key, message.as_slice(), signature))
                .collect();
            let singles: Vec<BatchFailure> = items
                .iter()
                .enumerate()
                .filter_map(|(index, (key, message, signature))| {
                    verify(key, message, signature).err().map(|error| BatchFailure { index, error })
                })
                .collect();
            let expected = if singles.is_empty() { Ok(()) } else { Err(singles) };
            let indexes = expected.clone().map_err(|failures| failures.iter().map(|failure| failure.index).collect::<Vec<_>>());
            prop_assert_eq!(verify_batch_with_errors(&items), expected);
            prop_assert_eq!(verify_batch(&items), indexes);
            // The equation itself, without the fallback that would hide its mistakes.
            let chunk = prepare_chunk(&items);
            if chunk.prepared.len() >= 2 {
                let all_hold = chunk.prepared.iter().all(|entry| single_holds(entry, &chunk.key_points));
                prop_assert_eq!(batch_equation_holds(&items, &chunk.prepared, &chunk.key_points), all_hold);
            }
            // Where dalek's strict check accepts, so does hutong's rule.
            for (key, message, signature) in &items {
                if dalek_strict(key, message, signature) {
                    prop_assert_eq!(verify(key, message, signature), Ok(()));
                }
            }
        }
    }
}
