//! `hutong testnet up|down`: a local network of real `hutong run` processes on loopback.
//!
//! `up` makes (or finds) a testnet directory:
//!
//! ```text
//! DIR/testnet.json          the manifest: every node's name, role, API, p2p address, home, PID
//! DIR/genesis.json          the demo genesis
//! DIR/demo.json             licences of the demo worth looking at (after --demo)
//! DIR/keys/authorities/ID.json   the demo departments' signing keys (for `hutong bench`)
//! DIR/keys/nodes/NAME.json  the node keys
//! DIR/NAME/                 each node's home (`hutong init`), its log in DIR/NAME/node.log
//! DIR/witness-N/            with --witnesses: each witness's key, state and witness.log
//! DIR/witness-keys.json     the witnesses' names and keys, for `hutong verify --witness-keys`
//! ```
//!
//! With `--witnesses N`, every node accepts the N witnesses (`[[witnesses]]` in its
//! config.toml), and each witness runs `hutong witness run` following every node.
//!
//! Node processes run in their own process group, so that Ctrl-C reaches only `up`, which
//! then stops them one by one with SIGTERM (and SIGKILL after a bounded wait). Processes are
//! only ever signalled by the PID this module started them with, after checking that the
//! PID still runs `hutong run` on that node's home.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use hutong_core::crypto::SecretKey;

use crate::client::{self, Client};
use crate::demo::{self, DemoSize, Signer};
use crate::limits::{DEMO_NONCES_AHEAD_MAX, WITNESS_POLL_MS};
pub use crate::limits::{DEMO_WAIT, NODES_MAX, START_WAIT, STOP_WAIT, WITNESSES_MAX};
use crate::{Error, keyfile};
use hutong_core::genesis::Genesis;
use hutong_core::suite::Suite;

/// The manifest file's name in the testnet directory.
pub const MANIFEST: &str = "testnet.json";

/// One node as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    pub name: String,
    /// `validator` or `observer`.
    pub role: String,
    /// The HTTP API, e.g. `http://127.0.0.1:8080`; the explorer is its root page `{api}/`.
    pub api: String,
    /// The p2p listen address.
    pub p2p: String,
    /// The node's home directory (`hutong run --home`).
    pub home: PathBuf,
    /// The node's public key, hex.
    pub node_key: String,
    /// The running process, or `null` when stopped.
    pub pid: Option<u32>,
}

/// `DIR/testnet.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub chain_id: String,
    /// The `hutong testnet up` process that supervises the nodes (`null` when detached or
    /// stopped).
    pub supervisor_pid: Option<u32>,
    /// Whether the demo data has been loaded (a resumed network does not load it again).
    pub demo_loaded: bool,
    /// The highest height the nodes reported when they were last stopped.
    pub stopped_at_height: Option<u64>,
    pub nodes: Vec<NodeEntry>,
    /// The witnesses following the nodes (absent in manifests written before them: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<WitnessEntry>,
}

/// One witness as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessEntry {
    /// Its name, as the nodes and `DIR/witness-keys.json` know it.
    pub name: String,
    /// Its public key, hex.
    pub public_key: String,
    /// Its directory: `witness_key.json`, `state.json`, `witness.log`, and `split-view.json`
    /// should it see one.
    pub home: PathBuf,
    /// The running process, or `null` when stopped.
    pub pid: Option<u32>,
}

impl WitnessEntry {
    /// The state file, which names the process as this witness's (`is_ours`).
    pub fn state_path(&self) -> PathBuf {
        self.home.join("state.json")
    }
}

/// The `format` of `DIR/witness-keys.json` (`hutong_verify::witness::WITNESS_KEYS_FORMAT`).
pub const WITNESS_KEYS_FORMAT: &str = "hutong-witness-keys/v1";

impl Manifest {
    /// Reads `dir/testnet.json`.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|error| Error::io(&path, error))?;
        serde_json::from_str(&text)
            .map_err(|error| Error::Usage(format!("{}: {error}", path.display())))
    }

    fn save(&self, dir: &Path) -> Result<(), Error> {
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|error| Error::Node(format!("encoding the manifest: {error}")))?;
        text.push('\n');
        write_atomic(&dir.join(MANIFEST), text.as_bytes())
    }
}

