//! The one canonical binary encoding used for hashing, signing and storing.
//!
//! It is postcard (serde's compact format: varint integers, length-prefixed strings and
//! sequences, enum variants as varint indexes, fields in declaration order) with one rule
//! added on decoding: the bytes must be exactly what encoding the decoded value gives back.
//! That rejects every alternative spelling of a value (an over-long varint, trailing bytes,
//! a map written out of key order), so one value has one encoding and one hash. Types that
//! go through it use no floats and no unordered maps.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why bytes are not the canonical encoding of a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("{size_bytes} bytes exceed the limit of {limit_bytes} bytes")]
    TooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    #[error("malformed encoding: {0}")]
    Malformed(String),
    #[error("{0} bytes follow the encoded value")]
    TrailingBytes(usize),
    #[error("not the canonical encoding of the value it decodes to")]
    NonCanonical,
}

/// The canonical bytes of `value`.
pub fn to_canonical<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Room for a typical record or transaction from the start, so that encoding one does
    // not grow the vector several times over (one allocation of this size costs the same as
    // a smaller one).
    let mut bytes = Vec::with_capacity(ENCODING_CAPACITY_BYTES);
    append_canonical(&mut bytes, value);
    bytes
}

/// The capacity [`to_canonical`] starts with.
const ENCODING_CAPACITY_BYTES: usize = 512;

/// Appends the canonical bytes of `value` to `bytes`.
pub fn append_canonical<T: Serialize + ?Sized>(bytes: &mut Vec<u8>, value: &T) {
    // Invariant: as for `to_canonical`; the writer is a Vec.
    #[allow(clippy::expect_used)]
    let extended =
        postcard::to_extend(value, std::mem::take(bytes)).expect("ledger types always encode");
    *bytes = extended;
}

/// Decodes canonical bytes, checking the size first, then that nothing trails the value and
/// that the bytes are the value's canonical encoding.
pub fn from_canonical<T: DeserializeOwned + Serialize>(
    bytes: &[u8],
    limit_bytes: usize,
) -> Result<T, CodecError> {
    if bytes.len() > limit_bytes {
        return Err(CodecError::TooLarge {
            size_bytes: bytes.len(),
            limit_bytes,
        });
    }
    let (value, rest) = postcard::take_from_bytes::<T>(bytes)
        .map_err(|error| CodecError::Malformed(error.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes(rest.len()));
    }
    if to_canonical(&value) != bytes {
        return Err(CodecError::NonCanonical);
    }
    Ok(value)
}

/// Decodes bytes the store wrote itself (no canonicality re-check; the size bound stays).
pub fn from_stored<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes)
        .map_err(|error| CodecError::Malformed(error.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn round_trip() {
        let value: (u64, String, Vec<u8>) = (300, "营业执照".into(), vec![1, 2, 3]);
        let bytes = to_canonical(&value);
        assert_eq!(
            from_canonical::<(u64, String, Vec<u8>)>(&bytes, 1024),
            Ok(value)
        );
    }

    #[test]
    fn rejects_oversize_before_decoding() {
        let bytes = vec![0u8; 11];
        assert_eq!(
            from_canonical::<u8>(&bytes, 10),
            Err(CodecError::TooLarge {
                size_bytes: 11,
                limit_bytes: 10
            })
        );
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = to_canonical(&7u64);
        bytes.push(0);
        assert_eq!(
            from_canonical::<u64>(&bytes, 64),
            Err(CodecError::TrailingBytes(1))
        );
    }

    #[test]
    fn rejects_overlong_varint() {
        // 1 encoded in two bytes instead of one.
        let bytes = [0x81u8, 0x00];
        assert!(matches!(
            from_canonical::<u64>(&bytes, 64),
            Err(CodecError::NonCanonical) | Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn rejects_map_out_of_order() {
        let mut map = BTreeMap::new();
        map.insert("a".to_string(), 1u8);
        map.insert("b".to_string(), 2u8);
        let bytes = to_canonical(&map);
        // Swap the two entries: [len=2]["a"=1]["b"=2] -> [len=2]["b"=2]["a"=1].
        let (head, entries) = bytes.split_at(1);
        let (first, second) = entries.split_at(3);
        let swapped: Vec<u8> = head.iter().chain(second).chain(first).copied().collect();
        assert_eq!(
            from_canonical::<BTreeMap<String, u8>>(&swapped, 64),
            Err(CodecError::NonCanonical)
        );
    }

    #[test]
    fn rejects_bad_bool_and_utf8() {
        assert!(matches!(
            from_canonical::<bool>(&[2], 8),
            Err(CodecError::Malformed(_))
        ));
        assert!(matches!(
            from_canonical::<String>(&[2, 0xff, 0xfe], 8),
            Err(CodecError::Malformed(_))
        ));
    }
}
