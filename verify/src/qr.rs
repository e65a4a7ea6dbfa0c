//! The static QR code of a licence (企业码): its payload and its offline check.
//!
//! The payload carries the issuer's own signature on the licence: the signed payload of the
//! `IssueLicence` transaction as it was committed, and the issuer's signature on it. So the
//! code needs no signing by the node (which does not hold the issuer's key), is fixed from the
//! moment of issuance (status changes and amendments are later transactions and leave it
//! alone), and anyone holding the issuer's public key (from the genesis file, or the issuer's
//! authority record in a proof bundle) can check offline that the issuer issued exactly this
//! licence; its current status is then an online question (`POST /v1/presentations/verify`).
//!
//! Text: `HT1:` followed by the unpadded base32 (RFC 4648, upper case) of
//!
//! ```text
//! form            1 byte   0x01 (an issuance transaction)
//! issued_height   varint   height of the block that committed the issuance
//! payload_length  varint   length of the next field, in bytes
//! payload         bytes    canonical encoding of the IssueLicence TxPayload
//! signature       64 bytes the issuer's ed25519 signature (R || s)
//! ```
//!
//! Varints are unsigned LEB128 (7 bits per byte, least significant group first, high bit set
//! on every byte but the last), at most 10 bytes, shortest form only. The signature verifies
//! on `signing_message("hutong/tx/v1", chain_id, payload)` under the issuer's key valid at
//! `issued_height`. Every character of the text is in the QR alphanumeric set.

use std::collections::BTreeMap;

use hutong_core::codec::{self, CodecError};
use hutong_core::crypto::{self, PublicKey, Signature, SignatureError};
use hutong_core::genesis::Genesis;
use hutong_core::hash::Hash32;
use hutong_core::ident::RegionCode;
use hutong_core::limits;
use hutong_core::records::{
    Authority, AuthorityId, FaceValue, Height, Holder, KeyEpoch, LicenceNumber, TimeMs, TypeCode,
};
use hutong_core::tx::{Endorsement, Transaction, TxBody, TxPayload, ValidUntil};
use serde::{Deserialize, Serialize};

use super::base32::{self, Base32Error};
use hutong_core::suite::Suite;

/// What every payload text starts with.
pub const QR_PREFIX: &str = "HT1:";
/// The form byte of a payload that carries an issuance transaction.
pub const QR_FORM_ISSUANCE: u8 = 0x01;
pub use crate::limits::QR_TEXT_CHARS_MAX;
use crate::limits::VARINT_BYTES_MAX;

/// Why a QR payload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    #[error("a hutong QR payload starts with {QR_PREFIX:?}")]
    MissingPrefix,
    #[error("the payload has {chars} characters; a QR code holds at most {limit}")]
    TooLong { chars: usize, limit: usize },
    #[error("the payload is not base32: {0}")]
    Base32(Base32Error),
    #[error("the payload ends inside its {field}")]
    Truncated { field: &'static str },
    #[error("unknown payload form {0:#04x}")]
    UnknownForm(u8),
    #[error("the {field} varint is over-long or overflows 64 bits")]
    BadVarint { field: &'static str },
    #[error("{0} bytes follow the signature")]
    TrailingBytes(usize),
    #[error("the signed payload is not a canonical transaction payload: {0}")]
    Payload(CodecError),
    #[error("the signed payload is a {0} transaction, not an issuance")]
    NotAnIssuance(&'static str),
    #[error("the transaction is not an issuance signed by its issuer alone")]
    NotIssuerSigned,
    #[error("the payload is for chain {found:?}, not {expected:?}")]
    ChainMismatch { expected: String, found: String },
    #[error("issuer {0} is not known to the verifier")]
    UnknownIssuer(AuthorityId),
    #[error("issuer {issuer} had no key valid at height {height}")]
    NoKeyAtHeight { issuer: AuthorityId, height: Height },
    #[error("the issuer's signature does not verify: {0}")]
    Signature(SignatureError),
}

impl QrError {
    /// A stable kebab-case name.
    pub fn code(&self) -> &'static str {
        match self {
            QrError::MissingPrefix => "missing-prefix",
            QrError::TooLong { .. } => "too-long",
            QrError::Base32(_) => "base32",
            QrError::Truncated { .. } => "truncated",
            QrError::UnknownForm(_) => "unknown-form",
            QrError::BadVarint { .. } => "bad-varint",
            QrError::TrailingBytes(_) => "trailing-bytes",
            QrError::Payload(_) => "payload",
            QrError::NotAnIssuance(_) => "not-an-issuance",
            QrError::NotIssuerSigned => "not-issuer-signed",
            QrError::ChainMismatch { .. } => "chain-mismatch",
            QrError::UnknownIssuer(_) => "unknown-issuer",
            QrError::NoKeyAtHeight { .. } => "no-key-at-height",
            QrError::Signature(_) => "bad-signature",
        }
    }
}

/// A decoded QR payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrPayload {
    pub issued_height: Height,
    /// The issuance transaction's signed payload.
    pub payload: TxPayload,
    /// The issuer's signature on it.
    pub signature: Signature,
}

