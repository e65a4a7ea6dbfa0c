//! `hutong verify` on real proof documents: the API's recorded vectors (a bundle, tampered
//! bundles, QR payloads) and checkpoints with a consistency proof taken from a demo chain.
//! Each case runs the binary and checks its exit code and what it says.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use hutong_api::testkit::{StoreNode, demo_chain};
use hutong_api::{ApiConfig, ApiState, router};
use hutong_core::crypto::PublicKey;
use hutong_core::testkit::business_licence_body;
use hutong_ledger::store::Store;
use serde_json::Value;
use tower::ServiceExt;

const INVALID: i32 = 7;

fn hutong(args: &[&str]) -> common::Outcome {
    common::hutong_in(None, args)
}

fn vectors() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../verify/tests/vectors/proofs.json");
    serde_json::from_slice(&std::fs::read(path).expect("read the vectors")).expect("vectors")
}

fn write(dir: &Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec(value).expect("json")).expect("write");
    path.to_str().expect("utf-8 path").to_owned()
}

#[test]
fn bundles_verify_and_every_tampered_bundle_fails_with_its_code() {
    let vectors = vectors();
    let dir = tempfile::tempdir().unwrap();
    let genesis = write(dir.path(), "genesis.json", &vectors["genesis"]);

    let present = write(dir.path(), "present.json", &vectors["valid"][0]["bundle"]);
    // The vectors were recorded long ago: a bundle that old is refused unless the check is
    // asked for as historical, since it may predate a revocation.
    let outcome = hutong(&["verify", "--genesis", &genesis, "--bundle", &present]);
    assert_eq!(outcome.code, INVALID, "{}", outcome.stdout);
    assert!(outcome.stderr.contains("(stale)"), "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("verify as historical"),
        "{}",
        outcome.stderr
    );
    let outcome = hutong(&[
        "verify",
        "--genesis",
        &genesis,
        "--bundle",
        &present,
        "--historical",
    ]);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(
        outcome
            .stdout
            .contains("verified: licence business-licence/")
    );
    assert!(outcome.stdout.contains("signed by more than 2/3"));
    assert!(
        outcome.stdout.contains("HISTORICAL check"),
        "{}",
        outcome.stdout
    );

    let outcome = hutong(&[
        "verify",
        "--genesis",
        &genesis,
        "--bundle",
        &present,
        "--historical",
        "--json",
    ]);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let json: Value = serde_json::from_str(&outcome.stdout).unwrap();
    let expected = &vectors["valid"][0]["expected"];
    assert_eq!(
        json["verified"]["checkpoint"]["height"], expected["height"],
        "{json}"
    );
    assert_eq!(
        json["verified"]["checkpoint"]["block_hash"],
        expected["block_hash"]
    );

    let absent = write(dir.path(), "absent.json", &vectors["valid"][1]["bundle"]);
    let outcome = hutong(&[
        "verify",
        "--genesis",
        &genesis,
        "--bundle",
        &absent,
        "--historical",
    ]);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(
        outcome.stdout.contains("was never issued"),
        "{}",
        outcome.stdout
    );

    let tampered = vectors["tampered"].as_array().unwrap();
    assert!(tampered.len() >= 5);
    for case in tampered {
        let path = write(dir.path(), "tampered.json", &case["bundle"]);
        let outcome = hutong(&[
            "verify",
            "--genesis",
            &genesis,
            "--bundle",
            &path,
            "--historical",
        ]);
        assert_eq!(
            outcome.code, INVALID,
            "{}: {}",
            case["name"], outcome.stdout
        );
        let code = case["error"].as_str().unwrap();
        assert!(
            outcome.stderr.contains(&format!("({code})")),
            "{}: expected {code}, got {}",
            case["name"],
            outcome.stderr
        );
    }
}

