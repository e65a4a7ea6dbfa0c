//! `hutong testnet up|down` and `hutong bench` on real processes: a four-validator testnet
//! in a temporary directory commits blocks, writes a manifest that matches the running
//! processes, serves the demo data (a revoked licence is revoked; a Qingdao licence is
//! recognised in Xinjiang, a Jiyuan one is not), takes a short load, stops every process on
//! `down`, and resumes at its old height on a second `up`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hutong_testnet::client::{self, Client};
use hutong_testnet::demo::Examples;
use hutong_testnet::network::{Manifest, is_ours};
use hutong_tests::hutong_binary;

/// Runs `hutong ARGS`, killing it (by its PID) if it outlives `timeout`.
fn hutong(args: &[&str], dir: &Path, timeout: Duration) -> Output {
    let mut child = Command::new(hutong_binary())
        .args(args)
        .arg("--dir")
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start hutong");
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("output");
    panic!(
        "hutong {args:?} did not finish within {timeout:?}\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn succeed(args: &[&str], dir: &Path, timeout: Duration) -> String {
    let output = hutong(args, dir, timeout);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "hutong {args:?} failed\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Stops the testnet however the test ends.
struct Down<'a>(&'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        if self.0.join("testnet.json").exists() {
            let _ = hutong(&["testnet", "down"], self.0, Duration::from_secs(60));
        }
    }
}

fn verification(client: &Client, api: &str, number: &str, region: &str) -> serde_json::Value {
    let (status, body) = client
        .get(&format!(
            "{api}/v1/licences/business-licence/{number}/verification?region={region}"
        ))
        .expect("the API answers");
    assert_eq!(status, 200, "{body}");
    body
}

fn wait_for_heights(client: &Client, manifest: &Manifest, above: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let heights: Vec<Option<u64>> = manifest
            .nodes
            .iter()
            .map(|node| client::height(client, &node.api))
            .collect();
        if heights
            .iter()
            .all(|height| height.is_some_and(|h| h > above))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "heights {heights:?} did not pass {above}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn testnet_up_serves_demo_data_stops_on_down_and_resumes() {
    let directory = tempfile::tempdir().expect("temp dir");
    let dir = directory.path().join("net");
    let _down = Down(&dir);
    let up = [
        "testnet",
        "up",
        "--validators",
        "4",
        "--demo",
        "--demo-size",
        "small",
        "--detach",
    ];
    let printed = succeed(&up, &dir, Duration::from_secs(180));
    assert!(printed.contains("validator-3"), "{printed}");

    // The manifest lists four validators whose processes run `hutong run` on their homes.
    let manifest = Manifest::load(&dir).expect("testnet.json");
    assert_eq!(manifest.chain_id, "hutong-demo");
    assert!(manifest.demo_loaded);
    assert_eq!(manifest.nodes.len(), 4);
    let client = Client::new(Duration::from_secs(5));
    for node in &manifest.nodes {
        assert_eq!(node.role, "validator");
        assert!(node.home.join("config.toml").exists(), "{node:?}");
        assert!(node.p2p.starts_with("/ip4/127.0.0.1/tcp/"), "{node:?}");
        let pid = node.pid.expect("a running node has a PID");
        assert!(is_ours(pid, Some(&node.home)), "{node:?} is not running");
        let (status, info) = client
            .get(&format!("{}/v1/node", node.api))
            .expect("the API answers");
        assert_eq!(status, 200);
        assert_eq!(
            info["node_key"].as_str(),
            Some(node.node_key.as_str()),
            "{info}"
        );
    }
    wait_for_heights(&client, &manifest, 1);

    // The demo data, as the API serves it.
    let examples: Examples =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).expect("demo.json"))
            .expect("demo.json parses");
    let api = &manifest.nodes[1].api;
    let revoked = verification(&client, api, &examples.revoked, "650100");
    assert_eq!(revoked["status"], "revoked", "{revoked}");
    assert_eq!(revoked["valid"], false);
    let suspended = verification(&client, api, &examples.suspended, "370200");
    assert_eq!(suspended["status"], "suspended", "{suspended}");
    let active = verification(&client, api, &examples.active, "650100");
    assert_eq!(active["valid"], true, "{active}");
    assert_eq!(active["valid_in_region"], true, "{active}");
    assert!(!active["recognition"].is_null(), "{active}");
    let jiyuan = verification(&client, api, &examples.jiyuan, "650100");
    assert_eq!(jiyuan["valid"], true, "{jiyuan}");
    assert_eq!(jiyuan["valid_in_region"], false, "{jiyuan}");
    let objected = verification(&client, api, &examples.objected, "370200");
    assert_eq!(
        objected["open_objections"].as_array().map(Vec::len),
        Some(1),
        "{objected}"
    );

    // A short load: the result line says what committed.
    let line = succeed(
        &[
            "bench",
            "--seconds",
            "3",
            "--count",
            "40",
            "--in-flight",
            "2",
            "--commit-wait-seconds",
            "20",
        ],
        &dir,
        Duration::from_secs(90),
    );
    let result: serde_json::Value = serde_json::from_str(line.trim()).expect("one line of JSON");
    assert_eq!(result["submitted"], 40, "{result}");
    assert!(
        result["committed"].as_u64().is_some_and(|c| c > 0),
        "{result}"
    );
    assert!(
        result["latency_p99_ms"].as_f64().is_some_and(|l| l > 0.0),
        "{result}"
    );

    // `down` stops every process it listed.
    succeed(&["testnet", "down"], &dir, Duration::from_secs(60));
    for node in &manifest.nodes {
        let pid = node.pid.expect("pid");
        assert!(!is_ours(pid, Some(&node.home)), "{} still runs", node.name);
    }
    let stopped = Manifest::load(&dir).expect("testnet.json");
    assert!(stopped.nodes.iter().all(|node| node.pid.is_none()));
    let old_height = stopped.stopped_at_height.expect("the height at the stop");
    assert!(old_height >= 2, "{old_height}");

    // A second `up` resumes the same chain with its data, past the old height.
    succeed(&up, &dir, Duration::from_secs(120));
    let resumed = Manifest::load(&dir).expect("testnet.json");
    assert_eq!(
        resumed
            .nodes
            .iter()
            .map(|node| &node.node_key)
            .collect::<Vec<_>>(),
        manifest
            .nodes
            .iter()
            .map(|node| &node.node_key)
            .collect::<Vec<_>>()
    );
    wait_for_heights(&client, &resumed, old_height);
    let revoked = verification(&client, &resumed.nodes[0].api, &examples.revoked, "650100");
    assert_eq!(revoked["status"], "revoked", "{revoked}");
    succeed(&["testnet", "down"], &dir, Duration::from_secs(60));
    for node in &resumed.nodes {
        assert!(!is_ours(node.pid.expect("pid"), Some(&node.home)));
    }
}
