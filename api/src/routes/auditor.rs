//! Auditor routes: blocks, the transaction log (checkpoint, inclusion, consistency), the
//! export, authorities with their key history and actions, the catalogue and recognitions.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use hutong_core::log::LogHasher;
use hutong_core::records::{AuthorityId, Height, Record, RecordKey, TimeMs, TypeCode};
use hutong_ledger::audit::{self as ledger_audit, EventFilter, LicenceEventRow, ReportError};
use hutong_ledger::store::Store;
use serde::Deserialize;
use utoipa::IntoParams;

use super::verifier::{parse_region, state_view_of};
use super::{ApiPath, ApiQuery, blocking, page_size, parse_authority, parse_number, parse_type};
use crate::limits::{LICENCE_EVENTS_MAX, REPORT_EVENTS_MAX};
use crate::problem::{ApiError, Problem};
use crate::state::ApiState;
use crate::views::{
    ActionPage, ActionView, AuthorityPage, AuthorityView, BlockPage, BlockView, ConsistencyView,
    HeaderView, InclusionView, LicenceEventList, LicenceHistory, LicenceTypeList, RecognitionList,
};
use hutong_verify::{
    CHECKPOINT_FORMAT, CheckpointDocument, HISTORY_FORMAT, HistoryDocument, HistoryStep,
};

fn parse_height(text: &str) -> Result<Height, ApiError> {
    text.parse::<Height>().map_err(|_| {
        ApiError::bad_request(
            "invalid_path_parameter",
            format!(
                "a height is a decimal number from 0 to {}, got {text:?}",
                u64::MAX
            ),
        )
    })
}

/// A committed block: header, transactions, commit certificate.
#[utoipa::path(
    get,
    path = "/v1/blocks/{height}",
    tag = "auditors",
    params(("height" = u64, Path, description = "Block height (1 and above; height 0 is the genesis state)")),
    responses(
        (status = 200, description = "The block", body = BlockView),
        (status = 400, description = "Malformed height", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No block at that height", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn block(
    State(state): State<ApiState>,
    ApiPath(height_text): ApiPath<String>,
) -> Result<Json<BlockView>, ApiError> {
    let height = parse_height(&height_text)?;
    let block = state.store().block(height)?.ok_or_else(|| {
        ApiError::not_found(
            "block_not_found",
            format!(
                "no block at height {height} (the head is {}; height 0 is the genesis state, \
                 whose header /v1/blocks?from=0 lists)",
                state.store().height().unwrap_or(0)
            ),
        )
    })?;
    Ok(Json(BlockView {
        hash: block.hash(state.store().suite()),
        block,
    }))
}

/// Query of the block list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct BlocksQuery {
    /// First height (default 0).
    from: Option<Height>,
    limit: Option<usize>,
}

/// Block headers from a height on, oldest first.
#[utoipa::path(
    get,
    path = "/v1/blocks",
    tag = "auditors",
    params(BlocksQuery),
    responses(
        (status = 200, description = "A page of headers", body = BlockPage),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn blocks(
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<BlocksQuery>,
) -> Result<Json<BlockPage>, ApiError> {
    let limit = page_size(&state, query.limit)?;
    let store = state.store();
    let head = store.height()?;
    let from = query.from.unwrap_or(0);
    let mut items = Vec::with_capacity(limit);
    let mut height = from;
    while height <= head && items.len() < limit {
        if let Some(header) = store.header(height)? {
            items.push(HeaderView {
                hash: header.hash(store.suite()),
                header,
            });
        }
        height += 1;
    }
    Ok(Json(BlockPage {
        items,
        next_from: (height <= head).then_some(height),
        head,
    }))
}

/// Query of the checkpoint route.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct CheckpointQuery {
    /// Start from the verifier's trusted checkpoint at this height (at most the head's):
    /// only the validator-set hand-overs after it are carried (a light client's).
    trusted_height: Option<u64>,
}

