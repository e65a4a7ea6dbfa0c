//! National identifiers: the unified social credit code of an organisation (GB 32100-2015),
//! the resident identity number of a person (GB 11643-1999), and the administrative division
//! code of a region (GB/T 2260).
//!
//! Each type can only be built by parsing, which checks every rule of its standard, so a
//! value of the type is valid. A wrong identifier is an [`IdentError`] naming the rule it
//! broke and the standard that sets it.
//!
//! A resident identity number never reaches the ledger in clear: [`ResidentId`] implements no
//! `Serialize`, prints masked, and leaves only a salted commitment ([`ResidentId::commitment`]).
//!
//! ```
//! use hutong_core::ident::{RegionCode, ResidentId, Uscc};
//! use hutong_core::suite::Suite;
//!
//! let company = Uscc::parse("91350100M000100Y43")?;
//! let fuzhou = RegionCode::parse("350100")?;
//! assert_eq!(company.region(), fuzhou);
//! assert!(RegionCode::parse("350000")?.covers(&fuzhou));
//! assert!(Uscc::parse("91350100M000100Y44").is_err());
//!
//! let person = ResidentId::parse("11010519491231002X")?;
//! let on_ledger = person.commitment(Suite::Ed25519Blake3, &[0x5a; 32]);
//! # let _ = on_ledger;
//! # Ok::<(), hutong_core::ident::IdentError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::calendar;
use crate::hash::Hash32;
use crate::suite::Suite;

/// Tag of the salted commitment to a person's identity number.
pub const PERSON_COMMITMENT_TAG: &str = "hutong/person/v1";

/// The 31 characters of a unified social credit code, in the order of their values 0-30
/// (GB 32100-2015, table 1): digits, then capitals without I, O, S, V and Z.
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// How the alphabet is described in error messages.
const USCC_ALPHABET_TEXT: &str = "0-9 A-H J-N P-R T-U W-Y (capitals only)";
/// GB 32100-2015 weights of positions 1-17: 3^(i-1) mod 31.
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
/// 1-based positions of the registration authority's administrative division code.
const USCC_REGION_POSITIONS: std::ops::RangeInclusive<usize> = 3..=8;

/// GB 11643-1999 weights of positions 1-17: 2^(18-i) mod 11.
const RESIDENT_ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// GB 11643-1999 check character for each value of the weighted sum mod 11.
const RESIDENT_ID_CHECK_CHARACTERS: &[u8; 11] = b"10X98765432";
/// No one alive was born before this year; earlier dates are typing mistakes.
const BIRTH_YEAR_MIN: u16 = 1800;

/// How a position that takes only digits is described in error messages.
const DIGITS_TEXT: &str = "0-9";

const IDENTIFIER_LENGTH: usize = 18;
const BODY_LENGTH: usize = 17;
const REGION_LENGTH: usize = 6;

/// Which identifier an error is about; its `Display` names the identifier and its standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentKind {
    Uscc,
    ResidentId,
    RegionCode,
}

impl fmt::Display for IdentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdentKind::Uscc => "unified social credit code (GB 32100-2015)",
            IdentKind::ResidentId => "resident identity number (GB 11643-1999)",
            IdentKind::RegionCode => "administrative division code (GB/T 2260)",
        })
    }
}

/// Why a text is not a valid identifier. Positions are 1-based, as the standards count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    #[error("wrong length for a {kind}: expected {expected} characters, got {found}")]
    Length {
        kind: IdentKind,
        expected: usize,
        found: usize,
    },
    #[error(
        "character {found:?} at position {position} of a {kind} is not allowed there: the allowed characters are {allowed}"
    )]
    CharacterNotAllowed {
        kind: IdentKind,
        position: usize,
        found: char,
        allowed: &'static str,
    },
    #[error(
        "positions 3-8 of a unified social credit code (GB 32100-2015) are the registration authority's administrative division code (GB/T 2260), six digits, but position {position} is {found:?}"
    )]
    RegionNotDigits { position: usize, found: char },
    #[error(
        "the {kind} ends in check character {found:?}, but its first 17 characters require {expected:?}"
    )]
    CheckCharacterMismatch {
        kind: IdentKind,
        expected: char,
        found: char,
    },
    #[error(
        "positions 7-14 of a resident identity number (GB 11643-1999) are the birth date YYYYMMDD, but {year:04}-{month:02}-{day:02} is not a day of the Gregorian calendar from 1800 on"
    )]
    InvalidBirthDate { year: u16, month: u8, day: u8 },
    #[error(
        "administrative division code (GB/T 2260) {code:06} has no province: only the national code 000000 starts with 00"
    )]
    RegionWithoutProvince { code: u32 },
}

