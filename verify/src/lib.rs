//! # hutong-verify
//!
//! Offline verification of hutong's answers: everything a verifier needs to check a proof that
//! a node served, with no network and no store, trusting only the chain's genesis file and
//! never the node that answered. This is the library a bank, a court or another province's
//! system embeds; `hutong verify` and the node's API use it too. It depends on
//! `hutong-core` (and the consensus crate's certificate types) and on nothing that does IO,
//! needs an async runtime or a web stack.
//!
//! A licence's proof bundle (`GET /v1/licences/{type}/{number}/proof`) checked against the
//! genesis file:
//!
//! ```
//! use hutong_core::genesis::Genesis;
//! use hutong_core::records::Status;
//! use hutong_verify::{Verified, VerifyOptions, verify_json};
//!
//! // The chain's genesis file, which the verifier got from the network's governors, and a
//! // bundle that any node served.
//! let genesis = Genesis::from_json(include_bytes!("../tests/vectors/genesis.json"))?;
//! let bundle = include_bytes!("../tests/vectors/licence-bundle.json");
//!
//! // A historical check: the vector's header is older than the chain's freshness allows
//! // against today's clock (`VerifyOptions::default()` checks against the system clock).
//! let Verified::Licence(licence) = verify_json(bundle, &genesis, &VerifyOptions::historical())? else {
//!     panic!("a licence bundle verifies as a licence");
//! };
//! let verdict = licence.verdict.as_ref().expect("the bundle proves the licence exists");
//! assert!(verdict.valid);
//! assert_eq!(verdict.status, Status::Active);
//! println!(
//!     "{} {}: valid, proved against block {} signed by the validators",
//!     licence.type_code, licence.number, licence.checkpoint.height
//! );
//!
//! // A bundle changed on the way does not verify.
//! let forged = String::from_utf8_lossy(bundle).replacen("\"height\": ", "\"height\": 1", 1);
//! assert!(verify_json(forged.as_bytes(), &genesis, &VerifyOptions::historical()).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What is checked, in order (`docs/proofs.md` gives the bytes):
//!
//! 1. **The signers.** The genesis file names the first validator set. Each entry of
//!    [`Checkpoint::validator_changes`] is the last header the set trusted so far signed before
//!    a new set took effect, with the `ChangeValidators` transactions due at the next height and
//!    their inclusion proofs in that header's log; applying them gives the next trusted set.
//! 2. **The header.** The checkpoint header's `validators_hash` is the trusted set's hash and its
//!    commit certificate carries precommits of more than two thirds of that set's voting power
//!    for the header's hash. A checkpoint at height 0 has no certificate: its header is
//!    recomputed from the genesis file instead.
//! 3. **The records.** The document's [`ProvedRecord`]s (records, and keys that hold nothing)
//!    are shown together under the header's state root by one multiproof of the state tree
//!    (`hutong_core::multiproof`, ADR 0041).
//! 4. **The meaning.** For a licence bundle, the verdict function of the core runs on the
//!    proved records, so an offline verifier gets the same verdict, with the same reasons, as
//!    the node.
//!
//! Trust assumption: the bundle must list every change of the validator set since genesis; a
//! bundle that skipped one would have to carry a header signed by more than two thirds of a set
//! no longer in force. Like every light client that starts from genesis, a verifier assumes
//! that more than two thirds of a former set do not sign a false header after they leave.

pub mod base32;
pub mod binary;
pub mod history;
pub mod limits;
pub mod qr;
pub mod split_view;
pub mod witness;

use std::collections::BTreeSet;

use hutong_consensus::{CertificateError, ValidatorId, ValidatorSetError};
use hutong_core::block::{
    BlockCertificateError, BlockHeader, CommitCertificate, PROTOCOL_VERSION, TxLocation, tx_root,
    validator_set,
};
use hutong_core::crypto::{PublicKey, Signature};
use hutong_core::genesis::Genesis;
use hutong_core::hash::Hash32;
use hutong_core::ident::RegionCode;
use hutong_core::log::{ConsistencyProof, InclusionProof, LogError, LogHasher};
use hutong_core::multiproof::{SmtItem, SmtMultiProof, SmtMultiProofError, verify_multi};
use hutong_core::records::{
    Authority, Height, Holder, Licence, LicenceNumber, NodeEntry, NodeRegistry, Record, RecordKey,
    TimeMs, TypeCode,
};
use hutong_core::smt::{self, SmtProof, SmtProofError};
use hutong_core::suite::Suite;
use hutong_core::tx::{Transaction, TxBody};
use hutong_core::verdict::{self, Verdict, VerdictRecords};
use serde::{Deserialize, Serialize};

/// The `format` of a licence proof bundle.
pub const BUNDLE_FORMAT: &str = "hutong-proof-bundle/v2";
/// The `format` of a transaction inclusion proof.
pub const TRANSACTION_PROOF_FORMAT: &str = "hutong-transaction-proof/v2";
/// The `format` of a signed checkpoint.
pub const CHECKPOINT_FORMAT: &str = "hutong-checkpoint/v1";
/// The `format` of a holder's licence list with its proof (一照通查, ADR 0039).
pub const HOLDER_PROOF_FORMAT: &str = "hutong-holder-proof/v2";

pub use history::{HISTORY_FORMAT, HistoryError, HistoryStep};
pub use limits::{PROOF_DOCUMENT_BYTES_MAX, RECORD_PROOFS_MAX, VALIDATOR_CHANGES_MAX};

/// A header the validators signed, with what connects its signers to the genesis file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub header: BlockHeader,
    /// The commit certificate of `header`; absent only for the genesis header (height 0).
    pub certificate: Option<CommitCertificate>,
    /// The validator set that signed `header` (voting members only, sorted by key).
    pub validators: Vec<NodeEntry>,
    /// Every change of the validator set since genesis, oldest first; or, when
    /// `trusted_height` is set, every change after that height.
    pub validator_changes: Vec<ValidatorChange>,
    /// Set when the checkpoint starts from a checkpoint the verifier already trusts (a light
    /// client's, [`TrustedCheckpoint`]) instead of genesis: its height.
    #[serde(default)]
    pub trusted_height: Option<Height>,
}

/// A checkpoint the verifier verified before and keeps, so that later checkpoints may start
/// from it (`?trusted_height=`) and carry only the validator-set hand-overs after it: a light
/// client's state. It is made only by verifying a checkpoint ([`TrustedCheckpoint::verified`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedCheckpoint {
    /// [`TRUSTED_CHECKPOINT_FORMAT`].
    pub format: String,
    pub chain_id: String,
    pub height: Height,
    pub block_hash: Hash32,
    /// The validator set that signed the header at `height` (voting members, sorted by key).
    pub validators: Vec<NodeEntry>,
}

/// The `format` of a [`TrustedCheckpoint`].
pub const TRUSTED_CHECKPOINT_FORMAT: &str = "hutong-trusted-checkpoint/v1";

impl TrustedCheckpoint {
    /// Verifies `checkpoint` (from genesis, or from `from` when it starts from a trusted
    /// checkpoint) and keeps what later checkpoints may start from.
    pub fn verified(
        checkpoint: &Checkpoint,
        genesis: &Genesis,
        from: Option<&TrustedCheckpoint>,
    ) -> Result<Self, BundleError> {
        let verified = verify_checkpoint_from(checkpoint, genesis, from)?;
        Ok(TrustedCheckpoint {
            format: TRUSTED_CHECKPOINT_FORMAT.into(),
            chain_id: verified.chain_id,
            height: verified.height,
            block_hash: verified.block_hash,
            validators: checkpoint.validators.clone(),
        })
    }
}

