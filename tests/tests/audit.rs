//! `hutong audit` against a network of real node processes on loopback: a node's whole chain
//! re-verifies from the genesis file, two nodes agree, the downloaded export verifies on its
//! own and yields the CSV report, and an altered copy of it fails with the explanation.

use std::process::Command;
use std::time::Duration;

use hutong_tests::{Network, hutong_binary};

fn audit(arguments: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(hutong_binary())
        .arg("audit")
        .args(arguments)
        .output()
        .expect("hutong audit runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_nodes_chain_reverifies_and_an_altered_export_does_not() {
    let mut network = Network::new(2);
    network.start_all();
    network.wait_for(
        "both nodes to commit a block",
        Duration::from_secs(60),
        |network| {
            network
                .heights()
                .iter()
                .all(|height| height.is_some_and(|height| height >= 1))
        },
    );
    let mut ids = Vec::new();
    for n in 1..=5 {
        let transaction = network
            .fixture
            .issue_business_licence("qd-approval", "370200", n);
        let (status, body) = network.nodes[0]
            .submit(&transaction)
            .expect("the node answers");
        assert_eq!(status, 202, "submission refused: {body}");
        ids.push(transaction.id(hutong_core::testkit::SUITE));
    }
    network.wait_for(
        "the issuances to be committed on both nodes",
        Duration::from_secs(60),
        |network| {
            network.nodes.iter().all(|node| {
                ids.iter()
                    .all(|id| node.transaction_state(id).as_deref() == Some("committed"))
            })
        },
    );
    let directory = network.directory.path().to_path_buf();
    let genesis = directory.join("genesis.json");
    let genesis = genesis.to_str().unwrap();
    let saved = directory.join("export.ndjson");
    let saved_text = saved.to_str().unwrap();
    let node0 = network.nodes[0].api.clone();
    let node1 = network.nodes[1].api.clone();

    let (code, stdout, stderr) = audit(&[
        "--node",
        &node0,
        "--genesis",
        genesis,
        "--progress",
        "lines",
        "--save-export",
        saved_text,
    ]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("audit passed"), "{stdout}");
    assert!(stdout.contains("is the verified block"), "{stdout}");
    assert!(stderr.contains("audit: "), "progress lines: {stderr}");

    let (code, stdout, stderr) = audit(&[
        "--node",
        &node0,
        "--against",
        &node1,
        "--genesis",
        genesis,
        "--json",
    ]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let comparison: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(comparison["fork"], false);
    let relation = &comparison["relations"][0];
    assert!(
        ["same", "behind", "ahead"].contains(&relation["relation"].as_str().unwrap()),
        "{comparison}"
    );
    if relation["relation"] != "same" {
        assert_eq!(relation["log_consistent"], true, "{comparison}");
    }
    for head in comparison["heads"].as_array().unwrap() {
        assert_eq!(head["certified"], true, "{comparison}");
    }

    // A signed checkpoint saved now, later than the export: the export is cut short.
    let checkpoint = network.nodes[0]
        .get("/v1/log/checkpoint")
        .expect("the node answers")
        .1;
    let checkpoint_path = directory.join("checkpoint.json");
    std::fs::write(&checkpoint_path, checkpoint.to_string()).expect("checkpoint");
    let later = checkpoint["checkpoint"]["header"]["height"]
        .as_u64()
        .unwrap();

    // The saved export verifies on its own, and the report lists the five issuances.
    let report = directory.join("report.csv");
    let (code, stdout, stderr) = audit(&[
        "--export",
        saved_text,
        "--genesis",
        genesis,
        "--progress",
        "none",
        "--report-csv",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let csv = std::fs::read_to_string(&report).expect("report");
    assert_eq!(csv.matches("\"issued\"").count(), 5, "{csv}");

    // The export without its last block does not reach the checkpoint saved after it.
    let saved_lines: Vec<String> = std::fs::read_to_string(&saved)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(later >= saved_lines.len() as u64);
    let truncated = directory.join("truncated.ndjson");
    std::fs::write(&truncated, saved_lines[..saved_lines.len() - 1].join("\n")).unwrap();
    let (code, stdout, stderr) = audit(&[
        "--export",
        truncated.to_str().unwrap(),
        "--genesis",
        genesis,
        "--progress",
        "none",
        "--checkpoint",
        checkpoint_path.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(7), "{stdout}\n{stderr}");
    assert!(stdout.contains("are missing"), "{stdout}");
    // Re-verified from the node now, the chain reaches that checkpoint.
    let (code, stdout, stderr) = audit(&[
        "--node",
        &node0,
        "--genesis",
        genesis,
        "--progress",
        "none",
        "--checkpoint",
        checkpoint_path.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("is on the verified chain"), "{stderr}");

    // One altered field in one transaction: its signature no longer holds.
    let text = std::fs::read_to_string(&saved).expect("saved export");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let (index, mut line) = lines
        .iter()
        .enumerate()
        .find_map(|(index, line)| {
            let value: serde_json::Value = serde_json::from_str(line).ok()?;
            (!value["block"]["transactions"].as_array()?.is_empty()).then_some((index, value))
        })
        .expect("a block with transactions");
    let body = &mut line["block"]["transactions"][0]["payload"]["body"]["issue_licence"];
    body["holder_name"] = serde_json::Value::String("Someone Else Ltd".into());
    let height = line["block"]["header"]["height"].as_u64().unwrap();
    lines[index] = line.to_string();
    let altered = directory.join("altered.ndjson");
    std::fs::write(&altered, lines.join("\n")).expect("altered export");
    let (code, stdout, _) = audit(&[
        "--export",
        altered.to_str().unwrap(),
        "--genesis",
        genesis,
        "--progress",
        "none",
    ]);
    assert_eq!(code, Some(7), "{stdout}");
    assert!(
        stdout.contains(&format!("AUDIT FAILED at block {height} (transaction)")),
        "{stdout}"
    );
    assert!(stdout.contains("transaction 0"), "{stdout}");
    assert!(stdout.contains("signature of qd-approval"), "{stdout}");
}

#[test]
fn two_networks_from_one_genesis_are_reported_as_a_fork() {
    // The same genesis and the same validator keys, run twice apart: every block of one is
    // certified, and so is every block of the other, as if the validators had signed twice.
    let mut first = Network::new(2);
    let mut second = Network::new_within_turn(2);
    first.start_all();
    second.start_all();
    for network in [&first, &second] {
        network.wait_for(
            "both nodes to commit two blocks",
            Duration::from_secs(60),
            |network| {
                network
                    .heights()
                    .iter()
                    .all(|height| height.is_some_and(|height| height >= 2))
            },
        );
    }
    let genesis = first.directory.path().join("genesis.json");
    let (code, stdout, stderr) = audit(&[
        "--node",
        &first.nodes[0].api,
        "--against",
        &first.nodes[1].api,
        "--against",
        &second.nodes[0].api,
        "--genesis",
        genesis.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, Some(7), "{stdout}\n{stderr}");
    let comparison: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(comparison["fork"], true, "{comparison}");
    assert_ne!(
        comparison["relations"][0]["relation"], "fork",
        "{comparison}"
    );
    let fork = &comparison["relations"][1];
    assert_eq!(fork["relation"], "fork", "{comparison}");
    // The chains part at their first block whose time differs: block 1 unless both were
    // proposed in the same millisecond.
    let height = fork["fork_height"].as_u64().unwrap();
    let lowest = comparison["heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|head| head["height"].as_u64().unwrap())
        .min()
        .unwrap();
    assert!((1..=lowest).contains(&height), "{comparison}");
    assert_ne!(fork["reference_block"], fork["other_block"]);
    for head in comparison["heads"].as_array().unwrap() {
        assert_eq!(head["certified"], true, "{comparison}");
    }
}
