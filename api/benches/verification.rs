//! The verification hot path through the router, and offline bundle verification.
//!
//! `cargo bench -p hutong-api --bench verification` (set `HUTONG_BENCH_LICENCES` for the chain
//! size, 20,000 by default). Prints the proof bundle's size once.

use std::hint::black_box;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use hutong_api::testkit::{StoreNode, demo_chain};
use hutong_api::{ApiConfig, ApiState, router};
use hutong_verify::{self, ProofBundle};
use tower::ServiceExt;

fn bench(c: &mut Criterion) {
    let licences: u64 = std::env::var("HUTONG_BENCH_LICENCES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(20_000);
    let chain = demo_chain(licences);
    let node = Arc::new(StoreNode::new(
        chain.store.clone(),
        chain.fixture.node_keys[0].public_key(),
        10,
    ));
    let config = ApiConfig {
        client_requests_per_second: u32::MAX / 4,
        client_burst: u32::MAX / 4,
        ..ApiConfig::default()
    };
    let state = ApiState::new(chain.store.clone(), node, config).expect("valid config");
    let app = router(state);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let numbers = chain.facts.qingdao_numbers.clone();
    let uris: Vec<String> = numbers
        .iter()
        .map(|number| format!("/v1/licences/business-licence/{number}/verification?region=650100"))
        .collect();

    let mut next = 0usize;
    c.bench_function(&format!("verification_request/{licences}_licences"), |b| {
        b.iter(|| {
            next = (next + 7919) % uris.len();
            let request = Request::get(&uris[next])
                .body(Body::empty())
                .expect("request");
            runtime.block_on(async {
                let response = app.clone().oneshot(request).await.expect("infallible");
                assert!(response.status().is_success());
                black_box(axum::body::to_bytes(response.into_body(), usize::MAX).await)
            })
        })
    });

    let bundle_uri = format!(
        "/v1/licences/business-licence/{}/proof?region=650100",
        numbers[numbers.len() / 2]
    );
    let bundle_bytes = runtime.block_on(async {
        let request = Request::get(&bundle_uri)
            .body(Body::empty())
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body")
    });
    let bundle: ProofBundle = serde_json::from_slice(&bundle_bytes).expect("bundle");
    let binary_bytes = hutong_core::codec::to_canonical(&bundle).len();
    println!(
        "proof bundle: {} bytes JSON, {binary_bytes} bytes canonical binary; {} record proofs, \
         {} validator change(s), licence proof {} siblings",
        bundle_bytes.len(),
        bundle.records.len(),
        bundle.checkpoint.validator_changes.len(),
        bundle.records[0].proof.siblings.len()
    );
    let genesis = chain.fixture.genesis.clone();
    hutong_verify::verify_bundle_with(
        &bundle,
        &genesis,
        &hutong_verify::VerifyOptions::historical(),
    )
    .expect("the bundle verifies");

    c.bench_function("verify_bundle/parsed", |b| {
        b.iter(|| {
            black_box(hutong_verify::verify_bundle_with(
                black_box(&bundle),
                &genesis,
                &hutong_verify::VerifyOptions::historical(),
            ))
        })
    });
    c.bench_function("verify_bundle/parse_json_only", |b| {
        b.iter(|| {
            black_box(serde_json::from_slice::<ProofBundle>(black_box(
                &bundle_bytes,
            )))
        })
    });
    c.bench_function("verify_bundle/from_json", |b| {
        b.iter(|| {
            black_box(hutong_verify::verify_json(
                black_box(&bundle_bytes),
                &genesis,
                &hutong_verify::VerifyOptions::historical(),
            ))
        })
    });
    c.bench_function("proof_bundle_request", |b| {
        b.iter(|| {
            let request = Request::get(&bundle_uri)
                .body(Body::empty())
                .expect("request");
            runtime.block_on(async {
                let response = app.clone().oneshot(request).await.expect("infallible");
                black_box(axum::body::to_bytes(response.into_body(), usize::MAX).await)
            })
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