/// One hand-over of the validator set: the last header the outgoing set signed before the new
/// set took effect at `effective_height`, and every `ChangeValidators` transaction due at that
/// height, in log order, each with its inclusion proof in that header's log. Applying their
/// changes to the outgoing set gives the incoming one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorChange {
    pub effective_height: Height,
    /// The header at `effective_height - 1`.
    pub header: BlockHeader,
    pub certificate: CommitCertificate,
    pub transactions: Vec<LoggedTransaction>,
}

/// A committed transaction with its inclusion proof in a header's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggedTransaction {
    pub transaction: Transaction,
    pub inclusion: InclusionProof,
}

/// A record a document proves under its checkpoint's state root, or a key it proves holds
/// nothing. The document's one [`SmtMultiProof`] shows all of them together. A document holds
/// a few of them, most present, so the variants are not boxed to even out their sizes.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvedRecord {
    /// The record, recorded under its own key.
    Present(Record),
    /// Nothing is recorded under this key.
    Absent(RecordKey),
}

impl ProvedRecord {
    /// `record` if there is one, else the absence of `key`.
    pub fn new(key: RecordKey, record: Option<Record>) -> Self {
        match record {
            Some(record) => ProvedRecord::Present(record),
            None => ProvedRecord::Absent(key),
        }
    }

    /// The key proved.
    pub fn key(&self) -> RecordKey {
        match self {
            ProvedRecord::Present(record) => record.key(),
            ProvedRecord::Absent(key) => key.clone(),
        }
    }

    /// The record, or `None` for a key that holds nothing.
    pub fn record(&self) -> Option<&Record> {
        match self {
            ProvedRecord::Present(record) => Some(record),
            ProvedRecord::Absent(_) => None,
        }
    }

    /// The state tree's item: the key's hash and the record's hash, if any.
    pub fn item(&self, suite: Suite) -> SmtItem {
        match self {
            ProvedRecord::Present(record) => (
                record.key().state_hash(suite),
                Some(record.state_hash(suite)),
            ),
            ProvedRecord::Absent(key) => (key.state_hash(suite), None),
        }
    }
}

/// Everything a verifier needs to check a licence offline: the licence (or the proof that it
/// was never issued), the records its verdict depends on (issuer, grant, recognitions, open
/// objections), and the signed checkpoint whose state root they are proved against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBundle {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    pub chain_id: String,
    pub type_code: TypeCode,
    pub number: LicenceNumber,
    /// The region the bundle was asked for: its recognition sets are proved whole for it
    /// (ADR 0039), and the verdict is for it unless the verifier asks for another.
    #[serde(default)]
    pub region: Option<RegionCode>,
    /// The licence (or its absence) first, then the records its verdict reads.
    pub records: Vec<ProvedRecord>,
    /// The multiproof of `records`, in their order, against the checkpoint's state root.
    pub state_proof: SmtMultiProof,
    pub checkpoint: Checkpoint,
    /// Present when asked for with `?witnesses=k`: a checkpoint note at least as large as the
    /// header's log, cosigned by witnesses, with the proof that it extends the header's log
    /// ([`witness::Witnessed`], docs/proofs.md section 14).
    #[serde(default)]
    pub witnessed: Option<witness::Witnessed>,
}

/// A committed transaction and the proof of its place: the signed checkpoint of the block it
/// is in, that block's predecessor header (whose log size, with the block's, brackets the
/// transaction's leaf), its inclusion under the block's `tx_root` at its index, and its
/// inclusion in the log at its leaf index. Every field of `location` is checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionProof {
    /// [`TRANSACTION_PROOF_FORMAT`].
    pub format: String,
    pub transaction: Transaction,
    pub location: TxLocation,
    /// The header at `location.height - 1`; its hash is the block's `prev_hash`.
    pub previous_header: BlockHeader,
    /// Inclusion of the transaction's leaf under the block's `tx_root`, at `location.index`
    /// in a tree of the block's transaction count.
    pub block_inclusion: InclusionProof,
    /// Inclusion of the transaction's leaf in the log of `checkpoint.header.log_size` leaves,
    /// at `location.log_index`.
    pub inclusion: InclusionProof,
    /// The signed checkpoint of the block at `location.height`.
    pub checkpoint: Checkpoint,
}

/// Every licence of one holder (一照通查, `GET /v1/holders/{holder}/licences/proof`): the
/// holder's list (or the proof that it has none), each licence it names, and the signed
/// checkpoint they are proved against (ADR 0039).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolderProof {
    /// [`HOLDER_PROOF_FORMAT`].
    pub format: String,
    pub chain_id: String,
    pub holder: Holder,
    /// The holder's list (`HolderLicences(holder)`, or its absence) first, then each licence it
    /// names, in its order.
    pub records: Vec<ProvedRecord>,
    /// The multiproof of `records`, in their order, against the checkpoint's state root.
    pub state_proof: SmtMultiProof,
    pub checkpoint: Checkpoint,
}

/// What a verified holder proof establishes: the whole of the holder's licences at the
/// checkpoint, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedHolder {
    pub checkpoint: VerifiedCheckpoint,
    pub holder: Holder,
    /// Every licence issued to the holder, in the order issued.
    pub licences: Vec<Licence>,
    /// How old the header was by the verifier's clock; `None` for a historical check.
    pub age_ms: Option<u64>,
}

/// A signed checkpoint as a standalone document (`GET /v1/log/checkpoint`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointDocument {
    /// [`CHECKPOINT_FORMAT`].
    pub format: String,
    pub checkpoint: Checkpoint,
    /// Witnesses' cosignatures of this checkpoint's note (its log size and root), those the
    /// node accepted ([`witness::Cosignature`], docs/proofs.md section 14).
    #[serde(default)]
    pub cosignatures: Vec<witness::Cosignature>,
}

