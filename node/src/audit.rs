//! `hutong audit`: re-verifies the whole chain from the genesis file, from an export file or
//! from a node's API, trusting neither (the engine is `hutong_ledger::audit`); compares the
//! checkpoints of several nodes; answers auditors' history questions from the verified chain.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::json;

use hutong_core::block::BlockHeader;
use hutong_core::calendar;
use hutong_core::genesis::Genesis;
use hutong_core::hash::Hash32;
use hutong_core::ident::RegionCode;
use hutong_core::log::LogHasher;
use hutong_core::records::{AuthorityId, Height, LicenceNumber, Record, RecordKey, TimeMs};
use hutong_core::tx::Transaction;
use hutong_ledger::audit::{
    self, AuditOptions, AuditSummary, Auditor, EXPORT_LINE_BYTES_MAX, EventFilter, Progress,
    SourceBlock, Violation, licence_events, licence_events_csv, parse_export_line, utc_text,
};
use hutong_ledger::store::AuditStore;
use hutong_verify::{CheckpointDocument, verify_checkpoint};

use crate::{Failure, WithCode, exit};
use hutong_core::suite::Suite;

/// Exit code of an audit that found a violation, or of nodes that disagree (a fork).
pub const EXIT_VIOLATION: u8 = 7;

/// Most nodes one comparison takes.
const NODES_MAX: usize = 32;
/// Most events, actions or recognitions one history query returns.
const HISTORY_ROWS_MAX: usize = 1_000_000;
/// Time allowed for one request of an export page (up to 1,000 blocks).
const EXPORT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// Time allowed for any other request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Plain progress lines at most this often.
const PROGRESS_LINE_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// A bar on a terminal, plain lines otherwise.
    Auto,
    Bar,
    Lines,
    None,
}

/// Re-verify the chain from genesis, compare nodes, and query the verified history.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The chain's genesis file: the only thing trusted.
    #[arg(long)]
    genesis: Option<PathBuf>,
    /// An NDJSON export (as `GET /v1/export` writes it) to re-verify.
    #[arg(long, conflicts_with = "node")]
    export: Option<PathBuf>,
    /// A node's API base URL: re-verify its whole chain (or, with --against, compare it).
    #[arg(long)]
    node: Option<String>,
    /// Other nodes to compare with --node's checkpoint (repeatable): shows a fork or a lagging
    /// node. With --genesis, each checkpoint's certificate is verified too.
    #[arg(long = "against", requires = "node")]
    against: Vec<String>,
    /// Threads checking signatures ahead of execution (0: one per core but one, at least one).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// How to show progress (on standard error).
    #[arg(long, value_enum, default_value = "auto")]
    progress: ProgressMode,
    /// Print the summary (or the comparison) as JSON.
    #[arg(long)]
    json: bool,
    /// With --node: also keep the downloaded export in this file (NDJSON).
    #[arg(long, requires = "node")]
    save_export: Option<PathBuf>,
    /// A signed checkpoint (`GET /v1/log/checkpoint`, saved) the verified chain must reach:
    /// its certificate is verified from genesis, and the chain must hold its block. An export
    /// cut short, or from another history, fails.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Start of the time range of the history queries: ms since the epoch, `YYYY-MM-DD`
    /// (midnight UTC), or an RFC 3339 time such as `2026-01-01T08:00:00Z` or
    /// `2026-01-01T16:00:00+08:00`. Default: the beginning.
    #[arg(long)]
    from: Option<String>,
    /// End of the time range (exclusive), same forms. Default: no end.
    #[arg(long)]
    to: Option<String>,
    /// Write the CSV report of licence events effective in the range (columns in Chinese and
    /// English, ending with the verified checkpoint).
    #[arg(long)]
    report_csv: Option<PathBuf>,
    /// Licence type of the report and of --licences.
    #[arg(long = "type")]
    type_code: Option<String>,
    /// Region of the report (covers its sub-regions).
    #[arg(long)]
    region: Option<String>,
    /// Print everything this authority signed in the range (JSON, with log positions).
    #[arg(long)]
    signed_by: Option<String>,
    /// Print the full history of one licence, `TYPE/NUMBER`, each step with its inclusion
    /// proof against the verified checkpoint (JSON).
    #[arg(long)]
    licence: Option<String>,
    /// Print the recognition attestations in force at this time (JSON).
    #[arg(long)]
    recognitions_at: Option<String>,
}

