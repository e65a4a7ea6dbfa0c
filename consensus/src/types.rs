//! Identities, signatures, heights, rounds and steps: the small types every other module uses.

use std::fmt;

/// A chain height. Height 0 is never decided by consensus (it is the genesis); the first
/// height consensus decides is whatever the host starts with, usually 1.
pub type Height = u64;

/// A round within a height, counted from 0.
pub type Round = u32;

/// A validator, named by the 32 bytes of its ed25519 public key.
///
/// In JSON (with the `serde` feature) it is 64 lowercase hexadecimal characters; in binary
/// encodings it is its 32 raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ValidatorId(pub [u8; 32]);

impl ValidatorId {
    /// The raw public-key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hexadecimal, 64 characters.
    pub fn to_hex(&self) -> String {
        hex_encode(&self.0)
    }
}

impl fmt::Debug for ValidatorId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hexadecimal characters tell validators apart in logs and test failures.
        write!(formatter, "ValidatorId({}…)", &self.to_hex()[..8])
    }
}

impl fmt::Display for ValidatorId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_hex())
    }
}

impl From<[u8; 32]> for ValidatorId {
    fn from(bytes: [u8; 32]) -> Self {
        ValidatorId(bytes)
    }
}

/// A 64-byte signature (ed25519 in the node; anything a [`crate::Signer`] makes in tests).
///
/// In JSON (with the `serde` feature) it is 128 lowercase hexadecimal characters; in binary
/// encodings it is its 64 raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// The raw signature bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// Lowercase hexadecimal, 128 characters.
    pub fn to_hex(&self) -> String {
        hex_encode(&self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Signature({}…)", &self.to_hex()[..8])
    }
}

impl From<[u8; 64]> for Signature {
    fn from(bytes: [u8; 64]) -> Self {
        Signature(bytes)
    }
}

/// The two kinds of vote (the paper's PREVOTE and PRECOMMIT).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum VoteType {
    Prevote,
    Precommit,
}

impl VoteType {
    /// The byte that stands for this vote type in the sign bytes (see `docs/consensus.md`).
    pub fn sign_byte(self) -> u8 {
        match self {
            VoteType::Prevote => 0x01,
            VoteType::Precommit => 0x02,
        }
    }
}

/// A validator's step within a round (`step_p` in the paper). Ordered: a validator only
/// moves forward within a round.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Step {
    Propose,
    Prevote,
    Precommit,
}

impl From<VoteType> for Step {
    fn from(vote_type: VoteType) -> Self {
        match vote_type {
            VoteType::Prevote => Step::Prevote,
            VoteType::Precommit => Step::Precommit,
        }
    }
}

pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(feature = "serde")]
pub(crate) fn hex_decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    fn nibble(digit: u8) -> Option<u8> {
        match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            b'A'..=b'F' => Some(digit - b'A' + 10),
            _ => None,
        }
    }
    let digits = text.as_bytes();
    if digits.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (pair.first().copied()?, pair.get(1).copied()?);
        *slot = (nibble(high)? << 4) | nibble(low)?;
    }
    Some(out)
}

#[cfg(feature = "serde")]
mod serde_impls {
    use super::{Signature, ValidatorId, hex_decode, hex_encode};
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::fmt;

    fn serialize_fixed<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        if serializer.is_human_readable() {
            serializer.serialize_str(&hex_encode(bytes))
        } else {
            // A tuple of N bytes: no length prefix, like serde's own `[u8; 32]`.
            let mut tuple = serializer.serialize_tuple(N)?;
            for byte in bytes {
                tuple.serialize_element(byte)?;
            }
            tuple.end()
        }
    }

    struct FixedBytesVisitor<const N: usize>;

    impl<'de, const N: usize> Visitor<'de> for FixedBytesVisitor<N> {
        type Value = [u8; N];

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(formatter, "{N} bytes or {} hexadecimal characters", N * 2)
        }

        fn visit_str<E: Error>(self, text: &str) -> Result<Self::Value, E> {
            hex_decode::<N>(text)
                .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(text), &self))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Self::Value, A::Error> {
            let mut out = [0u8; N];
            for (index, slot) in out.iter_mut().enumerate() {
                *slot = sequence
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(index, &self))?;
            }
            Ok(out)
        }
    }

    fn deserialize_fixed<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<[u8; N], D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(FixedBytesVisitor::<N>)
        } else {
            deserializer.deserialize_tuple(N, FixedBytesVisitor::<N>)
        }
    }

    impl Serialize for ValidatorId {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serialize_fixed(&self.0, serializer)
        }
    }

    impl<'de> Deserialize<'de> for ValidatorId {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserialize_fixed::<D, 32>(deserializer).map(ValidatorId)
        }
    }

    impl Serialize for Signature {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serialize_fixed(&self.0, serializer)
        }
    }

    impl<'de> Deserialize<'de> for Signature {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserialize_fixed::<D, 64>(deserializer).map(Signature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_complete() {
        let id = ValidatorId([0xab; 32]);
        assert_eq!(id.to_hex(), "ab".repeat(32));
        assert_eq!(Signature([0x0f; 64]).to_hex(), "0f".repeat(64));
        assert_eq!(format!("{id:?}"), "ValidatorId(abababab…)");
    }

    #[test]
    fn steps_are_ordered_as_in_a_round() {
        assert!(Step::Propose < Step::Prevote);
        assert!(Step::Prevote < Step::Precommit);
        assert_eq!(Step::from(VoteType::Precommit), Step::Precommit);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn json_is_hex_and_binary_is_raw() {
        let signature = Signature([7u8; 64]);
        let json = serde_json::to_string(&signature).unwrap();
        assert_eq!(json, format!("\"{}\"", "07".repeat(64)));
        assert_eq!(serde_json::from_str::<Signature>(&json).unwrap(), signature);
        let bytes = postcard::to_stdvec(&signature).unwrap();
        assert_eq!(bytes, vec![7u8; 64]);
        assert_eq!(
            postcard::from_bytes::<Signature>(&bytes).unwrap(),
            signature
        );

        let id = ValidatorId([0xfe; 32]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<ValidatorId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<ValidatorId>("\"zz\"").is_err());
        let bytes = postcard::to_stdvec(&id).unwrap();
        assert_eq!(bytes.len(), 32);
        assert_eq!(postcard::from_bytes::<ValidatorId>(&bytes).unwrap(), id);
    }
}
