//! Operator routes: submitting transactions and following them, the node's state, probes and
//! metrics. (The OpenAPI document is served by `router.rs`, which builds it.)

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hutong_core::codec::CodecError;
use hutong_core::hash::Hash32;
use hutong_core::tx::{FormError, Transaction};

use super::{ApiPath, json_body, read_body};
use crate::node::SubmitError;
use crate::problem::{ApiError, Problem};
use crate::state::{ApiMetrics, ApiState};
use crate::views::{HealthView, NodeView, NonceView, SubmittedView, TransactionStatusView};

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map_or("", str::trim)
}

/// Submits a signed transaction, as JSON (`application/json`) or in its canonical binary
/// encoding (`application/octet-stream`). 202 means admitted to the mempool, not committed:
/// follow `status_url`.
#[utoipa::path(
    post,
    path = "/v1/transactions",
    tag = "operators",
    request_body(content(
        (Object = "application/json"),
        (Vec<u8> = "application/octet-stream")
    ), description = "A signed transaction"),
    responses(
        (status = 202, description = "Admitted to the mempool", body = SubmittedView),
        (status = 400, description = "Malformed: bad JSON, unknown fields, a field out of form", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Unknown signer or a signature that does not verify", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already pending or committed", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body or transaction too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither JSON nor octet-stream", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The rules reject it; `code` is the rule's", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited, the signer holds its share of the mempool (signer_share_exceeded), or it has written all its write quota takes in the current window (write_quota_exceeded); Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Mempool full or node not ready (Retry-After)", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn submit(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(&state, body).await?;
    let transaction = match content_type(&headers) {
        "application/json" => {
            let transaction: Transaction = json_body(&body)?;
            transaction.check_size_and_form().map_err(form_error)?;
            transaction
        }
        "application/octet-stream" => Transaction::decode(&body).map_err(form_error)?,
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "content type {other:?}; send application/json or application/octet-stream"
                ),
            ));
        }
    };
    let node = state.inner.node.clone();
    let id = super::blocking(move || node.submit(transaction).map_err(ApiError::from)).await?;
    ApiMetrics::bump(&state.inner.metrics.transactions_submitted);
    let status_url = format!("/v1/transactions/{id}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(SubmittedView {
            id,
            status_url: status_url.clone(),
        }),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

fn form_error(error: FormError) -> ApiError {
    match error {
        FormError::Encoding(CodecError::TooLarge {
            size_bytes,
            limit_bytes,
        }) => SubmitError::TooLarge {
            size_bytes,
            limit_bytes,
        }
        .into(),
        other => SubmitError::Malformed(other).into(),
    }
}

pub(crate) fn parse_hash(text: &str) -> Result<Hash32, ApiError> {
    text.parse::<Hash32>()
        .map_err(|error| ApiError::bad_request("invalid_path_parameter", error.to_string()))
}

/// A transaction's state: committed (with the proof of its place: its block's signed checkpoint,
/// its inclusion under the block's `tx_root` and in the log), pending, or rejected with the reason.
#[utoipa::path(
    get,
    path = "/v1/transactions/{hash}",
    tag = "operators",
    params(("hash" = String, Path, description = "Transaction id, 64 hexadecimal characters")),
    responses(
        (status = 200, description = "Its state", body = TransactionStatusView),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown to this node", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn transaction_status(
    State(state): State<ApiState>,
    ApiPath(hash_text): ApiPath<String>,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let id = parse_hash(&hash_text)?;
    let proof_state = state.clone();
    let proof =
        super::blocking(move || crate::proofs::transaction_proof(&proof_state, &id)).await?;
    if let Some(proof) = proof {
        // The binary form is the proof document alone; a pending transaction has none and is
        // answered in JSON whatever was asked.
        if crate::binary::wants_binary(&headers) {
            return Ok(crate::binary::respond(
                &headers,
                hutong_verify::binary::Document::TransactionProof(proof),
            ));
        }
        return Ok(Json(TransactionStatusView::Committed {
            height: proof.location.height,
            index: proof.location.index,
            log_index: proof.location.log_index,
            proof: Box::new(proof),
        })
        .into_response());
    }
    match state.node().pending_status(&id) {
        Some(status) => Ok(Json(TransactionStatusView::from(status)).into_response()),
        None => Err(ApiError::not_found(
            "transaction_not_found",
            format!("transaction {id} is neither committed nor pending on this node"),
        )),
    }
}

/// The node: chain, height, time of the last block, role, peers, sync state.
#[utoipa::path(
    get,
    path = "/v1/node",
    tag = "operators",
    responses((status = 200, description = "The node", body = NodeView))
)]
pub(crate) async fn node(State(state): State<ApiState>) -> Result<Json<NodeView>, ApiError> {
    let store = state.store();
    let head = store.head()?;
    Ok(Json(NodeView {
        chain_id: store.chain_id().to_owned(),
        suite: store.suite(),
        genesis_hash: head.genesis_hash,
        height: head.header.height,
        block_hash: head.block_hash,
        last_block_time: head.header.time,
        log_size: head.header.log_size,
        node: state.node().node_info(),
    }))
}

/// The nonce an authority's next transaction should carry when submitted to this node: one
/// above its last committed nonce, or beyond it by its transactions waiting here (ADR 0011).
#[utoipa::path(
    get,
    path = "/v1/authorities/{id}/nonce",
    tag = "operators",
    params(("id" = String, Path, description = "Authority id", example = "qd-approval")),
    responses(
        (status = 200, description = "The authority's nonces", body = NonceView),
        (status = 400, description = "Malformed authority id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such authority", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn authority_nonce(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<NonceView>, ApiError> {
    let id = super::parse_authority(&id)?;
    let authority = super::verifier::authority(state.store(), &id)?.ok_or_else(|| {
        ApiError::not_found(
            "authority_not_found",
            format!("no authority {id} on the ledger"),
        )
    })?;
    let committed_next = authority.last_nonce.saturating_add(1);
    Ok(Json(NonceView {
        next: state.node().next_nonce(&id, committed_next),
        authority: id,
        last_committed: authority.last_nonce,
    }))
}

/// Liveness: the process answers and its store reads.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operators",
    responses((status = 200, description = "Alive", body = HealthView))
)]
pub(crate) async fn healthz(State(state): State<ApiState>) -> Result<Json<HealthView>, ApiError> {
    Ok(Json(HealthView {
        status: "ok".into(),
        height: state.store().height()?,
    }))
}

/// Readiness: the node says it is ready (store checked, network up, caught up with its peers)
/// and its answers are not stale (it has peers, and its last block is younger than the
/// genesis file's `freshness.proof_age_ms_max`).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operators",
    responses(
        (status = 200, description = "Ready", body = HealthView),
        (status = 503, description = "Not ready", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn readyz(State(state): State<ApiState>) -> Result<Json<HealthView>, ApiError> {
    let info = state.node().node_info();
    if info.ready
        && let Err(stale) = super::stale::refuse_if_stale(&state)
    {
        return Err(stale);
    }
    if !info.ready {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            if info.syncing {
                "the node is catching up with its peers"
            } else {
                "the node is starting"
            },
        )
        .retry_after(1));
    }
    Ok(Json(HealthView {
        status: "ready".into(),
        height: state.store().height()?,
    }))
}

/// Prometheus metrics: the node's, then the API's.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operators",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
pub(crate) async fn metrics(State(state): State<ApiState>) -> Response {
    let mut text = state.node().metrics();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&state.inner.metrics.render());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
