//! The binary form of the proof documents: the same documents as the JSON ones, in the
//! chain's canonical encoding (postcard, section 2 of docs/proofs.md), behind a four-byte
//! magic. It is about a third of the JSON's size, and what a constrained verifier (a scanner,
//! a card reader) or a printed annex in a court file carries. Decoding refuses anything but
//! the one canonical encoding of the value it yields, and the verification is the JSON one's.
//!
//! [`verify_document`] and [`checkpoint_of_document`] read either form.

use serde::{Deserialize, Serialize};

use hutong_core::genesis::Genesis;

use crate::limits::PROOF_DOCUMENT_BYTES_MAX;
use crate::{
    BundleError, Checkpoint, CheckpointDocument, HolderProof, ProofBundle, TransactionProof,
    Verified, VerifyOptions,
};

/// The first bytes of every binary document: "HTB" and the version of this form, 2 (version 1
/// carried a sparse-Merkle proof per record, before ADR 0041). No JSON document starts so (JSON
/// starts with `{` or white space).
pub const BINARY_MAGIC: [u8; 4] = *b"HTB\x02";

/// The magic of the binary form's first version, recognised only to refuse it by name.
const BINARY_MAGIC_V1: [u8; 4] = *b"HTB\x01";

/// The media type the API answers a binary document with, when a request's `Accept` names it.
pub const BINARY_MEDIA_TYPE: &str = "application/vnd.hutong.proof";

/// One proof document of the API, in either form. A verifier holds one at a time, so the
/// variants are not boxed to even out their sizes.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Document {
    Bundle(ProofBundle),
    TransactionProof(TransactionProof),
    Checkpoint(CheckpointDocument),
    Holder(HolderProof),
}

impl Document {
    /// The binary form: [`BINARY_MAGIC`], then the canonical encoding of the document.
    pub fn to_binary(&self) -> Vec<u8> {
        let mut bytes = BINARY_MAGIC.to_vec();
        hutong_core::codec::append_canonical(&mut bytes, self);
        bytes
    }

    /// Reads a binary document of at most [`PROOF_DOCUMENT_BYTES_MAX`] bytes.
    pub fn from_binary(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.starts_with(&BINARY_MAGIC_V1) {
            return Err(BundleError::Binary(
                "it is of the binary form's first version (HTB\\x01, a proof per record), \
                 which this verifier no longer reads: fetch the document again"
                    .into(),
            ));
        }
        let body = bytes.strip_prefix(&BINARY_MAGIC).ok_or_else(|| {
            BundleError::Binary("it does not start with the magic HTB\\x02".into())
        })?;
        hutong_core::codec::from_canonical(body, PROOF_DOCUMENT_BYTES_MAX).map_err(|error| {
            match error {
                hutong_core::codec::CodecError::TooLarge {
                    size_bytes,
                    limit_bytes,
                } => BundleError::TooLarge {
                    size_bytes: size_bytes + BINARY_MAGIC.len(),
                    limit_bytes,
                },
                other => BundleError::Binary(other.to_string()),
            }
        })
    }

    /// The document's `format` field.
    pub fn format(&self) -> &str {
        match self {
            Document::Bundle(bundle) => &bundle.format,
            Document::TransactionProof(proof) => &proof.format,
            Document::Checkpoint(document) => &document.format,
            Document::Holder(proof) => &proof.format,
        }
    }
}

/// Whether `bytes` hold a binary document (rather than JSON).
pub fn is_binary(bytes: &[u8]) -> bool {
    // Any version of the form, so that one this verifier no longer reads is refused by name.
    bytes.starts_with(&BINARY_MAGIC[..3])
}

/// Reads a proof document in either form (binary when it starts with [`BINARY_MAGIC`], else
/// JSON) and verifies it: what `hutong verify` runs.
pub fn verify_document(
    bytes: &[u8],
    genesis: &Genesis,
    options: &VerifyOptions,
) -> Result<Verified, BundleError> {
    if !is_binary(bytes) {
        return crate::verify_json(bytes, genesis, options);
    }
    check_format(Document::from_binary(bytes)?)?.verify(genesis, options)
}

/// The signed checkpoint a proof document carries, in either form, unverified.
pub fn checkpoint_of_document(bytes: &[u8]) -> Result<Checkpoint, BundleError> {
    if !is_binary(bytes) {
        return crate::checkpoint_of_json(bytes);
    }
    Ok(match Document::from_binary(bytes)? {
        Document::Bundle(bundle) => bundle.checkpoint,
        Document::TransactionProof(proof) => proof.checkpoint,
        Document::Checkpoint(document) => document.checkpoint,
        Document::Holder(proof) => proof.checkpoint,
    })
}

/// A checkpoint document names its format (the other documents' checks do so themselves).
fn check_format(document: Document) -> Result<Document, BundleError> {
    if let Document::Checkpoint(checkpoint) = &document
        && checkpoint.format != crate::CHECKPOINT_FORMAT
    {
        return Err(BundleError::UnsupportedFormat {
            found: checkpoint.format.clone(),
        });
    }
    Ok(document)
}

impl Document {
    /// Verifies the document as its JSON form is verified.
    pub fn verify(
        &self,
        genesis: &Genesis,
        options: &VerifyOptions,
    ) -> Result<Verified, BundleError> {
        match self {
            Document::Bundle(bundle) => crate::verify_bundle_with(bundle, genesis, options)
                .map(|verified| Verified::Licence(Box::new(verified))),
            Document::TransactionProof(proof) => {
                crate::verify_transaction_proof(proof, genesis).map(Verified::Transaction)
            }
            Document::Checkpoint(document) => crate::verify_checkpoint_from(
                &document.checkpoint,
                genesis,
                options.trusted.as_ref(),
            )
            .map(Verified::Checkpoint),
            Document::Holder(proof) => crate::verify_holder_proof(proof, genesis, options)
                .map(|verified| Verified::Holder(Box::new(verified))),
        }
    }
}
