//! A harness for end-to-end tests: a local network of real `hutong run` processes on loopback,
//! built from the ledger's test fixture (its authorities and node keys), with helpers to
//! submit transactions and read every node's view through the HTTP API.
//!
//! Every process is started by the harness and ended by it, by PID, when the test's
//! [`Network`] is dropped. Every wait is bounded.

pub mod attack;
pub mod flood;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hutong_core::crypto::SecretKey;
use hutong_core::genesis::Genesis;
use hutong_core::hash::Hash32;
use hutong_core::testkit::Fixture;
use hutong_core::tx::Transaction;

pub mod netns;

/// The `hutong` binary in the target directory of the test executable (`scripts/test` builds it
/// first; `HUTONG_BIN` overrides the path).
pub fn hutong_binary() -> PathBuf {
    if let Ok(path) = std::env::var("HUTONG_BIN") {
        return PathBuf::from(path);
    }
    let executable = std::env::current_exe().expect("test executable path");
    let directory = executable
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let binary = directory.join("hutong");
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build -p hutong-node` (scripts/test does)",
        binary.display()
    );
    binary
}

/// A TCP port on 127.0.0.1 that was free a moment ago and that this process has not handed
/// out before: the system may offer a port it just released again, and two nodes of one
/// network must never be given the same one.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for _ in 0..1000 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free loopback port");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    panic!("no loopback port that was not handed out already");
}

/// Writes a node key file as `hutong` expects it: private to its owner (mode 0600).
pub fn write_key(path: &Path, key: &SecretKey) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("write key");
    std::io::Write::write_all(
        &mut file,
        hutong_core::keyfile::encode("node", key).as_bytes(),
    )
    .expect("write key");
}

/// One node of the network.
#[derive(Debug)]
pub struct Node {
    pub name: String,
    pub home: PathBuf,
    pub api: String,
    pub p2p_port: u16,
    pub key: SecretKey,
    child: Option<Child>,
}

impl Node {
    /// A node description with no process.
    pub fn detached(
        name: String,
        home: PathBuf,
        api: String,
        p2p_port: u16,
        key: SecretKey,
    ) -> Self {
        Node {
            name,
            home,
            api,
            p2p_port,
            key,
            child: None,
        }
    }

    /// Whether its process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(
            self.child.as_mut().map(|child| child.try_wait()),
            Some(Ok(None))
        )
    }

    /// Starts `hutong run` for this node.
    pub fn start(&mut self) {
        self.spawn(Command::new(hutong_binary()), &[]);
    }

    /// Starts `hutong run --resync` for this node, as an operator restarts a validator whose
    /// store or signing state was lost (docs/operations.md, section 8).
    pub fn start_resync(&mut self) {
        self.spawn(Command::new(hutong_binary()), &["--resync"]);
    }

    /// Starts `hutong run` for this node with its open-file limit (soft and hard) set to
    /// `limit` first, as a host with that limit would run it.
    pub fn start_with_file_limit(&mut self, limit: u64) {
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
            .arg(hutong_binary());
        self.spawn(command, &[]);
    }

    fn spawn(&mut self, mut command: Command, extra: &[&str]) {
        assert!(!self.is_running(), "{} is already running", self.name);
        let log = std::fs::File::create(self.home.join(format!("node-{}.log", now_seconds())))
            .expect("log file");
        // The node honours a `[testing]` section of its configuration only with this variable
        // set; without such a section the variable changes nothing.
        let child = command
            .args(["run", "--home"])
            .arg(&self.home)
            .args(extra)
            .env("HUTONG_ALLOW_TESTING_SWITCHES", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start hutong run");
        self.child = Some(child);
    }

    /// The process id of its running process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: the process dies at once, wherever it is.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait (bounded) for a clean exit; SIGKILL if it does not come.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// GET a JSON document from the node's API; `None` when the node does not answer.
    pub fn get(&self, path: &str) -> Option<(u16, serde_json::Value)> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent.get(&format!("{}{path}", self.api)).call().ok()?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().ok()?;
        Some((
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        ))
    }

    /// POST a transaction as JSON; the status and body.
    pub fn submit(&self, transaction: &Transaction) -> Option<(u16, serde_json::Value)> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into();
        let body = serde_json::to_string(transaction).ok()?;
        let mut response = agent
            .post(&format!("{}/v1/transactions", self.api))
            .header("content-type", "application/json")
            .send(body.as_bytes())
            .ok()?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().ok()?;
        Some((
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        ))
    }

    /// The committed height, if the node answers.
    pub fn height(&self) -> Option<u64> {
        let (status, body) = self.get("/v1/node")?;
        (status == 200)
            .then(|| body.get("height")?.as_u64())
            .flatten()
    }

    /// The hash of the block at `height`, if the node has it.
    pub fn block_hash(&self, height: u64) -> Option<String> {
        let (status, body) = self.get(&format!("/v1/blocks/{height}"))?;
        (status == 200)
            .then(|| body.get("hash")?.as_str().map(str::to_owned))
            .flatten()
    }

    /// The header at `height`, if the node has it.
    pub fn header(&self, height: u64) -> Option<serde_json::Value> {
        let (status, body) = self.get(&format!("/v1/blocks/{height}"))?;
        (status == 200)
            .then(|| body.get("block")?.get("header").cloned())
            .flatten()
    }

    /// The state root in the header at `height`, if the node has it.
    pub fn state_root(&self, height: u64) -> Option<String> {
        self.header(height)?
            .get("state_root")?
            .as_str()
            .map(str::to_owned)
    }

    /// The state of a transaction: `committed`, `pending`, `rejected`, or `None`.
    pub fn transaction_state(&self, id: &Hash32) -> Option<String> {
        let (_, body) = self.get(&format!("/v1/transactions/{id}"))?;
        body.get("state")?.as_str().map(str::to_owned)
    }

    /// POST raw bytes to `path` with `content_type`; the status and body.
    pub fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Option<(u16, serde_json::Value)> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent
            .post(&format!("{}{path}", self.api))
            .header("content-type", content_type)
            .send(body)
            .ok()?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().ok()?;
        Some((
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        ))
    }

    /// The headers of blocks `from ..= to` (through the paginated block list).
    pub fn headers(&self, from: u64, to: u64) -> Option<Vec<serde_json::Value>> {
        let mut headers = Vec::new();
        let mut next = from;
        while next <= to {
            let (status, body) = self.get(&format!("/v1/blocks?from={next}&limit=100"))?;
            if status != 200 {
                return None;
            }
            let items = body.get("items")?.as_array()?.clone();
            if items.is_empty() {
                return None;
            }
            for item in items {
                let height = item
                    .get("header")
                    .and_then(|header| header.get("height"))
                    .or_else(|| item.get("height"))
                    .and_then(serde_json::Value::as_u64)?;
                if height > to {
                    return Some(headers);
                }
                next = height + 1;
                headers.push(item);
            }
        }
        Some(headers)
    }

    /// Equivocations recorded on the ledger, as `GET /v1/evidence` lists them.
    pub fn evidence(&self) -> Option<Vec<serde_json::Value>> {
        let (status, body) = self.get("/v1/evidence?limit=100")?;
        (status == 200)
            .then(|| body.get("items")?.as_array().cloned())
            .flatten()
    }

    /// Rewrites this node's `config.toml` with `edit` (while it is stopped).
    pub fn edit_config(&self, edit: impl FnOnce(String) -> String) {
        let path = self.home.join("config.toml");
        let text = std::fs::read_to_string(&path).expect("config");
        std::fs::write(&path, edit(text)).expect("config");
    }

    /// Connected peers as the node reports them.
    pub fn peer_count(&self) -> Option<usize> {
        let (_, body) = self.get("/v1/node")?;
        Some(body.get("peers")?.as_array()?.len())
    }
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or(0)
}

/// Fast timeouts for tests on one machine: rounds are short, heartbeat blocks frequent.
const TEST_CONSENSUS: &[(&str, &str)] = &[
    ("timeout_propose_ms = 3000", "timeout_propose_ms = 1500"),
    ("timeout_prevote_ms = 1000", "timeout_prevote_ms = 500"),
    ("timeout_precommit_ms = 1000", "timeout_precommit_ms = 500"),
    ("heartbeat_ms = 2000", "heartbeat_ms = 500"),
    ("level = \"info\"", "level = \"hutong=debug,info\""),
];

/// Networks run one at a time: several at once on a 2-core machine would starve each
/// other's consensus timeouts.
static ONE_NETWORK_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A local network of real processes.
#[derive(Debug)]
pub struct Network {
    pub fixture: Fixture,
    pub nodes: Vec<Node>,
    pub directory: tempfile::TempDir,
    _turn: Option<std::sync::MutexGuard<'static, ()>>,
}

impl Network {
    /// `validators` validator homes (not started), from the fixture's genesis.
    pub fn new(validators: usize) -> Self {
        let turn = ONE_NETWORK_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Self::build(validators, Some(turn), |_| {})
    }

    /// Like [`Network::new`], with the fixture's genesis changed by `edit` first (for example,
    /// to make a node an observer with no voting power).
    pub fn with_genesis(nodes: usize, edit: impl FnOnce(&mut Genesis)) -> Self {
        let turn = ONE_NETWORK_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Self::build(nodes, Some(turn), edit)
    }

    /// Homes for another set of nodes while this test already holds the turn.
    pub fn new_within_turn(validators: usize) -> Self {
        Self::build(validators, None, |_| {})
    }

    fn build(
        validators: usize,
        turn: Option<std::sync::MutexGuard<'static, ()>>,
        edit: impl FnOnce(&mut Genesis),
    ) -> Self {
        let mut fixture = Fixture::with_validators(validators);
        edit(&mut fixture.genesis);
        let directory = tempfile::tempdir().expect("temp dir");
        let genesis_path = directory.path().join("genesis.json");
        let mut genesis: Genesis = fixture.genesis.clone();
        genesis.genesis_time = hutong_core::testkit::GENESIS_TIME;
        std::fs::write(&genesis_path, genesis.to_json()).expect("genesis");
        let ports: Vec<(u16, u16)> = (0..validators)
            .map(|_| (free_port(), free_port()))
            .collect();
        let mut nodes = Vec::new();
        for (index, key) in fixture.node_keys.iter().enumerate() {
            let name = format!("node{index}");
            let home = directory.path().join(&name);
            std::fs::create_dir_all(&home).expect("home");
            let key_path = directory.path().join(format!("{name}-key.json"));
            write_key(&key_path, key);
            let (p2p_port, api_port) = ports[index];
            let mut command = Command::new(hutong_binary());
            command
                .args(["init", "--home"])
                .arg(&home)
                .arg("--genesis")
                .arg(&genesis_path)
                .arg("--node-key")
                .arg(&key_path)
                .args(["--p2p-listen", &format!("/ip4/127.0.0.1/tcp/{p2p_port}")])
                .args(["--api-listen", &format!("127.0.0.1:{api_port}")]);
            for (other, other_key) in fixture.node_keys.iter().enumerate() {
                if other != index {
                    command.args([
                        "--peer",
                        &format!(
                            "{}@/ip4/127.0.0.1/tcp/{}",
                            other_key.public_key(),
                            ports[other].0
                        ),
                    ]);
                }
            }
            let output = command.output().expect("hutong init");
            assert!(
                output.status.success(),
                "init failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let config_path = home.join("config.toml");
            let mut config = std::fs::read_to_string(&config_path).expect("config");
            for (from, to) in TEST_CONSENSUS {
                config = config.replace(from, to);
            }
            std::fs::write(&config_path, config).expect("config");
            nodes.push(Node {
                name,
                home,
                api: format!("http://127.0.0.1:{api_port}"),
                p2p_port,
                key: key.clone(),
                child: None,
            });
        }
        Network {
            fixture,
            nodes,
            directory,
            _turn: turn,
        }
    }

    /// Starts every node.
    pub fn start_all(&mut self) {
        for node in &mut self.nodes {
            node.start();
        }
    }

    /// Waits (bounded) until `check` holds, polling; panics with `what` and the node logs.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut check: impl FnMut(&Network) -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "timed out after {timeout:?} waiting for {what}\n{}",
            self.logs_tail()
        );
    }

    /// Each node's name with the paths of its log files.
    fn log_files(&self) -> Vec<(&str, std::path::PathBuf)> {
        let mut files = Vec::new();
        for node in &self.nodes {
            let Ok(entries) = std::fs::read_dir(&node.home) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|ext| ext == "log") {
                    files.push((node.name.as_str(), path));
                }
            }
        }
        files
    }

    /// Every log of every node, one after the other.
    pub fn logs(&self) -> String {
        self.log_files()
            .iter()
            .map(|(_, path)| std::fs::read_to_string(path).unwrap_or_default())
            .collect()
    }

    /// The last lines of every node's logs, for failure messages.
    pub fn logs_tail(&self) -> String {
        let mut out = String::new();
        for (name, path) in self.log_files() {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            out.push_str(&format!("--- {name} {}\n{tail}\n", path.display()));
        }
        out
    }

    /// The heights of the running nodes that answer.
    pub fn heights(&self) -> Vec<Option<u64>> {
        self.nodes.iter().map(Node::height).collect()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        if std::env::var("HUTONG_KEEP_TEST_DIRS").is_ok() {
            let path = self.directory.path().to_path_buf();
            eprintln!("keeping {}", path.display());
            std::mem::forget(std::mem::replace(
                &mut self.directory,
                tempfile::tempdir().expect("temp dir"),
            ));
        }
    }
}
