//! The explorer: server-rendered HTML for a window clerk or a member of the public, in Chinese
//! and English, readable on a phone, with no JavaScript. Search a licence by type and number or
//! by a scanned QR payload, see its verdict with reasons, its history as a timeline and its QR
//! code; browse blocks and authorities.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hutong_core::calendar;
use hutong_core::records::{
    FaceValue, Holder, LicenceEventKind, Record, RecordKey, TimeMs, TypeCode,
};
use hutong_core::tx::TxBody;
use serde::Deserialize;
use utoipa::IntoParams;

use super::verifier::{licence_not_found, parse_region, qr_payload};
use super::{ApiPath, ApiQuery, parse_number, parse_type};
use crate::problem::ApiError;
use crate::qr_image;
use crate::state::ApiState;
use crate::views::VerificationView;
use hutong_verify::qr::QrPayload;

/// How many recent blocks the home page lists.
const HOME_BLOCKS: u64 = 10;

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Percent-encodes a path segment or query value.
fn url_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM` in China Standard Time (UTC+8), the time every department works in.
/// A time after the year 9999, which only a mistyped validity can give, shows as its
/// milliseconds ([`calendar::display_china`]).
pub fn format_time(ms: TimeMs) -> String {
    calendar::display_china(ms)
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font-family:system-ui,-apple-system,'PingFang SC','Noto Sans CJK SC','Microsoft YaHei',sans-serif;\
background:#f4f5f7;color:#1d232b;line-height:1.5;font-size:16px}\
header{background:#9b1b1e;color:#fff;padding:12px 16px}\
header a{color:#fff;text-decoration:none}\
header h1{margin:0;font-size:1.2rem}\
header p{margin:2px 0 0;font-size:.85rem;opacity:.9}\
nav{display:flex;gap:16px;padding:8px 16px;background:#fff;border-bottom:1px solid #dde1e6;font-size:.9rem}\
main{max-width:760px;margin:0 auto;padding:12px}\
section{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:12px 14px;margin:12px 0}\
h2{font-size:1.05rem;margin:0 0 8px}\
label{display:block;font-size:.85rem;color:#4a5563;margin-top:8px}\
input,select,textarea{width:100%;padding:10px;font-size:1rem;border:1px solid #b8c0ca;border-radius:6px}\
button{margin-top:10px;width:100%;padding:11px;font-size:1rem;background:#9b1b1e;color:#fff;border:0;border-radius:6px}\
.verdict{border-radius:8px;padding:14px;margin:12px 0;color:#fff}\
.verdict.valid{background:#1f7a3a}.verdict.invalid{background:#b3261e}\
.verdict strong{font-size:1.35rem;display:block}\
ul.reasons{list-style:none;padding:0;margin:0}\
ul.reasons li{padding:6px 0;border-bottom:1px solid #eef0f3;overflow-wrap:anywhere}\
.ok::before{content:'✔ ';color:#1f7a3a}.no::before{content:'✘ ';color:#b3261e}\
.en{color:#5b6573;font-size:.85rem;display:block}\
table{width:100%;border-collapse:collapse;font-size:.92rem}\
th,td{text-align:left;padding:6px 4px;border-bottom:1px solid #eef0f3;vertical-align:top;word-break:break-all}\
th{width:38%;color:#4a5563;font-weight:500}\
ol.timeline{list-style:none;padding:0 0 0 14px;margin:0;border-left:3px solid #c9ced6}\
ol.timeline li{position:relative;padding:0 0 12px 10px}\
ol.timeline li::before{content:'';position:absolute;left:-21px;top:6px;width:11px;height:11px;border-radius:50%;background:#9b1b1e}\
.muted{color:#5b6573;font-size:.85rem}\
.qr svg{width:220px;height:220px;display:block;margin:0 auto}\
.error{background:#fdecea;border-color:#f3b7b2}\
a{color:#0b5cad}\
code{font-size:.8rem;word-break:break-all}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · 互通 hutong</title><style>{STYLE}</style></head><body>\
<header><a href=\"/\"><h1>互通 · 电子证照核验</h1><p>hutong · Electronic licence verification</p></a></header>\
<nav><a href=\"/\">首页 Home</a><a href=\"/explorer/authorities\">发证机关 Authorities</a>\
<a href=\"/openapi.json\">API</a></nav><main>{body}</main></body></html>",
        title = escape(title)
    )
}

fn html(status: StatusCode, text: String) -> Response {
    let mut response = (status, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

fn error_page(error: &ApiError) -> Response {
    let body = format!(
        "<section class=\"error\"><h2>无法完成请求 · The request could not be completed</h2>\
<p>{}</p><p class=\"muted\">code: {}</p><p><a href=\"/\">返回首页 Back to the start page</a></p></section>",
        escape(&error.detail),
        escape(&error.code)
    );
    html(error.status, page("错误 Error", &body))
}

fn search_forms(state: &ApiState, selected_type: Option<&str>) -> Result<String, ApiError> {
    let types = state.store().records_with_prefix(
        &RecordKey::LicenceType(TypeCode(String::new())),
        None,
        crate::limits::CATALOGUE_ENTRIES_MAX,
    )?;
    let mut types: Vec<_> = types
        .into_iter()
        .filter_map(|record| match record {
            Record::LicenceType(licence_type) => Some(licence_type),
            _ => None,
        })
        .collect();
    types.sort_by(|first, second| first.code.cmp(&second.code));
    let mut options = String::new();
    for licence_type in types {
        let selected = if Some(licence_type.code.as_str()) == selected_type {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            options,
            "<option value=\"{code}\"{selected}>{zh} {en}</option>",
            code = escape(licence_type.code.as_str()),
            zh = escape(&licence_type.name_zh),
            en = escape(&licence_type.name_en),
        );
    }
    Ok(format!(
        "<section><h2>按证照编号查询 · Look up a licence</h2>\
<form method=\"get\" action=\"/explorer/search\">\
<label for=\"type\">证照类型 Licence type</label><select id=\"type\" name=\"type\">{options}</select>\
<label for=\"number\">证照编号 Licence number</label>\
<input id=\"number\" name=\"number\" autocomplete=\"off\" placeholder=\"91370200MA…\">\
<label for=\"region\">使用地区划代码（可选）Region of use (optional)</label>\
<input id=\"region\" name=\"region\" inputmode=\"numeric\" placeholder=\"650100\">\
<button type=\"submit\">核验 Verify</button></form></section>\
<section><h2>按二维码内容查询 · Look up a scanned QR code</h2>\
<form method=\"get\" action=\"/explorer/search\">\
<label for=\"payload\">扫码所得文本 Scanned text (HT1:…)</label>\
<textarea id=\"payload\" name=\"payload\" rows=\"3\"></textarea>\
<button type=\"submit\">核验 Verify</button></form></section>"
    ))
}

/// The start page: search forms and the latest blocks.
#[utoipa::path(
    get,
    path = "/",
    tag = "explorer",
    responses((status = 200, description = "The start page", body = String, content_type = "text/html"))
)]
pub(crate) async fn home(State(state): State<ApiState>) -> Response {
    match home_page(&state) {
        Ok(text) => html(StatusCode::OK, text),
        Err(error) => error_page(&error),
    }
}

fn home_page(state: &ApiState) -> Result<String, ApiError> {
    let store = state.store();
    let head = store.head()?.header;
    let mut body = search_forms(state, None)?;
    let mut rows = String::new();
    let first = head.height.saturating_sub(HOME_BLOCKS - 1);
    for height in (first..=head.height).rev() {
        if let Some(header) = store.header(height)? {
            let _ = write!(
                rows,
                "<tr><td><a href=\"/explorer/blocks/{height}\">#{height}</a></td><td>{}</td><td class=\"muted\">{}</td></tr>",
                format_time(header.time),
                header.log_size
            );
        }
    }
    let _ = write!(
        body,
        "<section><h2>最新区块 · Latest blocks</h2><p class=\"muted\">链 Chain {} · 高度 height {}</p>\
<table><tr><th>高度 Height</th><th>时间 Time (UTC+8)</th><th>交易总数 Log size</th></tr>{rows}</table></section>",
        escape(store.chain_id()),
        head.height
    );
    Ok(page("首页 Home", &body))
}

/// Query of the explorer search.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchPageQuery {
    #[serde(rename = "type")]
    #[param(rename = "type")]
    type_code: Option<String>,
    number: Option<String>,
    /// A scanned QR payload (`HT1:…`), instead of type and number.
    payload: Option<String>,
    region: Option<String>,
}

/// Resolves a search form to the licence page (303), or explains what is wrong.
#[utoipa::path(
    get,
    path = "/explorer/search",
    tag = "explorer",
    params(SearchPageQuery),
    responses(
        (status = 303, description = "To the licence page"),
        (status = 400, description = "The form is incomplete or the payload unreadable", body = String, content_type = "text/html")
    )
)]
pub(crate) async fn search_page(ApiQuery(query): ApiQuery<SearchPageQuery>) -> Response {
    match resolve_search(&query) {
        Ok(location) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
        Err(error) => error_page(&error),
    }
}

fn resolve_search(query: &SearchPageQuery) -> Result<String, ApiError> {
    let payload = query.payload.as_deref().map(str::trim).unwrap_or("");
    let (type_code, number) = if !payload.is_empty() {
        let qr = QrPayload::from_text(payload).map_err(|error| {
            ApiError::bad_request(
                "invalid_qr_payload",
                format!("二维码内容无法识别 The scanned text is not a hutong code: {error}"),
            )
        })?;
        let (type_code, number) = qr
            .licence()
            .ok_or_else(|| ApiError::bad_request("invalid_qr_payload", "no licence in the code"))?;
        (type_code.clone(), number.clone())
    } else {
        let type_text = query.type_code.as_deref().unwrap_or("").trim();
        let number_text = query.number.as_deref().unwrap_or("").trim();
        if number_text.is_empty() {
            return Err(ApiError::bad_request(
                "missing_number",
                "请输入证照编号 Enter a licence number",
            ));
        }
        (parse_type(type_text)?, parse_number(number_text)?)
    };
    let mut location = format!(
        "/explorer/licences/{}/{}",
        url_component(type_code.as_str()),
        url_component(number.as_str())
    );
    if let Some(region) = query
        .region
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        parse_region(region)?;
        let _ = write!(location, "?region={}", url_component(region));
    }
    Ok(location)
}

/// Query of the licence page.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct LicencePageQuery {
    /// Region of use for the verdict.
    region: Option<String>,
}

/// A licence: its verdict with reasons, its facts, its history as a timeline, its QR code.
#[utoipa::path(
    get,
    path = "/explorer/licences/{type}/{number}",
    tag = "explorer",
    params(
        ("type" = String, Path, description = "Licence type code"),
        ("number" = String, Path, description = "Licence number"),
        LicencePageQuery
    ),
    responses(
        (status = 200, description = "The licence page", body = String, content_type = "text/html"),
        (status = 404, description = "No such licence", body = String, content_type = "text/html")
    )
)]
pub(crate) async fn licence_page(
    State(state): State<ApiState>,
    ApiPath((type_text, number_text)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<LicencePageQuery>,
) -> Response {
    match render_licence(&state, &type_text, &number_text, query.region.as_deref()) {
        Ok(text) => html(StatusCode::OK, text),
        Err(error) => error_page(&error),
    }
}

fn event_label(kind: &LicenceEventKind) -> String {
    match kind {
        LicenceEventKind::Issued => "发证 Issued".into(),
        LicenceEventKind::Amended { .. } => "变更 Amended".into(),
        LicenceEventKind::Transferred { from, to } => {
            format!("颁发机构调整 Transferred from {from} to {to}")
        }
        LicenceEventKind::Status(action) => action.label(),
    }
}

fn render_licence(
    state: &ApiState,
    type_text: &str,
    number_text: &str,
    region_text: Option<&str>,
) -> Result<String, ApiError> {
    let type_code = parse_type(type_text)?;
    let number = parse_number(number_text)?;
    let region = region_text
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(parse_region)
        .transpose()?;
    let store = state.store();
    let now = state.now();
    let answer = store
        .verdict(&type_code, &number, region.as_ref(), now)?
        .ok_or_else(|| licence_not_found(&type_code, &number))?;
    let licence = answer.licence.clone();
    let view = VerificationView::of(answer);
    let mut body = String::new();

    let (class, headline) = match (view.valid, view.valid_in_region) {
        (true, None | Some(true)) => ("valid", "有效 · Valid"),
        (true, Some(false)) => ("invalid", "在该地区不可用 · Not usable in this region"),
        (false, _) => ("invalid", "无效 · Not valid"),
    };
    let _ = write!(
        body,
        "<div class=\"verdict {class}\" id=\"verdict\"><strong>{headline}</strong>\
{type_code} / {number}<br><span>核验时间 Checked at {} (UTC+8){}</span></div>",
        format_time(view.at),
        view.region
            .as_ref()
            .map(|region| format!(" · 使用地 region {region}"))
            .unwrap_or_default(),
        type_code = escape(type_code.as_str()),
        number = escape(number.as_str()),
    );

    let mut reasons = String::new();
    for reason in &view.reasons {
        let _ = write!(
            reasons,
            "<li class=\"{}\">{}<span class=\"en\">{}</span></li>",
            if reason.ok { "ok" } else { "no" },
            escape(&reason.detail_zh),
            escape(&reason.detail)
        );
    }
    let _ = write!(
        body,
        "<section><h2>核验理由 · Reasons</h2><ul class=\"reasons\">{reasons}</ul>\
<p class=\"muted\">依据区块高度 Computed on the state at height {} ({} UTC+8)</p></section>",
        view.state.height,
        format_time(view.state.time)
    );

    let holder = match &licence.holder {
        Holder::Enterprise(uscc) => format!(
            "{} <span class=\"muted\">统一社会信用代码 USCC {}</span>",
            escape(&licence.holder_name),
            escape(uscc.as_str())
        ),
        Holder::Person(_) => format!(
            "{} <span class=\"muted\">自然人 natural person</span>",
            escape(&licence.holder_name)
        ),
    };
    let mut facts = String::new();
    let _ = write!(
        facts,
        "<tr><th>持证主体 Holder</th><td>{holder}</td></tr>\
<tr><th>发证机关 Issuer</th><td>{} <span class=\"en\">{}</span></td></tr>\
<tr><th>状态 Status</th><td>{} {}</td></tr>\
<tr><th>有效期 Validity</th><td>{} — {}</td></tr>\
<tr><th>签发地 Issued in</th><td>{}</td></tr>",
        escape(&view.issuer.name_zh),
        escape(&view.issuer.name_en),
        view.status.name_zh(),
        view.status.name(),
        format_time(view.valid_from),
        view.valid_until
            .map_or("长期 long-term".into(), format_time),
        escape(licence.region.as_str()),
    );
    let schema = match store.record(&RecordKey::LicenceType(licence.type_code.clone()))? {
        Some(Record::LicenceType(licence_type)) => Some(licence_type),
        _ => None,
    };
    for (name, value) in &licence.face {
        let shown = match value {
            FaceValue::Clear(text) => escape(text),
            FaceValue::Committed(_) => "（不公开，仅存承诺值）private: commitment only".into(),
        };
        let label = schema
            .as_ref()
            .and_then(|licence_type| licence_type.field(name))
            .map_or(String::new(), |field| {
                format!("{} ", escape(&field.name_zh))
            });
        let _ = write!(
            facts,
            "<tr><th>{label}<span class=\"en\">{}</span></th><td>{shown}</td></tr>",
            escape(name)
        );
    }
    let _ = write!(
        body,
        "<section><h2>照面信息 · Licence details</h2><table>{facts}</table></section>"
    );

    let mut timeline = String::new();
    for event in &licence.events {
        let correction = event
            .correction
            .as_ref()
            .map_or(String::new(), |correction| {
                format!("<br><strong>{}</strong>", escape(&correction.label()))
            });
        let _ = write!(
            timeline,
            "<li><strong>{}</strong><br><span class=\"muted\">{} (UTC+8) · {} · 高度 height {}</span><br>{}{correction}</li>",
            escape(&event_label(&event.kind)),
            format_time(event.effective_at),
            escape(event.by.as_str()),
            event.height,
            escape(&event.reason)
        );
    }
    let _ = write!(
        body,
        "<section><h2>历史 · History</h2><ol class=\"timeline\">{timeline}</ol></section>"
    );

    let qr = qr_payload(store, &licence)
        .ok()
        .and_then(|payload| qr_image::svg(&payload.to_text()).ok())
        .map(|svg| {
            // The SVG document's XML declaration is not allowed inline in HTML.
            svg.find("<svg")
                .map_or(String::new(), |start| svg[start..].to_owned())
        })
        .unwrap_or_else(|| "<p class=\"muted\">二维码不可用 QR code unavailable</p>".into());
    let type_url = url_component(type_code.as_str());
    let number_url = url_component(number.as_str());
    let _ = write!(
        body,
        "<section class=\"qr\"><h2>企业码 · QR code</h2>{qr}\
<p class=\"muted\">此码终身不变；扫码核验真伪与当前状态。This code never changes; scan it to check authenticity and current status.</p>\
<p><a href=\"/v1/licences/{type_url}/{number_url}/proof\">离线证明 Offline proof (JSON)</a> · \
<a href=\"/v1/licences/{type_url}/{number_url}/verification\">核验结果 Verdict (JSON)</a></p></section>"
    );
    Ok(page(&format!("{} {}", type_code, number), &body))
}

/// A block: its header and what its transactions did.
#[utoipa::path(
    get,
    path = "/explorer/blocks/{height}",
    tag = "explorer",
    params(("height" = u64, Path, description = "Block height")),
    responses(
        (status = 200, description = "The block page", body = String, content_type = "text/html"),
        (status = 404, description = "No such block", body = String, content_type = "text/html")
    )
)]
pub(crate) async fn block_page(
    State(state): State<ApiState>,
    ApiPath(height_text): ApiPath<String>,
) -> Response {
    match render_block(&state, &height_text) {
        Ok(text) => html(StatusCode::OK, text),
        Err(error) => error_page(&error),
    }
}

fn render_block(state: &ApiState, height_text: &str) -> Result<String, ApiError> {
    let height: u64 = height_text.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_path_parameter",
            format!("{height_text:?} is not a height"),
        )
    })?;
    let block = state.store().block(height)?.ok_or_else(|| {
        ApiError::not_found("block_not_found", format!("no block at height {height}"))
    })?;
    let header = &block.header;
    let mut body = format!(
        "<section><h2>区块 #{height} · Block #{height}</h2><table>\
<tr><th>时间 Time (UTC+8)</th><td>{}</td></tr>\
<tr><th>区块哈希 Hash</th><td><code>{}</code></td></tr>\
<tr><th>状态根 State root</th><td><code>{}</code></td></tr>\
<tr><th>日志 Log</th><td>{} · <code>{}</code></td></tr>\
<tr><th>签名 Signatures</th><td>{}</td></tr></table>",
        format_time(header.time),
        block.hash(state.store().suite()),
        header.state_root,
        header.log_size,
        header.log_root,
        block.certificate.signatures.len()
    );
    if height > 1 {
        let _ = write!(
            body,
            "<p><a href=\"/explorer/blocks/{}\">← #{}</a></p>",
            height - 1,
            height - 1
        );
    }
    body.push_str("</section><section><h2>交易 · Transactions</h2><table>");
    for transaction in &block.transactions {
        let licence = match &transaction.payload.body {
            TxBody::IssueLicence {
                type_code, number, ..
            }
            | TxBody::ChangeStatus {
                type_code, number, ..
            }
            | TxBody::AmendLicence {
                type_code, number, ..
            }
            | TxBody::FileObjection {
                type_code, number, ..
            } => format!(
                "<a href=\"/explorer/licences/{}/{}\">{}/{}</a>",
                url_component(type_code.as_str()),
                url_component(number.as_str()),
                escape(type_code.as_str()),
                escape(number.as_str())
            ),
            _ => String::new(),
        };
        let _ = write!(
            body,
            "<tr><th>{}</th><td>{} {licence}</td></tr>",
            escape(transaction.payload.body.kind_name()),
            escape(transaction.payload.signer.as_str())
        );
    }
    body.push_str("</table></section>");
    Ok(page(&format!("区块 Block {height}"), &body))
}

/// Every department, with its roles and keys.
#[utoipa::path(
    get,
    path = "/explorer/authorities",
    tag = "explorer",
    responses((status = 200, description = "The authorities page", body = String, content_type = "text/html"))
)]
pub(crate) async fn authorities_page(State(state): State<ApiState>) -> Response {
    match render_authorities(&state) {
        Ok(text) => html(StatusCode::OK, text),
        Err(error) => error_page(&error),
    }
}

fn render_authorities(state: &ApiState) -> Result<String, ApiError> {
    let records = state.store().records_with_prefix(
        &RecordKey::Authority(hutong_core::records::AuthorityId(String::new())),
        None,
        state.config().page_size_max,
    )?;
    let mut body = String::from("<section><h2>发证机关与部门 · Authorities</h2><table>");
    for record in records {
        if let Record::Authority(authority) = record {
            let roles: Vec<String> = authority
                .roles
                .iter()
                .map(|role| format!("{role:?}").to_lowercase())
                .collect();
            let _ = write!(
                body,
                "<tr><th>{}<span class=\"en\">{}</span></th><td>{} · {}<br>\
<span class=\"muted\">{} · 密钥 keys: {}</span><br><a href=\"/v1/authorities/{}/actions\">签署记录 Actions (JSON)</a></td></tr>",
                escape(&authority.name_zh),
                escape(&authority.name_en),
                escape(authority.id.as_str()),
                escape(authority.region.as_str()),
                escape(&roles.join(", ")),
                authority.keys.len(),
                url_component(authority.id.as_str())
            );
        }
    }
    body.push_str("</table></section>");
    Ok(page("发证机关 Authorities", &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hutong_core::records::StatusAction;
    use proptest::prelude::*;

    /// The explorer's time as it was computed by hand before the calendar module (days to a
    /// civil date after H. Hinnant's `civil_from_days`): the calendar must print the same.
    fn hand_written_format_time(ms: TimeMs) -> String {
        let seconds = (ms / 1000) as i64 + 8 * 3600;
        let days = seconds.div_euclid(86_400);
        let of_day = seconds.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_index = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * month_index + 2) / 5 + 1;
        let month = if month_index < 10 {
            month_index + 3
        } else {
            month_index - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        format!(
            "{year:04}-{month:02}-{day:02} {:02}:{:02}",
            of_day / 3600,
            (of_day % 3600) / 60
        )
    }

    #[test]
    fn times_print_as_before_at_the_edges() {
        let edges = [
            0,
            999,
            59_999,
            60_000,
            // 1999-12-31T23:59:59.999Z, and the millisecond after.
            946_684_799_999,
            946_684_800_000,
            // 2000-02-29T00:00Z and 2024-02-29T15:59:59.999Z (the end of a leap day in
            // Beijing), then the next millisecond.
            951_782_400_000,
            1_709_222_399_999,
            1_709_222_400_000,
            // 2100-02-28T16:00Z: 2100 is no leap year, so Beijing goes on to 1 March.
            4_107_513_600_000,
            // The last minute of the year 9999 in Beijing.
            calendar::CHINA_TIME_MS_MAX - 59_999,
            calendar::CHINA_TIME_MS_MAX,
        ];
        for ms in edges {
            assert_eq!(format_time(ms), hand_written_format_time(ms), "{ms}");
        }
        assert_eq!(format_time(4_107_513_600_000), "2100-03-01 00:00");
        assert_eq!(format_time(calendar::CHINA_TIME_MS_MAX), "9999-12-31 23:59");
    }

    #[test]
    fn times_after_the_year_9999_show_their_milliseconds() {
        // Before the calendar module these printed a five-digit year.
        let first_beyond = calendar::CHINA_TIME_MS_MAX + 1;
        assert_eq!(hand_written_format_time(first_beyond), "10000-01-01 00:00");
        assert_eq!(
            format_time(first_beyond),
            "253402272000000 ms since the epoch"
        );
        assert_eq!(
            format_time(TimeMs::MAX),
            "18446744073709551615 ms since the epoch"
        );
    }

    #[test]
    fn every_day_to_2100_prints_as_before() {
        // One millisecond in each day from 1970 to 2100, at a different time of day each.
        let day_ms: TimeMs = 86_400_000;
        for day in 0..47_482u64 {
            let ms = day * day_ms + (day * 7_919_993) % day_ms;
            assert_eq!(format_time(ms), hand_written_format_time(ms), "{ms}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn times_print_as_before(ms in 0..=calendar::CHINA_TIME_MS_MAX) {
            prop_assert_eq!(format_time(ms), hand_written_format_time(ms));
        }
    }

    #[test]
    fn times_are_china_standard_time() {
        // 2026-01-01T00:00:00Z is 08:00 in Beijing.
        assert_eq!(format_time(1_767_225_600_000), "2026-01-01 08:00");
        assert_eq!(format_time(0), "1970-01-01 08:00");
        // 2024-02-29T15:59Z: a leap day, 23:59 in Beijing.
        assert_eq!(format_time(1_709_222_340_000), "2024-02-29 23:59");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(url_component("a/b (c)"), "a%2Fb%20%28c%29");
    }

    #[test]
    fn each_event_has_its_label_and_status_changes_show_the_actions_own() {
        assert_eq!(event_label(&LicenceEventKind::Issued), "发证 Issued");
        assert_eq!(
            event_label(&LicenceEventKind::Amended {
                previous: Default::default()
            }),
            "变更 Amended"
        );
        let pledge = StatusAction::PledgeRegistered {
            secured_party: "青岛银行".into(),
            reference: "DY-1".into(),
        };
        assert_eq!(
            event_label(&LicenceEventKind::Status(pledge)),
            "质押登记 Pledge registered (青岛银行)"
        );
    }
}
