//! `hutong witness`: a party outside the validators (an auditor, a court, another province)
//! that follows nodes' signed checkpoints and cosigns each log it has seen extend the last one
//! it cosigned (ADR 0038, docs/proofs.md section 14, docs/operations.md).
//!
//! Each round, for every node it follows, the witness reads `GET /v1/log/checkpoint`,
//! verifies it against the genesis file as `hutong verify` does (the certificate and every
//! validator-set hand-over since genesis), and compares it with the last checkpoint it
//! cosigned, which its state file keeps:
//!
//! - a larger log: it asks the node for the consistency proof from its last size
//!   (`GET /v1/log/consistency`) and checks it against the two roots it holds; then it writes
//!   its new state (durably, before anything leaves) and posts its cosignature
//!   (`POST /v1/log/cosignatures`) to every node it follows;
//! - the same log: nothing, unless the node's checkpoint lacks its cosignature (a restarted
//!   node forgets them), which it posts again;
//! - a smaller log: a node that lags; nothing;
//! - two checkpoints the validators signed that cannot both be true (two roots for one size,
//!   two headers for one height, or a larger log whose consistency proof from the last
//!   cosigned one does not verify): it writes a split-view proof document and stops with exit
//!   code 8 ([`crate::exit::SPLIT_VIEW`]), cosigning nothing more.
//!
//! A checkpoint that does not verify, a node that does not answer, or an answer of the wrong
//! shape is the node's fault, not the chain's: logged, and the node is asked again next round.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use hutong_core::crypto::SecretKey;
use hutong_core::genesis::Genesis;
use hutong_core::hash::Hash32;
use hutong_core::log::ConsistencyProof;
use hutong_verify::split_view::{SPLIT_VIEW_FORMAT, SplitView, SplitViewKind};
use hutong_verify::witness::{CheckpointNote, Cosignature, WitnessKey};
use hutong_verify::{Checkpoint, CheckpointDocument, VerifiedCheckpoint};

use crate::limits::{
    WITNESS_ANSWER_BYTES_MAX, WITNESS_NODES_MAX, WITNESS_POLL_DEFAULT, WITNESS_POLL_MAX,
    WITNESS_POLL_MIN, WITNESS_REQUEST_ATTEMPTS, WITNESS_REQUEST_TIMEOUT, WITNESS_RETRY_PAUSE,
    WITNESS_STATE_BYTES_MAX,
};
use crate::{Failure, WithCode, exit, keys};

/// The `format` of a witness's state file.
pub const WITNESS_STATE_FORMAT: &str = "hutong-witness-state/v1";

#[derive(Debug, Subcommand)]
pub enum WitnessCommand {
    /// Generate a witness key (a key file with mode 0600) and print what the nodes'
    /// `[[witnesses]]` and the verifiers' `--witness-keys` file need.
    Keygen {
        /// The witness's name: a schema-less URL is customary (`witness.court.example/hutong`).
        #[arg(long)]
        name: String,
        /// The key file to write.
        #[arg(long, default_value = "witness_key.json")]
        key: PathBuf,
        /// Overwrite an existing key file.
        #[arg(long)]
        force: bool,
    },
    /// Follow nodes' checkpoints and cosign them until SIGINT or SIGTERM (or a split view).
    Run(WitnessArgs),
}

#[derive(Debug, Args)]
pub struct WitnessArgs {
    /// The chain's genesis file: the only thing trusted.
    #[arg(long)]
    pub genesis: PathBuf,
    /// The witness's name, as the nodes and the verifiers know it.
    #[arg(long)]
    pub name: String,
    /// The witness's key file (`hutong witness keygen`).
    #[arg(long)]
    pub key: PathBuf,
    /// A node's API to follow, e.g. http://127.0.0.1:8080 (repeatable).
    #[arg(long = "node", required = true)]
    pub nodes: Vec<String>,
    /// The witness's state file: the last checkpoint it cosigned (created at the first).
    #[arg(long)]
    pub state: PathBuf,
    /// Where a split-view proof is written when one is seen.
    #[arg(long, default_value = "split-view.json")]
    pub split_view: PathBuf,
    /// The pause between two rounds, in milliseconds (200 to 3,600,000; default 2,000).
    #[arg(long)]
    pub poll_ms: Option<u64>,
    /// Run one round and exit (for a scheduler, and for tests).
    #[arg(long)]
    pub once: bool,
}

