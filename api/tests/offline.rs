//! Offline verification: a bundle from the router verifies with the genesis file alone, and
//! every tampered bundle fails with the error its mutation calls for. The vectors in
//! `verify/tests/vectors/proofs.json` (with `genesis.json` and `licence-bundle.json` beside it,
//! the example of the verifier crate's docs) pin the format for verifiers written elsewhere; set
//! `HUTONG_WRITE_VECTORS=1` to regenerate them after a deliberate format change.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use hutong_api::testkit::{DemoChain, StoreNode, demo_chain};
use hutong_api::{ApiConfig, ApiState, router};
use hutong_core::genesis::Genesis;
use hutong_core::records::Record;
use hutong_verify::qr::QrPayload;
use hutong_verify::{self, ProofBundle, VerifyOptions};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn get(chain: &DemoChain, uri: &str) -> Vec<u8> {
    let node = Arc::new(StoreNode::new(
        chain.store.clone(),
        chain.fixture.node_keys[0].public_key(),
        10,
    ));
    let state = ApiState::with_clock(
        chain.store.clone(),
        node,
        ApiConfig::default(),
        Arc::new(|| common::NOW),
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
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec()
}

fn bundle_uri(chain: &DemoChain, index: usize) -> String {
    format!(
        "/v1/licences/business-licence/{}/proof?region=650100",
        chain.facts.qingdao_numbers[index]
    )
}

/// Each mutation of a valid bundle and the error code it must produce.
fn tampered(bundle: &ProofBundle) -> Vec<(&'static str, ProofBundle, &'static str)> {
    let mut cases = Vec::new();
    let mut case = |name, expected, mutate: &dyn Fn(&mut ProofBundle)| {
        let mut copy = bundle.clone();
        mutate(&mut copy);
        cases.push((name, copy, expected));
    };
    case("record-changed", "record-proof/leaf-value-mismatch", &|b| {
        if let Some(Record::Licence(licence)) = &mut b.records[0].record {
            licence.holder_name.push('!');
        }
    });
    case("record-removed", "record-proof/key-present", &|b| {
        b.records[0].record = None;
    });
    case("sibling-flipped", "record-proof/root-mismatch", &|b| {
        b.records[0].proof.siblings[0].0[0] ^= 1;
    });
    case(
        "issuer-proof-sibling-flipped",
        "record-proof/root-mismatch",
        &|b| {
            b.records[1].proof.siblings[0].0[31] ^= 0x80;
        },
    );
    case("header-changed", "certificate-wrong-block", &|b| {
        b.checkpoint.header.time += 1;
    });
    case(
        "protocol-version-changed",
        "unsupported-protocol-version",
        &|b| {
            b.checkpoint.header.protocol_version += 1;
        },
    );
    case("state-root-changed", "certificate-wrong-block", &|b| {
        b.checkpoint.header.state_root.0[0] ^= 1;
    });
    case(
        "certificate-signature-flipped",
        "certificate-bad-signature",
        &|b| {
            if let Some(certificate) = &mut b.checkpoint.certificate {
                certificate.signatures[0].signature.0[5] ^= 1;
            }
        },
    );
    case(
        "too-few-signatures",
        "certificate-insufficient-power",
        &|b| {
            if let Some(certificate) = &mut b.checkpoint.certificate {
                certificate.signatures.truncate(2);
            }
        },
    );
    case("certificate-missing", "missing-certificate", &|b| {
        b.checkpoint.certificate = None;
    });
    case(
        "validator-change-dropped",
        "validator-list-mismatch",
        &|b| {
            b.checkpoint.validator_changes.clear();
        },
    );
    case("validator-list-changed", "validator-list-mismatch", &|b| {
        b.checkpoint.validators.pop();
    });
    case(
        "validator-change-inclusion-flipped",
        "inclusion/root_mismatch",
        &|b| {
            b.checkpoint.validator_changes[0].transactions[0]
                .inclusion
                .path[0]
                .0[0] ^= 1;
        },
    );
    case(
        "validator-change-header-changed",
        "certificate-wrong-block",
        &|b| {
            b.checkpoint.validator_changes[0].header.log_size += 1;
        },
    );
    case("licence-swapped", "missing-licence-proof", &|b| {
        b.number = "91370200MA9999999X".into();
    });
    case("wrong-format", "unsupported-format", &|b| {
        b.format = "hutong-proof-bundle/v0".into();
    });
    cases
}

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../verify/tests/vectors/proofs.json")
}

