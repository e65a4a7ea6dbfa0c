//! The JSON bodies the routes answer with. Ledger records appear as the ledger serialises them
//! (its types are the reference); these structures add what a client needs around them.

use std::collections::BTreeMap;

use hutong_core::block::{Block, BlockHeader};
use hutong_core::hash::Hash32;
use hutong_core::ident::RegionCode;
use hutong_core::log::InclusionProof;
use hutong_core::records::{
    Authority, AuthorityId, FaceValue, Height, Holder, KeyEpoch, Licence, LicenceEvent,
    LicenceNumber, LicenceType, Objection, ObjectionMark, Recognition, Role, Standing, Status,
    TimeMs, TypeCode,
};
use hutong_core::verdict::{Reason, StateAt, Verdict};
use hutong_ledger::store::VerdictAnswer;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::node::{NodeInfo, PendingStatus};
use hutong_core::suite::Suite;
use hutong_core::tx::Transaction;
use hutong_verify::qr::VerifiedQr;
use hutong_verify::{Checkpoint, TransactionProof};

/// The height and time of the state an answer was computed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StateView {
    pub height: Height,
    /// Time of that block, ms since the Unix epoch.
    pub time: TimeMs,
}

impl From<StateAt> for StateView {
    fn from(state: StateAt) -> Self {
        StateView {
            height: state.height,
            time: state.time,
        }
    }
}

/// An authority in a few words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthoritySummary {
    #[schema(value_type = String, example = "qd-approval")]
    pub id: AuthorityId,
    pub name_zh: String,
    pub name_en: String,
    #[schema(value_type = String, example = "370200")]
    pub region: RegionCode,
}

impl From<&Authority> for AuthoritySummary {
    fn from(authority: &Authority) -> Self {
        AuthoritySummary {
            id: authority.id.clone(),
            name_zh: authority.name_zh.clone(),
            name_en: authority.name_en.clone(),
            region: authority.region.clone(),
        }
    }
}

/// `GET /v1/licences/{type}/{number}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LicenceView {
    #[schema(value_type = String, example = "business-licence")]
    pub type_code: TypeCode,
    #[schema(value_type = String, example = "91370200MA00000012")]
    pub number: LicenceNumber,
    pub type_name_zh: String,
    pub type_name_en: String,
    /// `{"enterprise": USCC}` or `{"person": commitment}`.
    #[schema(value_type = Object)]
    pub holder: Holder,
    pub holder_name: String,
    pub issuer: AuthoritySummary,
    #[schema(value_type = String)]
    pub region: RegionCode,
    /// Public fields as `{"clear": value}`, private ones only as `{"committed": hash}`.
    #[schema(value_type = Object)]
    pub face: BTreeMap<String, FaceValue>,
    /// Status now (expiry is not a status: see `valid_until`).
    #[schema(value_type = String, example = "active")]
    pub status: Status,
    /// Within its validity window now.
    pub within_validity: bool,
    pub valid_from: TimeMs,
    /// Current end of validity (after renewals); `null` is long-term (长期).
    pub valid_until: Option<TimeMs>,
    #[schema(value_type = Object)]
    pub standing: Standing,
    #[schema(value_type = String)]
    pub document_hash: Hash32,
    /// Height of the block that recorded the issuance.
    pub issued_at: Height,
    /// The history, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<LicenceEvent>,
    /// The ids of the objections open now, oldest first.
    #[schema(value_type = Vec<String>)]
    pub open_objections: Vec<Hash32>,
    /// Every objection filed on the licence, open or resolved: its id, filer, the filer's
    /// region (province, or the nation), and when it was filed and resolved.
    #[schema(value_type = Vec<Object>)]
    pub objections: Vec<ObjectionMark>,
    pub state: StateView,
}

/// One licence in a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LicenceSummary {
    #[schema(value_type = String)]
    pub type_code: TypeCode,
    #[schema(value_type = String)]
    pub number: LicenceNumber,
    #[schema(value_type = Object)]
    pub holder: Holder,
    pub holder_name: String,
    #[schema(value_type = String)]
    pub issuer: AuthorityId,
    #[schema(value_type = String)]
    pub region: RegionCode,
    #[schema(value_type = String)]
    pub status: Status,
    pub valid_from: TimeMs,
    pub valid_until: Option<TimeMs>,
}

