//! Offline verification: a bundle from the router verifies with the genesis file alone, and
//! every tampered bundle fails with the error its mutation calls for. The vectors in
//! `verify/tests/vectors/proofs.json` (with `genesis.json` and `licence-bundle.json` beside it,
//! the example of the verifier crate's docs) pin the format for verifiers written elsewhere; set
//! `HUTONG_WRITE_VECTORS=1` to regenerate them after a deliberate format change. The same run
//! writes the conformance vectors of `docs/vectors/` (one file per case, honest and tampered:
//! bundles, absence, history, transaction proofs, checkpoints, consistency, QR payloads,
//! verdicts), which `verify/tests/docs_vectors.rs` checks.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use hutong_api::testkit::{DemoChain, StoreNode, demo_chain, drop_records};
use hutong_api::{ApiConfig, ApiState, router};
use hutong_core::genesis::Genesis;
use hutong_core::records::{Record, RecordKey};
use hutong_core::suite::Suite;
use hutong_verify::qr::QrPayload;
use hutong_verify::{self, ProofBundle, ProvedRecord, VerifyOptions};
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
    case("record-changed", "state-proof/root-mismatch", &|b| {
        if let ProvedRecord::Present(Record::Licence(licence)) = &mut b.records[0] {
            licence.holder_name.push('!');
        }
    });
    case("record-removed", "record-proof/key-present", &|b| {
        b.records[0] = ProvedRecord::Absent(b.records[0].key());
    });
    case("sibling-flipped", "state-proof/root-mismatch", &|b| {
        b.state_proof.siblings[0].0[0] ^= 1;
    });
    case("last-sibling-flipped", "state-proof/root-mismatch", &|b| {
        if let Some(last) = b.state_proof.siblings.last_mut() {
            last.0[31] ^= 0x80;
        }
    });
    case("sibling-dropped", "state-proof/missing-siblings", &|b| {
        b.state_proof.siblings.pop();
    });
    case("sibling-added", "state-proof/extra-siblings", &|b| {
        b.state_proof.siblings.push(b.checkpoint.header.state_root);
    });
    case("path-end-moved", "state-proof/paths-disagree", &|b| {
        b.state_proof.ends[0].depth = 0;
    });
    case("record-duplicated", "state-proof/duplicate-key", &|b| {
        let first = b.records[0].clone();
        b.records.push(first);
        let end = b.state_proof.ends[0];
        b.state_proof.ends.push(end);
    });
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
    // Completeness (ADR 0039): a bundle for use in 650100 proves the recognition sets of
    // 650100, 650000 and 000000, each recognition they list about the licence, and every open
    // objection; leaving one out is refused, never read as "not recognised".
    // The node leaves the record out and proves the rest with a multiproof of their own.
    let left_out = |b: &mut ProofBundle, wanted: &dyn Fn(&RecordKey) -> bool| {
        let mut removed = false;
        let count = drop_records(
            Suite::Ed25519Blake3,
            b.checkpoint.header.state_root,
            &mut b.records,
            &mut b.state_proof,
            |key| {
                let drop = !removed && wanted(key);
                removed |= drop;
                drop
            },
        )
        .unwrap();
        assert_eq!(count, 1, "the bundle holds such a proof");
    };
    case("recognition-left-out", "incomplete-recognitions", &|b| {
        left_out(b, &|key| matches!(key, RecordKey::Recognition(_)));
    });
    case(
        "recognition-set-left-out",
        "incomplete-recognitions",
        &|b| {
            left_out(b, &|key| matches!(key, RecordKey::RecognitionSet(..)));
        },
    );
    if bundle
        .records
        .iter()
        .any(|proved| matches!(proved.key(), RecordKey::Objection(_)))
    {
        case("objection-left-out", "incomplete-objections", &|b| {
            left_out(b, &|key| matches!(key, RecordKey::Objection(_)));
        });
    }
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
    let qr_text = String::from_utf8(
        get(
            &chain,
            &format!(
                "/v1/licences/business-licence/{}/qr?format=text",
                chain.facts.qingdao_numbers[0]
            ),
        )
        .await,
    )
    .unwrap();
    let qr = QrPayload::from_text(&qr_text).unwrap();
    let mut forged_qr = qr.clone();
    forged_qr.signature.0[0] ^= 1;
    let header = &bundle.checkpoint.header;
    let licence_record = bundle.records[0].record().cloned().unwrap();
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
        // The conformance vectors of docs/vectors/ are made in the same run, so that one run
        // refreshes every vector file; `verify/tests/docs_vectors.rs` checks them.
        write_docs_vectors().await;
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
        trusted_height: None,
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

