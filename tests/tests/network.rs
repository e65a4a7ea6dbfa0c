//! A network of real node processes on loopback: it commits, agrees, tolerates one of four
//! validators down, halts without forking with two down and resumes, catches up a killed
//! node, refuses an unregistered peer (which, cut off, answers 503 `stale`), keeps an isolated
//! validator from answering verifiers until it reaches its peers, and commits a signer's nonces in order when they reach
//! different nodes out of order. Each test is bounded in time.

use std::time::Duration;

use hutong_tests::{Network, Node};

fn committed_everywhere(
    network: &Network,
    ids: &[hutong_core::hash::Hash32],
    nodes: &[usize],
) -> bool {
    nodes.iter().all(|&index| {
        ids.iter()
            .all(|id| network.nodes[index].transaction_state(id).as_deref() == Some("committed"))
    })
}

fn same_blocks(network: &Network, nodes: &[usize], up_to: u64) {
    for height in 1..=up_to {
        let hashes: Vec<Option<String>> = nodes
            .iter()
            .map(|&index| network.nodes[index].block_hash(height))
            .collect();
        assert!(
            hashes[0].is_some(),
            "block {height} missing on {}",
            network.nodes[nodes[0]].name
        );
        assert!(
            hashes.windows(2).all(|pair| pair[0] == pair[1]),
            "nodes disagree at height {height}: {hashes:?}"
        );
    }
    let roots: Vec<Option<serde_json::Value>> = nodes
        .iter()
        .map(|&index| {
            network.nodes[index]
                .header(up_to)
                .and_then(|header| header.get("state_root").cloned())
        })
        .collect();
    assert!(
        roots.windows(2).all(|pair| pair[0] == pair[1]),
        "state roots differ: {roots:?}"
    );
}

/// Issuances by `issuer` (region `region`), all submitted to node `to`: a department's system
/// sends its own transactions, in nonce order, to one node (see docs/api.md on nonces).
fn submit_from(
    network: &mut Network,
    issuer: &str,
    region: &str,
    first: u64,
    count: u64,
    to: usize,
) -> Vec<hutong_core::hash::Hash32> {
    let mut ids = Vec::new();
    for n in first..first + count {
        let transaction = network.fixture.issue_business_licence(issuer, region, n);
        let node: &Node = &network.nodes[to];
        let (status, body) = node.submit(&transaction).expect("the node answers");
        assert_eq!(status, 202, "submission refused: {body}");
        ids.push(transaction.id(hutong_core::testkit::SUITE));
    }
    ids
}

#[test]
fn four_validators_commit_the_same_blocks() {
    let mut network = Network::new(4);
    network.start_all();
    network.wait_for(
        "every node to commit a block",
        Duration::from_secs(60),
        |network| {
            network
                .heights()
                .iter()
                .all(|height| height.is_some_and(|height| height >= 1))
        },
    );
    // Two departments, each through its own node.
    let first = network
        .fixture
        .issue_business_licence("qd-approval", "370200", 1);
    assert_eq!(network.nodes[0].submit(&first).unwrap().0, 202);
    let mut ids = vec![first.id(hutong_core::testkit::SUITE)];
    ids.extend(submit_from(&mut network, "qd-approval", "370200", 2, 29, 0));
    ids.extend(submit_from(&mut network, "jn-approval", "370800", 1, 30, 2));
    network.wait_for(
        "the transactions committed on every node",
        Duration::from_secs(60),
        |network| committed_everywhere(network, &ids, &[0, 1, 2, 3]),
    );
    let height = network.heights().into_iter().flatten().min().unwrap();
    same_blocks(&network, &[0, 1, 2, 3], height);
    // A replayed transaction is refused and changes nothing; so is a second issuance of
    // a licence number (a new transaction, the same number).
    let root_before = network.nodes[0].header(height).unwrap()["state_root"].clone();
    let (status, body) = network.nodes[0].submit(&first).unwrap();
    assert_eq!(status, 409, "{body}");
    let again = network
        .fixture
        .issue_business_licence("qd-approval", "370200", 1);
    let (status, body) = network.nodes[1].submit(&again).unwrap();
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "duplicate_licence");
    assert_eq!(
        network.nodes[0].header(height).unwrap()["state_root"],
        root_before
    );
    // The metrics name the last block's time and the peers' best height.
    let metrics = network.nodes[0]
        .get("/metrics")
        .and_then(|(_, body)| body.as_str().map(str::to_owned))
        .unwrap_or_default();
    let last_block = hutong_tests::attack::metric_value(&metrics, "hutong_last_block_time_seconds")
        .expect("the last block's time");
    let genesis_seconds = network.fixture.genesis.genesis_time as f64 / 1000.0;
    assert!(
        last_block > genesis_seconds,
        "{last_block} {genesis_seconds}"
    );
    let known = hutong_tests::attack::metric_value(&metrics, "hutong_known_height")
        .expect("the known height");
    let own = hutong_tests::attack::metric_value(&metrics, "hutong_height").expect("the height");
    assert!(own >= 1.0 && known >= own, "{metrics}");
    // A clean stop exits 0.
    assert_eq!(network.nodes[3].stop(), Some(0));
    // The logs, written to files, hold no colour codes, and an empty block is no line at the
    // info level (heartbeat blocks would fill a day's log with them).
    let logs = network.logs();
    assert!(logs.contains("committed"), "the nodes logged their blocks");
    assert!(!logs.contains('\u{1b}'), "a colour code in a log file");
    let empty_at_info = logs
        .lines()
        .filter(|line| line.contains(" INFO ") && line.contains("committed"))
        .find(|line| line.contains("transactions=0"));
    assert_eq!(empty_at_info, None);
}

