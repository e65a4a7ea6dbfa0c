//! # hutong-api
//!
//! The HTTP API of a hutong node (axum): verifier, operator and auditor routes, answers that a
//! verifier checks offline, static QR codes, an OpenAPI 3.1 document generated from the
//! handlers, and a server-rendered explorer page.
//!
//! The node builds the router from a store and its own [`NodeControl`], and serves it:
//!
//! ```no_run
//! # async fn serve(store: std::sync::Arc<hutong_ledger::store::Store>, node: std::sync::Arc<dyn hutong_api::NodeControl>) -> std::io::Result<()> {
//! use hutong_api::{ApiConfig, ApiState};
//!
//! let state = ApiState::new(store, node, ApiConfig::default()).expect("valid limits");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! // The connection cap and deadlines of `ApiConfig` apply (see `server`).
//! hutong_api::serve(listener, state, std::future::pending()).await
//! # }
//! ```
//!
//! What a verifier runs offline lives in the `hutong-verify` crate, which needs no web stack;
//! the API builds the documents it checks.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod binary;
pub mod config;
mod cosignatures;
pub mod limits;
pub mod node;
pub mod problem;
mod proofs;
pub mod qr_image;
mod routes;
pub mod server;
mod state;
pub mod testkit;
pub mod views;

pub use config::{ApiConfig, ConfigError};
pub use node::{NodeControl, NodeInfo, NodeRole, PendingStatus, Staleness, SubmitError};
pub use problem::{ApiError, PROBLEM_CONTENT_TYPE, Problem};
pub use routes::explorer::format_time;
pub use routes::router::{openapi, router};
pub use server::serve;
pub use state::{ApiState, Clock};
