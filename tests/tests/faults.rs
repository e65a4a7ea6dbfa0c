//! Faults against a network of real node processes on loopback, each bounded in time:
//!
//! - load plus SIGKILL of a validator and its restart: every committed transaction is on
//!   every node, and all nodes hold the same blocks and state roots;
//! - a partition (the node's test-only `testing.partition_file` switch) and its healing;
//! - a Byzantine validator (the test-only `testing.equivocate` switch) whose equivocation is
//!   recorded on the ledger and listed by `GET /v1/evidence` on every honest node, with safety;
//! - a validator that withholds its transactions from the gossip (`testing.withhold_transactions`):
//!   the others fetch them from it when it proposes them (compact proposals);
//! - bad input against a live node: each gets a clear 4xx and the state does not change;
//! - a restart of the whole network, cleanly and after SIGKILL: history and state intact.
//!
//! `HUTONG_SOAK=1` lengthens the load and the partition.

use std::time::{Duration, Instant};

use hutong_core::hash::Hash32;
use hutong_core::testkit::secret;
use hutong_core::tx::{Transaction, TxBody};
use hutong_tests::Network;

fn soak() -> bool {
    std::env::var("HUTONG_SOAK").is_ok()
}

fn wait_for_height(network: &Network, nodes: &[usize], height: u64, timeout: Duration) {
    network.wait_for(
        &format!("nodes {nodes:?} to reach height {height}"),
        timeout,
        |network| {
            nodes.iter().all(|&index| {
                network.nodes[index]
                    .height()
                    .is_some_and(|reached| reached >= height)
            })
        },
    );
}

/// Every node in `nodes` holds the same headers (hashes, state roots) for blocks 1 to `up_to`.
fn same_chain(network: &Network, nodes: &[usize], up_to: u64) {
    let first = network.nodes[nodes[0]]
        .headers(1, up_to)
        .expect("headers of the first node");
    assert_eq!(first.len() as u64, up_to, "blocks missing");
    for &index in &nodes[1..] {
        let other = network.nodes[index].headers(1, up_to).expect("headers");
        assert!(
            first == other,
            "{} and {} disagree on blocks 1 to {up_to}",
            network.nodes[nodes[0]].name,
            network.nodes[index].name
        );
    }
}

/// The state root and log size at the node's head.
fn state_of(network: &Network, index: usize) -> (String, u64, u64) {
    let (status, body) = network.nodes[index].get("/v1/node").expect("node answers");
    assert_eq!(status, 200, "{body}");
    let height = body["height"].as_u64().expect("height");
    let header = network.nodes[index].header(height).expect("header");
    (
        header["state_root"].as_str().expect("root").to_owned(),
        header["log_size"].as_u64().expect("log size"),
        height,
    )
}

fn committed_on(network: &Network, index: usize, ids: &[Hash32]) -> usize {
    ids.iter()
        .filter(|id| network.nodes[index].transaction_state(id).as_deref() == Some("committed"))
        .count()
}

/// What the node says about each of `ids` that it does not report committed (at most five).
fn not_committed(network: &Network, index: usize, ids: &[Hash32]) -> Vec<String> {
    ids.iter()
        .filter_map(|id| {
            let answer = network.nodes[index].get(&format!("/v1/transactions/{id}"));
            match &answer {
                Some((_, body)) if body["state"] == "committed" => None,
                _ => Some(format!("{id}: {answer:?}")),
            }
        })
        .take(5)
        .collect()
}

