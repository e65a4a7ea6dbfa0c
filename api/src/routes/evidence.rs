//! Equivocation evidence recorded on the ledger (ADR 0009): the list, and one record with its
//! sparse-Merkle proof against the current header.

use axum::Json;
use axum::extract::State;
use hutong_core::crypto::PublicKey;
use hutong_core::evidence::{EquivocationKind, Evidence, EvidenceKey, EvidenceRecord};
use hutong_core::records::{Height, RecordKey};
use hutong_ledger::store::StateProof;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::verifier::state_view_of;
use super::{ApiPath, ApiQuery, blocking, page_size};
use crate::problem::{ApiError, Problem};
use crate::state::ApiState;
use crate::views::StateView;

/// One of the two conflicting messages, summarised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignedMessageView {
    /// The block hash signed (hex), or `null` for a nil vote.
    pub value: Option<String>,
    /// The ed25519 signature (hex).
    pub signature: String,
}

/// A recorded equivocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceView {
    /// The validator's node key (hex).
    pub validator: String,
    /// Height, round and kind (`proposal`, `prevote`, `precommit`) of the slot signed twice.
    pub height: Height,
    pub round: u32,
    pub kind: String,
    /// The height of the block that recorded it.
    pub recorded_at: Height,
    pub first: SignedMessageView,
    pub second: SignedMessageView,
    /// The evidence as the block carries it (both signed messages in full).
    #[schema(value_type = Object)]
    pub evidence: Evidence,
}

impl From<EvidenceRecord> for EvidenceView {
    fn from(record: EvidenceRecord) -> Self {
        let (first, second) = match &record.evidence {
            Evidence::ConflictingVotes { first, second } => (
                SignedMessageView {
                    value: first.vote.value.map(hex::encode),
                    signature: hex::encode(first.signature.0),
                },
                SignedMessageView {
                    value: second.vote.value.map(hex::encode),
                    signature: hex::encode(second.signature.0),
                },
            ),
            Evidence::ConflictingProposals { first, second } => (
                SignedMessageView {
                    value: Some(hex::encode(first.proposal.value)),
                    signature: hex::encode(first.signature.0),
                },
                SignedMessageView {
                    value: Some(hex::encode(second.proposal.value)),
                    signature: hex::encode(second.signature.0),
                },
            ),
        };
        EvidenceView {
            validator: record.key.validator.to_string(),
            height: record.key.height,
            round: record.key.round,
            kind: record.key.kind.as_str().to_owned(),
            recorded_at: record.recorded_at,
            first,
            second,
            evidence: record.evidence,
        }
    }
}

/// A page of recorded equivocations, in the order they were recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceList {
    pub items: Vec<EvidenceView>,
    /// The `cursor` of the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    pub state: StateView,
}

/// One recorded equivocation with its proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceProofView {
    pub record: EvidenceView,
    /// The sparse-Merkle proof of the record (key `RecordKey::Evidence`) against `header`.
    #[schema(value_type = Object)]
    pub proof: StateProof,
}

/// Query of the evidence list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EvidenceQuery {
    /// Only evidence recorded at this height or later.
    from_height: Option<Height>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size.
    limit: Option<usize>,
}

/// The cursor after `record`: base32 of its recorded height (8 bytes, big-endian) and its
/// key's canonical bytes.
fn encode_cursor(record: &EvidenceRecord) -> String {
    let mut bytes = record.recorded_at.to_be_bytes().to_vec();
    bytes.extend_from_slice(&hutong_core::codec::to_canonical(&record.key));
    hutong_verify::base32::encode(&bytes)
}

