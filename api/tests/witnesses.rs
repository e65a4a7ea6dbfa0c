//! Witnesses' cosignatures at the API (ADR 0038): only accepted witnesses' cosignatures of the
//! node's own roots are kept, a stranger's junk changes nothing, checkpoints carry them, and
//! a bundle asked with `?witnesses=k` carries a witnessed log that verifies offline.

mod common;

use axum::http::{Method, StatusCode};
use common::{api_with, chain};
use hutong_api::ApiConfig;
use hutong_core::crypto::SecretKey;
use hutong_core::hash::Hash32;
use hutong_core::testkit::secret;
use hutong_verify::witness::{CheckpointNote, Cosignature, WitnessKey, WitnessPolicy, origin};
use hutong_verify::{ProofBundle, Verified, VerifyOptions};
use serde_json::json;

fn witness(name: &str) -> (WitnessKey, SecretKey) {
    let key = secret(name);
    (
        WitnessKey {
            name: name.into(),
            public_key: key.public_key(),
        },
        key,
    )
}

fn config() -> ApiConfig {
    ApiConfig {
        witnesses: vec![witness("w1.example").0, witness("w2.example").0],
        // The wait for witnesses is at most half of it.
        request_timeout_ms: 1_000,
        ..ApiConfig::default()
    }
}

/// The note of the demo chain's head log.
fn head_note() -> CheckpointNote {
    let header = chain().store.head().unwrap().header;
    CheckpointNote {
        origin: origin(chain().store.chain_id()),
        log_size: header.log_size,
        log_root: header.log_root,
    }
}

fn submission(name: &str, note: &CheckpointNote) -> serde_json::Value {
    let (_, key) = witness(name);
    let cosignature = Cosignature::sign(name, &key, 1_700_000_000, note).unwrap();
    json!({ "note": note, "cosignature": cosignature })
}

fn bundle_uri() -> String {
    format!(
        "/v1/licences/business-licence/{}/proof",
        chain().facts.qingdao_numbers[2]
    )
}

fn policy(required: usize) -> VerifyOptions {
    VerifyOptions {
        witnesses: Some(WitnessPolicy {
            required,
            keys: vec![witness("w1.example").0, witness("w2.example").0],
        }),
        ..VerifyOptions::historical()
    }
}

#[tokio::test]
async fn a_stranger_and_junk_are_refused_and_change_nothing() {
    let api = api_with(config(), 100);
    let note = head_note();
    let post = |body: serde_json::Value| {
        let api = &api;
        async move { api.post_json("/v1/log/cosignatures", &body).await }
    };
    post(submission("stranger.example", &note))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "unknown_witness");
    post(json!({ "note": note, "junk": 1 }))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_body");
    let oversize = api
        .request(
            Method::POST,
            "/v1/log/cosignatures",
            Some("application/json"),
            vec![b' '; 5 * 1024],
        )
        .await;
    oversize.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    let other_root = CheckpointNote {
        log_root: Hash32([7; 32]),
        ..note.clone()
    };
    post(submission("w1.example", &other_root))
        .await
        .assert_problem(StatusCode::CONFLICT, "root_mismatch");
    let other_chain = CheckpointNote {
        origin: origin("another-chain"),
        ..note.clone()
    };
    post(submission("w1.example", &other_chain))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "origin_mismatch");
    let beyond = CheckpointNote {
        log_size: note.log_size + 1,
        ..note.clone()
    };
    post(submission("w1.example", &beyond))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "size_beyond_log");
    // w1's name with w2's key.
    let mut forged = submission("w2.example", &note);
    forged["cosignature"]["witness"] = json!("w1.example");
    post(forged)
        .await
        .assert_problem(StatusCode::FORBIDDEN, "bad_cosignature");
    // None of that was kept.
    let checkpoint = api.get("/v1/log/checkpoint").await.json();
    assert_eq!(checkpoint["cosignatures"], json!([]), "{checkpoint}");
}

#[tokio::test]
async fn cosignatures_are_served_with_checkpoints_and_bundles() {
    let api = api_with(config(), 100);
    let note = head_note();
    // Before any witness cosigned: a bundle asked with witnesses waits, then 503.
    let early = api.get(&format!("{}?witnesses=1", bundle_uri())).await;
    early.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "not_witnessed");
    assert!(early.headers.contains_key("retry-after"));
    api.get(&format!("{}?witnesses=3", bundle_uri()))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "witnesses_out_of_range");

    for name in ["w1.example", "w2.example"] {
        let answer = api
            .post_json("/v1/log/cosignatures", &submission(name, &note))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    let checkpoint = api.get("/v1/log/checkpoint").await;
    let genesis = &chain().fixture.genesis;
    match hutong_verify::verify_json(&checkpoint.body, genesis, &policy(2)).unwrap() {
        Verified::WitnessedCheckpoint { witnessed, .. } => {
            assert_eq!(witnessed.witnesses, ["w1.example", "w2.example"]);
        }
        other => panic!("a witnessed checkpoint, got {other:?}"),
    }

    let answer = api.get(&format!("{}?witnesses=2", bundle_uri())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let bundle: ProofBundle = serde_json::from_slice(&answer.body).unwrap();
    let verified = hutong_verify::verify_bundle_with(&bundle, genesis, &policy(2)).unwrap();
    assert_eq!(verified.witnessed.unwrap().log_size, note.log_size);
    // Without a policy the bundle verifies as before; one cosignature removed, two are not met.
    hutong_verify::verify_bundle_with(&bundle, genesis, &VerifyOptions::historical()).unwrap();
    let mut fewer = bundle.clone();
    fewer.witnessed.as_mut().unwrap().cosignatures.pop();
    let error = hutong_verify::verify_bundle_with(&fewer, genesis, &policy(2)).unwrap_err();
    assert_eq!(error.code(), "too-few-cosignatures", "{error}");
    // A bundle without the section is refused under a policy.
    let plain: ProofBundle = serde_json::from_slice(&api.get(&bundle_uri()).await.body).unwrap();
    assert!(plain.witnessed.is_none());
    assert_eq!(
        hutong_verify::verify_bundle_with(&plain, genesis, &policy(1))
            .unwrap_err()
            .code(),
        "not-witnessed"
    );
}