impl LicenceSummary {
    pub fn of(licence: &Licence, now: TimeMs) -> Self {
        let standing = licence.standing_at(now);
        LicenceSummary {
            type_code: licence.type_code.clone(),
            number: licence.number.clone(),
            holder: licence.holder.clone(),
            holder_name: licence.holder_name.clone(),
            issuer: licence.issuer.clone(),
            region: licence.region.clone(),
            status: standing.status,
            valid_from: licence.valid_from,
            valid_until: standing.valid_until,
        }
    }
}

/// A page of licences.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LicencePage {
    pub items: Vec<LicenceSummary>,
    /// Pass it as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    pub state: StateView,
}

/// `GET /v1/licences/{type}/{number}/verification`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VerificationView {
    #[schema(value_type = String)]
    pub type_code: TypeCode,
    #[schema(value_type = String)]
    pub number: LicenceNumber,
    /// Genuine and valid at `at`: issuer authorised, within validity, active.
    pub valid: bool,
    /// When `region` was asked: valid and usable there.
    pub valid_in_region: Option<bool>,
    pub at: TimeMs,
    #[schema(value_type = Option<String>)]
    pub region: Option<RegionCode>,
    #[schema(value_type = String)]
    pub status: Status,
    pub valid_from: TimeMs,
    pub valid_until: Option<TimeMs>,
    pub issuer: AuthoritySummary,
    /// The attestation that makes it usable in `region`, when one was needed and found.
    #[schema(value_type = Option<Object>)]
    pub recognition: Option<Recognition>,
    #[schema(value_type = Vec<Object>)]
    pub open_objections: Vec<Objection>,
    /// Every reason, in English and Chinese; `ok: false` ones make it invalid.
    #[schema(value_type = Vec<Object>)]
    pub reasons: Vec<Reason>,
    pub state: StateView,
    /// The proof bundle, when `proof=true` was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub proof: Option<hutong_verify::ProofBundle>,
}

impl VerificationView {
    pub fn of(answer: VerdictAnswer) -> Self {
        let VerdictAnswer {
            verdict,
            licence,
            issuer,
            recognitions,
            objections,
            state,
            ..
        } = answer;
        let Verdict {
            valid,
            valid_in_region,
            at,
            region,
            status,
            valid_from,
            valid_until,
            recognition,
            open_objections,
            reasons,
            ..
        } = verdict;
        VerificationView {
            type_code: licence.type_code,
            number: licence.number,
            valid,
            valid_in_region,
            at,
            region,
            status,
            valid_from,
            valid_until,
            issuer: AuthoritySummary::from(&issuer),
            recognition: recognition.and_then(|id| {
                recognitions
                    .into_iter()
                    .find(|candidate| candidate.id == id)
            }),
            open_objections: objections
                .into_iter()
                .filter(|objection| open_objections.contains(&objection.id))
                .collect(),
            reasons,
            state: state.into(),
            proof: None,
        }
    }
}

/// `GET /v1/holders/{holder}/licences` (一照通查).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HolderView {
    /// The holder as asked (USCC, or the person commitment in hex).
    pub holder: String,
    pub items: Vec<LicenceSummary>,
    pub next_cursor: Option<String>,
    pub state: StateView,
}

/// `GET /v1/transactions/{hash}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum TransactionStatusView {
    /// Committed; `proof` proves its block, its index in the block and its leaf in the log.
    Committed {
        height: Height,
        index: u32,
        log_index: u64,
        #[schema(value_type = Object)]
        proof: Box<TransactionProof>,
    },
    Pending {
        received_at: TimeMs,
    },
    Rejected {
        code: String,
        reason: String,
    },
}

impl From<PendingStatus> for TransactionStatusView {
    fn from(status: PendingStatus) -> Self {
        match status {
            PendingStatus::Pending { received_at } => {
                TransactionStatusView::Pending { received_at }
            }
            PendingStatus::Rejected { code, reason } => {
                TransactionStatusView::Rejected { code, reason }
            }
        }
    }
}

/// `POST /v1/transactions` (202).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubmittedView {
    #[schema(value_type = String)]
    pub id: Hash32,
    /// Where to follow it.
    pub status_url: String,
}