/// Why a proof does not verify. [`BundleError::code`] gives a stable name for test vectors and
/// tools.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("the document is not JSON of a known proof format: {0}")]
    Json(String),
    #[error("the document is not a binary proof document: {0}")]
    Binary(String),
    #[error("the document is {size_bytes} bytes; the limit is {limit_bytes}")]
    TooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    #[error("unsupported format {found:?}")]
    UnsupportedFormat { found: String },
    #[error(
        "header {height} is of protocol version {found}; this verifier checks version {supported}"
    )]
    UnsupportedProtocolVersion {
        height: Height,
        found: u32,
        supported: u32,
    },
    #[error("the proof is for chain {found:?}, the genesis file is for {expected:?}")]
    ChainMismatch { expected: String, found: String },
    #[error("the proof carries {count} {what}; the limit is {limit}")]
    TooMany {
        what: &'static str,
        count: usize,
        limit: usize,
    },
    #[error(
        "the validator change at height {height} is not after the heights already covered (from {trusted_from})"
    )]
    ChangesOutOfOrder {
        trusted_from: Height,
        height: Height,
    },
    #[error(
        "header {height} names validator set {found}, but the set trusted at that height hashes to {expected}"
    )]
    ValidatorsHashMismatch {
        height: Height,
        expected: Hash32,
        found: Hash32,
    },
    #[error("the certificate of header {height} does not verify: {error}")]
    Certificate {
        height: Height,
        error: BlockCertificateError,
    },
    #[error("header {height} at height {height} carries no certificate (only genesis may)")]
    MissingCertificate { height: Height },
    #[error("the genesis header in the proof is not the one the genesis file gives")]
    GenesisHeaderMismatch,
    #[error(
        "the validator change due at height {height} is not what a hand-over carries: {reason}"
    )]
    ChangeTransaction { height: Height, reason: String },
    #[error("after the change at height {height} no validator is left")]
    EmptyValidatorSet { height: Height },
    #[error("the validators listed are not the set derived from genesis and the changes")]
    ValidatorListMismatch,
    #[error(
        "the checkpoint starts from a trusted checkpoint at height {height}, but the verifier trusts {trusted}"
    )]
    UntrustedStart { height: Height, trusted: String },
    #[error(
        "header {height} is not the block the verifier trusts at that height ({trusted}): the chain has forked or the node lies"
    )]
    TrustedHeaderMismatch { height: Height, trusted: Hash32 },
    #[error("the proof of {key} does not verify: {error}")]
    RecordProof { key: String, error: SmtProofError },
    #[error("the state multiproof does not verify: {0}")]
    StateProof(SmtMultiProofError),
    #[error("the bundle's first record proof is not for licence {type_code}/{number}")]
    MissingLicenceProof {
        type_code: TypeCode,
        number: LicenceNumber,
    },
    #[error(
        "the inclusion proof is for leaf {found} of {found_size}; the transaction is leaf {expected} of {expected_size}"
    )]
    InclusionMismatch {
        expected: u64,
        found: u64,
        expected_size: u64,
        found_size: u64,
    },
    #[error("the inclusion proof does not verify: {0}")]
    Inclusion(LogError),
    #[error(
        "the bundle's header is stale: its time {header_time} is {age_ms} ms before {against} \
         ({reference}), and the chain's genesis allows {limit_ms} ms; ask a node that is in \
         touch with the network for a fresh bundle, or verify as historical"
    )]
    Stale {
        header_time: TimeMs,
        against: &'static str,
        reference: TimeMs,
        age_ms: u64,
        limit_ms: u64,
    },
    #[error("the transaction proof's {what}: {detail}")]
    PositionMismatch { what: &'static str, detail: String },
    #[error("the inclusion under the block's tx_root does not verify: {0}")]
    BlockInclusion(LogError),
    #[error("the consistency proof does not verify: {0}")]
    Consistency(LogError),
    #[error("the history does not stand for the proved licence: {0}")]
    History(HistoryError),
    #[error(
        "the bundle does not prove {missing}, which the verdict for use in {region} reads: \
         without it the bundle could hide a recognition; ask for a bundle for this region"
    )]
    IncompleteRecognitions { region: RegionCode, missing: String },
    #[error(
        "the recognitions of {type_code} for use in {region} are proved whole only from {from} \
         (older ended ones were dropped to make room), and the verdict is asked for {at}"
    )]
    RecognitionsPruned {
        region: RegionCode,
        type_code: TypeCode,
        from: TimeMs,
        at: TimeMs,
    },
    #[error("the licence lists objection {id} as open, but the bundle does not prove it")]
    IncompleteObjections { id: Hash32 },
    #[error("the holder proof's first record proof is not of the list of {holder}")]
    MissingHolderList { holder: String },
    #[error("the holder's list names licence {type_code}/{number}, which the proof does not prove")]
    IncompleteHolderList {
        type_code: TypeCode,
        number: LicenceNumber,
    },
    #[error("licence {type_code}/{number} on the list of {holder} is held by {found}")]
    HolderMismatch {
        holder: String,
        type_code: TypeCode,
        number: LicenceNumber,
        found: String,
    },
    #[error("{0}")]
    Witness(witness::WitnessError),
}

impl BundleError {
    /// A stable kebab-case name of what failed.
    pub fn code(&self) -> String {
        match self {
            BundleError::Json(_) => "json".into(),
            BundleError::Binary(_) => "binary".into(),
            BundleError::TooLarge { .. } => "too-large".into(),
            BundleError::UnsupportedFormat { .. } => "unsupported-format".into(),
            BundleError::UnsupportedProtocolVersion { .. } => "unsupported-protocol-version".into(),
            BundleError::ChainMismatch { .. } => "chain-mismatch".into(),
            BundleError::TooMany { .. } => "too-many".into(),
            BundleError::ChangesOutOfOrder { .. } => "validator-changes-out-of-order".into(),
            BundleError::ValidatorsHashMismatch { .. } => "validators-hash-mismatch".into(),
            BundleError::Certificate { error, .. } => certificate_code(error).into(),
            BundleError::MissingCertificate { .. } => "missing-certificate".into(),
            BundleError::GenesisHeaderMismatch => "genesis-header-mismatch".into(),
            BundleError::ChangeTransaction { .. } => "validator-change-transaction".into(),
            BundleError::EmptyValidatorSet { .. } => "empty-validator-set".into(),
            BundleError::ValidatorListMismatch => "validator-list-mismatch".into(),
            BundleError::UntrustedStart { .. } => "untrusted-start".into(),
            BundleError::TrustedHeaderMismatch { .. } => "trusted-header-mismatch".into(),
            BundleError::RecordProof { error, .. } => format!("record-proof/{}", error.code()),
            BundleError::StateProof(error) => format!("state-proof/{}", error.code()),
            BundleError::MissingLicenceProof { .. } => "missing-licence-proof".into(),
            BundleError::InclusionMismatch { .. } => "inclusion-mismatch".into(),
            BundleError::Inclusion(error) => format!("inclusion/{}", error.code()),
            BundleError::PositionMismatch { .. } => "position-mismatch".into(),
            BundleError::Stale { .. } => "stale".into(),
            BundleError::BlockInclusion(error) => format!("block-inclusion/{}", error.code()),
            BundleError::Consistency(error) => format!("consistency/{}", error.code()),
            BundleError::History(error) => error.code(),
            BundleError::IncompleteRecognitions { .. } => "incomplete-recognitions".into(),
            BundleError::RecognitionsPruned { .. } => "recognitions-pruned".into(),
            BundleError::IncompleteObjections { .. } => "incomplete-objections".into(),
            BundleError::MissingHolderList { .. } => "missing-holder-list".into(),
            BundleError::IncompleteHolderList { .. } => "incomplete-holder-list".into(),
            BundleError::HolderMismatch { .. } => "holder-mismatch".into(),
            BundleError::Witness(error) => error.code(),
        }
    }
}

fn certificate_code(error: &BlockCertificateError) -> &'static str {
    match error {
        BlockCertificateError::WrongHeight { .. } => "certificate-wrong-height",
        BlockCertificateError::WrongBlock { .. } => "certificate-wrong-block",
        BlockCertificateError::ValidatorSet(ValidatorSetError::Empty) => "empty-validator-set",
        BlockCertificateError::ValidatorSet(_) => "certificate-bad-validator-set",
        BlockCertificateError::Certificate(error) => match error {
            CertificateError::UnknownValidator { .. } => "certificate-unknown-validator",
            CertificateError::DuplicateSigner { .. } => "certificate-duplicate-signer",
            CertificateError::BadSignature { .. } => "certificate-bad-signature",
            CertificateError::InsufficientPower { .. } => "certificate-insufficient-power",
            CertificateError::ValueTooLarge { .. } => "certificate-value-too-large",
        },
    }
}

/// What a verified checkpoint establishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedCheckpoint {
    pub chain_id: String,
    pub height: Height,
    pub time: TimeMs,
    pub block_hash: Hash32,
    pub state_root: Hash32,
    pub log_size: u64,
    pub log_root: Hash32,
    /// How many validator-set changes connected the signers to genesis.
    pub validator_changes: usize,
}

/// What a verified licence bundle establishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedLicence {
    pub checkpoint: VerifiedCheckpoint,
    pub type_code: TypeCode,
    pub number: LicenceNumber,
    /// `None`: proved absent (never issued under this type and number).
    pub licence: Option<Licence>,
    /// The issuer's record, when the bundle proves it.
    pub issuer: Option<Authority>,
    /// The verdict computed offline from the proved records, when the licence and its issuer
    /// are proved.
    pub verdict: Option<Verdict>,
    /// How many records (present or absent) were proved.
    pub records_proved: usize,
    /// How old the header was by the verifier's clock; `None` for a historical check, which
    /// did not hold the header to the chain's freshness.
    pub age_ms: Option<u64>,
    /// The witnesses that cosigned a log extending the header's, when the verifier required
    /// them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witnessed: Option<witness::VerifiedWitnessed>,
}

/// What a verified transaction proof establishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedTransaction {
    pub checkpoint: VerifiedCheckpoint,
    pub id: Hash32,
    pub location: TxLocation,
}