/// A unified social credit code (统一社会信用代码), GB 32100-2015: 18 characters of the
/// code's alphabet, positions 3-8 the administrative division code of the registration
/// authority, position 18 the check character.
///
/// JSON and the canonical binary encoding both carry it as its 18-character string, and
/// deserializing checks it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uscc([u8; IDENTIFIER_LENGTH]);

impl Uscc {
    /// Parses and checks a code. Only capitals are accepted: the standard has no lowercase
    /// form, and accepting one would give one organisation two spellings.
    pub fn parse(text: &str) -> Result<Self, IdentError> {
        let bytes = uscc_characters(text, IDENTIFIER_LENGTH)?;
        let (body, check) = bytes.split_at(BODY_LENGTH);
        let expected = uscc_check_character(body);
        let found = check.first().copied().unwrap_or_default();
        if found != expected {
            return Err(IdentError::CheckCharacterMismatch {
                kind: IdentKind::Uscc,
                expected: char::from(expected),
                found: char::from(found),
            });
        }
        Ok(Uscc(to_array(&bytes)))
    }

    /// The code made of `first17` followed by its computed check character; for building
    /// test and demonstration data.
    pub fn with_check(first17: &str) -> Result<Self, IdentError> {
        let mut bytes = uscc_characters(first17, BODY_LENGTH)?;
        bytes.push(uscc_check_character(&bytes));
        Ok(Uscc(to_array(&bytes)))
    }

    /// The 18 characters.
    pub fn as_str(&self) -> &str {
        ascii_str(&self.0)
    }

    /// Positions 3-8: the administrative division code of the registration authority.
    pub fn region(&self) -> RegionCode {
        let mut digits = [0u8; REGION_LENGTH];
        digits.copy_from_slice(&self.0[2..8]);
        RegionCode(digits)
    }
}

/// Checks the characters of a code or of its first 17 characters (`expected_length`) and
/// returns them as bytes.
fn uscc_characters(text: &str, expected_length: usize) -> Result<Vec<u8>, IdentError> {
    check_length(text, IdentKind::Uscc, expected_length)?;
    for (index, found) in text.chars().enumerate() {
        let position = index + 1;
        if USCC_REGION_POSITIONS.contains(&position) {
            if !found.is_ascii_digit() {
                return Err(IdentError::RegionNotDigits { position, found });
            }
        } else if uscc_value(found).is_none() {
            return Err(IdentError::CharacterNotAllowed {
                kind: IdentKind::Uscc,
                position,
                found,
                allowed: USCC_ALPHABET_TEXT,
            });
        }
    }
    let bytes = text.as_bytes().to_vec();
    RegionCode::from_digits(to_array(bytes.get(2..8).unwrap_or_default()))?;
    Ok(bytes)
}

/// The value (0-30) of a character of the code's alphabet.
fn uscc_value(character: char) -> Option<u32> {
    let byte = u8::try_from(character).ok()?;
    let index = USCC_ALPHABET.iter().position(|&letter| letter == byte)?;
    u32::try_from(index).ok()
}

/// GB 32100-2015: C18 = 31 - (sum of value_i * W_i mod 31), where 31 stands for 0.
fn uscc_check_character(body: &[u8]) -> u8 {
    debug_assert_eq!(body.len(), BODY_LENGTH);
    let sum: u32 = body
        .iter()
        .zip(USCC_WEIGHTS)
        .map(|(&byte, weight)| uscc_value(char::from(byte)).unwrap_or(0) * weight)
        .sum();
    let value = (31 - sum % 31) % 31;
    USCC_ALPHABET.get(value as usize).copied().unwrap_or(b'0')
}

impl FromStr for Uscc {
    type Err = IdentError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uscc::parse(text)
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uscc({})", self.as_str())
    }
}

impl Serialize for Uscc {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Uscc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Uscc::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A resident identity number (公民身份号码), GB 11643-1999: a six-digit address code, the
/// birth date YYYYMMDD, a three-digit sequence number and a check character (0-9 or X).
///
/// Deliberately not `Serialize` and not `Display`: the ledger stores only
/// [`ResidentId::commitment`]. `Debug` shows the address code and the last two characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResidentId([u8; IDENTIFIER_LENGTH]);

/// How the allowed characters of a resident identity number are described.
const RESIDENT_ID_CHECK_TEXT: &str = "0-9 or X (capital)";

impl ResidentId {
    /// Parses and checks a number: 17 digits, a real birth date, and the check character.
    /// A lowercase x is refused, so that one person has one spelling and one commitment.
    pub fn parse(text: &str) -> Result<Self, IdentError> {
        check_length(text, IdentKind::ResidentId, IDENTIFIER_LENGTH)?;
        let bytes = resident_id_digits(text)?;
        let (body, check) = bytes.split_at(BODY_LENGTH);
        let found = check.first().copied().unwrap_or_default();
        if !(found.is_ascii_digit() || found == b'X') {
            return Err(IdentError::CharacterNotAllowed {
                kind: IdentKind::ResidentId,
                position: IDENTIFIER_LENGTH,
                found: text.chars().last().unwrap_or_default(),
                allowed: RESIDENT_ID_CHECK_TEXT,
            });
        }
        let expected = resident_id_check_character(body);
        if found != expected {
            return Err(IdentError::CheckCharacterMismatch {
                kind: IdentKind::ResidentId,
                expected: char::from(expected),
                found: char::from(found),
            });
        }
        check_birth_date(body)?;
        Ok(ResidentId(to_array(&bytes)))
    }