pub fn run(args: &AuditArgs) -> Result<(), Failure> {
    if !args.against.is_empty() {
        return compare(args);
    }
    let genesis_path = args
        .genesis
        .as_ref()
        .ok_or_else(|| Failure::new(2, anyhow!("--genesis FILE is required to re-verify")))?;
    let genesis = read_genesis(genesis_path)?;
    let range = TimeRange::parse(args.from.as_deref(), args.to.as_deref()).code(exit::CONFIG)?;
    let threads = if args.threads == 0 {
        std::thread::available_parallelism()
            .map(|cores| cores.get().saturating_sub(1))
            .unwrap_or(1)
            .max(1)
    } else {
        args.threads.min(audit::THREADS_MAX)
    };
    // The blocks and the index of what each authority signed are kept only for the queries
    // that read them.
    let options = AuditOptions {
        threads,
        store: AuditStore {
            history: args.signed_by.is_some() || args.licence.is_some(),
        },
    };
    let mode = match args.progress {
        ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bar,
        ProgressMode::Auto => ProgressMode::Lines,
        other => other,
    };
    let started = Instant::now();
    let (outcome, source_label, node) = match (&args.export, &args.node) {
        (Some(path), None) => {
            let source = FileSource::open(path)?;
            let size = source.size;
            let read = source.read.clone();
            let mut reporter = Reporter::new(mode, started, Total::Bytes(size));
            let outcome = audit::audit(&genesis, source, options, &mut |progress| {
                reporter.report(progress, read.load(Ordering::Relaxed));
            });
            reporter.finish();
            (outcome, path.display().to_string(), None)
        }
        (None, Some(url)) => {
            let base = url.trim_end_matches('/').to_owned();
            let agent = agent(REQUEST_TIMEOUT);
            let head = node_checkpoint(&agent, &base)?;
            let save = match &args.save_export {
                Some(path) => Some(
                    File::create(path)
                        .with_context(|| format!("creating {}", path.display()))
                        .code(exit::RUNTIME)?,
                ),
                None => None,
            };
            let source = NodeSource::new(&base, head.header.height, save);
            let mut reporter = Reporter::new(mode, started, Total::Height(head.header.height));
            let outcome = audit::audit(&genesis, source, options, &mut |progress| {
                reporter.report(progress, progress.height);
            });
            reporter.finish();
            (outcome, base.clone(), Some((agent, base, head)))
        }
        _ => {
            return Err(Failure::new(
                2,
                anyhow!("give --export FILE or --node URL (and --genesis FILE)"),
            ));
        }
    };
    let elapsed = started.elapsed();
    let auditor = match outcome {
        Ok(auditor) => auditor,
        Err(failure) => {
            print_failure(&failure.violation, &failure.verified, elapsed, args.json);
            return Err(Failure::new(
                EXIT_VIOLATION,
                anyhow!("the chain from {source_label} does not verify"),
            ));
        }
    };
    let summary = auditor.summary().clone();
    let mut node_check = None;
    if let Some((agent, base, head)) = node {
        node_check = Some(check_node_answers(
            &agent,
            &base,
            genesis.suite,
            &head,
            &summary,
        )?);
    }
    if let Some(path) = &args.checkpoint {
        let problem = check_against_checkpoint(path, &genesis, &auditor)?;
        match problem {
            Ok(line) => eprintln!("checkpoint: {line}"),
            Err(problem) => {
                print_summary(&summary, elapsed, args.json, true, node_check.as_deref());
                println!(
                    "AUDIT FAILED against the checkpoint {}:\n  {problem}",
                    path.display()
                );
                return Err(Failure::new(
                    EXIT_VIOLATION,
                    anyhow!("the verified chain does not reach the signed checkpoint"),
                ));
            }
        }
    }
    let queries = args.report_csv.is_some()
        || args.signed_by.is_some()
        || args.licence.is_some()
        || args.recognitions_at.is_some();
    print_summary(&summary, elapsed, args.json, queries, node_check.as_deref());
    if let Some(problem) = node_check.as_deref()
        && problem.starts_with("MISMATCH")
    {
        return Err(Failure::new(
            EXIT_VIOLATION,
            anyhow!("the node's answers do not match the chain it exported"),
        ));
    }
    history(args, &auditor, &range)
}

fn read_genesis(path: &Path) -> Result<Genesis, Failure> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading {}", path.display()))
        .code(exit::CONFIG)?;
    Genesis::from_json(&bytes)
        .with_context(|| format!("genesis file {}", path.display()))
        .code(exit::CONFIG)
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// GETs `url` and reads a JSON answer of at most `limit` bytes.
fn get_json<T: serde::de::DeserializeOwned>(agent: &ureq::Agent, url: &str) -> Result<T, Failure> {
    let mut response = agent
        .get(url)
        .call()
        .with_context(|| format!("cannot reach {url}"))
        .code(exit::UNREACHABLE)?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .with_context(|| format!("reading the answer of {url}"))
        .code(exit::UNREACHABLE)?;
    if status != 200 {
        return Err(Failure::new(
            exit::RUNTIME,
            anyhow!("{url} answered {status}: {text}"),
        ));
    }
    serde_json::from_str(&text)
        .with_context(|| format!("the answer of {url} is not what was expected"))
        .code(exit::RUNTIME)
}

fn node_checkpoint(agent: &ureq::Agent, base: &str) -> Result<hutong_verify::Checkpoint, Failure> {
    let document: CheckpointDocument = get_json(agent, &format!("{base}/v1/log/checkpoint"))?;
    Ok(document.checkpoint)
}

#[derive(serde::Deserialize)]
struct HeaderPage {
    items: Vec<HeaderItem>,
}

#[derive(serde::Deserialize)]
struct HeaderItem {
    hash: Hash32,
    header: BlockHeader,
}

/// The algorithm suite a node says its chain uses (`GET /v1/node`).
fn node_suite(agent: &ureq::Agent, base: &str) -> Result<Suite, Failure> {
    let info: serde_json::Value = get_json(agent, &format!("{base}/v1/node"))?;
    info.get("suite")
        .cloned()
        .and_then(|value| serde_json::from_value(value).ok())
        .ok_or_else(|| {
            Failure::new(
                exit::UNREACHABLE,
                anyhow!("{base}/v1/node names no algorithm suite this build implements"),
            )
        })
}