/// What a verified QR payload says, signed by the issuer at issuance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedQr {
    pub chain_id: String,
    pub type_code: TypeCode,
    pub number: LicenceNumber,
    pub issuer: AuthorityId,
    /// The key that signed it.
    pub issuer_key: PublicKey,
    pub holder: Holder,
    pub holder_name: String,
    pub region: RegionCode,
    pub face: BTreeMap<String, FaceValue>,
    pub valid_from: TimeMs,
    pub valid_until: ValidUntil,
    pub document_hash: Hash32,
    pub issued_height: Height,
    /// The id of the issuance transaction: the licence's first history entry names it.
    pub transaction_id: Hash32,
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let group = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(group);
            return;
        }
        out.push(group | 0x80);
    }
}

fn read_varint(bytes: &[u8], position: &mut usize, field: &'static str) -> Result<u64, QrError> {
    let mut value: u64 = 0;
    for index in 0..VARINT_BYTES_MAX {
        let byte = *bytes.get(*position).ok_or(QrError::Truncated { field })?;
        *position += 1;
        let group = u64::from(byte & 0x7f);
        let shift = 7 * index as u32;
        // The tenth group may only hold the top bit of a u64.
        if index == VARINT_BYTES_MAX - 1 && group > 1 {
            return Err(QrError::BadVarint { field });
        }
        value |= group << shift;
        if byte & 0x80 == 0 {
            // Shortest form: a last group of zero is only allowed for the value 0 itself.
            if group == 0 && index > 0 {
                return Err(QrError::BadVarint { field });
            }
            return Ok(value);
        }
    }
    Err(QrError::BadVarint { field })
}

impl QrPayload {
    /// The payload of a committed issuance transaction.
    pub fn from_issuance(
        transaction: &Transaction,
        issued_height: Height,
    ) -> Result<Self, QrError> {
        if !matches!(transaction.payload.body, TxBody::IssueLicence { .. }) {
            return Err(QrError::NotAnIssuance(transaction.payload.body.kind_name()));
        }
        match transaction.signatures.as_slice() {
            [endorsement] if endorsement.authority == transaction.payload.signer => Ok(QrPayload {
                issued_height,
                payload: transaction.payload.clone(),
                signature: endorsement.signature,
            }),
            _ => Err(QrError::NotIssuerSigned),
        }
    }

    /// The payload's bytes (before base32).
    pub fn to_bytes(&self) -> Vec<u8> {
        let payload = codec::to_canonical(&self.payload);
        let mut out = Vec::with_capacity(1 + 10 + 3 + payload.len() + 64);
        out.push(QR_FORM_ISSUANCE);
        push_varint(&mut out, self.issued_height);
        push_varint(&mut out, payload.len() as u64);
        out.extend_from_slice(&payload);
        out.extend_from_slice(self.signature.as_bytes());
        out
    }

    /// The text a QR code encodes.
    pub fn to_text(&self) -> String {
        format!("{QR_PREFIX}{}", base32::encode(&self.to_bytes()))
    }

    /// Decodes a scanned text. Surrounding white space (some scanners add a line end) is
    /// ignored; nothing else is.
    pub fn from_text(text: &str) -> Result<Self, QrError> {
        let text = text.trim();
        if text.len() > QR_TEXT_CHARS_MAX {
            return Err(QrError::TooLong {
                chars: text.chars().count(),
                limit: QR_TEXT_CHARS_MAX,
            });
        }
        let encoded = text.strip_prefix(QR_PREFIX).ok_or(QrError::MissingPrefix)?;
        let bytes = base32::decode(encoded).map_err(QrError::Base32)?;
        Self::from_bytes(&bytes)
    }