    /// The number made of `first17` followed by its computed check character; for building
    /// test and demonstration data.
    pub fn with_check(first17: &str) -> Result<Self, IdentError> {
        check_length(first17, IdentKind::ResidentId, BODY_LENGTH)?;
        let mut bytes = resident_id_digits(first17)?;
        check_birth_date(&bytes)?;
        bytes.push(resident_id_check_character(&bytes));
        Ok(ResidentId(to_array(&bytes)))
    }

    /// The salted commitment that stands for the person on the ledger:
    /// `tagged("hutong/person/v1", salt || number)`. The salt is kept off the ledger by the
    /// holder or the issuer; without it the commitment cannot be tested against guesses.
    pub fn commitment(&self, suite: Suite, salt: &[u8; 32]) -> Hash32 {
        let mut data = [0u8; 32 + IDENTIFIER_LENGTH];
        data[..32].copy_from_slice(salt);
        data[32..].copy_from_slice(&self.0);
        suite.tagged(PERSON_COMMITMENT_TAG, &data)
    }
}

/// Checks that the first 17 characters (all of `text` when it is shorter) are digits, and
/// returns the bytes of `text`. The caller has checked the length in characters.
fn resident_id_digits(text: &str) -> Result<Vec<u8>, IdentError> {
    for (index, found) in text.chars().enumerate().take(BODY_LENGTH) {
        if !found.is_ascii_digit() {
            return Err(IdentError::CharacterNotAllowed {
                kind: IdentKind::ResidentId,
                position: index + 1,
                found,
                allowed: DIGITS_TEXT,
            });
        }
    }
    Ok(text.as_bytes().to_vec())
}

/// GB 11643-1999: the check character indexed by (sum of digit_i * W_i) mod 11.
fn resident_id_check_character(body: &[u8]) -> u8 {
    debug_assert_eq!(body.len(), BODY_LENGTH);
    let sum: u32 = body
        .iter()
        .zip(RESIDENT_ID_WEIGHTS)
        .map(|(&digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    RESIDENT_ID_CHECK_CHARACTERS
        .get((sum % 11) as usize)
        .copied()
        .unwrap_or(b'0')
}

/// Positions 7-14 must be a day of the Gregorian calendar, from [`BIRTH_YEAR_MIN`] on.
fn check_birth_date(body: &[u8]) -> Result<(), IdentError> {
    let number = |range: std::ops::Range<usize>| -> u16 {
        body.get(range)
            .unwrap_or_default()
            .iter()
            .fold(0u16, |value, digit| value * 10 + u16::from(digit - b'0'))
    };
    let year = number(6..10);
    // Two digits each, so at most 99: the conversions cannot fail.
    let month = u8::try_from(number(10..12)).unwrap_or(u8::MAX);
    let day = u8::try_from(number(12..14)).unwrap_or(u8::MAX);
    if year < BIRTH_YEAR_MIN || calendar::check_date(year, month, day).is_err() {
        return Err(IdentError::InvalidBirthDate { year, month, day });
    }
    Ok(())
}

impl FromStr for ResidentId {
    type Err = IdentError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ResidentId::parse(text)
    }
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = ascii_str(&self.0);
        let head = text.get(..6).unwrap_or_default();
        let tail = text.get(16..).unwrap_or_default();
        write!(f, "ResidentId({head}**********{tail})")
    }
}

/// An administrative division code (行政区划代码), GB/T 2260: six digits, two for the
/// province, two for the city, two for the county. `000000` is hutong's code for the whole
/// nation.
///
/// A code covers a region by prefix: the national code covers every code, a province code
/// `XX0000` covers the codes that start with `XX`, a city code `XXYY00` the codes that start
/// with `XXYY`, and any other code only itself. JSON and the canonical binary encoding both
/// carry it as its six-digit string, and deserializing checks it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionCode([u8; REGION_LENGTH]);

/// The level of a region code, read from its zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RegionLevel {
    /// `000000`.
    National,
    /// `XX0000`.
    Province,
    /// `XXYY00` with `YY` not `00`.
    City,
    /// Any other code: a county, a district, or a county-level unit placed directly under a
    /// province (such as Jiyuan, 419001).
    County,
}