/// The header a node serves at `height`, with the hash it claims.
fn node_header(
    agent: &ureq::Agent,
    base: &str,
    suite: Suite,
    height: Height,
) -> Result<BlockHeader, Failure> {
    let page: HeaderPage = get_json(agent, &format!("{base}/v1/blocks?from={height}&limit=1"))?;
    let item = page
        .items
        .into_iter()
        .next()
        .filter(|item| item.header.height == height)
        .ok_or_else(|| Failure::new(exit::RUNTIME, anyhow!("{base} has no block {height}")))?;
    if item.hash != item.header.hash(suite) {
        return Err(Failure::new(
            EXIT_VIOLATION,
            anyhow!(
                "{base} labels block {height} with hash {}, but its header hashes to {}",
                item.hash,
                item.header.hash(suite)
            ),
        ));
    }
    Ok(item.header)
}

/// Checks the verified chain against a saved signed checkpoint: `Ok(Ok(what matched))`, or
/// `Ok(Err(what does not))`.
fn check_against_checkpoint(
    path: &Path,
    genesis: &Genesis,
    auditor: &Auditor,
) -> Result<Result<String, String>, Failure> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading {}", path.display()))
        .code(exit::CONFIG)?;
    let document: CheckpointDocument = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a checkpoint document", path.display()))
        .code(exit::CONFIG)?;
    let checkpoint = document.checkpoint;
    if let Err(error) = verify_checkpoint(&checkpoint, genesis) {
        return Ok(Err(format!(
            "the checkpoint itself does not verify from genesis: {error}"
        )));
    }
    let height = checkpoint.header.height;
    let signed = checkpoint.header.hash(genesis.suite);
    let verified = &auditor.summary().checkpoint;
    if height > verified.height {
        return Ok(Err(format!(
            "the checkpoint is signed at height {height}, but the verified chain ends at {}: \
             blocks {} to {height} are missing",
            verified.height,
            verified.height + 1
        )));
    }
    let ours = auditor
        .store()
        .header(height)
        .code(exit::RUNTIME)?
        .map(|header| header.hash(genesis.suite));
    if ours != Some(signed) {
        return Ok(Err(format!(
            "at height {height} the checkpoint signs block {signed}, the verified chain holds {}",
            ours.map(|hash| hash.to_string()).unwrap_or_default()
        )));
    }
    Ok(Ok(format!(
        "the signed checkpoint at height {height} (block {signed}) is on the verified chain"
    )))
}

/// After verifying a node's export: does what the node says now match the verified chain?
fn check_node_answers(
    agent: &ureq::Agent,
    base: &str,
    suite: Suite,
    head_before: &hutong_verify::Checkpoint,
    summary: &AuditSummary,
) -> Result<String, Failure> {
    let verified = &summary.checkpoint;
    if head_before.header.height != verified.height {
        return Ok(format!(
            "MISMATCH: the node's checkpoint was at height {} but its export ended at {}",
            head_before.header.height, verified.height
        ));
    }
    if head_before.header.hash(suite) != verified.block_hash {
        return Ok(format!(
            "MISMATCH: the node's checkpoint names block {} at height {}, the verified chain {}",
            head_before.header.hash(suite),
            verified.height,
            verified.block_hash
        ));
    }
    let now = node_header(agent, base, suite, verified.height)?;
    if now.hash(suite) != verified.block_hash {
        return Ok(format!(
            "MISMATCH: the node now serves block {} at height {}, the verified chain has {}",
            now.hash(suite),
            verified.height,
            verified.block_hash
        ));
    }
    Ok(format!(
        "the node's signed checkpoint at height {} is the verified block",
        verified.height
    ))
}

/// Reads an export file line by line (each line bounded).
struct FileSource {
    reader: BufReader<File>,
    position: u64,
    size: u64,
    read: Arc<AtomicU64>,
    done: bool,
}

impl FileSource {
    fn open(path: &Path) -> Result<Self, Failure> {
        let file = File::open(path)
            .with_context(|| format!("opening {}", path.display()))
            .code(exit::CONFIG)?;
        let size = file.metadata().map(|meta| meta.len()).unwrap_or(0);
        Ok(FileSource {
            reader: BufReader::with_capacity(1 << 20, file),
            position: 0,
            size,
            read: Arc::new(AtomicU64::new(0)),
            done: false,
        })
    }
}

/// Reads one line (without its line feed) of at most [`EXPORT_LINE_BYTES_MAX`] bytes.
fn read_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
) -> Result<Option<usize>, std::io::Error> {
    line.clear();
    let limit = EXPORT_LINE_BYTES_MAX as u64 + 1;
    let read = reader.take(limit).read_until(b'\n', line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    Ok(Some(read))
}

impl Iterator for FileSource {
    type Item = Result<SourceBlock, Violation>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut line = Vec::new();
        loop {
            self.position += 1;
            match read_line(&mut self.reader, &mut line) {
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Ok(Some(read)) => {
                    self.read.fetch_add(read as u64, Ordering::Relaxed);
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let parsed = parse_export_line(&line, self.position);
                    if parsed.is_err() {
                        self.done = true;
                    }
                    return Some(parsed);
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(Violation::Malformed {
                        position: self.position,
                        problem: format!("reading the file: {error}"),
                    }));
                }
            }
        }
    }
}

/// Pages through a node's `GET /v1/export` from height 1 to `head`.
struct NodeSource {
    agent: ureq::Agent,
    base: String,
    head: Height,
    next_from: Height,
    page: Option<BufReader<Box<dyn Read + Send>>>,
    page_lines: u64,
    position: u64,
    save: Option<std::io::BufWriter<File>>,
    done: bool,
}

