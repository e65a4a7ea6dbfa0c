//! `GET /v1/evidence` and `GET /v1/evidence/{validator}/{height}/{round}/{kind}` over a chain
//! whose blocks recorded equivocations (ADR 0009).

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::Api;
use hutong_api::testkit::StoreNode;
use hutong_api::{ApiConfig, ApiState, router};
use hutong_consensus::{Evidence, Signature, SignedVote, ValidatorId, Vote, VoteType};
use hutong_core::crypto::SecretKey;
use hutong_core::records::{Record, RecordKey};
use hutong_core::smt;
use hutong_core::testkit::{CHAIN_ID, Fixture, GENESIS_TIME};
use hutong_ledger::store::{MemoryBackend, Mode, StateProof, Store};

fn vote(key: &SecretKey, height: u64, round: u32, value: Option<[u8; 32]>) -> SignedVote<[u8; 32]> {
    let vote = Vote {
        vote_type: VoteType::Precommit,
        height,
        round,
        value,
        validator: ValidatorId(key.public_key().0),
    };
    let signature = Signature(key.sign(&vote.sign_bytes(CHAIN_ID)).0);
    SignedVote { vote, signature }
}

/// A chain of 4 blocks; block 3 records three equivocations of height 2, block 4 one more.
fn api() -> (Api, Fixture) {
    let fixture = Fixture::new();
    let store =
        Arc::new(Store::create_with(Box::new(MemoryBackend::new()), &fixture.genesis).unwrap());
    let evidence = |round: u32| Evidence::ConflictingVotes {
        first: vote(&fixture.node_keys[2], 2, round, Some([round as u8 + 1; 32])),
        second: vote(&fixture.node_keys[2], 2, round, None),
    };
    for (height, items) in [
        (1, vec![]),
        (2, vec![]),
        (3, vec![evidence(0), evidence(1), evidence(2)]),
        (4, vec![evidence(3)]),
    ] {
        let execution = store
            .execute_with_evidence(
                GENESIS_TIME + height * 1000,
                fixture.node_keys[0].public_key(),
                Vec::new(),
                items,
                Mode::Verify,
            )
            .unwrap();
        let certificate = fixture.certify(&execution.header);
        store.commit(execution, certificate).unwrap();
    }
    let node = Arc::new(StoreNode::new(
        store.clone(),
        fixture.node_keys[0].public_key(),
        10,
    ));
    let state = ApiState::new(store, node.clone(), ApiConfig::default()).unwrap();
    (
        Api {
            router: router(state),
            node,
        },
        fixture,
    )
}

#[tokio::test]
async fn recorded_equivocations_are_listed_in_pages_and_proved() {
    let (api, fixture) = api();
    let offender = fixture.node_keys[2].public_key().to_string();

    let all = api.get("/v1/evidence").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text());
    let all = all.json();
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert!(all.get("next_cursor").is_none());
    assert_eq!(all["state"]["height"], 4);
    for item in items {
        assert_eq!(item["validator"], offender.as_str());
        assert_eq!(item["height"], 2);
        assert_eq!(item["kind"], "precommit");
        assert!(item["second"]["value"].is_null());
        assert_eq!(item["first"]["value"].as_str().unwrap().len(), 64);
    }
    assert_eq!(items[3]["recorded_at"], 4);

    // Pages of one item go through the records of one height without loss.
    let mut paged = Vec::new();
    let mut uri = "/v1/evidence?limit=1".to_string();
    for _ in 0..10 {
        let page = api.get(&uri).await.json();
        paged.extend(page["items"].as_array().unwrap().clone());
        match page["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/v1/evidence?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(&paged, items);
    let later = api.get("/v1/evidence?from_height=4").await.json();
    assert_eq!(later["items"].as_array().unwrap().len(), 1);

    // One record with its proof against the current header.
    let answer = api
        .get(&format!("/v1/evidence/{offender}/2/1/precommit"))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["record"], items[1]);
    let proof: StateProof = serde_json::from_value(body["proof"].clone()).unwrap();
    let Some(Record::Evidence(record)) = &proof.record else {
        panic!("the proof holds no evidence record");
    };
    smt::verify_membership(
        hutong_core::testkit::SUITE,
        proof.header.state_root,
        &RecordKey::Evidence(record.key.clone()).state_hash(hutong_core::testkit::SUITE),
        &Record::Evidence(record.clone()).state_hash(hutong_core::testkit::SUITE),
        &proof.proof,
    )
    .unwrap();
}

#[tokio::test]
async fn evidence_route_errors() {
    let (api, fixture) = api();
    let offender = fixture.node_keys[2].public_key().to_string();
    api.get(&format!("/v1/evidence/{offender}/2/9/precommit"))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "evidence_not_found");
    api.get(&format!("/v1/evidence/{offender}/2/1/vote"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_path_parameter");
    api.get("/v1/evidence/zz/2/1/prevote")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_path_parameter");
    api.get(&format!("/v1/evidence/{offender}/two/1/prevote"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_path_parameter");
    api.get("/v1/evidence?cursor=!!!")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_cursor");
    api.get("/v1/evidence?limit=0")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "limit_out_of_range");
    api.get("/v1/evidence?colour=red")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_query");
}
