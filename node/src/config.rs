//! The node's configuration file, `config.toml` in the node's home directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::limits;

/// The whole file. Unknown keys are rejected so that a typo is an error, not a silent default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the store lives (relative paths are relative to the home directory).
    pub data_dir: PathBuf,
    /// The genesis file.
    pub genesis: PathBuf,
    /// The node key file (the libp2p identity and, for a validator, the consensus key).
    pub node_key: PathBuf,
    pub p2p: P2pConfig,
    pub api: ApiConfig,
    pub consensus: ConsensusConfig,
    pub mempool: MempoolConfig,
    pub log: LogConfig,
    /// Absent in files written before it existed: the default engine.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Fault-injection switches for the end-to-end tests. Absent from files `hutong init`
    /// writes, off by default, and honoured only under the conditions of [`TestingConfig`].
    #[serde(default, skip_serializing_if = "TestingConfig::is_default")]
    pub testing: TestingConfig,
    /// The witnesses whose cosignatures this node accepts, serves with its checkpoints and
    /// puts in bundles asked with `?witnesses=k` (`[[witnesses]]` tables of `name` and
    /// `public_key`; ADR 0038). Absent: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<hutong_verify::witness::WitnessKey>,
}

/// Fault injection, for tests only (see `docs/adr/0009-equivocation-evidence-and-fault-tests.md`).
///
/// The switches act only when `enabled` is true **and** the process runs with the
/// environment variable `HUTONG_ALLOW_TESTING_SWITCHES=1`; a switch set without `enabled`
/// is a configuration error, and `enabled` without the variable stops the node at start.
/// A node with the switches on logs so at every start, at warning level.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestingConfig {
    #[serde(default)]
    pub enabled: bool,
    /// While a file exists at this path (relative to the home directory), the node drops all
    /// its peer traffic: nothing it would send leaves, nothing it receives reaches its engine.
    #[serde(default)]
    pub partition_file: Option<PathBuf>,
    /// The validator signs and sends a second, conflicting vote for every vote it casts (a
    /// nil vote for a value vote, a made-up value for a nil vote): an equivocator.
    #[serde(default)]
    pub equivocate: bool,
    /// The node does not gossip the transactions submitted to it: the other validators see
    /// them first in its proposals and must fetch them from it.
    #[serde(default)]
    pub withhold_transactions: bool,
    /// The node answers catch-up requests for blocks with forged commit certificates, each
    /// answer with the next of three forgeries (too little voting power, a signer that is no
    /// validator, signatures over another block): a Byzantine catch-up server.
    #[serde(default)]
    pub forge_catch_up: bool,
}

impl TestingConfig {
    fn is_default(&self) -> bool {
        *self == TestingConfig::default()
    }