impl NodeSource {
    fn new(base: &str, head: Height, save: Option<File>) -> Self {
        NodeSource {
            agent: agent(EXPORT_REQUEST_TIMEOUT),
            base: base.to_owned(),
            head,
            next_from: 1,
            page: None,
            page_lines: 0,
            position: 0,
            save: save.map(std::io::BufWriter::new),
            done: false,
        }
    }

    fn fail(&mut self, problem: String) -> Option<Result<SourceBlock, Violation>> {
        self.done = true;
        Some(Err(Violation::Malformed {
            position: self.position,
            problem,
        }))
    }
}

impl Iterator for NodeSource {
    type Item = Result<SourceBlock, Violation>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut line = Vec::new();
        loop {
            if self.page.is_none() {
                if self.next_from > self.head {
                    self.done = true;
                    if let Some(save) = self.save.as_mut()
                        && let Err(error) = save.flush()
                    {
                        return self.fail(format!("writing the saved export: {error}"));
                    }
                    return None;
                }
                let url = format!(
                    "{}/v1/export?from={}&to={}",
                    self.base, self.next_from, self.head
                );
                let response = match self.agent.get(&url).call() {
                    Ok(response) => response,
                    Err(error) => return self.fail(format!("cannot read {url}: {error}")),
                };
                if response.status().as_u16() != 200 {
                    let status = response.status().as_u16();
                    return self.fail(format!("{url} answered {status}"));
                }
                let reader: Box<dyn Read + Send> = Box::new(response.into_body().into_reader());
                self.page = Some(BufReader::with_capacity(1 << 20, reader));
                self.page_lines = 0;
            }
            let Some(page) = self.page.as_mut() else {
                continue;
            };
            match read_line(page, &mut line) {
                Ok(None) => {
                    self.page = None;
                    if self.page_lines == 0 {
                        let from = self.next_from;
                        return self.fail(format!(
                            "the node's export from height {from} is empty although its checkpoint is at {}",
                            self.head
                        ));
                    }
                }
                Ok(Some(_)) => {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    self.position += 1;
                    self.page_lines += 1;
                    if let Some(save) = self.save.as_mut()
                        && let Err(error) =
                            save.write_all(&line).and_then(|()| save.write_all(b"\n"))
                    {
                        return self.fail(format!("writing the saved export: {error}"));
                    }
                    let parsed = parse_export_line(&line, self.position);
                    match &parsed {
                        Ok(source) => self.next_from = source.block.header.height + 1,
                        Err(_) => self.done = true,
                    }
                    return Some(parsed);
                }
                Err(error) => return self.fail(format!("reading the export: {error}")),
            }
        }
    }
}

enum Total {
    Bytes(u64),
    Height(Height),
}

/// Progress on standard error: a bar on a terminal, plain lines otherwise.
struct Reporter {
    mode: ProgressMode,
    started: Instant,
    total: Total,
    last_line: Option<Instant>,
    drawn: bool,
}

impl Reporter {
    fn new(mode: ProgressMode, started: Instant, total: Total) -> Self {
        Reporter {
            mode,
            started,
            total,
            last_line: None,
            drawn: false,
        }
    }

    fn report(&mut self, progress: &Progress, done: u64) {
        let total = match self.total {
            Total::Bytes(total) | Total::Height(total) => total,
        };
        let fraction = match self.total {
            _ if total == 0 => 1.0,
            // Reading runs ahead of execution: the file is read before its last blocks are
            // verified.
            Total::Bytes(_) => (done as f64 / total as f64).min(0.99),
            Total::Height(_) => (done as f64 / total as f64).min(1.0),
        };
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = progress.transactions as f64 / seconds;
        let text = format!(
            "height {} | {} blocks | {} transactions | {:.0} tx/s",
            progress.height, progress.blocks, progress.transactions, rate
        );
        let mut stderr = std::io::stderr().lock();
        match self.mode {
            ProgressMode::Bar => {
                const WIDTH: usize = 30;
                let filled = (fraction * WIDTH as f64).round() as usize;
                let _ = write!(
                    stderr,
                    "\r[{}{}] {:>3.0}% {text}\x1b[K",
                    "#".repeat(filled),
                    "-".repeat(WIDTH - filled.min(WIDTH)),
                    fraction * 100.0
                );
                let _ = stderr.flush();
                self.drawn = true;
            }
            ProgressMode::Lines => {
                if self
                    .last_line
                    .is_none_or(|last| last.elapsed() >= PROGRESS_LINE_INTERVAL)
                {
                    let _ = writeln!(stderr, "audit: {:.0}% {text}", fraction * 100.0);
                    self.last_line = Some(Instant::now());
                }
            }
            ProgressMode::Auto | ProgressMode::None => {}
        }
    }

    fn finish(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
        }
    }
}

fn rate(transactions: u64, elapsed: Duration) -> f64 {
    transactions as f64 / elapsed.as_secs_f64().max(1e-6)
}