    /// Decodes the payload's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, QrError> {
        let form = *bytes.first().ok_or(QrError::Truncated { field: "form" })?;
        if form != QR_FORM_ISSUANCE {
            return Err(QrError::UnknownForm(form));
        }
        let mut position = 1;
        let issued_height = read_varint(bytes, &mut position, "issued_height")?;
        let length = read_varint(bytes, &mut position, "payload_length")?;
        let length = usize::try_from(length)
            .ok()
            .filter(|length| *length <= limits::TX_BYTES_MAX)
            .ok_or(QrError::Payload(CodecError::TooLarge {
                size_bytes: usize::try_from(length).unwrap_or(usize::MAX),
                limit_bytes: limits::TX_BYTES_MAX,
            }))?;
        let end = position
            .checked_add(length)
            .filter(|end| *end <= bytes.len())
            .ok_or(QrError::Truncated { field: "payload" })?;
        let payload: TxPayload = codec::from_canonical(&bytes[position..end], limits::TX_BYTES_MAX)
            .map_err(QrError::Payload)?;
        if !matches!(payload.body, TxBody::IssueLicence { .. }) {
            return Err(QrError::NotAnIssuance(payload.body.kind_name()));
        }
        let signature_end = end + crypto::SIGNATURE_BYTES;
        let signature_bytes: [u8; crypto::SIGNATURE_BYTES] = bytes
            .get(end..signature_end)
            .and_then(|slice| slice.try_into().ok())
            .ok_or(QrError::Truncated { field: "signature" })?;
        if bytes.len() > signature_end {
            return Err(QrError::TrailingBytes(bytes.len() - signature_end));
        }
        Ok(QrPayload {
            issued_height,
            payload,
            signature: Signature(signature_bytes),
        })
    }

    /// The issuance transaction this payload was taken from.
    pub fn transaction(&self) -> Transaction {
        Transaction {
            payload: self.payload.clone(),
            signatures: vec![Endorsement {
                authority: self.payload.signer.clone(),
                signature: self.signature,
            }],
        }
    }

    /// The licence it identifies: `(type, number)`.
    pub fn licence(&self) -> Option<(&TypeCode, &LicenceNumber)> {
        self.payload.body.licence()
    }

    /// Checks the issuer's signature with the issuer's key history (`keys`, as in an authority
    /// record) on chain `chain_id` of algorithm suite `suite`.
    pub fn verify(
        &self,
        suite: Suite,
        chain_id: &str,
        keys: &[KeyEpoch],
    ) -> Result<VerifiedQr, QrError> {
        if self.payload.chain_id != chain_id {
            return Err(QrError::ChainMismatch {
                expected: chain_id.to_owned(),
                found: self.payload.chain_id.clone(),
            });
        }
        let issuer = self.payload.signer.clone();
        let key = keys
            .iter()
            .rev()
            .find(|epoch| epoch.valid_at(self.issued_height))
            .map(|epoch| epoch.key)
            .ok_or_else(|| QrError::NoKeyAtHeight {
                issuer: issuer.clone(),
                height: self.issued_height,
            })?;
        let message = self.payload.signing_message().map_err(QrError::Signature)?;
        suite
            .verify(&key, &message, &self.signature)
            .map_err(QrError::Signature)?;
        let TxBody::IssueLicence {
            type_code,
            number,
            holder,
            holder_name,
            region,
            face,
            valid_from,
            valid_until,
            document_hash,
        } = &self.payload.body
        else {
            return Err(QrError::NotAnIssuance(self.payload.body.kind_name()));
        };
        Ok(VerifiedQr {
            chain_id: chain_id.to_owned(),
            type_code: type_code.clone(),
            number: number.clone(),
            issuer,
            issuer_key: key,
            holder: holder.clone(),
            holder_name: holder_name.clone(),
            region: region.clone(),
            face: face.clone(),
            valid_from: *valid_from,
            valid_until: *valid_until,
            document_hash: *document_hash,
            issued_height: self.issued_height,
            transaction_id: self.transaction().id(suite),
        })
    }

    /// Checks it against an authority record (proved in a bundle, or read from a node).
    pub fn verify_with_authority(
        &self,
        suite: Suite,
        chain_id: &str,
        authority: &Authority,
    ) -> Result<VerifiedQr, QrError> {
        if authority.id != self.payload.signer {
            return Err(QrError::UnknownIssuer(self.payload.signer.clone()));
        }
        self.verify(suite, chain_id, &authority.keys)
    }

    /// Checks it against the genesis file alone: enough for issuers registered at genesis whose
    /// key has not rotated since. Others need the issuer's authority record.
    pub fn verify_with_genesis(&self, genesis: &Genesis) -> Result<VerifiedQr, QrError> {
        let draft = genesis
            .authorities
            .iter()
            .find(|draft| draft.id == self.payload.signer)
            .ok_or_else(|| QrError::UnknownIssuer(self.payload.signer.clone()))?;
        let keys = [KeyEpoch {
            key: draft.key,
            valid_from: 0,
            valid_until: None,
            compromised_from: None,
        }];
        self.verify(genesis.suite, &genesis.chain_id, &keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_shortest_form_leb128() {
        for value in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut bytes = Vec::new();
            push_varint(&mut bytes, value);
            let mut position = 0;
            assert_eq!(read_varint(&bytes, &mut position, "x"), Ok(value));
            assert_eq!(position, bytes.len());
        }
        let mut position = 0;
        assert_eq!(
            read_varint(&[0x81, 0x00], &mut position, "x"),
            Err(QrError::BadVarint { field: "x" })
        );
        let mut position = 0;
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(
            read_varint(&overflow, &mut position, "x"),
            Err(QrError::BadVarint { field: "x" })
        );
        let mut position = 0;
        assert_eq!(
            read_varint(&[0x80], &mut position, "x"),
            Err(QrError::Truncated { field: "x" })
        );
    }
}