/// The genesis file of the vectors, alone: what the verifier crate's example reads.
const GENESIS_EXAMPLE: &str = "genesis.json";
/// The first valid bundle of the vectors, alone.
const BUNDLE_EXAMPLE: &str = "licence-bundle.json";

fn example_path(name: &str) -> PathBuf {
    vectors_path().with_file_name(name)
}

/// The example files hold the same genesis and bundle as the vectors.
fn check_example_files(vectors: &Value, genesis: &Genesis) {
    let example_genesis =
        Genesis::from_json(&std::fs::read(example_path(GENESIS_EXAMPLE)).unwrap()).unwrap();
    assert_eq!(
        &example_genesis, genesis,
        "{GENESIS_EXAMPLE} is the vectors' genesis"
    );
    let example_bundle: Value =
        serde_json::from_slice(&std::fs::read(example_path(BUNDLE_EXAMPLE)).unwrap()).unwrap();
    assert_eq!(
        example_bundle, vectors["valid"][0]["bundle"],
        "{BUNDLE_EXAMPLE} is the vectors' first valid bundle"
    );
}

/// The vectors a verifier written elsewhere checks itself against.
async fn generate_vectors() -> Value {
    let chain = demo_chain(3);
    let bundle_bytes = get(&chain, &bundle_uri(&chain, 0)).await;
    let bundle: ProofBundle = serde_json::from_slice(&bundle_bytes).unwrap();
    let verified = hutong_verify::verify_bundle_with(
        &bundle,
        &chain.fixture.genesis,
        &hutong_verify::VerifyOptions::historical(),
    )
    .unwrap();
    let absent: ProofBundle = serde_json::from_slice(
        &get(
            &chain,
            "/v1/licences/business-licence/91370200MA9999999X/proof",
        )
        .await,
    )
    .unwrap();
    let qr_text: Value = serde_json::from_slice(
        &get(
            &chain,
            &format!(
                "/v1/licences/business-licence/{}/qr?format=text",
                chain.facts.qingdao_numbers[0]
            ),
        )
        .await,
    )
    .unwrap();
    let qr_text = qr_text["payload"].as_str().unwrap().to_owned();
    let qr = QrPayload::from_text(&qr_text).unwrap();
    let mut forged_qr = qr.clone();
    forged_qr.signature.0[0] ^= 1;
    let header = &bundle.checkpoint.header;
    let licence_record = bundle.records[0].record.clone().unwrap();
    json!({
        "description": "hutong proof vectors: see docs/proofs.md. Every bundle is checked against `genesis`.",
        "genesis": chain.fixture.genesis,
        "encodings": {
            "header": {
                "value": header,
                "canonical_hex": hex::encode(hutong_core::codec::to_canonical(header)),
                "hash": header.hash(hutong_core::testkit::SUITE),
            },
            "licence_record": {
                "canonical_hex": hex::encode(licence_record.to_bytes()),
                "state_hash": licence_record.state_hash(hutong_core::testkit::SUITE),
                "key_state_hash": licence_record.key().state_hash(hutong_core::testkit::SUITE),
            },
        },
        "valid": [
            {
                "name": "licence-present",
                "bundle": bundle,
                "expected": {
                    "height": verified.checkpoint.height,
                    "block_hash": verified.checkpoint.block_hash,
                    "licence_present": true,
                    "valid_at_checkpoint_time": verified.verdict.as_ref().map(|verdict| verdict.valid),
                    "validator_changes": verified.checkpoint.validator_changes,
                }
            },
            {
                "name": "licence-absent",
                "bundle": absent,
                "expected": { "licence_present": false }
            }
        ],
        "tampered": tampered(&bundle)
            .into_iter()
            .map(|(name, bundle, error)| json!({ "name": name, "bundle": bundle, "error": error }))
            .collect::<Vec<_>>(),
        "qr": {
            "valid": { "text": qr_text, "type_code": "business-licence", "number": chain.facts.qingdao_numbers[0], "issuer": "qd-approval", "issued_height": qr.issued_height, "transaction_id": qr.transaction().id(hutong_core::testkit::SUITE) },
            "tampered": [
                { "name": "signature-flipped", "text": forged_qr.to_text(), "error": "bad-signature" },
                { "name": "prefix-missing", "text": qr_text.trim_start_matches("HT1:"), "error": "missing-prefix" },
                { "name": "lower-case", "text": format!("HT1:{}", qr_text.trim_start_matches("HT1:").to_lowercase()), "error": "base32" },
                { "name": "truncated", "text": &qr_text[..4 + ((qr_text.len() - 4) / 8 - 1) * 8], "error": "truncated" }
            ]
        }
    })
}

