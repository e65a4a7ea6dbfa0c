//! One department's flood against a real validator process (ADR 0020): `qd-approval` submits
//! valid issuances as fast as four connections allow, for at most 20,000 transactions or 40 s,
//! while `jn-approval` submits a handful. With a small mempool and small blocks (so that the
//! flood outruns the chain within a second), the flooder is held to its share of the pool
//! (429 `signer_share_exceeded`), the other department's transactions are all admitted at
//! once and commit within a few blocks, the validator keeps committing, and its resident
//! memory stays bounded. With the share lifted, the flooder fills the whole pool and the other
//! department's transactions are still admitted, each evicting one of the flooder's. The
//! figures are printed (and recorded in docs/reliability.md).

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hutong_core::hash::Hash32;
use hutong_core::tx::Transaction;
use hutong_tests::Network;
use hutong_tests::flood::{Flood, Submitter, pid_of_node, resident_kib};

/// The flood's bounds: whichever comes first.
const FLOOD_TRANSACTIONS_MAX: u64 = 20_000;
const FLOOD_DURATION_MAX: Duration = Duration::from_secs(40);
/// Connections the flooder submits over at once.
const FLOOD_CONNECTIONS: usize = 4;
/// The other department's handful.
const OTHER_TRANSACTIONS: u64 = 5;
/// The mempool and block sizes configured for the test: a signer may hold a quarter of the
/// pool (500) and half of a block (50).
const POOL_TRANSACTIONS_MAX: usize = 2_000;
const BLOCK_TRANSACTIONS_MAX: usize = 100;
/// Blocks within which each of the other department's transactions must commit after the
/// block that was the head when it was admitted.
const OTHER_COMMIT_BLOCKS_MAX: u64 = 4;
/// Blocks in the eviction test: small enough that the chain drains the full pool slowly.
const EVICTION_BLOCK_TRANSACTIONS_MAX: usize = 10;
/// The answers to the flooder that these tests expect.
const SHARE_REFUSAL: &str = "429 signer_share_exceeded";
const POOL_FULL: &str = "503 mempool_full";
/// Resident memory the validator may reach during the flood.
const RESIDENT_KIB_MAX: u64 = 1024 * 1024;

/// Builds the single-node network of these tests, with a pool of `POOL_TRANSACTIONS_MAX`, a
/// per-signer pool share of `signer_share_percent`, blocks of at most `block_transactions_max`,
/// and no rate limit on the test's client.
fn network_with(signer_share_percent: usize, block_transactions_max: usize) -> Network {
    let mut network = Network::new(1);
    network.nodes[0].edit_config(|text| {
        text.replacen(
            "transactions_max = 50000",
            &format!("transactions_max = {POOL_TRANSACTIONS_MAX}"),
            1,
        )
        .replace(
            "block_transactions_max = 5000",
            &format!("block_transactions_max = {block_transactions_max}"),
        )
        .replace(
            "signer_share_percent = 25",
            &format!("signer_share_percent = {signer_share_percent}"),
        )
        .replace("batch_wait_ms = 20", "batch_wait_ms = 200")
        .replace(
            "client_requests_per_second = 200",
            "client_requests_per_second = 1000000",
        )
        .replace("client_burst = 400", "client_burst = 1000000")
    });
    let config = std::fs::read_to_string(network.nodes[0].home.join("config.toml")).unwrap();
    assert!(
        config.contains(&format!("transactions_max = {POOL_TRANSACTIONS_MAX}"))
            && config.contains(&format!("\nsigner_share_percent = {signer_share_percent}"))
            && config.contains("block_signer_share_percent = 50"),
        "the test's settings did not apply:\n{config}"
    );
    network.start_all();
    network.wait_for("the first block", Duration::from_secs(30), |network| {
        network.nodes[0].height().is_some_and(|height| height >= 1)
    });
    network
}

/// The flooder's transactions, signed ahead in nonce order so that the flood is as fast as
/// submitting, and the other department's handful.
fn transactions(network: &mut Network) -> (Arc<Vec<Transaction>>, Vec<Transaction>) {
    let flood = (1..=FLOOD_TRANSACTIONS_MAX)
        .map(|number| {
            network
                .fixture
                .issue_business_licence("qd-approval", "370200", number)
        })
        .collect();
    let others = (1..=OTHER_TRANSACTIONS)
        .map(|number| {
            network
                .fixture
                .issue_business_licence("jn-approval", "370800", 1_000_000 + number)
        })
        .collect();
    (Arc::new(flood), others)
}

