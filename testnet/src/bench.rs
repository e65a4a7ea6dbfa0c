//! `hutong bench`: a load generator for a running testnet.
//!
//! Writes: before the clock starts, the governor registers one issuer per stream
//! (`bench-00`, `bench-01`, ...; idempotent) and every transaction of the run is signed and
//! encoded. Then each stream submits its issuer's transactions in nonce order, one at a
//! time, to one node (streams are spread over the nodes), paced to the target rate or as
//! fast as the node accepts them; a watcher follows the first node's blocks and notes when
//! each transaction commits. Reads: each stream asks the verification endpoint about demo
//! licences the same way. Everything is bounded: the run's duration, the transaction count,
//! the streams (requests in flight), the wait for commits.
//!
//! The result is one line of JSON: `{"submitted", "committed", "seconds", "tps",
//! "latency_p50_ms", "latency_p99_ms", "rejected", ...}`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use hutong_core::block::Block;
use hutong_core::hash::Hash32;
use hutong_core::ident::Uscc;
use hutong_core::records::{FaceValue, Holder, LicenceNumber, Role};
use hutong_core::tx::{AuthorityDraft, TxBody, ValidUntil};

use crate::client::{self, Client};
use crate::demo::{self, DemoSize, Signer};
use crate::limits::UNCOMMITTED_SAMPLE_MAX;
pub use crate::limits::{COUNT_MAX, DURATION_SECONDS_MAX, STREAMS_MAX};
use crate::{Error, keyfile, network};
use hutong_core::suite::Suite;

/// Options of `hutong bench`.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The nodes' APIs to drive.
    pub nodes: Vec<String>,
    /// The testnet directory whose `keys/authorities` sign (the governor's and the bench
    /// issuers').
    pub keys_dir: PathBuf,
    /// Drive the verification endpoint instead of submitting transactions.
    pub read: bool,
    /// Target rate per second over all streams; `None`: as fast as accepted.
    pub rate: Option<u64>,
    pub duration: Duration,
    /// Most transactions (or requests) in the run.
    pub count: u64,
    /// Streams: requests in flight at once.
    pub streams: usize,
    /// How long to wait for the last commits after the submissions end.
    pub commit_wait: Duration,
}

/// The result line.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BenchResult {
    pub mode: &'static str,
    pub submitted: u64,
    pub committed: u64,
    pub seconds: f64,
    pub tps: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub rejected: u64,
    /// Writes accepted (202) that had not committed when the run ended (the commit wait ran
    /// out).
    pub uncommitted: u64,
    /// Answers "busy" (mempool full, or over the API's limits) that were retried.
    pub busy: u64,
    pub nodes: usize,
    pub streams: usize,
    pub target_rate: Option<u64>,
}

fn check(options: &BenchOptions) -> Result<(), Error> {
    if options.nodes.is_empty() {
        return Err(Error::Usage(
            "no node to drive: pass --dir or --node".into(),
        ));
    }
    if options.streams == 0 || options.streams > STREAMS_MAX {
        return Err(Error::Usage(format!(
            "--in-flight must be between 1 and {STREAMS_MAX}"
        )));
    }
    if options.count == 0 || options.count > COUNT_MAX {
        return Err(Error::Usage(format!(
            "--count must be between 1 and {COUNT_MAX}"
        )));
    }
    if options.duration.is_zero() || options.duration.as_secs() > DURATION_SECONDS_MAX {
        return Err(Error::Usage(format!(
            "--seconds must be between 1 and {DURATION_SECONDS_MAX}"
        )));
    }
    if options.rate == Some(0) {
        return Err(Error::Usage("--rate must be above zero".into()));
    }
    Ok(())
}

/// Runs the load and returns its result.
pub fn run(options: &BenchOptions) -> Result<BenchResult, Error> {
    check(options)?;
    let client = Client::new(Duration::from_secs(10));
    for api in &options.nodes {
        if client::height(&client, api).is_none() {
            return Err(Error::Unreachable(format!(
                "{api}/v1/node does not answer; is the testnet up?"
            )));
        }
    }
    if options.read {
        read(options)
    } else {
        write(options, &client)
    }
}