/// What a witness keeps between rounds and across restarts: the last checkpoint it cosigned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessState {
    /// [`WITNESS_STATE_FORMAT`].
    pub format: String,
    pub chain_id: String,
    /// The witness whose state this is.
    pub witness: String,
    pub log_size: u64,
    pub log_root: Hash32,
    /// The validators' signed checkpoint of that log, kept for a split-view proof.
    pub checkpoint: Checkpoint,
    /// The node it was read from.
    pub source: String,
}

impl WitnessState {
    /// Reads a state file of at most [`WITNESS_STATE_BYTES_MAX`] bytes; `None` when there is
    /// none yet. A file of another chain or another witness is refused.
    pub fn load(path: &Path, chain_id: &str, witness: &str) -> anyhow::Result<Option<Self>> {
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(error).with_context(|| format!("reading {}", path.display()));
            }
        };
        let mut bytes = Vec::new();
        file.take(WITNESS_STATE_BYTES_MAX as u64 + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", path.display()))?;
        if bytes.len() > WITNESS_STATE_BYTES_MAX {
            return Err(anyhow!(
                "{} is larger than a witness state can be ({WITNESS_STATE_BYTES_MAX} bytes)",
                path.display()
            ));
        }
        let state: WitnessState = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a witness state", path.display()))?;
        if state.format != WITNESS_STATE_FORMAT {
            return Err(anyhow!(
                "{} is of format {:?}, not {WITNESS_STATE_FORMAT}",
                path.display(),
                state.format
            ));
        }
        if state.chain_id != chain_id || state.witness != witness {
            return Err(anyhow!(
                "{} is the state of witness {:?} of chain {:?}, not of {witness:?} of {chain_id:?}",
                path.display(),
                state.witness,
                state.chain_id
            ));
        }
        Ok(Some(state))
    }

    /// Replaces the state file whole (written beside it, synced, renamed over it).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        crate::durable::write_atomic(path, &bytes, 0o644)
            .with_context(|| format!("writing the witness state {}", path.display()))
    }
}

/// What a verified checkpoint from a node means to a witness holding `state`.
#[derive(Debug, PartialEq, Eq)]
pub enum Examined {
    /// The log last cosigned: nothing new.
    Same,
    /// A smaller log than the last cosigned (a node that lags).
    Behind,
    /// The first checkpoint this witness sees: it cosigns it.
    First,
    /// A larger log: cosigned once its consistency from the last is proved.
    Larger { first_size: u64, second_size: u64 },
    /// Two signed checkpoints that cannot both be true.
    SplitView(Box<SplitView>),
}

fn split_view(
    kind: SplitViewKind,
    state: &WitnessState,
    second: &Checkpoint,
    source: &str,
    consistency: Option<ConsistencyProof>,
) -> SplitView {
    SplitView {
        format: SPLIT_VIEW_FORMAT.into(),
        chain_id: state.chain_id.clone(),
        kind,
        first: state.checkpoint.clone(),
        second: second.clone(),
        consistency,
        sources: vec![state.source.clone(), source.to_owned()],
    }
}

/// Compares a checkpoint (already verified) with the last one cosigned.
pub fn examine(
    state: Option<&WitnessState>,
    checkpoint: &Checkpoint,
    verified: &VerifiedCheckpoint,
    source: &str,
    suite: hutong_core::suite::Suite,
) -> Examined {
    let Some(state) = state else {
        return Examined::First;
    };
    let last = &state.checkpoint.header;
    if last.height == checkpoint.header.height && last.hash(suite) != verified.block_hash {
        return Examined::SplitView(Box::new(split_view(
            SplitViewKind::SameHeightDifferentHeaders,
            state,
            checkpoint,
            source,
            None,
        )));
    }
    if verified.log_size == state.log_size {
        if verified.log_root == state.log_root {
            return Examined::Same;
        }
        return Examined::SplitView(Box::new(split_view(
            SplitViewKind::SameSizeDifferentRoots,
            state,
            checkpoint,
            source,
            None,
        )));
    }
    if verified.log_size < state.log_size {
        return Examined::Behind;
    }
    Examined::Larger {
        first_size: state.log_size,
        second_size: verified.log_size,
    }
}