    /// Whether any switch is set.
    pub fn any_switch(&self) -> bool {
        self.partition_file.is_some()
            || self.equivocate
            || self.withhold_transactions
            || self.forge_catch_up
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pConfig {
    /// Multiaddresses to listen on, e.g. `/ip4/127.0.0.1/tcp/26656`.
    pub listen: Vec<String>,
    /// Peers to dial: `<node public key hex>@<multiaddress>`.
    pub peers: Vec<String>,
    /// Node keys allowed to connect besides those registered on the ledger (observers of
    /// this operator). Hex.
    #[serde(default)]
    pub extra_allowed: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address of the HTTP API, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Sustained requests per second one client (one IP address) may make.
    #[serde(default = "default_client_requests_per_second")]
    pub client_requests_per_second: u32,
    /// Requests one client may make in a burst above the sustained rate.
    #[serde(default = "default_client_burst")]
    pub client_burst: u32,
    /// Connections open at once. Unset, the node computes it at start from its open-file
    /// limit less the descriptors it reserves; set, it must fit under that limit or the node
    /// does not start (docs/operations.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections_max: Option<usize>,
    /// How long a connection may wait for a request (its first or its next).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// How long a request head may take from its first byte.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// How long a request body may take to arrive.
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// Request bodies received at once.
    #[serde(default = "default_body_reads_max")]
    pub body_reads_max: usize,
    /// `/healthz`, `/readyz` and `/metrics` requests served at once, from their own pool.
    #[serde(default = "default_probe_requests_max")]
    pub probe_requests_max: usize,
    /// The addresses of the reverse proxies in front of the API, whose `X-Forwarded-For` is
    /// believed for the per-client rate limit (empty: none, every client is its peer address).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl ApiConfig {
    /// The API's limits with the connection cap the node settled on at start.
    pub fn limits(&self, connections_max: usize) -> hutong_api::ApiConfig {
        hutong_api::ApiConfig {
            client_requests_per_second: self.client_requests_per_second,
            client_burst: self.client_burst,
            connections_max,
            idle_timeout_ms: self.idle_timeout_ms,
            header_read_timeout_ms: self.header_read_timeout_ms,
            body_read_timeout_ms: self.body_read_timeout_ms,
            body_reads_max: self.body_reads_max,
            probe_requests_max: self.probe_requests_max,
            trusted_proxies: self.trusted_proxies.clone(),
            ..hutong_api::ApiConfig::default()
        }
    }
}

fn default_idle_timeout_ms() -> u64 {
    hutong_api::limits::IDLE_TIMEOUT_MS_DEFAULT
}

fn default_header_read_timeout_ms() -> u64 {
    hutong_api::limits::HEADER_READ_TIMEOUT_MS_DEFAULT
}

fn default_body_read_timeout_ms() -> u64 {
    hutong_api::limits::BODY_READ_TIMEOUT_MS_DEFAULT
}

fn default_body_reads_max() -> usize {
    hutong_api::limits::BODY_READS_MAX_DEFAULT
}

fn default_probe_requests_max() -> usize {
    hutong_api::limits::PROBE_REQUESTS_MAX_DEFAULT
}

fn default_client_requests_per_second() -> u32 {
    hutong_api::ApiConfig::default().client_requests_per_second
}

fn default_client_burst() -> u32 {
    hutong_api::ApiConfig::default().client_burst
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusConfig {
    pub timeout_propose_ms: u64,
    pub timeout_propose_increment_ms: u64,
    pub timeout_prevote_ms: u64,
    pub timeout_prevote_increment_ms: u64,
    pub timeout_precommit_ms: u64,
    pub timeout_precommit_increment_ms: u64,
    /// A proposer with nothing to propose still proposes an empty block this long after the
    /// previous block, so that the state a verifier reads is never older than about this.
    pub heartbeat_ms: u64,
    /// A proposer with transactions waits this long for more before proposing (batching).
    pub batch_wait_ms: u64,
    /// Most transactions in a block this node proposes.
    pub block_transactions_max: usize,
    /// How far ahead of this node's clock a proposed block's time may be.
    pub clock_drift_ms_max: u64,
    /// The share of `block_transactions_max` one signer's transactions may take in a block this
    /// node proposes, in percent (ADR 0020). Absent in files written before it existed.
    #[serde(default = "default_block_signer_share_percent")]
    pub block_signer_share_percent: usize,
}

fn default_block_signer_share_percent() -> usize {
    crate::limits::BLOCK_SIGNER_SHARE_PERCENT_DEFAULT
}

impl ConsensusConfig {
    /// Most transactions of one signer in a block this node proposes (at least one).
    pub fn block_signer_transactions_max(&self) -> usize {
        (self.block_transactions_max * self.block_signer_share_percent / 100).max(1)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MempoolConfig {
    pub transactions_max: usize,
    pub bytes_max: usize,
    /// The share of `transactions_max` and of `bytes_max` one signer may hold, in percent
    /// (ADR 0020). Absent in files written before it existed.
    #[serde(default = "default_signer_share_percent")]
    pub signer_share_percent: usize,
}

fn default_signer_share_percent() -> usize {
    crate::limits::MEMPOOL_SIGNER_SHARE_PERCENT_DEFAULT
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `redb` (the default) or `sled`. A store keeps the engine it was created with; the node
    /// refuses to open it with the other one.
    #[serde(default)]
    pub engine: hutong_ledger::store::Engine,
    /// A redb file up to this size has every page's checksum verified at each start (a read
    /// of the whole file); a larger one only its head. At most
    /// [`crate::limits::PAGE_CHECK_BYTES_MAX_CEILING`]; 0 checks no pages.
    #[serde(default = "default_page_check_bytes_max")]
    pub page_check_bytes_max: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            engine: hutong_ledger::store::Engine::default(),
            page_check_bytes_max: default_page_check_bytes_max(),
        }
    }
}

fn default_page_check_bytes_max() -> u64 {
    crate::limits::PAGE_CHECK_BYTES_MAX_DEFAULT
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `hutong_node=debug,info`: directives separated by
    /// commas, each a level or `target=level` ([`check_log_level`]).
    pub level: String,
}

/// The levels a log directive may name.
const LOG_LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Checks a `log.level` filter: one directive or more, separated by commas, each a level
/// (`trace`, `debug`, `info`, `warn`, `error`, `off`) or `target=level`. The tracing filter
/// itself would read a misspelt level (`warning`, `infoo`) as the name of a target, and the
/// node would then log nothing at all.
pub fn check_log_level(filter: &str) -> Result<(), String> {
    if filter.trim().is_empty() {
        return Err(format!(
            "it is empty; name a level: {}",
            LOG_LEVELS.join(", ")
        ));
    }
    for directive in filter.split(',').map(str::trim) {
        let (target, level) = match directive.rsplit_once('=') {
            Some((target, level)) => (Some(target.trim()), level.trim()),
            None => (None, directive),
        };
        if target.is_some_and(str::is_empty) {
            return Err(format!(
                "the directive {directive:?} names no target before `=`"
            ));
        }
        if !LOG_LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "{level:?} in {directive:?} is not a level; the levels are {}",
                LOG_LEVELS.join(", ")
            ));
        }
    }
    Ok(())
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        ConsensusConfig {
            timeout_propose_ms: 3000,
            timeout_propose_increment_ms: 500,
            timeout_prevote_ms: 1000,
            timeout_prevote_increment_ms: 500,
            timeout_precommit_ms: 1000,
            timeout_precommit_increment_ms: 500,
            heartbeat_ms: 2000,
            batch_wait_ms: 20,
            block_transactions_max: 5000,
            clock_drift_ms_max: 5000,
            block_signer_share_percent: default_block_signer_share_percent(),
        }
    }
}

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {error}")]
    Parse {
        path: PathBuf,
        error: toml::de::Error,
    },
    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
}

