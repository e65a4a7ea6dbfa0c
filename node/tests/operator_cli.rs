//! Operator commands run as an operations team would run them: each case is a defect found by
//! following docs/operations.md by hand, run through the binary with its exit code and words.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

const CONFIG: i32 = 3;

fn hutong_in(directory: &Path, args: &[&str]) -> common::Outcome {
    common::hutong_in(Some(directory), args)
}

/// The genesis file of the recorded vectors, and the same with another chain id.
fn genesis_files(dir: &Path) -> (PathBuf, PathBuf) {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../verify/tests/vectors/proofs.json");
    let vectors: Value =
        serde_json::from_slice(&std::fs::read(path).expect("read the vectors")).expect("json");
    let genesis = vectors["genesis"].clone();
    let mut other = genesis.clone();
    other["chain_id"] = Value::from("hutong-other");
    let first = dir.join("genesis-a.json");
    let second = dir.join("genesis-b.json");
    std::fs::write(&first, serde_json::to_vec(&genesis).expect("json")).expect("write");
    std::fs::write(&second, serde_json::to_vec(&other).expect("json")).expect("write");
    (first, second)
}

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn genesis_writes_a_checked_file_given_by_a_bare_name_and_prints_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (genesis, _) = genesis_files(dir.path());
    let outcome = hutong_in(
        dir.path(),
        &[
            "genesis",
            "--input",
            text(&genesis),
            "--out",
            "genesis.checked.json",
        ],
    );
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let hash = outcome.stdout.trim();
    assert_eq!(hash.len(), 64, "{hash}");
    let written = std::fs::read(dir.path().join("genesis.checked.json")).expect("written");
    let checked = hutong_core::genesis::Genesis::from_json(&written).expect("a genesis file");
    assert_eq!(checked.hash().to_string(), hash);
}

#[test]
fn run_help_says_what_the_home_is() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = hutong_in(dir.path(), &["run", "--help"]);
    assert_eq!(outcome.code, 0);
    let home_line = outcome
        .stdout
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("--home"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(home_line.contains("home directory"), "{}", outcome.stdout);
}

#[test]
fn init_force_with_another_chain_over_a_store_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = genesis_files(dir.path());
    let home = dir.path().join("node");
    let init = |genesis: &Path, force: bool| {
        let mut args = vec!["init", "--home", text(&home), "--genesis", text(genesis)];
        if force {
            args.push("--force");
        }
        hutong_in(dir.path(), &args)
    };
    assert_eq!(init(&first, false).code, 0);
    // The node ran: its data directory holds a store.
    std::fs::create_dir_all(home.join("data/store")).unwrap();
    std::fs::write(home.join("data/store/db"), b"a store").unwrap();
    let genesis_before = std::fs::read(home.join("genesis.json")).unwrap();
    let config_before = std::fs::read(home.join("config.toml")).unwrap();

    let refused = init(&second, true);
    assert_eq!(refused.code, CONFIG, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("holds the store of chain")
            && refused.stderr.contains("hutong-other")
            && refused.stderr.contains("belongs to one chain"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read(home.join("genesis.json")).unwrap(),
        genesis_before
    );
    assert_eq!(
        std::fs::read(home.join("config.toml")).unwrap(),
        config_before
    );

    // The same chain again with --force replaces the configuration, as asked.
    let again = init(&first, true);
    assert_eq!(again.code, 0, "{}", again.stderr);
}

/// `hutong init` of a home, its config.toml edited by `edit`, then `hutong run`: it must stop
/// with exit code 3, naming `expected`, before it opens anything in the data directory.
fn refused_before_opening(edit: impl FnOnce(String) -> String, expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (genesis, _) = genesis_files(dir.path());
    let home = dir.path().join("node");
    let init = hutong_in(
        dir.path(),
        &["init", "--home", text(&home), "--genesis", text(&genesis)],
    );
    assert_eq!(init.code, 0, "{}", init.stderr);
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    let edited = edit(config.clone());
    assert_ne!(edited, config, "the edit changed the file");
    std::fs::write(home.join("config.toml"), edited).unwrap();
    let run = hutong_in(dir.path(), &["run", "--home", text(&home)]);
    assert_eq!(run.code, CONFIG, "{}", run.stderr);
    assert!(run.stderr.contains(expected), "{}", run.stderr);
    assert!(
        std::fs::read_dir(home.join("data"))
            .unwrap()
            .next()
            .is_none(),
        "nothing was opened in the data directory"
    );
}

#[test]
fn run_refuses_a_misspelt_log_level_before_opening_anything() {
    refused_before_opening(
        |config| config.replace("level = \"info\"", "level = \"warning\""),
        "log.level",
    );
}

#[test]
fn run_refuses_a_bad_api_port_a_bad_peer_or_a_bad_rate_before_opening_anything() {
    refused_before_opening(
        |config| {
            config.replace(
                "listen = \"127.0.0.1:8080\"",
                "listen = \"127.0.0.1:99999\"",
            )
        },
        "api.listen",
    );
    refused_before_opening(
        |config| config.replace("peers = []", "peers = [\"abc@/ip4/127.0.0.1/tcp/1\"]"),
        "p2p.peers entry",
    );
    refused_before_opening(
        |config| {
            config.replace(
                "trusted_proxies = []",
                &format!(
                    "trusted_proxies = [{}]",
                    vec!["\"10.0.0.1\""; 65].join(", ")
                ),
            )
        },
        "trusted_proxies",
    );
}