#[test]
fn load_with_a_validator_killed_and_restarted_loses_nothing() {
    let mut network = Network::new(4);
    network.start_all();
    wait_for_height(&network, &[0, 1, 2, 3], 1, Duration::from_secs(60));

    let count: u64 = if soak() { 1500 } else { 240 };
    let transactions: Vec<Transaction> = (0..count)
        .map(|n| {
            network
                .fixture
                .issue_business_licence("qd-approval", "370200", 10_000 + n)
        })
        .collect();
    // Steady load on node0, one transaction every 40 ms; node2 is killed a quarter of the
    // way in and restarted at three quarters.
    let mut admitted = Vec::new();
    let started = Instant::now();
    for (index, transaction) in transactions.iter().enumerate() {
        if index as u64 == count / 4 {
            network.nodes[2].kill();
        }
        if index as u64 == count * 3 / 4 {
            network.nodes[2].start();
        }
        let due = started + Duration::from_millis(40 * index as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let (status, body) = network.nodes[0].submit(transaction).expect("node0 answers");
        assert_eq!(status, 202, "submission refused: {body}");
        admitted.push(transaction.id(hutong_core::testkit::SUITE));
    }

    // Every admitted transaction commits (node0 was never down). The transactions are one
    // signer's, in nonce order: poll the last one (polling all would run into the API's rate
    // limit), then check them all once.
    let last = *admitted.last().expect("transactions");
    network.wait_for(
        "the last admitted transaction to commit on node0",
        Duration::from_secs(30),
        |network| network.nodes[0].transaction_state(&last).as_deref() == Some("committed"),
    );
    assert_eq!(
        committed_on(&network, 0, &admitted),
        admitted.len(),
        "node0 misses committed transactions: {:?}",
        not_committed(&network, 0, &admitted)
    );
    // ...and is then on every node, node2 included.
    let height = network.nodes[0].height().expect("height");
    wait_for_height(&network, &[0, 1, 2, 3], height, Duration::from_secs(30));
    for index in 1..4 {
        assert_eq!(
            committed_on(&network, index, &admitted),
            admitted.len(),
            "{} misses committed transactions",
            network.nodes[index].name
        );
    }
    same_chain(&network, &[0, 1, 2, 3], height);
}

#[test]
fn a_partitioned_validator_catches_up_when_the_partition_heals() {
    let mut network = Network::new(4);
    network.nodes[3].edit_config(|text| {
        format!("{text}\n[testing]\nenabled = true\npartition_file = \"partitioned\"\n")
    });
    network.start_all();
    wait_for_height(&network, &[0, 1, 2, 3], 2, Duration::from_secs(60));

    let flag = network.nodes[3].home.join("partitioned");
    std::fs::write(&flag, b"").expect("partition flag");
    std::thread::sleep(Duration::from_millis(500));
    let cut_at = network.nodes[3].height().expect("node3 answers");
    // The others go on without node3, and node3 learns nothing of it.
    let blocks = if soak() { 60 } else { 8 };
    wait_for_height(
        &network,
        &[0, 1, 2],
        cut_at + blocks,
        Duration::from_secs(blocks * 3 + 20),
    );
    // A transaction made during the partition.
    let transaction = network
        .fixture
        .issue_business_licence("qd-approval", "370200", 20_000);
    let (status, body) = network.nodes[0].submit(&transaction).expect("node0");
    assert_eq!(status, 202, "{body}");
    network.wait_for(
        "the transaction to commit without node3",
        Duration::from_secs(20),
        |network| {
            network.nodes[0]
                .transaction_state(&transaction.id(hutong_core::testkit::SUITE))
                .as_deref()
                == Some("committed")
        },
    );
    let isolated = network.nodes[3].height().expect("node3 answers");
    assert!(
        isolated <= cut_at + 1,
        "node3 committed blocks {cut_at}..{isolated} while cut off"
    );
    assert_ne!(
        network.nodes[3]
            .transaction_state(&transaction.id(hutong_core::testkit::SUITE))
            .as_deref(),
        Some("committed")
    );

    // Heal: node3 catches up and commits with the others again.
    std::fs::remove_file(&flag).expect("heal");
    let target = network.nodes[0].height().expect("node0") + 2;
    wait_for_height(&network, &[0, 1, 2, 3], target, Duration::from_secs(40));
    assert_eq!(
        network.nodes[3]
            .transaction_state(&transaction.id(hutong_core::testkit::SUITE))
            .as_deref(),
        Some("committed")
    );
    same_chain(&network, &[0, 1, 2, 3], target);
    // It votes again: with node0 stopped, blocks need node3.
    network.nodes[0].stop();
    let from = network.nodes[3].height().expect("node3");
    wait_for_height(&network, &[1, 2, 3], from + 2, Duration::from_secs(40));
}

/// A counter of `/metrics` (0 when absent).
fn counter(network: &Network, index: usize, name: &str) -> f64 {
    let (_, metrics) = network.nodes[index].get("/metrics").expect("metrics");
    metrics
        .as_str()
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with(name))
        .and_then(|line| line.split_whitespace().last())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn transactions_only_the_proposer_holds_are_fetched_from_it() {
    let mut network = Network::new(4);
    network.nodes[3].edit_config(|text| {
        format!("{text}\n[testing]\nenabled = true\nwithhold_transactions = true\n")
    });
    network.start_all();
    wait_for_height(&network, &[0, 1, 2, 3], 1, Duration::from_secs(60));

    // Submitted to node3 alone, which keeps them out of the gossip: the other validators
    // first see them as ids in node3's proposals and must ask node3 for them.
    let transactions: Vec<Transaction> = (0..12)
        .map(|n| {
            network
                .fixture
                .issue_business_licence("qd-approval", "370200", 30_000 + n)
        })
        .collect();
    for transaction in &transactions {
        let (status, body) = network.nodes[3].submit(transaction).expect("node3 answers");
        assert_eq!(status, 202, "{body}");
    }
    let ids: Vec<Hash32> = transactions
        .iter()
        .map(|transaction| transaction.id(hutong_core::testkit::SUITE))
        .collect();
    network.wait_for(
        "node3's transactions to commit on every node",
        Duration::from_secs(60),
        |network| (0..4).all(|index| committed_on(network, index, &ids[ids.len() - 1..]) == 1),
    );
    for index in 0..4 {
        assert_eq!(
            committed_on(&network, index, &ids),
            ids.len(),
            "{}: {:?}",
            network.nodes[index].name,
            not_committed(&network, index, &ids)
        );
    }
    let fetches: f64 = (0..3)
        .map(|index| counter(&network, index, "hutong_proposal_transaction_fetches"))
        .sum();
    assert!(
        fetches > 0.0,
        "no validator fetched a proposal's transactions"
    );
    let height = network.nodes[0].height().expect("height");
    wait_for_height(&network, &[0, 1, 2, 3], height, Duration::from_secs(30));
    same_chain(&network, &[0, 1, 2, 3], height);
}

#[test]
fn an_equivocating_validator_is_recorded_on_the_ledger_and_safety_holds() {
    let mut network = Network::new(4);
    let byzantine = network.nodes[3].key.public_key().to_string();
    network.nodes[3]
        .edit_config(|text| format!("{text}\n[testing]\nenabled = true\nequivocate = true\n"));
    network.start_all();

    // Every honest node lists the equivocation, recorded by a block.
    network.wait_for(
        "evidence against node3 on every honest node",
        Duration::from_secs(60),
        |network| {
            (0..3).all(|index| {
                network.nodes[index].evidence().is_some_and(|items| {
                    items
                        .iter()
                        .any(|item| item["validator"].as_str() == Some(byzantine.as_str()))
                })
            })
        },
    );
    // Let a few more blocks (and records) come, then compare the honest nodes up to there.
    let first_recorded = network.nodes[0].evidence().expect("evidence")[0]["recorded_at"]
        .as_u64()
        .expect("recorded_at");
    let height = first_recorded + 6;
    wait_for_height(&network, &[0, 1, 2], height, Duration::from_secs(30));
    let lists: Vec<Vec<serde_json::Value>> = (0..3)
        .map(|index| {
            network.nodes[index]
                .evidence()
                .expect("evidence")
                .into_iter()
                .filter(|item| item["recorded_at"].as_u64().is_some_and(|at| at <= height))
                .collect()
        })
        .collect();
    eprintln!(
        "by height {height}, {} equivocations recorded; the first: {}",
        lists[0].len(),
        lists[0][0]
    );
    for item in &lists[0] {
        // Only the equivocator is named, and each record says what it proves.
        assert_eq!(
            item["validator"].as_str(),
            Some(byzantine.as_str()),
            "{item}"
        );
        assert_ne!(item["first"]["value"], item["second"]["value"]);
        assert!(
            item["recorded_at"].as_u64().expect("recorded_at")
                > item["height"].as_u64().expect("height")
        );
        // Its proof is served for the slot.
        let path = format!(
            "/v1/evidence/{}/{}/{}/{}",
            byzantine,
            item["height"],
            item["round"],
            item["kind"].as_str().expect("kind")
        );
        let (status, body) = network.nodes[1].get(&path).expect("node1");
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["record"], *item);
    }
    // Each honest node detected it itself.
    for index in 0..3 {
        let seen = counter(&network, index, "hutong_equivocations_seen");
        assert!(seen > 0.0, "node{index} counted no equivocation");
    }
    // Safety: the honest nodes hold the same blocks, and so the same records.
    same_chain(&network, &[0, 1, 2], height);
    assert_eq!(
        lists[0], lists[1],
        "node0 and node1 recorded different evidence"
    );
    assert_eq!(
        lists[0], lists[2],
        "node0 and node2 recorded different evidence"
    );
    // The evidence is in the block that recorded it.
    let (_, block) = network.nodes[2]
        .get(&format!("/v1/blocks/{first_recorded}"))
        .expect("block");
    assert!(
        !block["block"]["evidence"]
            .as_array()
            .expect("evidence section")
            .is_empty()
    );
}