/// Submits `others` one by one, each of which must be admitted at once; returns each one's id,
/// the head when it was admitted and when.
fn submit_others(network: &Network, others: &[Transaction]) -> Vec<(Hash32, u64, Instant)> {
    let submitter = Submitter::new(&network.nodes[0].api);
    others
        .iter()
        .map(|transaction| {
            let head = network.nodes[0].height().expect("height");
            let answer = submitter
                .submit(transaction)
                .expect("the validator answers");
            assert_eq!(
                answer.status, 202,
                "the other department was refused during the flood: {answer:?}"
            );
            (
                transaction.id(hutong_core::testkit::SUITE),
                head,
                Instant::now(),
            )
        })
        .collect()
}

/// Waits for each of `admitted` to commit within [`OTHER_COMMIT_BLOCKS_MAX`] blocks of its
/// head; returns the blocks each waited and its latency in milliseconds.
fn wait_others_committed(
    network: &Network,
    admitted: &[(Hash32, u64, Instant)],
    mut sample: impl FnMut(),
) -> (Vec<u64>, Vec<u128>) {
    let mut latencies_ms = Vec::new();
    let mut blocks_waited = Vec::new();
    let commit_deadline = Instant::now() + Duration::from_secs(30);
    for (id, head, submitted_at) in admitted {
        loop {
            sample();
            let (_, body) = network.nodes[0]
                .get(&format!("/v1/transactions/{id}"))
                .expect("the validator answers");
            if body.get("state").and_then(|state| state.as_str()) == Some("committed") {
                let height = body["height"].as_u64().expect("a committed height");
                blocks_waited.push(height - head);
                latencies_ms.push(submitted_at.elapsed().as_millis());
                assert!(
                    height <= head + OTHER_COMMIT_BLOCKS_MAX,
                    "transaction {id} admitted at head {head} committed only at {height}"
                );
                break;
            }
            assert!(
                Instant::now() < commit_deadline,
                "transaction {id} did not commit: {body}\n{}",
                network.logs_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    (blocks_waited, latencies_ms)
}

#[test]
fn one_departments_flood_does_not_keep_anothers_transactions_out() {
    let test_started = Instant::now();
    let mut network = network_with(25, BLOCK_TRANSACTIONS_MAX);
    let pid = pid_of_node(&network.nodes[0].home).expect("the validator's process");
    let (flood_transactions, others) = transactions(&mut network);
    let mut flood = Flood::start(
        &network.nodes[0].api,
        flood_transactions,
        FLOOD_CONNECTIONS,
        FLOOD_DURATION_MAX,
    );

    // The flooder reaches its share of the pool.
    let resident_kib_peak = Cell::new(0);
    let sample = || {
        if let Some(kib) = resident_kib(pid) {
            resident_kib_peak.set(resident_kib_peak.get().max(kib));
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while flood.count(SHARE_REFUSAL) == 0 {
        assert!(
            Instant::now() < deadline,
            "the flooder never reached its share: {:?}\n{}",
            flood.answers(),
            network.logs_tail()
        );
        sample();
        std::thread::sleep(Duration::from_millis(50));
    }
    let share_reached_after = flood.elapsed();
    let height_before = network.nodes[0].height().expect("height");

    // The other department's handful: every one admitted at once, while the flood goes on,
    // and each commits within a few blocks.
    let admitted = submit_others(&network, &others);
    assert!(
        flood.count(SHARE_REFUSAL) > 0,
        "the flood is still held to its share"
    );
    let (blocks_waited, latencies_ms) = wait_others_committed(&network, &admitted, sample);

    // The validator keeps committing under the flood.
    let height_after_others = network.nodes[0].height().expect("height");
    network.wait_for(
        "two more blocks under the flood",
        Duration::from_secs(20),
        |network| {
            network.nodes[0]
                .height()
                .is_some_and(|height| height >= height_after_others + 2)
        },
    );
    sample();
    flood.stop();
    let flood_seconds = flood.elapsed().as_secs_f64();
    let height_end = network.nodes[0].height().expect("height");
    sample();

    let admitted_count = flood.count("202");
    let answers = flood.answers();
    eprintln!(
        "flood: {admitted_count} admitted in {flood_seconds:.1} s ({:.0}/s), {} refused as over \
         the signer's share; answers {answers:?}; share reached after {:.2} s; heights \
         {height_before} to {height_end}; the other department's {} transactions committed \
         after {blocks_waited:?} blocks, {latencies_ms:?} ms; validator resident memory peak {} \
         MiB; test took {:.1} s",
        admitted_count as f64 / flood_seconds,
        flood.count(SHARE_REFUSAL),
        share_reached_after.as_secs_f64(),
        admitted.len(),
        resident_kib_peak.get() / 1024,
        test_started.elapsed().as_secs_f64(),
    );
    assert!(
        height_end > height_before,
        "the validator stopped committing"
    );
    assert!(
        resident_kib_peak.get() < RESIDENT_KIB_MAX,
        "the validator's resident memory reached {} KiB",
        resident_kib_peak.get()
    );
    assert!(
        answers
            .keys()
            .all(|key| key == "202" || key == SHARE_REFUSAL),
        "the flooder was refused for a reason other than its share: {answers:?}"
    );
}

/// With the share lifted (`signer_share_percent = 100`, an operator's choice), one department
/// fills the whole pool; the other department's transactions are still admitted at once, each
/// evicting the flooder's highest nonce, which its status then reports as `evicted`; they
/// commit within a few blocks.
#[test]
fn a_full_pool_evicts_the_largest_holders_newest_for_another_department() {
    let mut network = network_with(100, EVICTION_BLOCK_TRANSACTIONS_MAX);
    let (flood_transactions, others) = transactions(&mut network);
    let mut flood = Flood::start(
        &network.nodes[0].api,
        flood_transactions.clone(),
        FLOOD_CONNECTIONS,
        FLOOD_DURATION_MAX,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    // With a share of the whole pool, the flooder that fills it is told it holds its share.
    while flood.count(SHARE_REFUSAL) + flood.count(POOL_FULL) == 0 {
        assert!(
            Instant::now() < deadline,
            "the flooder never filled the pool: {:?}\n{}",
            flood.answers(),
            network.logs_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let filled_after = flood.elapsed();

    // The flood goes on, taking any room a block makes within milliseconds, so that the pool
    // stays full while the other department submits.
    let admitted = submit_others(&network, &others);
    flood.stop();
    // The other department's admissions evicted some of the flooder's transactions (its
    // highest nonces at the time), at most one each; the rest are pending or committed.
    let mut flooded = flood.admitted();
    flooded.sort_unstable();
    let mut evicted = Vec::new();
    let mut kept_newest = None;
    for index in &flooded {
        let id = flood_transactions[*index].id(hutong_core::testkit::SUITE);
        let (status, body) = network.nodes[0]
            .get(&format!("/v1/transactions/{id}"))
            .expect("the validator answers");
        assert_eq!(status, 200, "{body}");
        match (body["state"].as_str(), body["code"].as_str()) {
            (Some("rejected"), Some("evicted")) => evicted.push(*index),
            (Some("pending" | "committed"), _) => kept_newest = Some(*index),
            _ => panic!("the flooder's transaction {id}: {body}"),
        }
    }
    assert!(
        !evicted.is_empty() && evicted.len() <= others.len(),
        "{} of the flooder's transactions were evicted for the other department's {}",
        evicted.len(),
        others.len()
    );
    let (blocks_waited, latencies_ms) = wait_others_committed(&network, &admitted, || {});
    eprintln!(
        "eviction: the flooder filled the pool of {POOL_TRANSACTIONS_MAX} after {:.2} s \
         (answers {:?}); the other department's {} transactions were admitted, evicting the \
         flooder's transactions {evicted:?} (its newest kept: {kept_newest:?}), and committed \
         after {blocks_waited:?} blocks, {latencies_ms:?} ms",
        filled_after.as_secs_f64(),
        flood.answers(),
        admitted.len(),
    );
}
