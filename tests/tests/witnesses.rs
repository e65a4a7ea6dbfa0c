//! Witnesses end to end (ADR 0038): `hutong testnet up --witnesses 2` starts four validators
//! and two `hutong witness run` processes that follow them; the nodes serve both witnesses'
//! cosignatures, a bundle asked with `?witnesses=2` verifies with `hutong verify --witnesses
//! 2`, and the same bundle with one cosignature removed, or checked against a witness the
//! verifier names that did not cosign, is refused with exit code 7 naming the witness.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hutong_testnet::client::Client;
use hutong_testnet::demo::Examples;
use hutong_testnet::network::{Manifest, is_ours};
use hutong_tests::hutong_binary;

/// Runs `hutong ARGS`, killing it (by its PID) if it outlives `timeout`.
fn hutong(args: &[&str], timeout: Duration) -> Output {
    let mut child = Command::new(hutong_binary())
        .args(args)
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

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Stops the testnet however the test ends.
struct Down<'a>(&'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        if self.0.join("testnet.json").exists() {
            let dir = self.0.to_string_lossy().into_owned();
            let _ = hutong(&["testnet", "down", "--dir", &dir], Duration::from_secs(60));
        }
    }
}

#[test]
fn two_witnesses_cosign_and_a_bundle_needs_both() {
    let directory = tempfile::tempdir().expect("temp dir");
    let dir = directory.path().join("net");
    let dir_text = dir.to_string_lossy().into_owned();
    let _down = Down(&dir);
    let up = hutong(
        &[
            "testnet",
            "up",
            "--validators",
            "4",
            "--demo",
            "--demo-size",
            "small",
            "--detach",
            "--witnesses",
            "2",
            "--dir",
            &dir_text,
        ],
        Duration::from_secs(180),
    );
    assert!(up.status.success(), "{}", text(&up));
    let manifest = Manifest::load(&dir).expect("testnet.json");
    assert_eq!(manifest.nodes.len(), 4);
    assert_eq!(manifest.witnesses.len(), 2);
    for witness in &manifest.witnesses {
        let pid = witness.pid.expect("a running witness has a PID");
        assert!(
            is_ours(pid, Some(&witness.state_path())),
            "{witness:?} is not running"
        );
    }

    // The nodes serve both witnesses' cosignatures of their checkpoint.
    let client = Client::new(Duration::from_secs(5));
    let api = &manifest.nodes[2].api;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, checkpoint) = client
            .get(&format!("{api}/v1/log/checkpoint"))
            .expect("the API answers");
        assert_eq!(status, 200, "{checkpoint}");
        let cosigned = checkpoint["cosignatures"].as_array().map_or(0, Vec::len);
        if cosigned == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the checkpoint carries {cosigned} cosignatures: {}",
            checkpoint["cosignatures"]
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // A bundle asked with ?witnesses=2 verifies with both witnesses required.
    let examples: Examples =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).expect("demo.json"))
            .expect("demo.json parses");
    let (status, bundle) = client
        .get(&format!(
            "{api}/v1/licences/business-licence/{}/proof?witnesses=2",
            examples.active
        ))
        .expect("the API answers");
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(
        bundle["witnessed"]["cosignatures"].as_array().map(Vec::len),
        Some(2),
        "{}",
        bundle["witnessed"]
    );
    let bundle_path = directory.path().join("bundle.json");
    std::fs::write(&bundle_path, bundle.to_string()).expect("write the bundle");
    let genesis = dir.join("genesis.json").to_string_lossy().into_owned();
    let keys = dir.join("witness-keys.json").to_string_lossy().into_owned();
    let verify = |path: &Path, keys: &str| {
        hutong(
            &[
                "verify",
                "--genesis",
                &genesis,
                "--bundle",
                &path.to_string_lossy(),
                "--witnesses",
                "2",
                "--witness-keys",
                keys,
            ],
            Duration::from_secs(30),
        )
    };
    let verified = verify(&bundle_path, &keys);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        text(&verified).contains("cosigned by 2 of the 2 required"),
        "{}",
        text(&verified)
    );

    // One cosignature removed: refused, naming the witness whose cosignature is missing.
    let mut fewer = bundle.clone();
    let removed = fewer["witnessed"]["cosignatures"]
        .as_array_mut()
        .expect("cosignatures")
        .pop()
        .expect("one to remove");
    let fewer_path = directory.path().join("fewer.json");
    std::fs::write(&fewer_path, fewer.to_string()).expect("write the bundle");
    let refused = verify(&fewer_path, &keys);
    assert_eq!(refused.status.code(), Some(7), "{}", text(&refused));
    let message = text(&refused);
    assert!(message.contains("too-few-cosignatures"), "{message}");
    let removed_name = removed["witness"].as_str().expect("a witness name");
    assert!(
        message.contains(&format!("missing: {removed_name}")),
        "{message}"
    );

    // A verifier that names a witness which did not cosign (in place of one that did).
    let mut named: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&keys).expect("witness keys"))
            .expect("witness keys parse");
    named["witnesses"][0]["name"] = serde_json::json!("stranger.example");
    let named_path = directory.path().join("other-keys.json");
    std::fs::write(&named_path, named.to_string()).expect("write the keys");
    let refused = verify(&bundle_path, &named_path.to_string_lossy());
    assert_eq!(refused.status.code(), Some(7), "{}", text(&refused));
    assert!(
        text(&refused).contains("missing: stranger.example"),
        "{}",
        text(&refused)
    );

    // `down` stops the witnesses too.
    let down = hutong(
        &["testnet", "down", "--dir", &dir_text],
        Duration::from_secs(60),
    );
    assert!(down.status.success(), "{}", text(&down));
    for witness in &manifest.witnesses {
        assert!(!is_ours(
            witness.pid.expect("pid"),
            Some(&witness.state_path())
        ));
    }
}