#[test]
fn one_down_commits_two_down_halts_then_resumes() {
    let mut network = Network::new(4);
    network.start_all();
    network.wait_for("first block", Duration::from_secs(60), |network| {
        network
            .heights()
            .iter()
            .all(|height| height.is_some_and(|height| height >= 1))
    });
    network.nodes[3].kill();
    let ids = submit_from(&mut network, "qd-approval", "370200", 100, 10, 1);
    network.wait_for(
        "commits with three of four",
        Duration::from_secs(60),
        |network| committed_everywhere(network, &ids, &[0, 1, 2]),
    );
    network.nodes[2].kill();
    std::thread::sleep(Duration::from_secs(2));
    let stalled: Vec<u64> = [0, 1]
        .iter()
        .map(|&index| network.nodes[index].height().unwrap())
        .collect();
    let ids = submit_from(&mut network, "qd-approval", "370200", 200, 5, 0);
    std::thread::sleep(Duration::from_secs(5));
    for (position, &index) in [0usize, 1].iter().enumerate() {
        let now = network.nodes[index].height().unwrap();
        assert!(
            now <= stalled[position] + 1,
            "two of four validators committed: {now} after {}",
            stalled[position]
        );
    }
    network.nodes[2].start();
    network.nodes[3].start();
    network.wait_for(
        "the network resumes and everyone catches up",
        Duration::from_secs(90),
        |network| committed_everywhere(network, &ids, &[0, 1, 2, 3]),
    );
    let height = network.heights().into_iter().flatten().min().unwrap();
    same_blocks(&network, &[0, 1, 2, 3], height);
}

#[test]
fn killed_node_restarts_and_catches_up() {
    let mut network = Network::new(4);
    network.start_all();
    network.wait_for("first block", Duration::from_secs(60), |network| {
        network
            .heights()
            .iter()
            .all(|height| height.is_some_and(|height| height >= 1))
    });
    let ids = submit_from(&mut network, "qd-approval", "370200", 300, 10, 0);
    network.nodes[1].kill();
    let more = submit_from(&mut network, "qd-approval", "370200", 400, 10, 2);
    network.wait_for("the others commit", Duration::from_secs(60), |network| {
        committed_everywhere(network, &more, &[0, 2, 3])
    });
    network.nodes[1].start();
    network.wait_for(
        "the killed node catches up",
        Duration::from_secs(90),
        |network| {
            committed_everywhere(network, &ids, &[1]) && committed_everywhere(network, &more, &[1])
        },
    );
    let height = network.nodes[1].height().unwrap();
    same_blocks(
        &network,
        &[0, 1, 2, 3],
        height.min(network.nodes[0].height().unwrap()),
    );
}

#[test]
fn unregistered_peer_cannot_connect() {
    let mut network = Network::new(4);
    network.start_all();
    network.wait_for("first block", Duration::from_secs(60), |network| {
        network
            .heights()
            .iter()
            .all(|height| height.is_some_and(|height| height >= 1))
    });
    // A fifth home with a key nobody registered, dialling every validator.
    let stranger = Network::new_within_turn(4);
    let mut outsider = stranger_node(&network, &stranger);
    outsider.start();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        outsider.peer_count(),
        Some(0),
        "an unregistered node got connected"
    );
    assert_eq!(outsider.height(), Some(0));
    // Cut off, it tells no verifier that a licence was never issued (ADR 0037).
    let (status, problem) = outsider.get("/readyz").unwrap();
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("stale")),
        "{problem}"
    );
    let (status, problem) = outsider
        .get("/v1/licences/business-licence/91370200MA00000015/proof")
        .unwrap();
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("stale")),
        "{problem}"
    );
    assert_eq!(problem["height"], 0, "{problem}");
    let (_, metrics) = network.nodes[0].get("/metrics").unwrap();
    let text = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        text.lines().any(
            |line| line.starts_with("hutong_network_connections_refused_total ")
                && !line.ends_with(" 0")
        ),
        "the refusal was not counted:\n{text}"
    );
    outsider.kill();
}