/// Posts `body` as JSON to `/v1/transactions`; returns the status and problem code.
fn post_json(network: &Network, body: &str) -> (u16, String) {
    let (status, answer) = network.nodes[0]
        .post_raw("/v1/transactions", "application/json", body.as_bytes())
        .expect("node0 answers");
    (
        status,
        answer["code"].as_str().unwrap_or_default().to_owned(),
    )
}

fn expect_refused(
    network: &Network,
    what: &str,
    transaction: &Transaction,
    status: u16,
    code: &str,
) {
    let json = serde_json::to_string(transaction).expect("json");
    let (found_status, found_code) = post_json(network, &json);
    assert_eq!(
        (found_status, found_code.as_str()),
        (status, code),
        "{what}"
    );
}

#[test]
fn bad_input_gets_a_clear_refusal_and_changes_nothing() {
    let mut network = Network::new(1);
    network.start_all();
    wait_for_height(&network, &[0], 1, Duration::from_secs(60));

    // Set-up: a committed issuance (to replay) and a key rotation (to sign with the old key).
    let issued = network
        .fixture
        .issue_business_licence("qd-approval", "370200", 30_000);
    let height = network.nodes[0].height().expect("height");
    let new_key = secret("qd-market-rotated");
    let rotation = network.fixture.tx(
        "qd-market",
        TxBody::RotateKey {
            authority: "qd-market".into(),
            new_key: new_key.public_key(),
            effective_height: height + 3,
        },
    );
    for transaction in [&issued, &rotation] {
        let (status, body) = network.nodes[0].submit(transaction).expect("node0");
        assert_eq!(status, 202, "{body}");
    }
    network.wait_for("the set-up to commit", Duration::from_secs(30), |network| {
        [&issued, &rotation].iter().all(|transaction| {
            network.nodes[0]
                .transaction_state(&transaction.id(hutong_core::testkit::SUITE))
                .as_deref()
                == Some("committed")
        })
    });
    wait_for_height(&network, &[0], height + 4, Duration::from_secs(30));
    let before = state_of(&network, 0);

    // Malformed JSON, wrong types, unknown fields, missing signatures.
    let valid = network
        .fixture
        .issue_business_licence("qd-approval", "370200", 30_001);
    let value = serde_json::to_value(&valid).expect("json");
    assert_eq!(
        post_json(&network, "{\"payload\": "),
        (400, "invalid_body".into())
    );
    assert_eq!(
        post_json(&network, "[1, 2, 3]"),
        (400, "invalid_body".into())
    );
    let mut wrong_type = value.clone();
    wrong_type["payload"]["nonce"] = serde_json::json!("seven");
    assert_eq!(
        post_json(&network, &wrong_type.to_string()),
        (400, "invalid_body".into())
    );
    let mut unknown = value.clone();
    unknown["payload"]["priority"] = serde_json::json!(1);
    assert_eq!(
        post_json(&network, &unknown.to_string()),
        (400, "invalid_body".into())
    );
    let mut unsigned = value.clone();
    unsigned["signatures"] = serde_json::json!([]);
    assert_eq!(
        post_json(&network, &unsigned.to_string()),
        (400, "malformed_transaction".into())
    );
    let mut missing = value.clone();
    missing
        .as_object_mut()
        .expect("object")
        .remove("signatures");
    assert_eq!(
        post_json(&network, &missing.to_string()),
        (400, "invalid_body".into())
    );

    // A signature that does not verify.
    let mut forged = valid.clone();
    forged.signatures[0].signature.0[10] ^= 0x40;
    expect_refused(
        &network,
        "a flipped signature bit",
        &forged,
        403,
        "bad_signature",
    );
    // A signature by a key that is not registered for the signer.
    let stranger = secret("stranger");
    let signer: hutong_core::records::AuthorityId = "qd-approval".into();
    let by_stranger = Transaction::sign(
        hutong_core::testkit::SUITE,
        valid.payload.clone(),
        &[(&signer, &stranger)],
    )
    .expect("signed");
    expect_refused(
        &network,
        "an unregistered key",
        &by_stranger,
        403,
        "bad_signature",
    );
    // A signer that is not registered at all.
    let mut nobody = valid.clone();
    nobody.payload.signer = "nobody".into();
    nobody.signatures[0].authority = "nobody".into();
    expect_refused(
        &network,
        "an unknown signer",
        &nobody,
        403,
        "unknown_authority",
    );
    // The rotated authority's old key: the rules check a signature against the key valid at
    // the height, and the old one no longer is.
    let old_key_tx = network
        .fixture
        .issue_business_licence("qd-market", "370200", 30_002);
    expect_refused(
        &network,
        "a rotated-out key",
        &old_key_tx,
        403,
        "bad_signature",
    );
    // An issuer issuing a type it is not granted.
    let not_granted = network
        .fixture
        .issue_business_licence("qd-approval", "370800", 30_003);
    expect_refused(
        &network,
        "a type not granted",
        &not_granted,
        422,
        "not_granted",
    );
    // A replay of a committed transaction.
    expect_refused(&network, "a replay", &issued, 409, "duplicate_transaction");
    // An oversize body: answered 413 from its Content-Length, before the body is read (the
    // node then closes the connection, so a client still writing the body may see a reset
    // instead of the answer; this one sends the head alone and reads the answer).
    {
        use std::io::{Read, Write};
        let address = network.nodes[0]
            .api
            .trim_start_matches("http://")
            .to_string();
        let mut stream = std::net::TcpStream::connect(&address).expect("connect to node0");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        write!(
            stream,
            "POST /v1/transactions HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            200 * 1024
        )
        .expect("send the head");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("body_too_large"), "{answer}");
    }
    // Canonical bytes that do not decode.
    let (status, answer) = network.nodes[0]
        .post_raw(
            "/v1/transactions",
            "application/octet-stream",
            &[0xff, 0x00, 0x13, 0x37],
        )
        .expect("node0");
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("malformed_transaction")),
        "{answer}"
    );
    // Another media type.
    let (status, answer) = network.nodes[0]
        .post_raw("/v1/transactions", "text/plain", b"hello")
        .expect("node0");
    assert_eq!(status, 415, "{answer}");

    // A flood beyond the rate limit: refused with 429 and Retry-After, nothing written.
    let api = network.nodes[0].api.clone();
    let flooders: Vec<_> = (0..8)
        .map(|_| {
            let api = api.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(Duration::from_secs(5)))
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut limited = 0;
                let mut retry_after = false;
                for _ in 0..150 {
                    if let Ok(response) = agent
                        .post(&format!("{api}/v1/transactions"))
                        .header("content-type", "application/json")
                        .send(b"{}".as_slice())
                        && response.status().as_u16() == 429
                    {
                        limited += 1;
                        retry_after |= response.headers().contains_key("retry-after");
                    }
                }
                (limited, retry_after)
            })
        })
        .collect();
    let results: Vec<(u32, bool)> = flooders
        .into_iter()
        .map(|flooder| flooder.join().expect("flooder"))
        .collect();
    let limited: u32 = results.iter().map(|(limited, _)| limited).sum();
    assert!(
        limited > 0,
        "1,200 requests at once were never rate limited"
    );
    assert!(results.iter().any(|(_, retry_after)| *retry_after));
    std::thread::sleep(Duration::from_secs(3));

    // Nothing was written: same state root and log size, heartbeat blocks aside.
    let after = state_of(&network, 0);
    assert!(after.2 >= before.2, "the node went backwards");
    assert_eq!(
        (&after.0, after.1),
        (&before.0, before.1),
        "bad input changed the state"
    );
    // The node is still healthy and accepts a good transaction.
    let (status, body) = network.nodes[0].submit(&valid).expect("node0");
    assert_eq!(status, 202, "{body}");
}

