//! The 32-byte digest used everywhere in the ledger, and the blake3 helpers that make it.
//!
//! In JSON a [`Hash32`] is 64 lowercase hexadecimal characters; in the canonical binary
//! encoding it is its 32 raw bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 32-byte digest (blake3 unless a module says otherwise).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The all-zero digest; used as "nothing here" (the empty sparse-Merkle subtree, the
    /// `prev_hash` of the first block).
    pub const ZERO: Hash32 = Hash32([0u8; 32]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hexadecimal, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Bit `index` counted from the most significant bit of byte 0 (index 0 is the first bit
    /// of the path from the root of a tree keyed by this hash).
    pub fn bit(&self, index: usize) -> bool {
        debug_assert!(index < 256, "bit index {index} out of range");
        (self.0[index / 8] >> (7 - (index % 8))) & 1 == 1
    }
}

/// Why a string is not a [`Hash32`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashParseError {
    #[error("a hash is 64 hexadecimal characters, got {0}")]
    Length(usize),
    #[error("a hash is hexadecimal (0-9, a-f), found {0:?}")]
    NotHex(char),
}

impl FromStr for Hash32 {
    type Err = HashParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() != 64 {
            return Err(HashParseError::Length(text.chars().count()));
        }
        if let Some(bad) = text.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(HashParseError::NotHex(bad));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(|_| HashParseError::Length(text.len()))?;
        Ok(Hash32(out))
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", self.to_hex())
    }
}

impl From<[u8; 32]> for Hash32 {
    fn from(bytes: [u8; 32]) -> Self {
        Hash32(bytes)
    }
}

impl From<blake3::Hash> for Hash32 {
    fn from(hash: blake3::Hash) -> Self {
        Hash32(*hash.as_bytes())
    }
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(Hash32)
        }
    }
}

/// blake3 of `parts` concatenated, without copying them together first.
pub fn blake3_parts(parts: &[&[u8]]) -> Hash32 {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// blake3 with a domain tag: `H(len(tag) as u8 || tag || data)`. Every hash the ledger
/// computes over a record, a key or a header goes through a distinct tag, so that a digest
/// of one kind can never be presented as a digest of another.
pub fn tagged(tag: &str, data: &[u8]) -> Hash32 {
    debug_assert!(tag.len() < 256, "domain tags are short constants");
    let tag_len = [tag.len() as u8];
    blake3_parts(&[&tag_len, tag.as_bytes(), data])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let hash = tagged("test", b"abc");
        let text = hash.to_hex();
        assert_eq!(text.parse::<Hash32>(), Ok(hash));
        assert_eq!("ab".parse::<Hash32>(), Err(HashParseError::Length(2)));
        let bad = format!("{}g", &text[..63]);
        assert_eq!(bad.parse::<Hash32>(), Err(HashParseError::NotHex('g')));
    }

    #[test]
    fn json_is_hex_and_binary_is_raw() {
        let hash = Hash32([7u8; 32]);
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, format!("\"{}\"", "07".repeat(32)));
        assert_eq!(serde_json::from_str::<Hash32>(&json).unwrap(), hash);
        let bytes = postcard::to_stdvec(&hash).unwrap();
        assert_eq!(bytes, vec![7u8; 32]);
        assert_eq!(postcard::from_bytes::<Hash32>(&bytes).unwrap(), hash);
    }

    #[test]
    fn bits_are_most_significant_first() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0b1000_0001;
        bytes[31] = 1;
        let hash = Hash32(bytes);
        assert!(hash.bit(0));
        assert!(!hash.bit(1));
        assert!(hash.bit(7));
        assert!(hash.bit(255));
        assert!(!hash.bit(254));
    }

    #[test]
    fn tags_separate_domains() {
        assert_ne!(tagged("a", b"bc"), tagged("ab", b"c"));
    }
}