/// How many items a run prepares: the count, or what the rate needs for the duration.
fn planned(options: &BenchOptions) -> u64 {
    match options.rate {
        Some(rate) => options
            .count
            .min(rate.saturating_mul(options.duration.as_secs().max(1))),
        None => options.count,
    }
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Registers `count` bench issuers (`bench-NN`), each granted business licences in Qingdao,
/// signed by the demo governor; already registered ones are kept. Returns their keys.
fn bench_issuers(
    options: &BenchOptions,
    client: &Client,
    suite: Suite,
    chain_id: &str,
) -> Result<BTreeMap<String, hutong_core::crypto::SecretKey>, Error> {
    let authority_dir = options.keys_dir.join("keys").join("authorities");
    let governor_keys = network::authority_keys(&options.keys_dir)?;
    let mut governor = Signer::new(suite, chain_id, governor_keys);
    if !governor.has_key("samr") {
        return Err(Error::Usage(format!(
            "{} has no key of the governor samr",
            authority_dir.display()
        )));
    }
    let mut keys = BTreeMap::new();
    let mut registrations = Vec::new();
    let mut grants = Vec::new();
    let now = demo::now_ms();
    for index in 0..options.streams {
        let id = format!("bench-{index:02}");
        let path = authority_dir.join(format!("{id}.json"));
        let key = if path.exists() {
            keyfile::read(&path)?
        } else {
            let key = keyfile::generate()?;
            keyfile::write(&path, "authority", &key)?;
            key
        };
        // An issuer an earlier run registered (and granted) is on the ledger already: a second
        // registration would be refused and leave a gap in the governor's nonces.
        if client::next_nonce(client, &options.nodes[0], &id).is_ok() {
            keys.insert(id, key);
            continue;
        }
        registrations.push(TxBody::RegisterAuthority(AuthorityDraft {
            id: id.as_str().into(),
            name_zh: format!("压力测试签发机构{index:02}"),
            name_en: format!("Load test issuer {index:02}"),
            region: region("370200")?,
            uscc: demo::uscc("370200", 9_900_000 + index as u64)?,
            roles: vec![Role::Issuer],
            key: key.public_key(),
        }));
        grants.push(TxBody::GrantIssuance {
            authority: id.as_str().into(),
            type_code: "business-licence".into(),
            region: region("370200")?,
        });
        keys.insert(id, key);
    }
    // The registrations commit before the grants that name them. An issuer registered by an
    // earlier run is refused again, harmlessly.
    for wave in [registrations, grants] {
        governor.continue_from(
            "samr",
            client::next_nonce(client, &options.nodes[0], "samr")?,
        );
        let mut signed = Vec::new();
        for body in wave {
            signed.push(governor.sign("samr", body, now)?);
        }
        submit_and_wait(client, &options.nodes[0], suite, &signed)?;
    }
    Ok(keys)
}

/// Submits one signer's transactions in order to `api` and waits (bounded) until the last
/// one it accepted is committed or rejected; refusals (4xx) are left be.
fn submit_and_wait(
    client: &Client,
    api: &str,
    suite: Suite,
    transactions: &[hutong_core::tx::Transaction],
) -> Result<(), Error> {
    let mut last = None;
    for transaction in transactions {
        let body =
            serde_json::to_vec(transaction).map_err(|error| Error::Demo(error.to_string()))?;
        let (status, answer) = client.post_json(&format!("{api}/v1/transactions"), &body)?;
        match status {
            200 | 202 => last = Some(transaction.id(suite)),
            400..=499 => {}
            _ => {
                return Err(Error::Node(format!(
                    "{api} refused a registration ({status}): {answer}"
                )));
            }
        }
    }
    let Some(id) = last else { return Ok(()) };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, answer) = client.get(&format!("{api}/v1/transactions/{id}"))?;
        if matches!(
            answer.get("state").and_then(|state| state.as_str()),
            Some("committed") | Some("rejected")
        ) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Node(
                "the bench issuers' registrations did not commit within 60 s".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn region(code: &str) -> Result<hutong_core::ident::RegionCode, Error> {
    hutong_core::ident::RegionCode::parse(code)
        .map_err(|error| Error::Demo(format!("region {code}: {error}")))
}

/// One prepared transaction: its canonical bytes and id.
struct Prepared {
    bytes: Vec<u8>,
    id: Hash32,
}

fn prepare(
    options: &BenchOptions,
    client: &Client,
    keys: BTreeMap<String, hutong_core::crypto::SecretKey>,
    suite: Suite,
    chain_id: &str,
) -> Result<Vec<Vec<Prepared>>, Error> {
    let total = planned(options);
    let streams = options.streams;
    let ids: Vec<String> = keys.keys().cloned().collect();
    let mut signer = Signer::new(suite, chain_id, keys);
    for id in &ids {
        signer.continue_from(id, client::next_nonce(client, &options.nodes[0], id)?);
    }
    let now = demo::now_ms();
    let mut per_stream: Vec<Vec<Prepared>> = (0..streams).map(|_| Vec::new()).collect();
    for index in 0..total {
        let stream = (index as usize) % streams;
        let holder = bench_holder(now, index)?;
        let mut face = BTreeMap::new();
        face.insert(
            "name".to_string(),
            FaceValue::Clear(format!("压力测试企业{index}有限公司")),
        );
        face.insert("uscc".to_string(), FaceValue::Clear(holder.to_string()));
        face.insert(
            "legal_representative".to_string(),
            FaceValue::Clear("王伟".into()),
        );
        face.insert(
            "established".to_string(),
            FaceValue::Clear("2024-01-02".into()),
        );
        // A business licence is one per enterprise and numbered by its USCC.
        let number = holder.to_string();
        let body = TxBody::IssueLicence {
            type_code: "business-licence".into(),
            document_hash: suite.tagged("hutong/bench/document", number.as_bytes()),
            number: LicenceNumber(number),
            holder: Holder::Enterprise(holder),
            holder_name: format!("Load test enterprise {index}"),
            region: region("370200")?,
            face,
            valid_from: now.saturating_sub(demo::DAY_MS),
            valid_until: ValidUntil::LongTerm,
        };
        let transaction = signer.sign(&ids[stream], body, now)?;
        let encoded = transaction.encode();
        per_stream[stream].push(Prepared {
            id: encoded.id(suite),
            bytes: encoded.into_bytes(),
        });
    }
    Ok(per_stream)
}

/// Follows `api`'s blocks from `from` on and notes when each transaction appears, until
/// `stop` is set.
fn watch_commits(
    api: &str,
    suite: Suite,
    from: u64,
    stop: &AtomicBool,
    committed: &Mutex<HashMap<Hash32, Instant>>,
) -> Result<(), Error> {
    let client = Client::new(Duration::from_secs(10));
    let mut next = from + 1;
    while !stop.load(Ordering::Relaxed) {
        let head = client::height(&client, api).unwrap_or(0);
        if head < next {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        while next <= head {
            let (status, answer) = client.get(&format!("{api}/v1/blocks/{next}"))?;
            let seen = Instant::now();
            if status != 200 {
                break;
            }
            let block: Block = answer
                .get("block")
                .cloned()
                .and_then(|block| serde_json::from_value(block).ok())
                .ok_or_else(|| Error::Node(format!("{api}/v1/blocks/{next} is not a block")))?;
            let mut map = committed
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for transaction in &block.transactions {
                map.entry(transaction.id(suite)).or_insert(seen);
            }
            next += 1;
        }
    }
    Ok(())
}

/// Counts of one stream.
#[derive(Default)]
struct StreamCounts {
    submitted: Vec<(Hash32, Instant)>,
    rejected: u64,
    busy: u64,
    first_error: Option<String>,
}

fn write(options: &BenchOptions, client: &Client) -> Result<BenchResult, Error> {
    let (_, info) = client.get(&format!("{}/v1/node", options.nodes[0]))?;
    let chain_id = info
        .get("chain_id")
        .and_then(|value| value.as_str())
        .ok_or_else(|| Error::Node("/v1/node does not say the chain id".into()))?
        .to_string();
    // The suite is the chain's, from the genesis file of the testnet the keys come from.
    let suite = network::read_genesis(&options.keys_dir)?.suite;
    let keys = bench_issuers(options, client, suite, &chain_id)?;
    eprintln!("signing {} transactions...", planned(options));
    let per_stream = prepare(options, client, keys, suite, &chain_id)?;
    let start_height = client::height(client, &options.nodes[0]).unwrap_or(0);
    let committed: Mutex<HashMap<Hash32, Instant>> = Mutex::new(HashMap::new());
    let stop_watching = AtomicBool::new(false);
    let stop_submitting = Arc::new(AtomicBool::new(false));
    let per_stream_interval = options
        .rate
        .map(|rate| Duration::from_secs_f64(options.streams as f64 / rate as f64));
    eprintln!(
        "submitting for up to {} s over {} stream(s) to {} node(s)...",
        options.duration.as_secs(),
        options.streams,
        options.nodes.len()
    );
    let start = Instant::now();
    let end = start + options.duration;
    let (counts, watch_result) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            watch_commits(
                &options.nodes[0],
                suite,
                start_height,
                &stop_watching,
                &committed,
            )
        });
        let handles: Vec<_> = per_stream
            .iter()
            .enumerate()
            .map(|(index, prepared)| {
                let api = options.nodes[index % options.nodes.len()].clone();
                let stop = stop_submitting.clone();
                scope.spawn(move || {
                    submit_stream(&api, prepared, start, end, per_stream_interval, &stop)
                })
            })
            .collect();
        let counts: Vec<StreamCounts> = handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_default())
            .collect();
        // Wait (bounded) for the accepted transactions to commit.
        let accepted: Vec<Hash32> = counts
            .iter()
            .flat_map(|count| count.submitted.iter().map(|(id, _)| *id))
            .collect();
        let deadline = Instant::now() + options.commit_wait;
        while Instant::now() < deadline {
            let map = committed
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if accepted.iter().all(|id| map.contains_key(id)) || watcher.is_finished() {
                break;
            }
            drop(map);
            std::thread::sleep(Duration::from_millis(50));
        }
        stop_watching.store(true, Ordering::Relaxed);
        let watch_result = watcher
            .join()
            .unwrap_or_else(|_| Err(Error::Node("the block watcher failed".into())));
        (counts, watch_result)
    });
    watch_result?;
    let map = committed
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut latencies_ms = Vec::new();
    let mut last_commit = start;
    let mut result = BenchResult {
        mode: "write",
        nodes: options.nodes.len(),
        streams: options.streams,
        target_rate: options.rate,
        ..BenchResult::default()
    };
    for count in &counts {
        result.rejected += count.rejected;
        result.busy += count.busy;
        result.submitted += count.submitted.len() as u64 + count.rejected;
        for (id, sent) in &count.submitted {
            if let Some(seen) = map.get(id) {
                result.committed += 1;
                latencies_ms.push(seen.saturating_duration_since(*sent).as_secs_f64() * 1000.0);
                last_commit = last_commit.max(*seen);
            }
        }
        if let Some(error) = &count.first_error {
            eprintln!("a stream stopped: {error}");
        }
    }
    result.uncommitted = result.submitted - result.rejected - result.committed;
    if result.uncommitted > 0 {
        eprintln!(
            "why some did not commit (a sample): {}",
            sample_uncommitted(client, options, &counts, &map)
        );
    }
    latencies_ms.sort_by(f64::total_cmp);
    let seconds = last_commit.saturating_duration_since(start).as_secs_f64();
    result.seconds = round3(seconds);
    result.tps = if seconds > 0.0 {
        round3(result.committed as f64 / seconds)
    } else {
        0.0
    };
    result.latency_p50_ms = round3(percentile(&latencies_ms, 0.50));
    result.latency_p99_ms = round3(percentile(&latencies_ms, 0.99));
    Ok(result)
}

