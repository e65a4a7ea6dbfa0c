//! Attacks on the p2p side of live networks of real `hutong run` processes (ADR 0018).
//!
//! - `strangers_holding_handshakes_do_not_keep_a_restarted_validator_from_its_peers`: four
//!   validators, each held by 80 idle or garbage-sending TCP connections from sixteen loopback
//!   addresses that are not the validators' own, re-opened as the node closes them. One
//!   validator is restarted during the hold: it must be back among its peers and committing
//!   within 10 s; the chain never stalls long; every refusal shows in `/metrics` by reason;
//!   the log stays small.
//! - `forged_catch_up_certificates_are_refused_and_the_node_catches_up_from_an_honest_peer`: a
//!   lagging node whose only reachable peer answers catch-up with forged certificates (the
//!   `testing.forge_catch_up` switch: too little voting power, a signer that is no validator,
//!   signatures over another block) refuses every one, penalises and then bans that peer,
//!   commits nothing from it, and catches up from the honest validator once it is back.
//!
//! The figures they print are recorded in `docs/reliability.md`, "P2p attacks".

use std::time::{Duration, Instant};

use hutong_core::testkit::secret;
use hutong_tests::attack::{Hold, HoldPlan, metric_value};
use hutong_tests::{Network, Node};

/// The `/metrics` text of a node, or an empty string when it does not answer.
fn metrics(node: &Node) -> String {
    node.get("/metrics")
        .and_then(|(_, body)| body.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn refused(metrics: &str, reason: &str) -> u64 {
    metric_value(
        metrics,
        &format!("hutong_p2p_refused_total{{reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0) as u64
}

/// The node's current log file (the newest one in its home) and its size.
fn log_file(node: &Node) -> (std::path::PathBuf, u64) {
    let mut logs: Vec<std::path::PathBuf> = std::fs::read_dir(&node.home)
        .expect("home")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    logs.sort();
    let path = logs.pop().expect("a log file");
    let size = std::fs::metadata(&path).map(|meta| meta.len()).unwrap_or(0);
    (path, size)
}

/// The lines of `path` from byte `from` on.
fn log_since(path: &std::path::Path, from: u64) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(&bytes[(from as usize).min(bytes.len())..]).into_owned()
}

/// The hold lasts this long in all; the restart happens after `SETTLE`.
const HOLD: Duration = Duration::from_secs(35);
const SETTLE: Duration = Duration::from_secs(6);
/// How long the restarted validator may take to be among its peers and committing again.
const REJOIN_MAX: Duration = Duration::from_secs(10);
/// The longest the chain may go without a block during the hold: one validator down makes a
/// quarter of the rounds wait for its proposal timeout (1.5 s in the harness), and a round
/// may fail once more while it rejoins.
const STALL_MAX: Duration = Duration::from_secs(8);
/// The bound on a node's log growth over the hold. Without the line limiter, a hold like this
/// one wrote about 1.5 MB per node per 90 s; the nodes' own debug lines are well under this.
const LOG_GROWTH_BYTES_MAX: u64 = 512 * 1024;

#[test]
fn strangers_holding_handshakes_do_not_keep_a_restarted_validator_from_its_peers() {
    let test_started = Instant::now();
    let mut network = Network::new(4);
    network.start_all();
    network.wait_for(
        "the four validators to commit",
        Duration::from_secs(30),
        |network| {
            network
                .heights()
                .iter()
                .all(|height| height.is_some_and(|height| height >= 2))
        },
    );
    let (watched_log, watched_log_start) = log_file(&network.nodes[0]);

    let plan = HoldPlan {
        ports: network.nodes.iter().map(|node| node.p2p_port).collect(),
        first_source: 10,
        sources: 16,
        connections_per_source: 5,
        garbage_every: 8,
        reopen_after: Duration::ZERO,
        spread_over: Duration::from_secs(3),
    };
    let hold_started = Instant::now();
    let mut hold = Hold::start(&plan);
    eprintln!(
        "holding {} connections per validator from {} addresses",
        usize::from(plan.sources) * plan.connections_per_source,
        plan.sources
    );

    // The chain's progress, seen from node0, sampled through the whole hold.
    let mut last_height = network.nodes[0].height().unwrap_or(0);
    let mut last_advance = Instant::now();
    let mut longest_stall = Duration::ZERO;
    let mut sample = |network: &Network| {
        if let Some(height) = network.nodes[0].height()
            && height > last_height
        {
            last_height = height;
            last_advance = Instant::now();
        }
        longest_stall = longest_stall.max(last_advance.elapsed());
    };

    while hold_started.elapsed() < SETTLE {
        sample(&network);
        std::thread::sleep(Duration::from_millis(200));
    }
    let held_before_restart = metrics(&network.nodes[3]);
    assert!(
        refused(&held_before_restart, "pending_limit") > 0
            && refused(&held_before_restart, "per_address_limit") > 0,
        "the hold did not reach the limits:\n{held_before_restart}"
    );

    // Restart node3 while its port and its peers' ports are held.
    network.nodes[3].stop();
    let height_at_restart = network.nodes[0].height().unwrap_or(0);
    let restarted = Instant::now();
    network.nodes[3].start();
    let mut rejoined = None;
    while restarted.elapsed() < REJOIN_MAX + Duration::from_secs(5) {
        sample(&network);
        let node = &network.nodes[3];
        if node.peer_count().is_some_and(|peers| peers > 0)
            && node
                .height()
                .is_some_and(|height| height > height_at_restart)
        {
            rejoined = Some(restarted.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let rejoined = rejoined.unwrap_or_else(|| {
        panic!(
            "node3 did not rejoin within {:?} under the hold\n{}",
            REJOIN_MAX + Duration::from_secs(5),
            network.logs_tail()
        )
    });
    eprintln!(
        "node3 restarted under the hold: peers > 0 and committing after {:.2} s",
        rejoined.as_secs_f64()
    );
    assert!(
        rejoined <= REJOIN_MAX,
        "node3 took {rejoined:?} to rejoin, more than {REJOIN_MAX:?}"
    );

    while hold_started.elapsed() < HOLD {
        sample(&network);
        std::thread::sleep(Duration::from_millis(200));
    }
    let held_for = hold_started.elapsed();
    let node0_metrics = metrics(&network.nodes[0]);
    let (_, watched_log_end) = log_file(&network.nodes[0]);
    let node0_height = network.nodes[0].height();
    hold.stop();
    eprintln!(
        "hold of {:.0} s: {} connections opened, {} closed by the nodes, {} connects failed",
        held_for.as_secs_f64(),
        hold.counts
            .opened
            .load(std::sync::atomic::Ordering::Relaxed),
        hold.counts
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        hold.counts
            .connect_failed
            .load(std::sync::atomic::Ordering::Relaxed),
    );

    // The chain kept committing.
    eprintln!(
        "longest stretch without a block during the hold: {:.2} s (height {node0_height:?})",
        longest_stall.as_secs_f64()
    );
    assert!(
        longest_stall <= STALL_MAX,
        "the chain stalled for {longest_stall:?} under the hold\n{}",
        network.logs_tail()
    );

    // Every kind of refusal the hold causes is counted by reason.
    let reasons = [
        "pending_limit",
        "per_address_limit",
        "handshake_timeout",
        "protocol_error",
    ];
    for reason in reasons {
        let count = refused(&node0_metrics, reason);
        eprintln!("node0 refused {count} connections: {reason}");
        assert!(count > 0, "no {reason} refusal counted:\n{node0_metrics}");
    }
    assert_eq!(
        refused(&node0_metrics, "unknown_peer"),
        0,
        "no registered peer was refused"
    );

    // The log stayed small: refusal lines are limited per kind and interval.
    let growth = watched_log_end - watched_log_start;
    let added = log_since(&watched_log, watched_log_start);
    let refusal_lines = added
        .lines()
        .filter(|line| line.contains("refused a connection"))
        .count();
    let summary_lines = added
        .lines()
        .filter(|line| line.contains("similar lines of refused connections"))
        .count();
    eprintln!(
        "node0's log grew {growth} bytes over the hold ({refusal_lines} refusal lines, \
         {summary_lines} summaries)"
    );
    // Five lines per kind per 30 s interval, for the four kinds, over at most two intervals;
    // the first interval has ended (the hold is longer), so its summaries are written.
    assert!(
        refusal_lines <= 5 * reasons.len() * 2,
        "{refusal_lines} refusal lines"
    );
    assert!(summary_lines >= 1, "no summary of suppressed lines");
    assert!(
        growth <= LOG_GROWTH_BYTES_MAX,
        "node0's log grew {growth} bytes during the hold"
    );
    assert!(
        test_started.elapsed() < Duration::from_secs(90),
        "the test took {:?}",
        test_started.elapsed()
    );
}

/// The value of the node's `hutong_rejected_messages_total{reason=...}`.
fn rejected(metrics: &str, reason: &str) -> u64 {
    metric_value(
        metrics,
        &format!("hutong_rejected_messages_total{{reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0) as u64
}

#[test]
fn forged_catch_up_certificates_are_refused_and_the_node_catches_up_from_an_honest_peer() {
    let test_started = Instant::now();
    let forger_key = secret("node-1").public_key();
    let late_key = secret("node-2").public_key();
    // node0 alone holds voting power; node1 (the forger) and node2 (the late node) follow.
    let mut network = Network::with_genesis(3, |genesis| {
        for node in &mut genesis.nodes {
            if node.key == forger_key || node.key == late_key {
                node.power = 0;
            }
        }
    });
    for node in &network.nodes {
        node.edit_config(|text| {
            text.replace("heartbeat_ms = 500", "heartbeat_ms = 1")
                .replace("timeout_precommit_ms = 500", "timeout_precommit_ms = 50")
        });
    }
    network.nodes[1]
        .edit_config(|text| format!("{text}\n[testing]\nenabled = true\nforge_catch_up = true\n"));
    network.nodes[0].start();
    network.nodes[1].start();
    let target = 100;
    network.wait_for(
        &format!("{target} blocks on node0 and the forger"),
        Duration::from_secs(60),
        |network| {
            (0..2).all(|index| {
                network.nodes[index]
                    .height()
                    .is_some_and(|height| height >= target)
            })
        },
    );

    // The honest validator goes away; the late node finds only the forger.
    network.nodes[0].stop();
    network.nodes[2].start();
    let refusals = [
        "bad_certificate_insufficient_power",
        "bad_certificate_unknown_signer",
        "bad_certificate_bad_signature",
    ];
    network.wait_for(
        "the late node to refuse each forgery and ban the forger",
        Duration::from_secs(30),
        |network| {
            let text = metrics(&network.nodes[2]);
            refusals.iter().all(|reason| rejected(&text, reason) >= 1)
                && metric_value(&text, "hutong_network_peers_banned_total").unwrap_or(0.0) >= 1.0
        },
    );
    let late_metrics = metrics(&network.nodes[2]);
    for reason in refusals {
        eprintln!(
            "the late node refused {} answers: {reason}",
            rejected(&late_metrics, reason)
        );
    }
    eprintln!(
        "penalties: {}, bans: {}",
        metric_value(&late_metrics, "hutong_network_peers_penalised_total").unwrap_or(0.0),
        metric_value(&late_metrics, "hutong_network_peers_banned_total").unwrap_or(0.0)
    );
    assert_eq!(
        network.nodes[2].height(),
        Some(0),
        "the late node committed a block with a forged certificate"
    );
    let (log, _) = log_file(&network.nodes[2]);
    let log_text = log_since(&log, 0);
    assert!(
        log_text.contains("bad certificate; peer penalised")
            && log_text.contains(&forger_key.to_string()),
        "the refusals are not logged with the forger's key"
    );

    // The honest validator comes back: the late node catches up from it alone.
    network.nodes[0].start();
    let honest = network.nodes[1].height().expect("the forger answers");
    network.wait_for(
        "the late node to reach the honest height",
        Duration::from_secs(45),
        |network| {
            network.nodes[2]
                .height()
                .is_some_and(|height| height >= honest)
        },
    );
    for height in [1, honest / 2, honest] {
        let ours = network.nodes[2]
            .get(&format!("/v1/blocks/{height}"))
            .map(|(_, body)| body["block"].clone());
        let theirs = network.nodes[0]
            .get(&format!("/v1/blocks/{height}"))
            .map(|(_, body)| body["block"].clone());
        assert!(ours.is_some(), "block {height} missing");
        assert_eq!(
            ours, theirs,
            "block {height} (with its certificate) differs"
        );
    }
    assert_eq!(
        network.nodes[2].headers(1, honest),
        network.nodes[0].headers(1, honest)
    );
    eprintln!(
        "the late node reached {honest} from the honest peer; test took {:.1} s",
        test_started.elapsed().as_secs_f64()
    );
    assert!(test_started.elapsed() < Duration::from_secs(90));
}
