//! The router: every route is registered through `utoipa_axum::routes!`, so the OpenAPI
//! document is generated from the same handlers the router serves.

mod auditor;
mod evidence;
pub(crate) mod explorer;
mod operator;
mod verifier;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hutong_core::records::{AuthorityId, LicenceNumber, TypeCode};
use hutong_core::tx::{check_identifier, check_licence_number};
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::problem::{ApiError, Problem};
use crate::state::{ApiMetrics, ApiState};
use hutong_verify::base32;

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
        .routes(routes!(operator::openapi_json))
        .routes(routes!(auditor::block))
        .routes(routes!(auditor::blocks))
        .routes(routes!(auditor::checkpoint))
        .routes(routes!(auditor::inclusion))
        .routes(routes!(auditor::consistency))
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

fn client_of(request: &Request, trust_forwarded_for: bool) -> IpAddr {
    if trust_forwarded_for
        && let Some(address) = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .and_then(|first| first.trim().parse::<IpAddr>().ok())
    {
        return address;
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}

/// Rate limit, concurrency limit, timeout, counters: one layer, in that order, so that a
/// client over its rate costs no concurrency slot.
async fn guard(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let metrics = &state.inner.metrics;
    ApiMetrics::bump(&metrics.requests);
    if !is_probe(request.uri().path()) {
        let client = client_of(&request, state.config().trust_forwarded_for);
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
    let Ok(permit) = state.inner.concurrency.clone().try_acquire_owned() else {
        ApiMetrics::bump(&metrics.overloaded);
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the node is serving as many requests as it may; retry shortly",
        )
        .retry_after(1)
        .into_response();
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
    if response.status().is_client_error() {
        ApiMetrics::bump(&metrics.client_errors);
    } else if response.status().is_server_error() {
        ApiMetrics::bump(&metrics.server_errors);
    }
    response
}

/// Query parameters, with unknown parameters and malformed values answered 400
/// `invalid_query`.
pub(crate) struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|query| ApiQuery(query.0))
            .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))
    }
}

/// Path parameters as text, with undecodable ones answered 400 `invalid_path_parameter`.
pub(crate) struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|path| ApiPath(path.0))
            .map_err(|rejection| {
                ApiError::bad_request("invalid_path_parameter", rejection.body_text())
            })
    }
}

/// A licence type code from a path or query: `[a-z0-9-]`, 1 to 64 bytes.
pub(crate) fn parse_type(text: &str) -> Result<TypeCode, ApiError> {
    check_identifier("type", text)
        .map_err(|error| ApiError::bad_request("invalid_path_parameter", error.to_string()))?;
    Ok(TypeCode(text.to_owned()))
}

/// A licence number from a path or query.
pub(crate) fn parse_number(text: &str) -> Result<LicenceNumber, ApiError> {
    check_licence_number(text)
        .map_err(|error| ApiError::bad_request("invalid_path_parameter", error.to_string()))?;
    Ok(LicenceNumber(text.to_owned()))
}

/// An authority id.
pub(crate) fn parse_authority(text: &str) -> Result<AuthorityId, ApiError> {
    check_identifier("authority", text)
        .map_err(|error| ApiError::bad_request("invalid_path_parameter", error.to_string()))?;
    Ok(AuthorityId(text.to_owned()))
}

/// A page size: the default when absent, 1 to the maximum otherwise.
pub(crate) fn page_size(state: &ApiState, limit: Option<usize>) -> Result<usize, ApiError> {
    let config = state.config();
    match limit {
        None => Ok(config.page_size_default),
        Some(limit) if (1..=config.page_size_max).contains(&limit) => Ok(limit),
        Some(limit) => Err(ApiError::bad_request(
            "limit_out_of_range",
            format!("limit is {limit}; it must be 1 to {}", config.page_size_max),
        )),
    }
}

/// An opaque cursor over `(type, number)` keys: base32 of `type || 0x00 || number`.
pub(crate) fn encode_licence_cursor(type_code: &TypeCode, number: &LicenceNumber) -> String {
    let mut bytes = type_code.as_str().as_bytes().to_vec();
    bytes.push(0);
    bytes.extend_from_slice(number.as_str().as_bytes());
    base32::encode(&bytes)
}

pub(crate) fn decode_licence_cursor(text: &str) -> Result<(TypeCode, LicenceNumber), ApiError> {
    let bad = |detail: String| ApiError::bad_request("invalid_cursor", detail);
    if text.len() > 512 {
        return Err(bad("the cursor is too long".into()));
    }
    let bytes = base32::decode(text).map_err(|error| bad(error.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("the cursor is not UTF-8".into()))?;
    let (type_code, number) = text
        .split_once('\0')
        .ok_or_else(|| bad("the cursor does not name a licence".into()))?;
    let type_code = parse_type(type_code).map_err(|error| bad(error.detail))?;
    let number = parse_number(number).map_err(|error| bad(error.detail))?;
    Ok((type_code, number))
}

/// Runs store work that may take a while off the async workers.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
}