/// A light client keeps a checkpoint it verified and asks for bundles that start from it
/// (`?trusted_height=`): only the hand-overs after it are carried, the bundle verifies against
/// that trust alone, and a bundle that names a trust the verifier does not hold, or a header at
/// the trusted height that is not the trusted block, is refused.
#[tokio::test]
async fn a_bundle_starts_from_a_checkpoint_the_verifier_trusts() {
    use hutong_verify::{Checkpoint, CheckpointDocument, TrustedCheckpoint};
    let chain = common::chain();
    let genesis = &chain.fixture.genesis;
    let full: CheckpointDocument =
        serde_json::from_slice(&get(chain, "/v1/log/checkpoint").await).unwrap();
    let change = full.checkpoint.validator_changes[0].clone();
    // Trust at the height before the hand-over, from the hand-over's own signed header.
    let before = TrustedCheckpoint::verified(
        &Checkpoint {
            header: change.header.clone(),
            certificate: Some(change.certificate.clone()),
            validators: hutong_verify::genesis_validators(genesis),
            validator_changes: Vec::new(),
            trusted_height: None,
        },
        genesis,
        None,
    )
    .unwrap();
    let head = TrustedCheckpoint::verified(&full.checkpoint, genesis, None).unwrap();
    let options = |trusted: Option<&TrustedCheckpoint>| VerifyOptions {
        trusted: trusted.cloned(),
        ..VerifyOptions::historical()
    };
    let uri = |trusted: u64| format!("{}&trusted_height={trusted}", bundle_uri(chain, 10));

    let from_before: ProofBundle =
        serde_json::from_slice(&get(chain, &uri(before.height)).await).unwrap();
    assert_eq!(from_before.checkpoint.trusted_height, Some(before.height));
    assert_eq!(from_before.checkpoint.validator_changes.len(), 1);
    let verified =
        hutong_verify::verify_bundle_with(&from_before, genesis, &options(Some(&before))).unwrap();
    assert!(verified.verdict.is_some());

    let full_bundle = get(chain, &bundle_uri(chain, 10)).await;
    let from_head_bytes = get(chain, &uri(head.height)).await;
    let from_head: ProofBundle = serde_json::from_slice(&from_head_bytes).unwrap();
    assert!(from_head.checkpoint.validator_changes.is_empty());
    assert!(from_head_bytes.len() < full_bundle.len());
    hutong_verify::verify_bundle_with(&from_head, genesis, &options(Some(&head))).unwrap();

    // A verifier without that trust, or with another height's, refuses the bundle.
    let refused = |bundle: &ProofBundle, trusted: Option<&TrustedCheckpoint>| {
        hutong_verify::verify_bundle_with(bundle, genesis, &options(trusted))
            .unwrap_err()
            .code()
    };
    assert_eq!(refused(&from_head, None), "untrusted-start");
    assert_eq!(refused(&from_head, Some(&before)), "untrusted-start");
    // A bundle claiming to start from genesis's trust while dropping the hand-over is refused
    // as before: the trust is the verifier's, never the bundle's.
    let mut dropped = from_head.clone();
    dropped.checkpoint.trusted_height = None;
    assert_eq!(refused(&dropped, None), "validator-list-mismatch");
    // Another block at the trusted height is a fork or a lie.
    let mut forked = head.clone();
    forked.block_hash = hutong_core::hash::Hash32([7; 32]);
    assert_eq!(
        refused(&from_head, Some(&forked)),
        "trusted-header-mismatch"
    );
    let mut forked = before.clone();
    forked.block_hash = hutong_core::hash::Hash32([7; 32]);
    assert_eq!(
        refused(&from_before, Some(&forked)),
        "trusted-header-mismatch"
    );
    // Trust in validators that never signed makes nothing verify.
    let mut impostors = before.clone();
    impostors.validators = vec![hutong_core::records::NodeEntry {
        key: hutong_core::testkit::secret("impostor").public_key(),
        authority: "gov-a".into(),
        power: 1,
    }];
    assert_ne!(
        hutong_verify::verify_bundle_with(&from_before, genesis, &options(Some(&impostors)))
            .map(|_| ()),
        Ok(())
    );
}

// ---------------------------------------------------------------------------------------------
// The conformance vectors of docs/vectors/ (docs/proofs.md section 10): one JSON file per case,
// honest or tampered, each checked by `verify/tests/docs_vectors.rs`. Every file is made here,
// from the code, so that one `HUTONG_WRITE_VECTORS=1 cargo test -p hutong-api --test offline`
// refreshes them all after a change of format.

/// The folder of the conformance vectors.
fn docs_vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors")
}