/// A consistency proof as `GET /v1/log/consistency` answers it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyAnswer {
    // The roots the node states are read but not trusted: the witness checks the proof
    // against the roots of the two checkpoints the validators signed.
    #[allow(dead_code)]
    pub first_root: Hash32,
    #[allow(dead_code)]
    pub second_root: Hash32,
    pub proof: ConsistencyProof,
}

/// Checks a node's consistency answer from the last cosigned log to a larger verified one,
/// against the two roots the witness holds (the answer's own roots are not trusted). `Ok`:
/// consistent; `Err(Some)`: a split view; `Err(None)`: an answer of the wrong sizes, the
/// node's fault, asked again next round.
pub fn check_consistency(
    state: &WitnessState,
    checkpoint: &Checkpoint,
    verified: &VerifiedCheckpoint,
    answer: &ConsistencyAnswer,
    source: &str,
    suite: hutong_core::suite::Suite,
) -> Result<(), Option<Box<SplitView>>> {
    let proof = &answer.proof;
    if (proof.first_size, proof.second_size) != (state.log_size, verified.log_size) {
        return Err(None);
    }
    match proof.verify(&suite, &state.log_root, &verified.log_root) {
        Ok(()) => Ok(()),
        Err(_) => Err(Some(Box::new(split_view(
            SplitViewKind::ConsistencyRefused,
            state,
            checkpoint,
            source,
            Some(proof.clone()),
        )))),
    }
}

pub fn command(command: WitnessCommand) -> Result<(), Failure> {
    match command {
        WitnessCommand::Keygen { name, key, force } => keygen(&name, &key, force),
        WitnessCommand::Run(args) => run(&args),
    }
}

fn keygen(name: &str, path: &Path, force: bool) -> Result<(), Failure> {
    let secret = keys::generate()
        .map_err(|error| anyhow!("no randomness from the operating system: {error}"))
        .code(exit::RUNTIME)?;
    let witness = WitnessKey {
        name: name.to_owned(),
        public_key: secret.public_key(),
    };
    witness.check().code(exit::CONFIG)?;
    keys::write(path, "witness", &secret, force).code(exit::CONFIG)?;
    println!("witness {name}: public key {}", witness.public_key);
    println!("vkey (C2SP): {}", witness.vkey());
    println!("for each node's config.toml:");
    println!(
        "[[witnesses]]\nname = \"{name}\"\npublic_key = \"{}\"",
        witness.public_key
    );
    println!("for the verifiers' --witness-keys file:");
    println!(
        "{}",
        serde_json::json!({
            "format": hutong_verify::witness::WITNESS_KEYS_FORMAT,
            "witnesses": [witness],
        })
    );
    Ok(())
}

/// The witness's HTTP side: one agent, bounded requests, a few attempts each.
struct Client {
    agent: ureq::Agent,
}

impl Client {
    fn new() -> Self {
        Client {
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(WITNESS_REQUEST_TIMEOUT))
                .http_status_as_error(false)
                .build()
                .into(),
        }
    }

    /// GETs `url`, at most [`WITNESS_REQUEST_ATTEMPTS`] times, and reads a 200 answer of at
    /// most [`WITNESS_ANSWER_BYTES_MAX`] bytes as JSON.
    fn get<T: serde::de::DeserializeOwned>(&self, url: &str) -> anyhow::Result<T> {
        let mut last_error = anyhow!("no attempt made");
        for attempt in 0..WITNESS_REQUEST_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(WITNESS_RETRY_PAUSE);
            }
            match self.get_once(url) {
                Ok(value) => return Ok(value),
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }

    fn get_once<T: serde::de::DeserializeOwned>(&self, url: &str) -> anyhow::Result<T> {
        let mut response = self
            .agent
            .get(url)
            .call()
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(WITNESS_ANSWER_BYTES_MAX as u64)
            .read_to_string()
            .with_context(|| format!("reading the answer of {url}"))?;
        if status != 200 {
            return Err(anyhow!(
                "{url} answered {status}: {}",
                text.chars().take(300).collect::<String>()
            ));
        }
        serde_json::from_str(&text).with_context(|| format!("the answer of {url}"))
    }

    /// POSTs a cosignature; the node's refusal is returned as an error with its text.
    fn post_cosignature(&self, base: &str, body: &[u8]) -> anyhow::Result<()> {
        let url = format!("{base}/v1/log/cosignatures");
        let mut last_error = anyhow!("no attempt made");
        for attempt in 0..WITNESS_REQUEST_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(WITNESS_RETRY_PAUSE);
            }
            let response = self
                .agent
                .post(&url)
                .header("content-type", "application/json")
                .send(body);
            match response {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    if status == 200 {
                        return Ok(());
                    }
                    let text = response
                        .body_mut()
                        .with_config()
                        .limit(64 * 1024)
                        .read_to_string()
                        .unwrap_or_default();
                    let error = anyhow!(
                        "{url} refused the cosignature ({status}): {}",
                        text.chars().take(300).collect::<String>()
                    );
                    // A refusal (4xx) will not change by asking again.
                    if (400..500).contains(&status) {
                        return Err(error);
                    }
                    last_error = error;
                }
                Err(error) => last_error = anyhow!("cannot reach {url}: {error}"),
            }
        }
        Err(last_error)
    }
}