impl RegionCode {
    /// The whole nation.
    pub const NATIONAL: RegionCode = RegionCode(*b"000000");

    /// Parses six digits. A code starting with 00 must be the national code.
    pub fn parse(text: &str) -> Result<Self, IdentError> {
        check_length(text, IdentKind::RegionCode, REGION_LENGTH)?;
        for (index, found) in text.chars().enumerate() {
            if !found.is_ascii_digit() {
                return Err(IdentError::CharacterNotAllowed {
                    kind: IdentKind::RegionCode,
                    position: index + 1,
                    found,
                    allowed: DIGITS_TEXT,
                });
            }
        }
        RegionCode::from_digits(to_array(text.as_bytes()))
    }

    /// Six ASCII digits, already checked to be digits.
    fn from_digits(digits: [u8; REGION_LENGTH]) -> Result<Self, IdentError> {
        debug_assert!(digits.iter().all(u8::is_ascii_digit));
        let code = RegionCode(digits);
        if digits.starts_with(b"00") && !code.is_national() {
            return Err(IdentError::RegionWithoutProvince {
                code: code.as_number(),
            });
        }
        Ok(code)
    }

    /// The six digits.
    pub fn as_str(&self) -> &str {
        ascii_str(&self.0)
    }

    fn as_number(&self) -> u32 {
        self.0
            .iter()
            .fold(0u32, |value, digit| value * 10 + u32::from(digit - b'0'))
    }

    /// Whether this is `000000`, the whole nation.
    pub fn is_national(&self) -> bool {
        self.0 == Self::NATIONAL.0
    }

    /// Which level the code names.
    pub fn level(&self) -> RegionLevel {
        match (&self.0[..2], &self.0[2..4], &self.0[4..]) {
            (b"00", _, _) => RegionLevel::National,
            (_, b"00", b"00") => RegionLevel::Province,
            (_, _, b"00") => RegionLevel::City,
            _ => RegionLevel::County,
        }
    }

    /// The province `XX0000` this code lies in (itself for a province); `None` for the
    /// national code.
    pub fn province(&self) -> Option<RegionCode> {
        if self.is_national() {
            return None;
        }
        Some(self.with_zeros_from(2))
    }

    /// The city `XXYY00` this code lies in (itself for a city); `None` for the national
    /// code, a province, and codes whose city digits are `00`.
    pub fn city(&self) -> Option<RegionCode> {
        match self.level() {
            RegionLevel::National | RegionLevel::Province => None,
            RegionLevel::City | RegionLevel::County if &self.0[2..4] == b"00" => None,
            RegionLevel::City | RegionLevel::County => Some(self.with_zeros_from(4)),
        }
    }

    /// Whether `other` lies within this region (every code covers itself).
    pub fn covers(&self, other: &RegionCode) -> bool {
        other.as_str().starts_with(self.covered_prefix())
    }

    /// The digits every code this region covers starts with: none for the nation, two for
    /// a province, four for a city, all six for a county.
    pub fn covered_prefix(&self) -> &str {
        let digits = match self.level() {
            RegionLevel::National => 0,
            RegionLevel::Province => 2,
            RegionLevel::City => 4,
            RegionLevel::County => 6,
        };
        &self.as_str()[..digits]
    }

    /// Every code that covers this one, most specific first: the code itself, its city,
    /// its province, the nation.
    pub fn covering_regions(&self) -> Vec<RegionCode> {
        let mut regions = vec![self.clone()];
        for candidate in [self.city(), self.province(), Some(Self::NATIONAL)]
            .into_iter()
            .flatten()
        {
            if !regions.contains(&candidate) {
                regions.push(candidate);
            }
        }
        regions
    }

    fn with_zeros_from(&self, start: usize) -> RegionCode {
        let mut digits = self.0;
        for digit in digits.iter_mut().skip(start) {
            *digit = b'0';
        }
        RegionCode(digits)
    }
}

impl FromStr for RegionCode {
    type Err = IdentError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        RegionCode::parse(text)
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegionCode({})", self.as_str())
    }
}

impl Serialize for RegionCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RegionCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        RegionCode::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn check_length(text: &str, kind: IdentKind, expected: usize) -> Result<(), IdentError> {
    let found = text.chars().count();
    if found != expected {
        return Err(IdentError::Length {
            kind,
            expected,
            found,
        });
    }
    Ok(())
}

/// Copies checked ASCII bytes into a fixed array; the callers have checked the length.
fn to_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    debug_assert_eq!(bytes.len(), N);
    let mut out = [0u8; N];
    for (slot, byte) in out.iter_mut().zip(bytes) {
        *slot = *byte;
    }
    out
}

