//! The HTTP routes: the handlers by audience (`verifier`, `operator`, `auditor`, `evidence`,
//! `explorer`), the router that registers them and serves the OpenAPI document
//! (`router.rs`), and, here, what the handlers share: extractors whose rejections are problem
//! documents, parsers of path parameters, page sizes and cursors, request bodies, and the
//! blocking pool.

mod auditor;
mod evidence;
pub(crate) mod explorer;
mod operator;
pub(crate) mod router;
pub(crate) mod stale;
mod verifier;
mod witness;

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use hutong_core::records::{AuthorityId, LicenceNumber, TypeCode};
use hutong_core::tx::{check_identifier, check_licence_number};
use serde::de::DeserializeOwned;

use crate::problem::ApiError;
use crate::state::ApiState;
use hutong_verify::base32;

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

/// Reads a request body up to the configured limit (413 `body_too_large` past it).
pub(crate) async fn read_body(state: &ApiState, body: Body) -> Result<Bytes, ApiError> {
    let limit = state.config().body_bytes_max;
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body exceeds {limit} bytes ({error})"),
        )
    })
}

/// Decodes a JSON body, refusing unknown fields.
pub(crate) fn json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request("invalid_body", error.to_string()))
}