/// A running witness: its key, the chain, its state.
struct Witness {
    name: String,
    key: SecretKey,
    genesis: Genesis,
    nodes: Vec<String>,
    state_path: PathBuf,
    split_view_path: PathBuf,
    state: Option<WitnessState>,
    client: Client,
}

/// What one node's round ended with.
enum Round {
    Done,
    SplitView(Box<SplitView>),
}

fn now_seconds() -> u64 {
    crate::shared::now_ms() / 1000
}

impl Witness {
    fn note_of(&self, verified: &VerifiedCheckpoint) -> CheckpointNote {
        CheckpointNote::new(&verified.chain_id, verified.log_size, verified.log_root)
    }

    fn post_everywhere(&self, note: &CheckpointNote, only: Option<&str>) -> anyhow::Result<()> {
        let cosignature = Cosignature::sign(&self.name, &self.key, now_seconds(), note)?;
        let body = serde_json::to_vec(&serde_json::json!({
            "note": note,
            "cosignature": cosignature,
        }))?;
        for node in &self.nodes {
            if only.is_some_and(|only| only != node) {
                continue;
            }
            match self.client.post_cosignature(node, &body) {
                Ok(()) => {
                    tracing::info!(node = %node, log_size = note.log_size, "cosignature posted")
                }
                Err(error) => tracing::warn!(node = %node, "{error:#}"),
            }
        }
        Ok(())
    }

    /// One node's turn: read, verify, compare, cosign.
    fn follow(&mut self, node: &str) -> anyhow::Result<Round> {
        let document: CheckpointDocument = self.client.get(&format!("{node}/v1/log/checkpoint"))?;
        let checkpoint = document.checkpoint;
        let verified =
            hutong_verify::verify_checkpoint(&checkpoint, &self.genesis).map_err(|error| {
                anyhow!(
                    "the checkpoint of {node} does not verify ({}): {error}",
                    error.code()
                )
            })?;
        let suite = self.genesis.suite;
        let note = self.note_of(&verified);
        match examine(self.state.as_ref(), &checkpoint, &verified, node, suite) {
            Examined::SplitView(split) => return Ok(Round::SplitView(split)),
            Examined::Behind => {
                tracing::info!(node = %node, log_size = verified.log_size, "the node lags behind the last cosigned log");
                return Ok(Round::Done);
            }
            Examined::Same => {
                let ours = document
                    .cosignatures
                    .iter()
                    .any(|cosignature| cosignature.witness == self.name);
                if !ours {
                    self.post_everywhere(&note, Some(node))?;
                }
                return Ok(Round::Done);
            }
            Examined::First => {}
            Examined::Larger {
                first_size,
                second_size,
            } => {
                let answer: ConsistencyAnswer = self.client.get(&format!(
                    "{node}/v1/log/consistency?first={first_size}&second={second_size}"
                ))?;
                let Some(state) = self.state.as_ref() else {
                    return Err(anyhow!("a larger log is only examined against a state"));
                };
                match check_consistency(state, &checkpoint, &verified, &answer, node, suite) {
                    Ok(()) => {}
                    Err(Some(split)) => return Ok(Round::SplitView(split)),
                    Err(None) => {
                        return Err(anyhow!(
                            "{node} answered a consistency proof from {} to {} for {first_size} to {second_size}",
                            answer.proof.first_size,
                            answer.proof.second_size
                        ));
                    }
                }
            }
        }
        // Persist before anything leaves: after a crash the witness never cosigns a log
        // inconsistent with this one.
        let state = WitnessState {
            format: WITNESS_STATE_FORMAT.into(),
            chain_id: self.genesis.chain_id.clone(),
            witness: self.name.clone(),
            log_size: verified.log_size,
            log_root: verified.log_root,
            checkpoint,
            source: node.to_owned(),
        };
        state.save(&self.state_path)?;
        self.state = Some(state);
        tracing::info!(node = %node, log_size = verified.log_size, height = verified.height, "cosigning");
        self.post_everywhere(&note, None)?;
        Ok(Round::Done)
    }