#[tokio::test]
async fn vectors_verify_as_recorded() {
    let path = vectors_path();
    if std::env::var_os("HUTONG_WRITE_VECTORS").is_some() {
        let vectors = generate_vectors().await;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&vectors).unwrap() + "\n",
        )
        .unwrap();
        let genesis: Genesis = serde_json::from_value(vectors["genesis"].clone()).unwrap();
        std::fs::write(example_path(GENESIS_EXAMPLE), genesis.to_json() + "\n").unwrap();
        std::fs::write(
            example_path(BUNDLE_EXAMPLE),
            serde_json::to_string_pretty(&vectors["valid"][0]["bundle"]).unwrap() + "\n",
        )
        .unwrap();
    }
    let vectors: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let genesis: Genesis = serde_json::from_value(vectors["genesis"].clone()).unwrap();
    check_example_files(&vectors, &genesis);
    for case in vectors["valid"].as_array().unwrap() {
        let document = serde_json::to_vec(&case["bundle"]).unwrap();
        let verified =
            hutong_verify::verify_json(&document, &genesis, &VerifyOptions::historical())
                .unwrap_or_else(|error| panic!("{}: {error}", case["name"]));
        let hutong_verify::Verified::Licence(verified) = verified else {
            panic!("a licence bundle");
        };
        let expected = &case["expected"];
        assert_eq!(
            verified.licence.is_some(),
            expected["licence_present"].as_bool().unwrap()
        );
        if let Some(height) = expected["height"].as_u64() {
            assert_eq!(verified.checkpoint.height, height);
            assert_eq!(
                verified.checkpoint.block_hash.to_hex(),
                expected["block_hash"].as_str().unwrap()
            );
            assert_eq!(
                verified.verdict.unwrap().valid,
                expected["valid_at_checkpoint_time"].as_bool().unwrap()
            );
        }
    }
    for case in vectors["tampered"].as_array().unwrap() {
        let bundle: ProofBundle = serde_json::from_value(case["bundle"].clone()).unwrap();
        let error = hutong_verify::verify_bundle_with(
            &bundle,
            &genesis,
            &hutong_verify::VerifyOptions::historical(),
        )
        .unwrap_err();
        assert_eq!(
            error.code(),
            case["error"].as_str().unwrap(),
            "{}",
            case["name"]
        );
    }
    let valid = &vectors["qr"]["valid"];
    let signed = QrPayload::from_text(valid["text"].as_str().unwrap())
        .unwrap()
        .verify_with_genesis(&genesis)
        .unwrap();
    assert_eq!(signed.number.as_str(), valid["number"].as_str().unwrap());
    assert_eq!(
        signed.transaction_id.to_hex(),
        valid["transaction_id"].as_str().unwrap()
    );
    for case in vectors["qr"]["tampered"].as_array().unwrap() {
        let error = QrPayload::from_text(case["text"].as_str().unwrap())
            .and_then(|payload| payload.verify_with_genesis(&genesis))
            .unwrap_err();
        assert_eq!(
            error.code(),
            case["error"].as_str().unwrap(),
            "{}",
            case["name"]
        );
    }
    // The encodings a verifier in another language reproduces first.
    let header: hutong_core::block::BlockHeader =
        serde_json::from_value(vectors["encodings"]["header"]["value"].clone()).unwrap();
    assert_eq!(
        hex::encode(hutong_core::codec::to_canonical(&header)),
        vectors["encodings"]["header"]["canonical_hex"]
            .as_str()
            .unwrap()
    );
}

#[tokio::test]
async fn bundle_from_the_shared_chain_verifies_and_tampering_fails() {
    let chain = common::chain();
    let bytes = get(chain, &bundle_uri(chain, 10)).await;
    let bundle: ProofBundle = serde_json::from_slice(&bytes).unwrap();
    let verified = hutong_verify::verify_bundle_with(
        &bundle,
        &chain.fixture.genesis,
        &hutong_verify::VerifyOptions::historical(),
    )
    .unwrap();
    assert_eq!(verified.checkpoint.validator_changes, 1);
    assert_eq!(verified.checkpoint.height, chain.store.height().unwrap());
    assert!(verified.issuer.is_some());
    // The verdict offline is the node's verdict at the same time and region.
    let options = VerifyOptions {
        at: Some(common::NOW),
        region: Some(hutong_core::testkit::region("650100")),
        ..VerifyOptions::historical()
    };
    let offline_verdict =
        hutong_verify::verify_bundle_with(&bundle, &chain.fixture.genesis, &options)
            .unwrap()
            .verdict
            .unwrap();
    let online = chain
        .store
        .verdict(
            &bundle.type_code,
            &bundle.number,
            options.region.as_ref(),
            common::NOW,
        )
        .unwrap()
        .unwrap()
        .verdict;
    assert_eq!(offline_verdict, online);
    for (name, tampered_bundle, expected) in tampered(&bundle) {
        let error = hutong_verify::verify_bundle_with(
            &tampered_bundle,
            &chain.fixture.genesis,
            &hutong_verify::VerifyOptions::historical(),
        )
        .unwrap_err();
        assert_eq!(error.code(), expected, "{name}: {error}");
    }
    let mut other = chain.fixture.genesis.clone();
    other.chain_id = "another-chain".into();
    assert_eq!(
        hutong_verify::verify_bundle_with(
            &bundle,
            &other,
            &hutong_verify::VerifyOptions::historical()
        )
        .unwrap_err()
        .code(),
        "chain-mismatch"
    );
}