/// Options of `hutong testnet up`.
#[derive(Clone, Debug)]
pub struct UpOptions {
    /// The `hutong` binary that runs the nodes.
    pub binary: PathBuf,
    pub dir: PathBuf,
    pub validators: usize,
    pub observers: usize,
    pub demo: bool,
    pub demo_size: DemoSize,
    /// Return once the network runs (and the demo is loaded) instead of supervising it.
    pub detach: bool,
    /// Witnesses to create with a new testnet (a resumed one keeps its own).
    pub witnesses: usize,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, bytes).map_err(|error| Error::io(&temporary, error))?;
    std::fs::rename(&temporary, path).map_err(|error| Error::io(path, error))
}

fn free_port() -> Result<u16, Error> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| Error::Node(format!("no free loopback port: {error}")))
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn port_of(address: &str) -> Option<u16> {
    address
        .rsplit([':', '/'])
        .next()
        .and_then(|port| port.parse().ok())
}

/// Whether `pid` is a live `hutong` process started for `home` (or, with no home, any live
/// `hutong` process). Reads `/proc`; a PID reused by another program does not count.
pub fn is_ours(pid: u32, home: Option<&Path>) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name in parentheses: `PID (NAME) STATE ...`.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z") | Some("X") | None) {
        return false;
    }
    let Ok(command_line) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let arguments: Vec<String> = command_line
        .split(|byte| *byte == 0)
        .map(|argument| String::from_utf8_lossy(argument).into_owned())
        .collect();
    let is_hutong = arguments
        .first()
        .is_some_and(|program| program.ends_with("hutong"));
    match home {
        Some(home) => is_hutong && arguments.iter().any(|argument| Path::new(argument) == home),
        None => is_hutong,
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// SIGTERM to each node that is still ours, then waits (bounded) until they are gone;
/// SIGKILL to any left after [`STOP_WAIT`]. Returns the names of the nodes that had to be
/// killed.
fn stop_nodes(nodes: &mut [NodeEntry]) -> Vec<String> {
    for node in nodes.iter() {
        if let Some(pid) = node.pid
            && running(pid, &node.home)
        {
            signal(pid, "TERM");
        }
    }
    let deadline = Instant::now() + STOP_WAIT;
    let mut killed = Vec::new();
    for node in nodes.iter_mut() {
        let Some(pid) = node.pid else { continue };
        while running(pid, &node.home) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if running(pid, &node.home) {
            signal(pid, "KILL");
            killed.push(node.name.clone());
        }
        node.pid = None;
    }
    reap();
    killed
}

/// Whether the node process `pid` still runs: for a child of this process, what waiting on
/// it says (its PID cannot be reused before it is reaped); for others, [`is_ours`].
fn running(pid: u32, home: &Path) -> bool {
    let own = SUPERVISED.with(|children| {
        children
            .borrow_mut()
            .iter_mut()
            .find(|child| child.id() == pid)
            .map(|child| matches!(child.try_wait(), Ok(None)))
    });
    own.unwrap_or_else(|| is_ours(pid, Some(home)))
}

/// The supervisor's children, once they exit, stay zombies until waited for; `up` keeps its
/// `Child` handles for that, and this hook lets waits poll them.
fn reap() {
    SUPERVISED.with(|children| {
        for child in children.borrow_mut().iter_mut() {
            let _ = child.try_wait();
        }
    });
}

/// How the supervised child at `index` (in manifest order) exited, if it has.
fn child_exited(index: usize) -> Option<String> {
    SUPERVISED.with(|children| {
        children
            .borrow_mut()
            .get_mut(index)
            .and_then(|child| child.try_wait().ok().flatten())
            .map(|status| status.to_string())
    })
}

thread_local! {
    static SUPERVISED: std::cell::RefCell<Vec<std::process::Child>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Stops the testnet in `dir`: its supervisor (if any) and every node, by the PIDs in the
/// manifest. Prints what it did.
pub fn down(dir: &Path) -> Result<(), Error> {
    let mut manifest = Manifest::load(dir)?;
    if let Some(pid) = manifest.supervisor_pid
        && pid != std::process::id()
        && is_ours(pid, None)
    {
        signal(pid, "TERM");
    }
    record_height(&mut manifest);
    let running = manifest
        .nodes
        .iter()
        .filter(|node| node.pid.is_some_and(|pid| is_ours(pid, Some(&node.home))))
        .count();
    stop_witnesses(&mut manifest.witnesses);
    let killed = stop_nodes(&mut manifest.nodes);
    // The supervisor rewrites the manifest as it exits; give it a moment, then write ours.
    if let Some(pid) = manifest.supervisor_pid {
        let deadline = Instant::now() + STOP_WAIT;
        while is_ours(pid, None) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    manifest.supervisor_pid = None;
    manifest.save(dir)?;
    println!(
        "stopped {running} node(s) of {}{}",
        dir.display(),
        if killed.is_empty() {
            String::new()
        } else {
            format!(
                " ({} did not exit on SIGTERM and were killed)",
                killed.join(", ")
            )
        }
    );
    Ok(())
}

/// Settings for a testnet on one machine: shorter rounds than the defaults, a heartbeat block
/// every second so that the explorer shows a living chain, and a per-client API rate limit
/// high enough for the load generator, which is one client on one address.
const CONFIG_CHANGES: &[(&str, &str)] = &[
    (
        "client_requests_per_second = 200",
        "client_requests_per_second = 1000000",
    ),
    ("client_burst = 400", "client_burst = 1000000"),
    ("timeout_propose_ms = 3000", "timeout_propose_ms = 2000"),
    ("timeout_prevote_ms = 1000", "timeout_prevote_ms = 500"),
    ("timeout_precommit_ms = 1000", "timeout_precommit_ms = 500"),
    ("heartbeat_ms = 2000", "heartbeat_ms = 1000"),
];

fn run_init(
    binary: &Path,
    dir: &Path,
    node: &NodeEntry,
    key_path: &Path,
    peers: &[String],
) -> Result<(), Error> {
    let mut command = Command::new(binary);
    command
        .args(["init", "--force", "--home"])
        .arg(&node.home)
        .arg("--genesis")
        .arg(dir.join("genesis.json"))
        .arg("--node-key")
        .arg(key_path)
        .args(["--p2p-listen", &node.p2p])
        .args(["--api-listen", node.api.trim_start_matches("http://")]);
    for peer in peers {
        command.args(["--peer", peer]);
    }
    let output = command
        .output()
        .map_err(|error| Error::Node(format!("running {} init: {error}", binary.display())))?;
    if !output.status.success() {
        return Err(Error::Node(format!(
            "hutong init --home {} failed: {}",
            node.home.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let config_path = node.home.join("config.toml");
    let mut config =
        std::fs::read_to_string(&config_path).map_err(|error| Error::io(&config_path, error))?;
    for (from, to) in CONFIG_CHANGES {
        if !config.contains(from) {
            return Err(Error::Node(format!(
                "{} has no line `{from}` to change",
                config_path.display()
            )));
        }
        config = config.replace(from, to);
    }
    write_atomic(&config_path, config.as_bytes())
}

/// Creates the directory of a new testnet: keys, genesis and the manifest (no ports yet).
fn create(options: &UpOptions) -> Result<Manifest, Error> {
    let dir = &options.dir;
    let authority_dir = dir.join("keys").join("authorities");
    let node_dir = dir.join("keys").join("nodes");
    for path in [&authority_dir, &node_dir] {
        std::fs::create_dir_all(path).map_err(|error| Error::io(path, error))?;
    }
    let mut authority_keys = BTreeMap::new();
    for (id, ..) in demo::DEPARTMENTS {
        let key = keyfile::generate()?;
        keyfile::write(&authority_dir.join(format!("{id}.json")), "authority", &key)?;
        authority_keys.insert(id.to_string(), key);
    }
    let mut nodes = Vec::new();
    let mut entries = Vec::new();
    for index in 0..options.validators + options.observers {
        let validator = index < options.validators;
        let name = if validator {
            format!("validator-{index}")
        } else {
            format!("observer-{}", index - options.validators)
        };
        let key: SecretKey = keyfile::generate()?;
        keyfile::write(&node_dir.join(format!("{name}.json")), "node", &key)?;
        entries.push((key.public_key(), u64::from(validator)));
        nodes.push(NodeEntry {
            home: absolute(&dir.join(&name))?,
            role: if validator { "validator" } else { "observer" }.into(),
            api: String::new(),
            p2p: String::new(),
            node_key: key.public_key().to_string(),
            name,
            pid: None,
        });
    }
    let genesis = demo::genesis(&authority_keys, &entries, demo::now_ms())?;
    write_atomic(&dir.join("genesis.json"), genesis.to_json().as_bytes())?;
    let mut witnesses = Vec::new();
    for index in 0..options.witnesses {
        let home = absolute(&dir.join(format!("witness-{index}")))?;
        std::fs::create_dir_all(&home).map_err(|error| Error::io(&home, error))?;
        let key = keyfile::generate()?;
        keyfile::write(&home.join("witness_key.json"), "witness", &key)?;
        witnesses.push(WitnessEntry {
            name: format!("witness-{index}.testnet.hutong"),
            public_key: key.public_key().to_string(),
            home,
            pid: None,
        });
    }
    let keys = serde_json::json!({
        "format": WITNESS_KEYS_FORMAT,
        "witnesses": witnesses
            .iter()
            .map(|witness| serde_json::json!({"name": witness.name, "public_key": witness.public_key}))
            .collect::<Vec<_>>(),
    });
    write_atomic(
        &dir.join("witness-keys.json"),
        format!("{keys:#}\n").as_bytes(),
    )?;
    Ok(Manifest {
        chain_id: genesis.chain_id,
        supervisor_pid: None,
        demo_loaded: false,
        stopped_at_height: None,
        nodes,
        witnesses,
    })
}

fn absolute(path: &Path) -> Result<PathBuf, Error> {
    std::path::absolute(path).map_err(|error| Error::io(path, error))
}

/// Reads the demo departments' keys from `dir/keys/authorities`.
/// The testnet's genesis file, `DIR/genesis.json`.
pub fn read_genesis(dir: &Path) -> Result<Genesis, Error> {
    let path = dir.join("genesis.json");
    let bytes = std::fs::read(&path).map_err(|error| Error::io(&path, error))?;
    Genesis::from_json(&bytes).map_err(|error| Error::Usage(format!("{}: {error}", path.display())))
}

pub fn authority_keys(dir: &Path) -> Result<BTreeMap<String, SecretKey>, Error> {
    let authority_dir = dir.join("keys").join("authorities");
    let mut keys = BTreeMap::new();
    for (id, ..) in demo::DEPARTMENTS {
        let path = authority_dir.join(format!("{id}.json"));
        if path.exists() {
            keys.insert(id.to_string(), keyfile::read(&path)?);
        }
    }
    if keys.is_empty() {
        return Err(Error::Usage(format!(
            "{} holds no demo authority keys",
            authority_dir.display()
        )));
    }
    Ok(keys)
}

/// Picks ports (the previous ones when still free) and re-initialises every home with them.
fn configure(options: &UpOptions, manifest: &mut Manifest) -> Result<(), Error> {
    let mut ports = Vec::new();
    let mut taken = Vec::new();
    for node in &manifest.nodes {
        let mut pick = |previous: Option<u16>| -> Result<u16, Error> {
            if let Some(port) = previous
                && !taken.contains(&port)
                && port_is_free(port)
            {
                taken.push(port);
                return Ok(port);
            }
            for _ in 0..100 {
                let port = free_port()?;
                if !taken.contains(&port) {
                    taken.push(port);
                    return Ok(port);
                }
            }
            Err(Error::Node("no free loopback port".into()))
        };
        let p2p = pick(port_of(&node.p2p))?;
        let api = pick(port_of(&node.api))?;
        ports.push((p2p, api));
    }
    for (node, (p2p, api)) in manifest.nodes.iter_mut().zip(&ports) {
        node.p2p = format!("/ip4/127.0.0.1/tcp/{p2p}");
        node.api = format!("http://127.0.0.1:{api}");
    }
    let node_dir = options.dir.join("keys").join("nodes");
    for node in &manifest.nodes {
        let peers: Vec<String> = manifest
            .nodes
            .iter()
            .filter(|other| other.name != node.name)
            .map(|other| format!("{}@{}", other.node_key, other.p2p))
            .collect();
        run_init(
            &options.binary,
            &options.dir,
            node,
            &node_dir.join(format!("{}.json", node.name)),
            &peers,
        )?;
        accept_witnesses(node, &manifest.witnesses)?;
    }
    Ok(())
}

/// Appends the testnet's witnesses to a node's config.toml as `[[witnesses]]` tables.
fn accept_witnesses(node: &NodeEntry, witnesses: &[WitnessEntry]) -> Result<(), Error> {
    if witnesses.is_empty() {
        return Ok(());
    }
    let config_path = node.home.join("config.toml");
    let mut config =
        std::fs::read_to_string(&config_path).map_err(|error| Error::io(&config_path, error))?;
    config.push_str("\n# The testnet's witnesses, whose cosignatures this node accepts.\n");
    for witness in witnesses {
        config.push_str(&format!(
            "[[witnesses]]\nname = \"{}\"\npublic_key = \"{}\"\n",
            witness.name, witness.public_key
        ));
    }
    write_atomic(&config_path, config.as_bytes())
}

/// Starts a witness following every node of the testnet; its log is `HOME/witness.log`.
fn start_witness(
    binary: &Path,
    dir: &Path,
    nodes: &[NodeEntry],
    witness: &mut WitnessEntry,
) -> Result<std::process::Child, Error> {
    let log_path = witness.home.join("witness.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|error| Error::io(&log_path, error))?;
    let mut command = Command::new(binary);
    command
        .args(["witness", "run", "--genesis"])
        .arg(absolute(&dir.join("genesis.json"))?)
        .args(["--name", &witness.name, "--key"])
        .arg(witness.home.join("witness_key.json"))
        .arg("--state")
        .arg(witness.state_path())
        .arg("--split-view")
        .arg(witness.home.join("split-view.json"))
        .args(["--poll-ms", &WITNESS_POLL_MS.to_string()]);
    for node in nodes {
        command.args(["--node", &node.api]);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|error| Error::Node(format!("starting {}: {error}", witness.name)))?;
    witness.pid = Some(child.id());
    Ok(child)
}

/// SIGTERM to each witness still ours, then SIGKILL to any left after [`STOP_WAIT`].
fn stop_witnesses(witnesses: &mut [WitnessEntry]) {
    for witness in witnesses.iter() {
        if let Some(pid) = witness.pid
            && running(pid, &witness.state_path())
        {
            signal(pid, "TERM");
        }
    }
    let deadline = Instant::now() + STOP_WAIT;
    for witness in witnesses.iter_mut() {
        let Some(pid) = witness.pid else { continue };
        while running(pid, &witness.state_path()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if running(pid, &witness.state_path()) {
            signal(pid, "KILL");
        }
        witness.pid = None;
    }
    reap();
}

fn start_node(binary: &Path, node: &mut NodeEntry) -> Result<std::process::Child, Error> {
    let log_path = node.home.join("node.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|error| Error::io(&log_path, error))?;
    let child = Command::new(binary)
        .args(["run", "--home"])
        .arg(&node.home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|error| Error::Node(format!("starting {}: {error}", node.name)))?;
    node.pid = Some(child.id());
    Ok(child)
}

fn log_tail(node: &NodeEntry) -> String {
    let text = std::fs::read_to_string(node.home.join("node.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// Waits (bounded) until every node reports at least `height`.
fn wait_for_height(
    client: &Client,
    manifest: &Manifest,
    height: u64,
    timeout: Duration,
) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    loop {
        let heights: Vec<Option<u64>> = manifest
            .nodes
            .iter()
            .map(|node| client::height(client, &node.api))
            .collect();
        if heights.iter().all(|h| h.is_some_and(|h| h >= height)) {
            return Ok(());
        }
        for (index, node) in manifest.nodes.iter().enumerate() {
            if let Some(status) = child_exited(index) {
                return Err(Error::Node(format!(
                    "{} exited while starting ({status}); the end of {}:\n{}",
                    node.name,
                    node.home.join("node.log").display(),
                    log_tail(node)
                )));
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::Node(format!(
                "the nodes did not all reach height {height} within {} s (heights: {heights:?}); see the node.log in each home",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `hutong testnet up`: creates or resumes the testnet in `options.dir`, starts every node,
/// waits for blocks, loads the demo data once, prints the table; then, unless detached,
/// supervises the nodes until SIGINT or SIGTERM and stops them.
pub fn up(options: &UpOptions) -> Result<(), Error> {
    let dir = &options.dir;
    std::fs::create_dir_all(dir).map_err(|error| Error::io(dir, error))?;
    let resumed = dir.join(MANIFEST).exists();
    let mut manifest = if resumed {
        let manifest = Manifest::load(dir)?;
        if let Some(node) = manifest
            .nodes
            .iter()
            .find(|node| node.pid.is_some_and(|pid| is_ours(pid, Some(&node.home))))
        {
            return Err(Error::Usage(format!(
                "{} is already running (PID {}); stop it with `hutong testnet down --dir {}`",
                node.name,
                node.pid.unwrap_or_default(),
                dir.display()
            )));
        }
        manifest
    } else {
        if options.validators == 0 || options.validators + options.observers > NODES_MAX {
            return Err(Error::Usage(format!(
                "a testnet has 1 to {NODES_MAX} nodes with at least one validator; asked for {} validators and {} observers",
                options.validators, options.observers
            )));
        }
        if options.witnesses > WITNESSES_MAX {
            return Err(Error::Usage(format!(
                "a testnet has at most {WITNESSES_MAX} witnesses; asked for {}",
                options.witnesses
            )));
        }
        create(options)?
    };
    configure(options, &mut manifest)?;
    let client = Client::new(Duration::from_secs(5));
    let old_height = manifest.stopped_at_height;
    SUPERVISED.with(|supervised| supervised.borrow_mut().clear());
    let mut children = Vec::new();
    for node in &mut manifest.nodes {
        match start_node(&options.binary, node) {
            Ok(child) => children.push(child),
            Err(error) => {
                stop_nodes(&mut manifest.nodes);
                return Err(error);
            }
        }
    }
    manifest.supervisor_pid = (!options.detach).then(std::process::id);
    manifest.save(dir)?;
    SUPERVISED.with(|supervised| supervised.borrow_mut().extend(children));
    let target = old_height.unwrap_or(0) + 1;
    println!(
        "{} {} node(s) in {}; waiting for height {target}...",
        if resumed { "resuming" } else { "starting" },
        manifest.nodes.len(),
        dir.display()
    );
    let started = wait_for_height(&client, &manifest, target, START_WAIT).and_then(|()| {
        // The witnesses start once the nodes answer, so that their first round finds them.
        let nodes = manifest.nodes.clone();
        for witness in &mut manifest.witnesses {
            let child = start_witness(&options.binary, dir, &nodes, witness)?;
            SUPERVISED.with(|supervised| supervised.borrow_mut().push(child));
        }
        manifest.save(dir)?;
        if options.demo && !manifest.demo_loaded {
            load_demo(&client, dir, &manifest, options.demo_size)?;
            manifest.demo_loaded = true;
            manifest.save(dir)?;
        }
        Ok(())
    });
    if let Err(error) = started {
        stop_witnesses(&mut manifest.witnesses);
        stop_nodes(&mut manifest.nodes);
        manifest.supervisor_pid = None;
        let _ = manifest.save(dir);
        return Err(error);
    }
    print_table(&manifest, dir);
    if options.detach {
        println!("stop it with: hutong testnet down --dir {}", dir.display());
        return Ok(());
    }
    println!("press Ctrl-C to stop every node");
    let reason = supervise(&manifest);
    println!("{reason}; stopping every node");
    record_height(&mut manifest);
    stop_witnesses(&mut manifest.witnesses);
    let killed = stop_nodes(&mut manifest.nodes);
    manifest.supervisor_pid = None;
    manifest.save(dir)?;
    if !killed.is_empty() {
        println!(
            "killed after {} s: {}",
            STOP_WAIT.as_secs(),
            killed.join(", ")
        );
    }
    println!(
        "stopped; `hutong testnet up --dir {}` resumes it",
        dir.display()
    );
    Ok(())
}

/// Notes the highest height any running node reports, so that a resumed network can show
/// that it goes on from there.
fn record_height(manifest: &mut Manifest) {
    let client = Client::new(Duration::from_secs(2));
    let highest = manifest
        .nodes
        .iter()
        .filter(|node| node.pid.is_some())
        .filter_map(|node| client::height(&client, &node.api))
        .max();
    if highest.is_some() {
        manifest.stopped_at_height = highest;
    }
}

/// Blocks until SIGINT or SIGTERM, or until a node exits on its own; says which.
fn supervise(manifest: &Manifest) -> String {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return format!("no signal handling ({error})"),
    };
    runtime.block_on(async {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => return format!("no signal handling ({error})"),
            };
        let mut check = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return "interrupted".to_string(),
                _ = terminate.recv() => return "terminated".to_string(),
                _ = check.tick() => {
                    for (index, node) in manifest.nodes.iter().enumerate() {
                        if let Some(status) = child_exited(index) {
                            return format!(
                                "{} exited on its own ({status}); the end of its log:\n{}",
                                node.name,
                                log_tail(node)
                            );
                        }
                    }
                }
            }
        }
    })
}

fn print_table(manifest: &Manifest, dir: &Path) {
    println!();
    println!(
        "hutong testnet, chain {} ({} node(s)), manifest {}",
        manifest.chain_id,
        manifest.nodes.len(),
        dir.join(MANIFEST).display()
    );
    println!("{:<14} {:<10} {:<24} explorer", "node", "role", "API");
    for node in &manifest.nodes {
        println!(
            "{:<14} {:<10} {:<24} {}/",
            node.name, node.role, node.api, node.api
        );
    }
    for witness in &manifest.witnesses {
        println!(
            "witness {} (key {}), log {}",
            witness.name,
            witness.public_key,
            witness.home.join("witness.log").display()
        );
    }
    if !manifest.witnesses.is_empty() {
        println!(
            "bundles with ?witnesses=K verify with: hutong verify --witnesses K --witness-keys {}",
            dir.join("witness-keys.json").display()
        );
    }
    if let Some(node) = manifest.nodes.first()
        && let Ok(text) = std::fs::read_to_string(dir.join("demo.json"))
        && let Ok(examples) = serde_json::from_str::<demo::Examples>(&text)
    {
        let verify = |number: &str| {
            format!(
                "curl '{}/v1/licences/business-licence/{number}/verification?region=650100'",
                node.api
            )
        };
        println!();
        println!("try (a Qingdao business licence, used in Urumqi, Xinjiang):");
        println!("  {}", verify(&examples.active));
        println!("a revoked one:");
        println!("  {}", verify(&examples.revoked));
        println!("a Jiyuan (Henan) one, not recognised in Xinjiang:");
        println!("  {}", verify(&examples.jiyuan));
        println!("more in {}", dir.join("demo.json").display());
    }
}

/// Submits the demo's records (each department's to one node, in nonce order), waits for
/// the issuances to commit before their follow-ups, and writes `DIR/demo.json`. Each
/// department's nonces continue from the next one the nodes report (a resumed network, or
/// one an operator already wrote to).
fn load_demo(
    client: &Client,
    dir: &Path,
    manifest: &Manifest,
    size: DemoSize,
) -> Result<(), Error> {
    let keys = authority_keys(dir)?;
    let suite = read_genesis(dir)?.suite;
    let mut signer = Signer::new(suite, &manifest.chain_id, keys);
    let started = Instant::now();
    let plan = demo::plan(suite, size, demo::now_ms())?;
    let apis: Vec<String> = manifest
        .nodes
        .iter()
        .filter(|node| node.role == "validator")
        .map(|node| node.api.clone())
        .collect();
    let first_api = apis
        .first()
        .ok_or_else(|| Error::Demo("the testnet has no validator".into()))?;
    let authorities: std::collections::BTreeSet<&String> = plan
        .issuances
        .iter()
        .chain(&plan.follow_ups)
        .map(|(authority, _)| authority)
        .collect();
    for authority in authorities {
        signer.continue_from(authority, client::next_nonce(client, first_api, authority)?);
    }
    println!(
        "loading demo data: {} issuances, then {} status changes, objections and recognitions",
        plan.issuances.len(),
        plan.follow_ups.len()
    );
    let mut committed = 0;
    let mut rejected = Vec::new();
    for wave in [&plan.issuances, &plan.follow_ups] {
        let mut signed = Vec::with_capacity(wave.len());
        for (authority, body) in wave {
            signed.push(signer.sign(authority, body.clone(), demo::now_ms())?);
        }
        let outcome = submit_wave(client, &apis, suite, &signed)?;
        committed += outcome.committed;
        rejected.extend(outcome.rejected);
    }
    let mut text = serde_json::to_string_pretty(&plan.examples)
        .map_err(|error| Error::Demo(error.to_string()))?;
    text.push('\n');
    write_atomic(&dir.join("demo.json"), text.as_bytes())?;
    println!(
        "demo data: {committed} transactions committed, {} rejected, in {:.1} s",
        rejected.len(),
        started.elapsed().as_secs_f64()
    );
    for reason in rejected.iter().take(5) {
        println!("  rejected: {reason}");
    }
    Ok(())
}

/// What became of a wave of transactions.
struct WaveOutcome {
    committed: usize,
    /// Rejections, with their reasons.
    rejected: Vec<String>,
}

/// Submits `transactions` (one thread per signer, each signer's to one node, in order) and
/// waits (bounded) until each is committed or rejected.
fn submit_wave(
    client: &Client,
    apis: &[String],
    suite: Suite,
    transactions: &[hutong_core::tx::Transaction],
) -> Result<WaveOutcome, Error> {
    let mut by_signer: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, transaction) in transactions.iter().enumerate() {
        by_signer
            .entry(transaction.payload.signer.to_string())
            .or_default()
            .push(index);
    }
    let results: Vec<Result<Vec<(String, usize)>, Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = by_signer
            .values()
            .enumerate()
            .map(|(signer_index, batch)| {
                let api = &apis[signer_index % apis.len()];
                let client = client.clone();
                scope.spawn(move || {
                    let mut submitted = Vec::new();
                    let deadline = Instant::now() + DEMO_WAIT;
                    for index in batch {
                        keep_within_nonce_window(&client, api, &transactions[*index], deadline)?;
                        let body = serde_json::to_vec(&transactions[*index])
                            .map_err(|error| Error::Demo(error.to_string()))?;
                        let url = format!("{api}/v1/transactions");
                        let (status, answer) = post_with_retry(&client, &url, &body)?;
                        if status != 202 && status != 200 {
                            return Err(Error::Demo(format!(
                                "{api} refused a demo transaction ({status}): {answer}"
                            )));
                        }
                        submitted.push((api.clone(), *index));
                    }
                    Ok(submitted)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(Error::Demo("a submitting thread failed".into())))
            })
            .collect()
    });
    let mut pending = Vec::new();
    for result in results {
        pending.extend(result?);
    }
    let deadline = Instant::now() + DEMO_WAIT;
    let mut outcome = WaveOutcome {
        committed: 0,
        rejected: Vec::new(),
    };
    // Each signer's last commits last (nonce order): waiting from the end waits little.
    while let Some((api, index)) = pending.pop() {
        let id = transactions[index].id(suite);
        loop {
            let (_, answer) = client.get(&format!("{api}/v1/transactions/{id}"))?;
            match answer.get("state").and_then(|state| state.as_str()) {
                Some("committed") => {
                    outcome.committed += 1;
                    break;
                }
                Some("rejected") => {
                    outcome.rejected.push(format!(
                        "{id}: {}",
                        answer.get("reason").and_then(|r| r.as_str()).unwrap_or("?")
                    ));
                    break;
                }
                _ if Instant::now() >= deadline => {
                    return Err(Error::Demo(format!(
                        "transaction {id} not committed within {} s",
                        DEMO_WAIT.as_secs()
                    )));
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
    Ok(outcome)
}

/// Waits (until `deadline`) until `transaction`'s nonce is within [`DEMO_NONCES_AHEAD_MAX`] of
/// its signer's committed one on `api`.
fn keep_within_nonce_window(
    client: &Client,
    api: &str,
    transaction: &hutong_core::tx::Transaction,
    deadline: Instant,
) -> Result<(), Error> {
    let signer = transaction.payload.signer.to_string();
    loop {
        let (_, answer) = client.get(&format!("{api}/v1/authorities/{signer}/nonce"))?;
        let committed = answer
            .get("last_committed")
            .and_then(|last| last.as_u64())
            .unwrap_or(0);
        if transaction.payload.nonce <= committed + DEMO_NONCES_AHEAD_MAX {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Demo(format!(
                "{signer}'s transactions did not commit within {} s",
                DEMO_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// POSTs a transaction, retrying (bounded) while the node says it is busy.
fn post_with_retry(
    client: &Client,
    url: &str,
    body: &[u8],
) -> Result<(u16, serde_json::Value), Error> {
    let mut attempts = 0;
    loop {
        let (status, answer) = client.post_json(url, body)?;
        attempts += 1;
        if (status == 503 || status == 429) && attempts < 100 {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        return Ok((status, answer));
    }
}
