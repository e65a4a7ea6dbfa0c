//! Four validators on a real network: one network namespace per validator, links the kernel
//! cuts, delays and makes lossy (`tests/src/netns.rs`). Each scenario is bounded in time and
//! ends with every node agreeing on the chain: the same block hash and state root at a
//! common height.
//!
//! They need root and iproute2 (`ip`, `tc`), and the delay and loss scenarios a kernel with
//! `netem` or, without it, `iptables` (the statistic match and the NFQUEUE target); elsewhere
//! each test says why and passes without running. `.ci/run` runs as root and installs iproute2
//! and iptables when they are missing. The figures these
//! tests print are recorded in docs/reliability.md ("Real networks").

use std::time::{Duration, Instant};

use hutong_tests::Network;
use hutong_tests::netns::{self, Impairment, Lab, Means};

const VALIDATORS: usize = 4;
/// The network commits its first blocks within this after the processes start.
const START_WAIT: Duration = Duration::from_secs(45);
/// A network with a quorum commits `PROGRESS_BLOCKS` more blocks within this (heartbeat
/// blocks every 500 ms in the test configuration; rounds of 1.5 s when a proposer is away).
const PROGRESS_WAIT: Duration = Duration::from_secs(40);
const PROGRESS_BLOCKS: u64 = 5;
/// How long a side without a quorum is watched for commits.
const NO_QUORUM_WATCH: Duration = Duration::from_secs(8);
/// In-flight messages delivered just before a partition may complete one block; after this
/// nothing more is in flight.
const PARTITION_SETTLE: Duration = Duration::from_secs(3);

/// Packets counted before the share lost is judged, and how long the count may take (four
/// idle validators exchange about 300 packets a second).
const LOSS_PACKETS_MIN: u64 = 4_000;
const LOSS_COUNT_WAIT: Duration = Duration::from_secs(40);

/// The lab and the network placed in it. The lab is dropped first: its processes end before
/// the network's homes are removed.
struct Real {
    lab: Lab,
    network: Network,
}

/// A started [`Real`], or `None` (with the reason printed) when the machine cannot make
/// namespaces.
fn lab() -> Option<Real> {
    if let Some(reason) = netns::unavailable() {
        eprintln!("skipping the real-network tests: {reason}");
        return None;
    }
    let mut network = Network::new(VALIDATORS);
    let mut lab = Lab::new(VALIDATORS);
    lab.place(&mut network);
    for (index, node) in network.nodes.iter().enumerate() {
        lab.start(index, &node.home);
    }
    Some(Real { lab, network })
}

fn height(lab: &Lab, network: &Network, index: usize) -> Option<u64> {
    let (status, body) = lab.get(index, &format!("{}/v1/node", network.nodes[index].api))?;
    (status == 200)
        .then(|| body.get("height")?.as_u64())
        .flatten()
}

/// The block hash and state root of block `height` as node `index` serves it.
fn block_at(lab: &Lab, network: &Network, index: usize, height: u64) -> Option<(String, String)> {
    let (status, body) = lab.get(
        index,
        &format!("{}/v1/blocks/{height}", network.nodes[index].api),
    )?;
    if status != 200 {
        return None;
    }
    let hash = body.get("hash")?.as_str()?.to_owned();
    let root = body
        .get("block")?
        .get("header")?
        .get("state_root")?
        .as_str()?
        .to_owned();
    Some((hash, root))
}

fn logs(network: &Network) -> String {
    network.logs_tail()
}