/// The options a vector is checked with, as its file records them.
fn options_json(region: Option<&str>, at: Option<u64>) -> Value {
    json!({ "historical": true, "region": region, "at": at })
}

fn vector_options(options: &Value) -> VerifyOptions {
    VerifyOptions {
        at: options["at"].as_u64(),
        region: options["region"].as_str().map(hutong_core::testkit::region),
        ..VerifyOptions::historical()
    }
}

/// An honest vector: the document and what verifying it gives.
fn honest(kind: &str, description: &str, document: Value, options: Value) -> Value {
    let genesis = &vector_chain_genesis();
    let bytes = serde_json::to_vec(&document).unwrap();
    let verified = hutong_verify::verify_json(&bytes, genesis, &vector_options(&options))
        .unwrap_or_else(|error| panic!("{kind} {description}: {error}"));
    json!({
        "kind": kind,
        "description": description,
        "genesis": "genesis.json",
        "options": options,
        "document": document,
        "expected": verified,
    })
}

/// A tampered vector: the document changed by one mutation, and the error code it must give.
fn tampered_vector(kind: &str, description: &str, document: Value, options: Value) -> Value {
    let bytes = serde_json::to_vec(&document).unwrap();
    let error =
        hutong_verify::verify_json(&bytes, &vector_chain_genesis(), &vector_options(&options))
            .map(|_| ())
            .expect_err(description);
    json!({
        "kind": kind,
        "description": description,
        "genesis": "genesis.json",
        "options": options,
        "document": document,
        "error": error.code(),
    })
}

/// The genesis file of the vectors' chain: the core's fixture, the same for every demo chain.
fn vector_chain_genesis() -> Genesis {
    hutong_core::testkit::Fixture::new().genesis
}

/// A tampered case: its name, what it changes, and the change to the honest document's JSON.
type Mutation = (&'static str, &'static str, Box<dyn Fn(&mut Value)>);

/// `document` with `mutate` applied to its JSON.
fn mutated(document: &Value, mutate: impl FnOnce(&mut Value)) -> Value {
    let mut copy = document.clone();
    mutate(&mut copy);
    copy
}

/// Flips the lowest bit of the hex string at `value`.
fn flip_hex(value: &mut Value) {
    let text = value.as_str().unwrap().to_owned();
    let mut bytes = hex::decode(&text).unwrap();
    bytes[0] ^= 1;
    *value = Value::String(hex::encode(bytes));
}

async fn get_json(chain: &DemoChain, uri: &str) -> Value {
    serde_json::from_slice(&get(chain, uri).await).unwrap()
}

/// A verdict vector: the licence, the other records a bundle proved, the time and the region,
/// and the verdict the core's function gives on them.
fn verdict_vector(description: &str, bundle: &ProofBundle, at: u64, region: Option<&str>) -> Value {
    use hutong_core::verdict::VerdictRecords;
    let Some(Record::Licence(licence)) = bundle.records[0].record() else {
        panic!("{description}: the bundle proves the licence");
    };
    let records: Vec<Record> = bundle.records[1..]
        .iter()
        .filter_map(|proved| proved.record().cloned())
        .collect();
    let region_code = region.map(hutong_core::testkit::region);
    let verdict = VerdictRecords::collect(licence, region_code.as_ref(), records.clone())
        .verdict(licence, region_code.as_ref(), at)
        .unwrap();
    json!({
        "kind": "verdict",
        "description": description,
        "licence": licence,
        "records": records,
        "at": at,
        "region": region,
        "expected": verdict,
    })
}

/// Checks a consistency vector's document as a verifier does (both checkpoints, the proof's
/// sizes and roots against theirs, then the proof): `Err` with the code of what failed.
fn consistency_outcome(document: &Value, genesis: &Genesis) -> Result<(), String> {
    let checkpoint = |value: &Value| {
        let document: hutong_verify::CheckpointDocument =
            serde_json::from_value(value.clone()).unwrap();
        hutong_verify::verify_checkpoint(&document.checkpoint, genesis)
            .map_err(|error| error.code())
    };
    let first = checkpoint(&document["first_checkpoint"])?;
    let second = checkpoint(&document["second_checkpoint"])?;
    let answer = &document["consistency"];
    let proof: hutong_core::log::ConsistencyProof =
        serde_json::from_value(answer["proof"].clone()).unwrap();
    if (proof.first_size, proof.second_size) != (first.log_size, second.log_size) {
        return Err("sizes-not-the-checkpoints".into());
    }
    if (
        answer["first_root"].as_str(),
        answer["second_root"].as_str(),
    ) != (
        Some(first.log_root.to_hex().as_str()),
        Some(second.log_root.to_hex().as_str()),
    ) {
        return Err("roots-not-the-checkpoints".into());
    }
    hutong_verify::verify_log_consistency(genesis.suite, &proof, &first.log_root, &second.log_root)
        .map_err(|error| error.code())
}