impl Config {
    /// A configuration for a new node home.
    pub fn new(p2p_listen: String, api_listen: String, peers: Vec<String>) -> Self {
        Config {
            data_dir: "data".into(),
            genesis: "genesis.json".into(),
            node_key: "node_key.json".into(),
            p2p: P2pConfig {
                listen: vec![p2p_listen],
                peers,
                extra_allowed: Vec::new(),
            },
            api: ApiConfig {
                listen: api_listen,
                client_requests_per_second: default_client_requests_per_second(),
                client_burst: default_client_burst(),
                connections_max: None,
                idle_timeout_ms: default_idle_timeout_ms(),
                header_read_timeout_ms: default_header_read_timeout_ms(),
                body_read_timeout_ms: default_body_read_timeout_ms(),
                body_reads_max: default_body_reads_max(),
                probe_requests_max: default_probe_requests_max(),
                trusted_proxies: Vec::new(),
            },
            consensus: ConsensusConfig::default(),
            mempool: MempoolConfig {
                transactions_max: 50_000,
                bytes_max: 64 * 1024 * 1024,
                signer_share_percent: default_signer_share_percent(),
            },
            log: LogConfig {
                format: "human".into(),
                level: "info".into(),
            },
            storage: StorageConfig::default(),
            testing: TestingConfig::default(),
            witnesses: Vec::new(),
        }
    }

