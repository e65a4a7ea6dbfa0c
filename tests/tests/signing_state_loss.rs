//! A validator whose signing state is lost catches up before it votes (ADR 0028).
//!
//! Four validators commit; one is stopped, its `data/signing_state.json` is deleted, the
//! other three commit further, and it is started again with `hutong run --resync`, as
//! docs/operations.md (section 8) tells an operator. From its log (JSON lines) the test
//! reads the height it caught up to and the height of its first signature after it; it
//! asserts that the catch-up reached at least the height the others had when it was
//! restarted, that it signed nothing at or below that height, that its signing state on disk
//! is of a later height, and that the chain keeps committing with it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hutong_tests::Network;

/// The newest log file of a node's home.
fn newest_log(home: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(home)
        .expect("home")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a log file")
}

/// The fields of the first JSON log line of `path` whose message is `message`.
fn logged(path: &Path, message: &str) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|line| line["fields"].clone())
        .find(|fields| {
            fields["message"]
                .as_str()
                .is_some_and(|text| text.starts_with(message))
        })
}

fn signing_state_height(path: &Path) -> Option<u64> {
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let last = &state["last_signed"];
    last["Vote"]["vote"]["height"]
        .as_u64()
        .or_else(|| last["Proposal"]["proposal"]["height"].as_u64())
}

#[test]
fn a_validator_restarted_without_its_signing_state_signs_only_above_the_height_it_caught_up_to() {
    let started = Instant::now();
    let mut network = Network::new(4);
    let restarted = 3;
    network.nodes[restarted]
        .edit_config(|text| text.replace("format = \"human\"", "format = \"json\""));
    network.start_all();
    network.wait_for("height 3 everywhere", Duration::from_secs(60), |network| {
        network
            .heights()
            .iter()
            .all(|height| height.is_some_and(|height| height >= 3))
    });

    // The operator's mistake: the validator stops and its signing state is lost.
    network.nodes[restarted].stop();
    let signing_state = network.nodes[restarted]
        .home
        .join("data")
        .join("signing_state.json");
    assert!(signing_state.exists(), "the validator had signed");
    std::fs::remove_file(&signing_state).expect("delete the signing state");
    let stopped_at = network.nodes[0].height().expect("node0 answers");
    network.wait_for(
        "the three others to commit past the stopped one",
        Duration::from_secs(60),
        |network| {
            network.nodes[0]
                .height()
                .is_some_and(|height| height >= stopped_at + 3)
        },
    );
    let others_at_restart = (0..3)
        .filter_map(|index| network.nodes[index].height())
        .min()
        .expect("the others answer");

    network.nodes[restarted].start_resync();
    let log = newest_log(&network.nodes[restarted].home);
    network.wait_for(
        "the restarted validator to sign again",
        Duration::from_secs(60),
        |_| logged(&log, "first signature after catching up").is_some(),
    );
    let caught_up = logged(&log, "caught up before voting").expect("the catch-up is logged");
    let first = logged(&log, "first signature after catching up").expect("logged");
    let caught_up_at = caught_up["height"].as_u64().expect("a height");
    let first_signed = first["height"].as_u64().expect("a height");
    println!(
        "stopped at {stopped_at}, others at {others_at_restart} at the restart, caught up to \
         {caught_up_at}, first signature at height {first_signed}"
    );
    assert!(
        caught_up_at >= others_at_restart,
        "the catch-up reached the height the peers had: {caught_up_at} < {others_at_restart}"
    );
    assert!(
        first_signed > caught_up_at,
        "nothing is signed at or below the height caught up to: {first_signed} <= {caught_up_at}"
    );
    assert_eq!(
        first["caught_up_at"].as_u64(),
        Some(caught_up_at),
        "the first signature names the catch-up it follows"
    );
    assert!(
        logged(&log, "catching up before voting").is_some(),
        "the start says why it waits"
    );

    // It votes again and the chain keeps committing, with it.
    let resumed_from = network.nodes[0].height().expect("node0 answers");
    network.wait_for(
        "three more blocks everywhere, the restarted validator included",
        Duration::from_secs(60),
        |network| {
            network
                .heights()
                .iter()
                .all(|height| height.is_some_and(|height| height >= resumed_from + 3))
        },
    );
    let signed = signing_state_height(&signing_state).expect("a signing state written again");
    assert!(
        signed > caught_up_at,
        "its signing state is of a height above the catch-up: {signed}"
    );
    let (_, metrics) = network.nodes[restarted].get("/metrics").expect("metrics");
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics
            .lines()
            .any(|line| line == "hutong_catching_up_before_voting 0"),
        "the catch-up gauge is back to 0"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !text.contains("a signature while catching up before voting"),
        "the core's assertion never fired"
    );
    assert!(started.elapsed() < Duration::from_secs(240));
}