    /// One round over every node; `Err` only for a split view (its document written).
    fn round(&mut self) -> Result<(), Failure> {
        for node in self.nodes.clone() {
            match self.follow(&node) {
                Ok(Round::Done) => {}
                Ok(Round::SplitView(split)) => return Err(self.stop_on(&split)),
                Err(error) => tracing::warn!(node = %node, "{error:#}"),
            }
        }
        Ok(())
    }

    fn stop_on(&self, split: &SplitView) -> Failure {
        let written = serde_json::to_vec_pretty(split)
            .map_err(anyhow::Error::from)
            .and_then(|mut bytes| {
                bytes.push(b'\n');
                crate::durable::write_atomic(&self.split_view_path, &bytes, 0o644)
                    .map_err(anyhow::Error::from)
            });
        let where_ = match written {
            Ok(()) => format!("the proof is in {}", self.split_view_path.display()),
            Err(error) => format!(
                "writing the proof to {} failed: {error:#}",
                self.split_view_path.display()
            ),
        };
        Failure::new(
            exit::SPLIT_VIEW,
            anyhow!(
                "split view ({}): the validators signed checkpoints at heights {} and {} (logs of \
                 {} and {} transactions) that cannot both be true, read from {}; {where_}; check \
                 it with hutong verify --genesis GENESIS --bundle FILE",
                split.kind.name(),
                split.first.header.height,
                split.second.header.height,
                split.first.header.log_size,
                split.second.header.log_size,
                split.sources.join(" and "),
            ),
        )
    }
}