#[test]
fn the_whole_network_restarts_with_history_and_state_intact() {
    let mut network = Network::new(4);
    network.start_all();
    wait_for_height(&network, &[0, 1, 2, 3], 1, Duration::from_secs(60));
    let mut ids = Vec::new();
    for n in 0..20 {
        let transaction =
            network
                .fixture
                .issue_business_licence("qd-approval", "370200", 40_000 + n);
        let (status, body) = network.nodes[0].submit(&transaction).expect("node0");
        assert_eq!(status, 202, "{body}");
        ids.push(transaction.id(hutong_core::testkit::SUITE));
    }
    network.wait_for(
        "the transactions to commit",
        Duration::from_secs(30),
        |network| (0..4).all(|index| committed_on(network, index, &ids) == ids.len()),
    );

    for (how, crash) in [("a clean stop", false), ("SIGKILL", true)] {
        let height = network.nodes[0].height().expect("height");
        wait_for_height(&network, &[0, 1, 2, 3], height, Duration::from_secs(20));
        let history = network.nodes[0].headers(1, height).expect("headers");
        for node in &mut network.nodes {
            if crash {
                node.kill();
            } else {
                assert_eq!(node.stop(), Some(0), "{} did not stop cleanly", node.name);
            }
        }
        network.start_all();
        // Each node opened and checked its store, and the network goes on.
        wait_for_height(&network, &[0, 1, 2, 3], height + 2, Duration::from_secs(40));
        for index in 0..4 {
            assert_eq!(
                network.nodes[index].headers(1, height).expect("headers"),
                history,
                "{} lost or changed history after {how}",
                network.nodes[index].name
            );
            assert_eq!(
                committed_on(&network, index, &ids),
                ids.len(),
                "after {how}"
            );
        }
        let top = network.nodes[0].height().expect("height");
        wait_for_height(&network, &[0, 1, 2, 3], top, Duration::from_secs(20));
        same_chain(&network, &[0, 1, 2, 3], top);
    }
}