/// `GET /v1/authorities/{id}/nonce`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NonceView {
    #[schema(value_type = String)]
    pub authority: hutong_core::records::AuthorityId,
    /// The authority's last nonce in a committed transaction (0 before its first).
    pub last_committed: u64,
    /// The nonce its next transaction submitted to this node should carry.
    pub next: u64,
}

/// `GET /v1/node`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeView {
    pub chain_id: String,
    /// The chain's algorithm suite, as its genesis file names it (`ed25519-blake3`): what a
    /// client signs and hashes with.
    #[schema(value_type = String, example = "ed25519-blake3")]
    pub suite: Suite,
    #[schema(value_type = String)]
    pub genesis_hash: Hash32,
    pub height: Height,
    #[schema(value_type = String)]
    pub block_hash: Hash32,
    /// Time of the last block, ms since the Unix epoch.
    pub last_block_time: TimeMs,
    pub log_size: u64,
    #[serde(flatten)]
    pub node: NodeInfo,
}

/// `/healthz`, `/readyz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthView {
    pub status: String,
    pub height: Height,
}

/// A block with its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlockView {
    #[schema(value_type = String)]
    pub hash: Hash32,
    #[schema(value_type = Object)]
    pub block: Block,
}

/// A header with its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeaderView {
    #[schema(value_type = String)]
    pub hash: Hash32,
    #[schema(value_type = Object)]
    pub header: BlockHeader,
}

/// A page of headers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlockPage {
    pub items: Vec<HeaderView>,
    /// `from` for the next page; absent when the page reached the head.
    pub next_from: Option<Height>,
    pub head: Height,
}

/// `GET /v1/log/inclusion`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InclusionView {
    /// `hutong-log-inclusion/v1`.
    pub format: String,
    #[schema(value_type = String)]
    pub transaction_id: Hash32,
    /// The transaction itself, so that a verifier computes its leaf and its id.
    #[schema(value_type = Object)]
    pub transaction: Transaction,
    /// `blake3(0x00 || canonical transaction bytes)`.
    #[schema(value_type = String)]
    pub leaf_hash: Hash32,
    #[schema(value_type = Object)]
    pub proof: InclusionProof,
    /// Root of the log at `proof.tree_size`.
    #[schema(value_type = String)]
    pub root: Hash32,
    /// The signed checkpoint of the first block whose log has `proof.tree_size` leaves: what
    /// ties `root` to the validators (`hutong_verify::verify_log_inclusion`).
    #[schema(value_type = Object)]
    pub checkpoint: Checkpoint,
}

/// `GET /v1/log/consistency`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyView {
    #[schema(value_type = String)]
    pub first_root: Hash32,
    #[schema(value_type = String)]
    pub second_root: Hash32,
    #[schema(value_type = Object)]
    pub proof: hutong_core::log::ConsistencyProof,
}

/// An authority with its key history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthorityView {
    #[schema(value_type = String)]
    pub id: AuthorityId,
    pub name_zh: String,
    pub name_en: String,
    #[schema(value_type = String)]
    pub region: RegionCode,
    #[schema(value_type = String)]
    pub uscc: String,
    #[schema(value_type = Vec<String>)]
    pub roles: Vec<Role>,
    /// Every key it has had, oldest first, with the heights it signs for.
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<KeyEpoch>,
    pub registered_at: Height,
}

impl From<Authority> for AuthorityView {
    fn from(authority: Authority) -> Self {
        AuthorityView {
            id: authority.id,
            name_zh: authority.name_zh,
            name_en: authority.name_en,
            region: authority.region,
            uscc: authority.uscc.to_string(),
            roles: authority.roles,
            keys: authority.keys,
            registered_at: authority.registered_at,
        }
    }
}

/// A page of authorities.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthorityPage {
    pub items: Vec<AuthorityView>,
    pub next_cursor: Option<String>,
}

/// One thing an authority signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActionView {
    pub height: Height,
    pub index: u32,
    /// The block's time (ms since the epoch).
    pub time: Option<TimeMs>,
    #[schema(value_type = String)]
    pub transaction_id: Hash32,
    /// The record kind (`issue_licence`, `change_status`, ...).
    pub kind: String,
    /// The licence it concerns, `type/number`, if any.
    pub licence: Option<String>,
    /// Whether the authority submitted it (rather than endorsing it).
    pub submitted: bool,
}

