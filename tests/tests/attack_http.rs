//! Attacks on a validator's HTTP API by a stranger, against real node processes, each bounded
//! in time (ADR 0017, docs/reliability.md "HTTP attacks"):
//!
//! - idle connections far past the node's open-file limit (1,024): the node stays up and keeps
//!   committing, and `/healthz` on a new connection answers within 100 ms at p99;
//! - bodies announced and never sent: the probes and `/v1/node` still answer, and every slow
//!   connection is answered 408 at the body deadline (or 503 beyond the body readers' pool)
//!   and closed;
//! - a `Content-Length` over the body limit: 413 at once;
//! - 400 concurrent copies of one transaction with a bad signature: every copy 403, none 409,
//!   and nothing of it reaches the ledger.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hutong_tests::Network;

/// The limit the validator under attack runs with: the common soft limit of a login shell.
const FILE_LIMIT: u64 = 1024;

fn address(api: &str) -> String {
    api.trim_start_matches("http://").to_string()
}

/// Raises this test process's own open-file limit, so that the attacker is not the one that
/// runs out of descriptors.
fn raise_own_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    setrlimit(Resource::Nofile, raised).expect("raise the test's own file limit");
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

fn resident_kib(pid: u32) -> u64 {
    hutong_tests::flood::resident_kib(pid).unwrap_or(0)
}

/// One `GET path` on a new connection: its status and how long it took, or `None` if it did not
/// answer within 2 s.
fn probe(address: &str, path: &str) -> Option<(u16, Duration)> {
    let started = Instant::now();
    let mut stream =
        TcpStream::connect_timeout(&address.parse().ok()?, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    let status = std::str::from_utf8(&head[9..12]).ok()?.parse().ok()?;
    Some((status, started.elapsed()))
}

fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[(samples.len() * 99).div_ceil(100).saturating_sub(1)]
}