    /// Reads `home/config.toml` and checks it. At most one byte past
    /// [`limits::CONFIG_FILE_BYTES_MAX`] is read.
    pub fn load(home: &Path) -> Result<Self, ConfigError> {
        use std::io::Read;
        let path = home.join("config.toml");
        let read_error = |error| ConfigError::Read {
            path: path.clone(),
            error,
        };
        let file = std::fs::File::open(&path).map_err(read_error)?;
        let mut bytes = Vec::new();
        file.take(limits::CONFIG_FILE_BYTES_MAX as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        Config::parse(&path, &bytes)
    }

    /// Parses and checks a configuration file's bytes; `path` names the file in errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, ConfigError> {
        let invalid = |problem: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            problem,
        };
        if bytes.len() > limits::CONFIG_FILE_BYTES_MAX {
            return Err(invalid(format!(
                "the file is larger than {} bytes",
                limits::CONFIG_FILE_BYTES_MAX
            )));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|error| invalid(format!("the file is not UTF-8 text: {error}")))?;
        let config: Config = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            error,
        })?;
        config.check().map_err(invalid)?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        hutong_verify::witness::check_keys(&self.witnesses)
            .map_err(|error| format!("[[witnesses]]: {error}"))?;
        if self.p2p.listen.is_empty() {
            return Err("p2p.listen needs at least one address".into());
        }
        for peer in &self.p2p.peers {
            if peer.split_once('@').is_none() {
                return Err(format!(
                    "p2p.peers entry {peer:?} is not <public key hex>@<multiaddress>"
                ));
            }
        }
        let consensus = &self.consensus;
        for (name, value) in [
            ("consensus.timeout_propose_ms", consensus.timeout_propose_ms),
            ("consensus.timeout_prevote_ms", consensus.timeout_prevote_ms),
            (
                "consensus.timeout_precommit_ms",
                consensus.timeout_precommit_ms,
            ),
            ("consensus.heartbeat_ms", consensus.heartbeat_ms),
            // A zero increment keeps every round as short as the first: if that is shorter
            // than the network's delay, no round ever succeeds (Tendermint's liveness needs
            // timeouts that grow with the round).
            (
                "consensus.timeout_propose_increment_ms",
                consensus.timeout_propose_increment_ms,
            ),
            (
                "consensus.timeout_prevote_increment_ms",
                consensus.timeout_prevote_increment_ms,
            ),
            (
                "consensus.timeout_precommit_increment_ms",
                consensus.timeout_precommit_increment_ms,
            ),
        ] {
            if value == 0 {
                return Err(format!("{name} must be above zero"));
            }
        }
        if consensus.heartbeat_ms >= consensus.timeout_propose_ms {
            return Err(format!(
                "consensus.heartbeat_ms ({}) must be below consensus.timeout_propose_ms ({}), or an idle \
                 proposer's heartbeat block would arrive after the others gave up on it",
                consensus.heartbeat_ms, consensus.timeout_propose_ms
            ));
        }
        if consensus.block_transactions_max == 0
            || consensus.block_transactions_max > hutong_core::limits::BLOCK_TRANSACTIONS_MAX
        {
            return Err(format!(
                "consensus.block_transactions_max must be between 1 and {}",
                hutong_core::limits::BLOCK_TRANSACTIONS_MAX
            ));
        }
        if self.mempool.transactions_max == 0
            || self.mempool.bytes_max < hutong_core::limits::TX_BYTES_MAX
        {
            return Err(format!(
                "mempool.transactions_max must be above zero and mempool.bytes_max at least {} bytes",
                hutong_core::limits::TX_BYTES_MAX
            ));
        }
        if !(1..=100).contains(&consensus.block_signer_share_percent) {
            return Err(format!(
                "consensus.block_signer_share_percent must be between 1 and 100, not {}",
                consensus.block_signer_share_percent
            ));
        }
        let mempool = &self.mempool;
        if !(1..=100).contains(&mempool.signer_share_percent) {
            return Err(format!(
                "mempool.signer_share_percent must be between 1 and 100, not {}",
                mempool.signer_share_percent
            ));
        }
        let signer_bytes = mempool
            .bytes_max
            .saturating_mul(mempool.signer_share_percent)
            / 100;
        if signer_bytes < hutong_core::limits::TX_BYTES_MAX {
            return Err(format!(
                "mempool.signer_share_percent ({}%) of mempool.bytes_max ({}) is {signer_bytes} bytes, \
                 less than one transaction of the largest size ({} bytes)",
                mempool.signer_share_percent,
                mempool.bytes_max,
                hutong_core::limits::TX_BYTES_MAX
            ));
        }
        // The connection cap is checked against the file limit at start (`files`); here, the
        // API's own relations, with the cap as configured or its default.
        let connections_max = self
            .api
            .connections_max
            .unwrap_or(hutong_api::limits::CONNECTIONS_MAX_DEFAULT);
        self.api
            .limits(connections_max)
            .validate()
            .map_err(|error| format!("api: {error}"))?;
        if self.testing.any_switch() && !self.testing.enabled {
            return Err(
                "testing switches are set but testing.enabled is false; they are for tests only"
                    .into(),
            );
        }
        if self.storage.page_check_bytes_max > crate::limits::PAGE_CHECK_BYTES_MAX_CEILING {
            return Err(format!(
                "storage.page_check_bytes_max ({}) must be at most {} bytes, so that a start's page \
                 check stays bounded in time",
                self.storage.page_check_bytes_max,
                crate::limits::PAGE_CHECK_BYTES_MAX_CEILING
            ));
        }
        if self.log.format != "human" && self.log.format != "json" {
            return Err(format!(
                "log.format must be \"human\" or \"json\", not {:?}",
                self.log.format
            ));
        }
        check_log_level(&self.log.level).map_err(|problem| format!("log.level: {problem}"))?;
        Ok(())
    }

    /// A path of the configuration resolved against the home directory.
    pub fn resolve(home: &Path, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            home.join(path)
        }
    }

    /// The file as `hutong init` writes it: every key with a comment saying what it does.
    pub fn to_commented_toml(&self) -> String {
        let quote = |text: &str| format!("{text:?}");
        let list = |items: &[String]| {
            let quoted: Vec<String> = items.iter().map(|item| quote(item)).collect();
            format!("[{}]", quoted.join(", "))
        };
        let c = &self.consensus;
        format!(
            r#"# hutong node configuration. Paths are relative to this directory.

# Where the node keeps its block store.
data_dir = {data_dir}
# The chain's genesis file (every node of the chain has the same; its hash names the chain).
genesis = {genesis}
# This node's key (mode 0600): its network identity and, if it is a validator, its vote key.
node_key = {node_key}

[p2p]
# Addresses to listen on for other nodes.
listen = {listen}
# Nodes to dial at start, as "<node public key hex>@<multiaddress>".
peers = {peers}
# Node keys allowed to connect besides the nodes registered on the ledger (hex).
extra_allowed = {extra}

[api]
# Address of the HTTP API and explorer page.
listen = {api}
# Requests per second one client (one IP address) may make, and its burst above that;
# beyond them the API answers 429 rate_limited.
client_requests_per_second = {rps}
client_burst = {burst}
# Connections open at once. Unset, the node computes it at start from its open-file limit
# (raised to the hard limit) less the descriptors it keeps for the store, the signing state
# and the p2p side; set, it must fit under that limit or the node does not start.
{connections_max}
# A connection waiting this long for a request is closed; so is one whose request head takes
# longer than header_read_timeout_ms from its first byte. A body must arrive within
# body_read_timeout_ms (else 408 body_timeout).
idle_timeout_ms = {idle}
header_read_timeout_ms = {header}
body_read_timeout_ms = {body}
# Request bodies received at once (each at most 128 KiB), and the probes' own pool
# (/healthz, /readyz, /metrics), which other traffic cannot take.
body_reads_max = {body_reads}
probe_requests_max = {probes}
# The reverse proxies in front of the API, by address (e.g. ["10.0.0.5"]): a request from one
# of them is rate limited as the client its X-Forwarded-For names; every other request as its
# own address, whatever header it sends. Empty: no proxy is believed.
trusted_proxies = {proxies}

[consensus]
# Round timeouts: base plus an increment per round, so rounds lengthen until they succeed.
timeout_propose_ms = {tp}
timeout_propose_increment_ms = {tpi}
timeout_prevote_ms = {tv}
timeout_prevote_increment_ms = {tvi}
timeout_precommit_ms = {tc}
timeout_precommit_increment_ms = {tci}
# An idle network still makes a block this often, so verifiers know how fresh the state is.
heartbeat_ms = {hb}
# A proposer waits this long for more transactions before proposing.
batch_wait_ms = {bw}
# Most transactions in a block this node proposes.
block_transactions_max = {bt}
# How far ahead of this node's clock a proposed block's time may be.
clock_drift_ms_max = {cd}
# The share of block_transactions_max one signer's transactions may take in a block this
# node proposes (percent); the block is filled round-robin across signers.
block_signer_share_percent = {bs}

[mempool]
# Bounds of the pool of transactions waiting for a block; when full, submissions get "busy".
transactions_max = {mt}
bytes_max = {mb}
# The share of each bound one signer may hold (percent); beyond it, its submissions get 429
# signer_share_exceeded while other signers are still admitted.
signer_share_percent = {ms}

[log]
# "human" or "json".
format = {lf}
# A level (trace, debug, info, warn, error or off), or directives "target=level" separated
# by commas, e.g. "hutong_node=debug,info".
level = {ll}

[storage]
# The store's engine: "redb" or "sled". A store keeps the engine it was created with: the node
# refuses to open an existing store with the other one.
engine = {se}
# A redb store file up to this many bytes has every page's checksum verified at each start
# (a read of the whole file, docs/operations.md "Damaged stores"); a larger one only its head.
# 0 checks no pages.
page_check_bytes_max = {pc}
"#,
            data_dir = quote(&self.data_dir.to_string_lossy()),
            genesis = quote(&self.genesis.to_string_lossy()),
            node_key = quote(&self.node_key.to_string_lossy()),
            listen = list(&self.p2p.listen),
            peers = list(&self.p2p.peers),
            extra = list(&self.p2p.extra_allowed),
            api = quote(&self.api.listen),
            rps = self.api.client_requests_per_second,
            burst = self.api.client_burst,
            connections_max = match self.api.connections_max {
                Some(value) => format!("connections_max = {value}"),
                None => "# connections_max = 1000".to_owned(),
            },
            idle = self.api.idle_timeout_ms,
            header = self.api.header_read_timeout_ms,
            body = self.api.body_read_timeout_ms,
            body_reads = self.api.body_reads_max,
            probes = self.api.probe_requests_max,
            proxies = list(
                &self
                    .api
                    .trusted_proxies
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            ),
            tp = c.timeout_propose_ms,
            tpi = c.timeout_propose_increment_ms,
            tv = c.timeout_prevote_ms,
            tvi = c.timeout_prevote_increment_ms,
            tc = c.timeout_precommit_ms,
            tci = c.timeout_precommit_increment_ms,
            hb = c.heartbeat_ms,
            bw = c.batch_wait_ms,
            bt = c.block_transactions_max,
            cd = c.clock_drift_ms_max,
            bs = c.block_signer_share_percent,
            mt = self.mempool.transactions_max,
            mb = self.mempool.bytes_max,
            ms = self.mempool.signer_share_percent,
            lf = quote(&self.log.format),
            ll = quote(&self.log.level),
            se = quote(self.storage.engine.name()),
            pc = self.storage.page_check_bytes_max,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commented_file_round_trips() {
        let config = Config::new(
            "/ip4/127.0.0.1/tcp/1".into(),
            "127.0.0.1:2".into(),
            vec!["ab@/ip4/127.0.0.1/tcp/3".into()],
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config.to_commented_toml()).unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), config);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new("/ip4/127.0.0.1/tcp/1".into(), "127.0.0.1:2".into(), vec![]);
        let text = config
            .to_commented_toml()
            .replace("[api]", "colour = \"red\"\n[api]");
        std::fs::write(dir.path().join("config.toml"), text).unwrap();
        assert!(matches!(
            Config::load(dir.path()),
            Err(ConfigError::Parse { .. })
        ));
        let text = config
            .to_commented_toml()
            .replace("heartbeat_ms = 2000", "heartbeat_ms = 9000");
        std::fs::write(dir.path().join("config.toml"), text).unwrap();
        let error = Config::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("heartbeat_ms"), "{error}");
    }

    #[test]
    fn trusted_proxies_are_read_as_addresses_and_reach_the_api() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new("/ip4/127.0.0.1/tcp/1".into(), "127.0.0.1:2".into(), vec![]);
        let write = |proxies: &str| {
            let text = config.to_commented_toml().replace(
                "trusted_proxies = []",
                &format!("trusted_proxies = {proxies}"),
            );
            assert_ne!(text, config.to_commented_toml());
            std::fs::write(dir.path().join("config.toml"), text).unwrap();
        };
        write("[\"10.0.0.5\", \"::1\"]");
        let loaded = Config::load(dir.path()).unwrap();
        assert_eq!(
            loaded.api.limits(100).trusted_proxies,
            vec![
                "10.0.0.5".parse::<std::net::IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        let reloaded_dir = tempfile::tempdir().unwrap();
        std::fs::write(
            reloaded_dir.path().join("config.toml"),
            loaded.to_commented_toml(),
        )
        .unwrap();
        assert_eq!(Config::load(reloaded_dir.path()).unwrap(), loaded);
        write("[\"10.0.0.300\"]");
        assert!(matches!(
            Config::load(dir.path()),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn a_misspelt_log_level_is_refused_and_filters_with_targets_are_read() {
        for good in [
            "info",
            "WARN",
            "hutong_node=debug,info",
            "libp2p=off, hutong=trace",
        ] {
            assert_eq!(check_log_level(good), Ok(()), "{good}");
        }
        for bad in [
            "warning",
            "infoo",
            "",
            "hutong_node=verbose",
            "=info",
            "info,",
        ] {
            assert!(check_log_level(bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new("/ip4/127.0.0.1/tcp/1".into(), "127.0.0.1:2".into(), vec![]);
        let text = config
            .to_commented_toml()
            .replace("level = \"info\"", "level = \"warning\"");
        assert_ne!(text, config.to_commented_toml());
        std::fs::write(dir.path().join("config.toml"), text).unwrap();
        let error = Config::load(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("log.level")
                && error.contains("\"warning\" in \"warning\" is not a level"),
            "{error}"
        );
    }

    #[test]
    fn witnesses_are_read_from_their_tables_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new("/ip4/127.0.0.1/tcp/1".into(), "127.0.0.1:2".into(), vec![]);
        assert!(config.witnesses.is_empty());
        let key = hutong_core::testkit::secret("witness").public_key();
        let table =
            |name: &str| format!("\n[[witnesses]]\nname = \"{name}\"\npublic_key = \"{key}\"\n");
        let write = |tables: &str| {
            std::fs::write(
                dir.path().join("config.toml"),
                format!("{}{tables}", config.to_commented_toml()),
            )
            .unwrap();
        };
        write(&(table("a.example") + &table("b.example")));
        let loaded = Config::load(dir.path()).unwrap();
        assert_eq!(loaded.witnesses.len(), 2);
        assert_eq!(loaded.witnesses[1].name, "b.example");
        assert_eq!(loaded.witnesses[1].public_key, key);
        // One name twice, or a name that is no key name, stops the node.
        write(&(table("a.example") + &table("a.example")));
        let error = Config::load(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("[[witnesses]]") && error.contains("twice"),
            "{error}"
        );
        write(&table("a b"));
        let error = Config::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("[[witnesses]]"), "{error}");
    }

    #[test]
    fn zero_timeout_increments_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new("/ip4/127.0.0.1/tcp/1".into(), "127.0.0.1:2".into(), vec![]);
        for key in [
            "timeout_propose_increment_ms",
            "timeout_prevote_increment_ms",
            "timeout_precommit_increment_ms",
        ] {
            let text = config
                .to_commented_toml()
                .lines()
                .map(|line| {
                    if line.starts_with(key) {
                        format!("{key} = 0")
                    } else {
                        line.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            std::fs::write(dir.path().join("config.toml"), text).unwrap();
            let error = Config::load(dir.path()).unwrap_err().to_string();
            assert!(
                error.contains(&format!("consensus.{key} must be above zero")),
                "{error}"
            );
        }
    }

    #[test]
    fn shares_default_when_absent_and_are_checked_against_the_totals() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new("/ip4/127.0.0.1/tcp/1".into(), "127.0.0.1:2".into(), vec![]);
        let text = config.to_commented_toml();
        let write = |text: String| std::fs::write(dir.path().join("config.toml"), text).unwrap();
        // A file written before the keys existed loads with the defaults.
        write(
            text.replace("signer_share_percent = 25\n", "")
                .replace("block_signer_share_percent = 50\n", ""),
        );
        let loaded = Config::load(dir.path()).unwrap();
        assert_eq!(loaded, config);
        assert_eq!(loaded.consensus.block_signer_transactions_max(), 2500);
        for (from, to, named) in [
            (
                "signer_share_percent = 25",
                "signer_share_percent = 0",
                "mempool.signer_share_percent",
            ),
            (
                "block_signer_share_percent = 50",
                "block_signer_share_percent = 101",
                "consensus.block_signer_share_percent",
            ),
            // 1% of 1 MiB cannot hold the largest transaction.
            (
                "bytes_max = 67108864",
                "bytes_max = 1048576\nsigner_share_percent = 1",
                "less than one transaction",
            ),
        ] {
            let mut edited = text.replacen(from, to, 1);
            if named == "less than one transaction" {
                edited = edited.replace("signer_share_percent = 25\n", "");
            }
            write(edited);
            let error = Config::load(dir.path()).unwrap_err().to_string();
            assert!(error.contains(named), "{error}");
        }
    }

    #[test]
    fn testing_switches_are_absent_by_default_and_need_enabled() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new("/ip4/127.0.0.1/tcp/1".into(), "127.0.0.1:2".into(), vec![]);
        let text = config.to_commented_toml();
        assert!(
            !text.contains("[testing]"),
            "init must never write the section"
        );
        std::fs::write(dir.path().join("config.toml"), &text).unwrap();
        assert_eq!(
            Config::load(dir.path()).unwrap().testing,
            TestingConfig::default()
        );

        // A switch without `enabled` is refused.
        std::fs::write(
            dir.path().join("config.toml"),
            format!("{text}\n[testing]\nequivocate = true\n"),
        )
        .unwrap();
        let error = Config::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("testing.enabled"), "{error}");

        // With `enabled`, the file loads; the switches still need the environment variable
        // (checked when the node starts, see `faults`).
        std::fs::write(
            dir.path().join("config.toml"),
            format!("{text}\n[testing]\nenabled = true\npartition_file = \"cut\"\n"),
        )
        .unwrap();
        let loaded = Config::load(dir.path()).unwrap();
        assert!(loaded.testing.enabled && loaded.testing.any_switch());
    }

    #[test]
    fn the_storage_engine_is_chosen_in_the_file_and_defaults_to_redb() {
        use hutong_ledger::store::Engine;
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new("/ip4/127.0.0.1/tcp/1".into(), "127.0.0.1:2".into(), vec![]);
        assert_eq!(config.storage.engine, Engine::Redb);
        let text = config.to_commented_toml();
        std::fs::write(
            dir.path().join("config.toml"),
            text.replace("engine = \"redb\"", "engine = \"sled\""),
        )
        .unwrap();
        assert_eq!(
            Config::load(dir.path()).unwrap().storage.engine,
            Engine::Sled
        );
        // A file written before the section existed loads with the default engine.
        let (before, _) = text.split_once("[storage]").unwrap();
        std::fs::write(dir.path().join("config.toml"), before).unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), config);
        std::fs::write(
            dir.path().join("config.toml"),
            text.replace("engine = \"redb\"", "engine = \"rocks\""),
        )
        .unwrap();
        assert!(matches!(
            Config::load(dir.path()),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn the_page_check_bound_defaults_and_is_refused_above_its_ceiling() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new("/ip4/127.0.0.1/tcp/1".into(), "127.0.0.1:2".into(), vec![]);
        let text = config.to_commented_toml();
        let default_line = format!(
            "page_check_bytes_max = {}",
            crate::limits::PAGE_CHECK_BYTES_MAX_DEFAULT
        );
        assert!(text.contains(&default_line), "{text}");
        // A file written before the key existed gets the default.
        std::fs::write(
            dir.path().join("config.toml"),
            text.replace(&default_line, ""),
        )
        .unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), config);
        // Zero (no page check) is allowed; above the ceiling is not.
        std::fs::write(
            dir.path().join("config.toml"),
            text.replace(&default_line, "page_check_bytes_max = 0"),
        )
        .unwrap();
        assert_eq!(
            Config::load(dir.path())
                .unwrap()
                .storage
                .page_check_bytes_max,
            0
        );
        let above = crate::limits::PAGE_CHECK_BYTES_MAX_CEILING + 1;
        std::fs::write(
            dir.path().join("config.toml"),
            text.replace(&default_line, &format!("page_check_bytes_max = {above}")),
        )
        .unwrap();
        let error = Config::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("storage.page_check_bytes_max"), "{error}");
    }
}
