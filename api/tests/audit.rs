//! Auditors' history routes: licence events in a time range (JSON and the CSV report), the
//! full history of a licence with a proof per step, recognitions in force at a time, and an
//! authority's actions in a time range.

mod common;

use axum::http::StatusCode;
use common::{NOW, api, chain};
use hutong_core::hash::Hash32;
use hutong_core::log::{Blake3Log, InclusionProof};
use hutong_core::testkit::{DAY_MS, GENESIS_TIME};

/// The effective time of the demo chain's suspension and revocation.
const STATUS_TIME: u64 = GENESIS_TIME + DAY_MS;

fn hash(value: &serde_json::Value) -> Hash32 {
    value.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn licence_events_in_a_range_with_their_log_positions() {
    let api = api();
    let answer = api
        .get(&format!(
            "/v1/licence-events?from={STATUS_TIME}&to={}&type=business-licence&region=370000",
            STATUS_TIME + 1
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    let items = body["items"].as_array().unwrap();
    let events: Vec<&str> = items
        .iter()
        .map(|item| item["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["suspend", "revoke"]);
    assert_eq!(items[1]["event_zh"], "吊销");
    assert_eq!(
        items[1]["number"].as_str().unwrap(),
        chain().facts.revoked.as_str()
    );
    let head = chain().store.head().unwrap().header;
    assert_eq!(body["checkpoint"]["header"]["height"], head.height);
    // Each event's transaction is where the row says in the log.
    let location = chain()
        .store
        .transaction_location(&hash(&items[1]["transaction_id"]))
        .unwrap()
        .unwrap();
    assert_eq!(items[1]["log_index"], location.log_index);

    // Issuances are effective at genesis time: outside the range above, inside this one.
    let issued = api
        .get(&format!(
            "/v1/licence-events?to={}&region=370800",
            GENESIS_TIME + 1
        ))
        .await
        .json();
    assert_eq!(issued["items"].as_array().unwrap().len(), 5);

    api.get("/v1/licence-events?from=5&to=4")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "range_out_of_order");
    api.get("/v1/licence-events?region=37")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn the_csv_report_is_bilingual_and_ends_with_the_checkpoint() {
    let api = api();
    let answer = api
        .get(&format!(
            "/v1/reports/licence-events.csv?from={STATUS_TIME}&to={}",
            STATUS_TIME + 1
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.content_type().starts_with("text/csv"));
    let text = answer.text();
    let lines: Vec<&str> = text.split("\r\n").filter(|line| !line.is_empty()).collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("\u{feff}\"证照类型 type\",\"证照编号 number\""));
    assert!(lines[1].contains("\"暂扣\"") && lines[1].contains("经营异常 irregular operation"));
    assert!(lines[2].contains("\"吊销\""));
    let head = chain().store.head().unwrap();
    assert!(lines[3].contains(&head.block_hash.to_hex()));
    assert!(lines[3].contains(&head.header.log_root.to_hex()));
}

#[tokio::test]
async fn a_licence_history_proves_each_step_in_the_log() {
    let api = api();
    let number = chain().facts.revoked.as_str();
    let body = api
        .get(&format!("/v1/licences/business-licence/{number}/history"))
        .await
        .json();
    let steps = body["steps"].as_array().unwrap();
    let events: Vec<&str> = steps
        .iter()
        .map(|step| step["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["issued", "revoke"]);
    let log_root = hash(&body["checkpoint"]["header"]["log_root"]);
    for step in steps {
        let proof: InclusionProof = serde_json::from_value(step["inclusion"].clone()).unwrap();
        let leaf = hash(&step["leaf_hash"]);
        assert_eq!(proof.root(&Blake3Log, &leaf).unwrap(), log_root);
        // A different leaf does not lead to the root.
        assert_ne!(proof.root(&Blake3Log, &Hash32([9; 32])).unwrap(), log_root);
    }
    api.get("/v1/licences/business-licence/91370200MA00000000/history")
        .await
        .assert_problem(StatusCode::NOT_FOUND, "licence_not_found");
}

/// The history document verifies offline against the genesis file, labels included: a
/// revocation relabelled as anything else is refused although every proof in it still holds.
#[tokio::test]
async fn a_licence_history_verifies_offline_and_a_relabelled_event_is_refused() {
    let api = api();
    let genesis = &chain().fixture.genesis;
    let number = chain().facts.revoked.as_str();
    let body = api
        .get(&format!("/v1/licences/business-licence/{number}/history"))
        .await
        .json();
    assert_eq!(body["format"], "hutong-history/v1");
    assert_eq!(body["steps"][1]["event_zh"], "吊销");
    let verify = |document: &serde_json::Value| {
        hutong_verify::verify_json(
            &serde_json::to_vec(document).unwrap(),
            genesis,
            &hutong_verify::VerifyOptions::historical(),
        )
    };
    let Ok(hutong_verify::Verified::History(verified)) = verify(&body) else {
        panic!("the history verifies: {:?}", verify(&body));
    };
    assert_eq!(verified.licence.events.len(), 2);
    for (field, label) in [("event_zh", "正常"), ("event", "reinstate")] {
        let mut relabelled = body.clone();
        relabelled["steps"][1][field] = serde_json::json!(label);
        assert_eq!(
            verify(&relabelled).unwrap_err().code(),
            "history-label-mismatch",
            "{field} relabelled {label}"
        );
    }
    let mut reworded = body.clone();
    reworded["steps"][1]["reason"] = serde_json::json!("误操作");
    assert_eq!(
        verify(&reworded).unwrap_err().code(),
        "history-step-mismatch"
    );
}

#[tokio::test]
async fn recognitions_in_force_at_a_time() {
    let api = api();
    let before = api
        .get(&format!("/v1/recognitions?at={}", GENESIS_TIME - 1))
        .await
        .json();
    assert_eq!(before["items"].as_array().unwrap().len(), 0);
    let now = api.get(&format!("/v1/recognitions?at={NOW}")).await.json();
    assert_eq!(now["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn authority_actions_in_a_time_range() {
    let api = api();
    let store = &chain().store;
    // Block 3 holds qd-approval's revocation; before it, its issuances.
    let third = store.header(3).unwrap().unwrap().time;
    let later = api
        .get(&format!("/v1/authorities/qd-approval/actions?from={third}"))
        .await
        .json();
    let items = later["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["kind"], "change_status");
    assert_eq!(items[0]["time"], third);
    assert!(later["next_cursor"].is_null());

    let earlier = api
        .get(&format!(
            "/v1/authorities/qd-approval/actions?to={third}&limit=100"
        ))
        .await
        .json();
    assert!(
        earlier["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|item| item["kind"] == "issue_licence")
    );
    let cursor = earlier["next_cursor"].as_str().unwrap();
    let mut pages = 1;
    let mut count = earlier["items"].as_array().unwrap().len();
    let mut cursor = Some(cursor.to_owned());
    while let Some(next) = cursor {
        let page = api
            .get(&format!(
                "/v1/authorities/qd-approval/actions?to={third}&limit=100&cursor={next}"
            ))
            .await
            .json();
        assert!(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|item| item["kind"] == "issue_licence")
        );
        count += page["items"].as_array().unwrap().len();
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        pages += 1;
        // A full page gives a cursor, so the last one may be empty.
        assert!(pages <= 4, "the pages end");
    }
    assert_eq!(count, common::QINGDAO_LICENCES as usize);
    api.get("/v1/authorities/qd-approval/actions?from=9&to=8")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "range_out_of_order");
}