/// The question an offline verdict answers: at which time, for use in which region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Defaults to the checkpoint's time.
    pub at: Option<TimeMs>,
    pub region: Option<RegionCode>,
    /// The verifier's clock, in milliseconds since 1970; `None` reads the system clock.
    pub now: Option<TimeMs>,
    /// A historical check: a bundle's header is not held to the chain's freshness (the genesis
    /// file's `proof_age_ms_max`), so an old bundle verifies as what the chain said then, and
    /// the answer says it is historical.
    pub historical: bool,
    /// A checkpoint the verifier trusts, from which a bundle's checkpoint may start (a light
    /// client's; see [`TrustedCheckpoint`]).
    pub trusted: Option<TrustedCheckpoint>,
    /// Cosignatures required of named witnesses (`hutong verify --witnesses k
    /// --witness-keys FILE`); `None` asks for none.
    pub witnesses: Option<witness::WitnessPolicy>,
}

impl VerifyOptions {
    /// A historical check at the checkpoint's time, for any region.
    pub fn historical() -> Self {
        VerifyOptions {
            historical: true,
            ..VerifyOptions::default()
        }
    }
}

/// The system clock in milliseconds since 1970 (0 before it).
fn system_now() -> TimeMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Refuses a header older than the chain's freshness allows: against the verifier's clock, and
/// against the time the verdict is asked for.
fn check_fresh(
    freshness: &hutong_core::genesis::Freshness,
    header_time: TimeMs,
    options: &VerifyOptions,
) -> Result<u64, BundleError> {
    let now = options.now.unwrap_or_else(system_now);
    let stale = |reference: TimeMs, against: &'static str| {
        freshness
            .staleness(header_time, reference)
            .map(|age_ms| BundleError::Stale {
                header_time,
                against,
                reference,
                age_ms,
                limit_ms: freshness.proof_age_ms_max,
            })
    };
    if let Some(error) = stale(now, "the verifier's clock") {
        return Err(error);
    }
    if let Some(at) = options.at
        && let Some(error) = stale(at, "the time asked about (--at)")
    {
        return Err(error);
    }
    Ok(now.saturating_sub(header_time))
}

/// The validator set of the genesis file: its voting nodes, sorted by key.
pub fn genesis_validators(genesis: &Genesis) -> Vec<NodeEntry> {
    let mut nodes: Vec<NodeEntry> = genesis
        .nodes
        .iter()
        .filter(|node| node.power > 0)
        .cloned()
        .collect();
    nodes.sort_by_key(|node| node.key);
    nodes
}

/// The voting nodes in force at `height` according to `registry` (the registry recorded in the
/// state of a block before `height`, whose pending changes due by `height` are applied).
pub fn validators_in_force(registry: &NodeRegistry, height: Height) -> Vec<NodeEntry> {
    let mut nodes = registry.nodes.clone();
    for pending in &registry.pending {
        if pending.effective_height <= height {
            for change in &pending.changes {
                NodeRegistry::apply_change(&mut nodes, change);
            }
        }
    }
    nodes.retain(|node| node.power > 0);
    nodes
}

/// The hash a header's `validators_hash` takes for `validators`.
pub fn validators_hash(suite: Suite, validators: &[NodeEntry]) -> Hash32 {
    as_registry(validators).validators_hash(suite)
}

fn as_registry(validators: &[NodeEntry]) -> NodeRegistry {
    NodeRegistry {
        nodes: validators.to_vec(),
        pending: Vec::new(),
    }
}

/// The genesis header (height 0) of `genesis`, as a store creates it.
pub fn genesis_header(genesis: &Genesis) -> BlockHeader {
    let suite = genesis.suite;
    let leaves: Vec<(Hash32, Hash32)> = genesis
        .records()
        .iter()
        .map(|record| (record.key().state_hash(suite), record.state_hash(suite)))
        .collect();
    // Genesis keys are distinct (the genesis file is validated), so the tree builds; an
    // unvalidated file with duplicates gets the zero root, which no header will match.
    let state_root = smt::root_of_leaves(suite, leaves).unwrap_or(Hash32::ZERO);
    BlockHeader {
        protocol_version: PROTOCOL_VERSION,
        chain_id: genesis.chain_id.clone(),
        height: 0,
        time: genesis.genesis_time,
        prev_hash: genesis.hash(),
        tx_root: tx_root::<Vec<u8>>(suite, &[]),
        log_size: 0,
        log_root: suite.empty_root(),
        state_root,
        validators_hash: validators_hash(suite, &genesis_validators(genesis)),
        proposer: PublicKey([0u8; 32]),
    }
}

fn check_chain(expected: &str, found: &str) -> Result<(), BundleError> {
    if expected != found {
        return Err(BundleError::ChainMismatch {
            expected: expected.to_owned(),
            found: found.to_owned(),
        });
    }
    Ok(())
}

/// Certificate signatures collected while a checkpoint is checked, verified together in one
/// batch equation at the end (the ledger's batch rule accepts exactly what its single rule
/// accepts; see `docs/adr/0002-signature-verification.md`).
#[derive(Default)]
struct PendingSignatures {
    messages: Vec<Vec<u8>>,
    /// `(message index, key, signature, height, validator)`.
    entries: Vec<(usize, PublicKey, Signature, Height, ValidatorId)>,
}

impl PendingSignatures {
    fn verify(&self, suite: Suite) -> Result<(), BundleError> {
        let items: Vec<(&PublicKey, &[u8], &Signature)> = self
            .entries
            .iter()
            .map(|(message, key, signature, _, _)| {
                (key, self.messages[*message].as_slice(), signature)
            })
            .collect();
        match suite.verify_batch(&items) {
            Ok(()) => Ok(()),
            Err(failed) => {
                let (_, _, _, height, validator) = failed
                    .first()
                    .and_then(|index| self.entries.get(*index))
                    .copied()
                    .unwrap_or((
                        0,
                        PublicKey([0; 32]),
                        Signature([0; 64]),
                        0,
                        ValidatorId([0; 32]),
                    ));
                Err(BundleError::Certificate {
                    height,
                    error: BlockCertificateError::Certificate(CertificateError::BadSignature {
                        validator,
                    }),
                })
            }
        }
    }
}

/// The checks of `verify_block_certificate` except the signatures themselves, which are added
/// to `pending`: the header names `validators`, the certificate is for this header, every
/// signer is a validator and appears once, and the signers hold more than two thirds of the
/// voting power.
fn check_signed_header(
    suite: Suite,
    header: &BlockHeader,
    certificate: &CommitCertificate,
    validators: &[NodeEntry],
    pending: &mut PendingSignatures,
) -> Result<(), BundleError> {
    let height = header.height;
    if header.protocol_version != PROTOCOL_VERSION {
        return Err(BundleError::UnsupportedProtocolVersion {
            height,
            found: header.protocol_version,
            supported: PROTOCOL_VERSION,
        });
    }
    let registry = as_registry(validators);
    let expected = registry.validators_hash(suite);
    if header.validators_hash != expected {
        return Err(BundleError::ValidatorsHashMismatch {
            height,
            expected,
            found: header.validators_hash,
        });
    }
    let refuse = |error: BlockCertificateError| BundleError::Certificate { height, error };
    if certificate.height != height {
        return Err(refuse(BlockCertificateError::WrongHeight {
            expected: height,
            found: certificate.height,
        }));
    }
    let hash = header.hash(suite);
    if certificate.value != hash.0 {
        return Err(refuse(BlockCertificateError::WrongBlock {
            expected: hash,
            found: Hash32(certificate.value),
        }));
    }
    let set = validator_set(&registry).map_err(|error| refuse(error.into()))?;
    let mut seen = BTreeSet::new();
    let mut signed_power: u64 = 0;
    for commit in &certificate.signatures {
        let validator = commit.validator;
        let power = set
            .voting_power(&validator)
            .ok_or_else(|| refuse(CertificateError::UnknownValidator { validator }.into()))?;
        if !seen.insert(validator) {
            return Err(refuse(
                CertificateError::DuplicateSigner { validator }.into(),
            ));
        }
        signed_power = signed_power.saturating_add(power);
    }
    if !set.is_quorum(signed_power) {
        return Err(refuse(
            CertificateError::InsufficientPower {
                signed_power,
                total_power: set.total_voting_power(),
                required_power: set.quorum_power(),
            }
            .into(),
        ));
    }
    let message = pending.messages.len();
    pending
        .messages
        .push(certificate.sign_bytes(&header.chain_id));
    for commit in &certificate.signatures {
        pending.entries.push((
            message,
            PublicKey(commit.validator.0),
            Signature(commit.signature.0),
            height,
            commit.validator,
        ));
    }
    Ok(())
}