/// The identifiers hold ASCII only, checked when they were parsed.
fn ascii_str(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => {
            debug_assert!(false, "identifiers hold ASCII only");
            ""
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Codes of real registered organisations, as published on their licences.
    const REAL_USCCS: [&str; 13] = [
        "91350100M000100Y43",
        "91110000600037341L",
        "911100001000080343",
        "914403001922038216",
        "91440300708461136T",
        "91110108551385082Q",
        "91330100716105852F",
        "91440300570046799W",
        "911100001020321266",
        "91110102MA008DDL0X",
        "913400003487088943",
        "911100007109254543",
        "91340111MA2W0QEU5B",
    ];

    #[test]
    fn real_usccs_parse() {
        for text in REAL_USCCS {
            let code = Uscc::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"));
            assert_eq!(code.as_str(), text);
            assert_eq!(Uscc::with_check(&text[..17]).unwrap(), code);
        }
        let fuzhou = Uscc::parse("91350100M000100Y43").unwrap();
        assert_eq!(fuzhou.region(), RegionCode::parse("350100").unwrap());
        let beijing = Uscc::parse("911100001000080343").unwrap();
        assert_eq!(beijing.region().as_str(), "110000");
        // One spelling: the lower-case form of a real code is no code at all.
        assert!(matches!(
            Uscc::parse("91110000600037341l"),
            Err(IdentError::CharacterNotAllowed { position: 18, .. })
        ));
    }

    #[test]
    fn uscc_weights_are_powers_of_three() {
        let mut weight = 1u32;
        for expected in USCC_WEIGHTS {
            assert_eq!(weight, expected);
            weight = weight * 3 % 31;
        }
        assert_eq!(USCC_ALPHABET.len(), 31);
        for letter in [b'I', b'O', b'S', b'V', b'Z'] {
            assert!(!USCC_ALPHABET.contains(&letter));
        }
    }

    #[test]
    fn uscc_errors_name_the_rule() {
        assert_eq!(
            Uscc::parse("91350100M000100Y4"),
            Err(IdentError::Length {
                kind: IdentKind::Uscc,
                expected: 18,
                found: 17
            })
        );
        assert_eq!(
            Uscc::parse("91350100M000100Y4中"),
            Err(IdentError::CharacterNotAllowed {
                kind: IdentKind::Uscc,
                position: 18,
                found: '中',
                allowed: USCC_ALPHABET_TEXT
            })
        );
        assert_eq!(
            Uscc::parse("91350100I000100Y43"),
            Err(IdentError::CharacterNotAllowed {
                kind: IdentKind::Uscc,
                position: 9,
                found: 'I',
                allowed: USCC_ALPHABET_TEXT
            })
        );
        assert_eq!(
            Uscc::parse("91350100m000100Y43"),
            Err(IdentError::CharacterNotAllowed {
                kind: IdentKind::Uscc,
                position: 9,
                found: 'm',
                allowed: USCC_ALPHABET_TEXT
            })
        );
        assert_eq!(
            Uscc::parse("9135A100M000100Y43"),
            Err(IdentError::RegionNotDigits {
                position: 5,
                found: 'A'
            })
        );
        assert_eq!(
            Uscc::parse("91350100M000100Y44"),
            Err(IdentError::CheckCharacterMismatch {
                kind: IdentKind::Uscc,
                expected: '3',
                found: '4'
            })
        );
        assert_eq!(
            Uscc::with_check("91001234M000100Y4"),
            Err(IdentError::RegionWithoutProvince { code: 1234 })
        );
        let message = Uscc::parse("91350100M000100Y44").unwrap_err().to_string();
        assert!(message.contains("GB 32100-2015"), "{message}");
        let message = Uscc::parse("9135A100M000100Y43").unwrap_err().to_string();
        assert!(message.contains("GB/T 2260"), "{message}");
    }

    #[test]
    fn standard_resident_ids_parse() {
        // The examples printed in GB 11643-1999.
        for text in ["11010519491231002X", "440524188001010014"] {
            let id = ResidentId::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"));
            assert_eq!(ResidentId::with_check(&text[..17]).unwrap(), id);
        }
    }

    #[test]
    fn resident_id_errors_name_the_rule() {
        assert_eq!(
            ResidentId::parse("11010519491231002"),
            Err(IdentError::Length {
                kind: IdentKind::ResidentId,
                expected: 18,
                found: 17
            })
        );
        assert_eq!(
            ResidentId::parse("1101051949123100AX"),
            Err(IdentError::CharacterNotAllowed {
                kind: IdentKind::ResidentId,
                position: 17,
                found: 'A',
                allowed: DIGITS_TEXT
            })
        );
        assert_eq!(
            ResidentId::parse("11010519491231002x"),
            Err(IdentError::CharacterNotAllowed {
                kind: IdentKind::ResidentId,
                position: 18,
                found: 'x',
                allowed: RESIDENT_ID_CHECK_TEXT
            })
        );
        assert_eq!(
            ResidentId::parse("110105194912310021"),
            Err(IdentError::CheckCharacterMismatch {
                kind: IdentKind::ResidentId,
                expected: 'X',
                found: '1'
            })
        );
        for (first17, year, month, day) in [
            ("11010519490229002", 1949, 2, 29),
            ("11010519000229002", 1900, 2, 29),
            ("11010519491301002", 1949, 13, 1),
            ("11010519490431002", 1949, 4, 31),
            ("11010519490100002", 1949, 1, 0),
            ("11010517991231002", 1799, 12, 31),
        ] {
            let expected = Err(IdentError::InvalidBirthDate { year, month, day });
            assert_eq!(ResidentId::with_check(first17), expected, "{first17}");
            // The same number with a correct check character fails on the date.
            let check = char::from(resident_id_check_character(first17.as_bytes()));
            assert_eq!(ResidentId::parse(&format!("{first17}{check}")), expected);
        }
        assert!(
            ResidentId::with_check("11010520000229002").is_ok(),
            "2000 is a leap year"
        );
        let message = ResidentId::parse("110105194912310021")
            .unwrap_err()
            .to_string();
        assert!(message.contains("GB 11643-1999"), "{message}");
    }

    /// The birth-date check as it was written by hand before the calendar module: the new
    /// check must accept exactly what it accepted.
    fn hand_written_check_birth_date(body: &[u8]) -> Result<(), IdentError> {
        let number = |range: std::ops::Range<usize>| -> u16 {
            body.get(range)
                .unwrap_or_default()
                .iter()
                .fold(0u16, |value, digit| value * 10 + u16::from(digit - b'0'))
        };
        let year = number(6..10);
        let month = number(10..12) as u8;
        let day = number(12..14) as u8;
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => 0,
        };
        if year < BIRTH_YEAR_MIN || day == 0 || day > days_in_month {
            return Err(IdentError::InvalidBirthDate { year, month, day });
        }
        Ok(())
    }

    #[test]
    fn birth_dates_are_accepted_exactly_as_before() {
        let mut accepted = 0;
        // From a little before the earliest year allowed, to find the boundary too.
        for year in 1790..=2100 {
            for month in 0..=13 {
                for day in 0..=32 {
                    let body = format!("110105{year:04}{month:02}{day:02}002");
                    let new = check_birth_date(body.as_bytes());
                    assert_eq!(
                        new,
                        hand_written_check_birth_date(body.as_bytes()),
                        "{body}"
                    );
                    accepted += usize::from(new.is_ok());
                }
            }
        }
        // Every day of 1800-2100: 301 years of 365 days, plus 73 leap days (1800 and 1900
        // are not leap years, 2000 is, 2100 is not).
        assert_eq!(accepted, 301 * 365 + 73);
        for year in [0, 1, 1799, 2400, 9999] {
            for month in 1..=12 {
                for day in 28..=31 {
                    let body = format!("110105{year:04}{month:02}{day:02}002");
                    assert_eq!(
                        check_birth_date(body.as_bytes()),
                        hand_written_check_birth_date(body.as_bytes()),
                        "{body}"
                    );
                }
            }
        }
    }

    #[test]
    fn resident_id_stays_private() {
        let id = ResidentId::parse("11010519491231002X").unwrap();
        let shown = format!("{id:?}");
        assert_eq!(shown, "ResidentId(110105**********2X)");
        assert!(!shown.contains("19491231"));
        let salt = [1u8; 32];
        let commitment = id.commitment(crate::testkit::SUITE, &salt);
        let mut data = salt.to_vec();
        data.extend_from_slice(b"11010519491231002X");
        assert_eq!(commitment, crate::hash::tagged("hutong/person/v1", &data));
        assert_ne!(
            commitment,
            id.commitment(crate::testkit::SUITE, &[2u8; 32]),
            "the salt matters"
        );
    }

    // ResidentId must not implement Serialize. If it did, both impls below would apply to it
    // and the call in `resident_id_is_not_serialize` would be ambiguous: a compile error.
    trait AmbiguousIfSerialize<Marker> {
        fn check() {}
    }
    impl<T: ?Sized> AmbiguousIfSerialize<()> for T {}
    #[allow(dead_code)]
    struct SerializeMarker;
    impl<T: ?Sized + Serialize> AmbiguousIfSerialize<SerializeMarker> for T {}

    #[test]
    fn resident_id_is_not_serialize() {
        <ResidentId as AmbiguousIfSerialize<_>>::check();
    }

    #[test]
    fn region_codes_nest_by_prefix() {
        let code = |text: &str| RegionCode::parse(text).unwrap();
        let national = RegionCode::NATIONAL;
        let shandong = code("370000");
        let qingdao = code("370200");
        let shinan = code("370202");
        let jining = code("370800");
        let jiyuan = code("419001");
        assert!(national.is_national() && !shandong.is_national());
        assert!(national.covers(&shinan) && national.covers(&national));
        assert!(shandong.covers(&qingdao) && shandong.covers(&shinan) && shandong.covers(&jining));
        assert!(qingdao.covers(&shinan) && !qingdao.covers(&jining) && !qingdao.covers(&shandong));
        assert!(shinan.covers(&shinan) && !shinan.covers(&qingdao));
        assert!(!shandong.covers(&national) && !shandong.covers(&jiyuan));
        assert_eq!(shinan.province(), Some(shandong.clone()));
        assert_eq!(shinan.city(), Some(qingdao.clone()));
        assert_eq!(qingdao.city(), Some(qingdao.clone()));
        assert_eq!(shandong.city(), None);
        assert_eq!(shandong.province(), Some(shandong.clone()));
        assert_eq!(national.province(), None);
        assert_eq!(jiyuan.city(), Some(code("419000")));
        assert_eq!(code("370012").city(), None);
        assert_eq!(
            [&national, &shandong, &qingdao, &shinan].map(RegionCode::level),
            [
                RegionLevel::National,
                RegionLevel::Province,
                RegionLevel::City,
                RegionLevel::County
            ]
        );
        assert_eq!(
            shinan.covering_regions(),
            vec![
                shinan.clone(),
                qingdao.clone(),
                shandong.clone(),
                national.clone()
            ]
        );
        assert_eq!(
            shandong.covering_regions(),
            vec![shandong.clone(), national.clone()]
        );
        assert_eq!(national.covering_regions(), vec![national.clone()]);
    }

    #[test]
    fn region_code_errors_name_the_rule() {
        assert_eq!(
            RegionCode::parse("37020"),
            Err(IdentError::Length {
                kind: IdentKind::RegionCode,
                expected: 6,
                found: 5
            })
        );
        assert_eq!(
            RegionCode::parse("3702O2"),
            Err(IdentError::CharacterNotAllowed {
                kind: IdentKind::RegionCode,
                position: 5,
                found: 'O',
                allowed: DIGITS_TEXT
            })
        );
        assert_eq!(
            RegionCode::parse("000100"),
            Err(IdentError::RegionWithoutProvince { code: 100 })
        );
        let message = RegionCode::parse("000100").unwrap_err().to_string();
        assert!(
            message.contains("000100") && message.contains("GB/T 2260"),
            "{message}"
        );
    }

    #[test]
    fn serde_carries_checked_strings() {
        let region = RegionCode::parse("370202").unwrap();
        assert_eq!(serde_json::to_string(&region).unwrap(), "\"370202\"");
        let bytes = postcard::to_stdvec(&region).unwrap();
        assert_eq!(bytes, b"\x06370202");
        assert_eq!(postcard::from_bytes::<RegionCode>(&bytes).unwrap(), region);
        assert!(serde_json::from_str::<RegionCode>("\"37020X\"").is_err());
        assert!(postcard::from_bytes::<RegionCode>(b"\x05370202").is_err());

        let uscc = Uscc::parse("91350100M000100Y43").unwrap();
        let json = serde_json::to_string(&uscc).unwrap();
        assert_eq!(json, "\"91350100M000100Y43\"");
        assert_eq!(serde_json::from_str::<Uscc>(&json).unwrap(), uscc);
        let bytes = postcard::to_stdvec(&uscc).unwrap();
        assert_eq!(postcard::from_bytes::<Uscc>(&bytes).unwrap(), uscc);
        let error = serde_json::from_str::<Uscc>("\"91350100M000100Y44\"").unwrap_err();
        assert!(error.to_string().contains("check character"), "{error}");
    }

    fn uscc_character() -> impl Strategy<Value = char> {
        proptest::sample::select(USCC_ALPHABET.map(char::from).to_vec())
    }

    /// 17 characters that `Uscc::with_check` accepts: the region positions hold digits not
    /// starting with 00.
    fn uscc_body() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(uscc_character(), 2),
            1u32..=99,
            0u32..=9999,
            proptest::collection::vec(uscc_character(), 9),
        )
            .prop_map(|(head, province, rest, tail)| {
                let head: String = head.into_iter().collect();
                let tail: String = tail.into_iter().collect();
                format!("{head}{province:02}{rest:04}{tail}")
            })
    }

    fn resident_body() -> impl Strategy<Value = String> {
        (
            1u32..=99,
            0u32..=9999,
            1800u32..=2100,
            1u32..=12,
            1u32..=28,
            0u32..=999,
        )
            .prop_map(|(province, rest, year, month, day, sequence)| {
                format!("{province:02}{rest:04}{year:04}{month:02}{day:02}{sequence:03}")
            })
    }

    fn replace_at(text: &str, index: usize, replacement: char) -> String {
        text.chars()
            .enumerate()
            .map(|(position, original)| {
                if position == index {
                    replacement
                } else {
                    original
                }
            })
            .collect()
    }

    proptest! {
        #[test]
        fn any_uscc_body_with_its_check_parses(body in uscc_body()) {
            let code = Uscc::with_check(&body).unwrap();
            prop_assert_eq!(&code.as_str()[..17], body.as_str());
            prop_assert_eq!(Uscc::parse(code.as_str()), Ok(code.clone()));
            prop_assert_eq!(code.region().to_string(), &body[2..8]);
            let json = serde_json::to_string(&code).unwrap();
            prop_assert_eq!(serde_json::from_str::<Uscc>(&json).unwrap(), code.clone());
            let bytes = postcard::to_stdvec(&code).unwrap();
            prop_assert_eq!(postcard::from_bytes::<Uscc>(&bytes).unwrap(), code);
        }

        #[test]
        fn any_single_uscc_substitution_is_detected(
            body in uscc_body(),
            index in 0usize..18,
            replacement in uscc_character(),
        ) {
            let code = Uscc::with_check(&body).unwrap();
            let original = code.as_str().chars().nth(index).unwrap();
            prop_assume!(replacement != original);
            let changed = replace_at(code.as_str(), index, replacement);
            let result = Uscc::parse(&changed);
            prop_assert!(result.is_err(), "{} accepted", changed);
            let region_intact = !(2..8).contains(&index)
                || (replacement.is_ascii_digit() && !changed[2..].starts_with("00"));
            if region_intact {
                let is_check_mismatch = matches!(result, Err(IdentError::CheckCharacterMismatch { .. }));
                prop_assert!(is_check_mismatch, "{:?}", result);
            }
        }

        #[test]
        fn adjacent_uscc_transpositions_are_detected(body in uscc_body(), index in 0usize..16) {
            let code = Uscc::with_check(&body).unwrap();
            let mut characters: Vec<char> = code.as_str().chars().collect();
            prop_assume!(characters[index] != characters[index + 1]);
            characters.swap(index, index + 1);
            let changed: String = characters.into_iter().collect();
            prop_assert!(Uscc::parse(&changed).is_err(), "{} accepted", changed);
        }

        #[test]
        fn any_resident_body_with_its_check_parses(body in resident_body()) {
            let id = ResidentId::with_check(&body).unwrap();
            let text = format!("{body}{}", char::from(resident_id_check_character(body.as_bytes())));
            prop_assert_eq!(ResidentId::parse(&text), Ok(id));
        }

        #[test]
        fn any_single_resident_substitution_is_detected(
            body in resident_body(),
            index in 0usize..18,
            replacement in proptest::sample::select(b"0123456789X".map(char::from).to_vec()),
        ) {
            let check = char::from(resident_id_check_character(body.as_bytes()));
            let text = format!("{body}{check}");
            let original = text.chars().nth(index).unwrap();
            prop_assume!(replacement != original);
            let changed = replace_at(&text, index, replacement);
            prop_assert!(ResidentId::parse(&changed).is_err(), "{} accepted", changed);
        }

        #[test]
        fn covers_agrees_with_covering_regions(
            first in (proptest::sample::select(vec![0u32, 11, 37, 41]), proptest::sample::select(vec![0u32, 2, 8, 90]), proptest::sample::select(vec![0u32, 1, 2])),
            second in (proptest::sample::select(vec![0u32, 11, 37, 41]), proptest::sample::select(vec![0u32, 2, 8, 90]), proptest::sample::select(vec![0u32, 1, 2])),
        ) {
            let make = |(province, city, county): (u32, u32, u32)| {
                if province == 0 {
                    RegionCode::NATIONAL
                } else {
                    RegionCode::parse(&format!("{province:02}{city:02}{county:02}")).unwrap()
                }
            };
            let (first, second) = (make(first), make(second));
            prop_assert_eq!(first.covers(&second), second.covering_regions().contains(&first));
            prop_assert!(first.covers(&first));
            for outer in first.covering_regions() {
                // Covering is transitive.
                if first.covers(&second) {
                    prop_assert!(outer.covers(&second));
                }
            }
            let json = serde_json::to_string(&first).unwrap();
            prop_assert_eq!(serde_json::from_str::<RegionCode>(&json).unwrap(), first.clone());
            let bytes = postcard::to_stdvec(&first).unwrap();
            prop_assert_eq!(postcard::from_bytes::<RegionCode>(&bytes).unwrap(), first);
        }
    }
}