fn print_summary(
    summary: &AuditSummary,
    elapsed: Duration,
    as_json: bool,
    to_stderr: bool,
    node_check: Option<&str>,
) {
    let text = if as_json {
        json!({
            "outcome": "verified",
            "summary": summary,
            "seconds": elapsed.as_secs_f64(),
            "transactions_per_second": rate(summary.transactions, elapsed),
            "node": node_check,
        })
        .to_string()
    } else {
        let checkpoint = &summary.checkpoint;
        let mut text = format!(
            "audit passed: chain {} from genesis {}\n\
             \x20 blocks            {} (heights 1 to {})\n\
             \x20 transactions      {} ({} endorsements, every one checked; signing authorities: {})\n\
             \x20 certificates      {} precommit signatures; the validator set changed {} times\n\
             \x20 time taken        {:.2} s ({:.0} transactions per second)\n\
             \x20 final checkpoint  height {}, block {}\n\
             \x20                   time {} ({} ms)\n\
             \x20                   log size {}, log root {}\n\
             \x20                   state root {}",
            summary.chain_id,
            summary.genesis_hash,
            summary.blocks,
            checkpoint.height,
            summary.transactions,
            summary.endorsements,
            summary.signing_authorities,
            summary.certificate_signatures,
            summary.validator_set_changes,
            elapsed.as_secs_f64(),
            rate(summary.transactions, elapsed),
            checkpoint.height,
            checkpoint.block_hash,
            utc_text(checkpoint.time),
            checkpoint.time,
            checkpoint.log_size,
            checkpoint.log_root,
            checkpoint.state_root,
        );
        if let Some(check) = node_check {
            text.push_str(&format!("\n  node              {check}"));
        }
        text
    };
    if to_stderr {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

fn print_failure(violation: &Violation, verified: &AuditSummary, elapsed: Duration, as_json: bool) {
    if as_json {
        println!(
            "{}",
            json!({
                "outcome": "violation",
                "violation": {
                    "code": violation.code(),
                    "height": violation.height(),
                    "explanation": violation.to_string(),
                    "detail": format!("{violation:?}"),
                },
                "verified_before": verified,
                "seconds": elapsed.as_secs_f64(),
            })
        );
        return;
    }
    println!(
        "AUDIT FAILED at block {} ({}):\n  {violation}\n\
         verified before it: {} blocks, {} transactions, up to height {} (block {})",
        violation.height(),
        violation.code(),
        verified.blocks,
        verified.transactions,
        verified.checkpoint.height,
        verified.checkpoint.block_hash,
    );
}

/// A half-open time range `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TimeRange {
    from: TimeMs,
    to: TimeMs,
}

impl TimeRange {
    fn parse(from: Option<&str>, to: Option<&str>) -> anyhow::Result<Self> {
        let from = from
            .map(|text| parse_time(text).context("--from"))
            .transpose()?
            .unwrap_or(0);
        let to = to
            .map(|text| parse_time(text).context("--to"))
            .transpose()?
            .unwrap_or(u64::MAX);
        if to < from {
            bail!("--to ({to}) is before --from ({from})");
        }
        Ok(TimeRange { from, to })
    }
}

/// Milliseconds since the epoch, `YYYY-MM-DD` (midnight UTC), or an RFC 3339 time with `Z` or
/// an offset. A date the calendar does not have, such as 31 February, is refused by name.
fn parse_time(text: &str) -> anyhow::Result<TimeMs> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    let parsed = if text.len() <= "YYYY-MM-DD".len() {
        calendar::parse_date(text)
    } else {
        calendar::parse_timestamp(text)
    };
    parsed.map_err(|error| {
        anyhow!(
            "{text:?}: {error} (give milliseconds since the epoch, YYYY-MM-DD, or an RFC 3339 time such as 2026-01-01T08:00:00Z)"
        )
    })
}

/// One step of a licence's history with its proof.
#[derive(Debug, Serialize)]
struct HistoryStep {
    event: String,
    event_zh: String,
    effective_at: TimeMs,
    effective_at_utc: String,
    by: AuthorityId,
    reason: String,
    height: Height,
    block_time_utc: String,
    transaction_id: Hash32,
    transaction: Transaction,
    /// The transaction's leaf hash and its inclusion proof in the log of the checkpoint.
    leaf_hash: Hash32,
    inclusion: hutong_core::log::InclusionProof,
}

