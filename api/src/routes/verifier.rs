//! Verifier routes: a licence, its verdict, its proof bundle, its QR code, a holder's licences,
//! search, and the check of a scanned QR payload.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hutong_core::hash::Hash32;
use hutong_core::ident::{RegionCode, Uscc};
use hutong_core::records::{
    Authority, AuthorityId, FaceValue, Holder, Licence, LicenceEventKind, LicenceNumber, Record,
    RecordKey, Status, TimeMs, TypeCode, face_commitment,
};
use hutong_ledger::store::Store;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    ApiPath, ApiQuery, blocking, decode_licence_cursor, encode_licence_cursor, page_size,
    parse_authority, parse_number, parse_type,
};
use crate::problem::{ApiError, Problem};
use crate::qr_image;
use crate::state::{ApiMetrics, ApiState};
use crate::views::{
    AuthoritySummary, FieldCheck, HolderView, LicencePage, LicenceSummary, LicenceView,
    PresentationRequest, PresentationView, StateView, VerificationView,
};
use hutong_core::suite::Suite;
use hutong_verify::binary::Document;
use hutong_verify::qr::QrPayload;

pub(crate) fn licence_not_found(type_code: &TypeCode, number: &LicenceNumber) -> ApiError {
    ApiError::not_found(
        "licence_not_found",
        format!("no licence {type_code}/{number} is recorded"),
    )
}

pub(crate) fn parse_region(text: &str) -> Result<RegionCode, ApiError> {
    RegionCode::parse(text)
        .map_err(|error| ApiError::bad_request("invalid_query", error.to_string()))
}

pub(crate) fn state_view_of(store: &Store) -> Result<StateView, ApiError> {
    let header = store.head()?.header;
    Ok(StateView {
        height: header.height,
        time: header.time,
    })
}

pub(crate) fn authority(store: &Store, id: &AuthorityId) -> Result<Option<Authority>, ApiError> {
    match store.record(&RecordKey::Authority(id.clone()))? {
        Some(Record::Authority(authority)) => Ok(Some(authority)),
        _ => Ok(None),
    }
}

/// The licence view of a stored licence at `now`.
pub(crate) fn licence_view(
    store: &Store,
    licence: Licence,
    now: TimeMs,
) -> Result<LicenceView, ApiError> {
    let issuer = authority(store, &licence.issuer)?.ok_or_else(|| {
        ApiError::internal(format!(
            "the issuer {} of a licence is missing",
            licence.issuer
        ))
    })?;
    let (type_name_zh, type_name_en) =
        match store.record(&RecordKey::LicenceType(licence.type_code.clone()))? {
            Some(Record::LicenceType(licence_type)) => (licence_type.name_zh, licence_type.name_en),
            _ => (String::new(), String::new()),
        };
    let standing = licence.standing_at(now);
    let open_objections = licence.open_objections();
    let within_validity =
        now >= licence.valid_from && standing.valid_until.is_none_or(|until| now < until);
    Ok(LicenceView {
        type_code: licence.type_code,
        number: licence.number,
        type_name_zh,
        type_name_en,
        holder: licence.holder,
        holder_name: licence.holder_name,
        issuer: AuthoritySummary::from(&issuer),
        region: licence.region,
        face: licence.face,
        status: standing.status,
        within_validity,
        valid_from: licence.valid_from,
        valid_until: standing.valid_until,
        standing,
        document_hash: licence.document_hash,
        issued_at: licence.issued_at,
        history: licence.events,
        open_objections,
        objections: licence.objections,
        state: state_view_of(store)?,
    })
}

/// The record of a licence: public face fields in clear, private ones as commitments, its
/// current status and validity, issuer and history.
#[utoipa::path(
    get,
    path = "/v1/licences/{type}/{number}",
    tag = "verifiers",
    params(
        ("type" = String, Path, description = "Licence type code", example = "business-licence"),
        ("number" = String, Path, description = "Licence number", example = "91370200MA00000012")
    ),
    responses(
        (status = 200, description = "The licence", body = LicenceView),
        (status = 400, description = "Malformed type or number", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such licence", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn licence(
    State(state): State<ApiState>,
    ApiPath((type_text, number_text)): ApiPath<(String, String)>,
) -> Result<Json<LicenceView>, ApiError> {
    let type_code = parse_type(&type_text)?;
    let number = parse_number(&number_text)?;
    let store = state.store();
    let licence = store
        .licence(&type_code, &number)?
        .ok_or_else(|| licence_not_found(&type_code, &number))?;
    Ok(Json(licence_view(store, licence, state.now())?))
}

/// Query of the verification route.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct VerificationQuery {
    /// Region of use (GB/T 2260, six digits): answers whether the licence is usable there.
    #[param(example = "650100")]
    region: Option<String>,
    /// Time to judge at, ms since the Unix epoch (default: now).
    at: Option<TimeMs>,
    /// Also return the proof bundle (slower).
    proof: Option<bool>,
    /// The bundle's checkpoint starts from the verifier's trusted checkpoint at this height
    /// and carries only the validator-set hand-overs after it (a light client's).
    trusted_height: Option<u64>,
}

