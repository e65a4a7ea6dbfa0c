//! `hutong run` on a store of another format stops at once with exit code 4 and names both
//! format versions, instead of reading the store as if it were its own.

use std::process::Command;
use std::time::{Duration, Instant};

use hutong_core::testkit::Fixture;
use hutong_ledger::store::{Durability, Engine, STORE_FORMAT_VERSION, Store};

const STORE_EXIT: i32 = 4;
/// The node must refuse before it starts anything: far less than this.
const REFUSAL_WAIT: Duration = Duration::from_secs(60);

#[test]
fn a_store_of_another_format_stops_the_node_with_exit_code_4() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let genesis_path = dir.path().join("genesis.json");
    let genesis = Fixture::new().genesis;
    std::fs::write(&genesis_path, genesis.to_json()).unwrap();
    let init = Command::new(env!("CARGO_BIN_EXE_hutong"))
        .arg("init")
        .arg("--home")
        .arg(&home)
        .arg("--genesis")
        .arg(&genesis_path)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );

    // A store of this chain, then marked as written before format versions were recorded.
    let store_dir = home.join("data").join("store");
    drop(Store::create(&store_dir, &genesis).unwrap());
    let backend = Engine::Redb.open(&store_dir, Durability::Synced).unwrap();
    backend.write(vec![(b"Mformat".to_vec(), None)]).unwrap();
    drop(backend);

    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hutong"))
        .arg("run")
        .arg("--home")
        .arg(&home)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > REFUSAL_WAIT {
            child.kill().unwrap();
            panic!("the node did not refuse the store within {REFUSAL_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(STORE_EXIT), "{stderr}");
    assert!(
        stderr.contains("format version 1")
            && stderr.contains(&format!("format version {STORE_FORMAT_VERSION}")),
        "{stderr}"
    );
}