/// The history queries, answered from the verified chain.
fn history(args: &AuditArgs, auditor: &Auditor, range: &TimeRange) -> Result<(), Failure> {
    let store = auditor.store();
    let checkpoint = &auditor.summary().checkpoint;
    let region = args
        .region
        .as_deref()
        .map(RegionCode::parse)
        .transpose()
        .map_err(|error| anyhow!("--region: {error}"))
        .code(exit::CONFIG)?;
    if let Some(path) = &args.report_csv {
        let filter = EventFilter {
            from: range.from,
            to: range.to,
            type_code: args.type_code.as_deref().map(Into::into),
            region: region.clone(),
        };
        let rows = licence_events(store, &filter, HISTORY_ROWS_MAX).code(exit::RUNTIME)?;
        let csv = licence_events_csv(&rows, &filter, checkpoint);
        std::fs::write(path, csv)
            .with_context(|| format!("writing {}", path.display()))
            .code(exit::RUNTIME)?;
        eprintln!(
            "report: {} licence events written to {}",
            rows.len(),
            path.display()
        );
    }
    if let Some(authority) = &args.signed_by {
        let authority = AuthorityId::from(authority.as_str());
        let mut items = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .actions_of(&authority, after, 1_024)
                .code(exit::RUNTIME)?;
            let Some(&(height, index, _)) = page.last() else {
                break;
            };
            after = Some((height, index));
            let full = page.len() == 1_024;
            for (height, index, id) in page {
                let header = store
                    .header(height)
                    .code(exit::RUNTIME)?
                    .ok_or_else(|| anyhow!("header {height} is missing"))
                    .code(exit::RUNTIME)?;
                if header.time < range.from || header.time >= range.to {
                    continue;
                }
                let (transaction, location) = store
                    .transaction(&id)
                    .code(exit::RUNTIME)?
                    .ok_or_else(|| anyhow!("transaction {id} is missing"))
                    .code(exit::RUNTIME)?;
                items.push(json!({
                    "height": height,
                    "index": index,
                    "block_time": header.time,
                    "block_time_utc": utc_text(header.time),
                    "log_index": location.log_index,
                    "transaction_id": id,
                    "kind": transaction.payload.body.kind_name(),
                    "submitted": transaction.payload.signer == authority,
                    "transaction": transaction,
                }));
                if items.len() > HISTORY_ROWS_MAX {
                    return Err(Failure::new(
                        exit::RUNTIME,
                        anyhow!("more than {HISTORY_ROWS_MAX} actions; narrow the time range"),
                    ));
                }
            }
            if !full {
                break;
            }
        }
        print_json(&json!({
            "query": "signed_by",
            "authority": authority,
            "from": range.from,
            "to": range.to,
            "checkpoint": checkpoint,
            "items": items,
        }));
    }
    if let Some(licence) = &args.licence {
        let (type_code, number) = licence
            .split_once('/')
            .ok_or_else(|| anyhow!("--licence is TYPE/NUMBER"))
            .code(exit::CONFIG)?;
        let key = RecordKey::Licence(type_code.into(), LicenceNumber(number.to_owned()));
        let proof = store.prove(&key).code(exit::RUNTIME)?;
        let Some(Record::Licence(record)) = &proof.record else {
            return Err(Failure::new(
                exit::RUNTIME,
                anyhow!("no licence {licence} on the verified chain"),
            ));
        };
        let mut steps = Vec::new();
        for event in &record.events {
            let (transaction, location) = store
                .transaction(&event.tx)
                .code(exit::RUNTIME)?
                .ok_or_else(|| anyhow!("transaction {} is missing", event.tx))
                .code(exit::RUNTIME)?;
            let header = store
                .header(event.height)
                .code(exit::RUNTIME)?
                .ok_or_else(|| anyhow!("header {} is missing", event.height))
                .code(exit::RUNTIME)?;
            let inclusion = store
                .log_inclusion(location.log_index, checkpoint.log_size)
                .code(exit::RUNTIME)?;
            steps.push(HistoryStep {
                event: audit::event_name(&event.kind).to_owned(),
                event_zh: audit::event_name_zh(&event.kind).to_owned(),
                effective_at: event.effective_at,
                effective_at_utc: utc_text(event.effective_at),
                by: event.by.clone(),
                reason: event.reason.clone(),
                height: event.height,
                block_time_utc: utc_text(header.time),
                transaction_id: event.tx,
                leaf_hash: auditor.store().suite().leaf_hash(&transaction.to_bytes()),
                transaction,
                inclusion,
            });
        }
        print_json(&json!({
            "query": "licence_history",
            "licence": licence,
            "checkpoint": checkpoint,
            "record": record,
            "state_proof": proof.proof,
            "steps": steps,
        }));
    }
    if let Some(at) = &args.recognitions_at {
        let at = parse_time(at)
            .context("--recognitions-at")
            .code(exit::CONFIG)?;
        let recognitions: Vec<_> = store
            .recognitions()
            .code(exit::RUNTIME)?
            .into_iter()
            .filter(|recognition| recognition.in_force_at(at))
            .collect();
        print_json(&json!({
            "query": "recognitions_in_force",
            "at": at,
            "at_utc": utc_text(at),
            "checkpoint": checkpoint,
            "items": recognitions,
        }));
    }
    Ok(())
}

fn print_json(value: &serde_json::Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(error) => eprintln!("hutong: cannot print the answer: {error}"),
    }
}

/// What one node says its head is.
#[derive(Debug, Serialize)]
struct NodeHead {
    node: String,
    height: Height,
    block_hash: Hash32,
    log_size: u64,
    log_root: Hash32,
    /// Whether the checkpoint's certificate was verified from genesis (with --genesis).
    certified: Option<bool>,
}

/// How one node relates to the reference node.
#[derive(Debug, Serialize)]
struct Relation {
    node: String,
    /// `same`, `behind`, `ahead`, or `fork`.
    relation: &'static str,
    blocks_apart: u64,
    /// For a fork: the first height at which the two nodes hold different blocks.
    fork_height: Option<Height>,
    reference_block: Option<Hash32>,
    other_block: Option<Hash32>,
    /// The log consistency proof between the two checkpoints was checked.
    log_consistent: Option<bool>,
}