/// Checks a checkpoint against the genesis file: the chain of validator sets, then the header's
/// certificate (or, at height 0, that the header is the genesis header).
pub fn verify_checkpoint(
    checkpoint: &Checkpoint,
    genesis: &Genesis,
) -> Result<VerifiedCheckpoint, BundleError> {
    verify_checkpoint_from(checkpoint, genesis, None)
}

/// [`verify_checkpoint`] for a checkpoint that may start from `trusted`, a checkpoint the
/// verifier verified before: its validator set replaces genesis's, and only the hand-overs
/// after its height are carried. A checkpoint that names a trusted height the verifier does
/// not hold is refused (`untrusted-start`), and so is a header at the trusted height that is
/// not the trusted block (`trusted-header-mismatch`).
pub fn verify_checkpoint_from(
    checkpoint: &Checkpoint,
    genesis: &Genesis,
    trusted: Option<&TrustedCheckpoint>,
) -> Result<VerifiedCheckpoint, BundleError> {
    let chain_id = &genesis.chain_id;
    let suite = genesis.suite;
    check_chain(chain_id, &checkpoint.header.chain_id)?;
    if checkpoint.validator_changes.len() > VALIDATOR_CHANGES_MAX {
        return Err(BundleError::TooMany {
            what: "validator changes",
            count: checkpoint.validator_changes.len(),
            limit: VALIDATOR_CHANGES_MAX,
        });
    }
    let (mut validators, mut trusted_from) = match (checkpoint.trusted_height, trusted) {
        (None, _) => (genesis_validators(genesis), 1),
        (Some(height), Some(trusted))
            if trusted.height == height
                && trusted.chain_id == *chain_id
                && !trusted.validators.is_empty() =>
        {
            (trusted.validators.clone(), height)
        }
        (Some(height), trusted) => {
            return Err(BundleError::UntrustedStart {
                height,
                trusted: trusted.map_or_else(
                    || "none".to_owned(),
                    |trusted| format!("height {} of {}", trusted.height, trusted.chain_id),
                ),
            });
        }
    };
    let mut pending = PendingSignatures::default();
    for change in &checkpoint.validator_changes {
        let height = change.effective_height;
        check_chain(chain_id, &change.header.chain_id)?;
        if change.header.height < trusted_from
            || change.header.height.checked_add(1) != Some(height)
        {
            return Err(BundleError::ChangesOutOfOrder {
                trusted_from,
                height: change.header.height,
            });
        }
        if let Some(trusted) = trusted.filter(|_| checkpoint.trusted_height.is_some())
            && change.header.height == trusted.height
            && change.header.hash(suite) != trusted.block_hash
        {
            return Err(BundleError::TrustedHeaderMismatch {
                height: change.header.height,
                trusted: trusted.block_hash,
            });
        }
        check_signed_header(
            suite,
            &change.header,
            &change.certificate,
            &validators,
            &mut pending,
        )?;
        validators = apply_change_transactions(suite, &validators, change)?;
        if validators.is_empty() {
            return Err(BundleError::EmptyValidatorSet { height });
        }
        trusted_from = height;
    }
    let header = &checkpoint.header;
    if checkpoint.validators != validators {
        return Err(BundleError::ValidatorListMismatch);
    }
    match &checkpoint.certificate {
        None if header.height == 0 => {
            if !checkpoint.validator_changes.is_empty()
                || checkpoint.trusted_height.is_some()
                || *header != genesis_header(genesis)
            {
                return Err(BundleError::GenesisHeaderMismatch);
            }
        }
        None => {
            return Err(BundleError::MissingCertificate {
                height: header.height,
            });
        }
        Some(certificate) => {
            if header.height < trusted_from {
                return Err(BundleError::ChangesOutOfOrder {
                    trusted_from,
                    height: header.height,
                });
            }
            if let Some(trusted) = trusted.filter(|_| checkpoint.trusted_height.is_some())
                && header.height == trusted.height
                && header.hash(suite) != trusted.block_hash
            {
                return Err(BundleError::TrustedHeaderMismatch {
                    height: header.height,
                    trusted: trusted.block_hash,
                });
            }
            check_signed_header(suite, header, certificate, &validators, &mut pending)?;
        }
    }
    pending.verify(suite)?;
    Ok(VerifiedCheckpoint {
        chain_id: header.chain_id.clone(),
        height: header.height,
        time: header.time,
        block_hash: header.hash(suite),
        state_root: header.state_root,
        log_size: header.log_size,
        log_root: header.log_root,
        validator_changes: checkpoint.validator_changes.len(),
    })
}

/// Checks the transactions of a hand-over against its (already verified) header and applies
/// their changes to `validators`.
fn apply_change_transactions(
    suite: Suite,
    validators: &[NodeEntry],
    change: &ValidatorChange,
) -> Result<Vec<NodeEntry>, BundleError> {
    let height = change.effective_height;
    let refuse = |reason: String| BundleError::ChangeTransaction { height, reason };
    if change.transactions.is_empty() {
        return Err(refuse("it carries no transaction".into()));
    }
    let mut nodes = validators.to_vec();
    let mut previous_index: Option<u64> = None;
    for logged in &change.transactions {
        let TxBody::ChangeValidators {
            changes,
            effective_height,
        } = &logged.transaction.payload.body
        else {
            return Err(refuse(format!(
                "a {} transaction",
                logged.transaction.payload.body.kind_name()
            )));
        };
        if *effective_height != height {
            return Err(refuse(format!("a change due at height {effective_height}")));
        }
        let inclusion = &logged.inclusion;
        if inclusion.tree_size != change.header.log_size {
            return Err(refuse(format!(
                "an inclusion proof in a log of {} leaves, not the header's {}",
                inclusion.tree_size, change.header.log_size
            )));
        }
        if previous_index.is_some_and(|previous| inclusion.leaf_index <= previous) {
            return Err(refuse("transactions out of log order".into()));
        }
        previous_index = Some(inclusion.leaf_index);
        let leaf = suite.leaf_hash(&logged.transaction.to_bytes());
        inclusion
            .verify(&suite, &leaf, &change.header.log_root)
            .map_err(BundleError::Inclusion)?;
        for node_change in changes {
            NodeRegistry::apply_change(&mut nodes, node_change);
        }
    }
    nodes.retain(|node| node.power > 0);
    Ok(nodes)
}

/// Checks one record's single sparse-Merkle proof against `state_root` (a history document's).
pub fn verify_record_proof(
    suite: Suite,
    state_root: Hash32,
    record: &Record,
    proof: &SmtProof,
) -> Result<(), BundleError> {
    let key = record.key();
    smt::verify_membership(
        suite,
        state_root,
        &key.state_hash(suite),
        &record.state_hash(suite),
        proof,
    )
    .map_err(|error| BundleError::RecordProof {
        key: describe_key(&key),
        error,
    })
}