fn decode_cursor(text: &str) -> Result<(Height, EvidenceKey), ApiError> {
    let invalid = || ApiError::bad_request("invalid_cursor", "the cursor cannot be read");
    let bytes = hutong_verify::base32::decode(text).map_err(|_| invalid())?;
    if bytes.len() < 8 || bytes.len() > 256 {
        return Err(invalid());
    }
    let (height, key) = bytes.split_at(8);
    let mut height_bytes = [0u8; 8];
    height_bytes.copy_from_slice(height);
    let key: EvidenceKey = hutong_core::codec::from_canonical(key, 248).map_err(|_| invalid())?;
    Ok((Height::from_be_bytes(height_bytes), key))
}

/// Equivocations (two conflicting signed votes or proposals of one validator for one slot)
/// recorded on the ledger.
#[utoipa::path(
    get,
    path = "/v1/evidence",
    tag = "auditors",
    params(EvidenceQuery),
    responses(
        (status = 200, description = "Recorded equivocations", body = EvidenceList),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn evidence_list(
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<EvidenceQuery>,
) -> Result<Json<EvidenceList>, ApiError> {
    let limit = page_size(&state, query.limit)?;
    let from_height = query.from_height.unwrap_or(0);
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let work = state.clone();
    blocking(move || {
        let store = work.store();
        let state_view = state_view_of(store)?;
        // One more than the page, to know whether another page follows.
        let mut records = store.evidence_from(
            from_height,
            after.as_ref().map(|(height, key)| (*height, key)),
            limit + 1,
        )?;
        let next_cursor = if records.len() > limit {
            records.truncate(limit);
            records.last().map(encode_cursor)
        } else {
            None
        };
        Ok(Json(EvidenceList {
            items: records.into_iter().map(EvidenceView::from).collect(),
            next_cursor,
            state: state_view,
        }))
    })
    .await
}

fn parse_slot(
    validator: &str,
    height: &str,
    round: &str,
    kind: &str,
) -> Result<EvidenceKey, ApiError> {
    let bad = |detail: String| ApiError::bad_request("invalid_path_parameter", detail);
    let validator = validator
        .parse::<PublicKey>()
        .map_err(|error| bad(format!("the validator is a node key in hex: {error}")))?;
    let height = height
        .parse::<Height>()
        .map_err(|_| bad(format!("a height is a decimal number, got {height:?}")))?;
    let round = round
        .parse::<u32>()
        .map_err(|_| bad(format!("a round is a decimal number, got {round:?}")))?;
    let kind = EquivocationKind::parse(kind).ok_or_else(|| {
        bad(format!(
            "the kind is proposal, prevote or precommit, got {kind:?}"
        ))
    })?;
    Ok(EvidenceKey {
        validator,
        height,
        round,
        kind,
    })
}

/// One recorded equivocation, with its proof against the current header.
#[utoipa::path(
    get,
    path = "/v1/evidence/{validator}/{height}/{round}/{kind}",
    tag = "auditors",
    params(
        ("validator" = String, Path, description = "Node key (hex)"),
        ("height" = u64, Path, description = "Height of the equivocation"),
        ("round" = u32, Path, description = "Round of the equivocation"),
        ("kind" = String, Path, description = "proposal, prevote or precommit")
    ),
    responses(
        (status = 200, description = "The record and its proof", body = EvidenceProofView),
        (status = 400, description = "Malformed path", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No equivocation recorded for this slot", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn evidence_record(
    State(state): State<ApiState>,
    ApiPath((validator, height, round, kind)): ApiPath<(String, String, String, String)>,
) -> Result<Json<EvidenceProofView>, ApiError> {
    let key = parse_slot(&validator, &height, &round, &kind)?;
    let work = state.clone();
    blocking(move || {
        let store = work.store();
        let proof = store.prove(&RecordKey::Evidence(key))?;
        match &proof.record {
            Some(hutong_core::records::Record::Evidence(record)) => Ok(Json(EvidenceProofView {
                record: EvidenceView::from(record.clone()),
                proof,
            })),
            _ => Err(ApiError::not_found(
                "evidence_not_found",
                "no equivocation is recorded for this validator, height, round and kind",
            )),
        }
    })
    .await
}
