//! Whether the node may answer a verifier: a node cut off from the chain gives no answer about
//! a licence (503 `stale`, ADR 0037). Used by the router's guard and by `/readyz`.

use axum::http::StatusCode;

use crate::limits::STALE_RETRY_AFTER_SECONDS;
use crate::problem::ApiError;
use crate::state::ApiState;

/// Routes whose answers say what a licence is now: a node that may be cut off from the chain
/// does not give them (503 `stale`, ADR 0037). Blocks, checkpoints and transaction proofs stay
/// served, since what they prove does not change with time.
pub(crate) fn states_a_licence_now(path: &str) -> bool {
    path == "/v1/licences"
        || path.starts_with("/v1/licences/")
        || path.starts_with("/v1/holders/")
        || path == "/v1/presentations/verify"
        || path == "/explorer/search"
        || path.starts_with("/explorer/licences/")
}

/// 503 `stale` when the node says its answers may be out of date, naming its height and the
/// network's height it last saw.
pub(crate) fn refuse_if_stale(state: &ApiState) -> Result<(), ApiError> {
    let Some(staleness) = state.node().staleness() else {
        return Ok(());
    };
    let info = state.node().node_info();
    let height = state.store().height()?;
    let heard = info.network_height.map_or_else(
        || "no height from a peer".to_owned(),
        |h| format!("{h} from its peers"),
    );
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "stale",
        format!("{staleness}; it holds height {height} and last heard {heard}: ask another node"),
    )
    .heights(height, info.network_height)
    .retry_after(STALE_RETRY_AFTER_SECONDS))
}