/// Checks that `state_proof` shows every one of `records` (each record, or each key's
/// absence) under `state_root`. An error that concerns one record names it.
pub fn verify_records(
    suite: Suite,
    state_root: Hash32,
    records: &[ProvedRecord],
    state_proof: &SmtMultiProof,
) -> Result<(), BundleError> {
    let items: Vec<SmtItem> = records.iter().map(|record| record.item(suite)).collect();
    verify_multi(suite, state_root, &items, state_proof).map_err(|error| match error {
        SmtMultiProofError::Item { index, error } => BundleError::RecordProof {
            key: records.get(index).map_or_else(
                || format!("record {index}"),
                |record| describe_key(&record.key()),
            ),
            error,
        },
        other => BundleError::StateProof(other),
    })
}

/// The multiproof of `records` from a single proof of each against one state root (what a
/// node's store answers), in the same order.
pub fn multiproof_of(
    suite: Suite,
    records: &[ProvedRecord],
    proofs: &[&SmtProof],
) -> Result<SmtMultiProof, BundleError> {
    let items: Vec<SmtItem> = records.iter().map(|record| record.item(suite)).collect();
    SmtMultiProof::from_proofs(&items, proofs).map_err(BundleError::StateProof)
}

/// The single proof of each of `records` under `state_root`, from their multiproof (which is
/// checked first): for a tool that shows or re-packs one record's proof.
pub fn expand_records(
    suite: Suite,
    state_root: Hash32,
    records: &[ProvedRecord],
    state_proof: &SmtMultiProof,
) -> Result<Vec<SmtProof>, BundleError> {
    verify_records(suite, state_root, records, state_proof)?;
    let items: Vec<SmtItem> = records.iter().map(|record| record.item(suite)).collect();
    state_proof
        .expand(suite, state_root, &items)
        .map_err(BundleError::StateProof)
}

/// A short human-readable name of a record key, for errors.
pub fn describe_key(key: &RecordKey) -> String {
    match key {
        RecordKey::Authority(id) => format!("authority {id}"),
        RecordKey::LicenceType(code) => format!("licence type {code}"),
        RecordKey::Grant(authority, code, region) => {
            format!("grant of {code} in {region} to {authority}")
        }
        RecordKey::Licence(code, number) => format!("licence {code}/{number}"),
        RecordKey::Recognition(id) => format!("recognition {id}"),
        RecordKey::Objection(id) => format!("objection {id}"),
        RecordKey::Nodes => "node registry".into(),
        RecordKey::Governors => "governors".into(),
        RecordKey::KeyOwner(key) => format!("owner of key {key}"),
        RecordKey::Evidence(key) => format!(
            "equivocation of {} at height {}, round {} ({})",
            key.validator,
            key.height,
            key.round,
            key.kind.as_str()
        ),
        RecordKey::WriteQuota(scope) => format!("write quota of {scope}"),
        RecordKey::WriteCount(authority) => format!("write count of {authority}"),
        RecordKey::LicenceTypeVersion(code, version) => {
            format!("version {version} of licence type {code}")
        }
        RecordKey::HolderLicence(code, holder) => {
            format!("{code} licence held by {}", holder.to_text())
        }
        RecordKey::RecognitionSet(region, code) => {
            format!("the recognitions of {code} for use in {region}")
        }
        RecordKey::HolderLicences(holder) => format!("the licences of {}", holder.to_text()),
    }
}

/// [`verify_bundle_with`] with the default question: the verdict at the checkpoint's time, in
/// no particular region.
pub fn verify_bundle(
    bundle: &ProofBundle,
    genesis: &Genesis,
) -> Result<VerifiedLicence, BundleError> {
    verify_bundle_with(bundle, genesis, &VerifyOptions::default())
}

/// Checks a licence proof bundle offline and computes the verdict from the proved records.
pub fn verify_bundle_with(
    bundle: &ProofBundle,
    genesis: &Genesis,
    options: &VerifyOptions,
) -> Result<VerifiedLicence, BundleError> {
    if bundle.format != BUNDLE_FORMAT {
        return Err(BundleError::UnsupportedFormat {
            found: bundle.format.clone(),
        });
    }
    check_chain(&genesis.chain_id, &bundle.chain_id)?;
    if bundle.records.len() > RECORD_PROOFS_MAX {
        return Err(BundleError::TooMany {
            what: "record proofs",
            count: bundle.records.len(),
            limit: RECORD_PROOFS_MAX,
        });
    }
    let licence_key = RecordKey::Licence(bundle.type_code.clone(), bundle.number.clone());
    let missing = || BundleError::MissingLicenceProof {
        type_code: bundle.type_code.clone(),
        number: bundle.number.clone(),
    };
    let first = bundle.records.first().ok_or_else(missing)?;
    if first.key() != licence_key {
        return Err(missing());
    }
    let checkpoint = verify_checkpoint_from(&bundle.checkpoint, genesis, options.trusted.as_ref())?;
    let age_ms = if options.historical {
        None
    } else {
        Some(check_fresh(&genesis.freshness, checkpoint.time, options)?)
    };
    verify_records(
        genesis.suite,
        checkpoint.state_root,
        &bundle.records,
        &bundle.state_proof,
    )?;
    let witnessed = match &options.witnesses {
        Some(policy) => Some(
            witness::verify_witnessed(
                genesis.suite,
                &checkpoint.chain_id,
                checkpoint.log_size,
                &checkpoint.log_root,
                bundle.witnessed.as_ref(),
                policy,
            )
            .map_err(BundleError::Witness)?,
        ),
        None => None,
    };

    let licence = match first.record() {
        Some(Record::Licence(licence)) => Some(licence.clone()),
        _ => None,
    };
    // The proved records are sorted into the verdict's inputs by the same definition the node
    // used to choose them (`verdict::VerdictRecords`), so the verdict here is the node's; and
    // they are checked to be all of its inputs (ADR 0039), so that a node cannot steer it by
    // leaving a record out.
    let region = options.region.as_ref().or(bundle.region.as_ref());
    let at = options.at.unwrap_or(checkpoint.time);
    let (issuer, verdict) = match &licence {
        Some(licence) => {
            check_complete(bundle, licence, region, at)?;
            let inputs = VerdictRecords::collect(
                licence,
                region,
                bundle.records[1..]
                    .iter()
                    .filter_map(|proved| proved.record().cloned()),
            );
            let verdict = inputs.verdict(licence, region, at);
            (inputs.issuer, verdict)
        }
        None => (None, None),
    };
    Ok(VerifiedLicence {
        checkpoint,
        type_code: bundle.type_code.clone(),
        number: bundle.number.clone(),
        licence,
        issuer,
        verdict,
        records_proved: bundle.records.len(),
        age_ms,
        witnessed,
    })
}

/// Checks that the bundle proves every input of the verdict on `licence` in `region` at `at`
/// that could make it more favourable: each open objection the licence lists, and for a region
/// that needs a recognition, each region's recognition set (present or absent) and every
/// recognition a present set lists about the licence. Its record proofs are already verified.
fn check_complete(
    bundle: &ProofBundle,
    licence: &Licence,
    region: Option<&RegionCode>,
    at: TimeMs,
) -> Result<(), BundleError> {
    let proved = |key: &RecordKey| {
        bundle
            .records
            .iter()
            .find(|proved| proved.key() == *key)
            .map(ProvedRecord::record)
    };
    for id in licence.open_objections() {
        if !matches!(proved(&RecordKey::Objection(id)), Some(Some(_))) {
            return Err(BundleError::IncompleteObjections { id });
        }
    }
    let Some(region) = region else {
        return Ok(());
    };
    let incomplete = |key: &RecordKey| BundleError::IncompleteRecognitions {
        region: region.clone(),
        missing: describe_key(key),
    };
    let mut sets = Vec::new();
    for key in verdict::recognition_set_keys(licence, Some(region)) {
        match proved(&key) {
            None => return Err(incomplete(&key)),
            Some(None) => {}
            Some(Some(Record::RecognitionSet(set))) => {
                if at < set.pruned_before {
                    return Err(BundleError::RecognitionsPruned {
                        region: set.recognizing_region.clone(),
                        type_code: set.type_code.clone(),
                        from: set.pruned_before,
                        at,
                    });
                }
                sets.push(set);
            }
            Some(Some(_)) => return Err(incomplete(&key)),
        }
    }
    for id in verdict::recognitions_in_sets(licence, sets) {
        let key = RecordKey::Recognition(id);
        if !matches!(proved(&key), Some(Some(Record::Recognition(_)))) {
            return Err(incomplete(&key));
        }
    }
    Ok(())
}