/// Asks the nodes about up to [`UNCOMMITTED_SAMPLE_MAX`] accepted transactions that were
/// not seen committed, and counts their states (`rejected: CODE`, `pending`, ...).
fn sample_uncommitted(
    client: &Client,
    options: &BenchOptions,
    counts: &[StreamCounts],
    committed: &HashMap<Hash32, Instant>,
) -> String {
    let mut states: BTreeMap<String, u64> = BTreeMap::new();
    let mut asked = 0;
    for (index, count) in counts.iter().enumerate() {
        let api = &options.nodes[index % options.nodes.len()];
        for (id, _) in &count.submitted {
            if asked >= UNCOMMITTED_SAMPLE_MAX {
                break;
            }
            if committed.contains_key(id) {
                continue;
            }
            asked += 1;
            let state = match client.get(&format!("{api}/v1/transactions/{id}")) {
                Ok((_, answer)) => match answer.get("state").and_then(|state| state.as_str()) {
                    Some("rejected") => format!(
                        "rejected {}",
                        answer
                            .get("code")
                            .and_then(|code| code.as_str())
                            .unwrap_or("?")
                    ),
                    Some(state) => state.to_string(),
                    None => "unknown".to_string(),
                },
                Err(_) => "no answer".to_string(),
            };
            *states.entry(state).or_default() += 1;
        }
    }
    serde_json::to_string(&states).unwrap_or_default()
}

