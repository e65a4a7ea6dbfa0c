//! `hutong run` on damaged, lost or busy stores, against the real binary: each case stops the
//! node with its exit code and a message saying what was found and what to do
//! (docs/operations.md, "Damaged stores"), and a resynchronisation from genesis is refused
//! beside a later signing state unless asked for, and then signs nothing it signed before.
//!
//! Every process a test starts is ended by the test (by its PID, when its guard is dropped),
//! and every wait is bounded.

use std::io::{Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hutong_consensus::{
    Config as MachineConfig, Consensus, SignedMessage, SignedVote, SigningState, ValidatorId, Vote,
    VoteType,
};
use hutong_core::crypto::SecretKey;
use hutong_core::testkit::{Fixture, GENESIS_TIME};
use hutong_ledger::store::{Engine, Mode, REDB_FILE, Store};

const STORE_EXIT: i32 = 4;
const RUNTIME_EXIT: i32 = 1;
/// The hint every refused store carries.
const HINT: &str = "restore it from a backup or resynchronise the node";
/// A refusal comes before the node starts anything: far less than this.
const REFUSAL_WAIT: Duration = Duration::from_secs(60);
/// A node that accepts its store serves its API well within this.
const SERVING_WAIT: Duration = Duration::from_secs(60);
/// The height of the signing state beside a lost store, as found on the live node.
const SIGNED_HEIGHT: u64 = 176;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// A node home made by `hutong init`, with the fixture's first validator key.
struct Home {
    _dir: tempfile::TempDir,
    path: PathBuf,
    fixture: Fixture,
    engine: Engine,
    api: String,
}

/// A running `hutong run`, killed (by its PID) when dropped.
struct Running {
    child: Child,
    stderr: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Home {
    fn new(engine: Engine) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home");
        let fixture = Fixture::new();
        let genesis_path = dir.path().join("genesis.json");
        std::fs::write(&genesis_path, fixture.genesis.to_json()).unwrap();
        let key_path = dir.path().join("node_key.json");
        std::fs::write(
            &key_path,
            hutong_core::keyfile::encode("node", &fixture.node_keys[0]),
        )
        .unwrap();
        // A key file others may read is refused (node/src/keys.rs).
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let api_port = free_port();
        let init = Command::new(env!("CARGO_BIN_EXE_hutong"))
            .arg("init")
            .arg("--home")
            .arg(&path)
            .arg("--genesis")
            .arg(&genesis_path)
            .arg("--node-key")
            .arg(&key_path)
            .args([
                "--p2p-listen",
                &format!("/ip4/127.0.0.1/tcp/{}", free_port()),
            ])
            .args(["--api-listen", &format!("127.0.0.1:{api_port}")])
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        let config_path = path.join("config.toml");
        let config = std::fs::read_to_string(&config_path).unwrap();
        std::fs::write(
            &config_path,
            config.replace(
                "engine = \"redb\"",
                &format!("engine = \"{}\"", engine.name()),
            ),
        )
        .unwrap();
        Home {
            _dir: dir,
            path,
            fixture,
            engine,
            api: format!("http://127.0.0.1:{api_port}"),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.path.join("data")
    }

    fn store_dir(&self) -> PathBuf {
        self.data_dir().join("store")
    }

    fn signing_state_path(&self) -> PathBuf {
        self.data_dir().join("signing_state.json")
    }

    /// A store of this chain with `blocks` blocks of `per_block` licences each.
    fn fill_store(&mut self, blocks: u64, per_block: u64) {
        let store =
            Store::create_engine(&self.store_dir(), self.engine, &self.fixture.genesis).unwrap();
        for _ in 0..blocks {
            let height = store.height().unwrap() + 1;
            let transactions = (0..per_block)
                .map(|index| {
                    self.fixture.issue_business_licence(
                        "qd-approval",
                        "370200",
                        height * 1000 + index,
                    )
                })
                .collect();
            let execution = store
                .execute(
                    GENESIS_TIME + height * 1000,
                    self.fixture.node_keys[0].public_key(),
                    transactions,
                    Mode::Verify,
                )
                .unwrap();
            let header = execution.header.clone();
            store
                .commit(execution, self.fixture.certify(&header))
                .unwrap();
        }
    }

    /// The signing state of a validator whose last signed message is a precommit at `height`,
    /// signed with this home's node key: what the node persists before sending a vote.
    fn write_signing_state(&self, height: u64) {
        let key: &SecretKey = &self.fixture.node_keys[0];
        let vote = Vote {
            vote_type: VoteType::Precommit,
            height,
            round: 0,
            value: Some([7u8; 32]),
            validator: ValidatorId(key.public_key().0),
        };
        let signer = self.fixture.suite().signer(key.clone());
        let signature = hutong_consensus::Signer::sign(
            &signer,
            &vote.sign_bytes(&self.fixture.genesis.chain_id),
        );
        let state: SigningState<[u8; 32]> = SigningState {
            last_signed: SignedMessage::Vote(SignedVote { vote, signature }),
            signed_before: Vec::new(),
            locked: None,
            valid: None,
            valid_round_prevotes: Vec::new(),
        };
        // The file must be one the node's consensus machine takes as its own.
        Consensus::restore(
            MachineConfig::default(),
            self.fixture.genesis.chain_id.clone(),
            signer,
            self.fixture.suite(),
            state.clone(),
        )
        .unwrap();
        std::fs::create_dir_all(self.data_dir()).unwrap();
        std::fs::write(
            self.signing_state_path(),
            serde_json::to_vec(&state).unwrap(),
        )
        .unwrap();
    }

    fn start(&self, extra: &[&str]) -> Running {
        let stderr = self.path.join(format!(
            "run-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let child = Command::new(env!("CARGO_BIN_EXE_hutong"))
            .arg("run")
            .arg("--home")
            .arg(&self.path)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Running { child, stderr }
    }

    /// Runs the node until it exits (bounded): its exit code and what it wrote to stderr.
    fn run_to_exit(&self, extra: &[&str]) -> (Option<i32>, String) {
        let mut running = self.start(extra);
        let started = Instant::now();
        loop {
            if let Some(status) = running.child.try_wait().unwrap() {
                return (status.code(), running.log());
            }
            assert!(
                started.elapsed() < REFUSAL_WAIT,
                "the node did not stop within {REFUSAL_WAIT:?}:\n{}",
                running.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn get(&self, path: &str) -> Option<String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let mut response = agent.get(&format!("{}{path}", self.api)).call().ok()?;
        response.body_mut().read_to_string().ok()
    }

    /// Waits (bounded) until the node answers on its API, failing if it exits first.
    fn wait_serving(&self, running: &mut Running) {
        let started = Instant::now();
        while self.get("/v1/node").is_none() {
            if let Some(status) = running.child.try_wait().unwrap() {
                panic!("the node exited with {status}:\n{}", running.log());
            }
            assert!(
                started.elapsed() < SERVING_WAIT,
                "the node did not serve within {SERVING_WAIT:?}:\n{}",
                running.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn redb_file(home: &Home) -> PathBuf {
    home.store_dir().join(REDB_FILE)
}

/// Overwrites 64 bytes in every 4 KiB page of the middle half of `file`.
fn damage_middle(file: &Path) {
    let length = std::fs::metadata(file).unwrap().len();
    let mut handle = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    let mut offset = length / 4;
    while offset + 4096 < length * 3 / 4 {
        handle.seek(SeekFrom::Start(offset + 1024)).unwrap();
        handle.write_all(&[0xA5; 64]).unwrap();
        offset += 4096;
    }
    handle.sync_all().unwrap();
}

fn truncate_to(file: &Path, length: u64) {
    let handle = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    handle.set_len(length).unwrap();
    handle.sync_all().unwrap();
}

fn assert_refused_store(code: Option<i32>, stderr: &str) {
    assert_eq!(code, Some(STORE_EXIT), "{stderr}");
    assert!(stderr.contains(HINT), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn damaged_redb_pages_stop_the_node_with_exit_code_4() {
    let mut home = Home::new(Engine::Redb);
    home.fill_store(20, 100);
    damage_middle(&redb_file(&home));
    let (code, stderr) = home.run_to_exit(&[]);
    assert_refused_store(code, &stderr);
    // Found by redb's page check, before anything read the damaged pages.
    assert!(stderr.contains("the store is corrupt: redb:"), "{stderr}");
}

#[test]
fn a_truncated_redb_file_stops_the_node_with_exit_code_4() {
    let mut home = Home::new(Engine::Redb);
    home.fill_store(20, 100);
    let file = redb_file(&home);
    truncate_to(&file, std::fs::metadata(&file).unwrap().len() / 2);
    let (code, stderr) = home.run_to_exit(&[]);
    assert_refused_store(code, &stderr);
    assert!(stderr.contains("the store is corrupt: redb:"), "{stderr}");
    assert!(stderr.contains("truncated"), "{stderr}");
}

/// The message names what was found: the store's height and the signing state's.
fn assert_refused_beside_signing_state(code: Option<i32>, stderr: &str, found: &str) {
    assert_eq!(code, Some(STORE_EXIT), "{stderr}");
    assert!(stderr.contains(found), "{stderr}");
    assert!(stderr.contains("(height 0)"), "{stderr}");
    assert!(
        stderr.contains(&format!("is at height {SIGNED_HEIGHT}")),
        "{stderr}"
    );
    assert!(stderr.contains("--resync"), "{stderr}");
}

#[test]
fn a_zero_length_store_beside_a_later_signing_state_is_refused_unless_resynchronising() {
    let mut home = Home::new(Engine::Redb);
    home.fill_store(3, 10);
    home.write_signing_state(SIGNED_HEIGHT);
    truncate_to(&redb_file(&home), 0);
    let (code, stderr) = home.run_to_exit(&[]);
    assert_refused_beside_signing_state(code, &stderr, "is a zero-length file");
    // Refused, it changed nothing: the file is still empty, the signing state the same.
    assert_eq!(std::fs::metadata(redb_file(&home)).unwrap().len(), 0);
    let signing_state = std::fs::read(home.signing_state_path()).unwrap();

    // Asked to resynchronise, it starts from genesis; as a validator alone, it reaches
    // steps it would sign at heights below the signing state's, and signs none of them.
    let mut running = home.start(&["--resync"]);
    home.wait_serving(&mut running);
    let node: serde_json::Value = serde_json::from_str(&home.get("/v1/node").unwrap()).unwrap();
    assert_eq!(node["height"], 0, "{node}");
    let started = Instant::now();
    loop {
        let metrics = home.get("/metrics").unwrap_or_default();
        let refused = metrics
            .lines()
            .find_map(|line| line.strip_prefix("hutong_consensus_signing_refused "))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if refused > 0.0 {
            break;
        }
        assert!(
            started.elapsed() < SERVING_WAIT,
            "the node reached no step to sign within {SERVING_WAIT:?}:\n{}",
            running.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        std::fs::read(home.signing_state_path()).unwrap(),
        signing_state,
        "the node signed something below the signing state's height"
    );
    assert!(
        running.log().contains("resynchronising"),
        "{}",
        running.log()
    );
}

#[test]
fn a_missing_store_beside_a_later_signing_state_is_refused_on_each_engine() {
    for engine in Engine::ALL {
        let home = Home::new(engine);
        home.write_signing_state(SIGNED_HEIGHT);
        let (code, stderr) = home.run_to_exit(&[]);
        assert_refused_beside_signing_state(code, &stderr, "is missing");
        // Nothing was created in its place.
        assert_eq!(Engine::found_in(&home.store_dir()), None, "{engine}");
    }
}

#[test]
fn the_same_home_started_twice_is_refused_as_in_use_on_each_engine() {
    for engine in Engine::ALL {
        let home = Home::new(engine);
        let mut first = home.start(&[]);
        home.wait_serving(&mut first);
        let (code, stderr) = home.run_to_exit(&[]);
        assert_eq!(code, Some(RUNTIME_EXIT), "{engine}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "the node's home {} is in use by another process (pid {})",
                home.path.display(),
                first.child.id()
            )),
            "{engine}: {stderr}"
        );
        // The first node is undisturbed.
        assert!(first.child.try_wait().unwrap().is_none(), "{engine}");
        assert!(home.get("/v1/node").is_some(), "{engine}");
    }
}

#[test]
fn a_sled_store_with_a_header_altered_below_the_head_stops_the_node_with_exit_code_4() {
    // sled keeps no page checksums: the hash links of the headers below the head are what
    // catches damage there.
    let mut home = Home::new(Engine::Sled);
    home.fill_store(6, 5);
    let backend = Engine::Sled
        .open(&home.store_dir(), hutong_ledger::store::Durability::Synced)
        .unwrap();
    let mut key = vec![b'H'];
    key.extend_from_slice(&4u64.to_be_bytes());
    let bytes = backend.get(&key).unwrap().unwrap();
    let mut header: hutong_core::block::BlockHeader =
        hutong_core::codec::from_stored(&bytes).unwrap();
    header.time += 1;
    backend
        .write(vec![(key, Some(hutong_core::codec::to_canonical(&header)))])
        .unwrap();
    drop(backend);
    let (code, stderr) = home.run_to_exit(&[]);
    assert_refused_store(code, &stderr);
    assert!(
        stderr.contains("header 5 does not name the hash of header 4"),
        "{stderr}"
    );
}