/// A page of actions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActionPage {
    #[schema(value_type = String)]
    pub authority: AuthorityId,
    pub items: Vec<ActionView>,
    pub next_cursor: Option<String>,
}

/// The catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LicenceTypeList {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<LicenceType>,
}

/// Recognition attestations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecognitionList {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Recognition>,
    pub state: StateView,
}

/// `POST /v1/presentations/verify` request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresentationRequest {
    /// The scanned QR text (`HT1:...`).
    pub payload: String,
    /// A private face field the holder presents, to check against its commitment.
    #[serde(default)]
    pub field: Option<PresentedField>,
    /// Verify for use in this region.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub region: Option<RegionCode>,
}

/// A private field's value and salt, as the holder presents them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresentedField {
    pub name: String,
    pub value: String,
    /// The 32-byte salt, 64 hexadecimal characters.
    pub salt: String,
}

/// Whether a presented field matches the commitment on the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldCheck {
    pub name: String,
    pub matches: bool,
    pub detail: String,
}

/// `POST /v1/presentations/verify` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PresentationView {
    /// The issuer's signature in the payload verifies (this part can be checked offline).
    pub authentic: bool,
    /// Why not, when not authentic: a stable code and a sentence.
    pub authenticity_error: Option<String>,
    /// What the issuer signed.
    #[schema(value_type = Option<Object>)]
    pub signed: Option<VerifiedQr>,
    /// The ledger holds this licence, issued by the very transaction the payload carries.
    pub recorded: bool,
    /// The current verdict (online), when recorded.
    pub verification: Option<VerificationView>,
    pub field: Option<FieldCheck>,
    pub state: StateView,
}

/// Licence events in a time range, with the signed checkpoint they were read at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LicenceEventList {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<hutong_ledger::audit::LicenceEventRow>,
    #[schema(value_type = Object)]
    pub checkpoint: hutong_verify::Checkpoint,
}

/// One step of a licence's history with its inclusion proof: the schema of
/// `hutong_verify::HistoryStep`, which the history route serialises.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LicenceHistoryStep {
    /// `issued`, `amended`, `transferred`, or the status action (`revoke`, `suspend`, ...);
    /// derived from the proved event's kind, and checked so by a verifier.
    pub event: String,
    /// The same in Chinese (发证, 变更, 颁发机构调整, 吊销, ...), derived and checked likewise.
    pub event_zh: String,
    pub effective_at: TimeMs,
    #[schema(value_type = String)]
    pub by: AuthorityId,
    pub reason: String,
    /// The governors' correction of the step, if any (ADR 0032): voided (it no longer counts)
    /// or retimed (`effective_at` is the corrected time), with the time first entered, the
    /// reason, the governor, the height and the correcting transaction.
    #[schema(value_type = Option<Object>)]
    pub correction: Option<hutong_core::records::EventCorrection>,
    pub height: Height,
    #[schema(value_type = String)]
    pub transaction_id: Hash32,
    #[schema(value_type = Object)]
    pub transaction: hutong_core::tx::Transaction,
    /// The transaction's log leaf hash; with `inclusion` it leads to the checkpoint's log root.
    #[schema(value_type = String)]
    pub leaf_hash: Hash32,
    #[schema(value_type = Object)]
    pub inclusion: hutong_core::log::InclusionProof,
}

/// A licence's full history, each step proven in the log of the checkpoint, and the record
/// proven in its state: the schema of `hutong_verify::HistoryDocument`, which the history
/// route serialises.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LicenceHistory {
    /// `hutong-history/v1`.
    #[schema(example = "hutong-history/v1")]
    pub format: String,
    #[schema(value_type = Object)]
    pub licence: hutong_core::records::Licence,
    pub steps: Vec<LicenceHistoryStep>,
    /// The licence record's sparse-Merkle proof against the checkpoint's state root.
    #[schema(value_type = Object)]
    pub state_proof: hutong_core::smt::SmtProof,
    #[schema(value_type = Object)]
    pub checkpoint: hutong_verify::Checkpoint,
}