/// Checks a holder's licence list offline: the list (or its absence) and every licence it
/// names are proved against the signed checkpoint, each is the holder's, and none is missing.
pub fn verify_holder_proof(
    proof: &HolderProof,
    genesis: &Genesis,
    options: &VerifyOptions,
) -> Result<VerifiedHolder, BundleError> {
    if proof.format != HOLDER_PROOF_FORMAT {
        return Err(BundleError::UnsupportedFormat {
            found: proof.format.clone(),
        });
    }
    check_chain(&genesis.chain_id, &proof.chain_id)?;
    let limit = 1 + hutong_core::limits::LICENCES_PER_HOLDER_MAX;
    if proof.records.len() > limit {
        return Err(BundleError::TooMany {
            what: "record proofs",
            count: proof.records.len(),
            limit,
        });
    }
    let list_key = RecordKey::HolderLicences(proof.holder.clone());
    let first = proof
        .records
        .first()
        .filter(|first| first.key() == list_key)
        .ok_or_else(|| BundleError::MissingHolderList {
            holder: proof.holder.to_text(),
        })?;
    let checkpoint = verify_checkpoint_from(&proof.checkpoint, genesis, options.trusted.as_ref())?;
    let age_ms = if options.historical {
        None
    } else {
        Some(check_fresh(&genesis.freshness, checkpoint.time, options)?)
    };
    verify_records(
        genesis.suite,
        checkpoint.state_root,
        &proof.records,
        &proof.state_proof,
    )?;
    let listed = match first.record() {
        Some(Record::HolderLicences(list)) => list.licences.clone(),
        _ => Vec::new(),
    };
    let mut licences = Vec::with_capacity(listed.len());
    for (type_code, number) in listed {
        let key = RecordKey::Licence(type_code.clone(), number.clone());
        let Some(Record::Licence(licence)) = proof
            .records
            .iter()
            .find(|proved| proved.key() == key)
            .and_then(ProvedRecord::record)
        else {
            return Err(BundleError::IncompleteHolderList { type_code, number });
        };
        if licence.holder != proof.holder {
            return Err(BundleError::HolderMismatch {
                holder: proof.holder.to_text(),
                type_code,
                number,
                found: licence.holder.to_text(),
            });
        }
        licences.push(licence.clone());
    }
    Ok(VerifiedHolder {
        checkpoint,
        holder: proof.holder.clone(),
        licences,
        age_ms,
    })
}

/// Checks that a transaction is in the log of a signed checkpoint.
pub fn verify_transaction_proof(
    proof: &TransactionProof,
    genesis: &Genesis,
) -> Result<VerifiedTransaction, BundleError> {
    if proof.format != TRANSACTION_PROOF_FORMAT {
        return Err(BundleError::UnsupportedFormat {
            found: proof.format.clone(),
        });
    }
    let checkpoint = verify_checkpoint(&proof.checkpoint, genesis)?;
    let suite = genesis.suite;
    let bytes = proof.transaction.to_bytes();
    let leaf = suite.leaf_hash(&bytes);
    let (block_start, block_count) = check_position(proof, suite)?;
    if proof.block_inclusion.leaf_index != u64::from(proof.location.index)
        || proof.block_inclusion.tree_size != block_count
    {
        return Err(BundleError::PositionMismatch {
            what: "inclusion under the block's tx_root",
            detail: format!(
                "it is for leaf {} of {}; the transaction is {} of the block's {} ({} to {} of the log)",
                proof.block_inclusion.leaf_index,
                proof.block_inclusion.tree_size,
                proof.location.index,
                block_count,
                block_start,
                block_start + block_count,
            ),
        });
    }
    proof
        .block_inclusion
        .verify(&suite, &leaf, &proof.checkpoint.header.tx_root)
        .map_err(BundleError::BlockInclusion)?;
    if proof.inclusion.leaf_index != proof.location.log_index
        || proof.inclusion.tree_size != checkpoint.log_size
    {
        return Err(BundleError::InclusionMismatch {
            expected: proof.location.log_index,
            found: proof.inclusion.leaf_index,
            expected_size: checkpoint.log_size,
            found_size: proof.inclusion.tree_size,
        });
    }
    proof
        .inclusion
        .verify(&suite, &leaf, &checkpoint.log_root)
        .map_err(BundleError::Inclusion)?;
    Ok(VerifiedTransaction {
        checkpoint,
        id: hutong_core::tx::tx_id_of_bytes(suite, &bytes),
        location: proof.location,
    })
}

/// Checks an answer of `GET /v1/log/inclusion`: that `transaction` (whose id the verifier
/// computes from its bytes) is the leaf at `proof.leaf_index` of the log whose root and size a
/// signed checkpoint of the chain states. Returns the checkpoint and the transaction's id.
pub fn verify_log_inclusion(
    transaction: &Transaction,
    proof: &InclusionProof,
    checkpoint: &Checkpoint,
    genesis: &Genesis,
) -> Result<(VerifiedCheckpoint, Hash32), BundleError> {
    let verified = verify_checkpoint(checkpoint, genesis)?;
    if proof.tree_size != verified.log_size {
        return Err(BundleError::InclusionMismatch {
            expected: proof.leaf_index,
            found: proof.leaf_index,
            expected_size: verified.log_size,
            found_size: proof.tree_size,
        });
    }
    let suite = genesis.suite;
    let bytes = transaction.to_bytes();
    proof
        .verify(&suite, &suite.leaf_hash(&bytes), &verified.log_root)
        .map_err(BundleError::Inclusion)?;
    Ok((verified, hutong_core::tx::tx_id_of_bytes(suite, &bytes)))
}

/// Checks that `proof.location` is where the verified checkpoint and the previous header put
/// it: the checkpoint is of `location.height`, the previous header is the one its `prev_hash`
/// names, and the leaf index lies in the block's range of the log at the position `index`.
/// Returns the block's first leaf index and its transaction count.
fn check_position(proof: &TransactionProof, suite: Suite) -> Result<(u64, u64), BundleError> {
    let header = &proof.checkpoint.header;
    let previous = &proof.previous_header;
    let location = &proof.location;
    if header.height != location.height {
        return Err(BundleError::PositionMismatch {
            what: "checkpoint",
            detail: format!(
                "it is of block {}; the transaction is said to be in block {}",
                header.height, location.height
            ),
        });
    }
    if previous.height.checked_add(1) != Some(header.height)
        || previous.hash(suite) != header.prev_hash
    {
        return Err(BundleError::PositionMismatch {
            what: "previous header",
            detail: format!(
                "header {} is not the one block {} follows",
                previous.height, header.height
            ),
        });
    }
    let start = previous.log_size;
    let count = header.log_size.saturating_sub(start);
    let index = u64::from(location.index);
    if header.log_size < start || index >= count || start + index != location.log_index {
        return Err(BundleError::PositionMismatch {
            what: "location",
            detail: format!(
                "block {} holds leaves {} to {} of the log; position {} of it is not leaf {}",
                header.height, start, header.log_size, location.index, location.log_index
            ),
        });
    }
    Ok((start, count))
}