/// `count` probes of `/healthz`, 20 ms apart: the p99 latency, and how many did not answer 200.
fn probe_health(address: &str, count: usize) -> (Duration, usize) {
    let mut latencies = Vec::new();
    let mut failed = 0;
    for _ in 0..count {
        match probe(address, "/healthz") {
            Some((200, latency)) => latencies.push(latency),
            _ => failed += 1,
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let p99 = if latencies.is_empty() {
        Duration::MAX
    } else {
        p99(latencies)
    };
    (p99, failed)
}

fn wait_for_height(network: &Network, node: usize, height: u64, timeout: Duration) {
    network.wait_for(
        &format!("node {node} to reach height {height}"),
        timeout,
        |network| network.nodes[node].height().is_some_and(|h| h >= height),
    );
}

/// Four validators, node 0 under the file limit.
fn network() -> Network {
    raise_own_file_limit();
    let mut network = Network::new(4);
    network.nodes[0].start_with_file_limit(FILE_LIMIT);
    for node in &mut network.nodes[1..] {
        node.start();
    }
    wait_for_height(&network, 0, 2, Duration::from_secs(60));
    network
}

#[test]
fn idle_connections_past_the_file_limit_do_not_stop_the_validator() {
    let mut network = network();
    let address = address(&network.nodes[0].api);
    let pid = network.nodes[0].pid().expect("node 0 runs");
    let (quiet_p99, quiet_failed) = probe_health(&address, 50);
    let rss_before = resident_kib(pid);

    // 1,500 connections that send nothing, more than the node's whole file limit.
    let mut idle = Vec::new();
    for _ in 0..1500 {
        if let Ok(stream) =
            TcpStream::connect_timeout(&address.parse().unwrap(), Duration::from_secs(1))
        {
            idle.push(stream);
        }
    }
    let height_at_flood = network.nodes[0]
        .height()
        .expect("node 0 answers under the flood");
    let (flood_p99, flood_failed) = probe_health(&address, 100);
    let files_under_flood = open_files(pid);
    wait_for_height(&network, 0, height_at_flood + 3, Duration::from_secs(30));
    let rss_after = resident_kib(pid);
    eprintln!(
        "idle flood: {} connections opened; /healthz p99 {quiet_p99:?} quiet ({quiet_failed} \
         failed), {flood_p99:?} under the flood ({flood_failed} of 100 failed); node 0 held \
         {files_under_flood} files (limit {FILE_LIMIT}); RSS {rss_before} KiB before, \
         {rss_after} KiB after",
        idle.len()
    );
    assert!(network.nodes[0].is_running(), "the validator died");
    assert_eq!(flood_failed, 0, "probes refused under the flood");
    assert!(
        flood_p99 < Duration::from_millis(100),
        "/healthz p99 {flood_p99:?} under the flood"
    );
    assert!(
        (files_under_flood as u64) < FILE_LIMIT,
        "{files_under_flood} files open"
    );
    assert!(
        rss_after < rss_before + 256 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    drop(idle);
}

#[test]
fn slow_and_oversize_bodies_hold_nothing() {
    let network = network();
    let address = address(&network.nodes[0].api);

    // A body announced as 10 MB: refused before a byte of it is read.
    let started = Instant::now();
    let mut stream = TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "POST /v1/transactions HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n\
         Content-Length: 10000000\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    let oversize_answered = started.elapsed();
    assert_eq!(&head[9..12], b"413", "{}", String::from_utf8_lossy(&head));
    assert!(
        oversize_answered < Duration::from_secs(1),
        "413 after {oversize_answered:?}"
    );

    // 300 POSTs that announce 100,000 bytes and send one.
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "POST /v1/transactions HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n\
             Content-Length: 100000\r\n\r\n{{"
        )
        .unwrap();
        slow.push(stream);
    }
    let (p99, failed) = probe_health(&address, 50);
    let node = probe(&address, "/v1/node");
    eprintln!(
        "slow bodies: 300 held; /healthz p99 {p99:?} ({failed} of 50 failed); /v1/node {node:?}; \
         413 for a 10 MB Content-Length after {oversize_answered:?}"
    );
    assert_eq!(failed, 0);
    assert!(p99 < Duration::from_millis(100), "/healthz p99 {p99:?}");
    assert_eq!(node.map(|(status, _)| status), Some(200));

    // The body deadline (10 s by default) closes them: each reads an answer or the end.
    let deadline = Instant::now() + Duration::from_secs(25);
    let mut closed = 0;
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    for stream in &mut slow {
        let left = deadline.saturating_duration_since(Instant::now());
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .unwrap();
        let mut buffer = [0u8; 256];
        match stream.read(&mut buffer) {
            Ok(read) => {
                closed += 1;
                let head = String::from_utf8_lossy(&buffer[..read.min(12)]).into_owned();
                *answers.entry(head).or_default() += 1;
            }
            // Closed by the node with our byte unread: closed all the same.
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                closed += 1;
                *answers.entry(error.kind().to_string()).or_default() += 1;
            }
            Err(error) => *answers.entry(error.kind().to_string()).or_default() += 1,
        }
    }
    eprintln!("slow bodies at the deadline: {answers:?}");
    assert_eq!(
        closed,
        slow.len(),
        "slow connections still open at the deadline: {answers:?}"
    );
}

#[test]
fn concurrent_copies_of_a_bad_transaction_are_all_refused_alike() {
    let mut network = network();
    let mut forged = network
        .fixture
        .issue_business_licence("qd-approval", "370200", 31_000);
    forged.signatures[0].signature.0[10] ^= 0x40;
    let id = forged.id(hutong_core::testkit::SUITE);
    let height_before = network.nodes[0].height().unwrap();
    let root_before = network.nodes[0].state_root(height_before).unwrap();

    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..400)
            .map(|_| {
                let node = &network.nodes[0];
                let forged = &forged;
                scope.spawn(move || node.submit(forged).map(|(status, _)| status))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap().unwrap_or(0))
            .collect()
    });
    let refused = statuses.iter().filter(|&&status| status == 403).count();
    eprintln!(
        "400 copies of a bad transaction: {refused} × 403, others {:?}",
        statuses
            .iter()
            .filter(|&&status| status != 403)
            .collect::<Vec<_>>()
    );
    assert_eq!(refused, 400, "{statuses:?}");
    // Nothing of it reaches the ledger: two blocks later it is unknown to the node.
    wait_for_height(&network, 0, height_before + 2, Duration::from_secs(30));
    let state = network.nodes[0].transaction_state(&id);
    assert!(
        !matches!(state.as_deref(), Some("committed" | "pending")),
        "the refused transaction is {state:?}"
    );
    // And the state did not change.
    assert_eq!(
        network.nodes[0].state_root(height_before + 2).as_ref(),
        Some(&root_before),
        "the state root moved after the refused copies"
    );
}
