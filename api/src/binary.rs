//! The binary form of the proof documents (`hutong_verify::binary`), answered instead of JSON
//! when a request's `Accept` header names its media type.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use hutong_verify::binary::{BINARY_MEDIA_TYPE, Document};

/// Whether the request asks for the binary form.
pub(crate) fn wants_binary(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case(BINARY_MEDIA_TYPE))
        })
}

/// `document` in the form the request asks for: binary, or the JSON document itself.
pub(crate) fn respond(headers: &HeaderMap, document: Document) -> Response {
    if wants_binary(headers) {
        return (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(BINARY_MEDIA_TYPE),
            )],
            document.to_binary(),
        )
            .into_response();
    }
    match document {
        Document::Bundle(bundle) => axum::Json(bundle).into_response(),
        Document::TransactionProof(proof) => axum::Json(proof).into_response(),
        Document::Checkpoint(checkpoint) => axum::Json(checkpoint).into_response(),
        Document::Holder(proof) => axum::Json(proof).into_response(),
    }
}