/// `hutong audit --node URL --against URL...`: compares checkpoints.
fn compare(args: &AuditArgs) -> Result<(), Failure> {
    let Some(reference) = args.node.as_deref() else {
        return Err(Failure::new(2, anyhow!("--against needs --node URL")));
    };
    let mut nodes: Vec<String> = vec![reference.trim_end_matches('/').to_owned()];
    nodes.extend(
        args.against
            .iter()
            .map(|url| url.trim_end_matches('/').to_owned()),
    );
    if nodes.len() > NODES_MAX {
        return Err(Failure::new(
            2,
            anyhow!("at most {NODES_MAX} nodes in one comparison"),
        ));
    }
    let genesis = args.genesis.as_deref().map(read_genesis).transpose()?;
    let agent = agent(REQUEST_TIMEOUT);
    // Without a genesis file, the reference node says which suite the chain's hashes are in.
    let suite = match &genesis {
        Some(genesis) => genesis.suite,
        None => node_suite(&agent, reference)?,
    };
    let mut heads = Vec::new();
    for node in &nodes {
        let checkpoint = node_checkpoint(&agent, node)?;
        let certified = genesis.as_ref().map(|genesis| {
            verify_checkpoint(&checkpoint, genesis)
                .map_err(|error| {
                    eprintln!("hutong: the checkpoint of {node} does not verify: {error}");
                })
                .is_ok()
        });
        let header = &checkpoint.header;
        heads.push(NodeHead {
            node: node.clone(),
            height: header.height,
            block_hash: header.hash(suite),
            log_size: header.log_size,
            log_root: header.log_root,
            certified,
        });
    }
    let mut relations = Vec::new();
    let mut forked = false;
    if let Some((first, others)) = heads.split_first() {
        for other in others {
            let relation = relate(&agent, suite, first, other)?;
            forked |= relation.relation == "fork";
            relations.push(relation);
        }
    }
    let uncertified = heads.iter().any(|head| head.certified == Some(false));
    if args.json {
        println!(
            "{}",
            json!({ "reference": nodes[0], "heads": heads, "relations": relations, "fork": forked })
        );
    } else {
        for head in &heads {
            println!(
                "{}: height {}, block {}, log size {}{}",
                head.node,
                head.height,
                head.block_hash,
                head.log_size,
                match head.certified {
                    Some(true) => ", certificate verified from genesis",
                    Some(false) => ", CERTIFICATE DOES NOT VERIFY",
                    None => "",
                }
            );
        }
        for relation in &relations {
            let line = match relation.relation {
                "same" => format!("{}: same head as {}", relation.node, nodes[0]),
                "behind" | "ahead" => format!(
                    "{}: {} {} blocks {} {} on the same chain{}",
                    relation.node,
                    if relation.relation == "behind" {
                        "lags"
                    } else {
                        "leads"
                    },
                    relation.blocks_apart,
                    if relation.relation == "behind" {
                        "behind"
                    } else {
                        "ahead of"
                    },
                    nodes[0],
                    match relation.log_consistent {
                        Some(true) => " (log consistency proof verified)",
                        Some(false) => " (LOG CONSISTENCY PROOF FAILS)",
                        None => "",
                    }
                ),
                _ => format!(
                    "{}: FORK from {} at height {}: {} has block {}, {} has block {}",
                    relation.node,
                    nodes[0],
                    relation.fork_height.unwrap_or(0),
                    nodes[0],
                    relation
                        .reference_block
                        .map(|hash| hash.to_string())
                        .unwrap_or_default(),
                    relation.node,
                    relation
                        .other_block
                        .map(|hash| hash.to_string())
                        .unwrap_or_default(),
                ),
            };
            println!("{line}");
        }
    }
    if forked || uncertified {
        return Err(Failure::new(
            EXIT_VIOLATION,
            anyhow!(if forked {
                "the nodes do not hold the same chain"
            } else {
                "a node's checkpoint does not verify"
            }),
        ));
    }
    Ok(())
}