/// A licence's history document (`hutong-history/v1`, from the conformance vectors of
/// docs/vectors/) verifies, and its relabelled copy is refused naming the label check.
#[test]
fn a_history_verifies_and_a_relabelled_event_is_refused() {
    let vectors = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors");
    let path = |name: &str| vectors.join(name).to_str().expect("utf-8 path").to_owned();
    let genesis = path("genesis.json");
    let read = |name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(vectors.join(name)).expect("read a vector"))
            .expect("a vector")
    };
    let dir = tempfile::tempdir().unwrap();
    let honest = write(
        dir.path(),
        "history.json",
        &read("history.honest.revoked.json")["document"],
    );
    let outcome = hutong(&["verify", "--genesis", &genesis, "--bundle", &honest]);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(
        outcome
            .stdout
            .contains("verified: history of licence business-licence/"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains("吊销 (revoke)"),
        "{}",
        outcome.stdout
    );
    let relabelled = write(
        dir.path(),
        "relabelled.json",
        &read("history.tampered.event-zh-relabelled.json")["document"],
    );
    let outcome = hutong(&["verify", "--genesis", &genesis, "--bundle", &relabelled]);
    assert_eq!(outcome.code, INVALID, "{}", outcome.stdout);
    assert!(
        outcome.stderr.contains("(history-label-mismatch)"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn qr_payloads_verify_alone_and_against_their_bundle() {
    let vectors = vectors();
    let dir = tempfile::tempdir().unwrap();
    let genesis = write(dir.path(), "genesis.json", &vectors["genesis"]);
    let qr = &vectors["qr"]["valid"];
    let text = qr["text"].as_str().unwrap();

    let outcome = hutong(&["verify", "--genesis", &genesis, "--qr", text]);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(outcome.stdout.contains(qr["number"].as_str().unwrap()));
    assert!(
        outcome
            .stdout
            .contains(qr["transaction_id"].as_str().unwrap())
    );

    // From a file, as a scanner would save it, with a trailing newline.
    let qr_file = dir.path().join("qr.txt");
    std::fs::write(&qr_file, format!("{text}\n")).unwrap();
    let from_file = format!("@{}", qr_file.display());
    let outcome = hutong(&["verify", "--genesis", &genesis, "--qr", &from_file]);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);

    // With the licence's bundle: the issuer record it proves checks the payload, and the
    // payload's issuance transaction is the proved licence's.
    let present = write(dir.path(), "present.json", &vectors["valid"][0]["bundle"]);
    let outcome = hutong(&[
        "verify",
        "--genesis",
        &genesis,
        "--bundle",
        &present,
        "--qr",
        text,
        "--historical",
    ]);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(outcome.stdout.contains("verified: QR payload"));

    // A bundle of another licence does not vouch for this payload.
    let absent = write(dir.path(), "absent.json", &vectors["valid"][1]["bundle"]);
    let outcome = hutong(&[
        "verify",
        "--genesis",
        &genesis,
        "--bundle",
        &absent,
        "--qr",
        text,
        "--historical",
    ]);
    assert_eq!(outcome.code, INVALID, "{}", outcome.stdout);

    for case in vectors["qr"]["tampered"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let outcome = hutong(&["verify", "--genesis", &genesis, "--qr", text]);
        assert_eq!(outcome.code, INVALID, "{}", case["name"]);
        let code = case["error"].as_str().unwrap();
        assert!(
            outcome.stderr.contains(&format!("({code})")),
            "{}: expected {code}, got {}",
            case["name"],
            outcome.stderr
        );
    }
}

#[test]
fn bad_invocations_are_usage_or_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = write(dir.path(), "genesis.json", &vectors()["genesis"]);
    // Nothing to verify.
    assert_eq!(hutong(&["verify", "--genesis", &genesis]).code, 2);
    // A missing file, and a file that is not a proof document.
    let missing = dir.path().join("missing.json");
    let missing = missing.to_str().unwrap();
    let outcome = hutong(&["verify", "--genesis", &genesis, "--bundle", missing]);
    assert_eq!(outcome.code, 3, "{}", outcome.stderr);
    let outcome = hutong(&["verify", "--genesis", &genesis, "--bundle", &genesis]);
    assert_eq!(outcome.code, INVALID, "{}", outcome.stderr);
    // A genesis file that is not there.
    let outcome = hutong(&["verify", "--genesis", missing, "--qr", "HT1:AAAA"]);
    assert_eq!(outcome.code, 3, "{}", outcome.stderr);
}

async fn get(store: &Arc<Store>, node: PublicKey, uri: &str) -> Value {
    let state = ApiState::new(
        store.clone(),
        Arc::new(StoreNode::new(store.clone(), node, 10)),
        ApiConfig::default(),
    )
    .unwrap();
    let response = router(state)
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{uri}: {}",
        response.status()
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn a_consistency_proof_between_two_checkpoints_verifies() {
    let mut chain = demo_chain(3);
    let node = chain.fixture.node_keys[0].public_key();
    let first = get(&chain.store, node, "/v1/log/checkpoint").await;
    let transactions = (1..=4)
        .map(|n| {
            chain
                .fixture
                .tx("qd-approval", business_licence_body("370200", 500 + n))
        })
        .collect();
    chain.commit(transactions);
    let second = get(&chain.store, node, "/v1/log/checkpoint").await;
    let first_size = first["checkpoint"]["header"]["log_size"]
        .as_u64()
        .unwrap_or_else(|| panic!("a log size in {first}"));
    let consistency = get(
        &chain.store,
        node,
        &format!("/v1/log/consistency?first={first_size}"),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let genesis = write(
        dir.path(),
        "genesis.json",
        &serde_json::to_value(&chain.fixture.genesis).unwrap(),
    );
    let first = write(dir.path(), "first.json", &first);
    let second = write(dir.path(), "second.json", &second);
    let proof = write(dir.path(), "consistency.json", &consistency);
    let run = |proof: &str, a: &str, b: &str| {
        hutong(&[
            "verify",
            "--genesis",
            &genesis,
            "--consistency",
            proof,
            "--checkpoint",
            a,
            "--checkpoint",
            b,
        ])
    };
    let outcome = run(&proof, &first, &second);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(outcome.stdout.contains("is a prefix of the log"));
    // The order of the checkpoints does not matter.
    assert_eq!(run(&proof, &second, &first).code, 0);
    // A proof whose path was altered fails.
    let mut altered = consistency.clone();
    let path = altered["proof"]["path"].as_array_mut().unwrap();
    assert!(!path.is_empty());
    path[0] = Value::String("00".repeat(32));
    let altered = write(dir.path(), "altered.json", &altered);
    let outcome = run(&altered, &first, &second);
    assert_eq!(outcome.code, INVALID, "{}", outcome.stdout);
    // A proof between other sizes than the checkpoints' fails.
    let outcome = run(&proof, &first, &first);
    assert_eq!(outcome.code, INVALID, "{}", outcome.stdout);
    assert!(
        outcome.stderr.contains("the checkpoints have"),
        "{}",
        outcome.stderr
    );
}

/// A light client's round: `--save-trusted` keeps a verified checkpoint, a later checkpoint
/// asked for from it (`?trusted_height=`) verifies with `--trusted` and not without, and the
/// trust moves forward.
#[tokio::test]
async fn a_verifier_keeps_a_trusted_checkpoint_and_starts_later_ones_from_it() {
    let mut chain = demo_chain(3);
    let node = chain.fixture.node_keys[0].public_key();
    let first = get(&chain.store, node, "/v1/log/checkpoint").await;
    let first_height = first["checkpoint"]["header"]["height"].as_u64().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let genesis = write(
        dir.path(),
        "genesis.json",
        &serde_json::to_value(&chain.fixture.genesis).unwrap(),
    );
    let trust = dir.path().join("trusted.json");
    let trust_path = trust.to_str().unwrap().to_owned();
    let first_file = write(dir.path(), "first.json", &first);
    let outcome = hutong(&[
        "verify",
        "--genesis",
        &genesis,
        "--bundle",
        &first_file,
        "--save-trusted",
        &trust_path,
    ]);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let kept: Value = serde_json::from_slice(&std::fs::read(&trust).unwrap()).unwrap();
    assert_eq!(kept["format"], "hutong-trusted-checkpoint/v1");
    assert_eq!(kept["height"], first_height);

    let transactions = (1..=2)
        .map(|n| {
            chain
                .fixture
                .tx("qd-approval", business_licence_body("370200", 700 + n))
        })
        .collect();
    chain.commit(transactions);
    let second = get(
        &chain.store,
        node,
        &format!("/v1/log/checkpoint?trusted_height={first_height}"),
    )
    .await;
    assert_eq!(second["checkpoint"]["trusted_height"], first_height);
    let second_file = write(dir.path(), "second.json", &second);
    let without = hutong(&["verify", "--genesis", &genesis, "--bundle", &second_file]);
    assert_eq!(without.code, INVALID, "{}", without.stdout);
    assert!(
        without.stderr.contains("untrusted-start"),
        "{}",
        without.stderr
    );
    let with = hutong(&[
        "verify",
        "--genesis",
        &genesis,
        "--bundle",
        &second_file,
        "--trusted",
        &trust_path,
        "--save-trusted",
        &trust_path,
    ]);
    assert_eq!(with.code, 0, "{}", with.stderr);
    let moved: Value = serde_json::from_slice(&std::fs::read(&trust).unwrap()).unwrap();
    assert_eq!(
        moved["height"], second["checkpoint"]["header"]["height"],
        "the trust moves to the later checkpoint"
    );
    assert!(!dir.path().join("trusted.partial").exists());
}
