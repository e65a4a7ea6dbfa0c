//! Catching up after a long absence. A node that starts behind fetches blocks from its peers,
//! verifies each commit certificate against the validator set of its height, re-executes each
//! block, and then takes part in consensus.
//!
//! The blocks are empty heartbeat blocks, made quickly: the tests lower `heartbeat_ms` (and the
//! round timeouts) in the nodes' configuration.
//!
//! - `a_node_down_for_a_thousand_blocks_catches_up_and_joins_consensus`: one validator makes
//!   1000 blocks while a second registered node is down (up only until the first block: the
//!   validator, new and without a signing state, signs once a registered peer has reported its
//!   height); the second starts, catches up, and
//!   is then given voting power by a governance record, after which no block commits without
//!   its precommit. One validator alone makes blocks fastest, so this is the default test.
//! - `a_validator_down_among_four_catches_up`: the same with one of four validators down while
//!   the three others make blocks (a quarter of the heights then wait for the absent
//!   proposer's timeout, which makes it slower): 100 blocks by default, 1000 with
//!   `HUTONG_SOAK=1`.
//!
//! `HUTONG_CATCH_UP_BLOCKS` overrides the number of blocks of both.

use std::time::{Duration, Instant};

use hutong_core::records::{NodeChange, NodeEntry};
use hutong_core::testkit::secret;
use hutong_core::tx::TxBody;
use hutong_tests::Network;

fn blocks_behind(default: u64) -> u64 {
    std::env::var("HUTONG_CATCH_UP_BLOCKS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

fn fast_blocks(network: &Network, propose_ms: u64) {
    for node in &network.nodes {
        node.edit_config(|text| {
            text.replace("heartbeat_ms = 500", "heartbeat_ms = 1")
                .replace(
                    "timeout_propose_ms = 1500",
                    &format!("timeout_propose_ms = {propose_ms}"),
                )
                .replace("timeout_precommit_ms = 500", "timeout_precommit_ms = 50")
        });
    }
}

/// The number of blocks `index` committed through catch-up, from its metrics.
fn caught_up_blocks(network: &Network, index: usize) -> u64 {
    let (_, metrics) = network.nodes[index].get("/metrics").expect("metrics");
    metrics
        .as_str()
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with("hutong_catch_up_blocks"))
        .and_then(|line| line.split_whitespace().last())
        .and_then(|value| value.parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

/// Waits until `index` reaches `height`, then checks it holds the same headers as `other`.
fn catches_up(network: &Network, index: usize, other: usize, height: u64) {
    let started = Instant::now();
    network.wait_for(
        &format!("{} to catch up to {height}", network.nodes[index].name),
        Duration::from_secs(60),
        |network| {
            network.nodes[index]
                .height()
                .is_some_and(|reached| reached >= height)
        },
    );
    eprintln!(
        "{} fetched, verified and re-executed {height} blocks in {:.1} s",
        network.nodes[index].name,
        started.elapsed().as_secs_f64()
    );
    let ours = network.nodes[index].headers(1, height).expect("headers");
    let theirs = network.nodes[other].headers(1, height).expect("headers");
    assert_eq!(ours.len() as u64, height);
    assert_eq!(ours, theirs, "the chains differ");
    let synced = caught_up_blocks(network, index);
    assert!(
        synced * 10 >= height * 9,
        "{} committed only {synced} of {height} blocks through catch-up",
        network.nodes[index].name
    );
}

#[test]
fn a_node_down_for_a_thousand_blocks_catches_up_and_joins_consensus() {
    let target = blocks_behind(1000);
    let late = secret("node-1").public_key();
    // node1 is registered with no voting power: node0 alone makes the blocks.
    let mut network = Network::with_genesis(2, |genesis| {
        for node in &mut genesis.nodes {
            if node.key == late {
                node.power = 0;
            }
        }
    });
    fast_blocks(&network, 1500);
    // A validator without a signing state signs only after a registered peer has reported
    // its height (ADR 0028): node1 is up until node0 has made its first block, then down.
    network.nodes[0].start();
    network.nodes[1].start();
    network.wait_for("node0's first block", Duration::from_secs(30), |network| {
        network.nodes[0].height().is_some_and(|height| height >= 1)
    });
    network.nodes[1].stop();
    let started = Instant::now();
    network.wait_for(
        &format!("{target} blocks while node1 is down"),
        Duration::from_secs(90),
        |network| {
            network.nodes[0]
                .height()
                .is_some_and(|height| height >= target)
        },
    );
    eprintln!(
        "{target} blocks made in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    network.nodes[1].start();
    let behind = network.nodes[0].height().expect("node0 answers");
    catches_up(&network, 1, 0, behind);

    // node1 joins consensus: a governance record gives it the same power as node0 from a
    // later height on, after which every block needs both precommits.
    let now = network.nodes[0].height().expect("node0 answers");
    let effective = now + 40;
    let change = network.fixture.governance(
        TxBody::ChangeValidators {
            changes: vec![NodeChange::Set(NodeEntry {
                key: late,
                authority: "gov-b".into(),
                power: 1,
            })],
            effective_height: effective,
        },
        3,
    );
    let (status, body) = network.nodes[0].submit(&change).expect("node0 answers");
    assert_eq!(status, 202, "{body}");
    network.wait_for(
        "blocks after node1 became a validator",
        Duration::from_secs(30),
        |network| {
            (0..2).all(|index| {
                network.nodes[index]
                    .height()
                    .is_some_and(|height| height >= effective + 5)
            })
        },
    );
    let (_, block) = network.nodes[0]
        .get(&format!("/v1/blocks/{}", effective + 5))
        .expect("block");
    let signers: Vec<String> = block["block"]["certificate"]["signatures"]
        .as_array()
        .expect("signatures")
        .iter()
        .filter_map(|signature| signature["validator"].as_str().map(str::to_owned))
        .collect();
    assert!(
        signers.contains(&late.to_string()),
        "node1 did not sign block {}: {signers:?}",
        effective + 5
    );
    let end = effective + 5;
    assert_eq!(
        network.nodes[0].headers(1, end),
        network.nodes[1].headers(1, end),
        "the chains differ after node1 joined"
    );
}

#[test]
fn a_validator_down_among_four_catches_up() {
    let default = if std::env::var("HUTONG_SOAK").is_ok() {
        1000
    } else {
        100
    };
    let target = blocks_behind(default);
    let mut network = Network::new(4);
    fast_blocks(&network, 150);
    for index in 0..3 {
        network.nodes[index].start();
    }
    network.wait_for(
        &format!("{target} blocks while node3 is down"),
        Duration::from_secs(target / 4 + 60),
        |network| {
            network.nodes[0]
                .height()
                .is_some_and(|height| height >= target)
        },
    );
    network.nodes[3].start();
    let behind = network.nodes[0].height().expect("node0 answers");
    catches_up(&network, 3, 0, behind);

    // With node0 stopped, nodes 1 and 2 alone are short of a quorum: new blocks need node3.
    network.nodes[0].stop();
    let from = network.nodes[3].height().expect("node3 answers");
    network.wait_for(
        "blocks committed with node3's votes",
        Duration::from_secs(30),
        |network| {
            [1, 2, 3].iter().all(|&index| {
                network.nodes[index]
                    .height()
                    .is_some_and(|height| height >= from + 3)
            })
        },
    );
    assert_eq!(
        network.nodes[3].headers(1, from + 3),
        network.nodes[1].headers(1, from + 3)
    );
}
