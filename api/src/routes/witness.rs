//! The witnesses' route: `POST /v1/log/cosignatures`, where a witness the node accepts hands
//! in its cosignature of one of the node's checkpoints (ADR 0038, docs/proofs.md section 14).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use hutong_verify::witness::{self, CheckpointNote, Cosignature};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auditor::first_header_with_log_size;
use super::{blocking, json_body, read_body};
use crate::limits::COSIGNATURE_BODY_BYTES_MAX;
use crate::problem::{ApiError, Problem};
use crate::state::ApiState;

/// A witness's cosignature of the checkpoint note of one log size.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CosignatureSubmission {
    /// `{origin, log_size, log_root}`: the note the witness cosigned.
    #[schema(value_type = Object)]
    note: CheckpointNote,
    /// `{witness, key_id, time, signature}`.
    #[schema(value_type = Object)]
    cosignature: Cosignature,
}

/// The node kept the cosignature.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CosignatureAccepted {
    witness: String,
    log_size: u64,
}

/// A witness hands in its cosignature (`cosignature/v1`) of the note of a log size this node
/// signed a checkpoint of. Only witnesses in the node's `[[witnesses]]` are accepted; the
/// cosignature is checked against the node's own root of that size and kept (bounded) to be
/// served with checkpoints and bundles. A refusal changes nothing.
#[utoipa::path(
    post,
    path = "/v1/log/cosignatures",
    tag = "auditors",
    request_body(content = CosignatureSubmission, content_type = "application/json"),
    responses(
        (status = 200, description = "Kept", body = CosignatureAccepted),
        (status = 400, description = "Not JSON of the shape (invalid_body)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A witness this node does not accept (unknown_witness), or a cosignature that does not verify under its key (bad_cosignature)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The note's root is not this node's root of that size (root_mismatch)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 4 KiB (body_too_large)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Another chain's origin (origin_mismatch), a size beyond the log (size_beyond_log), or one no block ends with (size_not_a_checkpoint)", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn submit_cosignature(
    State(state): State<ApiState>,
    body: Body,
) -> Result<Json<CosignatureAccepted>, ApiError> {
    let body = read_body(&state, body).await?;
    if body.len() > COSIGNATURE_BODY_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "a cosignature's body is at most {COSIGNATURE_BODY_BYTES_MAX} bytes, this one is {}",
                body.len()
            ),
        ));
    }
    let submission: CosignatureSubmission = json_body(&body)?;
    let Some(key) = state
        .config()
        .witnesses
        .iter()
        .find(|key| key.name == submission.cosignature.witness)
        .cloned()
    else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "unknown_witness",
            format!(
                "this node accepts no witness named {:?} (its [[witnesses]] list)",
                submission
                    .cosignature
                    .witness
                    .chars()
                    .take(64)
                    .collect::<String>()
            ),
        ));
    };
    let work = state.clone();
    blocking(move || {
        let store = work.store();
        let note = &submission.note;
        let expected_origin = witness::origin(store.chain_id());
        if note.origin != expected_origin {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "origin_mismatch",
                format!(
                    "the note is of origin {:?}; this chain's is {expected_origin:?}",
                    note.origin.chars().take(128).collect::<String>()
                ),
            ));
        }
        let head_size = store.head()?.header.log_size;
        if note.log_size > head_size {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "size_beyond_log",
                format!(
                    "the log has {head_size} transactions; size {} is beyond it",
                    note.log_size
                ),
            ));
        }
        let header = first_header_with_log_size(store, note.log_size).map_err(|error| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error.code, error.detail)
        })?;
        if header.log_root != note.log_root {
            tracing::warn!(
                witness = %key.name,
                log_size = note.log_size,
                ours = %header.log_root,
                theirs = %note.log_root,
                "a witness cosigned another root for a log size this node signed"
            );
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "root_mismatch",
                format!(
                    "the note's root of size {} is {}; this node's is {} (block {})",
                    note.log_size, note.log_root, header.log_root, header.height
                ),
            ));
        }
        witness::verify_cosignature(&key, &submission.cosignature, note).map_err(|error| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "bad_cosignature",
                format!("{error} ({})", error.code()),
            )
        })?;
        work.inner
            .cosignatures
            .lock()
            .map_err(|_| ApiError::internal("the cosignature pool's lock is poisoned"))?
            .insert(note.log_size, submission.cosignature);
        Ok(Json(CosignatureAccepted {
            witness: key.name,
            log_size: note.log_size,
        }))
    })
    .await
}