/// Freshness (ADR 0037): a bundle is held to the chain's `proof_age_ms_max` against the
/// verifier's clock and against the time asked about, unless the check is historical.
#[tokio::test]
async fn a_replayed_stale_bundle_is_refused_unless_the_check_is_historical() {
    let chain = common::chain();
    let bytes = get(chain, &bundle_uri(chain, 10)).await;
    let bundle: ProofBundle = serde_json::from_slice(&bytes).unwrap();
    let genesis = &chain.fixture.genesis;
    let header_time = bundle.checkpoint.header.time;
    let limit = genesis.freshness.proof_age_ms_max;
    let at_clock = |now: u64, at: Option<u64>| VerifyOptions {
        now: Some(now),
        at,
        ..VerifyOptions::default()
    };
    // Fresh: within the limit of the verifier's clock.
    let fresh =
        hutong_verify::verify_bundle_with(&bundle, genesis, &at_clock(header_time + limit, None))
            .unwrap();
    assert_eq!(fresh.age_ms, Some(limit));
    // One millisecond older: refused, naming the ages.
    let error = hutong_verify::verify_bundle_with(
        &bundle,
        genesis,
        &at_clock(header_time + limit + 1, None),
    )
    .unwrap_err();
    assert_eq!(error.code(), "stale", "{error}");
    assert!(
        error.to_string().contains(&format!("allows {limit} ms")),
        "{error}"
    );
    // Asked about a time further past the header than the limit: refused too, even on a
    // fresh clock.
    let error = hutong_verify::verify_bundle_with(
        &bundle,
        genesis,
        &at_clock(header_time + 1, Some(header_time + limit + 1)),
    )
    .unwrap_err();
    assert_eq!(error.code(), "stale", "{error}");
    assert!(error.to_string().contains("--at"), "{error}");
    // Today's clock (the system's, by default) finds the recorded chain's bundle stale.
    let error =
        hutong_verify::verify_bundle_with(&bundle, genesis, &VerifyOptions::default()).unwrap_err();
    assert_eq!(error.code(), "stale");
    // A historical check accepts it and says so.
    let historical =
        hutong_verify::verify_bundle_with(&bundle, genesis, &VerifyOptions::historical()).unwrap();
    assert_eq!(historical.age_ms, None);
    assert_eq!(historical.verdict, fresh.verdict);
}

#[tokio::test]
async fn disputed_licence_bundle_carries_its_objection() {
    let chain = common::chain();
    let uri = format!(
        "/v1/licences/business-licence/{}/proof",
        chain.facts.disputed
    );
    let bundle: ProofBundle = serde_json::from_slice(&get(chain, &uri).await).unwrap();
    let verified = hutong_verify::verify_bundle_with(
        &bundle,
        &chain.fixture.genesis,
        &hutong_verify::VerifyOptions::historical(),
    )
    .unwrap();
    let verdict = verified.verdict.unwrap();
    assert_eq!(verdict.open_objections, vec![chain.facts.objection]);
}

#[test]
fn genesis_checkpoint_verifies_without_a_certificate() {
    let genesis = &common::chain().fixture.genesis;
    let checkpoint = hutong_verify::Checkpoint {
        header: hutong_verify::genesis_header(genesis),
        certificate: None,
        validators: hutong_verify::genesis_validators(genesis),
        validator_changes: Vec::new(),
    };
    assert_eq!(
        hutong_verify::verify_checkpoint(&checkpoint, genesis)
            .unwrap()
            .height,
        0
    );
    let mut wrong = checkpoint.clone();
    wrong.header.time += 1;
    assert_eq!(
        hutong_verify::verify_checkpoint(&wrong, genesis)
            .unwrap_err()
            .code(),
        "genesis-header-mismatch"
    );
}
