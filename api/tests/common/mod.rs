//! Shared set-up of the API tests: one demo chain for all of them, a router per test.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use hutong_api::testkit::{DemoChain, StoreNode, demo_chain};
use hutong_api::{ApiConfig, ApiState, router};
use hutong_core::records::TimeMs;
use hutong_core::testkit::{DAY_MS, GENESIS_TIME};
use tower::ServiceExt;

/// Licences issued in Qingdao on the shared chain.
pub const QINGDAO_LICENCES: u64 = 300;
/// The time every test runs at: ten days after genesis.
pub const NOW: TimeMs = GENESIS_TIME + 10 * DAY_MS;

pub fn chain() -> &'static DemoChain {
    static CHAIN: OnceLock<DemoChain> = OnceLock::new();
    CHAIN.get_or_init(|| demo_chain(QINGDAO_LICENCES))
}

pub struct Api {
    pub router: Router,
    pub node: Arc<StoreNode>,
}

pub fn api_with(config: ApiConfig, mempool_capacity: usize) -> Api {
    let chain = chain();
    let node = Arc::new(StoreNode::new(
        chain.store.clone(),
        chain.fixture.node_keys[0].public_key(),
        mempool_capacity,
    ));
    let state = ApiState::with_clock(chain.store.clone(), node.clone(), config, Arc::new(|| NOW))
        .expect("valid config");
    Api {
        router: router(state),
        node,
    }
}

pub fn api() -> Api {
    api_with(ApiConfig::default(), 1000)
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts a problem document with `status` and `code`.
    #[track_caller]
    pub fn assert_problem(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.content_type(), "application/problem+json");
        let problem = self.json();
        assert_eq!(problem["code"], code, "{problem}");
        assert_eq!(problem["status"], status.as_u16());
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|detail| !detail.is_empty())
        );
    }
}

impl Api {
    pub async fn request(
        &self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let headers: Vec<(&str, &str)> = content_type
            .map(|content_type| ("content-type", content_type))
            .into_iter()
            .collect();
        let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
        self.request_from(peer, method, uri, &headers, body).await
    }

    /// A GET from the peer address `peer` with the headers `headers`.
    pub async fn get_from(&self, peer: SocketAddr, uri: &str, headers: &[(&str, &str)]) -> Answer {
        self.request_from(peer, Method::GET, uri, headers, Vec::new())
            .await
    }

    async fn request_from(
        &self,
        peer: SocketAddr,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Answer {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(Body::from(body)).expect("request");
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Answer {
        self.request(Method::GET, uri, None, Vec::new()).await
    }

    pub async fn post_json(&self, uri: &str, body: &serde_json::Value) -> Answer {
        self.request(
            Method::POST,
            uri,
            Some("application/json"),
            serde_json::to_vec(body).expect("json"),
        )
        .await
    }
}

/// One request to a router over `chain` whose clock reads the time of its head block, so
/// that what it serves is fresh by its own clock: the status, the content type and the body.
pub async fn get_at_head(
    chain: &DemoChain,
    uri: &str,
    accept: Option<&str>,
) -> (StatusCode, String, Vec<u8>) {
    let node = Arc::new(StoreNode::new(
        chain.store.clone(),
        chain.fixture.node_keys[0].public_key(),
        10,
    ));
    let now = chain.store.head().unwrap().header.time;
    let state = ApiState::with_clock(
        chain.store.clone(),
        node,
        ApiConfig::default(),
        Arc::new(move || now),
    )
    .unwrap();
    let mut request = Request::get(uri);
    if let Some(accept) = accept {
        request = request.header(axum::http::header::ACCEPT, accept);
    }
    let response = router(state)
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, content_type, body)
}