fn relate(
    agent: &ureq::Agent,
    suite: Suite,
    reference: &NodeHead,
    other: &NodeHead,
) -> Result<Relation, Failure> {
    let common = reference.height.min(other.height);
    let hash_at = |node: &str, height: Height| -> Result<Hash32, Failure> {
        if height == 0 {
            // Both start from their genesis header; compare it too.
            return node_header(agent, node, suite, 0).map(|header| header.hash(suite));
        }
        node_header(agent, node, suite, height).map(|header| header.hash(suite))
    };
    let reference_at = hash_at(&reference.node, common)?;
    let other_at = hash_at(&other.node, common)?;
    if reference_at == other_at {
        let (relation, apart) = match reference.height.cmp(&other.height) {
            std::cmp::Ordering::Equal => ("same", 0),
            std::cmp::Ordering::Greater => ("behind", reference.height - other.height),
            std::cmp::Ordering::Less => ("ahead", other.height - reference.height),
        };
        // The longer log must extend the shorter one.
        let log_consistent = if relation == "same" {
            None
        } else {
            let (short, long) = if relation == "behind" {
                (other, reference)
            } else {
                (reference, other)
            };
            let view: hutong_api::views::ConsistencyView = get_json(
                agent,
                &format!(
                    "{}/v1/log/consistency?first={}&second={}",
                    long.node, short.log_size, long.log_size
                ),
            )?;
            Some(
                view.first_root == short.log_root
                    && view.second_root == long.log_root
                    && view
                        .proof
                        .verify(&suite, &short.log_root, &long.log_root)
                        .is_ok(),
            )
        };
        return Ok(Relation {
            node: other.node.clone(),
            relation,
            blocks_apart: apart,
            fork_height: None,
            reference_block: None,
            other_block: None,
            log_consistent,
        });
    }
    // They differ at `common`; find the first height where they differ (they agree below
    // `low`, differ at `high`).
    let (mut low, mut high) = (0u64, common);
    if hash_at(&reference.node, 0)? != hash_at(&other.node, 0)? {
        high = 0;
    }
    while high > 0 && high - low > 1 {
        let middle = low + (high - low) / 2;
        if hash_at(&reference.node, middle)? == hash_at(&other.node, middle)? {
            low = middle;
        } else {
            high = middle;
        }
    }
    Ok(Relation {
        node: other.node.clone(),
        relation: "fork",
        blocks_apart: reference.height.abs_diff(other.height),
        fork_height: Some(high),
        reference_block: Some(hash_at(&reference.node, high)?),
        other_block: Some(hash_at(&other.node, high)?),
        log_consistent: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hutong_ledger::audit::ExportLine;

    #[test]
    fn times_parse_in_each_form() {
        assert_eq!(parse_time("1767225600000").unwrap(), 1_767_225_600_000);
        assert_eq!(parse_time("2026-01-01").unwrap(), 1_767_225_600_000);
        assert_eq!(
            parse_time("2026-01-01T08:00:01Z").unwrap(),
            1_767_225_600_000 + 8 * 3_600_000 + 1_000
        );
        assert_eq!(parse_time("2000-02-29").unwrap(), 951_782_400_000);
        assert!(parse_time("2026-13-01").is_err());
        assert!(parse_time("2026-01-01T08:00:01").is_err());
        assert!(parse_time("yesterday").is_err());
        for ms in [0, 951_782_400_000, 1_767_225_600_000, 4_102_444_800_000] {
            let text = utc_text(ms);
            assert_eq!(parse_time(&text[..10]).unwrap(), ms - ms % 86_400_000);
        }
    }

    #[test]
    fn impossible_dates_are_refused_by_name() {
        let message = |text: &str| format!("{:#}", parse_time(text).unwrap_err());
        assert_eq!(
            message("2026-02-31"),
            "\"2026-02-31\": 2026-02-31 is not a day of the calendar: February 2026 has 28 days \
             (give milliseconds since the epoch, YYYY-MM-DD, or an RFC 3339 time such as \
             2026-01-01T08:00:00Z)"
        );
        for (text, reason) in [
            ("2026-02-29", "February 2026 has 28 days"),
            ("2100-02-29", "February 2100 has 28 days"),
            ("2026-04-31", "April 2026 has 30 days"),
            ("2026-01-32", "January 2026 has 31 days"),
            ("2026-01-00", "January 2026 has 31 days"),
            ("2026-00-10", "a year has months 01 to 12"),
            ("2026-02-31T00:00:00Z", "February 2026 has 28 days"),
        ] {
            let date = &text[..10];
            assert!(
                message(text).contains(&format!("{date} is not a day of the calendar: {reason}")),
                "{text}: {}",
                message(text)
            );
        }
        assert_eq!(parse_time("2024-02-29").unwrap(), 1_709_164_800_000);
        assert_eq!(
            format!(
                "{:#}",
                TimeRange::parse(Some("2026-02-31"), None).unwrap_err()
            ),
            format!("--from: {}", message("2026-02-31"))
        );
        assert_eq!(
            format!(
                "{:#}",
                TimeRange::parse(None, Some("2026-02-31")).unwrap_err()
            ),
            format!("--to: {}", message("2026-02-31"))
        );
    }

    #[test]
    fn times_take_an_offset() {
        assert_eq!(
            parse_time("2026-01-01T16:00:01+08:00").unwrap(),
            1_767_225_600_000 + 8 * 3_600_000 + 1_000
        );
        assert_eq!(
            parse_time("2026-01-01T08:00:01.250Z").unwrap(),
            1_767_225_600_000 + 8 * 3_600_000 + 1_250
        );
        // A time without an offset is refused, not guessed.
        let message = format!("{:#}", parse_time("2026-01-01T08:00:01").unwrap_err());
        assert!(message.contains("no offset"), "{message}");
    }

    #[test]
    fn lines_are_bounded_and_split() {
        let mut reader = BufReader::new(&b"{\"a\":1}\n\n{\"b\":2}"[..]);
        let mut line = Vec::new();
        assert_eq!(read_line(&mut reader, &mut line).unwrap(), Some(8));
        assert_eq!(line, b"{\"a\":1}");
        assert_eq!(read_line(&mut reader, &mut line).unwrap(), Some(1));
        assert!(line.is_empty());
        assert_eq!(read_line(&mut reader, &mut line).unwrap(), Some(7));
        assert_eq!(read_line(&mut reader, &mut line).unwrap(), None);
    }

    #[test]
    fn export_lines_round_trip() {
        let mut fixture = hutong_core::testkit::Fixture::new();
        let store = hutong_ledger::store::Store::create_with(
            Box::new(hutong_ledger::store::MemoryBackend::new()),
            &fixture.genesis,
        )
        .unwrap();
        let issuance = fixture.issue_business_licence("qd-approval", "370200", 1);
        let execution = store
            .execute(
                hutong_core::testkit::GENESIS_TIME + 1_000,
                fixture.node_keys[0].public_key(),
                vec![issuance],
                hutong_ledger::store::Mode::Verify,
            )
            .unwrap();
        let certificate = fixture.certify(&execution.header);
        let block = store.commit(execution, certificate).unwrap();
        // The API's export line and the auditor's are the same JSON.
        let api_line = serde_json::to_string(&hutong_api::views::BlockView {
            hash: block.hash(hutong_core::testkit::SUITE),
            block: block.clone(),
        })
        .unwrap();
        assert_eq!(
            api_line,
            ExportLine::of(hutong_core::testkit::SUITE, block.clone()).to_json()
        );
        let parsed = parse_export_line(api_line.as_bytes(), 1).unwrap();
        assert_eq!(parsed.block, block);
    }
}