/// The ledger's verdict: valid or not, with every reason, the recognition that makes it
/// usable in the region, open objections, and the height and time of the state it was computed
/// on. The hot path: no proof is built unless `proof=true`.
#[utoipa::path(
    get,
    path = "/v1/licences/{type}/{number}/verification",
    tag = "verifiers",
    params(
        ("type" = String, Path, description = "Licence type code", example = "business-licence"),
        ("number" = String, Path, description = "Licence number", example = "91370200MA00000012"),
        VerificationQuery
    ),
    responses(
        (status = 200, description = "The verdict", body = VerificationView, example = json!({
            "type_code": "business-licence", "number": "91370200MA00000012", "valid": true,
            "valid_in_region": true, "at": 1767312000000u64, "region": "650100", "status": "active",
            "valid_from": 1767225600000u64, "valid_until": null,
            "issuer": {"id": "qd-approval", "name_zh": "青岛市行政审批服务局", "name_en": "Qingdao Administrative Approval Bureau", "region": "370200"},
            "recognition": null, "open_objections": [],
            "reasons": [{"code": "issuer_authorised", "ok": true, "detail": "issued by ...", "detail_zh": "由..."}],
            "state": {"height": 12, "time": 1767225612000u64}
        })),
        (status = 400, description = "Malformed path or query", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such licence", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn verification(
    State(state): State<ApiState>,
    ApiPath((type_text, number_text)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<VerificationQuery>,
) -> Result<Json<VerificationView>, ApiError> {
    let type_code = parse_type(&type_text)?;
    let number = parse_number(&number_text)?;
    let region = query.region.as_deref().map(parse_region).transpose()?;
    let at = query.at.unwrap_or_else(|| state.now());
    let answer = state
        .store()
        .verdict(&type_code, &number, region.as_ref(), at)?
        .ok_or_else(|| licence_not_found(&type_code, &number))?;
    ApiMetrics::bump(&state.inner.metrics.verifications);
    let mut view = VerificationView::of(answer);
    if query.proof == Some(true) {
        let proof_state = state.clone();
        view.proof = Some(
            blocking(move || {
                crate::proofs::bundle(
                    &proof_state,
                    &type_code,
                    &number,
                    region.as_ref(),
                    query.trusted_height,
                )
            })
            .await?,
        );
        ApiMetrics::bump(&state.inner.metrics.bundles);
    }
    Ok(Json(view))
}

/// Query of the proof route.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ProofQuery {
    /// Prove the verdict for use in this region: when the licence needs a recognition there,
    /// the recognition set of every region covering it, whole, with each recognition it lists
    /// about the licence (without a region, or in the licence's own province, none).
    region: Option<String>,
    /// The checkpoint starts from the verifier's trusted checkpoint at this height and carries
    /// only the validator-set hand-overs after it (a light client's).
    trusted_height: Option<u64>,
    /// Add a `witnessed` section: a log at least as large as the header's, cosigned by at
    /// least this many of the witnesses the node accepts (1 to their number), with the proof
    /// that it extends the header's log; 503 `not_witnessed` when none is cosigned in time.
    witnesses: Option<usize>,
}

/// A self-contained proof bundle: the licence record (or a proof that it does not exist), the
/// records its verdict reads (issuer, grant, recognitions, open objections), each with its
/// sparse-Merkle proof, the signed block header, its commit certificate, the validator set and
/// the hand-overs that connect it to genesis. `hutong verify --bundle` checks it offline.
#[utoipa::path(
    get,
    path = "/v1/licences/{type}/{number}/proof",
    tag = "verifiers",
    params(
        ("type" = String, Path, description = "Licence type code", example = "business-licence"),
        ("number" = String, Path, description = "Licence number", example = "91370200MA00000012"),
        ProofQuery
    ),
    responses(
        (status = 200, description = "The bundle (for an unknown licence, its first record is null and the proof shows absence); in the binary form when `Accept` names application/vnd.hutong.proof", body = Object),
        (status = 400, description = "Malformed path or query; witnesses out of range (witnesses_out_of_range)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not enough witnesses cosigned a log at or above the header's in time (not_witnessed, Retry-After)", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn proof(
    State(state): State<ApiState>,
    ApiPath((type_text, number_text)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<ProofQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let type_code = parse_type(&type_text)?;
    let number = parse_number(&number_text)?;
    let region = query.region.as_deref().map(parse_region).transpose()?;
    let accepted = state.config().witnesses.len();
    if let Some(required) = query.witnesses
        && !(1..=accepted).contains(&required)
    {
        return Err(ApiError::bad_request(
            "witnesses_out_of_range",
            format!(
                "witnesses is {required}; this node accepts {accepted} witnesses, so it must be 1 to {accepted}"
            ),
        ));
    }
    let proof_state = state.clone();
    let trusted_height = query.trusted_height;
    let mut bundle = blocking(move || {
        crate::proofs::bundle(
            &proof_state,
            &type_code,
            &number,
            region.as_ref(),
            trusted_height,
        )
    })
    .await?;
    if let Some(required) = query.witnesses {
        bundle.witnessed =
            Some(wait_for_witnesses(&state, bundle.checkpoint.header.log_size, required).await?);
    }
    ApiMetrics::bump(&state.inner.metrics.bundles);
    Ok(crate::binary::respond(&headers, Document::Bundle(bundle)))
}

/// Query of the holder proof route.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct HolderProofQuery {
    /// The checkpoint starts from the verifier's trusted checkpoint at this height.
    trusted_height: Option<u64>,
}

/// 一照通查 with its proof: the holder's whole licence list (or the proof that it has none),
/// each licence it names, and the signed checkpoint. `hutong verify --bundle` checks it offline
/// and refuses it if a licence of the list is left out (format `hutong-holder-proof/v1`).
#[utoipa::path(
    get,
    path = "/v1/holders/{holder}/licences/proof",
    tag = "verifiers",
    params(
        ("holder" = String, Path, description = "USCC of an enterprise, or the 64-hex commitment of a person", example = "91370200MA00000012"),
        HolderProofQuery
    ),
    responses(
        (status = 200, description = "The holder proof; in the binary form when `Accept` names application/vnd.hutong.proof", body = Object),
        (status = 400, description = "Malformed holder or query", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn holder_proof(
    State(state): State<ApiState>,
    ApiPath(holder_text): ApiPath<String>,
    ApiQuery(query): ApiQuery<HolderProofQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let holder = parse_holder(&holder_text)?;
    let proof_state = state.clone();
    let proof =
        blocking(move || crate::proofs::holder_proof(&proof_state, &holder, query.trusted_height))
            .await?;
    ApiMetrics::bump(&state.inner.metrics.bundles);
    Ok(crate::binary::respond(&headers, Document::Holder(proof)))
}

/// Waits, at most [`WITNESSED_WAIT_MS_MAX`] and half the request time limit, for `required`
/// accepted witnesses to cosign a log at least `header_log_size` large; 503 `not_witnessed`
/// (with `Retry-After`) when they do not.
async fn wait_for_witnesses(
    state: &ApiState,
    header_log_size: u64,
    required: usize,
) -> Result<hutong_verify::witness::Witnessed, ApiError> {
    use crate::limits::{
        NOT_WITNESSED_RETRY_AFTER_SECONDS, WITNESSED_POLL_INTERVAL, WITNESSED_WAIT_MS_MAX,
    };
    let wait_ms = WITNESSED_WAIT_MS_MAX.min(state.config().request_timeout_ms / 2);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(wait_ms);
    loop {
        let work = state.clone();
        if let Some(witnessed) =
            blocking(move || crate::proofs::witnessed(&work, header_log_size, required)).await?
        {
            return Ok(witnessed);
        }
        if tokio::time::Instant::now() + WITNESSED_POLL_INTERVAL > deadline {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_witnessed",
                format!(
                    "no log of {header_log_size} transactions or more has been cosigned by \
                     {required} of the witnesses this node accepts within {wait_ms} ms; retry \
                     once they have caught up"
                ),
            )
            .retry_after(NOT_WITNESSED_RETRY_AFTER_SECONDS));
        }
        tokio::time::sleep(WITNESSED_POLL_INTERVAL).await;
    }
}

/// Query of paginated lists.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// Page size (1 to the configured maximum, 100 by default).
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

pub(crate) fn parse_holder(text: &str) -> Result<Holder, ApiError> {
    if text.len() == 64
        && let Ok(commitment) = text.parse::<Hash32>()
    {
        return Ok(Holder::Person(commitment));
    }
    Uscc::parse(text).map(Holder::Enterprise).map_err(|error| {
        ApiError::bad_request(
            "invalid_path_parameter",
            format!(
                "a holder is a unified social credit code (18 characters) or a person's \
                 commitment (64 hexadecimal characters): {error}"
            ),
        )
    })
}

/// Everything recorded about one holder (一照通查): its licences, by type and number.
#[utoipa::path(
    get,
    path = "/v1/holders/{holder}/licences",
    tag = "verifiers",
    params(
        ("holder" = String, Path, description = "USCC of an enterprise, or the 64-hex commitment of a person", example = "91370200MA00000012"),
        PageQuery
    ),
    responses(
        (status = 200, description = "The holder's licences", body = HolderView),
        (status = 400, description = "Malformed holder, limit or cursor", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn holder_licences(
    State(state): State<ApiState>,
    ApiPath(holder_text): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<HolderView>, ApiError> {
    let holder = parse_holder(&holder_text)?;
    let limit = page_size(&state, query.limit)?;
    let after = query
        .cursor
        .as_deref()
        .map(decode_licence_cursor)
        .transpose()?;
    let store = state.store();
    let keys = store.licences_of_holder(&holder, after.as_ref(), limit)?;
    let now = state.now();
    let mut items = Vec::with_capacity(keys.len());
    for (type_code, number) in &keys {
        if let Some(licence) = store.licence(type_code, number)? {
            items.push(LicenceSummary::of(&licence, now));
        }
    }
    let next_cursor = (keys.len() == limit)
        .then(|| keys.last().map(|(t, n)| encode_licence_cursor(t, n)))
        .flatten();
    Ok(Json(HolderView {
        holder: holder.to_text(),
        items,
        next_cursor,
        state: state_view_of(store)?,
    }))
}

/// Query of the licence search.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchQuery {
    /// Licence type code.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    type_code: Option<String>,
    /// Region of issuance, exactly (six digits).
    region: Option<String>,
    /// Issuing authority id.
    issuer: Option<String>,
    /// Current status: active, suspended, revoked, cancelled, abolished.
    #[param(value_type = Option<String>)]
    status: Option<Status>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Where a search reads its candidates from.
enum Source {
    Issuer(AuthorityId),
    Region(RegionCode),
    All,
}

/// Licences by type, region, issuer and status, in (type, number) order. A page may hold fewer
/// than `limit` items when the scan budget ran out; follow `next_cursor` until it is absent.
#[utoipa::path(
    get,
    path = "/v1/licences",
    tag = "verifiers",
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of licences", body = LicencePage),
        (status = 400, description = "Malformed filter, limit or cursor", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn search(
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<LicencePage>, ApiError> {
    let type_filter = query.type_code.as_deref().map(parse_type).transpose()?;
    let region = query.region.as_deref().map(parse_region).transpose()?;
    let issuer = query.issuer.as_deref().map(parse_authority).transpose()?;
    let limit = page_size(&state, query.limit)?;
    let after = query
        .cursor
        .as_deref()
        .map(decode_licence_cursor)
        .transpose()?;
    let status = query.status;
    let search_state = state.clone();
    blocking(move || {
        let store = search_state.store();
        let now = search_state.now();
        let source = match (&issuer, &region) {
            (Some(issuer), _) => Source::Issuer(issuer.clone()),
            (None, Some(region)) => Source::Region(region.clone()),
            (None, None) => Source::All,
        };
        let mut cursor = after.or_else(|| {
            // Licences of one type are contiguous in every index; start just before them.
            type_filter
                .as_ref()
                .map(|type_code| (type_code.clone(), LicenceNumber(String::new())))
        });
        let mut items = Vec::new();
        let mut budget = search_state.config().search_scan_max;
        let mut exhausted = false;
        while items.len() < limit && budget > 0 {
            let batch = budget.min(256);
            let licences: Vec<Licence> = match &source {
                Source::Issuer(issuer) => {
                    let keys = store.licences_of_issuer(issuer, cursor.as_ref(), batch)?;
                    load(store, &keys)?
                }
                Source::Region(region) => {
                    let keys = store.licences_in_region(region, cursor.as_ref(), batch)?;
                    load(store, &keys)?
                }
                Source::All => {
                    let after_key = cursor.as_ref().map(|(type_code, number)| {
                        RecordKey::Licence(type_code.clone(), number.clone())
                    });
                    store
                        .records_with_prefix(
                            &RecordKey::Licence(
                                TypeCode(String::new()),
                                LicenceNumber(String::new()),
                            ),
                            after_key.as_ref(),
                            batch,
                        )?
                        .into_iter()
                        .filter_map(|record| match record {
                            Record::Licence(licence) => Some(licence),
                            _ => None,
                        })
                        .collect()
                }
            };
            let fetched = licences.len();
            budget = budget.saturating_sub(fetched.max(1));
            let mut stopped_at_limit = false;
            for licence in licences {
                cursor = Some((licence.type_code.clone(), licence.number.clone()));
                if let Some(type_code) = &type_filter
                    && licence.type_code != *type_code
                {
                    // Past the type's contiguous run: nothing more can match.
                    if licence.type_code > *type_code || matches!(source, Source::All) {
                        exhausted = true;
                        break;
                    }
                    continue;
                }
                if region
                    .as_ref()
                    .is_some_and(|region| licence.region != *region)
                    || status.is_some_and(|status| licence.standing_at(now).status != status)
                {
                    continue;
                }
                items.push(LicenceSummary::of(&licence, now));
                if items.len() == limit {
                    stopped_at_limit = true;
                    break;
                }
            }
            if exhausted {
                break;
            }
            if fetched < batch {
                exhausted = !stopped_at_limit;
                break;
            }
        }
        let next_cursor = if exhausted {
            None
        } else {
            cursor.map(|(type_code, number)| encode_licence_cursor(&type_code, &number))
        };
        Ok(Json(LicencePage {
            items,
            next_cursor,
            state: state_view_of(store)?,
        }))
    })
    .await
}

fn load(store: &Store, keys: &[(TypeCode, LicenceNumber)]) -> Result<Vec<Licence>, ApiError> {
    let mut licences = Vec::with_capacity(keys.len());
    for (type_code, number) in keys {
        if let Some(licence) = store.licence(type_code, number)? {
            licences.push(licence);
        }
    }
    Ok(licences)
}

/// The QR payload of a licence: taken from its issuance transaction.
pub(crate) fn qr_payload(store: &Store, licence: &Licence) -> Result<QrPayload, ApiError> {
    let issuance = licence
        .events
        .iter()
        .find(|event| matches!(event.kind, LicenceEventKind::Issued))
        .ok_or_else(|| ApiError::internal("a licence has no issuance event"))?;
    let (transaction, location) = store.transaction(&issuance.tx)?.ok_or_else(|| {
        ApiError::internal(format!("issuance transaction {} is missing", issuance.tx))
    })?;
    QrPayload::from_issuance(&transaction, location.height).map_err(ApiError::internal)
}

/// Query of the QR route.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct QrQuery {
    /// `svg` (default), `png`, or `text` (the payload itself, `text/plain`).
    format: Option<String>,
}

/// The static QR code (企业码). Its payload is the issuance transaction's signed payload and the
/// issuer's signature (see docs/proofs.md): it never changes when the status changes.
#[utoipa::path(
    get,
    path = "/v1/licences/{type}/{number}/qr",
    tag = "verifiers",
    params(
        ("type" = String, Path, description = "Licence type code", example = "business-licence"),
        ("number" = String, Path, description = "Licence number", example = "91370200MA00000012"),
        QrQuery
    ),
    responses(
        (status = 200, description = "The QR code", content(
            (String = "image/svg+xml"),
            (Vec<u8> = "image/png"),
            (String = "text/plain")
        )),
        (status = 400, description = "Malformed path or unknown format", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such licence", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The issuance is too large for a QR code", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn qr(
    State(state): State<ApiState>,
    ApiPath((type_text, number_text)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<QrQuery>,
) -> Result<Response, ApiError> {
    let type_code = parse_type(&type_text)?;
    let number = parse_number(&number_text)?;
    let format = query.format.as_deref().unwrap_or("svg");
    if !matches!(format, "svg" | "png" | "text") {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("format is {format:?}; it is svg, png or text"),
        ));
    }
    let store = state.store();
    let licence = store
        .licence(&type_code, &number)?
        .ok_or_else(|| licence_not_found(&type_code, &number))?;
    let text = qr_payload(store, &licence)?.to_text();
    let too_large = |error: qr_image::QrRenderError| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "qr_payload_too_large",
            format!("{error}: the issuance payload is {} characters", text.len()),
        )
    };
    let (content_type, body) = match format {
        "png" => (
            "image/png",
            qr_image::png(&text, state.config().qr_png_module_pixels).map_err(too_large)?,
        ),
        // The payload itself, as a scanner reads it from the code.
        "text" => ("text/plain; charset=utf-8", text.clone().into_bytes()),
        _ => (
            "image/svg+xml",
            qr_image::svg(&text).map_err(too_large)?.into_bytes(),
        ),
    };
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The code never changes: caches may keep it.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400, immutable"),
    );
    Ok(response)
}

/// Checks a scanned QR payload: authenticity (the issuer's signature, checkable offline) and
/// the current verdict (online); optionally a private face field the holder presents, against
/// its commitment on the ledger.
#[utoipa::path(
    post,
    path = "/v1/presentations/verify",
    tag = "verifiers",
    request_body = PresentationRequest,
    responses(
        (status = 200, description = "The checks", body = PresentationView),
        (status = 400, description = "Unreadable payload, malformed salt, unknown fields", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn verify_presentation(
    State(state): State<ApiState>,
    body: axum::body::Body,
) -> Result<Json<PresentationView>, ApiError> {
    let body = super::read_body(&state, body).await?;
    let request: PresentationRequest = super::json_body(&body)?;
    let qr = QrPayload::from_text(&request.payload).map_err(|error| {
        ApiError::bad_request(
            "invalid_qr_payload",
            format!("{} ({})", error, error.code()),
        )
    })?;
    let salt = request
        .field
        .as_ref()
        .map(|field| {
            field
                .salt
                .parse::<Hash32>()
                .map(|salt| salt.0)
                .map_err(|error| ApiError::bad_request("invalid_salt", error.to_string()))
        })
        .transpose()?;
    let store = state.store();
    let signed = match authority(store, &qr.payload.signer)? {
        Some(issuer) => qr.verify_with_authority(store.suite(), store.chain_id(), &issuer),
        None => Err(hutong_verify::qr::QrError::UnknownIssuer(
            qr.payload.signer.clone(),
        )),
    };
    let (authentic, authenticity_error, signed) = match signed {
        Ok(signed) => (true, None, Some(signed)),
        Err(error) => (false, Some(format!("{}: {error}", error.code())), None),
    };
    let mut recorded_licence = None;
    if let (Some(signed), Some((type_code, number))) = (&signed, qr.licence())
        && let Some(licence) = store.licence(type_code, number)?
        && licence.issued_at == signed.issued_height
        && licence.events.iter().any(|event| {
            matches!(event.kind, LicenceEventKind::Issued) && event.tx == signed.transaction_id
        })
    {
        recorded_licence = Some(licence);
    }
    let verification = match &recorded_licence {
        Some(licence) => store
            .verdict(
                &licence.type_code,
                &licence.number,
                request.region.as_ref(),
                state.now(),
            )?
            .map(VerificationView::of),
        None => None,
    };
    let field = match (&request.field, salt) {
        (Some(field), Some(salt)) => {
            let face = match (&recorded_licence, &signed) {
                (Some(licence), _) => Some(&licence.face),
                (None, Some(signed)) => Some(&signed.face),
                (None, None) => None,
            };
            Some(check_field(
                store.suite(),
                face,
                &field.name,
                &field.value,
                &salt,
            ))
        }
        _ => None,
    };
    Ok(Json(PresentationView {
        authentic,
        authenticity_error,
        signed,
        recorded: recorded_licence.is_some(),
        verification,
        field,
        state: state_view_of(store)?,
    }))
}

fn check_field(
    suite: Suite,
    face: Option<&std::collections::BTreeMap<String, FaceValue>>,
    name: &str,
    value: &str,
    salt: &[u8; 32],
) -> FieldCheck {
    let (matches, detail) = match face.and_then(|face| face.get(name)) {
        Some(FaceValue::Committed(commitment)) => {
            if face_commitment(suite, salt, name, value) == *commitment {
                (
                    true,
                    "the value and salt match the commitment on the ledger".to_owned(),
                )
            } else {
                (
                    false,
                    "the value and salt do not match the commitment on the ledger".to_owned(),
                )
            }
        }
        Some(FaceValue::Clear(recorded)) => (
            recorded == value,
            "a public field: compared with the value in clear".to_owned(),
        ),
        None => (false, format!("the licence has no field {name:?}")),
    };
    FieldCheck {
        name: name.to_owned(),
        matches,
        detail,
    }
}