fn run(args: &WitnessArgs) -> Result<(), Failure> {
    let poll = match args.poll_ms {
        Some(ms) => {
            let poll = Duration::from_millis(ms);
            if poll < WITNESS_POLL_MIN || poll > WITNESS_POLL_MAX {
                return Err(Failure::new(
                    exit::CONFIG,
                    anyhow!(
                        "--poll-ms {ms} is out of range ({} to {})",
                        WITNESS_POLL_MIN.as_millis(),
                        WITNESS_POLL_MAX.as_millis()
                    ),
                ));
            }
            poll
        }
        None => WITNESS_POLL_DEFAULT,
    };
    if args.nodes.len() > WITNESS_NODES_MAX {
        return Err(Failure::new(
            exit::CONFIG,
            anyhow!(
                "{} nodes given; a witness follows at most {WITNESS_NODES_MAX}",
                args.nodes.len()
            ),
        ));
    }
    // RUST_LOG chooses what is logged (default: info), to standard error.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let genesis_bytes = std::fs::read(&args.genesis)
        .with_context(|| format!("reading the genesis file {}", args.genesis.display()))
        .code(exit::CONFIG)?;
    let genesis = Genesis::from_json(&genesis_bytes)
        .with_context(|| format!("checking the genesis file {}", args.genesis.display()))
        .code(exit::CONFIG)?;
    let key = keys::read(&args.key).code(exit::CONFIG)?;
    WitnessKey {
        name: args.name.clone(),
        public_key: key.public_key(),
    }
    .check()
    .code(exit::CONFIG)?;
    let state =
        WitnessState::load(&args.state, &genesis.chain_id, &args.name).code(exit::CONFIG)?;
    if let Some(state) = &state {
        // The kept checkpoint must still verify: a state edited by hand is not trusted.
        let verified = hutong_verify::verify_checkpoint(&state.checkpoint, &genesis)
            .map_err(|error| {
                anyhow!(
                    "the checkpoint in {} does not verify: {error}",
                    args.state.display()
                )
            })
            .code(exit::CONFIG)?;
        if (verified.log_size, verified.log_root) != (state.log_size, state.log_root) {
            return Err(Failure::new(
                exit::CONFIG,
                anyhow!(
                    "{} names a log its own checkpoint does not sign",
                    args.state.display()
                ),
            ));
        }
    }
    let mut witness = Witness {
        name: args.name.clone(),
        key,
        genesis,
        nodes: args
            .nodes
            .iter()
            .map(|node| node.trim_end_matches('/').to_owned())
            .collect(),
        state_path: args.state.clone(),
        split_view_path: args.split_view.clone(),
        state,
        client: Client::new(),
    };
    tracing::info!(
        witness = %witness.name,
        nodes = witness.nodes.len(),
        poll_ms = poll.as_millis() as u64,
        last_cosigned = witness.state.as_ref().map(|state| state.log_size),
        "witness started"
    );
    // SIGINT and SIGTERM end the process where it is: every file it writes is replaced whole
    // (`durable::write_atomic`), and its state is written before a cosignature leaves.
    loop {
        witness.round()?;
        if args.once {
            return Ok(());
        }
        std::thread::sleep(poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hutong_core::block::BlockHeader;
    use hutong_core::log::{LogHasher as _, MemoryLogStore};
    use hutong_core::suite::Suite;
    use hutong_core::testkit::{Fixture, secret};
    use std::io::Write as _;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    /// What the fake node answers, and the cosignatures posted to it.
    #[derive(Default)]
    struct FakeNode {
        checkpoint: String,
        consistency: String,
        posted: Vec<String>,
    }

    /// A node's API on loopback that answers from a [`FakeNode`], until dropped.
    struct FakeServer {
        url: String,
        node: Arc<Mutex<FakeNode>>,
        stop: Arc<AtomicBool>,
    }

    impl Drop for FakeServer {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    fn serve() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let node = Arc::new(Mutex::new(FakeNode::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (answers, stopped) = (node.clone(), stop.clone());
        std::thread::spawn(move || {
            // Bounded: the test ends it, and it gives up after a minute in any case.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while !stopped.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                let (head, mut body) = loop {
                    let read = stream.read(&mut buffer).unwrap_or(0);
                    if read == 0 {
                        break (String::new(), Vec::new());
                    }
                    request.extend_from_slice(&buffer[..read]);
                    if let Some(end) = request.windows(4).position(|window| window == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&request[..end]).into_owned();
                        break (head, request[end + 4..].to_vec());
                    }
                };
                let length: usize = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while body.len() < length {
                    let read = stream.read(&mut buffer).unwrap_or(0);
                    if read == 0 {
                        break;
                    }
                    body.extend_from_slice(&buffer[..read]);
                }
                let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                let answer = {
                    let mut node = answers.lock().unwrap();
                    if path.starts_with("/v1/log/checkpoint") {
                        node.checkpoint.clone()
                    } else if path.starts_with("/v1/log/consistency") {
                        node.consistency.clone()
                    } else {
                        node.posted
                            .push(String::from_utf8_lossy(&body).into_owned());
                        "{}".to_owned()
                    }
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        FakeServer { url, node, stop }
    }

    fn leaves(size: u64) -> Vec<Hash32> {
        (0..size)
            .map(|index| Suite::Ed25519Blake3.leaf_hash(&index.to_be_bytes()))
            .collect()
    }

    fn log_root(size: u64) -> Hash32 {
        hutong_core::log::root_from_leaf_hashes(&Suite::Ed25519Blake3, &leaves(size))
    }

    fn consistency(first: u64, second: u64) -> ConsistencyProof {
        let suite = Suite::Ed25519Blake3;
        let mut store = MemoryLogStore::new();
        for (index, leaf) in leaves(second).into_iter().enumerate() {
            let append = hutong_core::log::append(&suite, &store, index as u64, &[leaf]).unwrap();
            store.insert_nodes(append.nodes);
        }
        hutong_core::log::consistency_proof(&suite, &store, first, second).unwrap()
    }

    /// A checkpoint the fixture's validators signed (a certificate signs whatever header it
    /// is given, so a test can make the validators sign a fork).
    fn signed(fixture: &Fixture, height: u64, size: u64, root: Hash32) -> String {
        let genesis = &fixture.genesis;
        let header = BlockHeader {
            height,
            log_size: size,
            log_root: root,
            time: genesis.genesis_time + height * 1000,
            ..hutong_verify::genesis_header(genesis)
        };
        let checkpoint = Checkpoint {
            certificate: Some(fixture.certify(&header)),
            header,
            validators: hutong_verify::genesis_validators(genesis),
            validator_changes: Vec::new(),
            trusted_height: None,
        };
        serde_json::to_string(&CheckpointDocument {
            format: hutong_verify::CHECKPOINT_FORMAT.into(),
            checkpoint,
            cosignatures: Vec::new(),
        })
        .unwrap()
    }

    fn consistency_answer(proof: ConsistencyProof) -> String {
        serde_json::json!({
            "first_root": log_root(proof.first_size),
            "second_root": log_root(proof.second_size),
            "proof": proof,
        })
        .to_string()
    }

    struct Setup {
        fixture: Fixture,
        directory: tempfile::TempDir,
        server: FakeServer,
    }

    impl Setup {
        fn new() -> Self {
            let fixture = Fixture::new();
            let directory = tempfile::tempdir().unwrap();
            std::fs::write(
                directory.path().join("genesis.json"),
                fixture.genesis.to_json(),
            )
            .unwrap();
            keys::write(
                &directory.path().join("witness_key.json"),
                "witness",
                &secret("witness-one"),
                false,
            )
            .unwrap();
            Setup {
                fixture,
                directory,
                server: serve(),
            }
        }

        fn args(&self) -> WitnessArgs {
            let path = |name: &str| self.directory.path().join(name);
            WitnessArgs {
                genesis: path("genesis.json"),
                name: "witness.one.example".into(),
                key: path("witness_key.json"),
                nodes: vec![self.server.url.clone()],
                state: path("state.json"),
                split_view: path("split-view.json"),
                poll_ms: None,
                once: true,
            }
        }

        fn serve_checkpoint(&self, height: u64, size: u64, root: Hash32) {
            self.server.node.lock().unwrap().checkpoint = signed(&self.fixture, height, size, root);
        }

        fn serve_consistency(&self, proof: ConsistencyProof) {
            self.server.node.lock().unwrap().consistency = consistency_answer(proof);
        }

        fn posted(&self) -> usize {
            self.server.node.lock().unwrap().posted.len()
        }

        fn state(&self) -> WitnessState {
            WitnessState::load(
                &self.args().state,
                &self.fixture.genesis.chain_id,
                "witness.one.example",
            )
            .unwrap()
            .unwrap()
        }

        /// The split-view document written, checked offline as `hutong verify` would.
        fn split_view_verified(&self) -> hutong_verify::split_view::VerifiedSplitView {
            let bytes = std::fs::read(&self.args().split_view).unwrap();
            hutong_verify::split_view::verify_split_view_json(&bytes, &self.fixture.genesis)
                .unwrap()
        }
    }

    #[test]
    fn cosigns_a_first_checkpoint_and_its_cosignature_verifies() {
        let setup = Setup::new();
        setup.serve_checkpoint(3, 5, log_root(5));
        run(&setup.args()).unwrap();
        assert_eq!(setup.state().log_size, 5);
        let posted = setup.server.node.lock().unwrap().posted.clone();
        assert_eq!(posted.len(), 1);
        let body: serde_json::Value = serde_json::from_str(&posted[0]).unwrap();
        let note: CheckpointNote = serde_json::from_value(body["note"].clone()).unwrap();
        let cosignature: Cosignature = serde_json::from_value(body["cosignature"].clone()).unwrap();
        assert_eq!(note.log_root, log_root(5));
        assert_eq!(
            note.origin,
            format!("hutong/{}", setup.fixture.genesis.chain_id)
        );
        let key = WitnessKey {
            name: "witness.one.example".into(),
            public_key: secret("witness-one").public_key(),
        };
        hutong_verify::witness::verify_cosignature(&key, &cosignature, &note).unwrap();
    }

    #[test]
    fn two_roots_for_one_size_are_a_split_view_with_its_exit_code() {
        let setup = Setup::new();
        setup.serve_checkpoint(3, 5, log_root(5));
        run(&setup.args()).unwrap();
        // The validators sign another log of the same size for someone else.
        setup.serve_checkpoint(4, 5, Hash32([7; 32]));
        let failure = run(&setup.args()).unwrap_err();
        assert_eq!(failure.code, exit::SPLIT_VIEW, "{:#}", failure.error);
        assert!(
            failure
                .error
                .to_string()
                .contains("same_size_different_roots")
        );
        let split = setup.split_view_verified();
        assert_eq!(split.kind, SplitViewKind::SameSizeDifferentRoots);
        assert_eq!(setup.posted(), 1, "nothing more was cosigned");
        assert_eq!(setup.state().log_root, log_root(5));

        // `hutong verify` on the file: it proves a split view (exit 0)...
        let verify_args = |path: PathBuf| crate::verify::VerifyArgs {
            genesis: setup.args().genesis,
            bundle: Some(path),
            qr: None,
            consistency: None,
            checkpoints: Vec::new(),
            at: None,
            region: None,
            historical: false,
            trusted: None,
            save_trusted: None,
            witnesses: None,
            witness_keys: None,
            json: true,
        };
        crate::verify::verify(&verify_args(setup.args().split_view)).unwrap();
        // ...and a document whose two checkpoints agree proves none (exit 7).
        let mut agreeing: SplitView =
            serde_json::from_slice(&std::fs::read(setup.args().split_view).unwrap()).unwrap();
        agreeing.second = agreeing.first.clone();
        let agreeing_path = setup.directory.path().join("agreeing.json");
        std::fs::write(&agreeing_path, serde_json::to_vec(&agreeing).unwrap()).unwrap();
        let failure = crate::verify::verify(&verify_args(agreeing_path)).unwrap_err();
        assert_eq!(failure.code, exit::INVALID, "{:#}", failure.error);
        assert!(failure.error.to_string().contains("not-a-split-view"));
    }

    #[test]
    fn after_a_restart_the_witness_refuses_to_go_backwards() {
        let setup = Setup::new();
        setup.serve_checkpoint(6, 9, log_root(9));
        run(&setup.args()).unwrap();
        assert_eq!(setup.posted(), 1);
        // A new process reads the state file: a smaller log is not cosigned...
        setup.serve_checkpoint(3, 5, log_root(5));
        run(&setup.args()).unwrap();
        assert_eq!(setup.posted(), 1);
        assert_eq!(setup.state().log_size, 9);
        // ...and another log of the size it cosigned before is a split view.
        setup.serve_checkpoint(7, 9, Hash32([1; 32]));
        let failure = run(&setup.args()).unwrap_err();
        assert_eq!(failure.code, exit::SPLIT_VIEW);
        assert_eq!(setup.posted(), 1);
    }

    #[test]
    fn a_forged_consistency_is_caught_and_a_true_one_cosigned() {
        let setup = Setup::new();
        setup.serve_checkpoint(3, 5, log_root(5));
        run(&setup.args()).unwrap();
        // A larger log with a proof changed in one hash: a split view.
        setup.serve_checkpoint(6, 9, log_root(9));
        let mut forged = consistency(5, 9);
        forged.path[0].0[0] ^= 1;
        setup.serve_consistency(forged);
        let failure = run(&setup.args()).unwrap_err();
        assert_eq!(failure.code, exit::SPLIT_VIEW);
        assert_eq!(
            setup.split_view_verified().kind,
            SplitViewKind::ConsistencyRefused
        );
        assert_eq!(setup.state().log_size, 5, "nothing was cosigned");
        // The true proof: cosigned, and the state moves on.
        std::fs::remove_file(setup.args().split_view).unwrap();
        setup.serve_consistency(consistency(5, 9));
        run(&setup.args()).unwrap();
        assert_eq!(setup.state().log_size, 9);
        assert_eq!(setup.posted(), 2);
    }

    #[test]
    fn a_checkpoint_the_validators_did_not_sign_is_not_cosigned() {
        let setup = Setup::new();
        let mut document: serde_json::Value =
            serde_json::from_str(&signed(&setup.fixture, 3, 5, log_root(5))).unwrap();
        document["checkpoint"]["header"]["log_size"] = serde_json::json!(6);
        setup.server.node.lock().unwrap().checkpoint = document.to_string();
        run(&setup.args()).unwrap();
        assert_eq!(setup.posted(), 0);
        assert!(!setup.args().state.exists());
    }
}