/// A validator that reaches none of its peers is not ready and answers no verifier (503
/// `stale`, naming its height); once its peers are up it commits with them and is ready.
#[test]
fn an_isolated_validator_is_stale_until_it_reaches_its_peers() {
    let mut network = Network::new(4);
    network.nodes[0].start();
    network.wait_for("the API to answer", Duration::from_secs(30), |network| {
        network.nodes[0].get("/healthz").is_some()
    });
    let (status, problem) = network.nodes[0].get("/readyz").unwrap();
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("stale")),
        "{problem}"
    );
    let (status, problem) = network.nodes[0]
        .get("/v1/licences/business-licence/91370200MA00000015")
        .unwrap();
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("stale")),
        "{problem}"
    );
    assert_eq!(problem["height"], 0, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("no peer"),
        "{problem}"
    );
    for index in 1..4 {
        network.nodes[index].start();
    }
    network.wait_for(
        "the first node to commit and be ready",
        Duration::from_secs(60),
        |network| {
            network.nodes[0].height().is_some_and(|height| height >= 1)
                && network.nodes[0]
                    .get("/readyz")
                    .is_some_and(|(status, _)| status == 200)
        },
    );
    let (status, _) = network.nodes[0]
        .get("/v1/licences/business-licence/91370200MA00000015")
        .unwrap();
    assert_eq!(status, 404, "a fresh node answers again");
}

/// A node of another fixture chain's key set, pointed at `network`'s validators, with the
/// same genesis: its key is not registered there.
fn stranger_node(network: &Network, other: &Network) -> Node {
    let mut node = Node::detached(
        "stranger".into(),
        other.nodes[0].home.clone(),
        other.nodes[0].api.clone(),
        other.nodes[0].p2p_port,
        hutong_core::testkit::secret("stranger"),
    );
    // Same genesis as the network, a foreign key, the network's validators as peers.
    let genesis = std::fs::read_to_string(network.nodes[0].home.join("genesis.json")).unwrap();
    std::fs::write(node.home.join("genesis.json"), genesis).unwrap();
    let key = hutong_core::testkit::secret("stranger");
    hutong_tests::write_key(&node.home.join("node_key.json"), &key);
    let config_path = node.home.join("config.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let peers: Vec<String> = network
        .nodes
        .iter()
        .map(|peer| {
            format!(
                "\"{}@/ip4/127.0.0.1/tcp/{}\"",
                peer.key.public_key(),
                peer.p2p_port
            )
        })
        .collect();
    let start = config.find("peers = ").unwrap();
    let end = start + config[start..].find('\n').unwrap();
    let config = format!(
        "{}peers = [{}]{}",
        &config[..start],
        peers.join(", "),
        &config[end..]
    );
    std::fs::write(&config_path, config).unwrap();
    node.key = key;
    node
}

#[test]
fn a_signers_later_nonce_waits_for_the_earlier_one_sent_to_another_node() {
    let mut network = Network::new(4);
    network.start_all();
    network.wait_for("height 1 everywhere", Duration::from_secs(60), |network| {
        (0..4).all(|index| {
            network.nodes[index]
                .height()
                .is_some_and(|height| height >= 1)
        })
    });
    let signer = "qd-approval";
    let (_, before) = network.nodes[0]
        .get(&format!("/v1/authorities/{signer}/nonce"))
        .expect("node0");
    assert_eq!(before["next"], 1, "{before}");
    let earlier = network
        .fixture
        .issue_business_licence(signer, "370200", 40_000);
    let later = network
        .fixture
        .issue_business_licence(signer, "370200", 40_001);
    assert_eq!(later.payload.nonce, earlier.payload.nonce + 1);
    // The later one first, to node0: admitted, waiting for its predecessor, and not
    // committed while it waits.
    let (status, body) = network.nodes[0].submit(&later).expect("node0");
    assert_eq!(status, 202, "{body}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        network.nodes[0]
            .transaction_state(&later.id(hutong_core::testkit::SUITE))
            .as_deref(),
        Some("pending")
    );
    let (_, waiting) = network.nodes[0]
        .get(&format!("/v1/authorities/{signer}/nonce"))
        .expect("node0");
    assert_eq!(
        waiting["next"], 1,
        "a gap does not move the next nonce: {waiting}"
    );
    // The earlier one, to node2: both commit, in nonce order, everywhere.
    let (status, body) = network.nodes[2].submit(&earlier).expect("node2");
    assert_eq!(status, 202, "{body}");
    let ids = [
        earlier.id(hutong_core::testkit::SUITE),
        later.id(hutong_core::testkit::SUITE),
    ];
    network.wait_for(
        "both transactions committed on every node",
        Duration::from_secs(60),
        |network| committed_everywhere(network, &ids, &[0, 1, 2, 3]),
    );
    let position = |id: &hutong_core::hash::Hash32| {
        let (_, answer) = network.nodes[1]
            .get(&format!("/v1/transactions/{id}"))
            .expect("node1");
        (
            answer["height"].as_u64().expect("height"),
            answer["index"].as_u64().expect("index"),
        )
    };
    assert!(
        position(&earlier.id(hutong_core::testkit::SUITE))
            < position(&later.id(hutong_core::testkit::SUITE))
    );
    let (_, after) = network.nodes[3]
        .get(&format!("/v1/authorities/{signer}/nonce"))
        .expect("node3");
    assert_eq!(after["last_committed"], later.payload.nonce, "{after}");
    assert_eq!(after["next"], later.payload.nonce + 1, "{after}");
}
