//! RFC 4648 base32 (section 6): the alphabet `A-Z 2-7`, upper case, without padding.
//!
//! QR payloads use it because every character is in the QR alphanumeric mode, which packs
//! 5.5 bits per character: 8.8 bits per byte of payload, against 10.7 for base64 in byte mode.
//! Decoding is strict, so that one payload has one text: upper case only, no padding, no
//! separators, and the unused low bits of the last character must be zero.

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Why a text is not canonical unpadded base32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Base32Error {
    #[error("character {found:?} at position {position} is not in the base32 alphabet A-Z 2-7")]
    BadCharacter { position: usize, found: char },
    #[error("{length} characters cannot end a base32 text (the length modulo 8 is 1, 3 or 6)")]
    BadLength { length: usize },
    #[error("the last character carries bits past the end of the data")]
    NonZeroPadding,
}

/// Encodes `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u16 = 0;
    let mut bits: u32 = 0;
    for byte in bytes {
        buffer = (buffer << 8) | u16::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[usize::from((buffer >> bits) & 0x1f)]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            ALPHABET[usize::from((buffer << (5 - bits)) & 0x1f)],
        ));
    }
    out
}

fn value_of(character: u8) -> Option<u16> {
    match character {
        b'A'..=b'Z' => Some(u16::from(character - b'A')),
        b'2'..=b'7' => Some(u16::from(character - b'2') + 26),
        _ => None,
    }
}

/// Decodes canonical unpadded base32.
pub fn decode(text: &str) -> Result<Vec<u8>, Base32Error> {
    if matches!(text.len() % 8, 1 | 3 | 6) {
        return Err(Base32Error::BadLength { length: text.len() });
    }
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u16 = 0;
    let mut bits: u32 = 0;
    for (position, character) in text.bytes().enumerate() {
        let value = value_of(character).ok_or_else(|| Base32Error::BadCharacter {
            position,
            found: text[position..].chars().next().unwrap_or('?'),
        })?;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    if buffer != 0 {
        return Err(Base32Error::NonZeroPadding);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4648_vectors_without_padding() {
        // RFC 4648 section 10, with the '=' padding removed.
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(encode(plain.as_bytes()), encoded);
            assert_eq!(decode(encoded).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn strict_decoding() {
        assert_eq!(
            decode("mzxw6"),
            Err(Base32Error::BadCharacter {
                position: 0,
                found: 'm'
            })
        );
        assert_eq!(decode("MZX"), Err(Base32Error::BadLength { length: 3 }));
        assert_eq!(decode("MZ"), Err(Base32Error::NonZeroPadding));
        assert_eq!(
            decode("MY=="),
            Err(Base32Error::BadCharacter {
                position: 2,
                found: '='
            })
        );
    }

    #[test]
    fn round_trip_every_length() {
        for length in 0..40usize {
            let bytes: Vec<u8> = (0..length).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        }
    }
}
