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
use hutong_verify::binary::Document;
use hutong_verify::{self, ProofBundle};
use tower::ServiceExt;

/// Prints how a bundle's binary bytes divide between its checkpoint, its records and their
/// proofs, for docs/performance.md.
fn print_breakdown(bundle: &ProofBundle) {
    let size = |value: &dyn erased::Encode| value.encoded_len();
    let checkpoint = &bundle.checkpoint;
    println!(
        "  checkpoint {} bytes (header {}, certificate {}, validators {}, hand-overs {})",
        size(checkpoint),
        size(&checkpoint.header),
        size(&checkpoint.certificate),
        size(&checkpoint.validators),
        size(&checkpoint.validator_changes),
    );
    for proved in &bundle.records {
        println!(
            "  {}: {} bytes",
            hutong_verify::describe_key(&proved.key()),
            size(proved),
        );
    }
    println!(
        "  state multiproof {} bytes ({} siblings, {} path ends)",
        size(&bundle.state_proof),
        bundle.state_proof.siblings.len(),
        bundle.state_proof.ends.len(),
    );
}

/// How many records of the directory kinds the store holds.
fn directory_records(store: &hutong_ledger::store::Store) -> usize {
    use hutong_core::hash::Hash32;
    use hutong_core::records::RecordKey;
    let region = hutong_core::ident::RegionCode::parse("000000").expect("region");
    let kinds = [
        RecordKey::Authority("".into()),
        RecordKey::LicenceType("".into()),
        RecordKey::LicenceTypeVersion("".into(), 0),
        RecordKey::Grant("".into(), "".into(), region.clone()),
        RecordKey::Recognition(Hash32::ZERO),
        RecordKey::RecognitionSet(region, "".into()),
        RecordKey::Nodes,
        RecordKey::Governors,
    ];
    kinds
        .iter()
        .map(|kind| {
            assert!(kind.in_directory());
            store
                .records_with_prefix(kind, None, usize::MAX)
                .expect("records")
                .len()
        })
        .sum()
}

mod erased {
    /// The canonical size of a value, behind a trait object so one closure measures any type.
    pub trait Encode {
        fn encoded_len(&self) -> usize;
    }
    impl<T: serde::Serialize> Encode for T {
        fn encoded_len(&self) -> usize {
            hutong_core::codec::to_canonical(self).len()
        }
    }
}

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
    let fetch = |uri: &str, accept: &str| {
        let request = Request::get(uri)
            .header("accept", accept)
            .body(Body::empty())
            .expect("request");
        runtime.block_on(async {
            let response = app.clone().oneshot(request).await.expect("infallible");
            axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body")
        })
    };
    let bundle_bytes = fetch(&bundle_uri, "application/json");
    let bundle: ProofBundle = serde_json::from_slice(&bundle_bytes).expect("bundle");
    let binary_bytes = Document::Bundle(bundle.clone()).to_binary().len();
    println!(
        "proof bundle: {} bytes JSON, {binary_bytes} bytes canonical binary; {} record proofs, \
         {} validator change(s), {} siblings in the state multiproof",
        bundle_bytes.len(),
        bundle.records.len(),
        bundle.checkpoint.validator_changes.len(),
        bundle.state_proof.siblings.len()
    );
    let genesis = chain.fixture.genesis.clone();
    hutong_verify::verify_bundle_with(
        &bundle,
        &genesis,
        &hutong_verify::VerifyOptions::historical(),
    )
    .expect("the bundle verifies");

    // A light client's bundle: from a checkpoint it trusts at the head, so with no hand-over;
    // in the binary form (ADR 0040). The target is at most 4 KB and 1 ms to verify.
    let head = chain.store.head().expect("head").header.height;
    let light_uri = format!("{bundle_uri}&trusted_height={head}");
    let light_binary = fetch(&light_uri, hutong_verify::binary::BINARY_MEDIA_TYPE);
    let Ok(Document::Bundle(light)) = Document::from_binary(&light_binary) else {
        panic!("the light bundle is a binary bundle");
    };
    let trusted = hutong_verify::TrustedCheckpoint::verified(&bundle.checkpoint, &genesis, None)
        .expect("the full bundle's checkpoint verifies");
    println!(
        "light bundle (trusted at height {head}, no hand-over): {} bytes binary, {} record proofs",
        light_binary.len(),
        light.records.len()
    );
    print_breakdown(&light);
    println!(
        "  the directory (the left half of the state tree, ADR 0042) holds {} records",
        directory_records(&chain.store)
    );
    // The same without a region (a clerk of the licence's own province asks no recognition).
    let plain_uri = format!(
        "/v1/licences/business-licence/{}/proof?trusted_height={head}",
        numbers[numbers.len() / 2]
    );
    let plain_binary = fetch(&plain_uri, hutong_verify::binary::BINARY_MEDIA_TYPE);
    let plain_json = fetch(&plain_uri, "application/json");
    println!(
        "light bundle without a region (no hand-over): {} bytes binary, {} bytes JSON",
        plain_binary.len(),
        plain_json.len()
    );
    let light_options = hutong_verify::VerifyOptions {
        historical: true,
        trusted: Some(trusted),
        ..hutong_verify::VerifyOptions::default()
    };
    hutong_verify::binary::verify_document(&light_binary, &genesis, &light_options)
        .expect("the light bundle verifies");
    c.bench_function("verify_bundle/from_binary_no_hand_over", |b| {
        b.iter(|| {
            black_box(hutong_verify::binary::verify_document(
                black_box(&light_binary),
                &genesis,
                &light_options,
            ))
        })
    });

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
