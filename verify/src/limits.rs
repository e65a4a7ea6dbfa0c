//! Every size and count the offline verifier accepts, in one place.
//!
//! A verifier reads documents from anyone (a node it does not trust, a file an applicant
//! handed over, a scanned code), so each is bounded before it is decoded, and each part of it
//! before it is checked. The relations to the limits of the core and of the API's bundles are
//! asserted below and in the API's configuration.

use hutong_core::limits as core_limits;

/// Largest proof document [`crate::verify_json`] reads.
pub const PROOF_DOCUMENT_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Most record proofs in one bundle: the licence, its issuer, a grant per covering region,
/// every open objection, the recognition sets of the regions covering the one asked with every
/// recognition they list about the licence ([`BUNDLE_RECORDS_WORST`]), and the other
/// authorities that signed events of its history.
pub const RECORD_PROOFS_MAX: usize = 512;
/// The record proofs of the largest bundle a node builds, but for the history's other signers:
/// the licence, its issuer, a grant for each of the (at most four) regions covering the
/// licence's, every open objection, and for each of the (at most four) regions covering the one
/// asked its recognition set, full of recognitions about the licence (ADR 0039).
pub const BUNDLE_RECORDS_WORST: usize = 2
    + 4
    + core_limits::OPEN_OBJECTIONS_PER_LICENCE_MAX
    + 4 * (1 + core_limits::RECOGNITIONS_PER_SET_MAX);
/// Most validator-set changes one checkpoint may carry.
pub const VALIDATOR_CHANGES_MAX: usize = 4096;
/// The most characters a QR code can hold in alphanumeric mode (version 40, level L); a longer
/// text cannot have come from a QR code and is refused before decoding.
pub const QR_TEXT_CHARS_MAX: usize = 4296;
/// Longest varint accepted in a QR payload (a u64 needs at most 10 groups of 7 bits).
pub const VARINT_BYTES_MAX: usize = 10;
/// Most cosignatures one `witnessed` section of a bundle carries.
pub const COSIGNATURES_MAX: usize = 64;
/// Most witness keys a verifier's list (or a node's configuration) names.
pub const WITNESS_KEYS_MAX: usize = 64;
/// Longest witness key name, in bytes.
pub const WITNESS_NAME_BYTES_MAX: usize = 256;

const _: () = {
    // Every bundle a node builds is read, with room for a hundred other signers of the history.
    assert!(RECORD_PROOFS_MAX >= BUNDLE_RECORDS_WORST + 100);
    assert!(WITNESS_KEYS_MAX <= COSIGNATURES_MAX);
    // A document holds at least one transaction-sized record with its state proof.
    assert!(PROOF_DOCUMENT_BYTES_MAX >= 4 * core_limits::TX_BYTES_MAX);
    assert!(VARINT_BYTES_MAX * 7 >= 64);
};