/// Waits until every node in `nodes` is at `target` or above; the time it took.
fn wait_all_at(
    lab: &Lab,
    network: &Network,
    nodes: &[usize],
    target: u64,
    timeout: Duration,
    what: &str,
) -> Duration {
    let started = Instant::now();
    loop {
        let heights: Vec<Option<u64>> = nodes
            .iter()
            .map(|&index| height(lab, network, index))
            .collect();
        if heights
            .iter()
            .all(|height| height.is_some_and(|h| h >= target))
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "{what}: nodes {nodes:?} not all at height {target} within {timeout:?} (heights {heights:?})\n{}",
            logs(network)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn heights(lab: &Lab, network: &Network) -> Vec<Option<u64>> {
    (0..VALIDATORS)
        .map(|index| height(lab, network, index))
        .collect()
}

fn highest(lab: &Lab, network: &Network, nodes: &[usize]) -> u64 {
    nodes
        .iter()
        .filter_map(|&index| height(lab, network, index))
        .max()
        .unwrap_or(0)
}

/// Waits until all four are at least one block past `height`, then checks they hold the same
/// block (hash and state root) there.
fn assert_all_agree_past(lab: &Lab, network: &Network, height: u64, what: &str) {
    let target = height + 1;
    wait_all_at(
        lab,
        network,
        &[0, 1, 2, 3],
        target,
        PROGRESS_WAIT,
        &format!("{what}: catching up"),
    );
    let blocks: Vec<Option<(String, String)>> = (0..VALIDATORS)
        .map(|index| block_at(lab, network, index, target))
        .collect();
    assert!(
        blocks[0].is_some() && blocks.iter().all(|block| *block == blocks[0]),
        "{what}: the nodes disagree at height {target}: {blocks:?}"
    );
}

/// The network's first blocks, with the time they took.
fn started(lab: &Lab, network: &Network) -> u64 {
    let took = wait_all_at(lab, network, &[0, 1, 2, 3], 2, START_WAIT, "start");
    let at = highest(lab, network, &[0, 1, 2, 3]);
    eprintln!("four validators in namespaces at height {at} after {took:?}");
    at
}

#[test]
fn one_validator_cut_off_and_healed() {
    let Some(mut real) = lab() else {
        return;
    };
    let Real { lab, network } = &mut real;
    started(lab, network);
    lab.cut(3);
    let cut_at = highest(lab, network, &[0, 1, 2]);
    let took = wait_all_at(
        lab,
        network,
        &[0, 1, 2],
        cut_at + PROGRESS_BLOCKS,
        PROGRESS_WAIT,
        "three of four with the fourth cut off",
    );
    eprintln!("cut: three validators committed {PROGRESS_BLOCKS} blocks in {took:?}");
    let behind = height(lab, network, 3).unwrap_or(0);
    // The cut is real: the fourth did not follow the others.
    assert!(
        behind < cut_at + PROGRESS_BLOCKS,
        "the cut-off validator reached {behind}, as far as the others"
    );
    lab.heal(3);
    let healed_at = highest(lab, network, &[0, 1, 2]);
    let started_healing = Instant::now();
    assert_all_agree_past(lab, network, healed_at, "after healing the cut");
    eprintln!(
        "cut: the fourth, at {behind} while the others reached {healed_at}, agreed with them {:?} after healing",
        started_healing.elapsed()
    );
    assert!(lab.is_running(3));
}

/// With `impairment` on every link, the chain commits [`PROGRESS_BLOCKS`] within
/// [`PROGRESS_WAIT`] and all four agree. `check` is handed the lab once the impairment is in
/// place, to show that it acts.
fn commits_impaired(impairment: Impairment, what: &str, check: impl Fn(&Lab, &Network, Means)) {
    let Some(mut real) = lab() else {
        return;
    };
    started(&real.lab, &real.network);
    let means = match real.lab.impair_all(impairment) {
        Ok(means) => means,
        Err(reason) => {
            eprintln!("skipping: {reason}");
            return;
        }
    };
    let Real { lab, network } = &real;
    let from = highest(lab, network, &[0, 1, 2, 3]);
    let took = wait_all_at(
        lab,
        network,
        &[0, 1, 2, 3],
        from + PROGRESS_BLOCKS,
        PROGRESS_WAIT,
        what,
    );
    eprintln!("{what} ({means:?}): {PROGRESS_BLOCKS} blocks in {took:?}");
    assert_all_agree_past(lab, network, from + PROGRESS_BLOCKS, what);
    check(lab, network, means);
}

/// The API address (host:port) of node `index`.
fn api_address(network: &Network, index: usize) -> String {
    network.nodes[index]
        .api
        .trim_start_matches("http://")
        .to_owned()
}

#[test]
fn the_chain_commits_with_50_ms_on_every_link() {
    let delay = Duration::from_millis(50);
    commits_impaired(
        Impairment::Delay(delay),
        "50 ms delay",
        |lab, network, _| {
            // A connection takes one round trip: the delay of each direction.
            let connect = lab
                .connect_time(0, &api_address(network, 1))
                .expect("host 0 reaches host 1");
            eprintln!("50 ms delay: a TCP connection from host 0 to host 1 took {connect:?}");
            assert!(
                connect >= 2 * delay,
                "the links are not delayed: a connection took {connect:?}"
            );
        },
    );
}

#[test]
fn the_chain_commits_with_5_percent_loss_on_every_link() {
    commits_impaired(
        Impairment::Loss { percent: 5 },
        "5% loss",
        |lab, _network, means| {
            if means != Means::Netfilter {
                return;
            }
            // The kernel counts what the rule dropped: about one packet in twenty, over
            // enough packets (a binomial share of 4,000 has a standard deviation of 0.35%).
            let counts = || {
                (0..VALIDATORS)
                    .map(|host| lab.netfilter_drops(host))
                    .fold((0, 0), |(d, a), (dh, ah)| (d + dh, a + ah))
            };
            let deadline = Instant::now() + LOSS_COUNT_WAIT;
            let (dropped, arrived) = loop {
                let (dropped, arrived) = counts();
                if arrived >= LOSS_PACKETS_MIN || Instant::now() > deadline {
                    break (dropped, arrived);
                }
                std::thread::sleep(Duration::from_millis(200));
            };
            let percent = 100.0 * dropped as f64 / arrived.max(1) as f64;
            eprintln!("5% loss: {dropped} of {arrived} arriving packets dropped ({percent:.2}%)");
            assert!(
                arrived >= LOSS_PACKETS_MIN && (3.5..6.5).contains(&percent),
                "the links do not lose about 5%: {dropped} of {arrived}"
            );
        },
    );
}

#[test]
fn a_two_two_partition_commits_nothing_and_heals() {
    let Some(real) = lab() else {
        return;
    };
    let Real { lab, network } = &real;
    started(lab, network);
    lab.partition(&[2, 3]);
    std::thread::sleep(PARTITION_SETTLE);
    let during = heights(lab, network);
    assert!(
        during.iter().all(Option::is_some),
        "a node stopped answering: {during:?}"
    );
    std::thread::sleep(NO_QUORUM_WATCH);
    let after = heights(lab, network);
    assert_eq!(
        during,
        after,
        "a side with half the voting power committed during the partition\n{}",
        logs(network)
    );
    eprintln!("partition 2-2: heights {during:?} unchanged for {NO_QUORUM_WATCH:?}");
    lab.heal_partition();
    let at = during.iter().flatten().copied().max().unwrap_or(0);
    let healing = Instant::now();
    assert_all_agree_past(lab, network, at + 1, "after healing the partition");
    eprintln!(
        "partition 2-2: all four agreed {:?} after healing",
        healing.elapsed()
    );
}
