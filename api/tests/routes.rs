//! Every route of the router against the demo chain, with its error paths.

mod common;

use axum::http::{Method, StatusCode};
use common::{NOW, QINGDAO_LICENCES, api, api_with, chain};
use hutong_api::ApiConfig;
use hutong_core::crypto::SecretKey;
use hutong_core::log::{Blake3Log, ConsistencyProof, InclusionProof};
use hutong_core::testkit::{CHAIN_ID, GENESIS_TIME, business_licence_body, secret};
use hutong_core::tx::{Transaction, TxBody, TxPayload};
use hutong_verify::qr::QrPayload;
use hutong_verify::{self, ProofBundle, TransactionProof, VerifyOptions};
use serde_json::json;

fn licence_uri(number: &str) -> String {
    format!("/v1/licences/business-licence/{number}")
}

fn first() -> String {
    chain().facts.qingdao_numbers[5].to_string()
}

#[tokio::test]
async fn licence_record_with_history_and_private_fields_as_commitments() {
    let api = api();
    let answer = api.get(&licence_uri(&first())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let view = answer.json();
    assert_eq!(view["type_code"], "business-licence");
    assert_eq!(view["status"], "active");
    assert_eq!(view["within_validity"], true);
    assert_eq!(view["issuer"]["id"], "qd-approval");
    assert_eq!(view["type_name_zh"], "营业执照");
    assert_eq!(view["history"].as_array().unwrap().len(), 1);
    assert!(view["face"]["name"]["clear"].as_str().is_some());

    let person = api
        .get(&format!(
            "/v1/licences/qualification/{}",
            chain().facts.qualification
        ))
        .await
        .json();
    assert!(person["face"]["id_number"]["committed"].as_str().is_some());
    assert!(!person.to_string().contains(&chain().facts.id_number));

    let revoked = api
        .get(&licence_uri(chain().facts.revoked.as_str()))
        .await
        .json();
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["history"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn licence_errors() {
    let api = api();
    api.get(&licence_uri("91370200MA9999999X"))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "licence_not_found");
    api.get("/v1/licences/Business/123")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_path_parameter");
    api.get("/v1/licences/business-licence/a%20b")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_path_parameter");
    api.get("/v1/licences/business-licence/%FF")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_path_parameter");
    let long = "1".repeat(65);
    api.get(&licence_uri(&long))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_path_parameter");
}

#[tokio::test]
async fn verification_verdicts() {
    let api = api();
    let base = format!("{}/verification", licence_uri(&first()));
    let valid = api.get(&base).await.json();
    assert_eq!(valid["valid"], true);
    assert_eq!(valid["valid_in_region"], serde_json::Value::Null);
    assert_eq!(valid["at"], NOW);
    assert!(valid["state"]["height"].as_u64().unwrap() > 0);
    assert!(valid.get("proof").is_none());

    let xinjiang = api.get(&format!("{base}?region=650100")).await.json();
    assert_eq!(xinjiang["valid_in_region"], true);
    assert_eq!(
        xinjiang["recognition"]["id"],
        chain().facts.recognition.to_hex()
    );
    assert!(
        xinjiang["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|reason| reason["code"] == "recognised")
    );

    let shenzhen = api.get(&format!("{base}?region=440300")).await.json();
    assert_eq!(shenzhen["valid"], true);
    assert_eq!(shenzhen["valid_in_region"], false);

    let before = api
        .get(&format!("{base}?at={}", GENESIS_TIME - 1))
        .await
        .json();
    assert_eq!(before["valid"], false);

    let suspended = api
        .get(&format!(
            "{}/verification",
            licence_uri(chain().facts.suspended.as_str())
        ))
        .await
        .json();
    assert_eq!(suspended["valid"], false);
    assert_eq!(suspended["status"], "suspended");

    let disputed = api
        .get(&format!(
            "{}/verification",
            licence_uri(chain().facts.disputed.as_str())
        ))
        .await
        .json();
    assert_eq!(disputed["valid"], true);
    assert_eq!(
        disputed["open_objections"][0]["id"],
        chain().facts.objection.to_hex()
    );
}

#[tokio::test]
async fn verification_errors() {
    let api = api();
    let base = format!("{}/verification", licence_uri(&first()));
    api.get(&format!("{base}?region=65"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_query");
    api.get(&format!("{base}?at=yesterday"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_query");
    api.get(&format!("{base}?colour=red"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_query");
    api.get("/v1/licences/business-licence/91370200MA9999999X/verification")
        .await
        .assert_problem(StatusCode::NOT_FOUND, "licence_not_found");
}

#[tokio::test]
async fn verification_with_proof_verifies_offline_to_the_same_verdict() {
    let api = api();
    let answer = api
        .get(&format!(
            "{}/verification?region=650100&proof=true",
            licence_uri(&first())
        ))
        .await
        .json();
    let bundle: ProofBundle = serde_json::from_value(answer["proof"].clone()).unwrap();
    let options = VerifyOptions {
        at: Some(NOW),
        region: Some(hutong_core::testkit::region("650100")),
        ..VerifyOptions::historical()
    };
    let verified =
        hutong_verify::verify_bundle_with(&bundle, &chain().fixture.genesis, &options).unwrap();
    let verdict = verified.verdict.unwrap();
    assert!(verdict.valid);
    assert_eq!(verdict.valid_in_region, Some(true));
    assert_eq!(
        serde_json::to_value(&verdict.reasons).unwrap(),
        answer["reasons"]
    );
}

#[tokio::test]
async fn proof_of_absence() {
    let api = api();
    let answer = api
        .get(&format!("{}/proof", licence_uri("91370200MA9999999X")))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let bundle: ProofBundle = serde_json::from_slice(&answer.body).unwrap();
    let verified = hutong_verify::verify_bundle_with(
        &bundle,
        &chain().fixture.genesis,
        &VerifyOptions::historical(),
    )
    .unwrap();
    assert!(verified.licence.is_none());
    assert!(verified.verdict.is_none());
    api.get(&format!("{}/proof?region=x", licence_uri(&first())))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn holders_one_query_for_everything_and_pagination() {
    let api = api();
    let number = first();
    let holder = api
        .get(&format!("/v1/holders/{number}/licences"))
        .await
        .json();
    assert_eq!(holder["items"].as_array().unwrap().len(), 1);
    assert_eq!(holder["items"][0]["number"], number.as_str());
    assert_eq!(holder["next_cursor"], serde_json::Value::Null);

    let person = chain().facts.person.to_hex();
    let person_page = api
        .get(&format!("/v1/holders/{person}/licences?limit=1"))
        .await
        .json();
    assert_eq!(person_page["items"][0]["type_code"], "qualification");
    let cursor = person_page["next_cursor"].as_str().unwrap();
    let rest = api
        .get(&format!(
            "/v1/holders/{person}/licences?limit=1&cursor={cursor}"
        ))
        .await
        .json();
    assert_eq!(rest["items"].as_array().unwrap().len(), 0);

    api.get("/v1/holders/not-a-holder/licences")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_path_parameter");
    api.get(&format!("/v1/holders/{number}/licences?limit=0"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "limit_out_of_range");
    api.get(&format!("/v1/holders/{number}/licences?limit=1000"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "limit_out_of_range");
    api.get(&format!("/v1/holders/{number}/licences?cursor=%21%21"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_cursor");
}

#[tokio::test]
async fn search_walks_every_page_once() {
    let api = api();
    let mut seen = std::collections::BTreeSet::new();
    let mut uri = "/v1/licences?type=business-licence&limit=100".to_owned();
    let mut pages = 0;
    loop {
        let page = api.get(&uri).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let page = page.json();
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["type_code"], "business-licence");
            assert!(seen.insert(item["number"].as_str().unwrap().to_owned()));
        }
        pages += 1;
        assert!(pages < 20, "pagination does not end");
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                uri = format!("/v1/licences?type=business-licence&limit=100&cursor={cursor}")
            }
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, QINGDAO_LICENCES + 5);

    let revoked = api
        .get("/v1/licences?issuer=qd-approval&status=revoked")
        .await
        .json();
    assert_eq!(revoked["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        revoked["items"][0]["number"],
        chain().facts.revoked.as_str()
    );

    let jining = api.get("/v1/licences?region=370800").await.json();
    assert_eq!(jining["items"].as_array().unwrap().len(), 5);

    let qualifications = api.get("/v1/licences?type=qualification").await.json();
    assert_eq!(qualifications["items"].as_array().unwrap().len(), 1);

    api.get("/v1/licences?status=lost")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_query");
    api.get("/v1/licences?owner=me")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_query");
    api.get("/v1/licences?issuer=QD")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_path_parameter");
}

#[tokio::test]
async fn qr_code_and_presentations() {
    let api = api();
    let base = format!("{}/qr", licence_uri(&first()));
    let svg = api.get(&base).await;
    assert_eq!(svg.status, StatusCode::OK);
    assert_eq!(svg.content_type(), "image/svg+xml");
    assert!(svg.text().contains("<svg"));
    let png = api.get(&format!("{base}?format=png")).await;
    assert_eq!(png.content_type(), "image/png");
    assert_eq!(&png.body[..4], b"\x89PNG");
    api.get(&format!("{base}?format=gif"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_query");

    let answer = api.get(&format!("{base}?format=text")).await;
    assert_eq!(answer.status, StatusCode::OK);
    // The payload itself, as a scanner reads it from the code, not wrapped in JSON.
    assert_eq!(answer.content_type(), "text/plain; charset=utf-8");
    let text = answer.text();
    assert!(text.starts_with("HT1:"));
    // Offline: the genesis file alone checks the issuer's signature.
    let payload = QrPayload::from_text(&text).unwrap();
    let signed = payload
        .verify_with_genesis(&chain().fixture.genesis)
        .unwrap();
    assert_eq!(signed.number.as_str(), first());
    // The code does not change when the status does: the revoked licence's code is its
    // issuance's.
    let revoked_text = api
        .get(&format!(
            "{}/qr?format=text",
            licence_uri(chain().facts.revoked.as_str())
        ))
        .await
        .text();
    let revoked = QrPayload::from_text(&revoked_text).unwrap();
    assert!(matches!(revoked.payload.body, TxBody::IssueLicence { .. }));

    let answer = api
        .post_json(
            "/v1/presentations/verify",
            &json!({ "payload": text, "region": "650100" }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let view = answer.json();
    assert_eq!(view["authentic"], true);
    assert_eq!(view["recorded"], true);
    assert_eq!(view["verification"]["valid_in_region"], true);

    let revoked_view = api
        .post_json(
            "/v1/presentations/verify",
            &json!({ "payload": revoked_text }),
        )
        .await
        .json();
    assert_eq!(revoked_view["authentic"], true);
    assert_eq!(revoked_view["verification"]["valid"], false);

    // A forged payload: the signature no longer verifies.
    let mut forged = payload.clone();
    forged.signature.0[10] ^= 1;
    let forged_view = api
        .post_json(
            "/v1/presentations/verify",
            &json!({ "payload": forged.to_text() }),
        )
        .await
        .json();
    assert_eq!(forged_view["authentic"], false);
    assert_eq!(forged_view["recorded"], false);
    assert!(
        forged_view["authenticity_error"]
            .as_str()
            .unwrap()
            .starts_with("bad-signature")
    );

    // The issued height is outside the signature: a changed one still verifies offline but is
    // not what the ledger recorded.
    let mut moved = payload.clone();
    moved.issued_height += 1;
    let moved_view = api
        .post_json(
            "/v1/presentations/verify",
            &json!({ "payload": moved.to_text() }),
        )
        .await
        .json();
    assert_eq!(moved_view["authentic"], true);
    assert_eq!(moved_view["recorded"], false);
    assert_eq!(moved_view["verification"], serde_json::Value::Null);

    api.post_json("/v1/presentations/verify", &json!({ "payload": "HELLO" }))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_qr_payload");
    api.post_json(
        "/v1/presentations/verify",
        &json!({ "payload": text, "extra": 1 }),
    )
    .await
    .assert_problem(StatusCode::BAD_REQUEST, "invalid_body");
}

#[tokio::test]
async fn presented_private_field_against_its_commitment() {
    let api = api();
    let facts = &chain().facts;
    let text = api
        .get(&format!(
            "/v1/licences/qualification/{}/qr?format=text",
            facts.qualification
        ))
        .await
        .text();
    let salt = hex::encode(facts.salt);
    let good = api
        .post_json(
            "/v1/presentations/verify",
            &json!({ "payload": text, "field": { "name": "id_number", "value": facts.id_number, "salt": salt } }),
        )
        .await
        .json();
    assert_eq!(good["field"]["matches"], true, "{good}");
    let wrong = api
        .post_json(
            "/v1/presentations/verify",
            &json!({ "payload": text, "field": { "name": "id_number", "value": "370202199001019999", "salt": salt } }),
        )
        .await
        .json();
    assert_eq!(wrong["field"]["matches"], false);
    api.post_json(
        "/v1/presentations/verify",
        &json!({ "payload": text, "field": { "name": "id_number", "value": "x", "salt": "zz" } }),
    )
    .await
    .assert_problem(StatusCode::BAD_REQUEST, "invalid_salt");
}

fn signed(signer: &str, key: &SecretKey, nonce: u64, body: TxBody) -> Transaction {
    let payload = TxPayload {
        chain_id: CHAIN_ID.into(),
        signer: signer.into(),
        nonce,
        created_at: GENESIS_TIME,
        body,
    };
    let signer = signer.into();
    Transaction::sign(hutong_core::testkit::SUITE, payload, &[(&signer, key)]).unwrap()
}

#[tokio::test]
async fn submitting_transactions() {
    let api = api();
    // The next nonce of each signer, as the node reports it.
    let nonces = api.get("/v1/authorities/qd-approval/nonce").await.json();
    let next = nonces["next"].as_u64().unwrap();
    assert_eq!(nonces["last_committed"].as_u64().unwrap() + 1, next);
    api.get("/v1/authorities/nobody/nonce")
        .await
        .assert_problem(StatusCode::NOT_FOUND, "authority_not_found");
    let next_of = |answer: serde_json::Value| answer["next"].as_u64().unwrap();
    let jn_next = next_of(api.get("/v1/authorities/jn-approval/nonce").await.json());
    let market_next = next_of(api.get("/v1/authorities/qd-market/nonce").await.json());
    let issuance = signed(
        "qd-approval",
        &secret("qd-approval"),
        next,
        business_licence_body("370200", 900_001),
    );
    let answer = api
        .post_json(
            "/v1/transactions",
            &serde_json::to_value(&issuance).unwrap(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
    let id = issuance.id(hutong_core::testkit::SUITE).to_hex();
    assert_eq!(answer.json()["id"], id.as_str());
    let status = api.get(&format!("/v1/transactions/{id}")).await.json();
    assert_eq!(status["state"], "pending");

    // The same again: a conflict.
    api.post_json(
        "/v1/transactions",
        &serde_json::to_value(&issuance).unwrap(),
    )
    .await
    .assert_problem(StatusCode::CONFLICT, "duplicate_transaction");

    // The canonical binary encoding.
    let binary = signed(
        "qd-approval",
        &secret("qd-approval"),
        next + 1,
        business_licence_body("370200", 900_002),
    );
    let answer = api
        .request(
            Method::POST,
            "/v1/transactions",
            Some("application/octet-stream"),
            binary.to_bytes(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
    // Both wait in the mempool: the next nonce counts them.
    let waiting = api.get("/v1/authorities/qd-approval/nonce").await.json();
    assert_eq!(waiting["next"].as_u64().unwrap(), next + 2);
    // A nonce far beyond the next is refused.
    let far = signed(
        "qd-approval",
        &secret("qd-approval"),
        next + 5_000,
        business_licence_body("370200", 900_007),
    );
    api.post_json("/v1/transactions", &serde_json::to_value(&far).unwrap())
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "nonce_gap");

    // Rule rejections: 422 with the rule's code, and the node remembers why.
    let not_granted = signed(
        "jn-approval",
        &secret("jn-approval"),
        jn_next,
        business_licence_body("370200", 900_003),
    );
    api.post_json(
        "/v1/transactions",
        &serde_json::to_value(&not_granted).unwrap(),
    )
    .await
    .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "not_granted");
    let rejected = api
        .get(&format!(
            "/v1/transactions/{}",
            not_granted.id(hutong_core::testkit::SUITE)
        ))
        .await
        .json();
    assert_eq!(rejected["state"], "rejected");
    assert_eq!(rejected["code"], "not_granted");
    let no_role = signed(
        "qd-market",
        &secret("qd-market"),
        market_next,
        business_licence_body("370200", 900_004),
    );
    api.post_json("/v1/transactions", &serde_json::to_value(&no_role).unwrap())
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "missing_role");
    let duplicate_licence = signed(
        "qd-approval",
        &secret("qd-approval"),
        next + 2,
        business_licence_body("370200", 1),
    );
    api.post_json(
        "/v1/transactions",
        &serde_json::to_value(&duplicate_licence).unwrap(),
    )
    .await
    .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "duplicate_licence");

    // Signed with the wrong key, or by nobody the ledger knows: 403.
    let forged = signed(
        "qd-approval",
        &secret("impostor"),
        next + 2,
        business_licence_body("370200", 900_005),
    );
    api.post_json("/v1/transactions", &serde_json::to_value(&forged).unwrap())
        .await
        .assert_problem(StatusCode::FORBIDDEN, "bad_signature");
    let stranger = signed(
        "stranger",
        &secret("stranger"),
        1,
        business_licence_body("370200", 900_006),
    );
    api.post_json(
        "/v1/transactions",
        &serde_json::to_value(&stranger).unwrap(),
    )
    .await
    .assert_problem(StatusCode::FORBIDDEN, "unknown_authority");
}

#[tokio::test]
async fn malformed_transactions() {
    let api = api();
    let issuance = signed(
        "qd-approval",
        &secret("qd-approval"),
        2_000_000,
        business_licence_body("370200", 910_001),
    );
    let mut value = serde_json::to_value(&issuance).unwrap();
    value["payload"]["colour"] = json!("red");
    api.post_json("/v1/transactions", &value)
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_body");
    api.request(
        Method::POST,
        "/v1/transactions",
        Some("application/json"),
        b"{\"payload\":".to_vec(),
    )
    .await
    .assert_problem(StatusCode::BAD_REQUEST, "invalid_body");
    api.request(
        Method::POST,
        "/v1/transactions",
        Some("application/octet-stream"),
        vec![0xff; 40],
    )
    .await
    .assert_problem(StatusCode::BAD_REQUEST, "malformed_transaction");
    api.request(
        Method::POST,
        "/v1/transactions",
        Some("text/plain"),
        b"hello".to_vec(),
    )
    .await
    .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let mut unsigned = issuance.clone();
    unsigned.signatures.clear();
    api.post_json(
        "/v1/transactions",
        &serde_json::to_value(&unsigned).unwrap(),
    )
    .await
    .assert_problem(StatusCode::BAD_REQUEST, "malformed_transaction");
    // Past the body limit.
    let oversize = vec![b' '; ApiConfig::default().body_bytes_max + 1];
    api.request(
        Method::POST,
        "/v1/transactions",
        Some("application/json"),
        oversize,
    )
    .await
    .assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    // Within the body limit, past the transaction limit.
    let mut huge = issuance.clone();
    if let TxBody::IssueLicence { holder_name, .. } = &mut huge.payload.body {
        *holder_name = "x".repeat(40_000);
    }
    api.post_json("/v1/transactions", &serde_json::to_value(&huge).unwrap())
        .await
        .assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "transaction_too_large");
}

#[tokio::test]
async fn full_mempool_asks_to_retry() {
    let api = api_with(ApiConfig::default(), 0);
    let issuance = signed(
        "qd-approval",
        &secret("qd-approval"),
        3_000_000,
        business_licence_body("370200", 920_001),
    );
    let answer = api
        .post_json(
            "/v1/transactions",
            &serde_json::to_value(&issuance).unwrap(),
        )
        .await;
    answer.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "mempool_full");
    assert_eq!(answer.headers["retry-after"], "2");
}

#[tokio::test]
async fn committed_transaction_with_inclusion_proof() {
    let api = api();
    let licence = hutong_core::testkit::uscc("370200", 7);
    let id = chain()
        .store
        .licence(
            &"business-licence".into(),
            &licence.to_string().as_str().into(),
        )
        .unwrap()
        .unwrap()
        .events[0]
        .tx;
    let answer = api.get(&format!("/v1/transactions/{id}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let view = answer.json();
    assert_eq!(view["state"], "committed");
    let proof: TransactionProof = serde_json::from_value(view["proof"].clone()).unwrap();
    let genesis = &chain().fixture.genesis;
    let verified = hutong_verify::verify_transaction_proof(&proof, genesis).unwrap();
    assert_eq!(verified.id, id);
    assert_eq!(verified.location, proof.location);
    // The checkpoint is the transaction's own block's.
    assert_eq!(verified.checkpoint.height, proof.location.height);
    assert_eq!(
        proof.checkpoint.header.height,
        view["height"].as_u64().unwrap()
    );

    // Every field of the place is bound: a proof with any of them changed is refused.
    let refused = |what: &str, change: &dyn Fn(&mut TransactionProof)| {
        let mut forged = proof.clone();
        change(&mut forged);
        let error = hutong_verify::verify_transaction_proof(&forged, genesis)
            .expect_err(&format!("a proof with {what} changed verified"));
        error.code()
    };
    assert_eq!(
        refused("the height", &|p| p.location.height += 1),
        "position-mismatch"
    );
    assert_eq!(
        refused("the height", &|p| p.location.height -= 1),
        "position-mismatch"
    );
    assert_eq!(
        refused("the index", &|p| p.location.index += 1),
        "position-mismatch"
    );
    assert_eq!(
        refused("the log index", &|p| p.location.log_index += 1),
        "position-mismatch"
    );
    assert_eq!(
        refused("index and log index together", &|p| {
            p.location.index += 1;
            p.location.log_index += 1;
        }),
        "position-mismatch"
    );
    assert_eq!(
        refused("the previous header", &|p| p.previous_header.time += 1),
        "position-mismatch"
    );
    assert_eq!(
        refused("the tx_root path", &|p| {
            p.block_inclusion
                .path
                .push(hutong_core::hash::Hash32::default())
        }),
        "block-inclusion/proof_too_long"
    );

    api.get(&format!("/v1/transactions/{}", "0".repeat(64)))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "transaction_not_found");
    api.get("/v1/transactions/abc")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_path_parameter");
}

#[tokio::test]
async fn node_probes_and_metrics() {
    let api = api();
    let node = api.get("/v1/node").await.json();
    assert_eq!(node["chain_id"], CHAIN_ID);
    assert_eq!(node["role"], "validator");
    assert_eq!(node["syncing"], false);
    assert_eq!(
        node["height"].as_u64().unwrap(),
        chain().store.height().unwrap()
    );
    assert_eq!(api.get("/healthz").await.json()["status"], "ok");
    assert_eq!(api.get("/readyz").await.json()["status"], "ready");
    api.node.set_ready(false);
    api.get("/readyz")
        .await
        .assert_problem(StatusCode::SERVICE_UNAVAILABLE, "not_ready");
    api.node.set_ready(true);
    let metrics = api.get("/metrics").await;
    assert!(metrics.content_type().starts_with("text/plain"));
    let text = metrics.text();
    assert!(text.contains("hutong_mempool_transactions 0"));
    assert!(text.contains("hutong_api_requests_total"));
}

/// A node cut off from the chain hands no verifier an answer about a licence (ADR 0037): its
/// licence routes and pages answer 503 `stale` naming its height and the network's it last
/// saw, `/readyz` fails, and what does not change with time (blocks, checkpoints) stays served.
#[tokio::test]
async fn a_stale_node_answers_no_verifier_and_is_not_ready() {
    let api = api();
    let number = first();
    api.node.set_staleness(Some(hutong_api::Staleness::NoPeers));
    let height = chain().store.height().unwrap();
    for uri in [
        licence_uri(&number),
        format!("{}/verification", licence_uri(&number)),
        format!("{}/proof", licence_uri(&number)),
        format!("{}/qr", licence_uri(&number)),
        "/v1/licences?name=x".to_owned(),
        "/v1/holders/91370200MA00000015/licences".to_owned(),
        format!("/explorer/licences/business-licence/{number}"),
        "/explorer/search?q=x".to_owned(),
    ] {
        let answer = api.get(&uri).await;
        answer.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "stale");
        let problem = answer.json();
        assert_eq!(problem["height"], height, "{uri}: {problem}");
        assert!(answer.headers.contains_key("retry-after"), "{uri}");
        assert!(
            problem["detail"].as_str().unwrap().contains("no peer"),
            "{problem}"
        );
    }
    api.get("/readyz")
        .await
        .assert_problem(StatusCode::SERVICE_UNAVAILABLE, "stale");
    assert_eq!(api.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(api.get("/v1/blocks/1").await.status, StatusCode::OK);
    assert_eq!(api.get("/v1/log/checkpoint").await.status, StatusCode::OK);
    assert!(
        api.get("/metrics")
            .await
            .text()
            .contains("hutong_api_stale_total 8")
    );

    api.node
        .set_staleness(Some(hutong_api::Staleness::LastBlockTooOld {
            block_time: GENESIS_TIME,
            age_ms: 400_000,
            limit_ms: 300_000,
        }));
    let answer = api.get(&licence_uri(&number)).await;
    answer.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "stale");
    assert!(
        answer.json()["detail"]
            .as_str()
            .unwrap()
            .contains("400000 ms old")
    );

    api.node.set_staleness(None);
    assert_eq!(api.get(&licence_uri(&number)).await.status, StatusCode::OK);
    assert_eq!(api.get("/readyz").await.json()["status"], "ready");
}

#[tokio::test]
async fn a_trusted_height_above_the_head_is_refused() {
    let api = api();
    let above = chain().store.height().unwrap() + 1;
    api.get(&format!("/v1/log/checkpoint?trusted_height={above}"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "trusted_height_out_of_range");
    api.get(&format!(
        "{}/proof?trusted_height={above}",
        licence_uri(&first())
    ))
    .await
    .assert_problem(StatusCode::BAD_REQUEST, "trusted_height_out_of_range");
}

#[tokio::test]
async fn blocks_and_pages() {
    let api = api();
    let head = chain().store.height().unwrap();
    let block = api.get("/v1/blocks/1").await.json();
    assert_eq!(block["block"]["header"]["height"], 1);
    assert_eq!(
        block["block"]["certificate"]["signatures"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    api.get(&format!("/v1/blocks/{}", head + 1))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "block_not_found");
    api.get("/v1/blocks/-1")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_path_parameter");
    let page = api.get("/v1/blocks?from=0&limit=2").await.json();
    assert_eq!(page["items"][0]["header"]["height"], 0);
    assert_eq!(page["next_from"], 2);
    let last = api
        .get(&format!("/v1/blocks?from={head}&limit=5"))
        .await
        .json();
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
    assert_eq!(last["next_from"], serde_json::Value::Null);
    api.get("/v1/blocks?from=x")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn log_checkpoint_inclusion_and_consistency() {
    let api = api();
    let document = api.get("/v1/log/checkpoint").await;
    let verified = hutong_verify::verify_json(
        &document.body,
        &chain().fixture.genesis,
        &VerifyOptions::historical(),
    )
    .unwrap();
    let hutong_verify::Verified::Checkpoint(checkpoint) = verified else {
        panic!("a checkpoint");
    };
    assert_eq!(checkpoint.height, chain().store.height().unwrap());

    let licence = chain()
        .store
        .licence(
            &"business-licence".into(),
            &chain().facts.qingdao_numbers[3],
        )
        .unwrap()
        .unwrap();
    let id = licence.events[0].tx;
    let inclusion = api
        .get(&format!(
            "/v1/log/inclusion?hash={id}&size={}",
            checkpoint.log_size
        ))
        .await
        .json();
    assert_eq!(inclusion["format"], "hutong-log-inclusion/v1");
    let proof: InclusionProof = serde_json::from_value(inclusion["proof"].clone()).unwrap();
    let leaf: hutong_core::hash::Hash32 =
        serde_json::from_value(inclusion["leaf_hash"].clone()).unwrap();
    proof
        .verify(&Blake3Log, &leaf, &checkpoint.log_root)
        .unwrap();
    // The answer carries the transaction and the signed checkpoint its root is tied to.
    let transaction: hutong_core::tx::Transaction =
        serde_json::from_value(inclusion["transaction"].clone()).unwrap();
    let signed: hutong_verify::Checkpoint =
        serde_json::from_value(inclusion["checkpoint"].clone()).unwrap();
    let genesis = &chain().fixture.genesis;
    let (tied, proved_id) =
        hutong_verify::verify_log_inclusion(&transaction, &proof, &signed, genesis).unwrap();
    assert_eq!((proved_id, tied.log_root), (id, checkpoint.log_root));
    // Another transaction is not proved by the same path, nor the path by an altered root.
    let other_id = chain()
        .store
        .licence(
            &"business-licence".into(),
            &chain().facts.qingdao_numbers[4],
        )
        .unwrap()
        .unwrap()
        .events[0]
        .tx;
    let other = chain().store.transaction(&other_id).unwrap().unwrap().0;
    let error = hutong_verify::verify_log_inclusion(&other, &proof, &signed, genesis).unwrap_err();
    assert_eq!(error.code(), "inclusion/root_mismatch");
    let mut unsigned = signed.clone();
    unsigned.header.log_root = hutong_core::hash::Hash32::default();
    assert!(hutong_verify::verify_log_inclusion(&transaction, &proof, &unsigned, genesis).is_err());
    // A size no block ends with has no signed root.
    let sizes: Vec<u64> = (0..=checkpoint.height)
        .map(|height| chain().store.header(height).unwrap().unwrap().log_size)
        .collect();
    let leaf_index = chain().store.transaction(&id).unwrap().unwrap().1.log_index;
    let between = (leaf_index + 1..checkpoint.log_size)
        .find(|size| !sizes.contains(size))
        .expect("a size inside a block");
    api.get(&format!("/v1/log/inclusion?hash={id}&size={between}"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "size_not_a_checkpoint");
    api.get(&format!("/v1/log/inclusion?hash={id}&size=2"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "transaction_after_size");
    api.get(&format!(
        "/v1/log/inclusion?hash={id}&size={}",
        checkpoint.log_size + 1
    ))
    .await
    .assert_problem(StatusCode::BAD_REQUEST, "size_beyond_log");
    api.get("/v1/log/inclusion?hash=nope")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_query");
    api.get(&format!("/v1/log/inclusion?hash={}", "1".repeat(64)))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "transaction_not_found");

    let consistency = api.get("/v1/log/consistency?first=100").await.json();
    let proof: ConsistencyProof = serde_json::from_value(consistency["proof"].clone()).unwrap();
    let first_root = serde_json::from_value(consistency["first_root"].clone()).unwrap();
    hutong_verify::verify_log_consistency(
        hutong_core::testkit::SUITE,
        &proof,
        &first_root,
        &checkpoint.log_root,
    )
    .unwrap();
    api.get("/v1/log/consistency?first=10&second=5")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "sizes_out_of_order");
    api.get(&format!(
        "/v1/log/consistency?first=1&second={}",
        checkpoint.log_size + 1
    ))
    .await
    .assert_problem(StatusCode::BAD_REQUEST, "size_beyond_log");
    api.get("/v1/log/consistency")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn export_streams_and_resumes() {
    let config = ApiConfig {
        export_blocks_max: 2,
        ..ApiConfig::default()
    };
    let api = api_with(config, 10);
    let answer = api.get("/v1/export?from=1").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type(), "application/x-ndjson");
    assert_eq!(answer.headers["hutong-export-next-from"], "3");
    let lines: Vec<serde_json::Value> = answer
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["block"]["header"]["height"], 2);
    let resumed = api.get("/v1/export?from=3&to=3").await;
    assert!(resumed.headers.get("hutong-export-next-from").is_none());
    assert_eq!(resumed.text().lines().count(), 1);
    api.get("/v1/export?from=5&to=4")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "range_out_of_order");
}

#[tokio::test]
async fn authorities_catalogue_and_recognitions() {
    let api = api();
    let page = api.get("/v1/authorities?limit=4").await.json();
    assert_eq!(page["items"].as_array().unwrap().len(), 4);
    assert!(page["items"][0]["keys"][0]["key"].as_str().is_some());
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = api
        .get(&format!("/v1/authorities?limit=100&cursor={cursor}"))
        .await
        .json();
    assert_eq!(rest["items"].as_array().unwrap().len(), 5);
    api.get("/v1/authorities?cursor=BAD")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_cursor");

    let actions = api.get("/v1/authorities/qd-market/actions").await.json();
    assert_eq!(actions["items"][0]["kind"], "change_status");
    assert_eq!(actions["items"][0]["submitted"], true);
    let governor = api
        .get("/v1/authorities/gov-b/actions?limit=1")
        .await
        .json();
    assert_eq!(governor["items"][0]["kind"], "change_validators");
    assert_eq!(governor["items"][0]["submitted"], false);
    let issuer = api
        .get("/v1/authorities/qd-approval/actions?limit=2")
        .await
        .json();
    let cursor = issuer["next_cursor"].as_str().unwrap();
    let next = api
        .get(&format!(
            "/v1/authorities/qd-approval/actions?limit=2&cursor={cursor}"
        ))
        .await
        .json();
    assert_ne!(next["items"][0], issuer["items"][0]);
    api.get("/v1/authorities/nobody/actions")
        .await
        .assert_problem(StatusCode::NOT_FOUND, "authority_not_found");
    api.get("/v1/authorities/qd-approval/actions?cursor=12")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_cursor");

    let types = api.get("/v1/licence-types").await.json();
    assert_eq!(types["items"].as_array().unwrap().len(), 2);
    let xinjiang = api.get("/v1/recognitions?region=650100").await.json();
    assert_eq!(xinjiang["items"].as_array().unwrap().len(), 1);
    let guangdong = api.get("/v1/recognitions?region=440300").await.json();
    assert_eq!(guangdong["items"].as_array().unwrap().len(), 0);
    api.get("/v1/recognitions?region=1")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let config = ApiConfig {
        client_requests_per_second: 1,
        client_burst: 2,
        ..ApiConfig::default()
    };
    let api = api_with(config, 10);
    let uri = format!("{}/verification", licence_uri(&first()));
    assert_eq!(api.get(&uri).await.status, StatusCode::OK);
    assert_eq!(api.get(&uri).await.status, StatusCode::OK);
    let limited = api.get(&uri).await;
    limited.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(limited.headers["retry-after"], "1");
    // Probes are not rate limited.
    assert_eq!(api.get("/healthz").await.status, StatusCode::OK);
}

/// Behind the operator's reverse proxy each client has its own bucket, named by the address
/// the proxy appended to `X-Forwarded-For`; a client that writes the header itself, directly
/// or through the proxy, cannot choose its bucket.
#[tokio::test]
async fn the_rate_limit_believes_x_forwarded_for_only_from_trusted_proxies() {
    let proxy: std::net::IpAddr = "10.0.0.1".parse().unwrap();
    let inner_proxy: std::net::IpAddr = "10.0.0.2".parse().unwrap();
    let config = ApiConfig {
        client_requests_per_second: 1,
        client_burst: 1,
        trusted_proxies: vec![proxy, inner_proxy],
        ..ApiConfig::default()
    };
    let api = api_with(config, 10);
    let uri = format!("{}/verification", licence_uri(&first()));
    let from = |address: std::net::IpAddr| std::net::SocketAddr::new(address, 40000);
    let status = |answer: common::Answer| answer.status;
    // Until the bucket of `forwarded` (through the proxy) is empty.
    let exhaust = async |forwarded: &str| {
        for _ in 0..4 {
            let answer = api
                .get_from(from(proxy), &uri, &[("x-forwarded-for", forwarded)])
                .await;
            if answer.status == StatusCode::TOO_MANY_REQUESTS {
                return;
            }
        }
        panic!("the bucket of {forwarded} never ran out");
    };
    exhaust("203.0.113.7").await;
    // Another client behind the same proxy has a bucket of its own.
    let other = api
        .get_from(from(proxy), &uri, &[("x-forwarded-for", "203.0.113.8")])
        .await;
    assert_eq!(status(other), StatusCode::OK);
    // A client that writes the header itself is still the address the proxy appended, and so
    // is one behind a second trusted proxy.
    for forwarded in ["198.51.100.1, 203.0.113.7", "203.0.113.7, 10.0.0.2"] {
        let answer = api
            .get_from(from(proxy), &uri, &[("x-forwarded-for", forwarded)])
            .await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS, "{forwarded}");
    }
    // From any other address the header is not believed: the peer address is the bucket.
    let stranger: std::net::IpAddr = "192.0.2.50".parse().unwrap();
    let mut refused = false;
    for attempt in 0..4 {
        let answer = api
            .get_from(
                from(stranger),
                &uri,
                &[("x-forwarded-for", &format!("198.51.100.{attempt}"))],
            )
            .await;
        refused |= answer.status == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(refused, "a stranger changed its bucket with the header");
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let api = api();
    api.get("/v2/anything")
        .await
        .assert_problem(StatusCode::NOT_FOUND, "route_not_found");
    api.request(Method::DELETE, "/v1/node", None, Vec::new())
        .await
        .assert_problem(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn explorer_pages() {
    let api = api();
    let home = api.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.content_type().starts_with("text/html"));
    let text = home.text();
    assert!(text.contains("核验 Verify") && text.contains("最新区块 · Latest blocks"));
    assert!(!text.contains("<script"));

    let page = api
        .get(&format!(
            "/explorer/licences/business-licence/{}?region=650100",
            first()
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let text = page.text();
    assert!(text.contains("有效 · Valid"), "{text}");
    assert!(text.contains("历史 · History") && text.contains("<svg"));
    let revoked = api
        .get(&format!(
            "/explorer/licences/business-licence/{}",
            chain().facts.revoked
        ))
        .await
        .text();
    assert!(revoked.contains("无效 · Not valid"));

    let redirect = api
        .get(&format!(
            "/explorer/search?type=business-licence&number={}&region=650100",
            first()
        ))
        .await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER);
    assert_eq!(
        redirect.headers["location"],
        format!(
            "/explorer/licences/business-licence/{}?region=650100",
            first()
        )
        .as_str()
    );
    let payload = api
        .get(&format!("{}/qr?format=text", licence_uri(&first())))
        .await
        .text();
    let by_payload = api
        .get(&format!("/explorer/search?payload={payload}"))
        .await;
    assert_eq!(by_payload.status, StatusCode::SEE_OTHER);
    let missing = api
        .get("/explorer/search?type=business-licence&number=")
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.text().contains("请输入证照编号"));
    let unknown = api
        .get("/explorer/licences/business-licence/91370200MA9999999X")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.content_type().starts_with("text/html"));

    let block = api.get("/explorer/blocks/1").await;
    assert_eq!(block.status, StatusCode::OK);
    assert!(block.text().contains("issue_licence"));
    assert_eq!(
        api.get("/explorer/blocks/999999").await.status,
        StatusCode::NOT_FOUND
    );
    let authorities = api.get("/explorer/authorities").await.text();
    assert!(authorities.contains("青岛市行政审批服务局"));
}

/// The document lists exactly the routes of the issue, and the router serves every path and
/// method the document lists.
#[tokio::test]
async fn openapi_document_matches_the_router() {
    let api = api();
    let document = api.get("/openapi.json").await.json();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut documented = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                documented.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    documented.sort();
    let mut expected: Vec<String> = [
        "GET /v1/licences/{type}/{number}",
        "GET /v1/licences/{type}/{number}/verification",
        "GET /v1/licences/{type}/{number}/proof",
        "GET /v1/holders/{holder}/licences",
        "GET /v1/holders/{holder}/licences/proof",
        "GET /v1/licences",
        "GET /v1/licences/{type}/{number}/qr",
        "POST /v1/presentations/verify",
        "POST /v1/transactions",
        "GET /v1/transactions/{hash}",
        "GET /v1/node",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "GET /openapi.json",
        "GET /v1/blocks/{height}",
        "GET /v1/blocks",
        "GET /v1/log/checkpoint",
        "GET /v1/log/inclusion",
        "GET /v1/log/consistency",
        "POST /v1/log/cosignatures",
        "GET /v1/export",
        "GET /v1/authorities",
        "GET /v1/authorities/{id}/actions",
        "GET /v1/authorities/{id}/nonce",
        "GET /v1/licence-types",
        "GET /v1/recognitions",
        "GET /v1/evidence",
        "GET /v1/evidence/{validator}/{height}/{round}/{kind}",
        "GET /v1/licence-events",
        "GET /v1/reports/licence-events.csv",
        "GET /v1/licences/{type}/{number}/history",
        "GET /",
        "GET /explorer/search",
        "GET /explorer/licences/{type}/{number}",
        "GET /explorer/blocks/{height}",
        "GET /explorer/authorities",
    ]
    .iter()
    .map(|route| route.to_string())
    .collect();
    expected.sort();
    assert_eq!(documented, expected);

    // Every documented route is served: no route_not_found, no method_not_allowed.
    let number = first();
    for route in &documented {
        let (method, path) = route.split_once(' ').unwrap();
        let uri = path
            .replace("{type}", "business-licence")
            .replace("{number}", &number)
            .replace("{holder}", &number)
            .replace("{hash}", &"0".repeat(64))
            .replace("{height}", "1")
            .replace("{id}", "qd-approval")
            .replace("{validator}", &"ab".repeat(32))
            .replace("{round}", "0")
            .replace("{kind}", "prevote");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let answer = api
            .request(method, &uri, Some("application/json"), b"{}".to_vec())
            .await;
        assert_ne!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{route}");
        if answer.status == StatusCode::NOT_FOUND
            && answer.content_type() == "application/problem+json"
        {
            assert_ne!(answer.json()["code"], "route_not_found", "{route}");
        }
        assert!(
            document["paths"][path][route.split_once(' ').unwrap().0.to_lowercase()]["responses"]
                .as_object()
                .is_some_and(|responses| !responses.is_empty()),
            "{route} documents its responses"
        );
    }
}

#[tokio::test]
async fn overload_and_timeout_answer_503() {
    let config = ApiConfig {
        concurrent_requests_max: 1,
        request_timeout_ms: 300,
        ..ApiConfig::default()
    };
    let api = api_with(config, 10);
    // A body that never arrives holds the only slot until the timeout.
    let stalled = axum::body::Body::from_stream(futures_util::stream::pending::<
        Result<Vec<u8>, std::io::Error>,
    >());
    let request = axum::http::Request::post("/v1/transactions")
        .header("content-type", "application/json")
        .body(stalled)
        .unwrap();
    let slow = tokio::spawn(tower::ServiceExt::oneshot(api.router.clone(), request));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let refused = api.get("/v1/node").await;
    refused.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "overloaded");
    assert_eq!(refused.headers["retry-after"], "1");
    let timed_out = slow.await.unwrap().unwrap();
    assert_eq!(timed_out.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = axum::body::to_bytes(timed_out.into_body(), usize::MAX)
        .await
        .unwrap();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["code"], "timeout");
    // The slot is free again.
    assert_eq!(api.get("/v1/node").await.status, StatusCode::OK);
}