/// Paces a stream: the time its `index`-th item is due.
fn due(start: Instant, interval: Option<Duration>, index: usize) -> Option<Instant> {
    interval.map(|interval| start + interval.mul_f64(index as f64))
}

fn submit_stream(
    api: &str,
    prepared: &[Prepared],
    start: Instant,
    end: Instant,
    interval: Option<Duration>,
    stop: &AtomicBool,
) -> StreamCounts {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{api}/v1/transactions");
    let mut counts = StreamCounts::default();
    let mut index = 0;
    // When the current item was first sent, if it was answered "busy" since: a 503 may come
    // from a request that timed out after all while being admitted (docs/api.md), so its
    // retry can meet the transaction already waiting.
    let mut retrying_since: Option<Instant> = None;
    while index < prepared.len() {
        if stop.load(Ordering::Relaxed) || Instant::now() >= end {
            break;
        }
        if let Some(due) = due(start, interval, index) {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let item = &prepared[index];
        let sent = Instant::now();
        let answer = agent
            .post(&url)
            .header("content-type", "application/octet-stream")
            .send(&item.bytes[..]);
        let (status, body) = match answer {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let body = response.body_mut().read_to_vec().unwrap_or_default();
                (status, body)
            }
            Err(error) => {
                counts.first_error = Some(format!("{url}: {error}"));
                break;
            }
        };
        match status {
            200 | 202 => {
                counts
                    .submitted
                    .push((item.id, retrying_since.take().unwrap_or(sent)));
                index += 1;
            }
            409 if retrying_since.is_some()
                && error_code(&body) == Some("duplicate_transaction") =>
            {
                // An earlier attempt was admitted after all: it counts as submitted then.
                counts
                    .submitted
                    .push((item.id, retrying_since.take().unwrap_or(sent)));
                index += 1;
            }
            429 | 503 => {
                // Busy: the same transaction again shortly (its place in the nonce order).
                counts.busy += 1;
                retrying_since.get_or_insert(sent);
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                counts.rejected += 1;
                retrying_since = None;
                index += 1;
            }
        }
    }
    counts
}