/// The latest signed log head: the head block's header (a checkpoint of the log and the
/// state), its commit certificate, and the validator hand-overs since genesis, or since the
/// verifier's trusted checkpoint; with the accepted witnesses' cosignatures of its log size
/// (`cosignatures`, absent when none).
#[utoipa::path(
    get,
    path = "/v1/log/checkpoint",
    tag = "auditors",
    params(CheckpointQuery),
    responses(
        (status = 200, description = "The signed checkpoint, with the cosignatures of its log; in the binary form when `Accept` names application/vnd.hutong.proof", body = Object),
        (status = 400, description = "A trusted height above the head", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn checkpoint(
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<CheckpointQuery>,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    let work = state.clone();
    let document = blocking(move || {
        let header = work.store().head()?.header;
        if let Some(trusted) = query
            .trusted_height
            .filter(|trusted| *trusted > header.height)
        {
            return Err(ApiError::bad_request(
                "trusted_height_out_of_range",
                format!(
                    "trusted_height {trusted} is above the head, {}",
                    header.height
                ),
            ));
        }
        let cosignatures = crate::proofs::cosignatures_at(&work, header.log_size)?;
        Ok(CheckpointDocument {
            format: CHECKPOINT_FORMAT.into(),
            checkpoint: crate::proofs::checkpoint_from(&work, header, query.trusted_height)?,
            cosignatures,
        })
    })
    .await?;
    Ok(crate::binary::respond(
        &headers,
        hutong_verify::binary::Document::Checkpoint(document),
    ))
}

/// Query of the inclusion proof.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct InclusionQuery {
    /// Transaction id (64 hexadecimal characters).
    hash: String,
    /// Log size to prove against (default: the head's).
    size: Option<u64>,
}

/// Inclusion of a committed transaction in the log of a given size (RFC 9162 section 2.1.3).
#[utoipa::path(
    get,
    path = "/v1/log/inclusion",
    tag = "auditors",
    params(InclusionQuery),
    responses(
        (status = 200, description = "The proof", body = InclusionView),
        (status = 400, description = "Malformed id, a size the transaction is not in, or a size no block ends with", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such committed transaction", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn inclusion(
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<InclusionQuery>,
) -> Result<Json<InclusionView>, ApiError> {
    let id = super::operator::parse_hash(&query.hash)
        .map_err(|error| ApiError::bad_request("invalid_query", error.detail))?;
    let store = state.store();
    let head_size = store.head()?.header.log_size;
    let size = query.size.unwrap_or(head_size);
    if size > head_size {
        return Err(ApiError::bad_request(
            "size_beyond_log",
            format!("the log has {head_size} transactions; size {size} is beyond it"),
        ));
    }
    let Some((transaction, location)) = store.transaction(&id)? else {
        return Err(ApiError::not_found(
            "transaction_not_found",
            format!("transaction {id} is not committed"),
        ));
    };
    if location.log_index >= size {
        return Err(ApiError::bad_request(
            "transaction_after_size",
            format!(
                "transaction {id} is leaf {} of the log; a log of {size} does not hold it",
                location.log_index
            ),
        ));
    }
    let header = first_header_with_log_size(store, size)?;
    let proof = store.log_inclusion(location.log_index, size)?;
    let checkpoint = crate::proofs::checkpoint(&state, header)?;
    Ok(Json(InclusionView {
        format: LOG_INCLUSION_FORMAT.into(),
        transaction_id: id,
        leaf_hash: store.suite().leaf_hash(&transaction.to_bytes()),
        transaction,
        root: store.log_root(size)?,
        proof,
        checkpoint,
    }))
}

/// The `format` of `GET /v1/log/inclusion`'s answer.
pub(crate) const LOG_INCLUSION_FORMAT: &str = "hutong-log-inclusion/v1";

/// The header of the first block after which the log has `size` leaves (log sizes only grow,
/// so a binary search over the heights, at most 64 header reads); 400 `size_not_a_checkpoint`
/// when no block ends at that size, since only a block's header signs a log root.
pub(crate) fn first_header_with_log_size(
    store: &hutong_ledger::store::Store,
    size: u64,
) -> Result<hutong_core::block::BlockHeader, ApiError> {
    let header_at = |height: u64| {
        store.header(height)?.ok_or_else(|| {
            ApiError::internal(hutong_ledger::store::StoreError::Corrupt(format!(
                "header {height} is missing"
            )))
        })
    };
    let (mut low, mut high) = (0, store.head()?.header.height);
    while low < high {
        let middle = low + (high - low) / 2;
        if header_at(middle)?.log_size < size {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    let header = header_at(low)?;
    if header.log_size != size {
        return Err(ApiError::bad_request(
            "size_not_a_checkpoint",
            format!(
                "no block ends with a log of {size} transactions (block {} ends with {}); ask \
                 for the log size of a block's header",
                header.height, header.log_size
            ),
        ));
    }
    Ok(header)
}

/// Query of the consistency proof.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConsistencyQuery {
    /// The older log size.
    first: u64,
    /// The newer log size (default: the head's).
    second: Option<u64>,
}

/// That the log of `second` transactions extends the log of `first` (RFC 9162 section 2.1.4).
#[utoipa::path(
    get,
    path = "/v1/log/consistency",
    tag = "auditors",
    params(ConsistencyQuery),
    responses(
        (status = 200, description = "The proof", body = ConsistencyView),
        (status = 400, description = "Sizes out of order or beyond the log", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn consistency(
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyView>, ApiError> {
    let store = state.store();
    let head_size = store.head()?.header.log_size;
    let second = query.second.unwrap_or(head_size);
    if second > head_size {
        return Err(ApiError::bad_request(
            "size_beyond_log",
            format!("the log has {head_size} transactions; size {second} is beyond it"),
        ));
    }
    if query.first > second {
        return Err(ApiError::bad_request(
            "sizes_out_of_order",
            format!("first ({}) is greater than second ({second})", query.first),
        ));
    }
    Ok(Json(ConsistencyView {
        first_root: store.log_root(query.first)?,
        second_root: store.log_root(second)?,
        proof: store.log_consistency(query.first, second)?,
    }))
}

/// Query of the export.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportQuery {
    /// First height (default 1).
    from: Option<Height>,
    /// Last height (default: the head, or as many as one request may stream).
    to: Option<Height>,
}

/// The response header that says where to resume when an export was cut at its limit.
pub const EXPORT_NEXT_HEADER: &str = "hutong-export-next-from";

/// Blocks with their certificates as NDJSON (one block per line, as `/v1/blocks/{height}`
/// gives it), streamed. At most the configured number of blocks per request; when more remain,
/// the `Hutong-Export-Next-From` header says where to resume, and a client that lost the
/// connection resumes from the height after the last full line it received.
#[utoipa::path(
    get,
    path = "/v1/export",
    tag = "auditors",
    params(ExportQuery),
    responses(
        (status = 200, description = "NDJSON, one block per line", body = String, content_type = "application/x-ndjson"),
        (status = 400, description = "Malformed query, or to before from", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn export(
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let head = state.store().height()?;
    let from = query.from.unwrap_or(1).max(1);
    let requested_to = query.to.unwrap_or(head).min(head);
    if query.to.is_some_and(|to| to < from) {
        return Err(ApiError::bad_request(
            "range_out_of_order",
            format!("to ({requested_to}) is before from ({from})"),
        ));
    }
    let limit = state.config().export_blocks_max;
    let to = requested_to.min(from.saturating_add(limit - 1));
    let store = state.store().clone();
    let lines = futures_util::stream::unfold(from, move |height| {
        let store = store.clone();
        async move {
            if height > to {
                return None;
            }
            let line = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, std::io::Error> {
                let block = store
                    .block(height)
                    .map_err(std::io::Error::other)?
                    .ok_or_else(|| std::io::Error::other(format!("block {height} is missing")))?;
                let mut line = serde_json::to_vec(&BlockView {
                    hash: block.hash(store.suite()),
                    block,
                })
                .map_err(std::io::Error::other)?;
                line.push(b'\n');
                Ok(line)
            })
            .await
            .map_err(std::io::Error::other)
            .and_then(|result| result);
            Some((line, height + 1))
        }
    });
    let mut response = Body::from_stream(lines).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    if to < requested_to
        && let Ok(value) = HeaderValue::from_str(&(to + 1).to_string())
    {
        response.headers_mut().insert(EXPORT_NEXT_HEADER, value);
    }
    Ok(response)
}

/// Query of the authority list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuthoritiesQuery {
    limit: Option<usize>,
    /// `next_cursor` of the previous page (an authority id).
    cursor: Option<String>,
}

/// Every department with its roles and the history of its keys.
#[utoipa::path(
    get,
    path = "/v1/authorities",
    tag = "auditors",
    params(AuthoritiesQuery),
    responses(
        (status = 200, description = "A page of authorities", body = AuthorityPage),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn authorities(
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<AuthoritiesQuery>,
) -> Result<Json<AuthorityPage>, ApiError> {
    let limit = page_size(&state, query.limit)?;
    let after = query
        .cursor
        .as_deref()
        .map(|cursor| {
            parse_authority(cursor)
                .map_err(|error| ApiError::bad_request("invalid_cursor", error.detail))
        })
        .transpose()?
        .map(RecordKey::Authority);
    let records = state.store().records_with_prefix(
        &RecordKey::Authority(AuthorityId(String::new())),
        after.as_ref(),
        limit,
    )?;
    let full = records.len() == limit;
    let items: Vec<AuthorityView> = records
        .into_iter()
        .filter_map(|record| match record {
            Record::Authority(authority) => Some(AuthorityView::from(authority)),
            _ => None,
        })
        .collect();
    let next_cursor = full
        .then(|| items.last().map(|last| last.id.to_string()))
        .flatten();
    Ok(Json(AuthorityPage { items, next_cursor }))
}

/// Query of an authority's actions.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ActionsQuery {
    limit: Option<usize>,
    /// `next_cursor` of the previous page (`height-index`).
    cursor: Option<String>,
    /// Only actions in blocks whose time is at or after this (ms since the epoch).
    from: Option<TimeMs>,
    /// Only actions in blocks whose time is before this (ms since the epoch).
    to: Option<TimeMs>,
}

/// The first height from which block times are at or after `time` (one past the head when
/// none is): block times increase with height, so a binary search over headers finds it.
fn first_height_at(store: &Store, time: TimeMs) -> Result<Height, ApiError> {
    let (mut low, mut high) = (0, store.height()? + 1);
    while low < high {
        let middle = low + (high - low) / 2;
        let header_time = store
            .header(middle)?
            .map(|header| header.time)
            .ok_or_else(|| ApiError::internal(format!("header {middle} is missing")))?;
        if header_time < time {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    Ok(low)
}

fn parse_action_cursor(text: &str) -> Result<(Height, u32), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_cursor",
            format!("an action cursor is HEIGHT-INDEX, got {text:?}"),
        )
    };
    let (height, index) = text.split_once('-').ok_or_else(bad)?;
    Ok((
        height.parse().map_err(|_| bad())?,
        index.parse().map_err(|_| bad())?,
    ))
}

/// Everything one department signed (submitted or endorsed), oldest first.
#[utoipa::path(
    get,
    path = "/v1/authorities/{id}/actions",
    tag = "auditors",
    params(("id" = String, Path, description = "Authority id", example = "qd-approval"), ActionsQuery),
    responses(
        (status = 200, description = "A page of actions", body = ActionPage),
        (status = 400, description = "Malformed id or query", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such authority", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn authority_actions(
    State(state): State<ApiState>,
    ApiPath(id_text): ApiPath<String>,
    ApiQuery(query): ApiQuery<ActionsQuery>,
) -> Result<Json<ActionPage>, ApiError> {
    let id = parse_authority(&id_text)?;
    let limit = page_size(&state, query.limit)?;
    let cursor = query
        .cursor
        .as_deref()
        .map(parse_action_cursor)
        .transpose()?;
    if let (Some(from), Some(to)) = (query.from, query.to)
        && to < from
    {
        return Err(ApiError::bad_request(
            "range_out_of_order",
            format!("to ({to}) is before from ({from})"),
        ));
    }
    let work = state.clone();
    blocking(move || {
        let store = work.store();
        if super::verifier::authority(store, &id)?.is_none() {
            return Err(ApiError::not_found(
                "authority_not_found",
                format!("no authority {id}"),
            ));
        }
        // Heights [start, end) hold the blocks of the time range.
        let start = match query.from {
            Some(from) => first_height_at(store, from)?,
            None => 0,
        };
        let end = match query.to {
            Some(to) => first_height_at(store, to)?,
            None => Height::MAX,
        };
        let after = match cursor {
            Some(cursor) if cursor.0 >= start => Some(cursor),
            _ if start > 0 => Some((start - 1, u32::MAX)),
            _ => cursor,
        };
        let mut actions = store.actions_of(&id, after, limit)?;
        let complete = actions.len() < limit;
        let before_end = actions.len();
        actions.retain(|(height, _, _)| *height < end);
        let reached_end = actions.len() < before_end;
        let mut items = Vec::with_capacity(actions.len());
        for (height, index, transaction_id) in &actions {
            let (kind, licence, submitted) = match store.transaction(transaction_id)? {
                Some((transaction, _)) => (
                    transaction.payload.body.kind_name().to_owned(),
                    transaction
                        .payload
                        .body
                        .licence()
                        .map(|(type_code, number)| format!("{type_code}/{number}")),
                    transaction.payload.signer == id,
                ),
                None => (String::new(), None, false),
            };
            let time = store.header(*height)?.map(|header| header.time);
            items.push(ActionView {
                height: *height,
                index: *index,
                time,
                transaction_id: *transaction_id,
                kind,
                licence,
                submitted,
            });
        }
        let next_cursor = (!complete && !reached_end)
            .then(|| {
                actions
                    .last()
                    .map(|(height, index, _)| format!("{height}-{index}"))
            })
            .flatten();
        Ok(Json(ActionPage {
            authority: id,
            items,
            next_cursor,
        }))
    })
    .await
}

/// The catalogue of licence types (电子证照目录) with their face-field schemas.
#[utoipa::path(
    get,
    path = "/v1/licence-types",
    tag = "auditors",
    responses((status = 200, description = "The catalogue", body = LicenceTypeList))
)]
pub(crate) async fn licence_types(
    State(state): State<ApiState>,
) -> Result<Json<LicenceTypeList>, ApiError> {
    let records = state.store().records_with_prefix(
        &RecordKey::LicenceType(TypeCode(String::new())),
        None,
        crate::limits::CATALOGUE_ENTRIES_MAX,
    )?;
    Ok(Json(LicenceTypeList {
        items: records
            .into_iter()
            .filter_map(|record| match record {
                Record::LicenceType(licence_type) => Some(licence_type),
                _ => None,
            })
            .collect(),
    }))
}

/// Query of the recognition list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct RecognitionsQuery {
    /// Only attestations whose recognising region covers this region.
    region: Option<String>,
    /// Only attestations in force at this time (ms since the epoch): begun, not ended, not
    /// withdrawn.
    at: Option<TimeMs>,
}

/// Mutual-recognition attestations (跨地区互通互认), including withdrawn ones unless `at` asks
/// for those in force at a time.
#[utoipa::path(
    get,
    path = "/v1/recognitions",
    tag = "auditors",
    params(RecognitionsQuery),
    responses(
        (status = 200, description = "The attestations", body = RecognitionList),
        (status = 400, description = "Malformed region", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn recognitions(
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<RecognitionsQuery>,
) -> Result<Json<RecognitionList>, ApiError> {
    let region = query.region.as_deref().map(parse_region).transpose()?;
    let store = state.store();
    let items = store
        .recognitions()?
        .into_iter()
        .filter(|recognition| {
            region
                .as_ref()
                .is_none_or(|region| recognition.recognizing_region.covers(region))
                && query.at.is_none_or(|at| recognition.in_force_at(at))
        })
        .collect();
    Ok(Json(RecognitionList {
        items,
        state: state_view_of(store)?,
    }))
}

/// Query of the licence events and the CSV report.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct LicenceEventsQuery {
    /// Events effective at or after this time (ms since the epoch; default 0).
    from: Option<TimeMs>,
    /// Events effective before this time (ms since the epoch; default: no end).
    to: Option<TimeMs>,
    /// Only licences of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    type_code: Option<String>,
    /// Only licences issued in regions this region covers.
    region: Option<String>,
}

impl LicenceEventsQuery {
    fn filter(&self) -> Result<EventFilter, ApiError> {
        let from = self.from.unwrap_or(0);
        let to = self.to.unwrap_or(TimeMs::MAX);
        if to < from {
            return Err(ApiError::bad_request(
                "range_out_of_order",
                format!("to ({to}) is before from ({from})"),
            ));
        }
        Ok(EventFilter {
            from,
            to,
            type_code: self.type_code.as_deref().map(parse_type).transpose()?,
            region: self.region.as_deref().map(parse_region).transpose()?,
        })
    }
}

fn report_error(error: ReportError) -> ApiError {
    match error {
        ReportError::TooManyEvents { .. } => {
            ApiError::bad_request("too_many_events", error.to_string())
        }
        ReportError::Store(error) => error.into(),
        ReportError::MissingTransaction(_) => ApiError::internal(error),
    }
}

/// Reads the events and the header they were read at, consistently: retried when a block
/// was committed in between.
fn events_at_head(
    store: &Store,
    filter: &EventFilter,
    limit: usize,
) -> Result<(Vec<LicenceEventRow>, hutong_core::block::BlockHeader), ApiError> {
    for _ in 0..4 {
        let before = store.head()?.header;
        let rows = ledger_audit::licence_events(store, filter, limit).map_err(report_error)?;
        let after = store.head()?.header;
        if before == after {
            return Ok((rows, after));
        }
    }
    Err(ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "blocks kept arriving while the events were read; retry",
    ))
}

/// Every licence of a type in a region issued, changed or revoked in a time range: each event
/// with the transaction that recorded it and its leaf index in the log of the signed
/// checkpoint returned with it (`/v1/log/inclusion` proves each one).
#[utoipa::path(
    get,
    path = "/v1/licence-events",
    tag = "auditors",
    params(LicenceEventsQuery),
    responses(
        (status = 200, description = "The events, oldest first, and the checkpoint", body = LicenceEventList),
        (status = 400, description = "Malformed query, or more than 10,000 events (`too_many_events`)", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn licence_events(
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<LicenceEventsQuery>,
) -> Result<Json<LicenceEventList>, ApiError> {
    let filter = query.filter()?;
    let work = state.clone();
    blocking(move || {
        let (items, header) = events_at_head(work.store(), &filter, LICENCE_EVENTS_MAX)?;
        Ok(Json(LicenceEventList {
            items,
            checkpoint: crate::proofs::checkpoint(&work, header)?,
        }))
    })
    .await
}

/// The CSV report of licence events in a time range (columns in Chinese and English, UTF-8
/// with a byte-order mark), ending with the checkpoint it was read at; the same as
/// `hutong audit --report-csv` writes from a verified chain.
#[utoipa::path(
    get,
    path = "/v1/reports/licence-events.csv",
    tag = "auditors",
    params(LicenceEventsQuery),
    responses(
        (status = 200, description = "The report", content_type = "text/csv"),
        (status = 400, description = "Malformed query, or more than 100,000 events (`too_many_events`)", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn licence_events_report(
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<LicenceEventsQuery>,
) -> Result<Response, ApiError> {
    let filter = query.filter()?;
    let work = state.clone();
    let csv = blocking(move || {
        let (rows, header) = events_at_head(work.store(), &filter, REPORT_EVENTS_MAX)?;
        Ok(ledger_audit::licence_events_csv(
            &rows,
            &filter,
            &ledger_audit::Checkpoint::of(work.store().suite(), &header),
        ))
    })
    .await?;
    let mut response = Body::from(csv).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"licence-events.csv\""),
    );
    Ok(response)
}

/// The full history of one licence (`hutong-history/v1`), each step with the transaction that
/// recorded it and its inclusion proof in the log of the signed checkpoint returned with it,
/// and the licence record with its sparse-Merkle proof against that checkpoint's state root.
/// `hutong_verify::verify_history` checks it, labels included (docs/proofs.md section 8).
#[utoipa::path(
    get,
    path = "/v1/licences/{type}/{number}/history",
    tag = "auditors",
    params(
        ("type" = String, Path, description = "Licence type code", example = "business-licence"),
        ("number" = String, Path, description = "Licence number", example = "91370200MA00000012")
    ),
    responses(
        (status = 200, description = "The history with its proofs (`hutong-history/v1`)", body = LicenceHistory),
        (status = 400, description = "Malformed path", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such licence", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn licence_history(
    State(state): State<ApiState>,
    ApiPath((type_text, number_text)): ApiPath<(String, String)>,
) -> Result<Json<HistoryDocument>, ApiError> {
    let type_code = parse_type(&type_text)?;
    let number = parse_number(&number_text)?;
    let work = state.clone();
    blocking(move || {
        let store = work.store();
        let key = RecordKey::Licence(type_code.clone(), number.clone());
        let proof = store.prove(&key)?;
        let Some(Record::Licence(licence)) = &proof.record else {
            return Err(ApiError::not_found(
                "licence_not_found",
                format!("no licence {type_code}/{number}"),
            ));
        };
        let size = proof.header.log_size;
        let suite = store.suite();
        let mut steps = Vec::with_capacity(licence.events.len());
        for event in &licence.events {
            let (transaction, location) = store.transaction(&event.tx)?.ok_or_else(|| {
                ApiError::internal(format!(
                    "transaction {} of the history is missing",
                    event.tx
                ))
            })?;
            let inclusion = store.log_inclusion(location.log_index, size)?;
            steps.push(HistoryStep::of(suite, event, transaction, inclusion));
        }
        Ok(Json(HistoryDocument {
            format: HISTORY_FORMAT.to_owned(),
            licence: licence.clone(),
            steps,
            state_proof: proof.proof.clone(),
            checkpoint: crate::proofs::checkpoint(&work, proof.header.clone())?,
        }))
    })
    .await
}