/// Every file of docs/vectors/, by name, made from a chain built for them.
async fn generate_docs_vectors() -> Vec<(String, Value)> {
    use hutong_core::records::{CorrectionAction, StatusAction};
    use hutong_core::testkit::{DAY_MS, GENESIS_TIME};
    use hutong_core::tx::TxBody;
    // Four Qingdao licences: the first disputed, the second suspended, the third revoked (as
    // on every demo chain), the fourth with nothing against it but the pledge below.
    let mut chain = demo_chain(4);
    let genesis = chain.fixture.genesis.clone();
    let mut files: Vec<(String, Value)> = Vec::new();
    let mut add = |name: String, value: Value| files.push((name, value));
    add(
        "genesis.json".into(),
        serde_json::to_value(&genesis).unwrap(),
    );

    // A checkpoint before the last blocks, for the consistency proof.
    let older_checkpoint = get_json(&chain, "/v1/log/checkpoint").await;

    // Records for the verdicts' rarer reasons: a pledge, a correction by the governors, and a
    // key reported compromised.
    let pledged = chain.facts.qingdao_numbers[3].clone();
    let pledge = chain.fixture.tx(
        "qd-approval",
        TxBody::ChangeStatus {
            type_code: "business-licence".into(),
            number: pledged,
            action: StatusAction::PledgeRegistered {
                secured_party: "青岛银行 Bank of Qingdao".into(),
                reference: "DY-2026-0001".into(),
            },
            effective_at: GENESIS_TIME + DAY_MS,
            reason: "股权出质 equity pledge".into(),
        },
    );
    chain.commit(vec![pledge]);
    let correction = chain.fixture.governance(
        TxBody::CorrectEvent {
            type_code: "business-licence".into(),
            number: chain.facts.suspended.clone(),
            event: 1,
            action: CorrectionAction::Retime {
                effective_at: GENESIS_TIME + 2 * DAY_MS,
            },
            reason: "暂扣日期录入错误 the suspension was entered with the wrong date".into(),
        },
        3,
    );
    chain.commit(vec![correction]);
    let report = chain.fixture.governance(
        TxBody::ReportKeyCompromise {
            authority: "jn-approval".into(),
            compromised_from: 1,
            new_key: Some(hutong_core::testkit::secret("jn-approval-2").public_key()),
        },
        3,
    );
    chain.commit(vec![report]);
    // 年检: the next version of the business licence requires an inspection a year, and a
    // licence issued under it carries that period.
    let mut draft = genesis
        .licence_types
        .iter()
        .find(|draft| draft.code.as_str() == "business-licence")
        .unwrap()
        .clone();
    draft.constraints.annual_inspection_days = Some(365);
    let amend = chain.fixture.governance(TxBody::AmendLicenceType(draft), 3);
    chain.commit(vec![amend]);
    let inspected_body = hutong_core::testkit::business_licence_body("370200", 100);
    let inspected = inspected_body.licence().unwrap().1.clone();
    let issue = chain.fixture.tx("qd-approval", inspected_body);
    chain.commit(vec![issue]);
    chain.commit(Vec::new());

    // Encodings: values with their canonical bytes and hashes, to check an encoder against.
    let suite = hutong_core::testkit::SUITE;
    let genesis_bytes = hutong_core::codec::to_canonical(&genesis);
    add(
        "encoding.honest.genesis.json".into(),
        json!({
            "kind": "encoding",
            "type": "Genesis",
            "description": "the genesis file of every vector: its canonical bytes and its hash T(\"hutong/genesis/v1\", bytes)",
            "value": genesis,
            "canonical_hex": hex::encode(&genesis_bytes),
            "hash": genesis.hash(),
        }),
    );
    let head: hutong_verify::CheckpointDocument =
        serde_json::from_value(get_json(&chain, "/v1/log/checkpoint").await).unwrap();
    let header = head.checkpoint.header;
    add(
        "encoding.honest.header.json".into(),
        json!({
            "kind": "encoding",
            "type": "BlockHeader",
            "description": "a block header: its canonical bytes and its hash T(\"hutong/header/v1\", bytes)",
            "value": header,
            "canonical_hex": hex::encode(hutong_core::codec::to_canonical(&header)),
            "hash": header.hash(suite),
        }),
    );

    // Licence bundles.
    let qingdao = chain.facts.qingdao_numbers[0].clone();
    let bundle_uri = |number: &str, region: Option<&str>| match region {
        Some(region) => format!("/v1/licences/business-licence/{number}/proof?region={region}"),
        None => format!("/v1/licences/business-licence/{number}/proof"),
    };
    let present = get_json(&chain, &bundle_uri(qingdao.as_str(), Some("650100"))).await;
    add(
        "bundle.honest.licence-present.json".into(),
        honest(
            "licence-bundle",
            "a Qingdao business licence, asked about for use in Urumqi (650100), where Xinjiang's recognition covers it",
            present.clone(),
            options_json(Some("650100"), None),
        ),
    );
    let present_bundle: ProofBundle = serde_json::from_value(present.clone()).unwrap();
    for (name, bundle, _) in tampered(&present_bundle) {
        add(
            format!("bundle.tampered.{name}.json"),
            tampered_vector(
                "licence-bundle",
                &format!("the honest licence bundle, {name}"),
                serde_json::to_value(bundle).unwrap(),
                options_json(Some("650100"), None),
            ),
        );
    }
    let licence_record = present_bundle.records[0].record().cloned().unwrap();
    add(
        "encoding.honest.licence-record.json".into(),
        json!({
            "kind": "encoding",
            "type": "Record",
            "description": "a licence record: its canonical bytes, its record value T(\"hutong/record/v1\", bytes) and its key's position T(\"hutong/state-key/v1\", canonical(key))",
            "value": licence_record,
            "canonical_hex": hex::encode(licence_record.to_bytes()),
            "hash": licence_record.state_hash(suite),
            "key_position": licence_record.key().state_hash(suite),
        }),
    );
    let mut status_changed = present_bundle.clone();
    if let ProvedRecord::Present(Record::Licence(licence)) = &mut status_changed.records[0] {
        let mut revocation = licence.events[0].clone();
        revocation.kind = hutong_core::records::LicenceEventKind::Status(StatusAction::Revoke);
        licence.events.push(revocation);
    }
    add(
        "bundle.tampered.licence-status-changed.json".into(),
        tampered_vector(
            "licence-bundle",
            "the honest licence bundle with a revocation added to the licence's history",
            serde_json::to_value(status_changed).unwrap(),
            options_json(Some("650100"), None),
        ),
    );

    // Absence.
    let absent = get_json(&chain, &bundle_uri("91370200MA9999999X", None)).await;
    add(
        "absence.honest.licence-absent.json".into(),
        honest(
            "licence-bundle",
            "a proof that no business licence 91370200MA9999999X was ever issued",
            absent.clone(),
            options_json(None, None),
        ),
    );
    add(
        "absence.tampered.sibling-flipped.json".into(),
        tampered_vector(
            "licence-bundle",
            "the absence proof with one bit of its first sibling flipped",
            mutated(&absent, |document| {
                flip_hex(&mut document["state_proof"]["siblings"][0])
            }),
            options_json(None, None),
        ),
    );
    add(
        "absence.tampered.present-licence-claimed-absent.json".into(),
        tampered_vector(
            "licence-bundle",
            "the honest licence bundle with the licence record replaced by its key's absence",
            {
                let mut claimed: ProofBundle = serde_json::from_value(present.clone()).unwrap();
                claimed.records[0] = ProvedRecord::Absent(claimed.records[0].key());
                serde_json::to_value(claimed).unwrap()
            },
            options_json(Some("650100"), None),
        ),
    );

    // History.
    let revoked = chain.facts.revoked.clone();
    let history = get_json(
        &chain,
        &format!("/v1/licences/business-licence/{revoked}/history"),
    )
    .await;
    add(
        "history.honest.revoked.json".into(),
        honest(
            "history",
            "the history of a revoked business licence: its issuance and its revocation (吊销)",
            history.clone(),
            options_json(None, None),
        ),
    );
    let history_cases: Vec<Mutation> = vec![
        (
            "event-zh-relabelled",
            "the revocation's Chinese label 吊销 replaced by 正常",
            Box::new(|document| document["steps"][1]["event_zh"] = json!("正常")),
        ),
        (
            "event-relabelled",
            "the revocation's label revoke replaced by reinstate",
            Box::new(|document| document["steps"][1]["event"] = json!("reinstate")),
        ),
        (
            "step-dropped",
            "the revocation's step removed",
            Box::new(|document| {
                document["steps"].as_array_mut().unwrap().pop();
            }),
        ),
        (
            "step-reason-changed",
            "the revocation's reason changed",
            Box::new(|document| document["steps"][1]["reason"] = json!("误操作 a mistake")),
        ),
        (
            "step-transaction-swapped",
            "the revocation's transaction replaced by the issuance's",
            Box::new(|document| {
                document["steps"][1]["transaction"] = document["steps"][0]["transaction"].clone()
            }),
        ),
        (
            "step-inclusion-flipped",
            "one bit of the revocation's inclusion path flipped",
            Box::new(|document| flip_hex(&mut document["steps"][1]["inclusion"]["path"][0])),
        ),
        (
            "licence-changed",
            "the licence record's holder name changed",
            Box::new(|document| {
                let name = document["licence"]["holder_name"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                document["licence"]["holder_name"] = json!(format!("{name}!"));
            }),
        ),
        (
            "wrong-format",
            "format hutong-history/v0",
            Box::new(|document| document["format"] = json!("hutong-history/v0")),
        ),
    ];
    for (name, description, mutate) in history_cases {
        add(
            format!("history.tampered.{name}.json"),
            tampered_vector(
                "history",
                &format!("the honest history, {description}"),
                mutated(&history, mutate),
                options_json(None, None),
            ),
        );
    }

    // A transaction proof: the issuance of the Qingdao licence.
    let Some(Record::Licence(licence)) = present_bundle.records[0].record() else {
        panic!("the bundle proves the licence");
    };
    let issuance = licence.events[0].tx;
    let transaction = get_json(&chain, &format!("/v1/transactions/{issuance}")).await;
    let proof = transaction["proof"].clone();
    add(
        "transaction-proof.honest.issuance.json".into(),
        honest(
            "transaction-proof",
            "the issuance of the Qingdao business licence, in its block and in the log",
            proof.clone(),
            options_json(None, None),
        ),
    );
    let transaction_cases: Vec<Mutation> = vec![
        (
            "height-changed",
            "location.height + 1",
            Box::new(|document| {
                let height = document["location"]["height"].as_u64().unwrap();
                document["location"]["height"] = json!(height + 1);
            }),
        ),
        (
            "index-changed",
            "location.index + 1",
            Box::new(|document| {
                let index = document["location"]["index"].as_u64().unwrap();
                document["location"]["index"] = json!(index + 1);
            }),
        ),
        (
            "log-index-changed",
            "location.log_index + 1",
            Box::new(|document| {
                let index = document["location"]["log_index"].as_u64().unwrap();
                document["location"]["log_index"] = json!(index + 1);
            }),
        ),
        (
            "transaction-changed",
            "the transaction's nonce + 1",
            Box::new(|document| {
                let nonce = document["transaction"]["payload"]["nonce"]
                    .as_u64()
                    .unwrap();
                document["transaction"]["payload"]["nonce"] = json!(nonce + 1);
            }),
        ),
        (
            "inclusion-flipped",
            "one bit of the log inclusion path",
            Box::new(|document| flip_hex(&mut document["inclusion"]["path"][0])),
        ),
        (
            "previous-header-changed",
            "the previous header's time + 1",
            Box::new(|document| {
                let time = document["previous_header"]["time"].as_u64().unwrap();
                document["previous_header"]["time"] = json!(time + 1);
            }),
        ),
        (
            "wrong-format",
            "format hutong-transaction-proof/v1",
            Box::new(|document| document["format"] = json!("hutong-transaction-proof/v1")),
        ),
    ];
    for (name, description, mutate) in transaction_cases {
        add(
            format!("transaction-proof.tampered.{name}.json"),
            tampered_vector(
                "transaction-proof",
                &format!("the honest transaction proof, {description}"),
                mutated(&proof, mutate),
                options_json(None, None),
            ),
        );
    }

    // Checkpoints.
    let checkpoint = get_json(&chain, "/v1/log/checkpoint").await;
    add(
        "checkpoint.honest.head.json".into(),
        honest(
            "checkpoint",
            "the signed head of the log, with the validator hand-over since genesis",
            checkpoint.clone(),
            options_json(None, None),
        ),
    );
    let checkpoint_cases: Vec<Mutation> = vec![
        (
            "header-changed",
            "header time + 1",
            Box::new(|document| {
                let time = document["checkpoint"]["header"]["time"].as_u64().unwrap();
                document["checkpoint"]["header"]["time"] = json!(time + 1);
            }),
        ),
        (
            "certificate-signature-flipped",
            "one bit of a precommit signature",
            Box::new(|document| {
                flip_hex(&mut document["checkpoint"]["certificate"]["signatures"][0]["signature"])
            }),
        ),
        (
            "validator-change-dropped",
            "the hand-over removed",
            Box::new(|document| document["checkpoint"]["validator_changes"] = json!([])),
        ),
        (
            "chain-changed",
            "the header's chain id changed",
            Box::new(|document| {
                document["checkpoint"]["header"]["chain_id"] = json!("another-chain")
            }),
        ),
        (
            "wrong-format",
            "format hutong-checkpoint/v0",
            Box::new(|document| document["format"] = json!("hutong-checkpoint/v0")),
        ),
    ];
    for (name, description, mutate) in checkpoint_cases {
        add(
            format!("checkpoint.tampered.{name}.json"),
            tampered_vector(
                "checkpoint",
                &format!("the honest checkpoint, {description}"),
                mutated(&checkpoint, mutate),
                options_json(None, None),
            ),
        );
    }

    // Consistency of the older checkpoint's log with the head's.
    let first_size = older_checkpoint["checkpoint"]["header"]["log_size"]
        .as_u64()
        .unwrap();
    let second_size = checkpoint["checkpoint"]["header"]["log_size"]
        .as_u64()
        .unwrap();
    let consistency = get_json(
        &chain,
        &format!("/v1/log/consistency?first={first_size}&second={second_size}"),
    )
    .await;
    let consistency_vector = |description: &str, document: Value, tampered: bool| {
        let outcome = consistency_outcome(&document, &genesis);
        assert_eq!(outcome.is_err(), tampered, "{description}: {outcome:?}");
        let mut vector = json!({
            "kind": "consistency",
            "description": description,
            "genesis": "genesis.json",
            "document": document,
        });
        match outcome {
            Err(code) => vector["error"] = json!(code),
            Ok(()) => vector["expected"] = json!({ "consistent": true }),
        }
        vector
    };
    let consistency_document = json!({
        "first_checkpoint": older_checkpoint,
        "second_checkpoint": checkpoint,
        "consistency": consistency,
    });
    add(
        "consistency.honest.json".into(),
        consistency_vector(
            "the log of an older checkpoint is a prefix of the head's",
            consistency_document.clone(),
            false,
        ),
    );
    add(
        "consistency.tampered.path-flipped.json".into(),
        consistency_vector(
            "the honest consistency proof, one bit of its first path entry flipped",
            mutated(&consistency_document, |document| {
                flip_hex(&mut document["consistency"]["proof"]["path"][0])
            }),
            true,
        ),
    );
    add(
        "consistency.tampered.path-truncated.json".into(),
        consistency_vector(
            "the honest consistency proof without its last path entry",
            mutated(&consistency_document, |document| {
                document["consistency"]["proof"]["path"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            }),
            true,
        ),
    );
    add(
        "consistency.tampered.first-root-changed.json".into(),
        consistency_vector(
            "the honest consistency proof, one bit of its first root flipped",
            mutated(&consistency_document, |document| {
                flip_hex(&mut document["consistency"]["first_root"])
            }),
            true,
        ),
    );
    add(
        "consistency.tampered.first-size-changed.json".into(),
        consistency_vector(
            "the honest consistency proof, its first size one less",
            mutated(&consistency_document, |document| {
                let size = &mut document["consistency"]["proof"]["first_size"];
                *size = json!(size.as_u64().unwrap() - 1);
            }),
            true,
        ),
    );
    add(
        "consistency.tampered.second-checkpoint-changed.json".into(),
        consistency_vector(
            "the honest consistency proof, the newer checkpoint's header time + 1",
            mutated(&consistency_document, |document| {
                let header = &mut document["second_checkpoint"]["checkpoint"]["header"];
                header["time"] = json!(header["time"].as_u64().unwrap() + 1);
            }),
            true,
        ),
    );

    // QR payloads.
    let qr_text = String::from_utf8(
        get(
            &chain,
            &format!("/v1/licences/business-licence/{qingdao}/qr?format=text"),
        )
        .await,
    )
    .unwrap();
    let qr = QrPayload::from_text(&qr_text).unwrap();
    let verified_qr = qr.verify_with_genesis(&genesis).unwrap();
    add(
        "qr.honest.business-licence.json".into(),
        json!({
            "kind": "qr",
            "description": "the QR payload of the Qingdao business licence, checked against the genesis file's key of its issuer",
            "genesis": "genesis.json",
            "text": qr_text,
            "expected": verified_qr,
        }),
    );
    let mut forged_qr = qr.clone();
    forged_qr.signature.0[0] ^= 1;
    let body = qr_text.trim_start_matches("HT1:");
    let qr_cases = [
        (
            "signature-flipped",
            "one bit of the signature flipped",
            forged_qr.to_text(),
        ),
        ("prefix-missing", "without its HT1: prefix", body.to_owned()),
        (
            "lower-case",
            "in lower case",
            format!("HT1:{}", body.to_lowercase()),
        ),
        (
            "truncated",
            "cut after a whole number of base32 blocks",
            qr_text[..4 + ((qr_text.len() - 4) / 8 - 1) * 8].to_owned(),
        ),
    ];
    for (name, description, text) in qr_cases {
        let error = QrPayload::from_text(&text)
            .and_then(|payload| payload.verify_with_genesis(&genesis))
            .unwrap_err();
        add(
            format!("qr.tampered.{name}.json"),
            json!({
                "kind": "qr",
                "description": format!("the honest QR payload, {description}"),
                "genesis": "genesis.json",
                "text": text,
                "error": error.code(),
            }),
        );
    }

    // Verdicts: the inputs a bundle proved, a time and a region, and the verdict.
    let head_time = checkpoint["checkpoint"]["header"]["time"].as_u64().unwrap();
    let bundle_of = |value: Value| -> ProofBundle { serde_json::from_value(value).unwrap() };
    let facts = chain.facts.clone();
    let clean = facts.qingdao_numbers[3].to_string();
    let jining = |index: usize| facts.jining_numbers[index].to_string();
    let later = GENESIS_TIME + 3 * DAY_MS;
    let verdict_cases: Vec<(&str, &str, String, Option<&str>, u64)> = vec![
        (
            "valid-in-province",
            "a Qingdao licence used in Qingdao, its own province",
            clean.clone(),
            Some("370200"),
            head_time,
        ),
        (
            "recognised",
            "a Qingdao licence used in Urumqi under Xinjiang's recognition",
            clean.clone(),
            Some("650100"),
            head_time,
        ),
        (
            "not-recognised",
            "a Qingdao licence used in Beijing, where no recognition covers it",
            clean.clone(),
            Some("110100"),
            head_time,
        ),
        (
            "no-region",
            "a Qingdao licence, no region asked",
            clean.clone(),
            None,
            head_time,
        ),
        (
            "not-yet-valid",
            "a Qingdao licence asked about before its validity starts",
            clean.clone(),
            None,
            GENESIS_TIME - 1,
        ),
        (
            "pledged",
            "a Qingdao licence with a pledge registered",
            clean.clone(),
            None,
            later,
        ),
        (
            "disputed",
            "a licence under an open objection",
            facts.disputed.to_string(),
            None,
            head_time,
        ),
        (
            "suspended-retimed",
            "a licence suspended, its suspension retimed by the governors",
            facts.suspended.to_string(),
            None,
            later,
        ),
        (
            "suspended-before-retimed-time",
            "the same licence between the suspension's entered and corrected times",
            facts.suspended.to_string(),
            None,
            GENESIS_TIME + DAY_MS + 1,
        ),
        (
            "revoked",
            "a revoked licence",
            facts.revoked.to_string(),
            None,
            later,
        ),
        (
            "compromised",
            "a Jining licence issued under a key the governors later reported compromised",
            jining(1),
            Some("370100"),
            head_time,
        ),
        (
            "annual-inspection-due",
            "a licence of a type requiring annual inspections, within its first year",
            inspected.to_string(),
            None,
            head_time,
        ),
        (
            "annual-inspection-overdue",
            "the same licence a year and a day after its validity began, never inspected",
            inspected.to_string(),
            None,
            GENESIS_TIME + 366 * DAY_MS,
        ),
    ];
    for (name, description, number, region, at) in verdict_cases {
        let bundle = bundle_of(get_json(&chain, &bundle_uri(&number, region)).await);
        add(
            format!("verdict.honest.{name}.json"),
            verdict_vector(description, &bundle, at, region),
        );
    }
    if let Some(Record::Licence(licence)) = present_bundle.records[0].record()
        && let Some(until) = licence.valid_until
    {
        let bundle = bundle_of(present.clone());
        add(
            "verdict.honest.expired.json".into(),
            verdict_vector(
                "a Qingdao licence asked about at the end of its validity",
                &bundle,
                until,
                Some("650100"),
            ),
        );
    }
    files
}

/// Writes the conformance vectors of docs/vectors/, replacing every JSON file there (a vector no
/// longer made is removed; README.md stays).
async fn write_docs_vectors() {
    let dir = docs_vectors_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|extension| extension == "json")
        {
            std::fs::remove_file(path).unwrap();
        }
    }
    for (name, value) in generate_docs_vectors().await {
        std::fs::write(
            dir.join(name),
            serde_json::to_string_pretty(&value).unwrap() + "\n",
        )
        .unwrap();
    }
}
