//! The router: every route is registered through `utoipa_axum::routes!`, so the OpenAPI
//! document is generated from the same handlers the router serves; the document itself is
//! served here too, beside what builds it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::stale::{refuse_if_stale, states_a_licence_now};
use super::{auditor, evidence, explorer, operator, verifier, witness};
use crate::problem::{ApiError, Problem};
use crate::state::{ApiMetrics, ApiState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hutong API",
        description = "Verifier, operator and auditor routes of a hutong node. Errors are RFC 9457 \
                       problem documents (application/problem+json) with a stable `code`.",
        license(name = "Apache-2.0")
    ),
    components(schemas(Problem)),
    tags(
        (name = "verifiers", description = "Is this licence genuine, valid, and recognised here?"),
        (name = "operators", description = "Submit records; watch the node."),
        (name = "auditors", description = "Blocks, the transaction log, authorities, export."),
        (name = "explorer", description = "Server-rendered HTML pages for people.")
    )
)]
struct ApiDoc;

fn parts() -> (Router<ApiState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(verifier::licence))
        .routes(routes!(verifier::verification))
        .routes(routes!(verifier::proof))
        .routes(routes!(verifier::holder_licences))
        .routes(routes!(verifier::holder_proof))
        .routes(routes!(verifier::search))
        .routes(routes!(verifier::qr))
        .routes(routes!(verifier::verify_presentation))
        .routes(routes!(operator::submit))
        .routes(routes!(operator::transaction_status))
        .routes(routes!(operator::node))
        .routes(routes!(operator::authority_nonce))
        .routes(routes!(operator::healthz))
        .routes(routes!(operator::readyz))
        .routes(routes!(operator::metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(auditor::block))
        .routes(routes!(auditor::blocks))
        .routes(routes!(auditor::checkpoint))
        .routes(routes!(auditor::inclusion))
        .routes(routes!(auditor::consistency))
        .routes(routes!(witness::submit_cosignature))
        .routes(routes!(auditor::export))
        .routes(routes!(auditor::authorities))
        .routes(routes!(auditor::authority_actions))
        .routes(routes!(auditor::licence_types))
        .routes(routes!(auditor::recognitions))
        .routes(routes!(evidence::evidence_list))
        .routes(routes!(evidence::evidence_record))
        .routes(routes!(auditor::licence_events))
        .routes(routes!(auditor::licence_events_report))
        .routes(routes!(auditor::licence_history))
        .routes(routes!(explorer::home))
        .routes(routes!(explorer::search_page))
        .routes(routes!(explorer::licence_page))
        .routes(routes!(explorer::block_page))
        .routes(routes!(explorer::authorities_page))
        .split_for_parts()
}

/// The OpenAPI 3.1 document of the router, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().1
}

/// The OpenAPI document as JSON, built once.
pub(crate) fn openapi_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| openapi().to_pretty_json().unwrap_or_default())
}

/// The API's router. The node serves it with
/// `axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())` so that
/// the rate limit can key on the client's address.
pub fn router(state: ApiState) -> Router {
    let (router, _) = parts();
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("route_not_found", "no such route; see /openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; see /openapi.json",
    )
}

/// Routes that probes call: never rate limited.
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// The client a request's rate limit is keyed on: its peer address, or, when the peer is one
/// of the operator's `trusted_proxies`, the address its `X-Forwarded-For` names nearest the end
/// that is not a trusted proxy (each proxy appends the address it heard from, so what a client
/// wrote itself is further left and never chosen). Every address of all values of the header
/// counts, in order; an unreadable one ends the reading there.
fn client_of(request: &Request, trusted_proxies: &[IpAddr]) -> IpAddr {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    let mut hops: Vec<&str> = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    hops.reverse();
    let mut client = peer;
    for hop in hops.into_iter().take(crate::limits::FORWARDED_HOPS_MAX) {
        let Ok(address) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = address;
        if !trusted_proxies.contains(&address) {
            break;
        }
    }
    client
}

