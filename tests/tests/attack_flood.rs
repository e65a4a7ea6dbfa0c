//! One department's flood against a real validator process (ADR 0020): `qd-approval` submits
//! valid issuances as fast as four connections allow, for at most 20,000 transactions or 40 s,
//! while `jn-approval` submits a handful. With a small mempool and small blocks (so that the
//! flood outruns the chain within a second), the flooder is held to its share of the pool
//! (429 `signer_share_exceeded`), the other department's transactions are all admitted at
//! once and commit within a few blocks, the validator keeps committing, and its resident
//! memory stays bounded. The figures are printed (and recorded in docs/reliability.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hutong_core::hash::Hash32;
use hutong_core::tx::Transaction;
use hutong_tests::Network;
use hutong_tests::flood::{Submitter, pid_of_node, resident_kib};

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
/// Resident memory the validator may reach during the flood.
const RESIDENT_KIB_MAX: u64 = 1024 * 1024;

#[derive(Debug, Default)]
struct FloodCounts {
    admitted: AtomicU64,
    share_refusals: AtomicU64,
    other_refusals: AtomicU64,
}

#[test]
fn one_departments_flood_does_not_keep_anothers_transactions_out() {
    let test_started = Instant::now();
    let mut network = Network::new(1);
    network.nodes[0].edit_config(|text| {
        text.replacen(
            "transactions_max = 50000",
            &format!("transactions_max = {POOL_TRANSACTIONS_MAX}"),
            1,
        )
        .replace(
            "block_transactions_max = 5000",
            &format!("block_transactions_max = {BLOCK_TRANSACTIONS_MAX}"),
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
            && config.contains("signer_share_percent = 25")
            && config.contains("block_signer_share_percent = 50"),
        "the test's settings did not apply:\n{config}"
    );
    network.start_all();
    network.wait_for("the first block", Duration::from_secs(30), |network| {
        network.nodes[0].height().is_some_and(|height| height >= 1)
    });
    let pid = pid_of_node(&network.nodes[0].home).expect("the validator's process");
    let api = network.nodes[0].api.clone();

    // Signed ahead, in nonce order, so that the flood is as fast as submitting.
    let flood: Arc<Vec<Transaction>> = Arc::new(
        (1..=FLOOD_TRANSACTIONS_MAX)
            .map(|number| {
                network
                    .fixture
                    .issue_business_licence("qd-approval", "370200", number)
            })
            .collect(),
    );
    let others: Vec<Transaction> = (1..=OTHER_TRANSACTIONS)
        .map(|number| {
            network
                .fixture
                .issue_business_licence("jn-approval", "370800", 1_000_000 + number)
        })
        .collect();

    let counts = Arc::new(FloodCounts::default());
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let flood_started = Instant::now();
    let flooders: Vec<_> = (0..FLOOD_CONNECTIONS)
        .map(|_| {
            let (flood, counts, next, stop, api) = (
                flood.clone(),
                counts.clone(),
                next.clone(),
                stop.clone(),
                api.clone(),
            );
            std::thread::spawn(move || {
                let submitter = Submitter::new(&api);
                'transactions: loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(transaction) = flood.get(index) else {
                        return;
                    };
                    // The same transaction again until it is taken: its nonce must not be
                    // skipped, or the ones after it would wait.
                    loop {
                        if stop.load(Ordering::Relaxed)
                            || flood_started.elapsed() > FLOOD_DURATION_MAX
                        {
                            return;
                        }
                        match submitter.submit(transaction) {
                            Some(answer) if answer.status == 202 => {
                                counts.admitted.fetch_add(1, Ordering::Relaxed);
                                continue 'transactions;
                            }
                            Some(answer)
                                if answer.status == 429
                                    && answer.code.as_deref() == Some("signer_share_exceeded") =>
                            {
                                counts.share_refusals.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {
                                counts.other_refusals.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            })
        })
        .collect();

    // The flooder reaches its share of the pool.
    let mut resident_kib_peak = 0;
    let sample = |peak: &mut u64| {
        if let Some(kib) = resident_kib(pid) {
            *peak = (*peak).max(kib);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while counts.share_refusals.load(Ordering::Relaxed) == 0 {
        assert!(
            Instant::now() < deadline,
            "the flooder never reached its share: {counts:?}\n{}",
            network.logs_tail()
        );
        sample(&mut resident_kib_peak);
        std::thread::sleep(Duration::from_millis(50));
    }
    let share_reached_after = flood_started.elapsed();
    let height_before = network.nodes[0].height().expect("height");

    // The other department's handful: every one admitted at once, while the flood goes on.
    let submitter = Submitter::new(&api);
    let mut admitted: Vec<(Hash32, u64, Instant)> = Vec::new();
    for transaction in &others {
        let head = network.nodes[0].height().expect("height");
        let answer = submitter
            .submit(transaction)
            .expect("the validator answers");
        assert_eq!(
            answer.status, 202,
            "the other department was refused during the flood: {answer:?}"
        );
        admitted.push((
            transaction.id(hutong_core::testkit::SUITE),
            head,
            Instant::now(),
        ));
    }
    assert!(
        counts.share_refusals.load(Ordering::Relaxed) > 0,
        "the flood is still held to its share"
    );

    // Each commits within a few blocks.
    let mut latencies_ms = Vec::new();
    let mut blocks_waited = Vec::new();
    let commit_deadline = Instant::now() + Duration::from_secs(30);
    for (id, head, submitted_at) in &admitted {
        loop {
            sample(&mut resident_kib_peak);
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
    sample(&mut resident_kib_peak);
    stop.store(true, Ordering::Relaxed);
    for flooder in flooders {
        flooder.join().expect("a flooder thread");
    }
    let flood_seconds = flood_started.elapsed().as_secs_f64();
    let height_end = network.nodes[0].height().expect("height");
    sample(&mut resident_kib_peak);

    let admitted_count = counts.admitted.load(Ordering::Relaxed);
    eprintln!(
        "flood: {admitted_count} admitted in {flood_seconds:.1} s ({:.0}/s), {} refused as over \
         the signer's share, {} otherwise; share reached after {:.2} s; heights {height_before} \
         to {height_end}; the other department's {} transactions committed after {blocks_waited:?} \
         blocks, {latencies_ms:?} ms; validator resident memory peak {} MiB; test took {:.1} s",
        admitted_count as f64 / flood_seconds,
        counts.share_refusals.load(Ordering::Relaxed),
        counts.other_refusals.load(Ordering::Relaxed),
        share_reached_after.as_secs_f64(),
        admitted.len(),
        resident_kib_peak / 1024,
        test_started.elapsed().as_secs_f64(),
    );
    assert!(
        height_end > height_before,
        "the validator stopped committing"
    );
    assert!(
        resident_kib_peak < RESIDENT_KIB_MAX,
        "the validator's resident memory reached {resident_kib_peak} KiB"
    );
    assert_eq!(
        counts.other_refusals.load(Ordering::Relaxed),
        0,
        "the flooder was refused for a reason other than its share"
    );
}