/// The `code` of an API error body, if it is one.
fn error_code(body: &[u8]) -> Option<&str> {
    #[derive(serde::Deserialize)]
    struct ErrorBody<'a> {
        #[serde(borrow)]
        code: &'a str,
    }
    serde_json::from_slice::<ErrorBody<'_>>(body)
        .ok()
        .map(|error| error.code)
}

/// The numbers of the demo's business licences (Qingdao, Jining, Jiyuan).
fn demo_licences() -> Result<Vec<String>, Error> {
    let size = DemoSize::STANDARD;
    let mut numbers = Vec::new();
    for (region_code, count) in [
        ("370200", size.qingdao_business),
        ("370800", size.jining_business),
        ("419001", size.jiyuan_business),
    ] {
        for n in 1..=count {
            numbers.push(demo::uscc(region_code, n)?.to_string());
        }
    }
    Ok(numbers)
}

fn read(options: &BenchOptions) -> Result<BenchResult, Error> {
    let numbers = demo_licences()?;
    let regions = ["650100", "370200", "410100", "370800"];
    let total = planned(options) as usize;
    let per_stream_interval = options
        .rate
        .map(|rate| Duration::from_secs_f64(options.streams as f64 / rate as f64));
    let start = Instant::now();
    let end = start + options.duration;
    let results: Vec<(Vec<f64>, u64, u64, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..options.streams)
            .map(|stream| {
                let api = options.nodes[stream % options.nodes.len()].clone();
                let numbers = &numbers;
                scope.spawn(move || {
                    let client = Client::new(Duration::from_secs(10));
                    let mut latencies = Vec::new();
                    let mut failed = 0;
                    let mut asked = 0;
                    let mut first_error = None;
                    let mut index = 0;
                    while stream + index * options.streams < total && Instant::now() < end {
                        if let Some(due) = due(start, per_stream_interval, index) {
                            let now = Instant::now();
                            if due > now {
                                std::thread::sleep(due - now);
                            }
                        }
                        let item = stream + index * options.streams;
                        let url = format!(
                            "{api}/v1/licences/business-licence/{}/verification?region={}",
                            numbers[item % numbers.len()],
                            regions[item % regions.len()]
                        );
                        let sent = Instant::now();
                        asked += 1;
                        match client.get_status(&url) {
                            Ok(200) => latencies.push(sent.elapsed().as_secs_f64() * 1000.0),
                            Ok(status) => {
                                failed += 1;
                                first_error.get_or_insert(format!("{status} from {url}"));
                            }
                            Err(error) => {
                                failed += 1;
                                first_error.get_or_insert(error.to_string());
                            }
                        }
                        index += 1;
                    }
                    (latencies, asked, failed, first_error)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| (Vec::new(), 0, 0, Some("a stream failed".into())))
            })
            .collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let mut latencies_ms = Vec::new();
    let mut result = BenchResult {
        mode: "read",
        nodes: options.nodes.len(),
        streams: options.streams,
        target_rate: options.rate,
        ..BenchResult::default()
    };
    for (latencies, asked, failed, first_error) in results {
        result.submitted += asked;
        result.rejected += failed;
        result.committed += latencies.len() as u64;
        latencies_ms.extend(latencies);
        if let Some(error) = first_error {
            eprintln!("a stream saw: {error}");
        }
    }
    latencies_ms.sort_by(f64::total_cmp);
    result.seconds = round3(seconds);
    result.tps = if seconds > 0.0 {
        round3(result.committed as f64 / seconds)
    } else {
        0.0
    };
    result.latency_p50_ms = round3(percentile(&latencies_ms, 0.50));
    result.latency_p99_ms = round3(percentile(&latencies_ms, 0.99));
    Ok(result)
}

/// The USCC (GB 32100-2015) of the `index`th enterprise of a run started at `now`: positions
/// 9-17 count the run's second (modulo 25,000,000, some ten months) times a million plus the
/// index in base 31, so that runs a second apart license different enterprises and a business
/// licence, one per enterprise, can be issued again by every run.
fn bench_holder(now: u64, index: u64) -> Result<Uscc, Error> {
    const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    let mut value = (now / 1_000 % 25_000_000) * 1_000_000 + index % 1_000_000;
    let mut digits = [b'0'; 9];
    for digit in digits.iter_mut().rev() {
        *digit = ALPHABET[(value % 31) as usize];
        value /= 31;
    }
    let first17 = format!("91370200{}", String::from_utf8_lossy(&digits));
    Uscc::with_check(&first17).map_err(|error| Error::Demo(format!("USCC {first17}: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_gives_its_code() {
        let body = br#"{"type":"urn:hutong:problem:duplicate_transaction","title":"Conflict","status":409,"detail":"transaction 00 is already pending or committed","code":"duplicate_transaction"}"#;
        assert_eq!(error_code(body), Some("duplicate_transaction"));
        assert_eq!(error_code(b"{}"), None);
        assert_eq!(error_code(b"not json"), None);
        assert_eq!(error_code(b""), None);
    }
}