/// Rate limit, announced body size, body, concurrency limit, timeout, counters: one layer, in
/// that order, so that a client over its rate costs nothing, an oversized body is refused
/// before a byte of it is read, and a slow body holds no concurrency permit. Probes are not
/// rate limited and take their permit from a pool of their own.
async fn guard(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let response = guarded(&state, request, next).await;
    let metrics = &state.inner.metrics;
    if response.status().is_client_error() {
        ApiMetrics::bump(&metrics.client_errors);
    } else if response.status().is_server_error() {
        ApiMetrics::bump(&metrics.server_errors);
    }
    response
}

async fn guarded(state: &ApiState, request: Request, next: Next) -> Response {
    let metrics = &state.inner.metrics;
    ApiMetrics::bump(&metrics.requests);
    let probe = is_probe(request.uri().path());
    if !probe {
        let client = client_of(&request, &state.config().trusted_proxies);
        if let Err(retry_after_seconds) = state.inner.limiter.check(client) {
            ApiMetrics::bump(&metrics.rate_limited);
            return ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "more than {} requests per second from {client}; retry in {retry_after_seconds} s",
                    state.config().client_requests_per_second
                ),
            )
            .retry_after(retry_after_seconds)
            .into_response();
        }
    }
    if states_a_licence_now(request.uri().path())
        && let Err(stale) = refuse_if_stale(state)
    {
        ApiMetrics::bump(&metrics.stale);
        return stale.into_response();
    }
    let request = match receive_body(state, request).await {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    let pool = if probe {
        &state.inner.probe_concurrency
    } else {
        &state.inner.concurrency
    };
    let Ok(permit) = pool.clone().try_acquire_owned() else {
        ApiMetrics::bump(&metrics.overloaded);
        return overloaded();
    };
    let timeout = Duration::from_millis(state.config().request_timeout_ms);
    let response = match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            ApiMetrics::bump(&metrics.timeouts);
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the answer took longer than {} ms",
                    state.config().request_timeout_ms
                ),
            )
            .retry_after(1)
            .into_response()
        }
    };
    drop(permit);
    response
}

fn overloaded() -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "the node is serving as many requests as it may; retry shortly",
    )
    .retry_after(1)
    .into_response()
}

/// An answer after which the connection is closed: the rest of the body is never read.
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Receives the whole body (bounded in size and time) before the request takes a permit, so
/// that the handler reads it from memory. A `Content-Length` over the limit is answered 413
/// at once; a request without a body passes as it is.
async fn receive_body(state: &ApiState, request: Request) -> Result<Request, Response> {
    let limit = state.config().body_bytes_max;
    let headers = request.headers();
    let announced = match headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(value) => match value
            .to_str()
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
        {
            Some(length) => Some(length),
            None => {
                return Err(closing(ApiError::bad_request(
                    "invalid_content_length",
                    "Content-Length is not a number of bytes",
                )));
            }
        },
    };
    if let Some(length) = announced
        && length > limit as u64
    {
        return Err(closing(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is announced as {length} bytes; the limit is {limit}"),
        )));
    }
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    if announced.unwrap_or(0) == 0 && !chunked {
        return Ok(request);
    }
    let Ok(reading) = state.inner.body_reads.clone().try_acquire_owned() else {
        ApiMetrics::bump(&state.inner.metrics.overloaded);
        return Err(closing(
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "the node is receiving as many request bodies as it may; retry shortly",
            )
            .retry_after(1),
        ));
    };
    let (parts, body) = request.into_parts();
    let timeout_ms = state.config().body_read_timeout_ms;
    let received = tokio::time::timeout(
        Duration::from_millis(timeout_ms),
        axum::body::to_bytes(body, limit),
    )
    .await;
    drop(reading);
    match received {
        Ok(Ok(bytes)) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Ok(Err(error)) => Err(closing(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body exceeds {limit} bytes or was cut off ({error})"),
        ))),
        Err(_) => {
            ApiMetrics::bump(&state.inner.metrics.body_timeouts);
            Err(closing(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the body did not arrive within {timeout_ms} ms"),
            )))
        }
    }
}

/// This document: OpenAPI 3.1, generated from the handlers.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operators",
    responses((status = 200, description = "The OpenAPI document", body = Object))
)]
pub(crate) async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        openapi_text(),
    )
        .into_response()
}