/// Checks that the log with root `first_root` is a prefix of the log with root `second_root`
/// (roots an auditor takes from two verified checkpoints of a chain of `suite`).
pub fn verify_log_consistency(
    suite: Suite,
    proof: &ConsistencyProof,
    first_root: &Hash32,
    second_root: &Hash32,
) -> Result<(), BundleError> {
    proof
        .verify(&suite, first_root, second_root)
        .map_err(BundleError::Consistency)
}

/// A licence's full history with its proofs (`GET /v1/licences/{type}/{number}/history`):
/// the licence record proved against the checkpoint's state root, and one step per entry of
/// its history with the transaction that recorded it, proved in the checkpoint's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryDocument {
    /// [`HISTORY_FORMAT`].
    pub format: String,
    pub licence: Licence,
    /// One per entry of `licence.events`, in the same order.
    pub steps: Vec<HistoryStep>,
    /// The licence record's sparse-Merkle proof against the checkpoint's state root.
    pub state_proof: SmtProof,
    pub checkpoint: Checkpoint,
}

/// What a verified history establishes: this licence record as of the checkpoint, with every
/// entry of its history recorded by a transaction in the checkpoint's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedHistory {
    pub checkpoint: VerifiedCheckpoint,
    pub licence: Licence,
}

/// Checks a history document against the genesis file (and the verifier's trusted checkpoint,
/// if it holds one): the checkpoint, the licence record under its state root, then every step
/// against the record and the log ([`history::check_steps`]).
pub fn verify_history(
    document: &HistoryDocument,
    genesis: &Genesis,
    options: &VerifyOptions,
) -> Result<VerifiedHistory, BundleError> {
    if document.format != HISTORY_FORMAT {
        return Err(BundleError::UnsupportedFormat {
            found: document.format.clone(),
        });
    }
    let checkpoint =
        verify_checkpoint_from(&document.checkpoint, genesis, options.trusted.as_ref())?;
    let licence = &document.licence;
    verify_record_proof(
        genesis.suite,
        checkpoint.state_root,
        &Record::Licence(licence.clone()),
        &document.state_proof,
    )?;
    history::check_steps(
        genesis.suite,
        &document.steps,
        licence,
        checkpoint.log_size,
        &checkpoint.log_root,
    )
    .map_err(BundleError::History)?;
    Ok(VerifiedHistory {
        checkpoint,
        licence: licence.clone(),
    })
}

/// What [`verify_json`] verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Verified {
    Licence(Box<VerifiedLicence>),
    Transaction(VerifiedTransaction),
    Checkpoint(VerifiedCheckpoint),
    History(Box<VerifiedHistory>),
    Holder(Box<VerifiedHolder>),
    /// A checkpoint whose cosignatures the verifier required.
    WitnessedCheckpoint {
        checkpoint: VerifiedCheckpoint,
        witnessed: witness::VerifiedWitnessed,
    },
}

#[derive(Deserialize)]
struct FormatOnly {
    format: String,
}

/// The `format` of a proof document of at most [`PROOF_DOCUMENT_BYTES_MAX`] bytes.
fn document_format(document: &[u8]) -> Result<String, BundleError> {
    if document.len() > PROOF_DOCUMENT_BYTES_MAX {
        return Err(BundleError::TooLarge {
            size_bytes: document.len(),
            limit_bytes: PROOF_DOCUMENT_BYTES_MAX,
        });
    }
    serde_json::from_slice::<FormatOnly>(document)
        .map(|format| format.format)
        .map_err(|error| BundleError::Json(error.to_string()))
}

/// The signed checkpoint a proof document of the API carries (a bundle's, a transaction
/// proof's, a checkpoint document's), read by its `format`, unverified: what a light client
/// keeps as its trust once the document verified ([`TrustedCheckpoint::verified`]).
pub fn checkpoint_of_json(document: &[u8]) -> Result<Checkpoint, BundleError> {
    let json = |error: serde_json::Error| BundleError::Json(error.to_string());
    match document_format(document)?.as_str() {
        BUNDLE_FORMAT => serde_json::from_slice::<ProofBundle>(document)
            .map(|bundle| bundle.checkpoint)
            .map_err(json),
        TRANSACTION_PROOF_FORMAT => serde_json::from_slice::<TransactionProof>(document)
            .map(|proof| proof.checkpoint)
            .map_err(json),
        CHECKPOINT_FORMAT => serde_json::from_slice::<CheckpointDocument>(document)
            .map(|document| document.checkpoint)
            .map_err(json),
        HISTORY_FORMAT => serde_json::from_slice::<HistoryDocument>(document)
            .map(|document| document.checkpoint)
            .map_err(json),
        HOLDER_PROOF_FORMAT => serde_json::from_slice::<HolderProof>(document)
            .map(|proof| proof.checkpoint)
            .map_err(json),
        other => Err(BundleError::UnsupportedFormat {
            found: other.to_owned(),
        }),
    }
}

/// Reads any proof document of the API (a bundle, a transaction proof, a checkpoint, a
/// licence's history, a holder's proof) by its `format` and verifies it: what `hutong verify --bundle FILE
/// --genesis GENESIS` runs.
pub fn verify_json(
    document: &[u8],
    genesis: &Genesis,
    options: &VerifyOptions,
) -> Result<Verified, BundleError> {
    let json = |error: serde_json::Error| BundleError::Json(error.to_string());
    match document_format(document)?.as_str() {
        BUNDLE_FORMAT => {
            let bundle: ProofBundle = serde_json::from_slice(document).map_err(json)?;
            verify_bundle_with(&bundle, genesis, options)
                .map(|verified| Verified::Licence(Box::new(verified)))
        }
        TRANSACTION_PROOF_FORMAT => {
            let proof: TransactionProof = serde_json::from_slice(document).map_err(json)?;
            verify_transaction_proof(&proof, genesis).map(Verified::Transaction)
        }
        CHECKPOINT_FORMAT => {
            let document: CheckpointDocument = serde_json::from_slice(document).map_err(json)?;
            let checkpoint =
                verify_checkpoint_from(&document.checkpoint, genesis, options.trusted.as_ref())?;
            let Some(policy) = &options.witnesses else {
                return Ok(Verified::Checkpoint(checkpoint));
            };
            // The cosignatures are of this checkpoint's own note: the log extends itself.
            let witnessed = witness::Witnessed {
                note: witness::CheckpointNote::new(
                    &checkpoint.chain_id,
                    checkpoint.log_size,
                    checkpoint.log_root,
                ),
                cosignatures: document.cosignatures,
                consistency: ConsistencyProof {
                    first_size: checkpoint.log_size,
                    second_size: checkpoint.log_size,
                    path: Vec::new(),
                },
            };
            let witnessed = witness::verify_witnessed(
                genesis.suite,
                &checkpoint.chain_id,
                checkpoint.log_size,
                &checkpoint.log_root,
                Some(&witnessed),
                policy,
            )
            .map_err(BundleError::Witness)?;
            Ok(Verified::WitnessedCheckpoint {
                checkpoint,
                witnessed,
            })
        }
        HISTORY_FORMAT => {
            let document: HistoryDocument = serde_json::from_slice(document).map_err(json)?;
            verify_history(&document, genesis, options)
                .map(|verified| Verified::History(Box::new(verified)))
        }
        HOLDER_PROOF_FORMAT => {
            let proof: HolderProof = serde_json::from_slice(document).map_err(json)?;
            verify_holder_proof(&proof, genesis, options)
                .map(|verified| Verified::Holder(Box::new(verified)))
        }
        other => Err(BundleError::UnsupportedFormat {
            found: other.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hutong_core::testkit::Fixture;

    #[test]
    fn genesis_header_matches_the_store() {
        let fixture = Fixture::new();
        let store = hutong_ledger::store::Store::create_with(
            Box::new(hutong_ledger::store::MemoryBackend::new()),
            &fixture.genesis,
        )
        .unwrap();
        assert_eq!(
            store.header(0).unwrap().unwrap(),
            genesis_header(&fixture.genesis)
        );
    }
}
